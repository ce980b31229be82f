//! The access rules: a pure function from what we know about one purchase or
//! subscription (its [`Facts`]), the product's [`AccessPolicy`] and the time, to a
//! [`Verdict`].
//!
//! Order independence comes from the shape of [`Facts`]: every event folds into sets,
//! maps keyed by transaction and last-writer-wins registers ordered by
//! `(creation_date, event id)`, so any permutation or duplication of one event stream
//! gives the same `Facts`, and therefore the same verdict.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::duration::{format_secs, secs_to_ms};
use crate::hotmart::{Buyer, EventId, EventKind, HotmartEvent, Millis, Plan, ProductId, WorkflowKey};

/// How long a product grants access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AccessPolicy {
    /// Until a refund or chargeback.
    Lifetime,
    /// A fixed term after approval.
    FixedTerm { term_secs: u64 },
    /// Until the paid period (`date_next_charge`) plus a grace period.
    Subscription { grace_secs: u64 },
}

impl fmt::Display for AccessPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Lifetime => f.write_str("lifetime"),
            Self::FixedTerm { term_secs } => {
                write!(f, "fixed_term {}", format_secs(*term_secs))
            }
            Self::Subscription { grace_secs } => {
                write!(f, "subscription (grace {})", format_secs(*grace_secs))
            }
        }
    }
}

impl AccessPolicy {
    /// Whether switching to `new` can end access sooner for someone who bought under
    /// this policy (staff must confirm such a change).
    pub fn shortened_by(&self, new: &AccessPolicy) -> bool {
        use AccessPolicy::*;
        match (self, new) {
            (_, Lifetime) => false,
            (Lifetime, _) => true,
            (FixedTerm { term_secs: a }, FixedTerm { term_secs: b }) => b < a,
            (Subscription { grace_secs: a }, Subscription { grace_secs: b }) => b < a,
            // A renewing subscription ends with its payments, a term at a fixed date:
            // either can come first, so both directions count as shortening.
            (FixedTerm { .. }, Subscription { .. }) | (Subscription { .. }, FixedTerm { .. }) => true,
        }
    }
}

/// Which TalentLMS courses a Hotmart product unlocks, and for how long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourseLink {
    pub product_id: ProductId,
    /// TalentLMS course ids (strings on TalentLMS's wire).
    pub courses: Vec<String>,
    pub policy: AccessPolicy,
}

/// Total order on events of one key: Hotmart's creation time, then the id for ties.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Stamp {
    pub at: Millis,
    pub id: EventId,
}

/// A last-writer-wins register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lww<T> {
    pub stamp: Stamp,
    pub value: T,
}

fn lww_set<T>(slot: &mut Option<Lww<T>>, stamp: &Stamp, value: T) {
    if slot.as_ref().is_none_or(|cur| *stamp > cur.stamp) {
        *slot = Some(Lww { stamp: stamp.clone(), value });
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub stamp: Stamp,
    /// `approved_date`, or the event time when Hotmart omits it.
    pub approved_at: Millis,
    pub recurrence: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reversal {
    Refunded,
    Chargeback,
    Canceled,
    Expired,
}

impl fmt::Display for Reversal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Refunded => "refunded",
            Self::Chargeback => "charged back",
            Self::Canceled => "canceled",
            Self::Expired => "expired",
        })
    }
}

/// Everything learned from the events of one key, merged commutatively.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub seen: BTreeSet<EventId>,
    pub product_id: Option<ProductId>,
    pub buyer: Option<Lww<Buyer>>,
    /// Per transaction, the earliest approval event.
    pub approvals: BTreeMap<String, Approval>,
    /// Per transaction, the strongest reversal (refund/chargeback beat cancel/expire).
    pub reversals: BTreeMap<String, (Reversal, Stamp)>,
    /// Transactions whose refund window passed (PURCHASE_COMPLETE).
    pub completed: BTreeSet<String>,
    /// The subscription's next charge date, as stated by the newest event that sets it.
    pub next_charge: Option<Lww<Millis>>,
    /// The newest PURCHASE_DELAYED.
    pub delayed: Option<Stamp>,
    /// The newest SUBSCRIPTION_CANCELLATION and the paid period it states.
    pub cancellation: Option<Lww<Option<Millis>>>,
    pub plan: Option<Lww<Plan>>,
    pub disputed: BTreeSet<String>,
}

