//! The revenue dashboard (`/dashboard`) and the JSON it reads (`/api/revenue/...`).
//!
//! Readers authenticate with the staff API token or the read-only
//! `TOLLGATE_DASHBOARD_TOKEN`: as a bearer header, or once through `/dashboard?token=..`
//! (or the sign-in form), which sets an HttpOnly cookie and redirects the token out of the
//! URL. Every figure comes from the warehouse; amounts are integer minor units of one
//! currency per request.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::json;
use subtle::ConstantTimeEq;
use tollgate_domain::metrics::{CourseDay, Currency, Day, DayRange, SubscriptionDay};
use tollgate_warehouse::Warehouse;

const PAGE: &str = include_str!("../assets/dashboard.html");
const CHART_JS: &str = include_str!("../assets/chart-4.6.1.umd.min.js");
const COOKIE: &str = "tollgate_dashboard";
/// Default range when none is given: the last 30 days.
const DEFAULT_DAYS: i64 = 30;

#[derive(Clone)]
pub struct DashState {
    pub warehouse: Warehouse,
    /// Tokens that may read revenue (the API token and the dashboard token).
    pub tokens: Arc<Vec<Vec<u8>>>,
}

impl DashState {
    fn admits(&self, presented: &str) -> bool {
        // Every token is compared, so timing does not tell which one matched.
        self.tokens
            .iter()
            .fold(false, |ok, t| ok | (!t.is_empty() && bool::from(presented.as_bytes().ct_eq(t))))
    }
}

pub fn router(state: DashState) -> axum::Router {
    axum::Router::new()
        .route("/dashboard", get(page))
        .route("/dashboard/login", post(login))
        .route("/dashboard/chart.js", get(chart_js))
        .route("/api/revenue/currencies", get(currencies))
        .route("/api/revenue/daily", get(daily))
        .route("/api/revenue/subscriptions", get(subscriptions))
        .with_state(state)
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": code, "message": message.into() }))).into_response()
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// Extractor: a reader with a valid bearer token or dashboard cookie.
pub struct Reader;

impl FromRequestParts<DashState> for Reader {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &DashState) -> Result<Self, Response> {
        match crate::api::bearer(parts).map(str::to_string).or_else(|| cookie_token(&parts.headers)) {
            Some(t) if state.admits(&t) => Ok(Reader),
            _ => Err(error(StatusCode::UNAUTHORIZED, "unauthorized", "missing or wrong token")),
        }
    }
}

