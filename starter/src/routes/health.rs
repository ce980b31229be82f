//! `GET /healthz`: liveness, the journal's size and backlog, and its quarantine (how many
//! deliveries wait for a parser that reads them, and how long the oldest has waited).
//! `GET /readyz`: readiness for load balancers: 200 only while the journal and Temporal
//! both answer (within 2 s), else 503 naming which does not. Webhooks are still taken
//! while Temporal is down (they wait in the journal), so liveness does not depend on it.

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
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::metrics::scrape))
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
            },
            // Several starters on one journal: only the lease holder forwards.
            "forwarder": if crate::metrics::FORWARDER_ACTIVE.get() == 1 { "active" } else { "standby" },
        }))),
        Err(e) => Err(ApiError::internal(
            StatusCode::SERVICE_UNAVAILABLE,
            "degraded",
            "the journal cannot be read",
            &format!("journal: {e:#}"),
        )),
    }
}

const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

async fn readyz(State(s): State<AppState>) -> (StatusCode, Json<Value>) {
    let journal = async { tokio::time::timeout(PROBE_TIMEOUT, s.docs.journal_counts()).await? };
    let temporal = async {
        tokio::time::timeout(PROBE_TIMEOUT, async {
            use futures::StreamExt;
            let client = s.temporal.client().await?;
            // One cheap visibility call: any answer (even an empty page) means reachable.
            let opts = temporalio_client::WorkflowListOptions::builder().limit(1).build();
            match client.list_workflows("WorkflowId = 'tollgate-readyz'", opts).next().await {
                Some(Err(e)) => Err(anyhow::Error::from(e)),
                _ => Ok(()),
            }
        })
        .await?
    };
    let (journal, temporal) = tokio::join!(journal, temporal);
    let check = |r: &anyhow::Result<_>, what: &str| match r {
        Ok(_) => "ok".to_string(),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "readiness: {what} unreachable");
            "unreachable".to_string()
        }
    };
    let body =
        json!({"journal": check(&journal.map(|_| ()), "journal"), "temporal": check(&temporal, "Temporal")});
    let ready = body["journal"] == "ok" && body["temporal"] == "ok";
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(json!({"status": if ready { "ready" } else { "not_ready" }, "checks": body})))
}