impl Facts {
    /// Folds one event in. Returns false for an event already seen (a resend).
    pub fn apply(&mut self, ev: &HotmartEvent) -> bool {
        if !self.seen.insert(ev.id.clone()) {
            return false;
        }
        let stamp = Stamp { at: ev.created_at, id: ev.id.clone() };
        if self.product_id.is_none() {
            self.product_id = ev.product_id;
        }
        if let Some(b) = &ev.buyer {
            lww_set(&mut self.buyer, &stamp, b.clone());
        }
        if let Some(p) = &ev.plan {
            lww_set(&mut self.plan, &stamp, p.clone());
        }
        let txn = ev.transaction().map(str::to_string);
        let mut reverse = |r: Reversal| {
            if let Some(t) = &txn {
                keep_strongest(&mut self.reversals, t, &(r, stamp.clone()));
            }
        };
        match &ev.kind {
            EventKind::PurchaseApproved => {
                if let (Some(t), Some(p)) = (&txn, &ev.purchase) {
                    let approval = Approval {
                        stamp: stamp.clone(),
                        approved_at: p.approved_date.unwrap_or(ev.created_at),
                        recurrence: p.recurrence_number,
                    };
                    keep_earliest(&mut self.approvals, t, &approval);
                }
                if let Some(d) = ev.date_next_charge {
                    lww_set(&mut self.next_charge, &stamp, d);
                }
            }
            // Part of the price paid back: the purchase stands, access is kept.
            EventKind::PurchaseRefunded if ev.is_partial_refund() => {}
            EventKind::PurchaseRefunded => reverse(Reversal::Refunded),
            EventKind::PurchaseChargeback => reverse(Reversal::Chargeback),
            EventKind::PurchaseCanceled => reverse(Reversal::Canceled),
            EventKind::PurchaseExpired => reverse(Reversal::Expired),
            EventKind::PurchaseComplete => {
                if let Some(t) = txn {
                    self.completed.insert(t);
                }
            }
            EventKind::PurchaseProtest => {
                if let Some(t) = txn {
                    self.disputed.insert(t);
                }
            }
            EventKind::PurchaseDelayed => {
                keep_newest(&mut self.delayed, &stamp);
            }
            EventKind::SubscriptionCancellation => {
                lww_set(&mut self.cancellation, &stamp, ev.date_next_charge);
            }
            EventKind::UpdateSubscriptionChargeDate | EventKind::SwitchPlan => {
                if let Some(d) = ev.date_next_charge {
                    lww_set(&mut self.next_charge, &stamp, d);
                }
            }
            _ => {}
        }
        true
    }

    /// The approval that governs access now: the most recently approved charge.
    pub fn latest_approval(&self) -> Option<(&str, &Approval)> {
        self.approvals
            .iter()
            .max_by(|a, b| (a.1.approved_at, &a.1.stamp).cmp(&(b.1.approved_at, &b.1.stamp)))
            .map(|(t, a)| (t.as_str(), a))
    }
}

impl Facts {
    /// Merges facts folded elsewhere (the ledger's, an earlier run's): the same facts as
    /// folding both event streams into one, in any order, because every field is a set,
    /// a per-transaction minimum or a last-writer-wins register.
    pub fn merge(&mut self, other: &Facts) {
        self.seen.extend(other.seen.iter().cloned());
        if self.product_id.is_none() {
            self.product_id = other.product_id;
        }
        lww_merge(&mut self.buyer, &other.buyer);
        lww_merge(&mut self.plan, &other.plan);
        lww_merge(&mut self.next_charge, &other.next_charge);
        lww_merge(&mut self.cancellation, &other.cancellation);
        for (t, a) in &other.approvals {
            keep_earliest(&mut self.approvals, t, a);
        }
        for (t, r) in &other.reversals {
            keep_strongest(&mut self.reversals, t, r);
        }
        self.completed.extend(other.completed.iter().cloned());
        self.disputed.extend(other.disputed.iter().cloned());
        if let Some(d) = &other.delayed {
            keep_newest(&mut self.delayed, d);
        }
    }
}

