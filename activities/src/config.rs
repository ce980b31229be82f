//! Configuration shared by the worker and the starter: environment variables with
//! defaults that run the local stack. Temporal's own connection settings (address,
//! namespace, TLS, API key) come from Temporal's standard `TEMPORAL_*` variables or its
//! config file, so pointing at a cluster or Temporal Cloud needs no code change.

use std::path::PathBuf;
use tollgate_domain::duration::parse_secs;
use tollgate_workflows::RulesConfig;

#[derive(Clone)]
pub struct Settings {
    /// Task queue of the workflows and store activities.
    pub task_queue: String,
    /// The embedded SQLite file (documents unless Firestore, revenue unless BigQuery).
    pub db_path: PathBuf,
    pub store: tollgate_store::StoreConfig,
    pub warehouse: tollgate_warehouse::WarehouseConfig,
    pub talentlms_url: String,
    pub talentlms_api_key: Option<String>,
    /// Cap on TalentLMS calls per second across every worker.
    pub talentlms_max_rps: f64,
    /// Workflows the worker keeps in memory between tasks (TOLLGATE_MAX_CACHED_WORKFLOWS).
    /// Ours sleep for days, so a small cache costs a short replay at wake-up and saves
    /// memory per live subscription.
    pub max_cached_workflows: usize,
    /// TOLLGATE_WORKER_MAX_RSS_MB: above this resident size the worker drains and exits (code
    /// 75) for its supervisor to restart it. Unset: no ceiling.
    pub worker_max_rss_mb: Option<u64>,
    pub rules: RulesConfig,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("task_queue", &self.task_queue)
            .field("db_path", &self.db_path)
            .field("store", &self.store)
            .field("warehouse", &self.warehouse)
            .field("talentlms_url", &self.talentlms_url)
            .field("talentlms_api_key", &self.talentlms_api_key.as_ref().map(|_| "<redacted>"))
            .field("talentlms_max_rps", &self.talentlms_max_rps)
            .field("max_cached_workflows", &self.max_cached_workflows)
            .field("worker_max_rss_mb", &self.worker_max_rss_mb)
            .field("rules", &self.rules)
            .finish()
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The variable as a number; None when unset.
fn opt_number<T: std::str::FromStr>(name: &str) -> anyhow::Result<Option<T>> {
    var(name).map(|v| v.parse().map_err(|_| anyhow::anyhow!("{name}: {v:?} is not a number"))).transpose()
}

fn number<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    Ok(opt_number(name)?.unwrap_or(default))
}

fn secs(name: &str, default: u64) -> anyhow::Result<u64> {
    match var(name) {
        Some(v) => parse_secs(&v).map_err(|e| anyhow::anyhow!("{name}: {e}")),
        None => Ok(default),
    }
}

/// The SDK's default is 1,000. Each cached AccessWorkflow costs the worker ~80 KB (scale
/// benchmark, README), and a workflow that sleeps until its deadline gains nothing from
/// staying cached: evicted, it replays its short history when it wakes.
pub const DEFAULT_MAX_CACHED_WORKFLOWS: usize = 100;

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        let d = RulesConfig::default();
        let max_rps: f64 = number("TALENTLMS_MAX_RPS", 10.0)?;
        anyhow::ensure!(max_rps > 0.0 && max_rps.is_finite(), "TALENTLMS_MAX_RPS must be positive");
        let db_path: PathBuf = var("TOLLGATE_DB").unwrap_or_else(|| ".tollgate/tollgate.db".into()).into();
        let store = match var("TOLLGATE_STORE").as_deref() {
            None | Some("sqlite") => tollgate_store::StoreConfig::Sqlite { path: db_path.clone() },
            Some("firestore") => tollgate_store::StoreConfig::Firestore {
                project_id: var("FIRESTORE_PROJECT_ID")
                    .or_else(|| var("GOOGLE_CLOUD_PROJECT"))
                    .ok_or_else(|| anyhow::anyhow!("TOLLGATE_STORE=firestore needs FIRESTORE_PROJECT_ID"))?,
                database: var("FIRESTORE_DATABASE"),
            },
            Some(other) => anyhow::bail!("TOLLGATE_STORE: {other:?} is not sqlite or firestore"),
        };
        let warehouse = match var("TOLLGATE_WAREHOUSE").as_deref() {
            None | Some("sqlite") => tollgate_warehouse::WarehouseConfig::Sqlite { path: db_path.clone() },
            Some("bigquery") => tollgate_warehouse::WarehouseConfig::BigQuery {
                project_id: var("BIGQUERY_PROJECT_ID").or_else(|| var("GOOGLE_CLOUD_PROJECT")).ok_or_else(
                    || anyhow::anyhow!("TOLLGATE_WAREHOUSE=bigquery needs BIGQUERY_PROJECT_ID"),
                )?,
                dataset: var("BIGQUERY_DATASET").unwrap_or_else(|| "tollgate".into()),
                emulator_host: var("BIGQUERY_EMULATOR_HOST"),
            },
            Some(other) => anyhow::bail!("TOLLGATE_WAREHOUSE: {other:?} is not sqlite or bigquery"),
        };
        Ok(Self {
            store,
            warehouse,
            task_queue: var("TOLLGATE_TASK_QUEUE").unwrap_or_else(|| "tollgate".into()),
            db_path,
            talentlms_url: var("TALENTLMS_URL").unwrap_or_else(|| "http://127.0.0.1:8089".into()),
            talentlms_api_key: var("TALENTLMS_API_KEY"),
            talentlms_max_rps: max_rps,
            max_cached_workflows: number("TOLLGATE_MAX_CACHED_WORKFLOWS", DEFAULT_MAX_CACHED_WORKFLOWS)?,
            worker_max_rss_mb: opt_number("TOLLGATE_WORKER_MAX_RSS_MB")?,
            rules: RulesConfig {
                link_poll_secs: secs("TOLLGATE_LINK_POLL", d.link_poll_secs)?,
                retention_secs: secs("TOLLGATE_RETENTION", d.retention_secs)?,
                max_history: number("TOLLGATE_MAX_HISTORY", d.max_history)?,
                talentlms_task_queue: var("TOLLGATE_TALENTLMS_QUEUE").unwrap_or(d.talentlms_task_queue),
                max_retry_interval_secs: secs("TOLLGATE_MAX_RETRY_INTERVAL", d.max_retry_interval_secs)?,
            },
        })
    }
}

/// Connects to Temporal using the standard `TEMPORAL_*` environment configuration.
pub async fn temporal_client() -> anyhow::Result<temporalio_client::Client> {
    use temporalio_client::{Client, ClientOptions, Connection, envconfig::LoadClientConfigProfileOptions};
    let (conn_opts, client_opts) = ClientOptions::load_from_config(LoadClientConfigProfileOptions::default())
        .map_err(|e| anyhow::anyhow!("Temporal client configuration: {e}"))?;
    let target = conn_opts.target.to_string();
    let conn = Connection::connect(conn_opts)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to Temporal at {target}: {e}"))?;
    Ok(Client::new(conn, client_opts)?)
}

/// Logs to stderr (`RUST_LOG` filters), colored only on a terminal.
pub fn init_logging() {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,temporalio_sdk_core=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Resolves with the signal's name on SIGTERM (systemd, Kubernetes) or SIGINT (Ctrl-C).
pub async fn shutdown_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}
