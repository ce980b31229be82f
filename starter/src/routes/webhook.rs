//! `POST /webhooks/hotmart`: authenticate, parse, journal, acknowledge.
//!
//! The 2xx is sent only after the journal commit, so an acknowledged event survives any
//! crash; the forwarder hands it to Temporal afterwards.
//!
//! `TOLLGATE_INGRESS=direct` (opt-in, for the benchmark's comparison) skips the journal
//! for events that concern a purchase: the handler does the forwarder's signal-with-start
//! itself and answers 2xx only once Temporal accepted it (503 otherwise, so Hotmart
//! resends). Resends are then not recognised at the door (the workflow de-duplicates).

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use tollgate_domain::{HotmartEvent, hotmart};
use tollgate_service::Ingress;
use tollgate_store::Appended;

use crate::error::{ApiError, ApiResult};
use crate::startup::AppState;

const MAX_BODY: usize = 1024 * 1024;
const HOTTOK_HEADER: &str = "x-hotmart-hottok";

pub fn router() -> Router<AppState> {
    Router::new().route("/webhooks/hotmart", post(hotmart_webhook)).layer(DefaultBodyLimit::max(MAX_BODY))
}

/// Webhook errors carry the message as `reason` too.
fn refuse(status: StatusCode, code: &str, reason: impl Into<String>) -> ApiError {
    ApiError::new(status, code, reason).with_reason()
}

async fn hotmart_webhook(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let body = body?;
    let presented = match headers.get(HOTTOK_HEADER) {
        Some(h) => Some(h.as_bytes().to_vec()),
        None => hotmart::body_hottok(&body).map(String::into_bytes),
    };
    if !presented.as_deref().is_some_and(|p| s.tokens.hotmart(p)) {
        tracing::warn!(header = presented.is_some(), "webhook rejected: missing or wrong hottok");
        return Err(refuse(StatusCode::UNAUTHORIZED, "unauthorized", "missing or wrong hottok"));
    }
    let delivery = hotmart::parse(&body).map_err(|e| {
        tracing::warn!(reason = %e, "webhook rejected: malformed");
        let refused = refuse(StatusCode::BAD_REQUEST, "invalid_payload", e.to_string());
        match e.field() {
            Some(f) => refused.with_field(f),
            None => refused,
        }
    })?;
    let event = delivery.event;
    let workflow_id = event.workflow_key().filter(|_| event.affects_access()).map(|k| k.workflow_id());
    if let (Ingress::Direct, Some(wf)) = (s.settings.http.ingress, &workflow_id) {
        return direct(&s, wf, event).await;
    }
    let (id, kind) = (event.id.clone(), event.kind.clone());
    match s.docs.append(event, workflow_id.clone(), delivery.stored_body).await {
        Ok(outcome) => {
            if outcome == Appended::New {
                s.wake.notify_one();
            }
            let status = if outcome == Appended::New { "accepted" } else { "duplicate" };
            tracing::info!(event_id = %id, event = %kind, workflow_id = workflow_id.as_deref().unwrap_or("-"), status, "webhook journaled");
            Ok(Json(json!({"status": status, "event_id": id, "workflow_id": workflow_id})))
        }
        Err(e) => {
            // Not journaled: a 5xx makes Hotmart resend.
            tracing::error!(event_id = %id, error = %e, "journal write failed");
            Err(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "journal_unavailable",
                "event not stored; resend later",
            ))
        }
    }
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
