//! `tollgate-starter hotmart …`: the import of a school's existing customers from
//! Hotmart's API (a `HotmartImport` workflow, with a progress bar), and its dry run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::time::Duration;

use hotmart_api::events::{self, Source};
use hotmart_api::{SalesQuery, Subscription, SubscriptionPurchase, SubscriptionQuery};
use serde::Serialize;
use temporalio_client::{Client, WorkflowIdConflictPolicy, WorkflowStartOptions};
use tollgate_domain::access::{self, Facts, KeyKind};
use tollgate_domain::sweep::{HotmartReconcileReport, REPORT_KIND};
use tollgate_domain::{CourseLink, HotmartEvent, ProductId, WorkflowKey, ingress, revenue};
use tollgate_store::DocStore;
use tollgate_workflows::hotmart_reconcile::HotmartReconcileRequest;
use tollgate_workflows::import::{ImportProgress, ImportRequest, Phase, SALE_STATUSES};
use tollgate_workflows::{HotmartReconcileWorkflow, ImportWorkflow};

pub const IMPORT_WORKFLOW_ID: &str = "hotmart-import";
pub const RECONCILE_SCHEDULE: &str = "tollgate-hotmart-reconcile";
const PAGE_SIZE: u32 = 50;

/// The workflow's input for these options.
pub fn request(since_ms: Option<i64>, product_id: Option<i64>, hotmart_task_queue: String) -> ImportRequest {
    ImportRequest {
        since_ms,
        product_id,
        page_size: PAGE_SIZE,
        hotmart_task_queue,
        source: Source::Import,
        progress: None,
    }
}

/// Starts the import (or attaches to the one running: the id is fixed, so a second
/// command resumes watching instead of importing twice), draws its progress on stderr
/// and returns its final counts.
pub async fn import(client: &Client, task_queue: &str, req: ImportRequest) -> anyhow::Result<ImportProgress> {
    let opts = WorkflowStartOptions::new(task_queue.to_string(), IMPORT_WORKFLOW_ID.to_string())
        .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
        .build();
    client.start_workflow(ImportWorkflow::run, req, opts).await?;
    // By id, not by run: the import continues-as-new every few pages.
    let handle = client.get_workflow_handle::<ImportWorkflow>(IMPORT_WORKFLOW_ID.to_string());
    let result = handle.get_result(Default::default());
    tokio::pin!(result);
    let mut every = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            r = &mut result => {
                let done = r?;
                draw(&done);
                eprintln!();
                return Ok(done);
            }
            _ = every.tick() => {
                if let Ok(Some(p)) = handle.query(ImportWorkflow::progress, (), Default::default()).await {
                    draw(&p);
                }
            }
        }
    }
}

/// Runs one reconciliation now (id `hotmart-reconcile-{ms}`) and waits for its report.
pub async fn reconcile_now(
    client: &Client,
    task_queue: &str,
    req: HotmartReconcileRequest,
) -> anyhow::Result<HotmartReconcileReport> {
    let id = format!("hotmart-reconcile-{}", tollgate_store::now_ms());
    let opts = WorkflowStartOptions::new(task_queue.to_string(), id).build();
    let handle = client.start_workflow(HotmartReconcileWorkflow::run, req, opts).await?;
    Ok(handle.get_result(Default::default()).await?)
}

/// The newest reconciliation reports, newest first.
pub async fn latest_reports(docs: &DocStore, limit: usize) -> anyhow::Result<Vec<HotmartReconcileReport>> {
    crate::reports::latest(docs, REPORT_KIND, limit).await
}

/// A report as the API and the CLI print it: its fields and its one-line summary.
pub fn report_json(r: &HotmartReconcileReport) -> serde_json::Value {
    crate::reports::with_summary(r, r.summary())
}

/// One status line: `[#####.....] subscriptions 250/1000 | events 900 (900 new)`.
fn draw(p: &ImportProgress) {
    let list = match p.phase {
        Phase::Subscriptions => "subscriptions".to_string(),
        Phase::Sales(i) => format!("sales {}", SALE_STATUSES[i].to_lowercase()),
        Phase::Done => "done".to_string(),
    };
    let (done, total) = (p.phase_done, p.phase_total.unwrap_or(0).max(p.phase_done));
    let width: u64 = 24;
    let filled = match p.phase {
        Phase::Done => width,
        _ => (done * width).checked_div(total).unwrap_or(0),
    };
    let bar: String = (0..width).map(|i| if i < filled { '#' } else { '.' }).collect();
    eprint!(
        "\r[{bar}] {list} {done}/{total} | {} subscriptions, {} sales, {} events ({} new)   ",
        p.subscriptions, p.sales, p.events, p.events_new
    );
    let _ = std::io::stderr().flush();
}

/// What an import would change, computed without touching anything.
#[derive(Debug, Default, Serialize)]
pub struct DryRun {
    pub subscriptions: usize,
    pub sales: usize,
    pub events: usize,
    /// Events the journal does not have yet.
    pub new_events: usize,
    pub to_enroll: Vec<Change>,
    pub to_unenroll: Vec<Change>,
    /// Revenue rows the new events would write.
    pub revenue_rows: Vec<RowPreview>,
    /// Products with purchases but no course link: their students wait for one.
    pub unlinked_products: Vec<i64>,
}

