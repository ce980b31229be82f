//! `/metrics` in the Prometheus text format. Each binary registers its counters in the
//! `prometheus` crate's default registry (starter: `starter/src/metrics.rs`, worker:
//! `activities/src/metrics.rs`); this renders them, and serves them on the worker's own
//! port together with the Temporal SDK core's metrics.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

/// Every metric of the default registry, in the text exposition format.
pub fn render() -> String {
    prometheus::TextEncoder::new().encode_to_string(&prometheus::gather()).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot encode metrics");
        String::new()
    })
}

/// The `/metrics` answer: ours, then (if given) the text of another exporter, such as the
/// Temporal SDK core's on a loopback port, so one scrape target has both.
pub async fn respond(also: Option<&str>, http: &reqwest::Client) -> impl IntoResponse + use<> {
    let mut text = render();
    if let Some(url) = also {
        match http.get(url).send().await.and_then(|r| r.error_for_status()) {
            Ok(r) => text.push_str(&r.text().await.unwrap_or_default()),
            Err(e) => tracing::warn!(error = %e, "the Temporal SDK metrics exporter did not answer"),
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
}

#[derive(Clone)]
struct Source {
    also: Option<String>,
    http: reqwest::Client,
}

/// Serves `/metrics` on `addr` (the worker's `TOLLGATE_WORKER_METRICS_ADDR`) until the
/// process ends; `also` is another exporter's URL whose text is appended.
pub async fn serve(addr: SocketAddr, also: Option<String>) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let source = Source { also, http: reqwest::Client::new() };
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(s): State<Source>| async move { respond(s.also.as_deref(), &s.http).await }),
        )
        .with_state(source);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });
    Ok(bound)
}
