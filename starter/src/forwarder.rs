//! Drains the journal into Temporal with signal-with-start: the event's workflow is
//! started if it is not running, and the event is signalled to it. Entries are marked
//! forwarded only after Temporal accepted them, so a crash or an outage of Temporal
//! delays events but never drops them; a repeat signal is harmless (the workflow
//! de-duplicates by event id).
//!
//! Several starters may share one journal (Firestore): only the holder of the forwarder
//! lease forwards, so each entry is normally signalled once. The holder renews it every
//! third of `TOLLGATE_FORWARDER_LEASE`; if it dies, another starter takes the lease once
//! it expires and forwards whatever the dead one had not marked, its cut-short batch
//! included (sent twice at worst, never lost).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use temporalio_client::{Client, WorkflowIdConflictPolicy, WorkflowStartOptions};
use tokio::sync::Notify;

use crate::metrics;
use tollgate_domain::{HotmartEvent, WorkflowKey};
use tollgate_service::{Settings, Temporal};
use tollgate_store::{DocStore, JournalEntry};
use tollgate_workflows::{AccessInput, AccessWorkflow};

const BATCH: usize = 256;
const IN_FLIGHT: usize = 32;
const MARK_EVERY: usize = 64;
const IDLE_POLL: Duration = Duration::from_secs(1);
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The journal is one shard, with one lease.
pub const LEASE: &str = "journal-forwarder-0";

/// This process's hold on the forwarder lease.
pub struct Lease {
    holder: String,
    ttl: Duration,
    renewed_at: Option<std::time::Instant>,
}

impl Lease {
    pub fn new(ttl: Duration) -> Self {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let holder = format!("{}/{}/{nanos}", tollgate_store::this_host(), std::process::id());
        Self { holder, ttl, renewed_at: None }
    }

    /// Whether this process may forward now; takes or renews the lease when a third of
    /// its term has passed, so a holder checks twice before it could expire.
    pub async fn hold(&mut self, journal: &DocStore) -> bool {
        if self.renewed_at.is_some_and(|t| t.elapsed() < self.ttl / 3) {
            return true;
        }
        let asked = std::time::Instant::now();
        let held = match journal.acquire_lease(LEASE, &self.holder, self.ttl.as_millis() as i64).await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "cannot renew the forwarder lease; standing by");
                false
            }
        };
        match (self.renewed_at.is_some(), held) {
            (false, true) => {
                tracing::info!(holder = %self.holder, "forwarder lease taken: this starter forwards the journal")
            }
            (true, false) => {
                tracing::warn!(holder = %self.holder, "forwarder lease lost: another starter forwards")
            }
            _ => {}
        }
        self.renewed_at = held.then_some(asked);
        metrics::FORWARDER_ACTIVE.set(held as i64);
        held
    }

    /// A clean stop: hands the lease over at once.
    pub async fn release(&mut self, journal: &DocStore) {
        if self.renewed_at.take().is_some() {
            if let Err(e) = journal.release_lease(LEASE, &self.holder).await {
                tracing::warn!(error = %format!("{e:#}"), "cannot release the forwarder lease; it expires by itself");
            }
            metrics::FORWARDER_ACTIVE.set(0);
        }
    }
}

