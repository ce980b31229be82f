//! The HTTP client (feature `client`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::Error;
use crate::model::*;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(40);
/// Attempts per call for 429/5xx/transport failures.
const ATTEMPTS: u32 = 8;
/// Longest wait between attempts, whatever the server advertises.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// `HOTMART_CLIENT_ID`, `HOTMART_CLIENT_SECRET` and `HOTMART_BASIC` (the ready
/// `Basic base64(id:secret)` Hotmart's UI shows; derived from the other two when unset).
#[derive(Clone)]
pub struct Credentials {
    client_id: String,
    client_secret: String,
    basic: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    pub fn new(client_id: &str, client_secret: &str, basic: Option<&str>) -> Result<Self, Error> {
        let (id, secret) = (client_id.trim(), client_secret.trim());
        if id.is_empty() || secret.is_empty() {
            return Err(Error::Config(
                "HOTMART_CLIENT_ID and HOTMART_CLIENT_SECRET must not be empty".into(),
            ));
        }
        let basic = match basic.map(str::trim).filter(|b| !b.is_empty()) {
            // Accepted with or without the scheme, as people copy it either way.
            Some(b) => b.strip_prefix("Basic ").unwrap_or(b).trim().to_string(),
            None => base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")),
        };
        Ok(Self { client_id: id.into(), client_secret: secret.into(), basic })
    }

    /// From a variable lookup (the environment); `Ok(None)` when none is set.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, Error> {
        let get = |n: &str| var(n).filter(|v| !v.trim().is_empty());
        match (get("HOTMART_CLIENT_ID"), get("HOTMART_CLIENT_SECRET")) {
            (Some(id), Some(secret)) => Self::new(&id, &secret, get("HOTMART_BASIC").as_deref()).map(Some),
            (None, None) => Ok(None),
            _ => Err(Error::Config("set both HOTMART_CLIENT_ID and HOTMART_CLIENT_SECRET".into())),
        }
    }
}

/// Where the API lives. `HOTMART_ENV` picks production or sandbox; `HOTMART_API_URL`
/// points all three at one local root (the simulator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Full token URL (`.../security/oauth/token`).
    pub token: String,
    /// `.../payments/api/v1`
    pub payments: String,
    /// `.../products/api/v1`
    pub products: String,
}

impl Endpoints {
    pub fn production() -> Self {
        Self {
            token: "https://api-sec-vlc.hotmart.com/security/oauth/token".into(),
            payments: "https://developers.hotmart.com/payments/api/v1".into(),
            products: "https://developers.hotmart.com/products/api/v1".into(),
        }
    }

    pub fn sandbox() -> Self {
        Self {
            token: "https://api-sec-vlc.hotmart.com/security/oauth/token".into(),
            payments: "https://sandbox.hotmart.com/payments/api/v1".into(),
            products: "https://sandbox.hotmart.com/products/api/v1".into(),
        }
    }

    /// Every route under one root, as the simulator serves them.
    pub fn local(root: &str) -> Self {
        let root = root.trim().trim_end_matches('/');
        Self {
            token: format!("{root}/security/oauth/token"),
            payments: format!("{root}/payments/api/v1"),
            products: format!("{root}/products/api/v1"),
        }
    }

    /// `production` (default), `sandbox`, or an http(s) root URL.
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s.trim() {
            "" | "production" => Ok(Self::production()),
            "sandbox" => Ok(Self::sandbox()),
            url if url.starts_with("http://") || url.starts_with("https://") => {
                if url.contains('@') {
                    return Err(Error::Config("the Hotmart URL must not contain credentials".into()));
                }
                Ok(Self::local(url))
            }
            other => {
                Err(Error::Config(format!("HOTMART_API_URL: {other:?} is not production, sandbox or a URL")))
            }
        }
    }
}

