//! The staff REST API: course links and student lookup, on the same server as the
//! webhook. Bearer auth (`TOLLGATE_API_TOKEN`), JSON errors, cursor pagination, and an
//! OpenAPI document generated from these handlers (`/openapi.json`, browsable at `/docs`).
//!
//! Link changes reach students through Temporal: the product's running workflows get a
//! `link_changed` signal and reconcile TalentLMS themselves; the API never enrolls.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::json;
use subtle::ConstantTimeEq;
use tollgate_domain::duration::{format_secs, parse_secs};
use tollgate_domain::hotmart::Email;
use tollgate_domain::{AccessPolicy, CourseLink, ProductId};
use tollgate_store::{DocStore, StoreError, StudentAccess};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::ops;

#[derive(Clone)]
pub struct ApiState {
    pub docs: DocStore,
    pub settings: tollgate_activities::config::Settings,
    pub token: Arc<[u8]>,
    /// Verifies course ids exist; `None` skips the check (no TalentLMS configured).
    pub talentlms: Option<talentlms::Client>,
}

pub fn router(state: ApiState) -> axum::Router {
    axum::Router::new()
        .route("/api/links", get(list_links).post(create_link))
        .route("/api/links/{product_id}", get(get_link).put(put_link).delete(delete_link))
        .route("/api/products/{product_id}/subscriptions", get(product_subscriptions))
        .route("/api/students", get(student))
        .route("/openapi.json", get(openapi))
        .route("/docs", get(docs_page))
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Tollgate staff API", description = "Course links and student lookup. Bearer token auth."),
    paths(list_links, create_link, get_link, put_link, delete_link, product_subscriptions, student),
    components(schemas(LinkBody, LinkView, LinkPage, AccessView, AccessPage, StudentView, ApiError)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        doc.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
    }
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

async fn docs_page() -> Html<&'static str> {
    // Scalar's viewer renders /openapi.json; it is loaded from its CDN by the browser.
    Html(
        r#"<!doctype html><html><head><title>Tollgate API</title><meta charset="utf-8"/></head>
<body><script id="api-reference" data-url="/openapi.json"></script>
<script src="https://cdn.jsdelivr.net/npm/@scalar/api-reference"></script></body></html>"#,
    )
}

// ---- errors -------------------------------------------------------------------------

/// Every error body: a machine code, a human message, and per-field reasons for 422.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiError {
    error: String,
    message: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    fields: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<serde_json::Value>,
}

pub struct Failure(StatusCode, ApiError);

impl Failure {
    fn new(status: StatusCode, error: &str, message: impl Into<String>) -> Self {
        Self(
            status,
            ApiError { error: error.into(), message: message.into(), fields: BTreeMap::new(), details: None },
        )
    }
    fn invalid(fields: BTreeMap<String, String>) -> Self {
        let mut f =
            Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "some fields are invalid");
        f.1.fields = fields;
        f
    }
    fn not_found(what: String) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        tracing::error!(error = %e, "API request failed");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", format!("{e:#}"))
    }
}

type ApiResult<T> = Result<T, Failure>;

/// The `Authorization: Bearer` token of a request, if any.
pub(crate) fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Extractor that admits only requests with the right bearer token.
pub struct Staff;

impl FromRequestParts<ApiState> for Staff {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Failure> {
        match bearer(parts) {
            Some(t) if !state.token.is_empty() && bool::from(t.as_bytes().ct_eq(&state.token)) => Ok(Staff),
            _ => Err(Failure::new(StatusCode::UNAUTHORIZED, "unauthorized", "missing or wrong bearer token")),
        }
    }
}

// ---- links --------------------------------------------------------------------------