pub async fn run(
    journal: DocStore,
    settings: Arc<Settings>,
    temporal: Temporal,
    wake: Arc<Notify>,
    lease: Arc<tokio::sync::Mutex<Lease>>,
) {
    let client = connect(&temporal).await;
    let mut pause = Pause::default();
    let mut names = ProductNames::default();
    // A pipeline, so Temporal never waits on the journal: the next entries are read while
    // signals are in flight, and what Temporal accepted is marked in chunks. `in_hand`
    // holds every key read and not yet marked (queued, in flight, or accepted), so a
    // re-read of the journal does not send them twice.
    let mut in_hand: HashSet<String> = HashSet::new();
    let mut queue: VecDeque<JournalEntry> = VecDeque::new();
    let mut flying = FuturesUnordered::new();
    let mut accepted: Vec<(String, i64)> = Vec::new();
    loop {
        if queue.len() < IN_FLIGHT && !pause.active() {
            if lease.lock().await.hold(&journal).await {
                match journal.pending(BATCH + in_hand.len()).await {
                    Ok(entries) => {
                        let fresh: Vec<JournalEntry> =
                            entries.into_iter().filter(|e| !in_hand.contains(&e.key)).collect();
                        names.record(&journal, &fresh).await;
                        for e in fresh {
                            in_hand.insert(e.key.clone());
                            queue.push_back(e);
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the journal");
                        pause.hold();
                    }
                }
            } else {
                // Standby (or the lease was lost): what is queued is the holder's to send.
                for e in queue.drain(..) {
                    in_hand.remove(&e.key);
                }
                if flying.is_empty() && accepted.is_empty() {
                    tokio::time::sleep(Duration::from_secs(settings.forwarder_lease_secs).max(IDLE_POLL) / 3)
                        .await;
                    continue;
                }
            }
        }
        while flying.len() < IN_FLIGHT && !pause.active() {
            let Some(entry) = queue.pop_front() else { break };
            let client = client.clone();
            let settings = settings.clone();
            flying.push(async move {
                let (key, at) = (entry.key.clone(), entry.received_at);
                (key, at, forward(&client, &settings, entry).await)
            });
        }
        if accepted.len() >= MARK_EVERY || (flying.is_empty() && !accepted.is_empty()) {
            mark(&journal, &mut accepted, &mut in_hand).await;
        }
        if flying.is_empty() {
            match pause.until() {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None if queue.is_empty() => {
                    let _ = tokio::time::timeout(IDLE_POLL, wake.notified()).await;
                }
                None => {}
            }
            continue;
        }
        let Some((key, at, result)) = flying.next().await else { continue };
        match result {
            Ok(()) => {
                accepted.push((key, at));
                pause.succeeded();
            }
            Err(e) => {
                in_hand.remove(&key);
                // One pause per outage, not one per signal that was in flight.
                if !pause.active() {
                    tracing::warn!(error = %e, "forwarding failed; will retry");
                    pause.failed();
                }
            }
        }
    }
}

/// After a failure nothing new is sent until the pause ends (the failed entry is read
/// again); each failure outside a pause doubles the next one, a success resets it.
struct Pause {
    until: Option<Instant>,
    backoff: Duration,
}

impl Default for Pause {
    fn default() -> Self {
        Self { until: None, backoff: MIN_BACKOFF }
    }
}

impl Pause {
    fn until(&self) -> Option<Instant> {
        self.until.filter(|t| Instant::now() < *t)
    }

    fn active(&self) -> bool {
        self.until().is_some()
    }

    /// Pauses for the current backoff without growing it (a failed journal read).
    fn hold(&mut self) {
        self.until = Some(Instant::now() + self.backoff);
    }

    fn failed(&mut self) {
        self.hold();
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    fn succeeded(&mut self) {
        if self.until.take().is_some() {
            self.backoff = MIN_BACKOFF;
        }
    }
}

/// Marks what Temporal accepted; on failure they stay pending and are sent again.
async fn mark(journal: &DocStore, accepted: &mut Vec<(String, i64)>, in_hand: &mut HashSet<String>) {
    let batch = std::mem::take(accepted);
    let keys: Vec<String> = batch.iter().map(|(k, _)| k.clone()).collect();
    match journal.mark_forwarded(keys).await {
        Ok(()) => {
            metrics::JOURNAL_FORWARDED.inc_by(batch.len() as u64);
            let now = tollgate_store::now_ms();
            for (_, at) in &batch {
                metrics::FORWARD_LATENCY.observe((now - at).max(0) as f64 / 1000.0);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot mark journal entries forwarded; they will be sent again")
        }
    }
    for (k, _) in batch {
        in_hand.remove(&k);
    }
}

/// Product names as webhooks, imports and reconciliations state them, written to the
/// store when they change (the dashboard and the API show them). Off the ack path.
#[derive(Default)]
struct ProductNames {
    known: std::collections::HashMap<i64, String>,
}

impl ProductNames {
    async fn record(&mut self, docs: &DocStore, batch: &[JournalEntry]) {
        for e in batch {
            let (Some(product), Some(name)) = (e.event.product_id, e.event.product_name.as_deref()) else {
                continue;
            };
            let name = name.trim();
            if name.is_empty() || self.known.get(&product.0).is_some_and(|n| n == name) {
                continue;
            }
            match docs.put_product_name(product, name.to_string()).await {
                Ok(()) => {
                    self.known.insert(product.0, name.to_string());
                }
                Err(e) => tracing::warn!(error = %e, product = product.0, "cannot record a product name"),
            }
        }
    }
}

/// Temporal's client, once it answers (webhooks keep being journaled meanwhile).
pub async fn connect(temporal: &Temporal) -> Client {
    let mut backoff = MIN_BACKOFF;
    let client = loop {
        match temporal.client().await {
            Ok(c) => break c.clone(),
            Err(e) => {
                tracing::warn!(error = %e, "Temporal unreachable; webhooks are journaled and will be forwarded later");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    };
    tracing::info!("forwarder connected to Temporal");
    client
}

async fn forward(client: &Client, settings: &Settings, entry: JournalEntry) -> anyhow::Result<()> {
    signal_with_start(client, settings, &entry.workflow_id, entry.event).await
}

/// Starts the event's workflow if it is not running and signals the event to it. Shared by
/// the forwarder and the opt-in direct ingress (`TOLLGATE_INGRESS=direct`).
pub async fn signal_with_start(
    client: &Client,
    settings: &Settings,
    workflow_id: &str,
    event: HotmartEvent,
) -> anyhow::Result<()> {
    // An event routed by its subscriber code alone names no product: its workflow id does.
    let key = event
        .workflow_key()
        .or_else(|| WorkflowKey::from_workflow_id(workflow_id))
        .ok_or_else(|| anyhow::anyhow!("event {} has no workflow key", event.id))?;
    let input = AccessInput::new(key, settings.rules.clone(), None);
    let opts = WorkflowStartOptions::new(settings.task_queue.clone(), workflow_id.to_string())
        .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
        .build();
    client
        .signal_with_start_workflow(AccessWorkflow::run, input, AccessWorkflow::on_event, event, opts)
        .await
        .map_err(|e| anyhow::anyhow!("signal-with-start {workflow_id}: {e}"))?;
    Ok(())
}
