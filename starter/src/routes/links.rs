//! `/api/links`: course links, through the one links service.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tollgate_domain::duration::format_secs;
use tollgate_domain::{AccessPolicy, CourseLink};
use utoipa::{IntoParams, ToSchema};

use super::{PageQuery, product_path};
use crate::auth::Staff;
use crate::error::{ApiError, ApiResult, Body, ErrorBody, Params};
use crate::links::{FanOut, LinkError, LinkInput};
use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/links", get(list_links).post(create_link))
        .route("/api/links/{product_id}", get(get_link).put(put_link).delete(delete_link))
}

impl From<LinkError> for ApiError {
    fn from(e: LinkError) -> Self {
        match e {
            LinkError::Invalid(fields) => ApiError::invalid(fields),
            LinkError::NotFound(_) => ApiError::not_found(e.to_string()),
            LinkError::Exists(_) => {
                ApiError::new(StatusCode::CONFLICT, "already_exists", format!("{e}; use PUT to change it"))
            }
            LinkError::ConfirmationRequired(ref impact) => {
                let details = json!(impact);
                ApiError::new(
                    StatusCode::CONFLICT,
                    "confirmation_required",
                    format!("{e}; repeat with ?confirm=true"),
                )
                .with_details(details)
            }
            LinkError::TalentLmsUnavailable(detail) => ApiError::internal(
                StatusCode::BAD_GATEWAY,
                "talentlms_unavailable",
                "TalentLMS did not answer whether the courses exist; try again",
                &detail,
            ),
            LinkError::Store(e) => e.into(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LinkView {
    product_id: i64,
    courses: Vec<String>,
    policy: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    term: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    grace: Option<String>,
    /// Hotmart's name of the product, once a webhook, an import or a reconciliation told it.
    #[serde(skip_serializing_if = "Option::is_none")]
    product_name: Option<String>,
    /// After a create or replace: the workflows the change was sent to.
    #[serde(skip_serializing_if = "Option::is_none")]
    workflows: Option<FanOut>,
}

impl From<&CourseLink> for LinkView {
    fn from(l: &CourseLink) -> Self {
        let (policy, term, grace) = match &l.policy {
            AccessPolicy::Lifetime => ("lifetime", None, None),
            AccessPolicy::FixedTerm { term_secs } => ("fixed_term", Some(format_secs(*term_secs)), None),
            AccessPolicy::Subscription { grace_secs } => {
                ("subscription", None, Some(format_secs(*grace_secs)))
            }
        };
        Self {
            product_id: l.product_id.0,
            courses: l.courses.clone(),
            policy: policy.into(),
            term,
            grace,
            product_name: None,
            workflows: None,
        }
    }
}

impl From<(CourseLink, FanOut)> for LinkView {
    fn from((link, fan_out): (CourseLink, FanOut)) -> Self {
        Self { workflows: Some(fan_out), ..Self::from(&link) }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LinkPage {
    items: Vec<LinkView>,
    /// Pass as `after` for the next page; absent on the last page.
    next: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ConfirmQuery {
    /// Required (`true`) when the change removes courses: their students are unenrolled.
    #[serde(default)]
    confirm: bool,
}

/// List course links, ordered by product id.
#[utoipa::path(get, path = "/api/links", params(PageQuery), responses(
    (status = 200, body = LinkPage), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_links(
    _: Staff,
    State(s): State<AppState>,
    Params(q): Params<PageQuery>,
) -> ApiResult<Json<LinkPage>> {
    let limit = q.limit()?;
    let after = match &q.after {
        Some(a) => Some(product_path(a)?),
        None => None,
    };
    let mut links = s.links.page(after, limit + 1).await?;
    let more = links.len() > limit;
    links.truncate(limit);
    let next = more.then(|| links.last().map(|l| l.product_id.to_string())).flatten();
    let names: std::collections::HashMap<i64, String> =
        s.docs.product_names().await?.into_iter().map(|(p, n)| (p.0, n)).collect();
    let items = links
        .iter()
        .map(|l| LinkView { product_name: names.get(&l.product_id.0).cloned(), ..LinkView::from(l) })
        .collect();
    Ok(Json(LinkPage { items, next }))
}

/// Create a course link. Course ids are checked in TalentLMS; releases purchases of the
/// product waiting for it.
#[utoipa::path(post, path = "/api/links", request_body = LinkInput, responses(
    (status = 201, body = LinkView), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody),
    (status = 422, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn create_link(
    _: Staff,
    State(s): State<AppState>,
    Body(input): Body<LinkInput>,
) -> ApiResult<(StatusCode, Json<LinkView>)> {
    let created = s.links.create(input).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// Read one course link.
#[utoipa::path(get, path = "/api/links/{product_id}", params(("product_id" = i64, Path)), responses(
    (status = 200, body = LinkView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_link(
    _: Staff,
    State(s): State<AppState>,
    Path(product): Path<String>,
) -> ApiResult<Json<LinkView>> {
    let link = s.links.get(product_path(&product)?).await?;
    let product_name =
        s.docs.product_names().await?.into_iter().find(|(p, _)| *p == link.product_id).map(|(_, n)| n);
    Ok(Json(LinkView { product_name, ..LinkView::from(&link) }))
}

/// Replace a course link. Added courses are enrolled for the product's active students;
/// removed courses are unenrolled, which needs `?confirm=true`.
#[utoipa::path(put, path = "/api/links/{product_id}", params(("product_id" = i64, Path), ConfirmQuery),
    request_body = LinkInput, responses(
    (status = 200, body = LinkView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody, description = "removes courses; repeat with ?confirm=true"),
    (status = 422, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn put_link(
    _: Staff,
    State(s): State<AppState>,
    Path(product): Path<String>,
    Params(c): Params<ConfirmQuery>,
    Body(input): Body<LinkInput>,
) -> ApiResult<Json<LinkView>> {
    let product = product_path(&product)?;
    Ok(Json(s.links.replace(product, input, c.confirm).await?.into()))
}

/// Delete a course link. Students already enrolled keep their access (their workflows
/// keep the last link they saw); new purchases of the product wait for a link.
#[utoipa::path(delete, path = "/api/links/{product_id}", params(("product_id" = i64, Path)), responses(
    (status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_link(
    _: Staff,
    State(s): State<AppState>,
    Path(product): Path<String>,
) -> ApiResult<StatusCode> {
    s.links.delete(product_path(&product)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
