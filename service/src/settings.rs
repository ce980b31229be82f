//! Every setting of the worker and the starter, parsed once at start-up from the
//! environment. A missing or malformed variable fails the start with an error naming it;
//! defaults run the local stack. Temporal's own connection settings (address, namespace,
//! TLS, API key) come from Temporal's standard `TEMPORAL_*` variables or its config file,
//! so pointing at a cluster or Temporal Cloud needs no code change.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, anyhow, bail, ensure};
use tollgate_domain::duration::parse_secs;
use tollgate_workflows::RulesConfig;

#[derive(Clone, Debug)]
pub struct Settings {
    /// Task queue of the workflows and store activities.
    pub task_queue: String,
    /// The embedded SQLite file (documents unless Firestore, revenue unless BigQuery).
    pub db_path: PathBuf,
    pub store: tollgate_store::StoreConfig,
    pub warehouse: tollgate_warehouse::WarehouseConfig,
    pub talentlms_url: String,
    /// Required by the worker; when set, the starter also checks course ids against it.
    pub talentlms_api_key: Option<Secret>,
    /// Cap on TalentLMS calls per second across every worker.
    pub talentlms_max_rps: f64,
    /// Workflows the worker keeps in memory between tasks (TOLLGATE_MAX_CACHED_WORKFLOWS).
    /// Ours sleep for days, so a small cache costs a short replay at wake-up and saves
    /// memory per live subscription.
    pub max_cached_workflows: usize,
    /// TOLLGATE_WORKFLOW_POLLERS: concurrent workflow task polls per worker (at least 2;
    /// the SDK puts a fifth of them on the shared queue, the rest on the sticky one).
    /// Unset: the SDK's default, 5.
    pub workflow_pollers: Option<usize>,
    /// TOLLGATE_WORKER_MAX_RSS_MB: above this resident size the worker drains and exits (code
    /// 75) for its supervisor to restart it. Unset: no ceiling.
    pub worker_max_rss_mb: Option<u64>,
    pub rules: RulesConfig,
    pub http: HttpSettings,
    pub temporal: TemporalSettings,
    /// `RUST_LOG`.
    pub log_filter: String,
    /// TOLLGATE_LOG_FORMAT=json: one JSON object per log line (default: text).
    pub log_json: bool,
    /// TOLLGATE_WORKER_METRICS_ADDR: where the worker serves `/metrics` (unset: nowhere).
    pub worker_metrics_addr: Option<SocketAddr>,
    /// TOLLGATE_METRICS_TOKEN: when set, both `/metrics` endpoints want it as a bearer token.
    pub metrics_token: Option<Secret>,
    /// TOLLGATE_TEMPORAL_UI_URL: the Temporal Web UI, for links from the staff console.
    pub temporal_ui_url: String,
    /// TOLLGATE_FORWARDER_LEASE: how long the journal forwarder's lease lasts without a
    /// renewal (several starters on one journal: another takes over this long after the
    /// holder died).
    pub forwarder_lease_secs: u64,
    /// TOLLGATE_JOURNAL: where accepted webhooks wait for Temporal.
    pub journal: JournalBackend,
}

/// Where accepted webhooks wait for Temporal (TOLLGATE_JOURNAL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JournalBackend {
    /// `sqlite` or `firestore`: the document store's journal (TOLLGATE_STORE); the default.
    Store,
    /// `pubsub`: a Pub/Sub topic; `tollgate-starter forward` drains it into Temporal.
    PubSub(PubSubSettings),
}

/// The Pub/Sub ingress queue: full resource names, as Pub/Sub's API takes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PubSubSettings {
    /// `projects/{PUBSUB_PROJECT_ID}/topics/{TOLLGATE_PUBSUB_TOPIC}` (default `tollgate-webhooks`).
    pub topic: String,
    /// `projects/{p}/subscriptions/{TOLLGATE_PUBSUB_SUBSCRIPTION}` (default `tollgate-forwarder`).
    pub subscription: String,
    /// Where Pub/Sub moves a message after `max_attempts` failed deliveries: `{topic}-dead-letter`.
    pub dead_letter_topic: String,
    /// Read by the forwarder, which moves dead letters into the journal's quarantine.
    pub dead_letter_subscription: String,
    /// TOLLGATE_PUBSUB_MAX_ATTEMPTS (5..=100, Pub/Sub's bounds; default 5).
    pub max_attempts: u32,
    /// PUBSUB_EMULATOR_HOST: talk to that emulator over plain HTTP, without credentials.
    pub emulator_host: Option<String>,
}

