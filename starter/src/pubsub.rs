//! Pub/Sub as the ingress queue (`TOLLGATE_JOURNAL=pubsub`), over Pub/Sub's REST API.
//!
//! - The webhook publishes an understood, routable event (the stored body, attributes
//!   `event_id` and `workflow_id`, ordering key = workflow id) and answers 2xx only once
//!   Pub/Sub acknowledged the publish (503 otherwise, so Hotmart resends).
//! - `tollgate-starter forward` pulls, signal-with-starts each message and acks it only
//!   after Temporal accepted it. A message that fails is nacked; after
//!   `TOLLGATE_PUBSUB_MAX_ATTEMPTS` deliveries the forwarder publishes it to the
//!   dead-letter topic and acks it (the subscription's dead-letter policy, one attempt
//!   later, is the backstop), and drains that topic's subscription into the journal's
//!   quarantine (listed and redriven like any quarantined delivery).
//! - Pub/Sub delivers at least once: a message may arrive twice. The second
//!   signal-with-start reaches the same workflow, which folds events into a set keyed by
//!   event id, so it changes nothing (tests/tests/pubsub.rs).
//!
//! REST rather than the gRPC client crate: see README "Running on GCP".

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tollgate_domain::ingress::PARSER_VERSION;
use tollgate_domain::{HotmartEvent, ingress};
use tollgate_service::{PubSubSettings, Settings, Temporal};
use tollgate_store::DocStore;

use crate::metrics;

const SCOPE: &str = "https://www.googleapis.com/auth/pubsub";
/// How long Pub/Sub waits for an ack before redelivering.
const ACK_DEADLINE_SECS: u32 = 60;
const PULL_BATCH: u32 = 100;
const IN_FLIGHT: usize = 32;

