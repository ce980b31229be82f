//! The Tollgate worker: runs `AccessWorkflow`, the revenue workflows and the store
//! activities on the main task
//! queue, and the TalentLMS activities on a second queue whose dispatch rate the Temporal
//! server caps, so all workers together never exceed `TALENTLMS_MAX_RPS`.

use temporalio_sdk::runtime::PollerBehavior;
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use tollgate_activities::{StoreActivities, TalentLmsActivities};
use tollgate_service::{Settings, Temporal};
use tollgate_store::DocStore;
use tollgate_warehouse::Warehouse;
use tollgate_workflows::{
    AccessWorkflow, AuditWorkflow, HotmartReconcileWorkflow, ImportWorkflow, ReconcileWorkflow,
    RollupWorkflow,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    tollgate_service::telemetry::init(&settings.log_filter, settings.log_json);
    let api_key = settings
        .talentlms_api_key
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("TALENTLMS_API_KEY is not set"))?
        .expose()
        .to_string();
    tracing::info!(?settings, "starting worker");

    // Several workers of one machine share a SQLite file safely (WAL, file locks, every
    // write a transaction); a worker of another machine would corrupt it: refused.
    if matches!(settings.store, tollgate_store::StoreConfig::Sqlite { .. })
        || matches!(settings.warehouse, tollgate_warehouse::WarehouseConfig::Sqlite { .. })
    {
        tollgate_store::claim_sqlite_host(&settings.db_path, &tollgate_store::this_host())?;
    }
    let docs = DocStore::open(&settings.store).await?;
    let warehouse = Warehouse::open(&settings.warehouse).await?;
    let store_acts = StoreActivities { docs: docs.clone(), warehouse };
    let talent_acts = TalentLmsActivities {
        pace: tollgate_activities::Pace::per_second(settings.talentlms_max_rps),
        docs,
        client: talentlms::Client::with_timeout(
            &settings.talentlms_url,
            api_key,
            std::time::Duration::from_secs(10),
        )?,
    };

    let runtime = Runtime::from_current_tokio(
        metrics(settings.worker_metrics_addr, settings.metrics_token.clone()).await?,
    )?;
    let client = Temporal::new(settings.temporal.clone()).client().await?.clone();

    let main_opts = WorkerOptions::new(settings.task_queue.as_str())
        .register_workflow::<AccessWorkflow>()?
        .register_workflow::<RollupWorkflow>()?
        .register_workflow::<ReconcileWorkflow>()?
        .register_workflow::<ImportWorkflow>()?
        .register_workflow::<HotmartReconcileWorkflow>()?
        .register_workflow::<AuditWorkflow>()?
        .register_activities(store_acts)
        .max_cached_workflows(settings.max_cached_workflows)
        .maybe_workflow_task_poller_behavior(settings.workflow_pollers.map(PollerBehavior::SimpleMaximum))
        // A crashed worker's sticky queue holds a timer's task this long before another
        // worker takes it: it bounds how late a deadline fires after a crash.
        .sticky_queue_schedule_to_start_timeout(std::time::Duration::from_secs(3))
        .build();
    let talent_opts = WorkerOptions::new(settings.rules.talentlms_task_queue.as_str())
        .register_activities(talent_acts)
        .max_task_queue_activities_per_second(settings.talentlms_max_rps)
        .build();
    // Hotmart API reads (import, reconciliation) run only where credentials are set, on
    // their own queue capped at HOTMART_MAX_PER_MINUTE for every worker together.
    let hotmart_queue = tollgate_workflows::import::hotmart_queue(
        &settings.task_queue,
        std::env::var("TOLLGATE_HOTMART_QUEUE").ok(),
    );
    let mut hotmart_worker = match hotmart_api::HotmartEnv::from_env()? {
        Some(env) => {
            let acts = tollgate_activities::hotmart::HotmartApiActivities { client: env.client()? };
            let opts = WorkerOptions::new(hotmart_queue.as_str())
                .register_activities(acts)
                .max_task_queue_activities_per_second(env.max_per_minute / 60.0)
                .build();
            tracing::info!(queue = %hotmart_queue, endpoints = ?env.endpoints, "Hotmart API activities enabled");
            Some(Worker::new(&runtime, client.clone(), opts)?)
        }
        None => None,
    };
    let stop_hotmart = hotmart_worker.as_mut().map(|w| w.shutdown_handle());
    let mut main_worker = Worker::new(&runtime, client.clone(), main_opts)?;
    let mut talent_worker = Worker::new(&runtime, client, talent_opts)?;
    let (stop_main, stop_talent) = (main_worker.shutdown_handle(), talent_worker.shutdown_handle());
    tracing::info!(task_queue = %settings.task_queue, talentlms_queue = %settings.rules.talentlms_task_queue, "worker running");
    // Workers are !Send: both run on this task.
    let run = async {
        let hotmart = async {
            match hotmart_worker.as_mut() {
                Some(w) => w.run().await,
                None => Ok(()),
            }
        };
        let (a, b, c) = tokio::join!(main_worker.run(), talent_worker.run(), hotmart);
        a?;
        b?;
        c?;
        anyhow::Ok(())
    };
    tokio::pin!(run);
    let stop = tokio::select! {
        r = &mut run => return r,
        stop = stop_requested(settings.worker_max_rss_mb) => stop?,
    };
    // Polling stops; tasks in hand finish and report, so nothing waits for a timeout.
    tracing::warn!(reason = %stop, "shutting down: finishing in-flight tasks");
    stop_main();
    stop_talent();
    if let Some(stop) = stop_hotmart {
        stop();
    }
    run.await?;
    tracing::info!("worker stopped");
    if let Stop::MemoryCeiling { .. } = stop {
        std::process::exit(EXIT_RESTART_ME);
    }
    Ok(())
}

