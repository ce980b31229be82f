//! The Tollgate worker: runs `AccessWorkflow`, the revenue workflows and the store
//! activities on the main task
//! queue, and the TalentLMS activities on a second queue whose dispatch rate the Temporal
//! server caps, so all workers together never exceed `TALENTLMS_MAX_RPS`.

use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use tollgate_activities::config::{Settings, temporal_client};
use tollgate_activities::{StoreActivities, TalentLmsActivities};
use tollgate_store::DocStore;
use tollgate_warehouse::Warehouse;
use tollgate_workflows::{AccessWorkflow, ReconcileWorkflow, RollupWorkflow};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tollgate_activities::config::init_logging();
    let settings = Settings::from_env()?;
    let api_key =
        settings.talentlms_api_key.clone().ok_or_else(|| anyhow::anyhow!("TALENTLMS_API_KEY is not set"))?;
    tracing::info!(?settings, "starting worker");

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

    let runtime = Runtime::from_current_tokio(Default::default())?;
    let client = temporal_client().await?;

    let main_opts = WorkerOptions::new(settings.task_queue.as_str())
        .register_workflow::<AccessWorkflow>()?
        .register_workflow::<RollupWorkflow>()?
        .register_workflow::<ReconcileWorkflow>()?
        .register_activities(store_acts)
        // A crashed worker's sticky queue holds a timer's task this long before another
        // worker takes it: it bounds how late a deadline fires after a crash.
        .sticky_queue_schedule_to_start_timeout(std::time::Duration::from_secs(3))
        .build();
    let talent_opts = WorkerOptions::new(settings.rules.talentlms_task_queue.as_str())
        .register_activities(talent_acts)
        .max_task_queue_activities_per_second(settings.talentlms_max_rps)
        .build();
    let mut main_worker = Worker::new(&runtime, client.clone(), main_opts)?;
    let mut talent_worker = Worker::new(&runtime, client, talent_opts)?;
    tracing::info!(task_queue = %settings.task_queue, talentlms_queue = %settings.rules.talentlms_task_queue, "worker running");
    // Workers are !Send: both run on this task.
    let (a, b) = tokio::join!(main_worker.run(), talent_worker.run());
    a?;
    b?;
    Ok(())
}
