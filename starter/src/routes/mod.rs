//! Every HTTP route, by resource. The webhook and `/healthz` are always served; the staff
//! API when `TOLLGATE_API_TOKEN` is set; the revenue dashboard when a reader token is.

mod console;
mod health;
mod hotmart;
mod journal;
mod links;
mod revenue;
mod students;
mod webhook;

use axum::Json;
use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde::Deserialize;
use tollgate_domain::ProductId;
use tollgate_warehouse::Warehouse;
use utoipa::{IntoParams, OpenApi};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::startup::AppState;

/// `warehouse` is opened only when someone may read revenue.
pub fn router(state: AppState, warehouse: Option<Warehouse>) -> Router {
    let body_timeout = std::time::Duration::from_secs(state.settings.http.body_timeout_secs);
    let mut router = webhook::router(body_timeout).merge(health::router());
    if state.tokens.api_enabled() {
        router = router
            .merge(links::router())
            .merge(students::router())
            .merge(journal::router())
            .merge(hotmart::router())
            .merge(console::router())
            .route("/openapi.json", get(openapi))
            .route("/docs", get(docs_page))
            .route("/docs/swagger-ui.js", get(|| asset("application/javascript", SWAGGER_JS)))
            .route("/docs/swagger-ui.css", get(|| asset("text/css", SWAGGER_CSS)))
            .route("/docs/init.js", get(|| asset("application/javascript", DOCS_INIT)));
    }
    if let Some(warehouse) = warehouse {
        router = router.merge(revenue::router(warehouse));
    }
    router.with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tollgate staff API",
        description = "Course links, student lookup and the webhook journal's quarantine. Bearer token auth.\n\nEvery error, on every \
                       route of the starter (these, the Hotmart webhook and the revenue dashboard), has \
                       the `ErrorBody` shape: `{\"error\":\"<code>\",\"message\":\"...\"}` plus `reason`, \
                       `field`, `fields` or `details` where they apply."
    ),
    paths(
        links::list_links,
        links::create_link,
        links::get_link,
        links::put_link,
        links::delete_link,
        students::product_subscriptions,
        students::student,
        journal::quarantine,
        journal::redrive_one,
        journal::redrive_all,
        hotmart::reconciliations,
        hotmart::audits
    ),
    components(schemas(
        crate::links::LinkInput,
        crate::links::FanOut,
        links::LinkView,
        links::LinkPage,
        students::AccessView,
        students::AccessPage,
        students::StudentView,
        journal::QuarantinedView,
        journal::QuarantinePage,
        crate::journal::Redrive,
        crate::journal::StillQuarantined,
        hotmart::ReconcileReports,
        hotmart::AuditReports,
        ErrorBody
    )),
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

// Swagger UI, vendored (starter/assets/README.md): the page needs nothing but the starter.
const SWAGGER_JS: &str = include_str!("../../assets/swagger-ui-5.35.0-bundle.js");
const SWAGGER_CSS: &str = include_str!("../../assets/swagger-ui-5.35.0.css");
const DOCS_INIT: &str = include_str!("../../assets/docs-init.js");

async fn docs_page() -> impl IntoResponse {
    (
        // Same-origin only: proves the page needs no CDN (a browser would refuse one).
        [(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'",
        )],
        Html(
            r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Tollgate staff API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="swagger-ui" data-url="/openapi.json"></div>
<script src="/docs/swagger-ui.js"></script><script src="/docs/init.js"></script></body></html>"#,
        ),
    )
}

/// A vendored file, cached for a day (its name carries its version).
pub(crate) async fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=86400")], body)
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
            Some(_) => Err(ApiError::invalid([("limit".into(), "must be between 1 and 200".into())].into())),
        }
    }
}

fn product_path(raw: &str) -> ApiResult<ProductId> {
    raw.parse::<i64>().ok().filter(|p| *p > 0).map(ProductId).ok_or_else(|| {
        ApiError::invalid([("product_id".into(), format!("{raw:?} is not a product id"))].into())
    })
}
