//! A local stand-in for Hotmart's REST API (what Tollgate reads of it): the OAuth token
//! endpoint, the sales history, subscriptions, a subscription's charges and products,
//! with the documented defaults (sales: only APPROVED/COMPLETE without a status filter;
//! subscriptions: the last 30 days of accession without dates), cursor paging, the
//! 500-calls-per-minute limit with its `RateLimit-*` headers, and injected faults (5xx,
//! 429, expired tokens). Seeded from a JSON file ([`School`]) or a seeded generator.
//!
//! Admin API (no auth, never limited) under `/_sim/hotmart`: `GET state`, `POST faults`,
//! `POST expire-tokens`, `POST sales` (upsert one sale), `POST subscriptions` (upsert one
//! subscription with its charges).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::state::RateWindow;

pub const DEFAULT_CLIENT_ID: &str = "dev-hotmart-client";
pub const DEFAULT_CLIENT_SECRET: &str = "dev-hotmart-secret";
const DAY_MS: i64 = 86_400_000;

/// A subscription and every charge of it, in the API's own shapes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    pub subscription: Value,
    #[serde(default)]
    pub purchases: Vec<Value>,
}

/// The account's data, in the API's shapes (a seed file is this as JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct School {
    #[serde(default)]
    pub products: Vec<Value>,
    #[serde(default)]
    pub sales: Vec<Value>,
    #[serde(default)]
    pub subscriptions: Vec<SubscriptionRecord>,
}

/// Product ids of a generated school, one per access policy.
#[derive(Debug, Clone, Copy)]
pub struct SchoolProducts {
    pub lifetime: i64,
    pub fixed_term: i64,
    pub subscription: i64,
}

impl School {
    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// `customers` buyers, each with one purchase: lifetime (approved, complete,
    /// refunded, charged back), fixed-term (bought up to two years ago) or a monthly
    /// subscription (active, overdue, cancelled with time left or run out, inactive, or
    /// with its latest charge refunded). Nothing falls within two days of `now_ms`, so
    /// a test's verdicts do not depend on when it runs. Same seed, same school.
    pub fn generate(customers: usize, seed: u64, now_ms: i64, p: SchoolProducts) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut school = School {
            products: [(p.lifetime, "Lifetime course", false), (p.fixed_term, "One-year course", false), (p.subscription, "Monthly club", true)]
                .iter()
                .map(|(id, name, sub)| json!({"id": id, "name": format!("{name} {id}"), "ucode": format!("u{id}"),
                    "status": "ACTIVE", "format": "ONLINE_COURSE", "is_subscription": sub, "warranty_period": 7}))
                .collect(),
            ..Default::default()
        };
        for i in 0..customers {
            let email = format!("student{i:05}.{seed}@school.example");
            let buyer =
                json!({"name": format!("Student {i}"), "email": email, "ucode": format!("b{seed}-{i}")});
            let kind = rng.random_range(0..100);
            if kind < 30 {
                let status = match rng.random_range(0..100) {
                    0..60 => "APPROVED",
                    60..80 => "COMPLETE",
                    80..92 => "REFUNDED",
                    _ => "CHARGEBACK",
                };
                let at = now_ms - rng.random_range(3..900) * DAY_MS;
                school.sales.push(sale(p.lifetime, &buyer, &format!("HPL{seed}x{i}"), status, at));
            } else if kind < 50 {
                // 365-day term: bought 3..362 days ago is still on, 368..730 is over.
                let days =
                    if rng.random_bool(0.5) { rng.random_range(3..363) } else { rng.random_range(368..730) };
                let status = if rng.random_range(0..10) == 0 { "REFUNDED" } else { "APPROVED" };
                school.sales.push(sale(
                    p.fixed_term,
                    &buyer,
                    &format!("HPF{seed}x{i}"),
                    status,
                    now_ms - days * DAY_MS,
                ));
            } else {
                let code = format!("S{seed}X{i}");
                let charges: i64 = rng.random_range(1..13);
                let (status, next) = match rng.random_range(0..100) {
                    0..45 => ("ACTIVE", now_ms + rng.random_range(3..28) * DAY_MS),
                    45..55 => ("OVERDUE", now_ms - rng.random_range(5..20) * DAY_MS),
                    55..70 => ("CANCELLED_BY_CUSTOMER", now_ms + rng.random_range(3..28) * DAY_MS),
                    70..85 => ("CANCELLED_BY_CUSTOMER", now_ms - rng.random_range(3..200) * DAY_MS),
                    _ => ("INACTIVE", now_ms - rng.random_range(3..200) * DAY_MS),
                };
                let refund_last = rng.random_range(0..100) < 6;
                let first = next - charges * 30 * DAY_MS;
                let purchases: Vec<Value> = (0..charges)
                    .map(|k| {
                        let last = k == charges - 1;
                        json!({"transaction": format!("HPS{seed}x{i}c{k}"), "approved_date": first + k * 30 * DAY_MS,
                               "status": if last && refund_last { "REFUNDED" } else { "APPROVED" },
                               "price": {"value": 49.9, "currency_code": "BRL"}, "payment_type": "CREDIT_CARD",
                               "recurrency_number": k + 1, "under_warranty": false, "purchase_subscription": true})
                    })
                    .collect();
                let subscription = json!({
                    "subscriber_code": code, "subscription_id": 100_000 + i, "status": status,
                    "accession_date": first, "request_date": first, "date_next_charge": next, "trial": false,
                    "transaction": format!("HPS{seed}x{i}c0"),
                    "plan": {"name": "Monthly", "id": 726420, "recurrency_period": 30},
                    "product": {"id": p.subscription, "name": format!("Monthly club {}", p.subscription), "ucode": format!("u{}", p.subscription)},
                    "price": {"value": 49.9, "currency_code": "BRL"},
                    "subscriber": {"name": format!("Student {i}"), "email": email, "ucode": format!("b{seed}-{i}")},
                });
                school.subscriptions.push(SubscriptionRecord { subscription, purchases });
            }
        }
        school
    }
}