/// Spaces calls `60 / per_minute` seconds apart in arrival order, so one process never
/// exceeds the budget in any minute (nor bursts within it).
#[derive(Debug)]
pub struct Budget {
    next: Mutex<Instant>,
    interval: Duration,
}

impl Budget {
    pub fn per_minute(calls: f64) -> Self {
        let interval = Duration::from_secs_f64(60.0 / calls.max(0.001));
        Self { next: Mutex::new(Instant::now()), interval }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Waits for this call's slot.
    pub async fn take(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

struct Token {
    value: String,
    refresh_at: Instant,
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Filters of the sales history (all optional). Without `transaction_status` Hotmart
/// returns only APPROVED and COMPLETE sales.
#[derive(Debug, Clone, Default)]
pub struct SalesQuery {
    pub product_id: Option<i64>,
    pub start_date: Option<Millis>,
    pub end_date: Option<Millis>,
    pub transaction_status: Option<String>,
    pub transaction: Option<String>,
    pub max_results: Option<u32>,
}

/// Filters of the subscriptions list. Without accession dates Hotmart returns only the
/// last 30 days of accession.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionQuery {
    pub product_id: Option<i64>,
    pub status: Option<String>,
    pub subscriber_code: Option<String>,
    pub accession_date: Option<Millis>,
    pub end_accession_date: Option<Millis>,
    /// Next charge on or after this (what the reconciliation reads: renewed and recently
    /// cancelled subscriptions, whatever their accession).
    pub date_next_charge: Option<Millis>,
    pub end_date_next_charge: Option<Millis>,
    pub max_results: Option<u32>,
}

/// A Hotmart account. Cheap to clone: one connection pool, one token, one budget.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    endpoints: Endpoints,
    creds: Credentials,
    token: Arc<Mutex<Option<Token>>>,
    budget: Arc<Budget>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("endpoints", &self.endpoints).field("creds", &self.creds).finish()
    }
}

impl Client {
    pub fn new(endpoints: Endpoints, creds: Credentials, budget: Arc<Budget>) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("tollgate-hotmart/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("cannot build HTTP client: {e}")))?;
        Ok(Self { http, endpoints, creds, token: Arc::new(Mutex::new(None)), budget })
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The cached token, or a fresh one when there is none or it is about to expire.
    async fn bearer(&self) -> Result<String, Error> {
        let mut slot = self.token.lock().await;
        if let Some(t) = slot.as_ref().filter(|t| Instant::now() < t.refresh_at) {
            return Ok(t.value.clone());
        }
        let op = "fetch Hotmart token";
        let resp = self
            .http
            .post(&self.endpoints.token)
            .query(&[
                ("grant_type", "client_credentials"),
                ("client_id", self.creds.client_id.as_str()),
                ("client_secret", self.creds.client_secret.as_str()),
            ])
            .header(reqwest::header::AUTHORIZATION, format!("Basic {}", self.creds.basic))
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .send()
            .await
            // Without the URL: its query holds the secret.
            .map_err(|e| Error::Transport { op: op.into(), detail: e.without_url().to_string() })?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .map_err(|e| Error::Transport { op: op.into(), detail: e.without_url().to_string() })?;
        if !status.is_success() {
            return Err(Error::from_response(op, status.as_u16(), &headers, &body));
        }
        let t: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|e| Error::Decode { op: op.into(), detail: e.to_string() })?;
        let ttl = Duration::from_secs(t.expires_in.unwrap_or(3600));
        // Refreshed a tenth early (at most a minute), so a call never carries a token
        // that expires on the way.
        let margin = (ttl / 10).min(Duration::from_secs(60));
        tracing::debug!(ttl_secs = ttl.as_secs(), "Hotmart token fetched");
        *slot = Some(Token { value: t.access_token.clone(), refresh_at: Instant::now() + ttl - margin });
        Ok(t.access_token)
    }

    async fn drop_token(&self, used: &str) {
        let mut slot = self.token.lock().await;
        // Another call may have refreshed it already.
        if slot.as_ref().is_some_and(|t| t.value == used) {
            *slot = None;
        }
    }

