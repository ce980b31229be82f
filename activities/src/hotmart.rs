//! Hotmart activities: API reads on their own rate-capped task queue (one call each), and
//! the delivery of derived events into the webhook journal on the main queue.

use std::sync::Arc;

use hotmart_api::events;
use hotmart_api::{Page, Sale, SalesQuery, Subscription, SubscriptionPurchase, SubscriptionQuery};
use std::collections::HashMap;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use tollgate_domain::sweep::{Missed, SweepBatch, already_known};
use tollgate_domain::{Facts, HotmartEvent, ingress};
use tollgate_store::{Appended, DocStore};
use tollgate_workflows::acts::{self, DeliveryReport, HotmartDelivery, PageRequest, SweepRequest};

/// Hotmart API reads; registered on the Hotmart task queue.
pub struct HotmartApiActivities {
    pub client: hotmart_api::Client,
}

/// Accession dates before Hotmart existed: "every subscription" (without dates the API
/// returns only the last 30 days).
const BEGINNING_MS: i64 = 978_307_200_000; // 2001-01-01

#[activities]
impl HotmartApiActivities {
    #[activity(definition = acts::HotmartSubscriptionsPage)]
    pub async fn subscriptions_page(
        self: Arc<Self>,
        _ctx: ActivityContext,
        r: PageRequest,
    ) -> Result<Page<Subscription>, ActivityError> {
        let q = SubscriptionQuery {
            product_id: r.product_id,
            accession_date: Some(r.since_ms.unwrap_or(BEGINNING_MS)),
            end_accession_date: Some(r.until_ms),
            date_next_charge: r.next_charge_since_ms,
            max_results: Some(r.page_size),
            ..Default::default()
        };
        self.client.subscriptions(&q, r.page_token.as_deref()).await.map_err(failure)
    }

    #[activity(definition = acts::HotmartSubscriptionPurchases)]
    pub async fn subscription_purchases(
        self: Arc<Self>,
        _ctx: ActivityContext,
        code: String,
    ) -> Result<Vec<SubscriptionPurchase>, ActivityError> {
        self.client.subscription_purchases(&code).await.map_err(failure)
    }

    #[activity(definition = acts::HotmartProductsPage)]
    pub async fn products_page(
        self: Arc<Self>,
        _ctx: ActivityContext,
        page_token: Option<String>,
    ) -> Result<Page<hotmart_api::Product>, ActivityError> {
        self.client.products(page_token.as_deref()).await.map_err(failure)
    }

    #[activity(definition = acts::HotmartSalesPage)]
    pub async fn sales_page(
        self: Arc<Self>,
        _ctx: ActivityContext,
        r: PageRequest,
    ) -> Result<Page<Sale>, ActivityError> {
        let q = SalesQuery {
            product_id: r.product_id,
            start_date: r.since_ms,
            end_date: Some(r.until_ms),
            transaction_status: r.status,
            max_results: Some(r.page_size),
            ..Default::default()
        };
        self.client.sales_history(&q, r.page_token.as_deref()).await.map_err(failure)
    }
}

/// Retryable failures come back after the advertised reset; a refused credential or a
/// bad request stops the import with Hotmart's message.
fn failure(e: hotmart_api::Error) -> ActivityError {
    crate::retry_after_reset(format!("Hotmart API: {e}"), e.is_retryable(), e.retry_after())
}

/// Journals each derived body as the webhook would (same reader, same routing of a
/// purchase event); an id already journaled is a duplicate and changes nothing.
pub async fn deliver(docs: &DocStore, d: &HotmartDelivery) -> anyhow::Result<DeliveryReport> {
    let mut report = DeliveryReport::default();
    for (id, event, workflow_id, stored) in derived_events(d)? {
        report.events += 1;
        if docs.append(event, workflow_id, stored).await? == Appended::New {
            report.new += 1;
            report.new_ids.push(id);
        }
    }
    if report.new > 0 {
        tracing::info!(
            source = d.source.as_str(),
            events = report.events,
            new = report.new,
            "Hotmart events journaled"
        );
    }
    Ok(report)
}

/// The events the records imply, read by the webhook's parser: (id, event, the workflow
/// it routes to, the body to journal).
fn derived_events(
    d: &HotmartDelivery,
) -> anyhow::Result<Vec<(String, HotmartEvent, Option<String>, String)>> {
    let mut out = Vec::new();
    for derived in events::derive(&d.subscriptions, &d.sales, d.source, d.observed_at_ms) {
        let received = ingress::receive(derived.body.to_string().as_bytes())?;
        // Bodies built from the API's records always parse; one that does not is a bug here.
        let event = received
            .event
            .map_err(|e| anyhow::anyhow!("derived event {} does not parse: {e}", derived.id))?;
        let workflow_id = event.workflow_key().filter(|_| event.affects_access()).map(|k| k.workflow_id());
        out.push((derived.id, event, workflow_id, received.stored));
    }
    Ok(out)
}

/// The reconciliation's judgement of one page: each derived event whose fact neither
/// the ledger nor the journal since `journal_since_ms` holds is missed, and journaled
/// unless this is a dry run (the forwarder delivers it like a webhook).
pub async fn sweep(docs: &DocStore, r: &SweepRequest) -> anyhow::Result<SweepBatch> {
    let mut journaled: HashMap<String, Facts> = HashMap::new();
    for e in docs.journal_between(r.journal_since_ms, i64::MAX).await? {
        journaled.entry(e.workflow_id).or_default().apply(&e.event);
    }
    let mut known: HashMap<String, Facts> = HashMap::new();
    let mut batch = SweepBatch::default();
    for (_, event, workflow_id, stored) in derived_events(&r.delivery)? {
        let Some(workflow_id) = workflow_id else { continue };
        batch.checked += 1;
        if !known.contains_key(&workflow_id) {
            let mut facts = docs.ledger(&workflow_id).await?.map(|l| l.facts).unwrap_or_default();
            if let Some(j) = journaled.get(&workflow_id) {
                facts.merge(j);
            }
            known.insert(workflow_id.clone(), facts);
        }
        let facts = known.get_mut(&workflow_id).expect("inserted above");
        if already_known(facts, &event) {
            batch.known += 1;
            continue;
        }
        facts.apply(&event);
        // A duplicate id was journaled by an earlier import or reconciliation the window
        // did not show: it is on its way already.
        let delivered = !r.dry_run
            && docs.append(event.clone(), Some(workflow_id.clone()), stored).await? == Appended::New;
        if r.dry_run || delivered {
            batch.missed.push(Missed::of(&event, &workflow_id, delivered));
        } else {
            batch.known += 1;
        }
    }
    if !batch.missed.is_empty() {
        tracing::info!(
            checked = batch.checked,
            missed = batch.missed.len(),
            dry_run = r.dry_run,
            "Hotmart reconciliation found facts Tollgate missed"
        );
    }
    Ok(batch)
}