/// The starter's HTTP side.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// TOLLGATE_HTTP_ADDR.
    pub addr: SocketAddr,
    /// TOLLGATE_HOTTOK; `serve` refuses to start without it.
    pub hottok: Option<Secret>,
    /// TOLLGATE_API_TOKEN; unset leaves the staff API off.
    pub api_token: Option<Secret>,
    /// TOLLGATE_DASHBOARD_TOKEN: read-only revenue access (the API token also opens it).
    pub dashboard_token: Option<Secret>,
    pub ingress: Ingress,
    /// TOLLGATE_HTTP_HEADER_TIMEOUT: a client must send its request headers within this.
    pub header_timeout_secs: u64,
    /// TOLLGATE_HTTP_BODY_TIMEOUT: a webhook must be received (headers to last body byte)
    /// and answered within this; a slower client gets 408 and its connection closed.
    pub body_timeout_secs: u64,
    /// TOLLGATE_PUBLIC_URL starts with `https://`: session cookies are marked `Secure`.
    pub https: bool,
}

/// How an accepted webhook reaches Temporal (TOLLGATE_INGRESS).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ingress {
    /// Journal (committed to disk), answer, and let the forwarder signal Temporal.
    #[default]
    Journal,
    /// Signal-with-start within the request, no journal; only for the benchmark's comparison.
    Direct,
}

/// Temporal's connection, loaded once from its standard configuration.
#[derive(Clone)]
pub struct TemporalSettings {
    pub connection: temporalio_client::ConnectionOptions,
    pub client: temporalio_client::ClientOptions,
}

impl std::fmt::Debug for TemporalSettings {
    // The connection options may hold an API key: only where and which namespace.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemporalSettings")
            .field("target", &self.connection.target.as_str())
            .field("namespace", &self.client.namespace)
            .finish()
    }
}

impl TemporalSettings {
    /// `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`, `TEMPORAL_TLS*` or the
    /// TOML profile, as every Temporal SDK reads them.
    pub fn load() -> anyhow::Result<Self> {
        use temporalio_client::ClientOptions;
        use temporalio_client::envconfig::LoadClientConfigProfileOptions;
        let (connection, client) = ClientOptions::load_from_config(LoadClientConfigProfileOptions::default())
            .map_err(|e| anyhow!("Temporal client configuration (TEMPORAL_*): {e}"))?;
        Ok(Self { connection, client })
    }
}

