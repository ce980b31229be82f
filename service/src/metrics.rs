//! `/metrics` in the Prometheus text format. Each binary registers its counters in the
//! `prometheus` crate's default registry (starter: `starter/src/metrics.rs`, worker:
//! `activities/src/metrics.rs`); this renders them, and serves them on the worker's own
//! port together with the Temporal SDK core's metrics.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use subtle::ConstantTimeEq;

use crate::Secret;

/// Whether a scrape may read the metrics: always without `TOLLGATE_METRICS_TOKEN`, else
/// only with `Authorization: Bearer <token>` (compared in constant time).
pub fn allowed(token: Option<&Secret>, headers: &HeaderMap) -> bool {
    let Some(token) = token else { return true };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or("");
    bool::from(presented.as_bytes().ct_eq(token.expose().as_bytes()))
}

/// The answer to a scrape without the metrics token.
pub fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], "metrics token missing or wrong\n")
        .into_response()
}

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
    token: Option<Secret>,
    http: reqwest::Client,
}

/// Serves `/metrics` on `addr` (the worker's `TOLLGATE_WORKER_METRICS_ADDR`) until the
/// process ends; `also` is another exporter's URL whose text is appended; with `token`,
/// only scrapes presenting it as a bearer token are answered.
pub async fn serve(
    addr: SocketAddr,
    also: Option<String>,
    token: Option<Secret>,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let source = Source { also, token, http: reqwest::Client::new() };
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(s): State<Source>, headers: HeaderMap| async move {
                if !allowed(s.token.as_ref(), &headers) {
                    return unauthorized();
                }
                respond(s.also.as_deref(), &s.http).await.into_response()
            }),
        )
        .with_state(source);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });
    Ok(bound)
}