fn signed_in(token: &str, to: &str) -> Response {
    let mut res = Redirect::to(to).into_response();
    // The token is only ever one of ours (checked before), so it is a valid cookie value.
    if let Ok(v) = HeaderValue::from_str(&format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/")) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

async fn page(
    State(state): State<DashState>,
    headers: HeaderMap,
    Query(q): Query<std::collections::BTreeMap<String, String>>,
) -> Response {
    if let Some(token) = q.get("token") {
        if !state.admits(token) {
            return (StatusCode::UNAUTHORIZED, Html(login_page("That token is not valid."))).into_response();
        }
        let rest: Vec<String> = q
            .iter()
            .filter(|(k, _)| *k != "token")
            .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
            .collect();
        let to =
            if rest.is_empty() { "/dashboard".to_string() } else { format!("/dashboard?{}", rest.join("&")) };
        return signed_in(token, &to);
    }
    match cookie_token(&headers) {
        Some(t) if state.admits(&t) => Html(PAGE).into_response(),
        _ => (StatusCode::UNAUTHORIZED, Html(login_page(""))).into_response(),
    }
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(State(state): State<DashState>, axum::Form(f): axum::Form<LoginForm>) -> Response {
    if state.admits(f.token.trim()) {
        signed_in(f.token.trim(), "/dashboard")
    } else {
        (StatusCode::UNAUTHORIZED, Html(login_page("That token is not valid."))).into_response()
    }
}

fn login_page(message: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Tollgate · sign in</title>
<style>body{{font:15px system-ui,sans-serif;background:#f5f7fa;display:grid;place-items:center;height:100vh;margin:0}}
form{{background:#fff;border:1px solid #e4e7eb;border-radius:10px;padding:24px;display:grid;gap:10px;min-width:300px}}
input,button{{font:inherit;padding:8px;border-radius:6px;border:1px solid #d2d6dc}}button{{background:#3b5bdb;color:#fff}}
p{{color:#c92a2a;margin:0}}</style></head><body>
<form method="post" action="/dashboard/login"><strong>Tollgate revenue</strong>
<label>Dashboard token <input type="password" name="token" autofocus required></label>
<p>{}</p><button type="submit">Sign in</button></form></body></html>"#,
        html_escape(message)
    )
}

async fn chart_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        CHART_JS,
    )
}

/// `from`/`to` (YYYY-MM-DD, inclusive, UTC; default the last 30 days) and `currency`.
#[derive(Debug, Deserialize)]
pub struct RangeQuery {
    from: Option<String>,
    to: Option<String>,
    currency: Option<String>,
}

impl RangeQuery {
    fn parse(&self) -> Result<(DayRange, Currency), Response> {
        let bad = |field: &str, reason: String| {
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "error": "validation_failed", "message": reason, "field": field })),
            )
                .into_response()
        };
        let today = Day::of_ms(tollgate_store::now_ms());
        let to = match &self.to {
            Some(t) => t.parse::<Day>().map_err(|e| bad("to", e))?,
            None => today,
        };
        let from = match &self.from {
            Some(f) => f.parse::<Day>().map_err(|e| bad("from", e))?,
            None => Day::from_index(to.index() - (DEFAULT_DAYS - 1)),
        };
        let range = DayRange::new(from, to).map_err(|e| bad("from", e))?;
        let currency = self
            .currency
            .as_deref()
            .ok_or_else(|| {
                bad("currency", "currency is required (amounts are never added across currencies)".into())
            })?
            .parse::<Currency>()
            .map_err(|e| bad("currency", e))?;
        Ok((range, currency))
    }
}

#[derive(Serialize)]
struct DailyView {
    currency: Currency,
    /// Digits after the decimal point: `minor / 10^exponent` is the amount.
    exponent: u32,
    from: Day,
    to: Day,
    courses: Vec<CourseDay>,
}

#[derive(Serialize)]
struct SubscriptionsView {
    currency: Currency,
    exponent: u32,
    from: Day,
    to: Day,
    days: Vec<SubscriptionDay>,
}

fn unavailable(e: anyhow::Error) -> Response {
    tracing::error!(error = %e, "warehouse query failed");
    error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", format!("{e:#}"))
}

async fn currencies(_: Reader, State(s): State<DashState>) -> Response {
    match s.warehouse.currencies().await {
        Ok(c) => Json(json!({ "currencies": c })).into_response(),
        Err(e) => unavailable(e),
    }
}

async fn daily(_: Reader, State(s): State<DashState>, Query(q): Query<RangeQuery>) -> Response {
    let (range, currency) = match q.parse() {
        Ok(v) => v,
        Err(r) => return r,
    };
    match s.warehouse.course_days(&currency, range).await {
        Ok(courses) => Json(DailyView {
            exponent: tollgate_domain::money::exponent(currency.as_str()),
            currency,
            from: range.from,
            to: range.to,
            courses,
        })
        .into_response(),
        Err(e) => unavailable(e),
    }
}

async fn subscriptions(_: Reader, State(s): State<DashState>, Query(q): Query<RangeQuery>) -> Response {
    let (range, currency) = match q.parse() {
        Ok(v) => v,
        Err(r) => return r,
    };
    match s.warehouse.subscription_days(&currency, range).await {
        Ok(days) => Json(SubscriptionsView {
            exponent: tollgate_domain::money::exponent(currency.as_str()),
            currency,
            from: range.from,
            to: range.to,
            days,
        })
        .into_response(),
        Err(e) => unavailable(e),
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn url_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