/// With `TOLLGATE_WORKER_METRICS_ADDR`: the SDK core exports its worker metrics on a
/// loopback port, and `/metrics` on that address serves ours followed by the SDK's.
async fn metrics(
    addr: Option<std::net::SocketAddr>,
    token: Option<tollgate_service::Secret>,
) -> anyhow::Result<temporalio_sdk::runtime::RuntimeOptions> {
    use temporalio_common::telemetry::{
        PrometheusExporterOptions, TelemetryOptions, start_prometheus_metric_exporter,
    };
    let Some(addr) = addr else { return Ok(Default::default()) };
    tollgate_activities::metrics::init();
    let sdk = start_prometheus_metric_exporter(
        PrometheusExporterOptions::builder().socket_addr(([127, 0, 0, 1], 0).into()).build(),
    )?;
    let bound =
        tollgate_service::metrics::serve(addr, Some(format!("http://{}/metrics", sdk.bound_addr)), token)
            .await?;
    tracing::info!(addr = %bound, "worker metrics on /metrics");
    let telemetry = TelemetryOptions::builder().metrics(sdk.meter as std::sync::Arc<_>).build();
    temporalio_sdk::runtime::RuntimeOptions::builder()
        .telemetry_options(telemetry)
        .build()
        .map_err(anyhow::Error::msg)
}

/// EX_TEMPFAIL: the supervisor (systemd `Restart=`, Kubernetes) starts a fresh process.
const EXIT_RESTART_ME: i32 = 75;

enum Stop {
    Signal(&'static str),
    MemoryCeiling { rss_mb: u64, limit_mb: u64 },
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Signal(name) => write!(f, "{name}"),
            Stop::MemoryCeiling { rss_mb, limit_mb } => write!(
                f,
                "resident memory {rss_mb} MB is over TOLLGATE_WORKER_MAX_RSS_MB={limit_mb}; exiting with \
                 {EXIT_RESTART_ME} to be restarted"
            ),
        }
    }
}

/// Resolves on SIGTERM/SIGINT, or once resident memory passes the ceiling. The ceiling exists
/// because the Temporal SDK (1.1.1) keeps a few KB per workflow wake-up after eviction (README,
/// "Worker memory"); a restart returns it, and workers are built to be restarted.
async fn stop_requested(max_rss_mb: Option<u64>) -> anyhow::Result<Stop> {
    let ceiling = async {
        let Some(limit_mb) = max_rss_mb else { return std::future::pending().await };
        let mut every = tokio::time::interval(std::time::Duration::from_secs(10));
        loop {
            every.tick().await;
            if let Some(rss_mb) = resident_mb()
                && rss_mb > limit_mb
            {
                return Stop::MemoryCeiling { rss_mb, limit_mb };
            }
        }
    };
    Ok(tokio::select! {
        signal = tollgate_service::shutdown_signal() => Stop::Signal(signal?),
        stop = ceiling => stop,
    })
}

/// VmRSS of this process from /proc (None where there is no procfs).
fn resident_mb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024)
}
