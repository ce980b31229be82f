//! `POST /webhooks/hotmart`: authenticate, journal, acknowledge.
//!
//! Once a body is authenticated JSON it is journaled and answered 2xx, whatever its shape
//! (Hotmart gives up on, and may disable, a URL that answers 4xx): an event the parser
//! understands is routed to its workflow; a body it cannot read yet is kept quarantined
//! with the reason, for a redrive. Only a missing/wrong token (401), a body over the
//! limit (413) or one that is not JSON (400) is refused. The 2xx is sent only after the
//! journal commit, so an acknowledged event survives any crash; the forwarder hands it
//! to Temporal afterwards.
//!
//! `TOLLGATE_INGRESS=direct` (opt-in, for the benchmark's comparison) skips the journal
//! for events that concern a purchase: the handler does the forwarder's signal-with-start
//! itself and answers 2xx only once Temporal accepted it (503 otherwise, so Hotmart
//! resends). Resends are then not recognised at the door (the workflow de-duplicates).
//!
//! `TOLLGATE_JOURNAL=pubsub`: a routable event is published to Pub/Sub (`crate::pubsub`)
//! and answered 2xx once Pub/Sub acknowledged it (503 otherwise); what cannot be routed
//! (quarantined, or concerning no workflow) still goes to the store's journal. Resends are
//! not recognised at the door there either: the workflow de-duplicates by event id.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use tollgate_domain::{HotmartEvent, ingress};
use tollgate_service::Ingress;
use tollgate_store::Appended;

use crate::error::{ApiError, ApiResult};
use crate::journal;
use crate::startup::AppState;

const MAX_BODY: usize = 1024 * 1024;
const HOTTOK_HEADER: &str = "x-hotmart-hottok";

/// `body_timeout`: the whole request (body included) must arrive and be answered within
/// it, else 408 and the connection closes: a client trickling its body cannot hold the
/// ingress (the journal commit itself takes milliseconds).
pub fn router(body_timeout: std::time::Duration) -> Router<AppState> {
    Router::new()
        .route("/webhooks/hotmart", post(hotmart_webhook))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, body_timeout))
}

fn unauthorized(header: bool) -> ApiError {
    tracing::warn!(header, "webhook rejected: missing or wrong hottok");
    refuse(StatusCode::UNAUTHORIZED, "unauthorized", "missing or wrong hottok")
}

/// Webhook errors carry the message as `reason` too.
fn refuse(status: StatusCode, code: &str, reason: impl Into<String>) -> ApiError {
    ApiError::new(status, code, reason).with_reason()
}

async fn hotmart_webhook(
    state: State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let answer = receive(state, headers, body).await;
    let outcome = match &answer {
        Ok(Json(a)) if a["status"] == "accepted" && a["workflow_id"].is_null() => "ignored",
        Ok(Json(a)) => a["status"].as_str().unwrap_or("accepted"),
        Err(e) if e.status() == StatusCode::UNAUTHORIZED => "unauthorized",
        Err(e) if e.status().is_server_error() => "unavailable",
        Err(_) => "invalid",
    };
    crate::metrics::WEBHOOKS.with_label_values(&[outcome]).inc();
    answer
}

