//! The revenue dashboard (`/dashboard`) and the JSON it reads (`/api/revenue/...`).
//!
//! Readers authenticate with the staff API token or the read-only
//! `TOLLGATE_DASHBOARD_TOKEN`: as a bearer header, or once through `/dashboard?token=..`
//! (or the sign-in form), which sets an HttpOnly cookie and redirects the token out of the
//! URL. Every figure comes from the warehouse; amounts are integer minor units of one
//! currency per request.

use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tollgate_domain::metrics::{CourseDay, Currency, Day, DayRange, SubscriptionDay};
use tollgate_warehouse::Warehouse;

use crate::auth::Reader;
use crate::error::{ApiError, ApiResult, Params};
use crate::session;
use crate::startup::AppState;

pub fn router(warehouse: Warehouse) -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(page))
        .route("/dashboard/login", post(login))
        .route("/dashboard/chart.js", get(chart_js))
        .route("/api/revenue/currencies", get(currencies))
        .route("/api/revenue/daily", get(daily))
        .route("/api/revenue/subscriptions", get(subscriptions))
        .layer(Extension(warehouse))
}

const PAGE: &str = include_str!("../../assets/dashboard.html");
const CHART_JS: &str = include_str!("../../assets/chart-4.6.1.umd.min.js");
/// Default range when none is given: the last 30 days.
const DEFAULT_DAYS: i64 = 30;

/// Opens a session for a checked token; the cookie holds the session id, not the token.
pub(crate) fn signed_in(state: &AppState, headers: &HeaderMap, role: session::Role, to: &str) -> Response {
    let id = state.sessions.create(role);
    let mut res = Redirect::to(to).into_response();
    let https = session::over_https(state.settings.http.https, headers);
    res.headers_mut().insert(header::SET_COOKIE, session::set_cookie(&id, https));
    res
}

async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<std::collections::BTreeMap<String, String>>,
) -> Response {
    if let Some(token) = q.get("token") {
        let Some(role) = state.tokens.role(token.as_bytes()) else {
            return (StatusCode::UNAUTHORIZED, Html(login_page("That token is not valid."))).into_response();
        };
        let rest: Vec<String> = q
            .iter()
            .filter(|(k, _)| *k != "token")
            .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
            .collect();
        let to =
            if rest.is_empty() { "/dashboard".to_string() } else { format!("/dashboard?{}", rest.join("&")) };
        return signed_in(&state, &headers, role, &to);
    }
    match state.sessions.of(&headers) {
        Some(_) => Html(PAGE).into_response(),
        None => (StatusCode::UNAUTHORIZED, Html(login_page(""))).into_response(),
    }
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Form(f): axum::Form<LoginForm>,
) -> Response {
    match state.tokens.role(f.token.trim().as_bytes()) {
        Some(role) => signed_in(&state, &headers, role, "/dashboard"),
        None => (StatusCode::UNAUTHORIZED, Html(login_page("That token is not valid."))).into_response(),
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
    fn parse(&self) -> ApiResult<(DayRange, Currency)> {
        let bad = |field: &str, reason: String| ApiError::invalid_field(field, reason);
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
    /// Hotmart's name of each product in `courses` that has one, by product id.
    product_names: std::collections::BTreeMap<String, String>,
}

#[derive(Serialize)]
struct SubscriptionsView {
    currency: Currency,
    exponent: u32,
    from: Day,
    to: Day,
    days: Vec<SubscriptionDay>,
}

async fn currencies(_: Reader, Extension(w): Extension<Warehouse>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "currencies": w.currencies().await? })))
}

async fn daily(
    _: Reader,
    State(s): State<AppState>,
    Extension(w): Extension<Warehouse>,
    Params(q): Params<RangeQuery>,
) -> ApiResult<Json<DailyView>> {
    let (range, currency) = q.parse()?;
    let courses = w.course_days(&currency, range).await?;
    let shown: std::collections::BTreeSet<i64> = courses.iter().map(|c| c.product_id).collect();
    let product_names = s
        .docs
        .product_names()
        .await?
        .into_iter()
        .filter(|(p, _)| shown.contains(&p.0))
        .map(|(p, name)| (p.0.to_string(), name))
        .collect();
    refresh_in_background(&w, range);
    Ok(Json(DailyView {
        product_names,
        exponent: tollgate_domain::money::exponent(currency.as_str()),
        currency,
        from: range.from,
        to: range.to,
        courses,
    }))
}

async fn subscriptions(
    _: Reader,
    Extension(w): Extension<Warehouse>,
    Params(q): Params<RangeQuery>,
) -> ApiResult<Json<SubscriptionsView>> {
    let (range, currency) = q.parse()?;
    let days = w.subscription_days(&currency, range).await?;
    refresh_in_background(&w, range);
    Ok(Json(SubscriptionsView {
        exponent: tollgate_domain::money::exponent(currency.as_str()),
        currency,
        from: range.from,
        to: range.to,
        days,
    }))
}

/// After answering, stores the rollups of the range's closed days that were missing or
/// stale (read live this time), so the next load reads them; one refresh at a time.
fn refresh_in_background(w: &Warehouse, range: DayRange) {
    static RUNNING: AtomicBool = AtomicBool::new(false);
    if RUNNING.swap(true, Ordering::AcqRel) {
        return;
    }
    let w = w.clone();
    tokio::spawn(async move {
        match w.refresh_rollups(range).await {
            Ok(0) => {}
            Ok(days) => tracing::info!(days, "dashboard: rollups refreshed"),
            Err(e) => tracing::warn!(error = %e, "dashboard: rollup refresh failed"),
        }
        RUNNING.store(false, Ordering::Release);
    });
}

pub(crate) fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn url_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
