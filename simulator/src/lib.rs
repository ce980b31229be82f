//! A local stand-in for the TalentLMS v1 REST API, with rate limiting and fault injection.
//!
//! `/api/v1/*` behaves like TalentLMS; `/_sim/*` is an unauthenticated admin API for tests
//! and the dev stack. Use [`spawn`] in tests, or the `tollgate-simulator` binary.

mod admin;
mod api;
pub mod hotmart;
mod state;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use state::{Db, PeakTracker, RateWindow};

pub const DEFAULT_API_KEY: &str = "dev-talentlms-key";

/// Faults applied to `/api/v1` calls. Rates are probabilities in `[0, 1]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Calls answered 500/502/503 before touching any state.
    pub error_rate: f64,
    /// Calls answered 429 (as if rate limited) before touching any state.
    pub rate_limited_rate: f64,
    /// Successful calls whose state change is kept but whose answer is replaced by a 500.
    pub fail_after_commit_rate: f64,
    /// Calls answered 403 (a revoked or restricted API key) before touching any state.
    pub forbidden_rate: f64,
    /// Successful calls whose state change is kept but whose answer is a 200 HTML
    /// maintenance page (what a proxy in front of TalentLMS serves), not JSON.
    pub html_after_commit_rate: f64,
    /// Endpoints the faults apply to (the first path segment, e.g. `addusertocourse`,
    /// `users`, `removeuserfromcourse`); empty: every endpoint.
    pub only: Vec<String>,
    /// Added to every call.
    pub latency_ms: u64,
    /// Fraction of calls that get a further `slow_ms`.
    pub slow_rate: f64,
    pub slow_ms: u64,
}

impl FaultConfig {
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("rate_limited_rate", self.rate_limited_rate),
            ("fail_after_commit_rate", self.fail_after_commit_rate),
            ("forbidden_rate", self.forbidden_rate),
            ("html_after_commit_rate", self.html_after_commit_rate),
            ("slow_rate", self.slow_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1, got {rate}"));
            }
        }
        Ok(())
    }
}

#[derive(Clone)]
pub struct SimConfig {
    pub api_key: String,
    /// Calls allowed per `rate_window` (TalentLMS: 200 per 5 s).
    pub rate_limit: u32,
    pub rate_window: Duration,
    pub faults: FaultConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            api_key: DEFAULT_API_KEY.into(),
            rate_limit: 200,
            rate_window: Duration::from_secs(5),
            faults: FaultConfig::default(),
        }
    }
}