async fn receive(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let body = body?;
    // One parse per delivery: a header token is checked before it, a body token after.
    let header = headers.get(HOTTOK_HEADER).map(|h| h.as_bytes());
    if header.is_some_and(|t| !s.tokens.hotmart(t)) {
        return Err(unauthorized(true));
    }
    let received = ingress::receive(&body);
    let body_token_ok =
        |r: &ingress::Received| r.hottok.as_deref().is_some_and(|t| s.tokens.hotmart(t.as_bytes()));
    // Without a valid token a body learns nothing, not even whether it is JSON.
    if header.is_none() && !received.as_ref().is_ok_and(body_token_ok) {
        return Err(unauthorized(false));
    }
    let received = received.map_err(|e| {
        tracing::warn!(reason = %e, "webhook rejected: not JSON");
        refuse(StatusCode::BAD_REQUEST, "invalid_payload", e.to_string())
    })?;
    if let (Ingress::Direct, Ok(ev)) = (s.settings.http.ingress, &received.event)
        && let Some(wf) = ev.workflow_key().filter(|_| ev.affects_access()).map(|k| k.workflow_id())
    {
        return direct(&s, &wf, ev.clone()).await;
    }
    if let (Some(ps), Ok(ev)) = (&s.pubsub, &received.event) {
        match journal::route(&s.docs, ev).await {
            Ok(Ok(Some(wf))) => return publish(&s, ps, &wf, ev, &received.stored).await,
            // Concerns no workflow, or cannot be routed yet: the store's journal keeps it.
            Ok(_) => {}
            Err(e) => {
                tracing::error!(event_id = %ev.id, error = %format!("{e:#}"), "routing lookup failed");
                return Err(unavailable());
            }
        }
    }
    let (key, event_name) = (received.key.clone(), received.event_name.clone().unwrap_or_default());
    match journal::store(&s.docs, received).await {
        Ok(j) => {
            if j.appended == Appended::New {
                crate::metrics::JOURNAL_APPENDED.inc();
                if j.workflow_id.is_some() {
                    s.wake.notify_one();
                }
            }
            let status = match (&j.quarantined, j.appended) {
                (Some(_), Appended::New) => "quarantined",
                (_, Appended::New) => "accepted",
                (_, Appended::Duplicate { .. }) => "duplicate",
            };
            let wf = j.workflow_id.as_deref().unwrap_or("-");
            match &j.quarantined {
                Some(reason) => {
                    tracing::warn!(event_id = %j.key, event = %event_name, %reason, status, "webhook journaled and quarantined")
                }
                None => {
                    tracing::info!(event_id = %j.key, event = %event_name, workflow_id = wf, status, "webhook journaled")
                }
            }
            let mut answer = json!({"status": status, "event_id": j.key, "workflow_id": j.workflow_id});
            if let Some(reason) = j.quarantined {
                answer["reason"] = reason.into();
            }
            Ok(Json(answer))
        }
        Err(e) => {
            // Not journaled: a 5xx makes Hotmart resend.
            tracing::error!(event_id = %key, error = %e, "journal write failed");
            Err(unavailable())
        }
    }
}

fn unavailable() -> ApiError {
    refuse(StatusCode::SERVICE_UNAVAILABLE, "journal_unavailable", "event not stored; resend later")
}

/// The Pub/Sub journal: the 2xx means Pub/Sub has the event.
async fn publish(
    s: &AppState,
    pubsub: &crate::pubsub::PubSub,
    workflow_id: &str,
    event: &HotmartEvent,
    stored: &str,
) -> ApiResult<Json<Value>> {
    let id = event.id.to_string();
    if let Err(e) = pubsub.publish(&id, workflow_id, stored).await {
        tracing::error!(event_id = %id, error = %format!("{e:#}"), "Pub/Sub publish failed");
        return Err(unavailable());
    }
    // Later events that name only the subscriber find this workflow through the index;
    // without it they would be quarantined, so a failure asks for a resend (published
    // twice at worst, which the workflow ignores).
    if let Err(e) = s.docs.remember_subscriber(event, workflow_id).await {
        tracing::error!(event_id = %id, error = %format!("{e:#}"), "subscriber index not updated");
        return Err(unavailable());
    }
    crate::metrics::JOURNAL_APPENDED.inc();
    tracing::info!(event_id = %id, event = %event.kind, workflow_id, "webhook published to Pub/Sub");
    Ok(Json(json!({"status": "accepted", "event_id": id, "workflow_id": workflow_id})))
}

/// The direct ingress: the 2xx means Temporal has the event.
async fn direct(s: &AppState, workflow_id: &str, event: HotmartEvent) -> ApiResult<Json<Value>> {
    let (id, kind) = (event.id.clone(), event.kind.clone());
    let sent = match s.temporal.client().await {
        Ok(client) => crate::forwarder::signal_with_start(client, &s.settings, workflow_id, event).await,
        Err(e) => Err(e),
    };
    match sent {
        Ok(()) => {
            tracing::info!(event_id = %id, event = %kind, workflow_id, "webhook signalled");
            Ok(Json(json!({"status": "accepted", "event_id": id, "workflow_id": workflow_id})))
        }
        Err(e) => {
            tracing::error!(event_id = %id, error = %e, "signal-with-start failed");
            Err(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporal_unavailable",
                "event not delivered; resend later",
            ))
        }
    }
}