/// A one-off sale in the history's shape, approved at `at` (ordered a minute before).
pub fn sale(product: i64, buyer: &Value, transaction: &str, status: &str, at: i64) -> Value {
    let name = match transaction.as_bytes().get(2) {
        Some(b'L') => format!("Lifetime course {product}"),
        _ => format!("One-year course {product}"),
    };
    json!({
        "product": {"id": product, "name": name},
        "buyer": buyer,
        "producer": {"name": "Escola Exemplo", "ucode": "prod1"},
        "purchase": {"transaction": transaction, "order_date": at - 60_000, "approved_date": at, "status": status,
                     "recurrency_number": 1, "is_subscription": false, "commission_as": "PRODUCER",
                     "price": {"value": 197.0, "currency_code": "BRL"},
                     "payment": {"method": "CREDIT_CARD", "installments_number": 1, "type": "CREDIT_CARD"},
                     "offer": {"payment_mode": "PAYMENT", "code": "k2pasun0"}, "warranty_expire_date": at + 7 * DAY_MS},
    })
}

/// Faults applied to API calls (not the token endpoint or the admin API).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HotmartFaults {
    /// Calls answered 500/502/503.
    pub error_rate: f64,
    /// Calls answered 429 as if over the limit.
    pub rate_limited_rate: f64,
    /// Calls answered 401 `token_expired` (the token is dropped, as if it had expired).
    pub expired_token_rate: f64,
}

#[derive(Clone)]
pub struct HotmartConfig {
    pub client_id: String,
    pub client_secret: String,
    pub token_ttl: Duration,
    /// Calls per `rate_window` (Hotmart: 500 per minute).
    pub rate_limit: u32,
    pub rate_window: Duration,
    pub faults: HotmartFaults,
    pub school: School,
}

impl Default for HotmartConfig {
    fn default() -> Self {
        Self {
            client_id: DEFAULT_CLIENT_ID.into(),
            client_secret: DEFAULT_CLIENT_SECRET.into(),
            token_ttl: Duration::from_secs(86_400),
            rate_limit: 500,
            rate_window: Duration::from_secs(60),
            faults: HotmartFaults::default(),
            school: School::default(),
        }
    }
}

impl std::fmt::Debug for HotmartConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotmartConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("rate_limit", &self.rate_limit)
            .field("rate_window", &self.rate_window)
            .field("faults", &self.faults)
            .field("sales", &self.school.sales.len())
            .field("subscriptions", &self.school.subscriptions.len())
            .finish()
    }
}