#[derive(Debug, Serialize)]
pub struct Change {
    pub workflow_id: String,
    pub email: Option<String>,
    pub product_id: Option<i64>,
    pub courses: Vec<String>,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct RowPreview {
    pub key: String,
    pub gross: String,
    pub currency: String,
    pub occurred_at: i64,
}

/// Reads everything the import would read and compares it with the journal: per
/// workflow, the access rules over the journaled facts alone and with the new events.
pub async fn dry_run(
    docs: &DocStore,
    api: &hotmart_api::Client,
    since_ms: Option<i64>,
    product_id: Option<i64>,
    now: i64,
) -> anyhow::Result<DryRun> {
    let (subscriptions, sales) = read_all(api, since_ms, product_id, now).await?;
    let derived = events::derive(&subscriptions, &sales, Source::Import, now);
    let journal = docs.journal_between(i64::MIN, i64::MAX).await?;
    let known: HashSet<&str> = journal.iter().map(|e| e.key.as_str()).collect();
    let mut by_wf: BTreeMap<String, (Vec<&HotmartEvent>, Vec<HotmartEvent>)> = BTreeMap::new();
    for e in &journal {
        by_wf.entry(e.workflow_id.clone()).or_default().0.push(&e.event);
    }
    let mut out = DryRun {
        subscriptions: subscriptions.len(),
        sales: sales.len(),
        events: derived.len(),
        ..Default::default()
    };
    for d in derived.into_iter().filter(|d| !known.contains(d.id.as_str())) {
        out.new_events += 1;
        let event = ingress::receive(d.body.to_string().as_bytes())?.event?;
        if let Some(row) = revenue::row_for(&event) {
            out.revenue_rows.push(RowPreview {
                key: row.key,
                gross: row.gross.to_string(),
                currency: row.gross.currency.clone(),
                occurred_at: row.occurred_at,
            });
        }
        if let Some(wf) = event.workflow_key().filter(|_| event.affects_access()).map(|k| k.workflow_id()) {
            by_wf.entry(wf).or_default().1.push(event);
        }
    }
    let mut links: HashMap<ProductId, Option<CourseLink>> = HashMap::new();
    let mut unlinked = HashSet::new();
    for (wf, (old, new)) in by_wf.into_iter().filter(|(_, (_, new))| !new.is_empty()) {
        let Some(key) = WorkflowKey::from_workflow_id(&wf) else { continue };
        let mut facts = Facts::default();
        old.iter().for_each(|e| _ = facts.apply(e));
        let before = facts.clone();
        new.iter().for_each(|e| _ = facts.apply(e));
        let Some(product) = facts.product_id else { continue };
        if let std::collections::hash_map::Entry::Vacant(slot) = links.entry(product) {
            slot.insert(docs.link(product).await?);
        }
        let link = links[&product].as_ref();
        if link.is_none() {
            unlinked.insert(product.0);
        }
        let kind = KeyKind::from(&key);
        let was = !old.is_empty() && access::verdict(&before, link, kind, now).entitled;
        let will = access::verdict(&facts, link, kind, now);
        let change = || Change {
            workflow_id: wf.clone(),
            email: facts.buyer.as_ref().map(|b| b.value.email.to_string()),
            product_id: Some(product.0),
            courses: link.map(|l| l.courses.clone()).unwrap_or_default(),
            reason: will.reason.clone(),
        };
        match (was, will.entitled) {
            (false, true) => out.to_enroll.push(change()),
            (true, false) => out.to_unenroll.push(change()),
            _ => {}
        }
    }
    out.unlinked_products = unlinked.into_iter().collect();
    out.unlinked_products.sort();
    Ok(out)
}

type Records = (Vec<(Subscription, Vec<SubscriptionPurchase>)>, Vec<hotmart_api::Sale>);

/// Every subscription (with its charges) and sale the import reads.
async fn read_all(
    api: &hotmart_api::Client,
    since_ms: Option<i64>,
    product_id: Option<i64>,
    now: i64,
) -> anyhow::Result<Records> {
    let mut subs = Vec::new();
    let q = SubscriptionQuery {
        product_id,
        accession_date: Some(since_ms.unwrap_or(978_307_200_000)),
        end_accession_date: Some(now),
        max_results: Some(PAGE_SIZE),
        ..Default::default()
    };
    let mut token: Option<String> = None;
    loop {
        let page = api.subscriptions(&q, token.as_deref()).await?;
        for s in page.items.iter() {
            subs.push((s.clone(), api.subscription_purchases(&s.subscriber_code).await?));
        }
        match page.next() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    let mut sales = Vec::new();
    for status in SALE_STATUSES {
        let q = SalesQuery {
            product_id,
            start_date: since_ms,
            end_date: Some(now),
            transaction_status: Some(status.into()),
            max_results: Some(PAGE_SIZE),
            ..Default::default()
        };
        let mut token: Option<String> = None;
        loop {
            let page = api.sales_history(&q, token.as_deref()).await?;
            sales.extend(page.items.iter().cloned());
            match page.next() {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
    }
    Ok((subs, sales))
}
