//! Every HTTP route, by resource. The webhook and `/healthz` are always served; the staff
//! API when `TOLLGATE_API_TOKEN` is set; the revenue dashboard when a reader token is.

mod health;
mod journal;
mod links;
mod revenue;
mod students;
mod webhook;

use axum::Json;
use axum::Router;
use axum::response::Html;
use axum::routing::get;
use serde::Deserialize;
use tollgate_domain::ProductId;
use tollgate_warehouse::Warehouse;
use utoipa::{IntoParams, OpenApi};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::startup::AppState;

/// `warehouse` is opened only when someone may read revenue.
pub fn router(state: AppState, warehouse: Option<Warehouse>) -> Router {
    let mut router = webhook::router().merge(health::router());
    if state.tokens.api_enabled() {
        router = router
            .merge(links::router())
            .merge(students::router())
            .merge(journal::router())
            .route("/openapi.json", get(openapi))
            .route("/docs", get(docs_page));
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
        journal::redrive_all
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

async fn docs_page() -> Html<&'static str> {
    // Scalar's viewer renders /openapi.json; it is loaded from its CDN by the browser.
    Html(
        r#"<!doctype html><html><head><title>Tollgate API</title><meta charset="utf-8"/></head>
<body><script id="api-reference" data-url="/openapi.json"></script>
<script src="https://cdn.jsdelivr.net/npm/@scalar/api-reference"></script></body></html>"#,
    )
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