/// What `GET /_sim/hotmart/state` reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HotmartState {
    pub total_calls: u64,
    pub calls_by_endpoint: BTreeMap<String, u64>,
    pub token_fetches: u64,
    pub rate_limited_calls: u64,
    pub injected_faults: u64,
    /// Most API calls received within any 60-second span.
    pub max_calls_per_minute: u64,
    pub sales: usize,
    pub subscriptions: usize,
    pub faults: HotmartFaults,
}

struct Inner {
    school: School,
    tokens: HashMap<String, Instant>,
    window: RateWindow,
    minute: VecDeque<Instant>,
    state: HotmartState,
    next_token: u64,
}

pub(crate) struct HotmartSim {
    config: HotmartConfig,
    inner: Mutex<Inner>,
}

impl HotmartSim {
    fn new(config: HotmartConfig) -> Self {
        let inner = Inner {
            school: config.school.clone(),
            tokens: HashMap::new(),
            window: RateWindow::new(config.rate_limit, config.rate_window),
            minute: VecDeque::new(),
            state: HotmartState {
                total_calls: 0,
                calls_by_endpoint: BTreeMap::new(),
                token_fetches: 0,
                rate_limited_calls: 0,
                injected_faults: 0,
                max_calls_per_minute: 0,
                sales: 0,
                subscriptions: 0,
                faults: config.faults.clone(),
            },
            next_token: 0,
        };
        Self { config, inner: Mutex::new(inner) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn snapshot(&self) -> HotmartState {
        let s = self.lock();
        HotmartState {
            sales: s.school.sales.len(),
            subscriptions: s.school.subscriptions.len(),
            ..s.state.clone()
        }
    }
}

fn error(status: StatusCode, code: &str, description: &str) -> Response {
    (status, Json(json!({"error": code, "error_description": description}))).into_response()
}

pub(crate) fn router(sim: Arc<HotmartSim>) -> Router {
    let api = Router::new()
        .route("/payments/api/v1/sales/history", get(sales_history))
        .route("/payments/api/v1/subscriptions", get(subscriptions))
        .route("/payments/api/v1/subscriptions/{code}/purchases", get(purchases))
        .route("/products/api/v1/products", get(products))
        .layer(middleware::from_fn_with_state(sim.clone(), gate));
    Router::new()
        .merge(api)
        .route("/security/oauth/token", post(token))
        .route(
            "/_sim/hotmart/state",
            get(|State(s): State<Arc<HotmartSim>>| async move { Json(s.snapshot()) }),
        )
        .route("/_sim/hotmart/faults", post(set_faults))
        .route(
            "/_sim/hotmart/expire-tokens",
            post(|State(s): State<Arc<HotmartSim>>| async move {
                s.lock().tokens.clear();
                Json(json!({"expired": true}))
            }),
        )
        .route(
            "/_sim/hotmart/sales",
            post(|State(s): State<Arc<HotmartSim>>, Json(v): Json<Value>| async move {
                upsert_sale(&mut s.lock().school, v);
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/_sim/hotmart/subscriptions",
            post(|State(s): State<Arc<HotmartSim>>, Json(r): Json<SubscriptionRecord>| async move {
                upsert_subscription(&mut s.lock().school, r);
                StatusCode::NO_CONTENT
            }),
        )
        .with_state(sim)
}

fn upsert_sale(school: &mut School, v: Value) {
    let txn = v.pointer("/purchase/transaction").cloned();
    school.sales.retain(|s| s.pointer("/purchase/transaction") != txn.as_ref());
    school.sales.push(v);
}

fn upsert_subscription(school: &mut School, r: SubscriptionRecord) {
    let code = r.subscription.get("subscriber_code").cloned();
    school.subscriptions.retain(|s| s.subscription.get("subscriber_code") != code.as_ref());
    school.subscriptions.push(r);
}

async fn set_faults(State(sim): State<Arc<HotmartSim>>, Json(f): Json<HotmartFaults>) -> Response {
    sim.lock().state.faults = f.clone();
    Json(f).into_response()
}

async fn token(
    State(sim): State<Arc<HotmartSim>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let c = &sim.config;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.client_id, c.client_secret));
    let auth_ok =
        headers.get("authorization").and_then(|h| h.to_str().ok()) == Some(&format!("Basic {basic}"));
    let ok = auth_ok
        && q.get("grant_type").map(String::as_str) == Some("client_credentials")
        && q.get("client_id") == Some(&c.client_id)
        && q.get("client_secret") == Some(&c.client_secret);
    if !ok {
        return error(StatusCode::UNAUTHORIZED, "invalid_client", "Bad client credentials");
    }
    let mut s = sim.lock();
    s.next_token += 1;
    s.state.token_fetches += 1;
    let value = format!("sim-token-{}-{}", s.next_token, rand::rng().random::<u32>());
    s.tokens.insert(value.clone(), Instant::now() + c.token_ttl);
    Json(json!({"access_token": value, "token_type": "bearer", "expires_in": c.token_ttl.as_secs(), "scope": "read write"}))
        .into_response()
}

/// What Hotmart does around every API call: token, limit, headers; plus injected faults.
async fn gate(State(sim): State<Arc<HotmartSim>>, req: Request, next: Next) -> Response {
    let now = Instant::now();
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::to_string);
    let endpoint = match req.uri().path() {
        p if p.ends_with("/purchases") => "subscription_purchases".to_string(),
        p => p.rsplit('/').next().unwrap_or("").to_string(),
    };
    let (refusal, remaining, reset) = {
        let mut s = sim.lock();
        s.state.total_calls += 1;
        *s.state.calls_by_endpoint.entry(endpoint).or_default() += 1;
        while s.minute.front().is_some_and(|&t| now.duration_since(t) >= Duration::from_secs(60)) {
            s.minute.pop_front();
        }
        s.minute.push_back(now);
        s.state.max_calls_per_minute = s.state.max_calls_per_minute.max(s.minute.len() as u64);
        let mut injected_reset = false;
        let token_ok = bearer.as_ref().and_then(|t| s.tokens.get(t)).map(|exp| now < *exp);
        let faults = s.state.faults.clone();
        let mut rng = rand::rng();
        let refusal = match token_ok {
            None => Some(error(StatusCode::UNAUTHORIZED, "invalid_token", "Invalid access token")),
            Some(false) => Some(error(StatusCode::UNAUTHORIZED, "token_expired", "Access token expired")),
            Some(true) if rng.random_bool(faults.expired_token_rate) => {
                s.state.injected_faults += 1;
                if let Some(t) = &bearer {
                    s.tokens.remove(t);
                }
                Some(error(StatusCode::UNAUTHORIZED, "token_expired", "Access token expired"))
            }
            Some(true) => None,
        };
        let refusal = refusal.or_else(|| match s.window.try_acquire(now) {
            Err(_) => {
                s.state.rate_limited_calls += 1;
                Some(error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", "Rate limit exceeded"))
            }
            Ok(_) if rng.random_bool(faults.rate_limited_rate) => {
                s.state.injected_faults += 1;
                // The window is not really full: a short reset, as after a burst.
                injected_reset = true;
                Some(error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", "Rate limit exceeded"))
            }
            Ok(_) if rng.random_bool(faults.error_rate) => {
                s.state.injected_faults += 1;
                let status = [
                    StatusCode::INTERNAL_SERVER_ERROR,
                    StatusCode::BAD_GATEWAY,
                    StatusCode::SERVICE_UNAVAILABLE,
                ][rng.random_range(0..3)];
                Some(error(status, "server_error", "Try again later"))
            }
            Ok(_) => None,
        });
        let remaining = s.window.remaining(now);
        let reset = match (injected_reset, remaining) {
            (true, _) => Duration::from_secs(1),
            // A free slot now: nothing to wait for.
            (false, 1..) => Duration::ZERO,
            (false, 0) => s.window.reset_at(now).saturating_duration_since(now),
        };
        (refusal, remaining, reset)
    };
    let mut resp = match refusal {
        Some(r) => r,
        None => next.run(req).await,
    };
    let limit = sim.config.rate_limit;
    let reset_secs = reset.as_secs_f64().ceil() as u64;
    let h = resp.headers_mut();
    for (name, value) in [
        ("ratelimit-limit", limit.to_string()),
        ("ratelimit-remaining", remaining.to_string()),
        ("ratelimit-reset", reset_secs.to_string()),
        ("x-ratelimit-limit-minute", limit.to_string()),
        ("x-ratelimit-remaining-minute", remaining.to_string()),
    ] {
        h.insert(name, HeaderValue::from_str(&value).expect("ascii"));
    }
    resp
}

type Params = HashMap<String, String>;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A numeric query parameter; `Err` is the 400 to answer.
fn num(q: &Params, name: &str) -> Result<Option<i64>, Box<Response>> {
    q.get(name)
        .map(|v| {
            v.parse().map_err(|_| {
                Box::new(error(
                    StatusCode::BAD_REQUEST,
                    "invalid_parameter",
                    &format!("{name} is not a number"),
                ))
            })
        })
        .transpose()
}

fn int_at(v: &Value, at: &str) -> Option<i64> {
    v.pointer(at).and_then(Value::as_i64)
}

fn str_at<'a>(v: &'a Value, at: &str) -> Option<&'a str> {
    v.pointer(at).and_then(Value::as_str)
}

/// Cursor paging over an already filtered list. Tokens are opaque to clients.
fn page(items: Vec<Value>, q: &Params) -> Response {
    let max = match num(q, "max_results") {
        Ok(m) => m.unwrap_or(50).clamp(1, 500) as usize,
        Err(e) => return *e,
    };
    let offset = match q.get("page_token") {
        None => 0,
        Some(t) => match t.strip_prefix("cur-").and_then(|n| usize::from_str_radix(n, 16).ok()) {
            Some(o) if o <= items.len() => o,
            _ => return error(StatusCode::BAD_REQUEST, "invalid_parameter", "page_token is not valid"),
        },
    };
    let total = items.len();
    let end = (offset + max).min(total);
    let next = (end < total).then(|| format!("cur-{end:x}"));
    let prev = (offset > 0).then(|| format!("cur-{:x}", offset.saturating_sub(max)));
    Json(json!({
        "items": items[offset..end],
        "page_info": {"total_results": total, "next_page_token": next, "prev_page_token": prev, "results_per_page": max},
    }))
    .into_response()
}

async fn sales_history(State(sim): State<Arc<HotmartSim>>, Query(q): Query<Params>) -> Response {
    let (product, start, end) = match (num(&q, "product_id"), num(&q, "start_date"), num(&q, "end_date")) {
        (Ok(p), Ok(s), Ok(e)) => (p, s, e),
        (Err(r), _, _) | (_, Err(r), _) | (_, _, Err(r)) => return *r,
    };
    let status = q.get("transaction_status").cloned();
    let transaction = q.get("transaction").cloned();
    let items: Vec<Value> = sim
        .lock()
        .school
        .sales
        .iter()
        .filter(|s| {
            let st = str_at(s, "/purchase/status").unwrap_or("");
            // Hotmart's default: only approved and complete sales without a status or transaction filter.
            let status_ok = match (&status, &transaction) {
                (Some(want), _) => want.split(',').any(|w| w.trim() == st),
                (None, Some(_)) => true,
                (None, None) => matches!(st, "APPROVED" | "COMPLETE"),
            };
            let at = int_at(s, "/purchase/order_date").or(int_at(s, "/purchase/approved_date")).unwrap_or(0);
            status_ok
                && transaction.as_deref().is_none_or(|t| str_at(s, "/purchase/transaction") == Some(t))
                && product.is_none_or(|p| int_at(s, "/product/id") == Some(p))
                && start.is_none_or(|t| at >= t)
                && end.is_none_or(|t| at <= t)
        })
        .cloned()
        .collect();
    page(items, &q)
}

async fn subscriptions(State(sim): State<Arc<HotmartSim>>, Query(q): Query<Params>) -> Response {
    let (product, from, to) =
        match (num(&q, "product_id"), num(&q, "accession_date"), num(&q, "end_accession_date")) {
            (Ok(p), Ok(s), Ok(e)) => (p, s, e),
            (Err(r), _, _) | (_, Err(r), _) | (_, _, Err(r)) => return *r,
        };
    // Hotmart's default window: accession in the last 30 days.
    let (from, to) = match (from, to) {
        (None, None) => (Some(now_ms() - 30 * DAY_MS), None),
        other => other,
    };
    let (next_from, next_to) = match (num(&q, "date_next_charge"), num(&q, "end_date_next_charge")) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(r), _) | (_, Err(r)) => return *r,
    };
    let status = q.get("status").cloned();
    let code = q.get("subscriber_code").cloned();
    let items: Vec<Value> = sim
        .lock()
        .school
        .subscriptions
        .iter()
        .map(|r| &r.subscription)
        .filter(|s| {
            let at = int_at(s, "/accession_date").unwrap_or(0);
            product.is_none_or(|p| int_at(s, "/product/id") == Some(p))
                && status
                    .as_deref()
                    .is_none_or(|w| w.split(',').any(|w| Some(w.trim()) == str_at(s, "/status")))
                && code.as_deref().is_none_or(|c| str_at(s, "/subscriber_code") == Some(c))
                && from.is_none_or(|t| at >= t)
                && to.is_none_or(|t| at <= t)
                && next_in(int_at(s, "/date_next_charge"), next_from, next_to)
        })
        .cloned()
        .collect();
    page(items, &q)
}