    /// One GET with the budget, the token, and retries.
    async fn get<T: DeserializeOwned>(
        &self,
        op: &str,
        url: &str,
        query: &[(&str, String)],
    ) -> Result<T, Error> {
        let mut attempt = 1;
        loop {
            let token = self.bearer().await?;
            self.budget.take().await;
            let result = self.once(op, url, query, &token).await;
            match result {
                // Expired or revoked: a new token, and the call again (it counts as an attempt).
                Err(Error::Status { status: 401, .. }) if attempt < ATTEMPTS => {
                    tracing::info!(op, "Hotmart token refused; fetching a new one");
                    self.drop_token(&token).await;
                    attempt += 1;
                }
                Err(e) if e.is_retryable() && attempt < ATTEMPTS => {
                    let wait = e
                        .retry_after()
                        .unwrap_or(Duration::from_millis(250 * 2u64.pow(attempt)))
                        .clamp(Duration::from_millis(50), MAX_WAIT);
                    tracing::warn!(op, attempt, wait_ms = wait.as_millis() as u64, error = %e, "Hotmart call retried");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn once<T: DeserializeOwned>(
        &self,
        op: &str,
        url: &str,
        query: &[(&str, String)],
        token: &str,
    ) -> Result<T, Error> {
        let transport = |e: reqwest::Error| Error::Transport { op: op.into(), detail: e.to_string() };
        let resp = self.http.get(url).query(query).bearer_auth(token).send().await.map_err(transport)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(transport)?;
        tracing::debug!(op, status = status.as_u16(), "Hotmart call");
        if !status.is_success() {
            return Err(Error::from_response(op, status.as_u16(), &headers, &body));
        }
        serde_json::from_slice(&body).map_err(|e| Error::Decode { op: op.into(), detail: e.to_string() })
    }

    pub async fn sales_history(&self, q: &SalesQuery, page_token: Option<&str>) -> Result<Page<Sale>, Error> {
        let mut query = paging(q.max_results, page_token);
        push(&mut query, "product_id", q.product_id);
        push(&mut query, "start_date", q.start_date);
        push(&mut query, "end_date", q.end_date);
        push(&mut query, "transaction_status", q.transaction_status.as_ref());
        push(&mut query, "transaction", q.transaction.as_ref());
        let url = format!("{}/sales/history", self.endpoints.payments);
        self.get("list sales history", &url, &query).await
    }

    pub async fn subscriptions(
        &self,
        q: &SubscriptionQuery,
        page_token: Option<&str>,
    ) -> Result<Page<Subscription>, Error> {
        let mut query = paging(q.max_results, page_token);
        push(&mut query, "product_id", q.product_id);
        push(&mut query, "status", q.status.as_ref());
        push(&mut query, "subscriber_code", q.subscriber_code.as_ref());
        push(&mut query, "accession_date", q.accession_date);
        push(&mut query, "end_accession_date", q.end_accession_date);
        push(&mut query, "date_next_charge", q.date_next_charge);
        push(&mut query, "end_date_next_charge", q.end_date_next_charge);
        let url = format!("{}/subscriptions", self.endpoints.payments);
        self.get("list subscriptions", &url, &query).await
    }

    /// Every charge of one subscription (not paged).
    pub async fn subscription_purchases(
        &self,
        subscriber_code: &str,
    ) -> Result<Vec<SubscriptionPurchase>, Error> {
        let code: String =
            subscriber_code.chars().filter(|c| c.is_ascii_alphanumeric() || "-_".contains(*c)).collect();
        if code.is_empty() || code.len() != subscriber_code.len() {
            return Err(Error::Config(format!("{subscriber_code:?} is not a subscriber code")));
        }
        let url = format!("{}/subscriptions/{code}/purchases", self.endpoints.payments);
        self.get(&format!("list purchases of subscription {code}"), &url, &[]).await
    }

    pub async fn products(&self, page_token: Option<&str>) -> Result<Page<Product>, Error> {
        let url = format!("{}/products", self.endpoints.products);
        self.get("list products", &url, &paging(Some(50), page_token)).await
    }
}

fn paging(max_results: Option<u32>, page_token: Option<&str>) -> Vec<(&'static str, String)> {
    let mut q = vec![("max_results", max_results.unwrap_or(50).to_string())];
    if let Some(t) = page_token {
        q.push(("page_token", t.to_string()));
    }
    q
}

fn push<V: ToString>(q: &mut Vec<(&'static str, String)>, name: &'static str, v: Option<V>) {
    if let Some(v) = v {
        q.push((name, v.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_endpoints() {
        let c = Credentials::new("id-1", "s3cret-value", None).unwrap();
        assert_eq!(c.basic, base64::engine::general_purpose::STANDARD.encode("id-1:s3cret-value"));
        assert!(!format!("{c:?}").contains("s3cret"));
        let c = Credentials::new("id-1", "s3cret-value", Some("Basic abc=")).unwrap();
        assert_eq!(c.basic, "abc=");
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |n: &str| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string())
        };
        assert!(Credentials::from_lookup(vars(&[])).unwrap().is_none());
        assert!(Credentials::from_lookup(vars(&[("HOTMART_CLIENT_ID", "x")])).is_err());
        assert_eq!(Endpoints::parse("").unwrap(), Endpoints::production());
        assert_eq!(
            Endpoints::parse("sandbox").unwrap().payments,
            "https://sandbox.hotmart.com/payments/api/v1"
        );
        assert_eq!(
            Endpoints::parse("http://127.0.0.1:9/").unwrap().token,
            "http://127.0.0.1:9/security/oauth/token"
        );
        assert!(Endpoints::parse("http://u:p@x").is_err());
        assert!(Endpoints::parse("staging").is_err());
    }
}

/// Everything a process needs to call Hotmart, from its environment: credentials
/// (`HOTMART_CLIENT_ID`, `HOTMART_CLIENT_SECRET`, `HOTMART_BASIC`), where
/// (`HOTMART_API_URL`: `production` (default), `sandbox` or a root URL such as the
/// simulator's) and the call budget (`HOTMART_MAX_PER_MINUTE`, default 300: well under
/// Hotmart's 500, which every other integration of the account shares).
#[derive(Debug, Clone)]
pub struct HotmartEnv {
    pub credentials: Credentials,
    pub endpoints: Endpoints,
    pub max_per_minute: f64,
}

pub const DEFAULT_MAX_PER_MINUTE: f64 = 300.0;

impl HotmartEnv {
    /// `Ok(None)`: no credentials configured.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, Error> {
        let Some(credentials) = Credentials::from_lookup(&var)? else { return Ok(None) };
        let endpoints = Endpoints::parse(&var("HOTMART_API_URL").unwrap_or_default())?;
        let max_per_minute = match var("HOTMART_MAX_PER_MINUTE").filter(|v| !v.trim().is_empty()) {
            Some(v) => {
                v.trim().parse::<f64>().ok().filter(|n| *n > 0.0 && n.is_finite()).ok_or_else(|| {
                    Error::Config(format!("HOTMART_MAX_PER_MINUTE: {v:?} is not a positive number"))
                })?
            }
            None => DEFAULT_MAX_PER_MINUTE,
        };
        Ok(Some(Self { credentials, endpoints, max_per_minute }))
    }

    pub fn from_env() -> Result<Option<Self>, Error> {
        Self::from_lookup(|n| std::env::var(n).ok())
    }

    /// A client with its own budget of `max_per_minute`.
    pub fn client(&self) -> Result<Client, Error> {
        Client::new(
            self.endpoints.clone(),
            self.credentials.clone(),
            Arc::new(Budget::per_minute(self.max_per_minute)),
        )
    }
}
