//! `GET /healthz`: liveness, the journal's size and backlog, and its quarantine (how many
//! deliveries wait for a parser that reads them, and how long the oldest has waited).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use tollgate_store::now_ms;

use crate::error::{ApiError, ApiResult};
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz))
}

async fn healthz(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    let read = async { anyhow::Ok((s.docs.journal_counts().await?, s.docs.quarantine_stats().await?)) };
    match read.await {
        Ok(((entries, pending), q)) => Ok(Json(json!({
            "status": "ok",
            "journal": {
                "entries": entries,
                "pending": pending,
                "quarantined": q.count,
                "oldest_quarantined_age_secs": q.oldest_received_at.map(|at| (now_ms() - at).max(0) / 1000),
            }
        }))),
        Err(e) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "degraded", format!("journal: {e}"))),
    }
}