/// The `date_next_charge` window: a subscription without that date is outside any window.
fn next_in(next: Option<i64>, from: Option<i64>, to: Option<i64>) -> bool {
    if from.is_none() && to.is_none() {
        return true;
    }
    next.is_some_and(|n| from.is_none_or(|f| n >= f) && to.is_none_or(|t| n <= t))
}

async fn purchases(State(sim): State<Arc<HotmartSim>>, Path(code): Path<String>) -> Response {
    let s = sim.lock();
    match s
        .school
        .subscriptions
        .iter()
        .find(|r| str_at(&r.subscription, "/subscriber_code") == Some(code.as_str()))
    {
        Some(r) => Json(r.purchases.clone()).into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found", "Subscription not found"),
    }
}

async fn products(State(sim): State<Arc<HotmartSim>>, Query(q): Query<Params>) -> Response {
    let items = sim.lock().school.products.clone();
    page(items, &q)
}

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    config: HotmartConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let sim = Arc::new(HotmartSim::new(config));
    axum::serve(listener, router(sim)).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

/// Starts a Hotmart simulator on `127.0.0.1:<random port>` in the current runtime.
pub async fn spawn(config: HotmartConfig) -> anyhow::Result<HotmartHandle> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let sim = Arc::new(HotmartSim::new(config));
    let (tx, rx) = oneshot::channel::<()>();
    let app = router(sim.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    Ok(HotmartHandle { addr, sim, shutdown: Some(tx) })
}

