//! `/api/v1`: TalentLMS endpoints behind one middleware that does what the real service
//! does around every call (auth, rate limit, headers) plus the injected faults.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use rand::Rng;
use serde_json::json;

use crate::state::{ApiError, ApiResult, parse_args};
use crate::{FaultConfig, Sim};

type Args = BTreeMap<String, String>;

pub(crate) fn router(sim: Arc<Sim>) -> Router<Arc<Sim>> {
    Router::new()
        .route("/usersignup", post(signup))
        .route("/users", get(list_users))
        .route("/users/{args}", get(find_user))
        .route("/addusertocourse", post(enroll))
        .route("/removeuserfromcourse/{args}", get(unenroll))
        .route("/courses", get(list_courses))
        .route("/courses/{args}", get(get_course))
        .route("/getuserstatusincourse/{args}", get(status_in_course))
        .route("/usersetstatus/{args}", get(set_status))
        .route("/ratelimit", get(ratelimit))
        .fallback(|| async { ApiError::invalid(StatusCode::NOT_FOUND, "Invalid API endpoint") })
        .layer(middleware::from_fn_with_state(sim, gate))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

fn reply(result: ApiResult) -> Response {
    match result {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The `key:value,...` segment, still percent-encoded (see `parse_args`).
fn raw_args(uri: &Uri) -> &str {
    uri.path().rsplit('/').next().unwrap_or("")
}

fn form_args(form: Result<Form<Args>, FormRejection>) -> Result<Args, ApiError> {
    form.map(|Form(f)| f).map_err(|_| ApiError::bad_args())
}

async fn signup(State(sim): State<Arc<Sim>>, form: Result<Form<Args>, FormRejection>) -> Response {
    reply(form_args(form).and_then(|f| sim.lock().db.signup(&f)))
}

async fn list_users(State(sim): State<Arc<Sim>>) -> Response {
    reply(sim.lock().db.list_users())
}

async fn find_user(State(sim): State<Arc<Sim>>, uri: Uri) -> Response {
    reply(parse_args(raw_args(&uri)).and_then(|a| sim.lock().db.find_user(&a)))
}

async fn enroll(State(sim): State<Arc<Sim>>, form: Result<Form<Args>, FormRejection>) -> Response {
    reply(form_args(form).and_then(|f| sim.lock().db.enroll(&f)))
}

async fn unenroll(State(sim): State<Arc<Sim>>, uri: Uri) -> Response {
    reply(parse_args(raw_args(&uri)).and_then(|a| sim.lock().db.unenroll(&a)))
}

async fn list_courses(State(sim): State<Arc<Sim>>) -> Response {
    reply(sim.lock().db.list_courses())
}

async fn get_course(State(sim): State<Arc<Sim>>, uri: Uri) -> Response {
    reply(parse_args(raw_args(&uri)).and_then(|a| sim.lock().db.get_course(&a)))
}

async fn status_in_course(State(sim): State<Arc<Sim>>, uri: Uri) -> Response {
    reply(parse_args(raw_args(&uri)).and_then(|a| sim.lock().db.status_in_course(&a)))
}

async fn set_status(State(sim): State<Arc<Sim>>, uri: Uri) -> Response {
    reply(parse_args(raw_args(&uri)).and_then(|a| sim.lock().db.set_status(&a)))
}

async fn ratelimit(State(sim): State<Arc<Sim>>) -> Response {
    let now = Instant::now();
    let mut s = sim.lock();
    let reset = epoch_secs(s.window.reset_at(now));
    let formatted = chrono::DateTime::from_timestamp(reset as i64, 0)
        .map(|t| t.format("%d/%m/%Y, %H:%M:%S").to_string())
        .unwrap_or_default();
    axum::Json(json!({
        "limit": s.window.limit().to_string(),
        "remaining": s.window.remaining(now).to_string(),
        "reset": reset.to_string(),
        "formatted_reset": formatted,
    }))
    .into_response()
}

/// Rounds up so a client that waits until the reset is never early.
fn epoch_secs(at: Instant) -> u64 {
    let now = Instant::now();
    let wall = if at >= now { SystemTime::now() + (at - now) } else { SystemTime::now() - (now - at) };
    let d = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn authorized(headers: &HeaderMap, key: &str) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some((scheme, creds)) = value.split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    base64::engine::general_purpose::STANDARD
        .decode(creds.trim())
        .is_ok_and(|raw| raw == format!("{key}:").as_bytes())
}

/// What the faults decided for one call, drawn up front so no RNG lives across an await.
struct Plan {
    delay: Duration,
    before: Option<ApiError>,
    fail_after_commit: bool,
    html_after_commit: bool,
}

fn roll(rng: &mut impl Rng, p: f64) -> bool {
    p > 0.0 && rng.random::<f64>() < p
}

fn plan(f: &FaultConfig, endpoint: &str) -> Plan {
    let none = FaultConfig::default();
    let f = if f.only.is_empty() || f.only.iter().any(|e| e == endpoint) { f } else { &none };
    let mut rng = rand::rng();
    let mut delay = Duration::from_millis(f.latency_ms);
    if roll(&mut rng, f.slow_rate) {
        delay += Duration::from_millis(f.slow_ms);
    }
    let before = if roll(&mut rng, f.error_rate) {
        Some(match rng.random_range(0..3) {
            0 => ApiError::server(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error"),
            1 => ApiError::server(StatusCode::BAD_GATEWAY, "Bad gateway"),
            _ => ApiError::server(StatusCode::SERVICE_UNAVAILABLE, "Service temporarily unavailable"),
        })
    } else if roll(&mut rng, f.rate_limited_rate) {
        Some(ApiError::invalid(StatusCode::TOO_MANY_REQUESTS, "API rate limit exceeded"))
    } else if roll(&mut rng, f.forbidden_rate) {
        Some(ApiError::invalid(StatusCode::FORBIDDEN, "You do not have permission to access this resource"))
    } else {
        None
    };
    Plan {
        delay,
        before,
        fail_after_commit: roll(&mut rng, f.fail_after_commit_rate),
        html_after_commit: roll(&mut rng, f.html_after_commit_rate),
    }
}

enum Verdict {
    Unauthorized,
    Limited,
    Pass(Plan),
}

async fn gate(State(sim): State<Arc<Sim>>, req: Request, next: Next) -> Response {
    let now = Instant::now();
    let endpoint = req.uri().path().trim_start_matches('/').split('/').next().unwrap_or("").to_owned();
    let is_authorized = authorized(req.headers(), &sim.config.api_key);
    let verdict = {
        let mut s = sim.lock();
        s.stats.total += 1;
        *s.stats.by_endpoint.entry(endpoint.clone()).or_default() += 1;
        s.peak.record(now);
        if !is_authorized {
            Verdict::Unauthorized
        } else if s.window.try_acquire(now).is_err() {
            s.stats.rate_limited += 1;
            Verdict::Limited
        } else {
            Verdict::Pass(plan(&s.faults, &endpoint))
        }
    };

    let mut resp = match verdict {
        Verdict::Unauthorized => {
            tracing::warn!(endpoint, "refused a call with a missing or wrong API key");
            let mut r =
                ApiError::invalid(StatusCode::UNAUTHORIZED, "Invalid API key provided").into_response();
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"TalentLMS\""));
            r
        }
        Verdict::Limited => {
            tracing::info!(endpoint, "rate limit exceeded");
            ApiError::invalid(StatusCode::TOO_MANY_REQUESTS, "API rate limit exceeded").into_response()
        }
        Verdict::Pass(plan) => {
            if !plan.delay.is_zero() {
                tokio::time::sleep(plan.delay).await;
            }
            if let Some(err) = plan.before {
                tracing::info!(endpoint, status = err.status.as_u16(), "injected fault before the call");
                sim.lock().stats.injected += 1;
                let forced_429 = err.status == StatusCode::TOO_MANY_REQUESTS;
                let mut r = err.into_response();
                if forced_429 {
                    // Looks like a limit hit that clears in a second.
                    set_rate_headers(
                        r.headers_mut(),
                        None,
                        0,
                        epoch_secs(Instant::now() + Duration::from_secs(1)),
                    );
                }
                r
            } else {
                let r = next.run(req).await;
                if plan.fail_after_commit && r.status().is_success() {
                    tracing::info!(endpoint, "injected fault after the call committed");
                    sim.lock().stats.injected += 1;
                    ApiError::server(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
                        .into_response()
                } else if plan.html_after_commit && r.status().is_success() {
                    tracing::info!(endpoint, "injected an HTML page after the call committed");
                    sim.lock().stats.injected += 1;
                    (
                        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                        "<html><body><h1>We'll be back soon</h1><p>Scheduled maintenance.</p></body></html>",
                    )
                        .into_response()
                } else {
                    r
                }
            }
        }
    };

    let (limit, remaining, reset) = {
        let mut s = sim.lock();
        let now = Instant::now();
        (s.window.limit(), s.window.remaining(now), epoch_secs(s.window.reset_at(now)))
    };
    set_rate_headers(resp.headers_mut(), Some(limit), remaining, reset);
    tracing::debug!(endpoint, status = resp.status().as_u16(), "api call");
    resp
}

/// Sets the X-RateLimit headers, keeping any already set (an injected 429 sets its own).
fn set_rate_headers(h: &mut HeaderMap, limit: Option<u32>, remaining: u32, reset: u64) {
    let mut put = |name: &'static str, v: String| {
        h.entry(name).or_insert(HeaderValue::from_str(&v).expect("digits"));
    };
    if let Some(limit) = limit {
        put("x-ratelimit-limit", limit.to_string());
    }
    put("x-ratelimit-remaining", remaining.to_string());
    put("x-ratelimit-reset", reset.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_needs_the_key_and_an_empty_password() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            h
        };
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert!(authorized(&with(&format!("Basic {}", b64("k1:"))), "k1"));
        assert!(!authorized(&with(&format!("Basic {}", b64("k1:x"))), "k1"));
        assert!(!authorized(&with(&format!("Basic {}", b64("k2:"))), "k1"));
        assert!(!authorized(&with(&format!("Bearer {}", b64("k1:"))), "k1"));
        assert!(!authorized(&HeaderMap::new(), "k1"));
    }

    #[test]
    fn certain_faults_always_fire_and_zero_never() {
        let always =
            FaultConfig { error_rate: 1.0, fail_after_commit_rate: 1.0, latency_ms: 7, ..Default::default() };
        for _ in 0..50 {
            let p = plan(&always, "users");
            assert!(p.before.as_ref().is_some_and(|e| e.status.is_server_error()));
            assert!(p.fail_after_commit);
            assert_eq!(p.delay, Duration::from_millis(7));
            let p = plan(&FaultConfig::default(), "users");
            assert!(p.before.is_none() && !p.fail_after_commit && p.delay.is_zero());
        }
    }

    #[test]
    fn faults_limited_to_endpoints_spare_the_others() {
        let only = FaultConfig {
            forbidden_rate: 1.0,
            html_after_commit_rate: 1.0,
            only: vec!["users".into()],
            ..Default::default()
        };
        let hit = plan(&only, "users");
        assert_eq!(hit.before.map(|e| e.status), Some(StatusCode::FORBIDDEN));
        assert!(hit.html_after_commit);
        let spared = plan(&only, "addusertocourse");
        assert!(spared.before.is_none() && !spared.html_after_commit);
    }
}
