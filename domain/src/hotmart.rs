//! Hotmart webhook v2 bodies, parsed once at the edge into typed events.
//!
//! Only what the access rules and revenue need is kept typed; everything else in the body
//! is ignored (Hotmart adds fields often). Unknown event names and enum values are kept
//! verbatim so nothing a producer sends is lost.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

use crate::error::ParseError;
use crate::money::Money;

/// Epoch milliseconds, as Hotmart sends every timestamp.
pub type Millis = i64;

/// The envelope `id`: stable across resends, so it is the idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(String);

impl EventId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Hotmart product id (an integer on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProductId(pub i64);

impl fmt::Display for ProductId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An email address, trimmed and lower-cased so one student is one key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        let s = raw.trim().to_ascii_lowercase();
        match s.split_once('@') {
            Some((local, domain))
                if !local.is_empty() && domain.contains('.') && !s.contains(char::is_whitespace) =>
            {
                Ok(Self(s))
            }
            _ => Err(ParseError::Invalid {
                field: "email",
                reason: format!("{raw:?} is not an email address"),
            }),
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! open_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $wire:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($variant,)*
            /// A value this version does not know; kept verbatim.
            Other(String),
        }
        impl $name {
            pub fn from_wire(s: &str) -> Self {
                match s {
                    $($wire => Self::$variant,)*
                    other => Self::Other(other.to_string()),
                }
            }
            pub fn as_wire(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)*
                    Self::Other(s) => s,
                }
            }
        }
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_wire())
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok(Self::from_wire(&String::deserialize(d)?))
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_wire())
            }
        }
    };
}

open_enum!(
    /// The webhook `event` name.
    EventKind {
        PurchaseApproved = "PURCHASE_APPROVED",
        PurchaseComplete = "PURCHASE_COMPLETE",
        PurchaseCanceled = "PURCHASE_CANCELED",
        PurchaseBilletPrinted = "PURCHASE_BILLET_PRINTED",
        PurchaseProtest = "PURCHASE_PROTEST",
        PurchaseRefunded = "PURCHASE_REFUNDED",
        PurchaseChargeback = "PURCHASE_CHARGEBACK",
        PurchaseExpired = "PURCHASE_EXPIRED",
        PurchaseDelayed = "PURCHASE_DELAYED",
        PurchaseOutOfShoppingCart = "PURCHASE_OUT_OF_SHOPPING_CART",
        SubscriptionCancellation = "SUBSCRIPTION_CANCELLATION",
        SwitchPlan = "SWITCH_PLAN",
        UpdateSubscriptionChargeDate = "UPDATE_SUBSCRIPTION_CHARGE_DATE",
        ClubFirstAccess = "CLUB_FIRST_ACCESS",
        ClubModuleCompleted = "CLUB_MODULE_COMPLETED",
        OrderFulfillment = "ORDER_FULFILLMENT",
    }
);

open_enum!(
    /// `purchase.status`. Hotmart's own deliveries use spellings beyond the documented
    /// ones (`CANCELED`, `COMPLETED`, `DELAYED`); any other lands in `Other`.
    PurchaseStatus {
        Approved = "APPROVED",
        Blocked = "BLOCKED",
        Cancelled = "CANCELLED",
        Canceled = "CANCELED",
        Completed = "COMPLETED",
        Delayed = "DELAYED",
        Chargeback = "CHARGEBACK",
        Complete = "COMPLETE",
        Expired = "EXPIRED",
        NoFunds = "NO_FUNDS",
        Overdue = "OVERDUE",
        PartiallyRefunded = "PARTIALLY_REFUNDED",
        PreOrder = "PRE_ORDER",
        PrintedBillet = "PRINTED_BILLET",
        BilletPrinted = "BILLET_PRINTED",
        ProcessingTransaction = "PROCESSING_TRANSACTION",
        Dispute = "DISPUTE",
        Refunded = "REFUNDED",
        Started = "STARTED",
        UnderAnalisys = "UNDER_ANALISYS",
        WaitingPayment = "WAITING_PAYMENT",
    }
);

