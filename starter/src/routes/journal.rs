//! `/api/journal`: the deliveries the parser could not read (the quarantine), and their
//! redrive once it can.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use serde::Serialize;
use utoipa::ToSchema;

use super::PageQuery;
use crate::auth::Staff;
use crate::error::{ApiError, ApiResult, ErrorBody, Params};
use crate::journal::{self, Redrive};
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/journal/quarantine", get(quarantine))
        .route("/api/journal/redrive", post(redrive_all))
        .route("/api/journal/{id}/redrive", post(redrive_one))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuarantinedView {
    /// The journal key: the envelope id, or `body-<digest>` for a body without one.
    id: String,
    /// Epoch ms.
    received_at: i64,
    event: Option<String>,
    reason: String,
    parser_version: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuarantinePage {
    items: Vec<QuarantinedView>,
    /// Cursor for the next page (`after`).
    next: Option<String>,
}

/// Quarantined deliveries, by id: kept as received, not forwarded, waiting for a redrive.
#[utoipa::path(get, path = "/api/journal/quarantine", params(PageQuery),
    responses((status = 200, body = QuarantinePage), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn quarantine(
    _: Staff,
    State(s): State<AppState>,
    Params(q): Params<PageQuery>,
) -> ApiResult<Json<QuarantinePage>> {
    let limit = q.limit()?;
    let mut rows = s.docs.quarantined(q.after.clone(), limit + 1).await?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = more.then(|| rows.last().map(|r| r.key.clone())).flatten();
    let items = rows
        .into_iter()
        .map(|r| QuarantinedView {
            id: r.key,
            received_at: r.received_at,
            event: r.event_name,
            reason: r.reason,
            parser_version: r.parser_version,
        })
        .collect();
    Ok(Json(QuarantinePage { items, next }))
}

/// Re-reads one quarantined delivery with the current parser; forwarded if it now reads.
#[utoipa::path(post, path = "/api/journal/{id}/redrive", params(("id" = String, Path)),
    responses((status = 200, body = Redrive), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn redrive_one(
    _: Staff,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Redrive>> {
    let report = journal::redrive(&s.docs, Some(id.clone()))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{id} is not quarantined")))?;
    if !report.released.is_empty() {
        s.wake.notify_one();
    }
    Ok(Json(report))
}

/// Re-reads every quarantined delivery with the current parser.
#[utoipa::path(post, path = "/api/journal/redrive",
    responses((status = 200, body = Redrive), (status = 401, body = ErrorBody)))]
pub async fn redrive_all(_: Staff, State(s): State<AppState>) -> ApiResult<Json<Redrive>> {
    let report = journal::redrive(&s.docs, None).await?.unwrap_or_default();
    if !report.released.is_empty() {
        s.wake.notify_one();
    }
    Ok(Json(report))
}