/// A token or key: usable, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The SDK's default is 1,000. Each cached AccessWorkflow costs the worker ~80 KB (scale
/// benchmark, README), and a workflow that sleeps until its deadline gains nothing from
/// staying cached: evicted, it replays its short history when it wakes.
pub const DEFAULT_MAX_CACHED_WORKFLOWS: usize = 100;

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok(), TemporalSettings::load()?)
    }

    /// Parses our variables from `lookup` (the environment, or a table in tests).
    pub fn from_vars(
        lookup: impl Fn(&str) -> Option<String>,
        temporal: TemporalSettings,
    ) -> anyhow::Result<Self> {
        let env = Env(lookup);
        let d = RulesConfig::default();
        let max_rps: f64 = env.number("TALENTLMS_MAX_RPS", 10.0)?;
        ensure!(max_rps > 0.0 && max_rps.is_finite(), "TALENTLMS_MAX_RPS: {max_rps} is not positive");
        let db_path: PathBuf =
            env.var("TOLLGATE_DB").unwrap_or_else(|| ".tollgate/tollgate.db".into()).into();
        let store = match env.var("TOLLGATE_STORE").as_deref() {
            None | Some("sqlite") => tollgate_store::StoreConfig::Sqlite { path: db_path.clone() },
            Some("firestore") => tollgate_store::StoreConfig::Firestore {
                project_id: env
                    .var("FIRESTORE_PROJECT_ID")
                    .or_else(|| env.var("GOOGLE_CLOUD_PROJECT"))
                    .context("TOLLGATE_STORE=firestore needs FIRESTORE_PROJECT_ID")?,
                database: env.var("FIRESTORE_DATABASE"),
            },
            Some(other) => bail!("TOLLGATE_STORE: {other:?} is not sqlite or firestore"),
        };
        let warehouse = match env.var("TOLLGATE_WAREHOUSE").as_deref() {
            None | Some("sqlite") => tollgate_warehouse::WarehouseConfig::Sqlite { path: db_path.clone() },
            Some("bigquery") => tollgate_warehouse::WarehouseConfig::BigQuery {
                project_id: env
                    .var("BIGQUERY_PROJECT_ID")
                    .or_else(|| env.var("GOOGLE_CLOUD_PROJECT"))
                    .context("TOLLGATE_WAREHOUSE=bigquery needs BIGQUERY_PROJECT_ID")?,
                dataset: env.var("BIGQUERY_DATASET").unwrap_or_else(|| "tollgate".into()),
                emulator_host: env.var("BIGQUERY_EMULATOR_HOST"),
            },
            Some(other) => bail!("TOLLGATE_WAREHOUSE: {other:?} is not sqlite or bigquery"),
        };
        let addr = env.var("TOLLGATE_HTTP_ADDR").unwrap_or_else(|| "127.0.0.1:8088".into());
        let ingress = match env.var("TOLLGATE_INGRESS").as_deref().map(str::trim) {
            None | Some("journal") => Ingress::Journal,
            Some("direct") => Ingress::Direct,
            Some(other) => bail!("TOLLGATE_INGRESS: {other:?} is not journal or direct"),
        };
        let log_json = match env.var("TOLLGATE_LOG_FORMAT").as_deref().map(str::trim) {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => bail!("TOLLGATE_LOG_FORMAT: {other:?} is not text or json"),
        };
        let worker_metrics_addr = env
            .var("TOLLGATE_WORKER_METRICS_ADDR")
            .map(|a| a.parse().map_err(|_| anyhow!("TOLLGATE_WORKER_METRICS_ADDR: {a:?} is not host:port")))
            .transpose()?;
        let journal = match env.var("TOLLGATE_JOURNAL").as_deref().map(str::trim) {
            None => JournalBackend::Store,
            Some(b @ ("sqlite" | "firestore")) => {
                let kind = match &store {
                    tollgate_store::StoreConfig::Sqlite { .. } => "sqlite",
                    tollgate_store::StoreConfig::Firestore { .. } => "firestore",
                };
                ensure!(
                    b == kind,
                    "TOLLGATE_JOURNAL={b} needs TOLLGATE_STORE={b} (the journal lives in the document store)"
                );
                JournalBackend::Store
            }
            Some("pubsub") => {
                let project = env
                    .var("PUBSUB_PROJECT_ID")
                    .or_else(|| env.var("GOOGLE_CLOUD_PROJECT"))
                    .context("TOLLGATE_JOURNAL=pubsub needs PUBSUB_PROJECT_ID")?;
                let topic = env.var("TOLLGATE_PUBSUB_TOPIC").unwrap_or_else(|| "tollgate-webhooks".into());
                let sub =
                    env.var("TOLLGATE_PUBSUB_SUBSCRIPTION").unwrap_or_else(|| "tollgate-forwarder".into());
                let max_attempts: u32 = env.number("TOLLGATE_PUBSUB_MAX_ATTEMPTS", 5)?;
                ensure!(
                    (5..=100).contains(&max_attempts),
                    "TOLLGATE_PUBSUB_MAX_ATTEMPTS: {max_attempts} is not in 5..=100"
                );
                JournalBackend::PubSub(PubSubSettings {
                    topic: format!("projects/{project}/topics/{topic}"),
                    subscription: format!("projects/{project}/subscriptions/{sub}"),
                    dead_letter_topic: format!("projects/{project}/topics/{topic}-dead-letter"),
                    dead_letter_subscription: format!("projects/{project}/subscriptions/{sub}-dead-letter"),
                    max_attempts,
                    emulator_host: env.var("PUBSUB_EMULATOR_HOST"),
                })
            }
            Some(other) => bail!("TOLLGATE_JOURNAL: {other:?} is not sqlite, firestore or pubsub"),
        };
        let forwarder_lease_secs = env.secs("TOLLGATE_FORWARDER_LEASE", 15)?;
        ensure!(forwarder_lease_secs >= 1, "TOLLGATE_FORWARDER_LEASE: must be at least 1s");
        let workflow_pollers: Option<usize> = env.opt_number("TOLLGATE_WORKFLOW_POLLERS")?;
        // The SDK refuses fewer than two with a workflow cache (one sticky, one shared).
        ensure!(workflow_pollers.is_none_or(|n| n >= 2), "TOLLGATE_WORKFLOW_POLLERS: must be at least 2");
        Ok(Self {
            journal,
            forwarder_lease_secs,
            log_json,
            worker_metrics_addr,
            metrics_token: env.secret("TOLLGATE_METRICS_TOKEN"),
            temporal_ui_url: env
                .var("TOLLGATE_TEMPORAL_UI_URL")
                .unwrap_or_else(|| "http://127.0.0.1:8233".into())
                .trim_end_matches('/')
                .to_string(),
            store,
            warehouse,
            task_queue: env.var("TOLLGATE_TASK_QUEUE").unwrap_or_else(|| "tollgate".into()),
            db_path,
            talentlms_url: env.var("TALENTLMS_URL").unwrap_or_else(|| "http://127.0.0.1:8089".into()),
            talentlms_api_key: env.secret("TALENTLMS_API_KEY"),
            talentlms_max_rps: max_rps,
            max_cached_workflows: env
                .number("TOLLGATE_MAX_CACHED_WORKFLOWS", DEFAULT_MAX_CACHED_WORKFLOWS)?,
            workflow_pollers,
            worker_max_rss_mb: env.opt_number("TOLLGATE_WORKER_MAX_RSS_MB")?,
            rules: RulesConfig {
                link_poll_secs: env.secs("TOLLGATE_LINK_POLL", d.link_poll_secs)?,
                retention_secs: env.secs("TOLLGATE_RETENTION", d.retention_secs)?,
                max_history: env.number("TOLLGATE_MAX_HISTORY", d.max_history)?,
                talentlms_task_queue: env.var("TOLLGATE_TALENTLMS_QUEUE").unwrap_or(d.talentlms_task_queue),
                max_retry_interval_secs: env
                    .secs("TOLLGATE_MAX_RETRY_INTERVAL", d.max_retry_interval_secs)?,
            },
            http: HttpSettings {
                addr: addr.parse().map_err(|_| anyhow!("TOLLGATE_HTTP_ADDR: {addr:?} is not host:port"))?,
                hottok: env.secret("TOLLGATE_HOTTOK"),
                api_token: env.secret("TOLLGATE_API_TOKEN"),
                dashboard_token: env.secret("TOLLGATE_DASHBOARD_TOKEN"),
                ingress,
                header_timeout_secs: env.secs("TOLLGATE_HTTP_HEADER_TIMEOUT", 10)?,
                body_timeout_secs: env.secs("TOLLGATE_HTTP_BODY_TIMEOUT", 10)?,
                https: env.var("TOLLGATE_PUBLIC_URL").is_some_and(|u| u.starts_with("https://")),
            },
            temporal,
            log_filter: env.var("RUST_LOG").unwrap_or_else(|| crate::telemetry::DEFAULT_FILTER.into()),
        })
    }
}

