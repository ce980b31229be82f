//! The Hotmart reconciliation's judgement and report: which of the events Hotmart's API
//! implies Tollgate already has. Matched by transaction and event kind (or, for a
//! cancellation, by subscription), never by event id: a webhook, an import
//! (`api:{txn}:{event}`) and a reconciliation name the same fact with different ids.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::access::{Facts, Reversal};
use crate::hotmart::{EventKind, HotmartEvent};

/// The report kind in the document store.
pub const REPORT_KIND: &str = "hotmart_reconcile";
/// Differences a report lists one by one (the counts cover every one).
pub const MAX_ITEMS: usize = 500;

/// Whether `facts` (a workflow key's ledger and journal) already hold what `ev` says.
pub fn already_known(facts: &Facts, ev: &HotmartEvent) -> bool {
    let txn = ev.transaction();
    match ev.kind {
        EventKind::PurchaseApproved => txn.is_some_and(|t| facts.approvals.contains_key(t)),
        EventKind::PurchaseComplete => txn.is_some_and(|t| facts.completed.contains(t)),
        // Either reversal ends access the same way; the revenue reconciliation owns rows.
        EventKind::PurchaseRefunded | EventKind::PurchaseChargeback => txn.is_some_and(|t| {
            matches!(facts.reversals.get(t), Some((Reversal::Refunded | Reversal::Chargeback, _)))
        }),
        EventKind::SubscriptionCancellation => facts.cancellation.is_some(),
        _ => facts.seen.contains(&ev.id),
    }
}

/// One fact Hotmart knows and Tollgate did not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Missed {
    pub event_id: String,
    pub kind: String,
    pub workflow_id: String,
    pub transaction: Option<String>,
    pub product_id: Option<i64>,
    pub email: Option<String>,
    /// Journaled now (false in a dry run).
    pub delivered: bool,
}

impl Missed {
    pub fn of(ev: &HotmartEvent, workflow_id: &str, delivered: bool) -> Self {
        Self {
            event_id: ev.id.to_string(),
            kind: ev.kind.as_wire().to_string(),
            workflow_id: workflow_id.to_string(),
            transaction: ev.transaction().map(str::to_string),
            product_id: ev.product_id.map(|p| p.0),
            email: ev.buyer.as_ref().map(|b| b.email.to_string()),
            delivered,
        }
    }
}

/// What one page of records came to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepBatch {
    /// Events the records imply.
    pub checked: u64,
    /// Of them, those Tollgate already had.
    pub known: u64,
    pub missed: Vec<Missed>,
}

/// A reconciliation run: stored by id, returned by the workflow, listed by the API and CLI.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HotmartReconcileReport {
    pub id: String,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    /// The window read: sales ordered and subscriptions due in it.
    pub from_ms: i64,
    pub to_ms: i64,
    pub dry_run: bool,
    pub subscriptions: u64,
    pub sales: u64,
    pub checked: u64,
    pub known: u64,
    /// Facts Tollgate missed, and of them those journaled by this run.
    pub missed: u64,
    pub delivered: u64,
    pub missed_by_kind: BTreeMap<String, u64>,
    /// The first [`MAX_ITEMS`] differences.
    pub items: Vec<Missed>,
}

impl HotmartReconcileReport {
    pub fn add(&mut self, batch: SweepBatch) {
        self.checked += batch.checked;
        self.known += batch.known;
        for m in batch.missed {
            self.missed += 1;
            self.delivered += u64::from(m.delivered);
            *self.missed_by_kind.entry(m.kind.clone()).or_default() += 1;
            if self.items.len() < MAX_ITEMS {
                self.items.push(m);
            }
        }
    }

    /// One line for the UI and the logs.
    pub fn summary(&self) -> String {
        if self.missed == 0 {
            return format!("ok: Tollgate had all {} facts Hotmart reports", self.checked);
        }
        let kinds: Vec<String> = self.missed_by_kind.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let done = if self.dry_run {
            "dry run, nothing delivered".to_string()
        } else {
            format!("{} delivered", self.delivered)
        };
        format!("{} of {} facts missed ({}); {done}", self.missed, self.checked, kinds.join(", "))
    }
}