// Keeps the key out of logs and panics.
impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("api_key", &"<redacted>")
            .field("rate_limit", &self.rate_limit)
            .field("rate_window", &self.rate_window)
            .field("faults", &self.faults)
            .finish()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SimUser {
    pub id: String,
    pub login: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub status: String,
    pub courses: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimEnrollment {
    pub user_id: String,
    pub email: String,
    pub course_id: String,
    pub role: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SimCourse {
    pub id: String,
    pub name: String,
    pub code: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    pub limit: u32,
    pub window_secs: u64,
}

/// Everything `GET /_sim/state` reports.
#[derive(Debug, Clone, Serialize)]
pub struct SimState {
    pub users: Vec<SimUser>,
    pub enrollments: Vec<SimEnrollment>,
    pub courses: Vec<SimCourse>,
    /// Every `/api/v1` request received, including refused ones.
    pub total_calls: u64,
    pub calls_by_endpoint: BTreeMap<String, u64>,
    /// Most `/api/v1` requests received within any 1-second span.
    pub max_calls_per_second: u64,
    /// Calls refused by the real rate limit (not injected 429s).
    pub rate_limited_calls: u64,
    pub injected_faults: u64,
    pub faults: FaultConfig,
    pub rate_limit: RateLimitConfig,
}

#[derive(Debug, Default)]
struct Stats {
    total: u64,
    by_endpoint: BTreeMap<String, u64>,
    rate_limited: u64,
    injected: u64,
}

struct Inner {
    db: Db,
    window: RateWindow,
    peak: PeakTracker,
    stats: Stats,
    faults: FaultConfig,
}

pub(crate) struct Sim {
    config: SimConfig,
    inner: Mutex<Inner>,
}

impl Sim {
    fn new(config: SimConfig) -> Self {
        let inner = Self::fresh(&config);
        Self { config, inner: Mutex::new(inner) }
    }

    fn fresh(config: &SimConfig) -> Inner {
        Inner {
            db: Db::default(),
            window: RateWindow::new(config.rate_limit, config.rate_window),
            peak: PeakTracker::default(),
            stats: Stats::default(),
            faults: config.faults.clone(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (all checks precede writes).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reset(&self) {
        *self.lock() = Self::fresh(&self.config);
    }

    fn edit_enrollment(&self, user_id: &str, course_id: &str, enrolled: bool) -> Result<(), String> {
        let args: std::collections::BTreeMap<String, String> =
            [("user_id".to_string(), user_id.to_string()), ("course_id".to_string(), course_id.to_string())]
                .into();
        let mut s = self.lock();
        let r = if enrolled { s.db.enroll(&args) } else { s.db.unenroll(&args) };
        r.map(|_| ()).map_err(|e| e.message)
    }

    /// `(email, course_id)` of every enrollment, without copying the rest of the state:
    /// tests and the bench poll this every few milliseconds.
    fn enrollment_pairs(&self) -> Vec<(String, String)> {
        let s = self.lock();
        s.db.enrollments().map(|(u, c, _)| (u.email.clone(), c.to_string())).collect()
    }

    fn snapshot(&self) -> SimState {
        let s = self.lock();
        SimState {
            users: s
                .db
                .users()
                .map(|u| SimUser {
                    id: u.id.to_string(),
                    login: u.login.clone(),
                    email: u.email.clone(),
                    first_name: u.first_name.clone(),
                    last_name: u.last_name.clone(),
                    status: if u.active { "active" } else { "inactive" }.into(),
                    courses: s.db.course_ids_of(u.id),
                })
                .collect(),
            enrollments: s
                .db
                .enrollments()
                .map(|(u, c, role)| SimEnrollment {
                    user_id: u.id.to_string(),
                    email: u.email.clone(),
                    course_id: c.into(),
                    role: role.into(),
                })
                .collect(),
            courses: s
                .db
                .courses()
                .iter()
                .map(|c| SimCourse { id: c.id.clone(), name: c.name.clone(), code: c.code.clone() })
                .collect(),
            total_calls: s.stats.total,
            calls_by_endpoint: s.stats.by_endpoint.clone(),
            max_calls_per_second: s.peak.max as u64,
            rate_limited_calls: s.stats.rate_limited,
            injected_faults: s.stats.injected,
            faults: s.faults.clone(),
            rate_limit: RateLimitConfig { limit: s.window.limit(), window_secs: s.window.window().as_secs() },
        }
    }

    fn set_faults(&self, faults: FaultConfig) -> Result<(), String> {
        faults.validate()?;
        tracing::info!(?faults, "fault configuration changed");
        self.lock().faults = faults;
        Ok(())
    }

    fn set_rate_limit(&self, limit: u32, window: Duration) -> Result<(), String> {
        if limit == 0 || window.is_zero() {
            return Err("limit and window must be positive".into());
        }
        self.lock().window = RateWindow::new(limit, window);
        Ok(())
    }
}

fn router(sim: Arc<Sim>) -> Router {
    Router::new().nest("/api/v1", api::router(sim.clone())).nest("/_sim", admin::router()).with_state(sim)
}

/// Serves until `shutdown` completes. The binary's entry point.
pub async fn serve(
    listener: TcpListener,
    config: SimConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let sim = Arc::new(Sim::new(config));
    axum::serve(listener, router(sim)).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

/// Starts a simulator on `127.0.0.1:<random port>` in the current tokio runtime.
pub async fn spawn(config: SimConfig) -> anyhow::Result<SimHandle> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let sim = Arc::new(Sim::new(config));
    let (tx, rx) = oneshot::channel::<()>();
    let app = router(sim.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
            .map_err(anyhow::Error::from)
    });
    tracing::debug!(%addr, "simulator listening");
    Ok(SimHandle { addr, sim, shutdown: Some(tx), task: Some(task) })
}

/// A running in-process simulator. Stops when dropped.
pub struct SimHandle {
    addr: SocketAddr,
    sim: Arc<Sim>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl SimHandle {
    /// The school root, e.g. `http://127.0.0.1:41234` (the API is under `/api/v1/`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn api_key(&self) -> &str {
        &self.sim.config.api_key
    }

    pub fn state(&self) -> SimState {
        self.sim.snapshot()
    }

    pub fn users(&self) -> Vec<SimUser> {
        self.state().users
    }

    /// `(email, course_id)` pairs.
    pub fn enrollments(&self) -> Vec<(String, String)> {
        self.sim.enrollment_pairs()
    }

    pub fn set_faults(&self, faults: FaultConfig) {
        self.sim.set_faults(faults).expect("invalid fault config");
    }

    pub fn clear_faults(&self) {
        self.set_faults(FaultConfig::default());
    }

    pub fn set_rate_limit(&self, limit: u32, window: Duration) {
        self.sim.set_rate_limit(limit, window).expect("invalid rate limit");
    }

    /// Adds a course and returns its id.
    pub fn add_course(&self, name: &str) -> String {
        self.sim.lock().db.add_course(None, name.into(), None).expect("valid course").id
    }

    /// Creates a user as staff do by hand (no API call counted); returns its id.
    pub fn add_user(&self, email: &str, login: &str) -> String {
        let form: BTreeMap<String, String> = [
            ("first_name", "Made"),
            ("last_name", "ByHand"),
            ("email", email),
            ("login", login),
            ("password", "by-hand-123"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let user = self.sim.lock().db.signup(&form).expect("a valid new user");
        user["id"].as_str().map_or_else(|| user["id"].to_string(), str::to_string)
    }

    /// Deletes a user by email (a staff member's edit by hand); whether it existed.
    pub fn delete_user(&self, email: &str) -> bool {
        self.sim.lock().db.delete_user(email)
    }

    /// Back to the initial state: seeded courses, no users, zeroed counters, startup faults.
    pub fn reset(&self) {
        self.sim.reset();
    }

    /// A staff member's edit in TalentLMS, outside Tollgate: enrolls or removes a learner.
    pub fn edit_enrollment(&self, user_id: &str, course_id: &str, enrolled: bool) -> Result<(), String> {
        self.sim.edit_enrollment(user_id, course_id, enrolled)
    }

    /// Stops accepting connections and waits for open ones to finish.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => task.await?,
            None => Ok(()),
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
