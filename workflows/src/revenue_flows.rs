//! The scheduled revenue workflows (what the Airflow DAGs did): the daily rollup and the
//! reconciliation of revenue rows against the webhook journal. Each run's result is its
//! workflow result, so the Temporal UI shows what a run found and did.

use serde::{Deserialize, Serialize};
use std::time::Duration;
use temporalio_common::RetryPolicy;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ActivityOptions, WorkflowContext, WorkflowContextView, WorkflowResult};

use crate::acts::{ReconcileRevenue, ReconcileWindow, RollupDay};
use crate::workflow::now_ms;
use tollgate_domain::duration::secs_to_ms;
use tollgate_domain::metrics::{DAY_MS, Day, DayRollup, ReconcileReport, ReconcileRequest, RollupRequest};

pub const ROLLUP_WORKFLOW_TYPE: &str = "RevenueRollup";
pub const RECONCILE_WORKFLOW_TYPE: &str = "RevenueReconcile";

fn opts() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(600))
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_secs(1))
                .backoff_coefficient(2.0)
                .maximum_interval(Duration::from_secs(60))
                .maximum_attempts(20)
                .build(),
        )
        .build()
}

/// Rolls up one day: the requested one, or yesterday (UTC) by workflow time.
#[workflow]
pub struct RollupWorkflow {
    req: RollupRequest,
}

#[workflow_methods]
impl RollupWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, req: RollupRequest) -> Self {
        Self { req }
    }

    #[run(name = ROLLUP_WORKFLOW_TYPE)]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<DayRollup> {
        let day = match ctx.state(|s| s.req.day) {
            Some(day) => day,
            None => Day::of_ms(now_ms(ctx)).prev(),
        };
        Ok(ctx.execute_activity(RollupDay, day, opts()).await?)
    }
}

/// What a reconciliation run returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileOutcome {
    pub report: ReconcileReport,
    /// One line for the UI: "ok" or what was off.
    pub summary: String,
}

#[workflow]
pub struct ReconcileWorkflow {
    req: ReconcileRequest,
}

#[workflow_methods]
impl ReconcileWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, req: ReconcileRequest) -> Self {
        Self { req }
    }

    #[run(name = RECONCILE_WORKFLOW_TYPE)]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<ReconcileOutcome> {
        let req = ctx.state(|s| s.req.clone());
        let now = now_ms(ctx);
        let (from_ms, to_ms) = match req.range {
            Some(r) => (r.start_ms(), r.end_ms()),
            None => (now - i64::from(req.lookback_days.max(1)) * DAY_MS, now),
        };
        let window = ReconcileWindow {
            from_ms,
            to_ms,
            repair: req.repair,
            settled_before_ms: now.saturating_sub(secs_to_ms(req.settle_secs)),
        };
        let report = ctx.execute_activity(ReconcileRevenue, window, opts()).await?;
        Ok(ReconcileOutcome { summary: summarize(&report), report })
    }
}

pub fn summarize(r: &ReconcileReport) -> String {
    let figures = figures(r);
    match (&r.repair_skipped, r.undecodable) {
        (Some(why), _) => format!("{figures}; repair skipped: {why}"),
        (None, 0) => figures,
        (None, n) => format!("{figures}; {n} journal entries this version cannot decode"),
    }
}

fn figures(r: &ReconcileReport) -> String {
    if r.missing.is_empty() && r.extra.is_empty() && r.differing.is_empty() {
        return format!("ok: {} rows match the journal", r.found);
    }
    format!(
        "{} missing ({} written), {} extra ({} removed), {} differing; {} expected, {} found",
        r.missing.len(),
        r.repaired_missing,
        r.extra.len(),
        r.removed_extra,
        r.differing.len(),
        r.expected,
        r.found
    )
}
