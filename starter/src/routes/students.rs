//! `/api/students` and `/api/products/{id}/subscriptions`: who has access, and why.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tollgate_domain::hotmart::Email;
use tollgate_store::StudentAccess;
use utoipa::{IntoParams, ToSchema};

use super::{PageQuery, product_path};
use crate::auth::Staff;
use crate::error::{ApiError, ApiResult, ErrorBody, Params};
use crate::ops;
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/products/{product_id}/subscriptions", get(product_subscriptions))
        .route("/api/students", get(student))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessView {
    workflow_id: String,
    product_id: i64,
    state: String,
    entitled: bool,
    /// Epoch ms when access ends, if it is finite.
    until: Option<i64>,
    courses: Vec<String>,
    reason: String,
    /// true when read from the running workflow, false when from the stored record.
    live: bool,
}

impl AccessView {
    fn stored(a: &StudentAccess) -> Self {
        Self {
            workflow_id: a.workflow_id.clone(),
            product_id: a.product_id,
            state: a.state.clone(),
            entitled: a.entitled,
            until: a.until,
            courses: a.courses.clone(),
            reason: a.reason.clone(),
            live: false,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessPage {
    items: Vec<AccessView>,
    next: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StudentView {
    email: String,
    talentlms_user_id: Option<String>,
    access: Vec<AccessView>,
}

/// Subscriptions and purchases of one product, from the stored records.
#[utoipa::path(get, path = "/api/products/{product_id}/subscriptions", params(("product_id" = i64, Path), PageQuery),
    responses((status = 200, body = AccessPage), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn product_subscriptions(
    _: Staff,
    State(s): State<AppState>,
    Path(product): Path<String>,
    Params(q): Params<PageQuery>,
) -> ApiResult<Json<AccessPage>> {
    let product = product_path(&product)?;
    let limit = q.limit()?;
    let mut rows = s.docs.access_by_product(product.0, q.after.clone(), limit + 1).await?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = more.then(|| rows.last().map(|r| r.workflow_id.clone())).flatten();
    Ok(Json(AccessPage { items: rows.iter().map(AccessView::stored).collect(), next }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct StudentQuery {
    /// The buyer's email.
    email: String,
}

/// A student's access per purchase/subscription. Running workflows answer their `status`
/// query (the source of truth); finished ones come from the stored record.
#[utoipa::path(get, path = "/api/students", params(StudentQuery), responses(
    (status = 200, body = StudentView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 422, body = ErrorBody)))]
pub async fn student(
    _: Staff,
    State(s): State<AppState>,
    Params(q): Params<StudentQuery>,
) -> ApiResult<Json<StudentView>> {
    let email =
        Email::parse(&q.email).map_err(|e| ApiError::invalid([("email".into(), e.to_string())].into()))?;
    let rows = s.docs.access_by_email(email.as_str()).await?;
    if rows.is_empty() {
        return Err(ApiError::not_found(format!("no purchases for {email}")));
    }
    let client = s.temporal.client().await.ok();
    let mut access = Vec::with_capacity(rows.len());
    for r in &rows {
        let live = match client {
            Some(c) => ops::status(c, &r.workflow_id).await.ok(),
            None => None,
        };
        access.push(match live {
            Some(st) => AccessView {
                workflow_id: r.workflow_id.clone(),
                product_id: r.product_id,
                state: st.state.as_str().into(),
                entitled: st.entitled,
                until: st.until,
                courses: st.enrolled_courses,
                reason: st.reason,
                live: true,
            },
            None => AccessView::stored(r),
        });
    }
    let user = rows.iter().find_map(|r| r.talentlms_user_id.clone());
    Ok(Json(StudentView { email: email.to_string(), talentlms_user_id: user, access }))
}
