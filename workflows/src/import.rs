//! `HotmartImport`: pages through Hotmart's subscriptions (every status) and sales
//! history, and delivers what Tollgate would have received through the webhook's own
//! path (derived webhook bodies, journaled by id, forwarded to their workflows). Durable
//! and resumable: the cursor and the counts are the workflow's state, carried across
//! continue-as-new, so a crash or restart resumes at the page it was on. The `progress`
//! query reports where it is.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use temporalio_common::RetryPolicy;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::workflows::join_all;
use temporalio_sdk::{
    ActivityOptions, ContinueAsNewOptions, WorkflowContext, WorkflowContextView, WorkflowResult,
};

use crate::acts::{
    DeliverHotmart, HotmartDelivery, HotmartSalesPage, HotmartSubscriptionPurchases,
    HotmartSubscriptionsPage, PageRequest,
};
use crate::workflow::now_ms;
use hotmart_api::events::Source;

pub const IMPORT_WORKFLOW_TYPE: &str = "HotmartImport";
pub const QUERY_PROGRESS: &str = "progress";

/// Sales statuses read from the history, one pass each (without a filter Hotmart returns
/// only APPROVED and COMPLETE).
pub const SALE_STATUSES: [&str; 4] = ["APPROVED", "COMPLETE", "REFUNDED", "CHARGEBACK"];

/// The Hotmart API activities' task queue: `TOLLGATE_HOTMART_QUEUE`, else the main
/// queue's name with `-hotmart`.
pub fn hotmart_queue(task_queue: &str, configured: Option<String>) -> String {
    configured.filter(|q| !q.trim().is_empty()).unwrap_or_else(|| format!("{task_queue}-hotmart"))
}

/// Pages per run before continue-as-new (bounds the history: ~3 events per call).
const PAGES_PER_RUN: u32 = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRequest {
    /// Only what started at or after this (subscriptions by accession, sales by order date).
    pub since_ms: Option<i64>,
    pub product_id: Option<i64>,
    /// Items per page.
    pub page_size: u32,
    /// The rate-capped task queue of the Hotmart API activities.
    pub hotmart_task_queue: String,
    pub source: Source,
    /// Where a continued run resumes; `None` for a fresh import.
    #[serde(default)]
    pub progress: Option<ImportProgress>,
}

/// Which list the import is reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "list", content = "status")]
pub enum Phase {
    Subscriptions,
    /// The sales history with `SALE_STATUSES[i]`.
    Sales(usize),
    Done,
}

/// What the `progress` query (and the result) says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportProgress {
    pub phase: Phase,
    pub page_token: Option<String>,
    /// Totals Hotmart reported for the list being read.
    pub phase_total: Option<u64>,
    pub phase_done: u64,
    pub pages: u64,
    pub subscriptions: u64,
    pub sales: u64,
    /// Events derived, and of them those the journal did not have yet.
    pub events: u64,
    pub events_new: u64,
    /// When the import started (workflow time): derived reversals carry it.
    pub observed_at_ms: i64,
}

impl ImportProgress {
    pub(crate) fn start(observed_at_ms: i64) -> Self {
        Self {
            phase: Phase::Subscriptions,
            page_token: None,
            phase_total: None,
            phase_done: 0,
            pages: 0,
            subscriptions: 0,
            sales: 0,
            events: 0,
            events_new: 0,
            observed_at_ms,
        }
    }

    /// Counts one page read: its records, the events derived and of them the new ones;
    /// then the next page, or the next list.
    pub(crate) fn record(
        &mut self,
        (subs, sales): (u64, u64),
        total: Option<u64>,
        (events, new): (u64, u64),
        next: Option<String>,
    ) {
        self.pages += 1;
        self.subscriptions += subs;
        self.sales += sales;
        self.phase_done += subs + sales;
        self.phase_total = total;
        self.events += events;
        self.events_new += new;
        match next {
            Some(t) => self.page_token = Some(t),
            None => self.next_phase(),
        }
    }

    /// Moves on to the next list.
    fn next_phase(&mut self) {
        self.phase = match self.phase {
            Phase::Subscriptions => Phase::Sales(0),
            Phase::Sales(i) if i + 1 < SALE_STATUSES.len() => Phase::Sales(i + 1),
            _ => Phase::Done,
        };
        self.page_token = None;
        self.phase_total = None;
        self.phase_done = 0;
    }
}

pub(crate) fn api_opts(queue: &str) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(300))
        .task_queue(queue.to_string())
        .retry_policy(retry())
        .build()
}