open_enum!(
    /// `subscription.status`.
    SubscriptionStatus {
        Active = "ACTIVE",
        Inactive = "INACTIVE",
        Delayed = "DELAYED",
        Overdue = "OVERDUE",
        Started = "STARTED",
        Expired = "EXPIRED",
        CancelledByCustomer = "CANCELLED_BY_CUSTOMER",
        CancelledBySeller = "CANCELLED_BY_SELLER",
        CancelledByAdmin = "CANCELLED_BY_ADMIN",
    }
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buyer {
    pub email: Email,
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub id: Option<i64>,
    pub name: Option<String>,
}

/// The `purchase` object of purchase-shaped events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purchase {
    /// "HP..." transaction code; one per charge (each renewal has its own).
    pub transaction: String,
    pub status: Option<PurchaseStatus>,
    pub approved_date: Option<Millis>,
    pub date_next_charge: Option<Millis>,
    pub recurrence_number: Option<u32>,
    /// Gross: `purchase.price`.
    pub price: Option<Money>,
    /// Producer's net: the PRODUCER commission.
    pub producer_net: Option<Money>,
    pub payment_type: Option<String>,
    /// Why the charge books no revenue although it has a price (no currency anywhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unpriced: Option<String>,
    /// What a refund paid back, when the body states it (`purchase.refunded_value`).
    /// Optional in the stored form, so journal entries from before it still decode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refunded: Option<Money>,
}

/// Everything the rules and revenue need from one webhook delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HotmartEvent {
    pub id: EventId,
    /// `creation_date`: when Hotmart created the event. Orders events of one subscription.
    pub created_at: Millis,
    pub kind: EventKind,
    pub product_id: Option<ProductId>,
    pub product_name: Option<String>,
    pub buyer: Option<Buyer>,
    pub subscriber_code: Option<String>,
    pub purchase: Option<Purchase>,
    pub subscription_status: Option<SubscriptionStatus>,
    pub plan: Option<Plan>,
    /// The subscription's next charge date as this event states it (purchase- or
    /// subscription-shaped).
    pub date_next_charge: Option<Millis>,
}

/// Where an event is routed: one workflow per subscription, or per one-off purchase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WorkflowKey {
    Subscription { product: ProductId, subscriber: String },
    Purchase { transaction: String },
}

impl WorkflowKey {
    pub fn workflow_id(&self) -> String {
        match self {
            Self::Subscription { product, subscriber } => format!("subscription-{product}-{subscriber}"),
            Self::Purchase { transaction } => format!("purchase-{transaction}"),
        }
    }
    pub fn is_subscription(&self) -> bool {
        matches!(self, Self::Subscription { .. })
    }

    /// The key a workflow id was made from (ids are `workflow_id()`'s output; a product id
    /// is a number, so the first `-` after it ends it).
    pub fn from_workflow_id(id: &str) -> Option<Self> {
        if let Some(transaction) = id.strip_prefix("purchase-").filter(|t| !t.is_empty()) {
            return Some(Self::Purchase { transaction: transaction.to_string() });
        }
        let (product, subscriber) = id.strip_prefix("subscription-")?.split_once('-')?;
        let product = ProductId(product.parse().ok()?);
        (!subscriber.is_empty()).then(|| Self::Subscription { product, subscriber: subscriber.to_string() })
    }
}

impl HotmartEvent {
    /// The workflow this event belongs to, or `None` for events that concern no
    /// purchase (members-area events, unknown events without a product).
    pub fn workflow_key(&self) -> Option<WorkflowKey> {
        if let (Some(product), Some(code)) = (self.product_id, &self.subscriber_code) {
            return Some(WorkflowKey::Subscription { product, subscriber: code.clone() });
        }
        let p = self.purchase.as_ref()?;
        self.product_id?;
        Some(WorkflowKey::Purchase { transaction: p.transaction.clone() })
    }

    /// Events that cannot change access or revenue are journaled but not routed.
    pub fn affects_access(&self) -> bool {
        !matches!(
            self.kind,
            EventKind::ClubFirstAccess
                | EventKind::ClubModuleCompleted
                | EventKind::OrderFulfillment
                | EventKind::PurchaseOutOfShoppingCart
        )
    }

