//! `POST /webhooks/hotmart`: authenticate, parse, journal, acknowledge.
//!
//! The 2xx is sent only after the journal commit, so an acknowledged event survives any
//! crash; the forwarder hands it to Temporal afterwards.
//!
//! `TOLLGATE_INGRESS=direct` (opt-in, for the benchmark's comparison) skips the journal
//! for events that concern a purchase: the handler does the forwarder's signal-with-start
//! itself and answers 2xx only once Temporal accepted it (503 otherwise, so Hotmart
//! resends). Resends are then not recognised at the door (the workflow de-duplicates).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tokio::sync::Notify;
use tokio::sync::OnceCell;
use tollgate_activities::config::{Settings, temporal_client};
use tollgate_domain::{HotmartEvent, hotmart};
use tollgate_store::{Appended, DocStore};

pub const MAX_BODY: usize = 1024 * 1024;
pub const HOTTOK_HEADER: &str = "x-hotmart-hottok";

/// How an accepted webhook reaches Temporal.
#[derive(Clone, Default)]
pub enum Ingress {
    /// Journal (committed to disk), answer, and let the forwarder signal Temporal. The default.
    #[default]
    Journal,
    /// Signal-with-start to Temporal within the request; no journal for routable events.
    Direct(Arc<Direct>),
}

pub struct Direct {
    settings: Settings,
    /// Connected on first use, so the starter comes up while Temporal is down (and answers 503).
    client: OnceCell<temporalio_client::Client>,
}

impl Ingress {
    /// `TOLLGATE_INGRESS`: `journal` (default) or `direct`.
    pub fn from_env(settings: &Settings) -> anyhow::Result<Self> {
        match std::env::var("TOLLGATE_INGRESS").ok().as_deref().map(str::trim) {
            None | Some("") | Some("journal") => Ok(Self::Journal),
            Some("direct") => {
                tracing::warn!(
                    "TOLLGATE_INGRESS=direct: webhooks signal Temporal directly, without the journal"
                );
                Ok(Self::Direct(Arc::new(Direct { settings: settings.clone(), client: OnceCell::new() })))
            }
            Some(other) => anyhow::bail!("TOLLGATE_INGRESS: {other:?} is not journal or direct"),
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    docs: DocStore,
    hottok: Arc<[u8]>,
    wake: Arc<Notify>,
    ingress: Ingress,
}

impl AppState {
    pub fn new(docs: DocStore, hottok: &str, wake: Arc<Notify>) -> Self {
        Self { docs, hottok: hottok.as_bytes().into(), wake, ingress: Ingress::Journal }
    }

    pub fn with_ingress(mut self, ingress: Ingress) -> Self {
        self.ingress = ingress;
        self
    }

    fn authentic(&self, presented: Option<&[u8]>) -> bool {
        // Constant time for equal lengths; an empty configured token never matches.
        presented.is_some_and(|p| !self.hottok.is_empty() && bool::from(p.ct_eq(&self.hottok)))
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/webhooks/hotmart", post(hotmart_webhook))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn healthz(State(s): State<AppState>) -> Response {
    match s.docs.journal_counts().await {
        Ok((entries, pending)) => {
            Json(json!({"status": "ok", "journal": {"entries": entries, "pending": pending}})).into_response()
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "degraded", "error": format!("journal: {e}")})),
        )
            .into_response(),
    }
}

use axum::Json;

fn error(status: StatusCode, code: &str, reason: impl Into<String>, field: Option<&str>) -> Response {
    let mut body = json!({"error": code, "reason": reason.into()});
    if let Some(f) = field {
        body["field"] = Value::String(f.into());
    }
    (status, Json(body)).into_response()
}

async fn hotmart_webhook(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let presented = match headers.get(HOTTOK_HEADER) {
        Some(h) => Some(h.as_bytes().to_vec()),
        None => hotmart::body_hottok(&body).map(String::into_bytes),
    };
    if !s.authentic(presented.as_deref()) {
        tracing::warn!(header = presented.is_some(), "webhook rejected: missing or wrong hottok");
        return error(StatusCode::UNAUTHORIZED, "unauthorized", "missing or wrong hottok", None);
    }
    let delivery = match hotmart::parse(&body) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(reason = %e, "webhook rejected: malformed");
            return error(StatusCode::BAD_REQUEST, "invalid_payload", e.to_string(), e.field());
        }
    };
    let event = delivery.event;
    let workflow_id = event.workflow_key().filter(|_| event.affects_access()).map(|k| k.workflow_id());
    if let (Ingress::Direct(d), Some(wf)) = (&s.ingress, &workflow_id) {
        return direct(d, wf, event).await;
    }
    let (id, kind) = (event.id.clone(), event.kind.clone());
    match s.docs.append(event, workflow_id.clone(), delivery.stored_body).await {
        Ok(outcome) => {
            if outcome == Appended::New {
                s.wake.notify_one();
            }
            let status = if outcome == Appended::New { "accepted" } else { "duplicate" };
            tracing::info!(event_id = %id, event = %kind, workflow_id = workflow_id.as_deref().unwrap_or("-"), status, "webhook journaled");
            Json(json!({"status": status, "event_id": id, "workflow_id": workflow_id})).into_response()
        }
        Err(e) => {
            // Not journaled: a 5xx makes Hotmart resend.
            tracing::error!(event_id = %id, error = %e, "journal write failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "journal_unavailable",
                "event not stored; resend later",
                None,
            )
        }
    }
}

/// The direct ingress: the 2xx means Temporal has the event.
async fn direct(d: &Direct, workflow_id: &str, event: HotmartEvent) -> Response {
    let (id, kind) = (event.id.clone(), event.kind.clone());
    let sent = match d.client.get_or_try_init(temporal_client).await {
        Ok(client) => crate::forwarder::signal_with_start(client, &d.settings, workflow_id, event).await,
        Err(e) => Err(e),
    };
    match sent {
        Ok(()) => {
            tracing::info!(event_id = %id, event = %kind, workflow_id, "webhook signalled");
            Json(json!({"status": "accepted", "event_id": id, "workflow_id": workflow_id})).into_response()
        }
        Err(e) => {
            tracing::error!(event_id = %id, error = %e, "signal-with-start failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporal_unavailable",
                "event not delivered; resend later",
                None,
            )
        }
    }
}
