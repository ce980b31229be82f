//! `HotmartReconcile`: heals lost webhooks. Reads Hotmart's sales history (every status)
//! ordered in a window and the subscriptions due in it (renewed, overdue, recently
//! cancelled), derives the events they imply, and delivers through the journal those
//! whose fact Tollgate does not have (matched by transaction and kind, not by id), marked
//! `"tollgate_source":"reconcile"`. It first records the product names of the products
//! API. Its report is stored and is its result. Scheduled
//! hourly by `schedules apply`; `hotmart reconcile` runs one now.

use serde::{Deserialize, Serialize};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ContinueAsNewOptions, WorkflowContext, WorkflowContextView, WorkflowResult};

use crate::acts::{
    HotmartDelivery, HotmartProductsPage, PageRequest, SaveHotmartReport, SaveProductNames, SweepHotmart,
    SweepRequest,
};
use crate::import::{ImportProgress, Phase, api_opts, read_page, status_of, store_opts};
use crate::workflow::now_ms;
use hotmart_api::events::Source;
use tollgate_domain::metrics::DAY_MS;
use tollgate_domain::sweep::HotmartReconcileReport;

pub const HOTMART_RECONCILE_WORKFLOW_TYPE: &str = "HotmartReconcile";
pub const DEFAULT_LOOKBACK_DAYS: u32 = 3;
const PAGE_SIZE: u32 = 50;
const PAGES_PER_RUN: u32 = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HotmartReconcileRequest {
    /// The window: the last `lookback_days` before the run starts...
    pub lookback_days: u32,
    /// ...or from this instant (the CLI's `--since`).
    #[serde(default)]
    pub since_ms: Option<i64>,
    /// Report only; deliver nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// The rate-capped task queue of the Hotmart API activities.
    pub hotmart_task_queue: String,
    /// Where a continued run resumes.
    #[serde(default)]
    pub carry: Option<(ImportProgress, HotmartReconcileReport)>,
}

impl HotmartReconcileRequest {
    pub fn new(hotmart_task_queue: String) -> Self {
        Self {
            lookback_days: DEFAULT_LOOKBACK_DAYS,
            since_ms: None,
            dry_run: false,
            hotmart_task_queue,
            carry: None,
        }
    }
}

#[workflow]
pub struct HotmartReconcileWorkflow {
    req: HotmartReconcileRequest,
}

#[workflow_methods]
impl HotmartReconcileWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, req: HotmartReconcileRequest) -> Self {
        Self { req }
    }

    #[run(name = HOTMART_RECONCILE_WORKFLOW_TYPE)]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<HotmartReconcileReport> {
        let req = ctx.state(|s| s.req.clone());
        let (mut progress, mut report) = match req.carry.clone() {
            Some(carried) => carried,
            None => {
                let now = now_ms(ctx);
                let from_ms = req.since_ms.unwrap_or(now - i64::from(req.lookback_days.max(1)) * DAY_MS);
                let report = HotmartReconcileReport {
                    id: ctx.workflow_id().to_string(),
                    started_at_ms: now,
                    from_ms,
                    to_ms: now,
                    dry_run: req.dry_run,
                    ..Default::default()
                };
                let api = api_opts(&req.hotmart_task_queue);
                let mut token = None;
                // Product names first (the dashboard and the API show them); a dry run writes none.
                while !req.dry_run {
                    let page = ctx.execute_activity(HotmartProductsPage, token, api.clone()).await?;
                    let names = page.items.iter().map(|p| (p.id, p.name.clone())).collect::<Vec<_>>();
                    ctx.execute_activity(SaveProductNames, names, store_opts()).await?;
                    token = page.next().map(str::to_string);
                    if token.is_none() {
                        break;
                    }
                }
                (ImportProgress::start(now), report)
            }
        };
        let api = api_opts(&req.hotmart_task_queue);
        let mut pages_this_run = 0;
        loop {
            let page_req = PageRequest {
                // Sales ordered in the window; subscriptions of any accession due in it.
                since_ms: (progress.phase != Phase::Subscriptions).then_some(report.from_ms),
                until_ms: report.to_ms,
                product_id: None,
                page_size: PAGE_SIZE,
                page_token: progress.page_token.clone(),
                status: status_of(progress.phase),
                next_charge_since_ms: Some(report.from_ms),
            };
            let base = HotmartDelivery {
                source: Source::Reconcile,
                observed_at_ms: report.to_ms,
                subscriptions: vec![],
                sales: vec![],
            };
            let Some((delivery, next, total)) = read_page(ctx, progress.phase, page_req, &api, base).await?
            else {
                break;
            };
            let counts = (delivery.subscriptions.len() as u64, delivery.sales.len() as u64);
            let sweep = SweepRequest {
                delivery,
                dry_run: req.dry_run,
                // What arrived since a lookback before the window is judged from the journal too.
                journal_since_ms: report.from_ms - i64::from(DEFAULT_LOOKBACK_DAYS) * DAY_MS,
            };
            let batch = ctx.execute_activity(SweepHotmart, sweep, store_opts()).await?;
            let delivered = batch.missed.iter().filter(|m| m.delivered).count() as u64;
            progress.record(counts, total, (batch.checked, delivered), next);
            report.subscriptions += counts.0;
            report.sales += counts.1;
            report.add(batch);
            pages_this_run += 1;
            if (pages_this_run >= PAGES_PER_RUN || ctx.continue_as_new_suggested())
                && progress.phase != Phase::Done
            {
                let carry = Some((progress, report));
                match ctx.continue_as_new(
                    HotmartReconcileRequest { carry, ..req },
                    ContinueAsNewOptions::default(),
                )? {}
            }
        }
        report.finished_at_ms = Some(now_ms(ctx));
        ctx.execute_activity(SaveHotmartReport, report.clone(), store_opts()).await?;
        Ok(report)
    }
}
