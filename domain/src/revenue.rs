//! Revenue rows derived from payment events. Pure: the warehouse write is an activity.

use serde::{Deserialize, Serialize};

use crate::hotmart::{EventKind, HotmartEvent, Millis};
use crate::money::Money;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevenueKind {
    Charge,
    Refund,
    Chargeback,
    /// Part of a charge paid back (access kept); several may book against one charge.
    PartialRefund,
}

impl RevenueKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "charge" => Some(Self::Charge),
            "refund" => Some(Self::Refund),
            "chargeback" => Some(Self::Chargeback),
            "partial_refund" => Some(Self::PartialRefund),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Charge => "charge",
            Self::Refund => "refund",
            Self::Chargeback => "chargeback",
            Self::PartialRefund => "partial_refund",
        }
    }

    /// A refund or chargeback of the whole charge: at most one per transaction is booked.
    pub fn is_reversal(&self) -> bool {
        matches!(self, Self::Refund | Self::Chargeback)
    }
}

/// One fact row of the revenue warehouse. `key` makes writes idempotent: one row per
/// transaction and kind however often the event is delivered or the write retried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevenueRow {
    pub key: String,
    pub kind: RevenueKind,
    pub transaction: String,
    pub event_id: String,
    pub product_id: i64,
    pub buyer_email: String,
    pub subscriber_code: Option<String>,
    pub recurrence: Option<u32>,
    /// Signed: refunds and chargebacks are negative.
    pub gross: Money,
    pub producer_net: Option<Money>,
    /// When the money moved (approval date, or the event time for reversals).
    pub occurred_at: Millis,
    /// For subscription charges: the next charge date, i.e. what this payment covers.
    #[serde(default)]
    pub paid_until: Option<Millis>,
}

/// What an event's revenue needs an operator to know (shown in the workflow's decisions):
/// an approved charge with a price but no currency books nothing; a partial refund keeps
/// access and books what Hotmart says was paid back, or nothing when it does not say.
/// A trial at price 0 needs no note.
pub fn unbooked(ev: &HotmartEvent) -> Option<String> {
    let p = ev.purchase.as_ref()?;
    match ev.kind {
        EventKind::PurchaseApproved => {
            p.unpriced.as_ref().map(|why| format!("charge {}: {why}", p.transaction))
        }
        EventKind::PurchaseRefunded if ev.is_partial_refund() => Some(match &p.refunded {
            Some(m) => format!("partial refund of {}: access kept; {} booked", p.transaction, m.negate()),
            None => format!(
                "partial refund of {} (status {}): access kept; Hotmart gave no refunded amount, nothing booked",
                p.transaction,
                p.status.as_ref().map_or("?", |s| s.as_wire())
            ),
        }),
        _ => None,
    }
}

/// The revenue row an event implies, if any: approved charges with a non-zero price,
/// refunds/chargebacks as negatives, and a partial refund as the refunded amount
/// (negative) when Hotmart states it. Trials at price 0 record nothing.
pub fn row_for(ev: &HotmartEvent) -> Option<RevenueRow> {
    let p = ev.purchase.as_ref()?;
    let (kind, amount) = match ev.kind {
        EventKind::PurchaseApproved => (RevenueKind::Charge, p.price.as_ref()),
        EventKind::PurchaseRefunded if ev.is_partial_refund() => {
            (RevenueKind::PartialRefund, p.refunded.as_ref())
        }
        EventKind::PurchaseRefunded => (RevenueKind::Refund, p.price.as_ref()),
        EventKind::PurchaseChargeback => (RevenueKind::Chargeback, p.price.as_ref()),
        _ => return None,
    };
    let amount = amount.filter(|m| !m.is_zero())?;
    let sign = |m: &Money| {
        if kind == RevenueKind::Charge { m.clone() } else { m.negate() }
    };
    Some(RevenueRow {
        // Several partial refunds may book against one charge: each under its own event.
        key: match kind {
            RevenueKind::PartialRefund => format!("{}:{}:{}", p.transaction, kind.as_str(), ev.id),
            _ => format!("{}:{}", p.transaction, kind.as_str()),
        },
        kind,
        transaction: p.transaction.clone(),
        event_id: ev.id.to_string(),
        product_id: ev.product_id?.0,
        buyer_email: ev.buyer.as_ref()?.email.to_string(),
        subscriber_code: ev.subscriber_code.clone(),
        recurrence: p.recurrence_number,
        gross: sign(amount),
        // Which share of a partial refund is the producer's, Hotmart does not say.
        producer_net: if kind == RevenueKind::PartialRefund {
            None
        } else {
            p.producer_net.as_ref().map(sign)
        },
        occurred_at: match kind {
            RevenueKind::Charge => p.approved_date.unwrap_or(ev.created_at),
            _ => ev.created_at,
        },
        paid_until: if kind == RevenueKind::Charge && ev.subscriber_code.is_some() {
            ev.date_next_charge.or(p.date_next_charge)
        } else {
            None
        },
    })
}

