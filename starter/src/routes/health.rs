//! `GET /healthz`: liveness and the journal's size and backlog.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz))
}

async fn healthz(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    match s.docs.journal_counts().await {
        Ok((entries, pending)) => {
            Ok(Json(json!({"status": "ok", "journal": {"entries": entries, "pending": pending}})))
        }
        Err(e) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "degraded", format!("journal: {e}"))),
    }
}