/// A course link as staff write it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LinkBody {
    /// Hotmart product id (only on create; the path names it on update).
    #[serde(default)]
    product_id: Option<i64>,
    /// TalentLMS course ids the product unlocks.
    #[serde(default)]
    courses: Vec<String>,
    /// `lifetime`, `fixed_term` or `subscription`.
    #[serde(default)]
    policy: String,
    /// Access length for `fixed_term`, e.g. `365d`.
    #[serde(default)]
    term: Option<String>,
    /// Grace after a missed renewal for `subscription`, e.g. `3d` (default `3d`).
    #[serde(default)]
    grace: Option<String>,
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
        Self { product_id: l.product_id.0, courses: l.courses.clone(), policy: policy.into(), term, grace }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LinkPage {
    items: Vec<LinkView>,
    /// Pass as `after` for the next page; absent on the last page.
    next: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PageQuery {
    /// Page size, 1..=200 (default 50).
    limit: Option<usize>,
    /// Cursor from the previous page's `next`.
    after: Option<String>,
}

impl PageQuery {
    fn limit(&self) -> ApiResult<usize> {
        match self.limit {
            None => Ok(50),
            Some(n @ 1..=200) => Ok(n),
            Some(_) => {
                Err(Failure::invalid(BTreeMap::from([("limit".into(), "must be between 1 and 200".into())])))
            }
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ConfirmQuery {
    /// Required (`true`) when the change removes courses: their students are unenrolled.
    #[serde(default)]
    confirm: bool,
}

/// Parses and checks a body into a link; every problem is reported per field.
async fn validate(state: &ApiState, product: Option<i64>, body: LinkBody) -> ApiResult<CourseLink> {
    let mut fields = BTreeMap::new();
    let product = match product.or(body.product_id) {
        Some(p) if p > 0 => Some(ProductId(p)),
        Some(_) => {
            fields.insert("product_id".into(), "must be a positive Hotmart product id".into());
            None
        }
        None => {
            fields.insert("product_id".into(), "is required".into());
            None
        }
    };
    let mut courses: Vec<String> = body.courses.iter().map(|c| c.trim().to_string()).collect();
    courses.sort();
    courses.dedup();
    if courses.is_empty() {
        fields.insert("courses".into(), "at least one TalentLMS course id is required".into());
    } else if let Some(bad) =
        courses.iter().find(|c| c.is_empty() || !c.chars().all(|ch| ch.is_ascii_digit()))
    {
        fields.insert("courses".into(), format!("{bad:?} is not a TalentLMS course id"));
    }
    let duration = |v: &Option<String>, name: &str, fields: &mut BTreeMap<String, String>| match v {
        Some(t) => match parse_secs(t) {
            Ok(0) => {
                fields.insert(name.into(), "must be longer than zero".into());
                None
            }
            Ok(s) => Some(s),
            Err(e) => {
                fields.insert(name.into(), e);
                None
            }
        },
        None => None,
    };
    let policy = match body.policy.as_str() {
        "lifetime" => Some(AccessPolicy::Lifetime),
        "fixed_term" => match duration(&body.term, "term", &mut fields) {
            Some(term_secs) => Some(AccessPolicy::FixedTerm { term_secs }),
            None => {
                fields
                    .entry("term".into())
                    .or_insert_with(|| "is required for fixed_term (e.g. 365d)".into());
                None
            }
        },
        "subscription" => {
            let grace = if body.grace.is_some() {
                duration(&body.grace, "grace", &mut fields)
            } else {
                Some(3 * 86_400)
            };
            grace.map(|grace_secs| AccessPolicy::Subscription { grace_secs })
        }
        "" => {
            fields.insert("policy".into(), "is required: lifetime, fixed_term or subscription".into());
            None
        }
        other => {
            fields.insert("policy".into(), format!("{other:?} is not lifetime, fixed_term or subscription"));
            None
        }
    };
    if fields.is_empty() {
        if let Some(client) = &state.talentlms {
            for c in &courses {
                match client.course(&talentlms::CourseId(c.clone())).await {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        fields.insert("courses".into(), format!("course {c} does not exist in TalentLMS"));
                    }
                    Err(e) => {
                        return Err(Failure::new(
                            StatusCode::BAD_GATEWAY,
                            "talentlms_unavailable",
                            format!("cannot verify course {c}: {e}"),
                        ));
                    }
                }
            }
        }
    }
    match (product, policy) {
        (Some(product_id), Some(policy)) if fields.is_empty() => {
            Ok(CourseLink { product_id, courses, policy })
        }
        _ => Err(Failure::invalid(fields)),
    }
}

fn product_path(raw: &str) -> ApiResult<ProductId> {
    raw.parse::<i64>().ok().filter(|p| *p > 0).map(ProductId).ok_or_else(|| {
        Failure::invalid(BTreeMap::from([("product_id".into(), format!("{raw:?} is not a product id"))]))
    })
}

/// Wakes the product's running workflows and resumes its settled lifetime ones; a
/// failure is reported, not fatal (waiting runs re-check the link on their own).
async fn wake(s: &ApiState, product: ProductId) -> serde_json::Value {
    let signalled = ops::wake_product(product).await;
    let resumed = ops::resume_settled(&s.docs, &s.settings, product).await;
    let mut out = json!({
        "signalled": signalled.as_ref().copied().unwrap_or(0),
        "resumed": resumed.as_ref().copied().unwrap_or(0),
    });
    if let Some(e) = signalled.err().or(resumed.err()) {
        out["warning"] = json!(format!("could not reach every workflow: {e}"));
    }
    out
}

/// List course links, ordered by product id.
#[utoipa::path(get, path = "/api/links", params(PageQuery), responses(
    (status = 200, body = LinkPage), (status = 401, body = ApiError), (status = 422, body = ApiError)))]
async fn list_links(
    _: Staff,
    State(s): State<ApiState>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<LinkPage>> {
    let limit = q.limit()?;
    let after = match &q.after {
        Some(a) => Some(product_path(a)?),
        None => None,
    };
    let mut links = s.docs.links_page(after, limit + 1).await?;
    let more = links.len() > limit;
    links.truncate(limit);
    let next = more.then(|| links.last().map(|l| l.product_id.to_string())).flatten();
    Ok(Json(LinkPage { items: links.iter().map(LinkView::from).collect(), next }))
}

/// Create a course link. Releases purchases of the product waiting for it.
#[utoipa::path(post, path = "/api/links", request_body = LinkBody, responses(
    (status = 201, body = LinkView), (status = 401, body = ApiError), (status = 409, body = ApiError),
    (status = 422, body = ApiError)))]