    pub fn transaction(&self) -> Option<&str> {
        self.purchase.as_ref().map(|p| p.transaction.as_str())
    }

    /// A refund of part of the charge: status `PARTIALLY_REFUNDED`, or a stated refunded
    /// amount below the price. The buyer keeps access; only that amount is paid back.
    pub fn is_partial_refund(&self) -> bool {
        let Some(p) = self.purchase.as_ref().filter(|_| self.kind == EventKind::PurchaseRefunded) else {
            return false;
        };
        let below_price = match (&p.refunded, &p.price) {
            (Some(r), Some(price)) => r.currency == price.currency && r.minor < price.minor,
            _ => false,
        };
        p.status == Some(PurchaseStatus::PartiallyRefunded) || below_price
    }
}

/// The parsed webhook: the event plus the body's own `hottok`, if any.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub event: HotmartEvent,
    pub hottok: Option<String>,
    /// The body as received minus its `hottok`: what the journal keeps.
    pub stored_body: String,
}

/// Parses a webhook body into its event; the stored copy is the body as received minus
/// its token ([`crate::ingress::receive`] keeps bodies this refuses).
pub fn parse(body: &[u8]) -> Result<Delivery, ParseError> {
    let r = crate::ingress::receive(body)?;
    Ok(Delivery { event: r.event?, hottok: r.hottok, stored_body: r.stored })
}

/// The event a parsed JSON body describes, or why it does not describe one.
pub fn event_of(root: &Value) -> Result<HotmartEvent, ParseError> {
    let obj =
        root.as_object().ok_or(ParseError::Invalid { field: "body", reason: "not a JSON object".into() })?;

    let id = req_str(obj.get("id"), "id")?;
    if id.is_empty() || id.len() > 200 {
        return Err(ParseError::Invalid { field: "id", reason: "must be 1..200 characters".into() });
    }
    let kind = EventKind::from_wire(&req_str(obj.get("event"), "event")?);
    // Hotmart's club events spell it `creationDate`.
    let created_at = req_millis(obj.get("creation_date").or(obj.get("creationDate")), "creation_date")?;
    let data = match obj.get("data") {
        Some(Value::Object(_)) => &obj["data"],
        Some(Value::Null) | None => return Err(ParseError::Missing("data")),
        Some(_) => {
            return Err(ParseError::Invalid { field: "data", reason: "not an object".into() });
        }
    };

    Ok(match kind {
        EventKind::SubscriptionCancellation => parse_cancellation(id, created_at, kind, data)?,
        EventKind::SwitchPlan => parse_subscription_update(id, created_at, kind, data, &SWITCH_PLAN)?,
        EventKind::UpdateSubscriptionChargeDate => {
            parse_subscription_update(id, created_at, kind, data, &CHARGE_DATE)?
        }
        _ => parse_purchase_shaped(id, created_at, kind, data)?,
    })
}