/// Blank counts as unset.
struct Env<F>(F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    fn var(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    fn secret(&self, name: &str) -> Option<Secret> {
        self.var(name).map(Secret)
    }

    /// The variable as a number; None when unset.
    fn opt_number<T: std::str::FromStr>(&self, name: &str) -> anyhow::Result<Option<T>> {
        self.var(name).map(|v| v.parse().map_err(|_| anyhow!("{name}: {v:?} is not a number"))).transpose()
    }

    fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> anyhow::Result<T> {
        Ok(self.opt_number(name)?.unwrap_or(default))
    }

    fn secs(&self, name: &str, default: u64) -> anyhow::Result<u64> {
        match self.var(name) {
            Some(v) => parse_secs(&v).map_err(|e| anyhow!("{name}: {e}")),
            None => Ok(default),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(vars: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let temporal = TemporalSettings::load().expect("Temporal defaults");
        Settings::from_vars(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()), temporal)
    }

    fn error(vars: &[(&str, &str)]) -> String {
        format!("{:#}", parse(vars).expect_err("should fail"))
    }

    #[test]
    fn defaults_run_the_local_stack() {
        let s = parse(&[]).unwrap();
        assert_eq!(s.task_queue, "tollgate");
        assert_eq!(s.db_path, PathBuf::from(".tollgate/tollgate.db"));
        assert_eq!(s.http.addr, "127.0.0.1:8088".parse().unwrap());
        assert_eq!(s.http.ingress, Ingress::Journal);
        assert_eq!((s.http.hottok, s.http.api_token, s.http.dashboard_token), (None, None, None));
        assert_eq!(s.talentlms_max_rps, 10.0);
        assert_eq!(s.max_cached_workflows, DEFAULT_MAX_CACHED_WORKFLOWS);
        assert_eq!(s.workflow_pollers, None, "the SDK's default");
        assert_eq!(s.rules.link_poll_secs, RulesConfig::default().link_poll_secs);
        assert_eq!(s.log_filter, crate::telemetry::DEFAULT_FILTER);
    }

    #[test]
    fn variables_are_read() {
        let s = parse(&[
            ("TOLLGATE_HTTP_ADDR", "0.0.0.0:9000"),
            ("TOLLGATE_INGRESS", "direct"),
            ("TOLLGATE_HOTTOK", "hot"),
            ("TOLLGATE_API_TOKEN", "api"),
            ("TOLLGATE_DASHBOARD_TOKEN", " "),
            ("TOLLGATE_LINK_POLL", "2m"),
            ("TOLLGATE_WORKER_MAX_RSS_MB", "512"),
            ("TOLLGATE_WORKFLOW_POLLERS", "20"),
            ("TALENTLMS_API_KEY", "key"),
            ("TOLLGATE_LOG_FORMAT", "json"),
            ("TOLLGATE_WORKER_METRICS_ADDR", "127.0.0.1:9464"),
            ("TOLLGATE_METRICS_TOKEN", "scrape"),
            ("TOLLGATE_HTTP_HEADER_TIMEOUT", "5s"),
            ("TOLLGATE_PUBLIC_URL", "https://tollgate.example.com"),
        ])
        .unwrap();
        assert!(s.log_json && s.http.https);
        assert_eq!(s.worker_metrics_addr, Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(s.metrics_token.as_ref().map(Secret::expose), Some("scrape"));
        assert_eq!((s.http.header_timeout_secs, s.http.body_timeout_secs), (5, 10));
        assert_eq!(s.http.addr.port(), 9000);
        assert_eq!(s.http.ingress, Ingress::Direct);
        assert_eq!(s.http.hottok.as_ref().map(Secret::expose), Some("hot"));
        assert_eq!(s.http.api_token.as_ref().map(Secret::expose), Some("api"));
        assert_eq!(s.http.dashboard_token, None, "blank is unset");
        assert_eq!(s.rules.link_poll_secs, 120);
        assert_eq!(s.worker_max_rss_mb, Some(512));
        assert_eq!(s.workflow_pollers, Some(20));
    }

    #[test]
    fn the_pubsub_journal_names_its_resources() {
        assert_eq!(parse(&[]).unwrap().journal, JournalBackend::Store);
        assert_eq!(parse(&[("TOLLGATE_JOURNAL", "sqlite")]).unwrap().journal, JournalBackend::Store);
        let s = parse(&[
            ("TOLLGATE_JOURNAL", "pubsub"),
            ("PUBSUB_PROJECT_ID", "tollgate-dev"),
            ("PUBSUB_EMULATOR_HOST", "127.0.0.1:8085"),
        ])
        .unwrap();
        let JournalBackend::PubSub(p) = s.journal else { panic!("not pubsub") };
        assert_eq!(p.topic, "projects/tollgate-dev/topics/tollgate-webhooks");
        assert_eq!(p.subscription, "projects/tollgate-dev/subscriptions/tollgate-forwarder");
        assert_eq!(p.dead_letter_topic, "projects/tollgate-dev/topics/tollgate-webhooks-dead-letter");
        assert_eq!(
            p.dead_letter_subscription,
            "projects/tollgate-dev/subscriptions/tollgate-forwarder-dead-letter"
        );
        assert_eq!((p.max_attempts, p.emulator_host.as_deref()), (5, Some("127.0.0.1:8085")));
    }

    #[test]
    fn a_bad_variable_is_named() {
        for (vars, name) in [
            (&[("TALENTLMS_MAX_RPS", "fast")][..], "TALENTLMS_MAX_RPS"),
            (&[("TALENTLMS_MAX_RPS", "0")], "TALENTLMS_MAX_RPS"),
            (&[("TOLLGATE_MAX_HISTORY", "-3")], "TOLLGATE_MAX_HISTORY"),
            (&[("TOLLGATE_RETENTION", "soon")], "TOLLGATE_RETENTION"),
            (&[("TOLLGATE_HTTP_ADDR", "localhost")], "TOLLGATE_HTTP_ADDR"),
            (&[("TOLLGATE_INGRESS", "carrier-pigeon")], "TOLLGATE_INGRESS"),
            (&[("TOLLGATE_STORE", "mongo")], "TOLLGATE_STORE"),
            (&[("TOLLGATE_STORE", "firestore")], "FIRESTORE_PROJECT_ID"),
            (&[("TOLLGATE_WAREHOUSE", "bigquery")], "BIGQUERY_PROJECT_ID"),
            (&[("TOLLGATE_LOG_FORMAT", "xml")], "TOLLGATE_LOG_FORMAT"),
            (&[("TOLLGATE_WORKER_METRICS_ADDR", "9100")], "TOLLGATE_WORKER_METRICS_ADDR"),
            (&[("TOLLGATE_HTTP_BODY_TIMEOUT", "slow")], "TOLLGATE_HTTP_BODY_TIMEOUT"),
            (&[("TOLLGATE_FORWARDER_LEASE", "0s")], "TOLLGATE_FORWARDER_LEASE"),
            (&[("TOLLGATE_WORKFLOW_POLLERS", "1")], "TOLLGATE_WORKFLOW_POLLERS"),
            (&[("TOLLGATE_WORKFLOW_POLLERS", "many")], "TOLLGATE_WORKFLOW_POLLERS"),
            (&[("TOLLGATE_JOURNAL", "kafka")], "TOLLGATE_JOURNAL"),
            (&[("TOLLGATE_JOURNAL", "firestore")], "TOLLGATE_STORE=firestore"),
            (&[("TOLLGATE_JOURNAL", "pubsub")], "PUBSUB_PROJECT_ID"),
            (
                &[
                    ("TOLLGATE_JOURNAL", "pubsub"),
                    ("PUBSUB_PROJECT_ID", "p"),
                    ("TOLLGATE_PUBSUB_MAX_ATTEMPTS", "3"),
                ],
                "TOLLGATE_PUBSUB_MAX_ATTEMPTS",
            ),
        ] {
            let e = error(vars);
            assert!(e.contains(name), "{vars:?}: {e}");
        }
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let s = parse(&[
            ("TOLLGATE_HOTTOK", "hot-secret"),
            ("TOLLGATE_API_TOKEN", "api-secret"),
            ("TOLLGATE_DASHBOARD_TOKEN", "dash-secret"),
            ("TALENTLMS_API_KEY", "lms-secret"),
        ])
        .unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