/// A Pub/Sub REST client for one topic and its subscriptions.
#[derive(Clone)]
pub struct PubSub {
    http: reqwest::Client,
    base: String,
    settings: PubSubSettings,
    /// Google's default credentials; `None` against the emulator.
    creds: Option<google_cloud_auth::credentials::Credentials>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Received {
    ack_id: String,
    message: Message,
    /// 1 on the first delivery (set when the subscription has a dead-letter policy).
    #[serde(default)]
    delivery_attempt: Option<u32>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    #[serde(default)]
    data: String,
    #[serde(default)]
    attributes: std::collections::BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ordering_key: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Pulled {
    #[serde(default, rename = "receivedMessages")]
    received: Vec<Received>,
}

/// One pulled message: what the forwarder needs, and how to ack it.
pub struct Delivery {
    pub ack_id: String,
    pub event_id: String,
    pub workflow_id: Option<String>,
    /// The stored copy of the webhook body.
    pub body: String,
    pub attempt: u32,
    /// Why it was dead-lettered (a dead letter's `reason` attribute).
    pub reason: Option<String>,
}

impl PubSub {
    pub fn new(settings: PubSubSettings) -> anyhow::Result<Self> {
        let (base, creds) = match &settings.emulator_host {
            Some(host) => (format!("http://{host}"), None),
            None => {
                let creds = google_cloud_auth::credentials::Builder::default()
                    .with_scopes([SCOPE])
                    .build()
                    .context("Google default credentials for Pub/Sub")?;
                ("https://pubsub.googleapis.com".to_string(), Some(creds))
            }
        };
        // Pull waits server-side for messages; the timeout must outlast that wait.
        let http = reqwest::Client::builder().timeout(Duration::from_secs(90)).build()?;
        Ok(Self { http, base, settings, creds })
    }

    pub fn settings(&self) -> &PubSubSettings {
        &self.settings
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> anyhow::Result<reqwest::Response> {
        let mut req = self.http.request(method, format!("{}/v1/{path}", self.base)).json(&body);
        if let Some(creds) = &self.creds {
            use google_cloud_auth::credentials::CacheableResource;
            match creds.headers(axum::http::Extensions::new()).await? {
                CacheableResource::New { data, .. } => req = req.headers(data),
                CacheableResource::NotModified => {
                    bail!("credentials answered NotModified without a cached copy")
                }
            }
        }
        Ok(req.send().await?)
    }

    async fn ok(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let r = self.call(method, path, body).await?;
        let status = r.status();
        let text = r.text().await?;
        if !status.is_success() {
            bail!("Pub/Sub {path}: {status} {text}");
        }
        Ok(if text.trim().is_empty() { json!({}) } else { serde_json::from_str(&text)? })
    }

    /// Publishes one accepted event; returns once Pub/Sub has it (its message id).
    pub async fn publish(&self, event_id: &str, workflow_id: &str, body: &str) -> anyhow::Result<String> {
        let message = Message {
            data: B64.encode(body),
            attributes: [("event_id", event_id), ("workflow_id", workflow_id)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            message_id: None,
            // One workflow's events in publish order (a subscription with ordering on).
            ordering_key: Some(workflow_id.to_string()),
        };
        let answer = self
            .ok(
                reqwest::Method::POST,
                &format!("{}:publish", self.settings.topic),
                json!({"messages": [message]}),
            )
            .await?;
        answer["messageIds"][0].as_str().map(str::to_string).context("publish answered no message id")
    }

    /// Creates the topic, the dead-letter topic and both subscriptions when absent
    /// (idempotent: an existing resource is left as it is). Returns what it created.
    pub async fn setup(&self) -> anyhow::Result<Vec<String>> {
        let s = &self.settings;
        let mut created = Vec::new();
        let resources = [
            (s.topic.clone(), json!({})),
            (s.dead_letter_topic.clone(), json!({})),
            (
                s.subscription.clone(),
                json!({
                    "topic": s.topic,
                    "ackDeadlineSeconds": ACK_DEADLINE_SECS,
                    "enableMessageOrdering": true,
                    "deadLetterPolicy": {"deadLetterTopic": s.dead_letter_topic, "maxDeliveryAttempts": s.max_attempts},
                    "retryPolicy": {"minimumBackoff": "1s", "maximumBackoff": "60s"},
                }),
            ),
            (
                s.dead_letter_subscription.clone(),
                json!({"topic": s.dead_letter_topic, "ackDeadlineSeconds": ACK_DEADLINE_SECS}),
            ),
        ];
        for (name, body) in resources {
            let r = self.call(reqwest::Method::PUT, &name, body).await?;
            match r.status() {
                s if s.is_success() => created.push(name),
                reqwest::StatusCode::CONFLICT => {}
                s => bail!("creating {name}: {s} {}", r.text().await.unwrap_or_default()),
            }
        }
        Ok(created)
    }

    /// Up to `PULL_BATCH` messages of `subscription`; waits server-side a while when none.
    async fn pull(&self, subscription: &str) -> anyhow::Result<Vec<Delivery>> {
        let answer = self
            .ok(reqwest::Method::POST, &format!("{subscription}:pull"), json!({"maxMessages": PULL_BATCH}))
            .await?;
        let pulled: Pulled = serde_json::from_value(answer)?;
        Ok(pulled
            .received
            .into_iter()
            .map(|r| {
                let body = B64
                    .decode(&r.message.data)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .unwrap_or_default();
                let attr = |k: &str| r.message.attributes.get(k).cloned();
                Delivery {
                    event_id: attr("event_id").or(r.message.message_id.clone()).unwrap_or_default(),
                    workflow_id: attr("workflow_id"),
                    body,
                    attempt: r.delivery_attempt.unwrap_or(1),
                    reason: attr("reason"),
                    ack_id: r.ack_id,
                }
            })
            .collect())
    }

    /// Publishes a message that exhausted its attempts to the dead-letter topic.
    async fn dead_letter(&self, d: &Delivery, reason: &str) -> anyhow::Result<()> {
        let mut attributes: std::collections::BTreeMap<String, String> =
            [("event_id", d.event_id.as_str()), ("reason", reason)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        if let Some(wf) = &d.workflow_id {
            attributes.insert("workflow_id".into(), wf.clone());
        }
        let message = Message { data: B64.encode(&d.body), attributes, message_id: None, ordering_key: None };
        self.ok(
            reqwest::Method::POST,
            &format!("{}:publish", self.settings.dead_letter_topic),
            json!({"messages": [message]}),
        )
        .await?;
        Ok(())
    }

    async fn ack(&self, subscription: &str, ack_ids: Vec<String>) -> anyhow::Result<()> {
        if ack_ids.is_empty() {
            return Ok(());
        }
        self.ok(reqwest::Method::POST, &format!("{subscription}:acknowledge"), json!({"ackIds": ack_ids}))
            .await?;
        Ok(())
    }

    /// Redelivers at once (counts as a failed attempt).
    async fn nack(&self, subscription: &str, ack_ids: Vec<String>) -> anyhow::Result<()> {
        if ack_ids.is_empty() {
            return Ok(());
        }
        let body = json!({"ackIds": ack_ids, "ackDeadlineSeconds": 0});
        self.ok(reqwest::Method::POST, &format!("{subscription}:modifyAckDeadline"), body).await?;
        Ok(())
    }
}

/// The event a message carries: read again from the stored body with this parser.
fn decode(d: &Delivery) -> Result<(String, HotmartEvent), String> {
    let wf = d.workflow_id.clone().ok_or("message without a workflow_id attribute")?;
    let received = ingress::receive(d.body.as_bytes()).map_err(|e| e.to_string())?;
    let event = received.event.map_err(|e| e.to_string())?;
    Ok((wf, event))
}

/// The forwarder role of the Pub/Sub journal: drains the subscription into Temporal and
/// the dead-letter subscription into the quarantine, until the process stops.
pub async fn forward(pubsub: PubSub, docs: DocStore, settings: Arc<Settings>, temporal: Temporal) {
    let dead = tokio::spawn(dead_letters(pubsub.clone(), docs));
    let client = crate::forwarder::connect(&temporal).await;
    let sub = pubsub.settings.subscription.clone();
    let mut backoff = Duration::from_millis(200);
    let mut pause = Duration::from_secs(1);
    loop {
        let batch = match pubsub.pull(&sub).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "Pub/Sub pull failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(200);
        if batch.is_empty() {
            // The emulator answers an empty pull at once: do not spin.
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        use futures::StreamExt;
        let results: Vec<(Delivery, Result<(), String>)> = futures::stream::iter(batch)
            .map(|d| {
                let (client, settings) = (client.clone(), settings.clone());
                async move {
                    let sent = match decode(&d) {
                        Ok((wf, event)) => crate::forwarder::signal_with_start(&client, &settings, &wf, event)
                            .await
                            .map_err(|e| format!("{e:#}")),
                        Err(reason) => Err(reason),
                    };
                    if let Err(e) = &sent {
                        tracing::warn!(event_id = %d.event_id, attempt = d.attempt, error = %e, "forwarding a Pub/Sub message failed");
                    }
                    (d, sent)
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let mut done = Vec::new();
        let mut retry = Vec::new();
        for (d, sent) in results {
            match sent {
                Ok(()) => done.push(d.ack_id),
                // The last attempt: to the dead-letter topic ourselves (the subscription's
                // dead-letter policy is the backstop; the emulator does not deliver it),
                // then acked.
                Err(reason) if d.attempt >= pubsub.settings.max_attempts => {
                    match pubsub.dead_letter(&d, &reason).await {
                        Ok(()) => done.push(d.ack_id),
                        Err(e) => {
                            tracing::error!(event_id = %d.event_id, error = %format!("{e:#}"), "cannot dead-letter; retried");
                            retry.push(d.ack_id);
                        }
                    }
                }
                Err(_) => retry.push(d.ack_id),
            }
        }
        let n = done.len() as u64;
        // Acked only after Temporal (or the dead-letter topic) accepted: a crash before
        // this line redelivers them.
        match pubsub.ack(&sub, done).await {
            Ok(()) => metrics::JOURNAL_FORWARDED.inc_by(n),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "ack failed; Pub/Sub redelivers (harmless)"),
        }
        if retry.is_empty() {
            pause = Duration::from_secs(1);
        } else {
            let _ = pubsub.nack(&sub, retry).await;
            // Each redelivery counts toward the dead-letter limit: while Temporal fails,
            // pull more and more slowly (a message dead-lettered anyway waits in the
            // quarantine for `journal redrive`).
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(60));
        }
        if dead.is_finished() {
            tracing::error!("the dead-letter drain stopped");
        }
    }
}

/// Moves dead letters into the journal's quarantine, with the reason; acks them after.
async fn dead_letters(pubsub: PubSub, docs: DocStore) {
    let sub = pubsub.settings.dead_letter_subscription.clone();
    let attempts = pubsub.settings.max_attempts;
    loop {
        let batch = match pubsub.pull(&sub).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "Pub/Sub dead-letter pull failed");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        if batch.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        let mut acks = Vec::new();
        for d in batch {
            let why = d
                .reason
                .clone()
                .or_else(|| decode(&d).err())
                .unwrap_or_else(|| "Temporal did not accept it".into());
            let reason = format!("dead-lettered by Pub/Sub after {attempts} delivery attempts: {why}");
            let name = ingress::receive(d.body.as_bytes()).ok().and_then(|r| r.event_name);
            match docs
                .append_quarantined(d.event_id.clone(), name, d.body.clone(), reason, PARSER_VERSION)
                .await
            {
                Ok(_) => {
                    tracing::warn!(event_id = %d.event_id, "Pub/Sub dead letter quarantined; redrive it after a fix");
                    acks.push(d.ack_id);
                }
                Err(e) => {
                    tracing::error!(event_id = %d.event_id, error = %format!("{e:#}"), "cannot quarantine a dead letter")
                }
            }
        }
        if let Err(e) = pubsub.ack(&sub, acks).await {
            tracing::warn!(error = %format!("{e:#}"), "dead-letter ack failed; it comes again (quarantined once: same key)");
        }
    }
}