fn parse_purchase_shaped(
    id: String,
    created_at: Millis,
    kind: EventKind,
    data: &Value,
) -> Result<HotmartEvent, ParseError> {
    // Cart abandonment carries no purchase: keep it, route it nowhere.
    let known_purchase_event =
        kind.as_wire().starts_with("PURCHASE_") && kind != EventKind::PurchaseOutOfShoppingCart;
    let product_id = match data.get("product") {
        Some(p) if !p.is_null() => Some(ProductId(req_int(p.get("id"), "data.product.id")?)),
        _ if known_purchase_event => return Err(ParseError::Missing("data.product.id")),
        _ => None,
    };
    let product_name = data.pointer("/product/name").and_then(Value::as_str).map(str::to_string);
    let buyer = match data.get("buyer") {
        Some(b) if !b.is_null() => Some(parse_buyer(b)?),
        _ => None,
    };
    let purchase = match data.get("purchase") {
        Some(p) if !p.is_null() => Some(parse_purchase(p, data)?),
        _ if known_purchase_event => return Err(ParseError::Missing("data.purchase")),
        _ => None,
    };
    if known_purchase_event && buyer.is_none() {
        return Err(ParseError::Missing("data.buyer.email"));
    }
    let sub = data.get("subscription").filter(|v| !v.is_null());
    // Where Hotmart puts the subscriber code depends on the event and its version.
    let subscriber_code = sub
        .and_then(|s| s.pointer("/subscriber/code").or_else(|| s.get("subscriber_code")))
        .or_else(|| data.pointer("/subscriber/code"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let subscription_status =
        sub.and_then(|s| opt_str(s.get("status"))).map(|s| SubscriptionStatus::from_wire(&s));
    let plan = sub.and_then(|s| s.get("plan")).and_then(parse_plan);
    let date_next_charge = purchase.as_ref().and_then(|p| p.date_next_charge);
    Ok(HotmartEvent {
        id: EventId(id),
        created_at,
        kind,
        product_id,
        product_name,
        buyer,
        subscriber_code,
        purchase,
        subscription_status,
        plan,
        date_next_charge,
    })
}

fn parse_purchase(p: &Value, data: &Value) -> Result<Purchase, ParseError> {
    let transaction = req_str(p.get("transaction"), "data.purchase.transaction")?;
    if transaction.trim().is_empty() {
        return Err(ParseError::Invalid { field: "data.purchase.transaction", reason: "empty".into() });
    }
    // Some of Hotmart's test bodies give `price` no currency; the same purchase states it
    // elsewhere. Without any, the charge is kept without a price (it books no revenue).
    let currency =
        ["/price/currency_value", "/full_price/currency_value", "/original_offer_price/currency_value"]
            .into_iter()
            .find_map(|at| p.pointer(at).and_then(Value::as_str));
    let (price, unpriced) = match (p.get("price"), currency) {
        (Some(m), None) if m.get("value").is_some() => {
            (None, Some("Hotmart sent its price without a currency; no revenue is booked".to_string()))
        }
        (v, currency) => (opt_money(v, currency, "data.purchase.price")?, None),
    };
    let producer_net = match data.get("commissions").and_then(Value::as_array) {
        Some(list) => {
            let producer = list.iter().find(|c| c.get("source").and_then(Value::as_str) == Some("PRODUCER"));
            match producer {
                Some(c) => match c.get("currency_value").and_then(Value::as_str).or(currency) {
                    Some(currency) => Some(Money::from_value(
                        c.get("value").ok_or(ParseError::Missing("data.commissions[].value"))?,
                        Some(currency),
                        "data.commissions[].value",
                    )?),
                    None => None,
                },
                None => None,
            }
        }
        None => None,
    };
    // Hotmart documents no field for the amount of a partial refund; this is the one
    // Tollgate reads (money-shaped like `price`, in the price's currency when it names none).
    let refunded = match p.get("refunded_value").filter(|v| !v.is_null()) {
        Some(v) => {
            let currency = v.get("currency_value").and_then(Value::as_str).or(currency);
            opt_money(Some(v), currency, "data.purchase.refunded_value")?
        }
        None => None,
    };
    Ok(Purchase {
        transaction: transaction.trim().to_string(),
        status: opt_str(p.get("status")).map(|s| PurchaseStatus::from_wire(&s)),
        approved_date: opt_millis(p.get("approved_date"), "data.purchase.approved_date")?,
        date_next_charge: opt_millis(p.get("date_next_charge"), "data.purchase.date_next_charge")?,
        recurrence_number: opt_int(p.get("recurrence_number"), "data.purchase.recurrence_number")?
            .map(|n| {
                u32::try_from(n).map_err(|_| ParseError::Invalid {
                    field: "data.purchase.recurrence_number",
                    reason: "out of range".into(),
                })
            })
            .transpose()?,
        price,
        producer_net,
        payment_type: p.pointer("/payment/type").and_then(Value::as_str).map(str::to_string),
        unpriced,
        refunded,
    })
}

fn parse_buyer(b: &Value) -> Result<Buyer, ParseError> {
    let email = Email::parse(&req_str(b.get("email"), "data.buyer.email")?)?;
    Ok(Buyer {
        email,
        name: opt_str(b.get("name")),
        first_name: opt_str(b.get("first_name")),
        last_name: opt_str(b.get("last_name")),
    })
}

fn parse_plan(v: &Value) -> Option<Plan> {
    if !v.is_object() {
        return None;
    }
    Some(Plan { id: v.get("id").and_then(as_i64), name: opt_str(v.get("name")) })
}

/// Subscription-shaped events carry the subscriber and product in event-specific places.
fn subscription_event(
    id: String,
    created_at: Millis,
    kind: EventKind,
    product: Option<&Value>,
    code: Option<&Value>,
    email: Option<&Value>,
    name: Option<&Value>,
) -> Result<HotmartEvent, ParseError> {
    // Hotmart can omit the product here: the subscriber code alone then routes the event
    // (to the workflow an earlier event of that subscriber opened).
    let product_id = opt_int(product.and_then(|p| p.get("id")), "product.id")?.map(ProductId);
    let subscriber_code = req_str(code, "subscriber.code")?;
    if subscriber_code.trim().is_empty() {
        return Err(ParseError::Invalid { field: "subscriber.code", reason: "empty".into() });
    }
    let buyer = match opt_str(email) {
        Some(e) => {
            Some(Buyer { email: Email::parse(&e)?, name: opt_str(name), first_name: None, last_name: None })
        }
        None => None,
    };
    Ok(HotmartEvent {
        id: EventId(id),
        created_at,
        kind,
        product_id,
        product_name: product.and_then(|p| opt_str(p.get("name"))),
        buyer,
        subscriber_code: Some(subscriber_code.trim().to_string()),
        purchase: None,
        subscription_status: None,
        plan: None,
        date_next_charge: None,
    })
}

fn parse_cancellation(
    id: String,
    created_at: Millis,
    kind: EventKind,
    d: &Value,
) -> Result<HotmartEvent, ParseError> {
    let mut ev = subscription_event(
        id,
        created_at,
        kind,
        d.get("product"),
        d.pointer("/subscriber/code"),
        d.pointer("/subscriber/email"),
        d.pointer("/subscriber/name"),
    )?;
    ev.date_next_charge = opt_millis(d.get("date_next_charge"), "data.date_next_charge")?;
    ev.plan = d.pointer("/subscription/plan").and_then(parse_plan);
    Ok(ev)
}

/// Where a subscription update (`SWITCH_PLAN`, `UPDATE_SUBSCRIPTION_CHARGE_DATE`) keeps
/// its fields: JSON pointers under `data`, which differ between the two events.
struct UpdateShape {
    product: &'static str,
    code: &'static str,
    email: &'static str,
    name: Option<&'static str>,
    /// Where the next charge date may be (first found wins).
    next_charge: &'static [&'static str],
    /// The error's field name for `next_charge`.
    next_charge_field: &'static str,
    next_charge_required: bool,
    plan: fn(&Value) -> Option<Plan>,
}

const SWITCH_PLAN: UpdateShape = UpdateShape {
    product: "/subscription/product",
    code: "/subscription/subscriber_code",
    email: "/subscription/user/email",
    name: None,
    next_charge: &["/subscription/date_next_charge"],
    next_charge_field: "data.subscription.date_next_charge",
    next_charge_required: false,
    plan: |d| {
        d.get("plans")
            .and_then(Value::as_array)
            .and_then(|plans| plans.iter().find(|p| p.get("current").and_then(Value::as_bool) == Some(true)))
            .and_then(parse_plan)
    },
};

const CHARGE_DATE: UpdateShape = UpdateShape {
    product: "/subscription/product",
    code: "/subscriber/code",
    email: "/subscriber/email",
    name: Some("/subscriber/name"),
    // Hotmart's test sender spells this event in camelCase.
    next_charge: &["/subscription/date_next_charge", "/subscription/dateNextCharge"],
    next_charge_field: "data.subscription.date_next_charge",
    next_charge_required: true,
    plan: |d| d.get("plan").and_then(parse_plan),
};

fn parse_subscription_update(
    id: String,
    created_at: Millis,
    kind: EventKind,
    d: &Value,
    shape: &UpdateShape,
) -> Result<HotmartEvent, ParseError> {
    let s = d.get("subscription").ok_or(ParseError::Missing("data.subscription"))?;
    let mut ev = subscription_event(
        id,
        created_at,
        kind,
        d.pointer(shape.product),
        d.pointer(shape.code),
        d.pointer(shape.email),
        shape.name.and_then(|n| d.pointer(n)),
    )?;
    let next = shape.next_charge.iter().find_map(|at| d.pointer(at).filter(|v| !v.is_null()));
    ev.date_next_charge = if shape.next_charge_required {
        Some(req_millis(next, shape.next_charge_field)?)
    } else {
        opt_millis(next, shape.next_charge_field)?
    };
    ev.subscription_status = opt_str(s.get("status")).map(|x| SubscriptionStatus::from_wire(&x));
    ev.plan = (shape.plan)(d);
    Ok(ev)
}

fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => {
            n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9e15).map(|f| f as i64))
        }
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn req_str(v: Option<&Value>, field: &'static str) -> Result<String, ParseError> {
    match v {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        None | Some(Value::Null) => Err(ParseError::Missing(field)),
        Some(_) => Err(ParseError::Invalid { field, reason: "expected a string".into() }),
    }
}

