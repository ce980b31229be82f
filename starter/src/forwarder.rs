//! Drains the journal into Temporal with signal-with-start: the event's workflow is
//! started if it is not running, and the event is signalled to it. Entries are marked
//! forwarded only after Temporal accepted them, so a crash or an outage of Temporal
//! delays events but never drops them; a repeat signal is harmless (the workflow
//! de-duplicates by event id).
//!
//! Several starters may share one journal (Firestore): only the holder of the forwarder
//! lease forwards, so each entry is normally signalled once. The holder renews it every
//! third of `TOLLGATE_FORWARDER_LEASE`; if it dies, another starter takes the lease once
//! it expires and forwards whatever the dead one had not marked, its cut-short batch
//! included (sent twice at worst, never lost).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use temporalio_client::{Client, WorkflowIdConflictPolicy, WorkflowStartOptions};
use tokio::sync::Notify;

use crate::metrics;
use tollgate_domain::{HotmartEvent, WorkflowKey};
use tollgate_service::{Settings, Temporal};
use tollgate_store::{DocStore, JournalEntry};
use tollgate_workflows::{AccessInput, AccessWorkflow};

const BATCH: usize = 256;
const IN_FLIGHT: usize = 32;
const IDLE_POLL: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The journal is one shard, with one lease.
pub const LEASE: &str = "journal-forwarder-0";

/// This process's hold on the forwarder lease.
pub struct Lease {
    holder: String,
    ttl: Duration,
    renewed_at: Option<std::time::Instant>,
}

impl Lease {
    pub fn new(ttl: Duration) -> Self {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let holder = format!("{}/{}/{nanos}", tollgate_store::this_host(), std::process::id());
        Self { holder, ttl, renewed_at: None }
    }

    /// Whether this process may forward now; takes or renews the lease when a third of
    /// its term has passed, so a holder checks twice before it could expire.
    pub async fn hold(&mut self, journal: &DocStore) -> bool {
        if self.renewed_at.is_some_and(|t| t.elapsed() < self.ttl / 3) {
            return true;
        }
        let asked = std::time::Instant::now();
        let held = match journal.acquire_lease(LEASE, &self.holder, self.ttl.as_millis() as i64).await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "cannot renew the forwarder lease; standing by");
                false
            }
        };
        match (self.renewed_at.is_some(), held) {
            (false, true) => {
                tracing::info!(holder = %self.holder, "forwarder lease taken: this starter forwards the journal")
            }
            (true, false) => {
                tracing::warn!(holder = %self.holder, "forwarder lease lost: another starter forwards")
            }
            _ => {}
        }
        self.renewed_at = held.then_some(asked);
        metrics::FORWARDER_ACTIVE.set(held as i64);
        held
    }

    /// A clean stop: hands the lease over at once.
    pub async fn release(&mut self, journal: &DocStore) {
        if self.renewed_at.take().is_some() {
            if let Err(e) = journal.release_lease(LEASE, &self.holder).await {
                tracing::warn!(error = %format!("{e:#}"), "cannot release the forwarder lease; it expires by itself");
            }
            metrics::FORWARDER_ACTIVE.set(0);
        }
    }
}