async fn create_link(_: Staff, State(s): State<ApiState>, Json(body): Json<LinkBody>) -> ApiResult<Response> {
    let link = validate(&s, None, body).await?;
    match s.docs.create_link(link.clone()).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            return Err(Failure::new(
                StatusCode::CONFLICT,
                "already_exists",
                format!("product {} already has a link; use PUT to change it", link.product_id),
            ));
        }
        Err(StoreError::Other(e)) => return Err(e.into()),
    }
    let woke = wake(&s, link.product_id).await;
    let mut view = serde_json::to_value(LinkView::from(&link)).expect("serializable");
    view["workflows"] = woke;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// Read one course link.
#[utoipa::path(get, path = "/api/links/{product_id}", params(("product_id" = i64, Path)), responses(
    (status = 200, body = LinkView), (status = 401, body = ApiError), (status = 404, body = ApiError)))]
async fn get_link(
    _: Staff,
    State(s): State<ApiState>,
    Path(product): Path<String>,
) -> ApiResult<Json<LinkView>> {
    let product = product_path(&product)?;
    let link = s
        .docs
        .link(product)
        .await?
        .ok_or_else(|| Failure::not_found(format!("product {product} has no link")))?;
    Ok(Json(LinkView::from(&link)))
}

/// Replace a course link. Added courses are enrolled for the product's active students;
/// removed courses are unenrolled, which needs `?confirm=true`.
#[utoipa::path(put, path = "/api/links/{product_id}", params(("product_id" = i64, Path), ConfirmQuery),
    request_body = LinkBody, responses(
    (status = 200, body = LinkView), (status = 401, body = ApiError), (status = 404, body = ApiError),
    (status = 409, body = ApiError, description = "removes courses; repeat with ?confirm=true"),
    (status = 422, body = ApiError)))]
async fn put_link(
    _: Staff,
    State(s): State<ApiState>,
    Path(product): Path<String>,
    Query(c): Query<ConfirmQuery>,
    Json(body): Json<LinkBody>,
) -> ApiResult<Json<serde_json::Value>> {
    let product = product_path(&product)?;
    let link = validate(&s, Some(product.0), body).await?;
    let current = s
        .docs
        .link(product)
        .await?
        .ok_or_else(|| Failure::not_found(format!("product {product} has no link")))?;
    let removed: Vec<&String> = current.courses.iter().filter(|c| !link.courses.contains(c)).collect();
    if !removed.is_empty() && !c.confirm {
        let mut f = Failure::new(
            StatusCode::CONFLICT,
            "confirmation_required",
            format!(
                "this removes courses {removed:?}: their students will be unenrolled; repeat with ?confirm=true"
            ),
        );
        f.1.details = Some(json!({"removed_courses": removed}));
        return Err(f);
    }
    s.docs.put_link(link.clone()).await?;
    let mut view = serde_json::to_value(LinkView::from(&link)).expect("serializable");
    view["workflows"] = wake(&s, product).await;
    Ok(Json(view))
}

/// Delete a course link. Students already enrolled keep their access (their workflows
/// keep the last link they saw); new purchases of the product wait for a link.
#[utoipa::path(delete, path = "/api/links/{product_id}", params(("product_id" = i64, Path)), responses(
    (status = 204), (status = 401, body = ApiError), (status = 404, body = ApiError)))]
async fn delete_link(
    _: Staff,
    State(s): State<ApiState>,
    Path(product): Path<String>,
) -> ApiResult<StatusCode> {
    let product = product_path(&product)?;
    match s.docs.delete_link(product).await? {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(Failure::not_found(format!("product {product} has no link"))),
    }
}

// ---- students -----------------------------------------------------------------------

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
    responses((status = 200, body = AccessPage), (status = 401, body = ApiError), (status = 422, body = ApiError)))]
async fn product_subscriptions(
    _: Staff,
    State(s): State<ApiState>,
    Path(product): Path<String>,
    Query(q): Query<PageQuery>,
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
    (status = 200, body = StudentView), (status = 401, body = ApiError), (status = 404, body = ApiError),
    (status = 422, body = ApiError)))]
async fn student(
    _: Staff,
    State(s): State<ApiState>,
    Query(q): Query<StudentQuery>,
) -> ApiResult<Json<StudentView>> {
    let email = Email::parse(&q.email)
        .map_err(|e| Failure::invalid(BTreeMap::from([("email".into(), e.to_string())])))?;
    let rows = s.docs.access_by_email(email.as_str()).await?;
    if rows.is_empty() {
        return Err(Failure::not_found(format!("no purchases for {email}")));
    }
    let client = tollgate_activities::config::temporal_client().await.ok();
    let mut access = Vec::with_capacity(rows.len());
    for r in &rows {
        let live = match &client {
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