fn opt_str(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn req_int(v: Option<&Value>, field: &'static str) -> Result<i64, ParseError> {
    opt_int(v, field)?.ok_or(ParseError::Missing(field))
}

fn opt_int(v: Option<&Value>, field: &'static str) -> Result<Option<i64>, ParseError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(x) => as_i64(x)
            .map(Some)
            .ok_or(ParseError::Invalid { field, reason: format!("expected an integer, got {x}") }),
    }
}

fn req_millis(v: Option<&Value>, field: &'static str) -> Result<Millis, ParseError> {
    opt_millis(v, field)?.ok_or(ParseError::Missing(field))
}

/// Accepts epoch milliseconds, epoch seconds (converted), both also as numeric strings,
/// and ISO-8601 strings (`2022-09-01T12:00:00.000Z`, `2022-09-01`: midnight UTC). Anything
/// outside 2001..2200 is refused with a reason, so a unit mix-up or garbage (`0`) never
/// becomes a 1970 deadline.
fn opt_millis(v: Option<&Value>, field: &'static str) -> Result<Option<Millis>, ParseError> {
    let invalid = |reason: String| ParseError::Invalid { field, reason };
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().parse::<i64>().is_err() => {
            iso_millis(s.trim()).map(Some).ok_or_else(|| invalid(format!("{s:?} is not a date")))
        }
        Some(x) => {
            let n = as_i64(x).ok_or_else(|| invalid(format!("expected a timestamp, got {x}")))?;
            epoch_millis(n).map(Some).ok_or_else(|| {
                invalid(format!("{n} is neither epoch milliseconds nor epoch seconds between 2001 and 2200"))
            })
        }
    }
}

