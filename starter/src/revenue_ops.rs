//! Operator commands for revenue: the Temporal Schedules that replace the Airflow DAGs,
//! rollups of chosen days (backfill), and reconciliation on demand.

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use temporalio_client::schedules::{
    CreateScheduleOptions, ScheduleAction, ScheduleError, ScheduleOverlapPolicy, ScheduleSpec,
};
use temporalio_client::tonic::Code;
use temporalio_client::{Client, RpcOptions, WorkflowIdConflictPolicy, WorkflowStartOptions};
use tollgate_domain::metrics::{Day, DayRange, DayRollup, ReconcileRequest, RollupRequest};
use tollgate_workflows::hotmart_reconcile::HotmartReconcileRequest;
use tollgate_workflows::revenue_flows::ReconcileOutcome;
use tollgate_workflows::talentlms_audit::AuditRequest;
use tollgate_workflows::{AuditWorkflow, HotmartReconcileWorkflow, ReconcileWorkflow, RollupWorkflow};

pub const ROLLUP_SCHEDULE: &str = "tollgate-revenue-rollup";
pub const RECONCILE_SCHEDULE: &str = "tollgate-revenue-reconcile";
pub const AUDIT_SCHEDULE: &str = "tollgate-talentlms-audit";

/// What `schedules apply` installs. Crons are UTC.
#[derive(Debug, Clone)]
pub struct ScheduleSettings {
    /// The daily rollup of yesterday (default 00:15 UTC).
    pub rollup_cron: String,
    /// Reconciliation (default hourly at :40) over the last `reconcile_lookback_days`.
    pub reconcile_cron: String,
    pub reconcile_lookback_days: u32,
    /// Journal entries younger than this are left to their workflow.
    pub settle_secs: u64,
    /// The Hotmart reconciliation's cron and input, when Hotmart credentials are set.
    pub hotmart: Option<(String, HotmartReconcileRequest)>,
    /// The TalentLMS drift audit's cron and input.
    pub talentlms_audit: Option<(String, AuditRequest)>,
}

impl Default for ScheduleSettings {
    fn default() -> Self {
        Self {
            rollup_cron: "15 0 * * *".into(),
            reconcile_cron: "40 * * * *".into(),
            reconcile_lookback_days: 2,
            settle_secs: 600,
            hotmart: None,
            talentlms_audit: None,
        }
    }
}

/// Creates both schedules, or brings existing ones to this definition. Safe to re-run.
/// Returns `(schedule id, "created" | "updated")`.
pub async fn apply_schedules(
    client: &Client,
    task_queue: &str,
    s: &ScheduleSettings,
) -> anyhow::Result<Vec<(String, &'static str)>> {
    let rollup = (
        ROLLUP_SCHEDULE,
        ScheduleAction::start_workflow(
            RollupWorkflow::run,
            RollupRequest::default(),
            task_queue,
            "revenue-rollup-daily",
        ),
        s.rollup_cron.clone(),
    );
    let reconcile = (
        RECONCILE_SCHEDULE,
        ScheduleAction::start_workflow(
            ReconcileWorkflow::run,
            ReconcileRequest {
                lookback_days: s.reconcile_lookback_days,
                range: None,
                repair: true,
                settle_secs: s.settle_secs,
            },
            task_queue,
            "revenue-reconcile-scheduled",
        ),
        s.reconcile_cron.clone(),
    );
    let mut schedules = vec![rollup, reconcile];
    if let Some((cron, req)) = &s.hotmart {
        let action = ScheduleAction::start_workflow(
            HotmartReconcileWorkflow::run,
            req.clone(),
            task_queue,
            "hotmart-reconcile-scheduled",
        );
        schedules.push((crate::hotmart_ops::RECONCILE_SCHEDULE, action, cron.clone()));
    }
    if let Some((cron, req)) = &s.talentlms_audit {
        let action = ScheduleAction::start_workflow(
            AuditWorkflow::run,
            req.clone(),
            task_queue,
            "talentlms-audit-scheduled",
        );
        schedules.push((AUDIT_SCHEDULE, action, cron.clone()));
    }
    let mut out = Vec::new();
    for (id, action, cron) in schedules {
        let spec = ScheduleSpec::builder().cron_strings(vec![cron]).build();
        let opts = CreateScheduleOptions::builder()
            .action(action.clone())
            .spec(spec.clone())
            .overlap_policy(ScheduleOverlapPolicy::Skip)
            .note("managed by `tollgate-starter schedules apply`")
            .build();
        match client.create_schedule(id, opts).await {
            Ok(_) => out.push((id.to_string(), "created")),
            Err(ScheduleError::Rpc(status)) if status.code() == Code::AlreadyExists => {
                client
                    .get_schedule_handle(id)
                    .update(
                        move |u| {
                            u.set_spec(spec);
                            u.set_action(action);
                            u.set_overlap_policy(ScheduleOverlapPolicy::Skip);
                        },
                        RpcOptions::default(),
                    )
                    .await?;
                out.push((id.to_string(), "updated"));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// Rolls up every day of `range`, one `RevenueRollup` workflow per day (id
/// `revenue-rollup-{day}`, re-runnable), and returns their results in day order.
pub async fn rollup_range(
    client: &Client,
    task_queue: &str,
    range: DayRange,
) -> anyhow::Result<Vec<DayRollup>> {
    let mut handles = Vec::with_capacity(range.len());
    for day in range.days() {
        let opts = WorkflowStartOptions::new(task_queue.to_string(), format!("revenue-rollup-{day}"))
            .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
            .build();
        handles
            .push(client.start_workflow(RollupWorkflow::run, RollupRequest { day: Some(day) }, opts).await?);
    }
    let mut results: FuturesOrdered<_> =
        handles.into_iter().map(|h| async move { h.get_result(Default::default()).await }).collect();
    let mut out = Vec::with_capacity(range.len());
    while let Some(r) = results.next().await {
        out.push(r?);
    }
    Ok(out)
}

/// Runs one reconciliation now and waits for its report.
pub async fn reconcile_now(
    client: &Client,
    task_queue: &str,
    req: ReconcileRequest,
) -> anyhow::Result<ReconcileOutcome> {
    let id = format!("revenue-reconcile-{}", tollgate_store::now_ms());
    let opts = WorkflowStartOptions::new(task_queue.to_string(), id).build();
    let handle = client.start_workflow(ReconcileWorkflow::run, req, opts).await?;
    Ok(handle.get_result(Default::default()).await?)
}

/// Parses `--from`/`--to` (`--to` defaults to `--from`).
pub fn day_range(from: &str, to: Option<&str>) -> anyhow::Result<DayRange> {
    let from: Day = from.parse().map_err(anyhow::Error::msg)?;
    let to: Day = to.map(str::parse).transpose().map_err(anyhow::Error::msg)?.unwrap_or(from);
    DayRange::new(from, to).map_err(anyhow::Error::msg)
}
