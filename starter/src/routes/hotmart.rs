//! Run reports: `/api/hotmart/reconciliations` (the Hotmart reconciliation) and
//! `/api/talentlms/audits` (the TalentLMS drift audit).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use tollgate_domain::audit::{AuditReport, REPORT_KIND};

use crate::auth::Staff;
use crate::error::{ApiError, ApiResult, ErrorBody, Params};
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/hotmart/reconciliations", get(reconciliations))
        .route("/api/talentlms/audits", get(audits))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ReportsQuery {
    /// How many, newest first, 1..=100 (default 20).
    limit: Option<usize>,
}

impl ReportsQuery {
    fn limit(&self) -> ApiResult<usize> {
        match self.limit {
            None => Ok(20),
            Some(n @ 1..=100) => Ok(n),
            Some(_) => Err(ApiError::invalid([("limit".into(), "must be between 1 and 100".into())].into())),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReconcileReports {
    /// Newest first: `id`, `started_at_ms`, `finished_at_ms`, `from_ms`, `to_ms`, `dry_run`,
    /// `subscriptions`, `sales`, `checked`, `known`, `missed`, `delivered`,
    /// `missed_by_kind`, `items` (the first 500 differences: `event_id`, `kind`,
    /// `workflow_id`, `transaction`, `product_id`, `email`, `delivered`), `summary`.
    #[schema(value_type = Vec<Object>)]
    items: Vec<serde_json::Value>,
}

/// What each Hotmart reconciliation run found Tollgate had missed, and delivered.
#[utoipa::path(get, path = "/api/hotmart/reconciliations", params(ReportsQuery),
    responses((status = 200, body = ReconcileReports), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn reconciliations(
    _: Staff,
    State(s): State<AppState>,
    Params(q): Params<ReportsQuery>,
) -> ApiResult<Json<ReconcileReports>> {
    let items = crate::hotmart_ops::latest_reports(&s.docs, q.limit()?)
        .await?
        .iter()
        .map(crate::hotmart_ops::report_json)
        .collect();
    Ok(Json(ReconcileReports { items }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditReports {
    /// Newest first: `id`, `started_at_ms`, `finished_at_ms`, `repair`, `courses`,
    /// `enrolled`, `entitled`, `not_entitled`, `not_enrolled`, `missing_courses`,
    /// `enrolled_now`, `unenrolled_now`, `drift` (per course with differences:
    /// `course_id`, `not_entitled` user ids, `not_enrolled` `{user_id, workflow_id}`),
    /// `summary`.
    #[schema(value_type = Vec<Object>)]
    items: Vec<serde_json::Value>,
}

/// What each TalentLMS drift audit found (and repaired) in the linked courses.
#[utoipa::path(get, path = "/api/talentlms/audits", params(ReportsQuery),
    responses((status = 200, body = AuditReports), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn audits(
    _: Staff,
    State(s): State<AppState>,
    Params(q): Params<ReportsQuery>,
) -> ApiResult<Json<AuditReports>> {
    let reports: Vec<AuditReport> = crate::reports::latest(&s.docs, REPORT_KIND, q.limit()?).await?;
    let items = reports.iter().map(|r| crate::reports::with_summary(r, r.summary())).collect();
    Ok(Json(AuditReports { items }))
}