/// Timestamps Tollgate believes: 2001-09-09 .. 2200-01-01, in seconds.
const PLAUSIBLE_SECS: std::ops::Range<i64> = 1_000_000_000..7_258_118_400;

fn plausible_ms(ms: Millis) -> bool {
    (PLAUSIBLE_SECS.start * 1000..PLAUSIBLE_SECS.end * 1000).contains(&ms)
}

/// Milliseconds as they are; seconds converted (the two ranges cannot overlap).
fn epoch_millis(n: i64) -> Option<Millis> {
    if plausible_ms(n) {
        Some(n)
    } else if PLAUSIBLE_SECS.contains(&n) {
        Some(n * 1000)
    } else {
        None
    }
}

fn iso_millis(s: &str) -> Option<Millis> {
    let ms = match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) => t.timestamp_millis(),
        Err(_) => match chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
            Ok(t) => t.and_utc().timestamp_millis(),
            Err(_) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()?
                .and_hms_opt(0, 0, 0)?
                .and_utc()
                .timestamp_millis(),
        },
    };
    plausible_ms(ms).then_some(ms)
}

fn opt_money(
    v: Option<&Value>,
    currency: Option<&str>,
    field: &'static str,
) -> Result<Option<Money>, ParseError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(m) => {
            let value = m.get("value").ok_or(ParseError::Missing(field))?;
            Ok(Some(Money::from_value(value, currency, field)?))
        }
    }
}