/// A running in-process Hotmart simulator. Stops when dropped.
pub struct HotmartHandle {
    addr: SocketAddr,
    sim: Arc<HotmartSim>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl HotmartHandle {
    /// The root every route hangs under (`HOTMART_API_URL`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn client_id(&self) -> &str {
        &self.sim.config.client_id
    }

    pub fn client_secret(&self) -> &str {
        &self.sim.config.client_secret
    }

    pub fn state(&self) -> HotmartState {
        self.sim.snapshot()
    }

    pub fn school(&self) -> School {
        self.sim.lock().school.clone()
    }

    pub fn set_faults(&self, faults: HotmartFaults) {
        self.sim.lock().state.faults = faults;
    }

    /// Every issued token stops working (as at its expiry).
    pub fn expire_tokens(&self) {
        self.sim.lock().tokens.clear();
    }

    pub fn upsert_sale(&self, sale: Value) {
        upsert_sale(&mut self.sim.lock().school, sale);
    }

    pub fn upsert_subscription(&self, record: SubscriptionRecord) {
        upsert_subscription(&mut self.sim.lock().school, record);
    }
}

impl Drop for HotmartHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_school_is_seeded_and_mixed() {
        let p = SchoolProducts { lifetime: 1, fixed_term: 2, subscription: 3 };
        let a = School::generate(500, 7, 1_800_000_000_000, p);
        let b = School::generate(500, 7, 1_800_000_000_000, p);
        assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
        assert_eq!(a.sales.len() + a.subscriptions.len(), 500);
        let statuses: std::collections::BTreeSet<_> =
            a.subscriptions.iter().filter_map(|r| str_at(&r.subscription, "/status")).collect();
        assert!(statuses.len() >= 4, "{statuses:?}");
        let sale_statuses: std::collections::BTreeSet<_> =
            a.sales.iter().filter_map(|s| str_at(s, "/purchase/status")).collect();
        assert!(
            sale_statuses.contains("REFUNDED") && sale_statuses.contains("COMPLETE"),
            "{sale_statuses:?}"
        );
    }
}
