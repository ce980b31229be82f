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
}

impl RevenueKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "charge" => Some(Self::Charge),
            "refund" => Some(Self::Refund),
            "chargeback" => Some(Self::Chargeback),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Charge => "charge",
            Self::Refund => "refund",
            Self::Chargeback => "chargeback",
        }
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

/// Why an approved charge books no revenue, when the reason is worth an operator's eye
/// (shown in the workflow's decisions; a trial at price 0 is not).
pub fn unbooked(ev: &HotmartEvent) -> Option<String> {
    let p = ev.purchase.as_ref().filter(|_| ev.kind == EventKind::PurchaseApproved)?;
    p.unpriced.as_ref().map(|why| format!("charge {}: {why}", p.transaction))
}

/// The revenue row an event implies, if any: approved charges with a non-zero price,
/// and refunds/chargebacks as negatives. Trials at price 0 record nothing.
pub fn row_for(ev: &HotmartEvent) -> Option<RevenueRow> {
    let kind = match ev.kind {
        EventKind::PurchaseApproved => RevenueKind::Charge,
        EventKind::PurchaseRefunded => RevenueKind::Refund,
        EventKind::PurchaseChargeback => RevenueKind::Chargeback,
        _ => return None,
    };
    let p = ev.purchase.as_ref()?;
    let price = p.price.as_ref().filter(|m| !m.is_zero())?;
    let sign = |m: &Money| {
        if kind == RevenueKind::Charge { m.clone() } else { m.negate() }
    };
    Some(RevenueRow {
        key: format!("{}:{}", p.transaction, kind.as_str()),
        kind,
        transaction: p.transaction.clone(),
        event_id: ev.id.to_string(),
        product_id: ev.product_id?.0,
        buyer_email: ev.buyer.as_ref()?.email.to_string(),
        subscriber_code: ev.subscriber_code.clone(),
        recurrence: p.recurrence_number,
        gross: sign(price),
        producer_net: p.producer_net.as_ref().map(sign),
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