/// Per transaction, the earliest approval event.
fn keep_earliest(approvals: &mut BTreeMap<String, Approval>, txn: &str, a: &Approval) {
    let slot = approvals.entry(txn.to_string()).or_insert_with(|| a.clone());
    if a.stamp < slot.stamp {
        *slot = a.clone();
    }
}

/// Per transaction, the strongest reversal (then the earliest).
fn keep_strongest(reversals: &mut BTreeMap<String, (Reversal, Stamp)>, txn: &str, r: &(Reversal, Stamp)) {
    let slot = reversals.entry(txn.to_string()).or_insert_with(|| r.clone());
    if (r.0, &r.1) < (slot.0, &slot.1) {
        *slot = r.clone();
    }
}

fn keep_newest(slot: &mut Option<Stamp>, stamp: &Stamp) {
    if slot.as_ref().is_none_or(|cur| stamp > cur) {
        *slot = Some(stamp.clone());
    }
}

fn lww_merge<T: Clone>(slot: &mut Option<Lww<T>>, other: &Option<Lww<T>>) {
    if let Some(o) = other {
        lww_set(slot, &o.stamp, o.value.clone());
    }
}

/// Coarse state for operators and search attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessState {
    /// The product has no course link yet; the purchase waits.
    AwaitingLink,
    /// No approved payment yet (boleto printed, out-of-order events).
    AwaitingPayment,
    Active,
    /// In the grace period after a missed renewal; still enrolled.
    Grace,
    /// Cancelled, still enrolled until the paid period ends.
    Cancelled,
    /// Refunded, charged back, canceled or expired transaction.
    Revoked,
    /// The term, paid period or grace has ended.
    Expired,
}

impl AccessState {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::AwaitingLink => "awaiting_link",
            Self::AwaitingPayment => "awaiting_payment",
            Self::Active => "active",
            Self::Grace => "grace",
            Self::Cancelled => "cancelled",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }
}

impl fmt::Display for AccessState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub state: AccessState,
    pub entitled: bool,
    /// When access ends, if it is entitled and finite.
    pub until: Option<Millis>,
    /// Nothing further can grant access (lifetime purchase past its refund window).
    pub settled: bool,
    pub reason: String,
}

/// What kind of key the facts belong to: only subscriptions renew.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyKind {
    Subscription,
    Purchase,
}

impl From<&WorkflowKey> for KeyKind {
    fn from(key: &WorkflowKey) -> Self {
        if key.is_subscription() { KeyKind::Subscription } else { KeyKind::Purchase }
    }
}

/// How long a subscription charge pays for when no event states its next charge date
/// (never seen from Hotmart). Access and the revenue figures use this one value.
pub const FALLBACK_PERIOD_MS: Millis = 30 * 86_400_000;

/// The verdict for one key: [`evaluate`] once the product's course link is known; until
/// then the purchase waits, for its first event or for staff to link the product.
pub fn verdict(facts: &Facts, link: Option<&CourseLink>, key: KeyKind, now: Millis) -> Verdict {
    match link {
        Some(link) => evaluate(facts, &link.policy, key, now),
        // A reversal needs no policy: a chargeback after the link was deleted still
        // revokes (and releases what the key was granted under any earlier link).
        None => reversed(facts).unwrap_or_else(|| waiting_for_link(facts)),
    }
}

fn waiting_for_link(facts: &Facts) -> Verdict {
    if facts.approvals.is_empty() && facts.product_id.is_none() {
        return Verdict::off(AccessState::AwaitingPayment, "no events yet".into());
    }
    Verdict::off(
        AccessState::AwaitingLink,
        format!(
            "product {} has no course link yet; add one with `starter links add`",
            facts.product_id.map_or("?".into(), |p| p.to_string())
        ),
    )
}

/// Revoked whatever the policy: the governing charge was reversed, or a reversal came
/// before any approval.
fn reversed(facts: &Facts) -> Option<Verdict> {
    match facts.latest_approval() {
        None => facts.reversals.iter().next().map(|(t, (r, _))| {
            Verdict::off(AccessState::Revoked, format!("transaction {t} {r} before any approval arrived"))
        }),
        Some((txn, _)) => facts
            .reversals
            .get(txn)
            .map(|(r, _)| Verdict::off(AccessState::Revoked, format!("transaction {txn} {r}"))),
    }
}