impl RevenueRow {
    /// The order in which reversals of one transaction compete: Hotmart's creation time
    /// of the event (a reversal's `occurred_at`), then its id.
    pub fn reversal_stamp(&self) -> (Millis, &str) {
        (self.occurred_at, &self.event_id)
    }
}

/// One reversal per transaction: of the refunds and chargebacks of one transaction the
/// earliest by [`RevenueRow::reversal_stamp`] is booked, the others are not (a refund then
/// a chargeback of one charge is paid back once). Charges and partial refunds pass
/// through. The warehouses apply the same rule on write; reconciliation through this.
pub fn first_reversals(rows: impl IntoIterator<Item = RevenueRow>) -> Vec<RevenueRow> {
    let mut winners: std::collections::BTreeMap<String, RevenueRow> = std::collections::BTreeMap::new();
    let mut out = Vec::new();
    for row in rows {
        if !row.kind.is_reversal() {
            out.push(row);
            continue;
        }
        match winners.get(&row.transaction) {
            Some(cur) if cur.reversal_stamp() <= row.reversal_stamp() => {}
            _ => {
                winners.insert(row.transaction.clone(), row);
            }
        }
    }
    out.extend(winners.into_values());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(txn: &str, kind: RevenueKind, at: Millis, id: &str) -> RevenueRow {
        RevenueRow {
            key: format!("{txn}:{}", kind.as_str()),
            kind,
            transaction: txn.into(),
            event_id: id.into(),
            product_id: 1,
            buyer_email: "a@b.co".into(),
            subscriber_code: None,
            recurrence: None,
            gross: Money {
                minor: if kind == RevenueKind::Charge { 100 } else { -100 },
                currency: "BRL".into(),
            },
            producer_net: None,
            occurred_at: at,
            paid_until: None,
        }
    }

    fn keys(rows: Vec<RevenueRow>) -> Vec<String> {
        let mut k: Vec<_> = rows.into_iter().map(|r| r.key).collect();
        k.sort();
        k
    }

    #[test]
    fn the_earliest_reversal_of_a_transaction_wins_in_any_order() {
        let charge = rev("T", RevenueKind::Charge, 0, "a");
        let refund = rev("T", RevenueKind::Refund, 10, "r");
        let chargeback = rev("T", RevenueKind::Chargeback, 20, "c");
        for rows in [
            vec![charge.clone(), refund.clone(), chargeback.clone()],
            vec![chargeback.clone(), charge.clone(), refund.clone()],
        ] {
            assert_eq!(keys(first_reversals(rows)), ["T:charge", "T:refund"]);
        }
        let early_chargeback = rev("T", RevenueKind::Chargeback, 5, "c");
        assert_eq!(keys(first_reversals([refund.clone(), early_chargeback])), ["T:chargeback"]);
        // Same time: the event id decides.
        let tie = rev("T", RevenueKind::Chargeback, 10, "b");
        assert_eq!(keys(first_reversals([refund.clone(), tie])), ["T:chargeback"]);
        // Other transactions and partial refunds are untouched.
        let other = rev("U", RevenueKind::Refund, 30, "u");
        let partial =
            RevenueRow { key: "T:partial_refund:p".into(), ..rev("T", RevenueKind::PartialRefund, 1, "p") };
        assert_eq!(
            keys(first_reversals([partial, refund, chargeback, other])),
            ["T:partial_refund:p", "T:refund", "U:refund"]
        );
    }
}