pub(crate) fn store_opts() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(120)).retry_policy(retry()).build()
}

fn retry() -> RetryPolicy {
    // The client already waited out 429s and 5xx; this covers a worker crash or a long outage.
    RetryPolicy::builder()
        .initial_interval(Duration::from_secs(1))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(60))
        .build()
}

#[workflow]
pub struct ImportWorkflow {
    req: ImportRequest,
    progress: Option<ImportProgress>,
}

#[workflow_methods]
impl ImportWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, req: ImportRequest) -> Self {
        let progress = req.progress.clone();
        Self { req, progress }
    }

    #[query(name = QUERY_PROGRESS)]
    pub fn progress(&self, _ctx: &WorkflowContextView) -> Option<ImportProgress> {
        self.progress.clone()
    }

    #[run(name = IMPORT_WORKFLOW_TYPE)]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<ImportProgress> {
        let req = ctx.state(|s| s.req.clone());
        if ctx.state(|s| s.progress.is_none()) {
            let started = ImportProgress::start(now_ms(ctx));
            ctx.state_mut(|s| s.progress = Some(started));
        }
        let api = api_opts(&req.hotmart_task_queue);
        let mut pages_this_run = 0;
        loop {
            let p = ctx.state(|s| s.progress.clone().expect("set above"));
            let page_req = PageRequest {
                since_ms: req.since_ms,
                until_ms: p.observed_at_ms,
                product_id: req.product_id,
                page_size: req.page_size,
                page_token: p.page_token.clone(),
                status: status_of(p.phase),
                next_charge_since_ms: None,
            };
            let Some((delivery, next, total)) =
                read_page(ctx, p.phase, page_req, &api, delivery(&req, &p)).await?
            else {
                return Ok(p);
            };
            let (n_subs, n_sales) = (delivery.subscriptions.len() as u64, delivery.sales.len() as u64);
            let report = ctx.execute_activity(DeliverHotmart, delivery, store_opts()).await?;
            ctx.state_mut(|s| {
                let p = s.progress.as_mut().expect("set above");
                p.record((n_subs, n_sales), total, (report.events, report.new), next);
            });
            pages_this_run += 1;
            if pages_this_run >= PAGES_PER_RUN || ctx.continue_as_new_suggested() {
                let progress = ctx.state(|s| s.progress.clone());
                if progress.as_ref().is_some_and(|p| p.phase != Phase::Done) {
                    ctx.continue_as_new(
                        ImportRequest { progress, ..req.clone() },
                        ContinueAsNewOptions::default(),
                    )?;
                }
            }
        }
    }
}

/// One page of the list `phase` names (a subscriptions page with each one's charges, or
/// a sales page), as records for `base`; with the next page token and the list's total.
/// `None` once every list is read.
pub(crate) async fn read_page<W>(
    ctx: &WorkflowContext<W>,
    phase: Phase,
    page_req: PageRequest,
    api: &ActivityOptions,
    base: HotmartDelivery,
) -> WorkflowResult<Option<(HotmartDelivery, Option<String>, Option<u64>)>> {
    Ok(Some(match phase {
        Phase::Done => return Ok(None),
        Phase::Subscriptions => {
            let page = ctx.execute_activity(HotmartSubscriptionsPage, page_req, api.clone()).await?;
            let charges = join_all(page.items.iter().map(|s| {
                ctx.execute_activity(HotmartSubscriptionPurchases, s.subscriber_code.clone(), api.clone())
            }))
            .await;
            let mut subscriptions = Vec::with_capacity(page.items.len());
            for (s, c) in page.items.iter().zip(charges) {
                subscriptions.push((s.clone(), c?));
            }
            let next = page.next().map(str::to_string);
            (HotmartDelivery { subscriptions, sales: vec![], ..base }, next, page.page_info.total_results)
        }
        Phase::Sales(_) => {
            let page = ctx.execute_activity(HotmartSalesPage, page_req, api.clone()).await?;
            let next = page.next().map(str::to_string);
            (HotmartDelivery { sales: page.items, ..base }, next, page.page_info.total_results)
        }
    }))
}

/// The sales-history status filter of a phase.
pub(crate) fn status_of(phase: Phase) -> Option<String> {
    match phase {
        Phase::Sales(i) => Some(SALE_STATUSES[i].to_string()),
        _ => None,
    }
}

fn delivery(req: &ImportRequest, p: &ImportProgress) -> HotmartDelivery {
    HotmartDelivery {
        source: req.source,
        observed_at_ms: p.observed_at_ms,
        subscriptions: vec![],
        sales: vec![],
    }
}