pub async fn run(
    journal: DocStore,
    settings: Arc<Settings>,
    temporal: Temporal,
    wake: Arc<Notify>,
    lease: Arc<tokio::sync::Mutex<Lease>>,
) {
    let client = connect(&temporal).await;
    let mut backoff = Duration::from_millis(200);
    let mut names = ProductNames::default();
    loop {
        if !lease.lock().await.hold(&journal).await {
            tokio::time::sleep(Duration::from_secs(settings.forwarder_lease_secs).max(IDLE_POLL) / 3).await;
            continue;
        }
        let batch = match journal.pending(BATCH).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the journal");
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        if batch.is_empty() {
            let _ = tokio::time::timeout(IDLE_POLL, wake.notified()).await;
            continue;
        }
        names.record(&journal, &batch).await;
        let journaled: std::collections::HashMap<String, i64> =
            batch.iter().map(|e| (e.key.clone(), e.received_at)).collect();
        let n = batch.len();
        let results: Vec<(String, anyhow::Result<()>)> = futures::stream::iter(batch)
            .map(|entry| {
                let client = client.clone();
                let settings = settings.clone();
                async move { (entry.key.clone(), forward(&client, &settings, entry).await) }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let mut done = Vec::with_capacity(n);
        let mut failed = 0;
        for (key, r) in results {
            match r {
                Ok(()) => done.push(key),
                Err(e) => {
                    failed += 1;
                    if failed == 1 {
                        tracing::warn!(error = %e, "forwarding failed; will retry");
                    }
                }
            }
        }
        let forwarded: Vec<i64> = done.iter().filter_map(|k| journaled.get(k).copied()).collect();
        match journal.mark_forwarded(done).await {
            Ok(()) => {
                metrics::JOURNAL_FORWARDED.inc_by(forwarded.len() as u64);
                let now = tollgate_store::now_ms();
                for at in forwarded {
                    metrics::FORWARD_LATENCY.observe((now - at).max(0) as f64 / 1000.0);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot mark journal entries forwarded; they will be sent again")
            }
        }
        if failed > 0 {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        } else {
            backoff = Duration::from_millis(200);
        }
    }
}

/// Product names as webhooks, imports and reconciliations state them, written to the
/// store when they change (the dashboard and the API show them). Off the ack path.
#[derive(Default)]
struct ProductNames {
    known: std::collections::HashMap<i64, String>,
}

impl ProductNames {
    async fn record(&mut self, docs: &DocStore, batch: &[JournalEntry]) {
        for e in batch {
            let (Some(product), Some(name)) = (e.event.product_id, e.event.product_name.as_deref()) else {
                continue;
            };
            let name = name.trim();
            if name.is_empty() || self.known.get(&product.0).is_some_and(|n| n == name) {
                continue;
            }
            match docs.put_product_name(product, name.to_string()).await {
                Ok(()) => {
                    self.known.insert(product.0, name.to_string());
                }
                Err(e) => tracing::warn!(error = %e, product = product.0, "cannot record a product name"),
            }
        }
    }
}

/// Temporal's client, once it answers (webhooks keep being journaled meanwhile).
pub async fn connect(temporal: &Temporal) -> Client {
    let mut backoff = Duration::from_millis(200);
    let client = loop {
        match temporal.client().await {
            Ok(c) => break c.clone(),
            Err(e) => {
                tracing::warn!(error = %e, "Temporal unreachable; webhooks are journaled and will be forwarded later");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    };
    tracing::info!("forwarder connected to Temporal");
    client
}

async fn forward(client: &Client, settings: &Settings, entry: JournalEntry) -> anyhow::Result<()> {
    signal_with_start(client, settings, &entry.workflow_id, entry.event).await
}

/// Starts the event's workflow if it is not running and signals the event to it. Shared by
/// the forwarder and the opt-in direct ingress (`TOLLGATE_INGRESS=direct`).
pub async fn signal_with_start(
    client: &Client,
    settings: &Settings,
    workflow_id: &str,
    event: HotmartEvent,
) -> anyhow::Result<()> {
    // An event routed by its subscriber code alone names no product: its workflow id does.
    let key = event
        .workflow_key()
        .or_else(|| WorkflowKey::from_workflow_id(workflow_id))
        .ok_or_else(|| anyhow::anyhow!("event {} has no workflow key", event.id))?;
    let input = AccessInput::new(key, settings.rules.clone(), None);
    let opts = WorkflowStartOptions::new(settings.task_queue.clone(), workflow_id.to_string())
        .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
        .build();
    client
        .signal_with_start_workflow(AccessWorkflow::run, input, AccessWorkflow::on_event, event, opts)
        .await
        .map_err(|e| anyhow::anyhow!("signal-with-start {workflow_id}: {e}"))?;
    Ok(())
}