/// The rules once the product's policy is known.
pub fn evaluate(facts: &Facts, policy: &AccessPolicy, key: KeyKind, now: Millis) -> Verdict {
    if let Some(revoked) = reversed(facts) {
        return revoked;
    }
    let Some((txn, approval)) = facts.latest_approval() else {
        return Verdict::off(AccessState::AwaitingPayment, "no approved payment yet".into());
    };
    let paid_by = match approval.recurrence {
        Some(n) if key == KeyKind::Subscription => format!("{txn} (charge #{n})"),
        _ => txn.to_string(),
    };
    match policy {
        AccessPolicy::Lifetime => {
            let settled = facts.completed.contains(txn);
            let why = if settled { "lifetime access; refund window closed" } else { "lifetime access" };
            Verdict {
                state: AccessState::Active,
                entitled: true,
                until: None,
                settled,
                reason: format!("{why}, paid by {paid_by}"),
            }
        }
        AccessPolicy::FixedTerm { term_secs } => {
            let until = approval.approved_at.saturating_add(secs_to_ms(*term_secs));
            Verdict::until(
                now,
                until,
                AccessState::Active,
                format!("fixed term of {} from approval of {paid_by}", format_secs(*term_secs)),
            )
        }
        AccessPolicy::Subscription { grace_secs } => {
            let grace = secs_to_ms(*grace_secs);
            let paid_until = match (&facts.next_charge, key) {
                (Some(n), _) => n.value,
                // A one-off sale of a subscription-linked product: nothing to renew.
                (None, KeyKind::Purchase) => {
                    return Verdict {
                        state: AccessState::Active,
                        entitled: true,
                        until: None,
                        settled: facts.completed.contains(txn),
                        reason: format!("one-off purchase {paid_by} of a subscription product"),
                    };
                }
                (None, KeyKind::Subscription) => approval.approved_at.saturating_add(FALLBACK_PERIOD_MS),
            };
            let delayed = facts.delayed.as_ref().filter(|d| **d > approval.stamp);
            let grace_end = delayed.map(|d| paid_until.min(d.at).saturating_add(grace));
            if let Some(c) = facts.cancellation.as_ref().filter(|c| c.stamp > approval.stamp) {
                let stated = c.value.unwrap_or(paid_until);
                // After a missed renewal the cancellation's date can lie past the grace:
                // the earlier end wins, so cancelling never lengthens access.
                return match grace_end.filter(|g| *g < stated) {
                    Some(end) => Verdict::until(
                        now,
                        end,
                        AccessState::Cancelled,
                        format!(
                            "subscription cancelled after a missed renewal; access until the grace ends (paid by {paid_by})"
                        ),
                    ),
                    None => Verdict::until(
                        now,
                        stated,
                        AccessState::Cancelled,
                        format!(
                            "subscription cancelled; access until the paid period ends (paid by {paid_by})"
                        ),
                    ),
                };
            }
            match delayed.zip(grace_end) {
                Some((d, end)) => Verdict::until(
                    now,
                    end,
                    AccessState::Grace,
                    format!(
                        "renewal overdue since {}; grace of {}",
                        fmt_ms(d.at.min(paid_until)),
                        format_secs(*grace_secs)
                    ),
                ),
                None => {
                    let end = paid_until.saturating_add(grace);
                    let state = if now >= paid_until { AccessState::Grace } else { AccessState::Active };
                    Verdict::until(
                        now,
                        end,
                        state,
                        format!(
                            "paid until {} by {paid_by}, plus grace of {}",
                            fmt_ms(paid_until),
                            format_secs(*grace_secs)
                        ),
                    )
                }
            }
        }
    }
}

impl Verdict {
    fn off(state: AccessState, reason: String) -> Self {
        Self { state, entitled: false, until: None, settled: false, reason }
    }

    fn until(now: Millis, until: Millis, state: AccessState, reason: String) -> Self {
        if now < until {
            Self { state, entitled: true, until: Some(until), settled: false, reason }
        } else {
            Self::off(AccessState::Expired, format!("ended at {}: {reason}", fmt_ms(until)))
        }
    }
}

pub fn fmt_ms(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}
