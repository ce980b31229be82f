//! What Tollgate would have received: Hotmart's API records turned into webhook v2 bodies,
//! so imported and reconciled facts take the webhook's own path (parser, journal,
//! forwarder, workflow). Pure: the same records give the same bodies.
//!
//! Ids are derived from Hotmart's data (`api:{transaction}:{event}`,
//! `api:{subscriber}:SUBSCRIPTION_CANCELLATION`), so the journal recognises a re-import;
//! an import that overlaps real webhooks (other ids, same transactions) folds into the
//! same facts, because workflows key facts by transaction.

use serde_json::{Value, json};

use crate::model::{Millis, Person, Price, ProductRef, Sale, Subscription, SubscriptionPurchase};

/// Who derived an event; kept in the body as `tollgate_source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Import,
    Reconcile,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Import => "import",
            Source::Reconcile => "reconcile",
        }
    }
}

/// One derived webhook body and its id.
#[derive(Debug, Clone, PartialEq)]
pub struct Derived {
    pub id: String,
    pub body: Value,
}

/// Subscriptions Hotmart reports as over (their paid period is the last one).
pub fn is_cancelled(status: &str) -> bool {
    matches!(status, "INACTIVE" | "CANCELLED_BY_CUSTOMER" | "CANCELLED_BY_SELLER" | "CANCELLED_BY_ADMIN")
}

fn approved(status: &str) -> bool {
    matches!(status, "APPROVED" | "COMPLETE" | "COMPLETED" | "REFUNDED" | "CHARGEBACK" | "PARTIALLY_REFUNDED")
}

fn reversal(status: &str) -> Option<&'static str> {
    match status {
        "REFUNDED" => Some("PURCHASE_REFUNDED"),
        "CHARGEBACK" => Some("PURCHASE_CHARGEBACK"),
        _ => None,
    }
}

struct Charge<'a> {
    product: &'a ProductRef,
    buyer: &'a Person,
    transaction: &'a str,
    status: &'a str,
    approved_date: Option<Millis>,
    date_next_charge: Option<Millis>,
    recurrence: Option<u32>,
    price: Option<&'a Price>,
    /// `(subscriber code, subscription status, plan)` of a subscription charge.
    subscription: Option<(&'a str, &'a str, Value)>,
}

impl Charge<'_> {
    /// Approval (if it was ever approved), completion, and the reversal of this charge.
    /// Reversals carry `observed_at`: the API states no refund time.
    fn events(&self, source: Source, observed_at: Millis, out: &mut Vec<Derived>) {
        let Some(approved_at) = self.approved_date.filter(|_| approved(self.status)) else { return };
        self.push("PURCHASE_APPROVED", "APPROVED", approved_at, source, out);
        if matches!(self.status, "COMPLETE" | "COMPLETED") && self.subscription.is_none() {
            self.push("PURCHASE_COMPLETE", "COMPLETE", approved_at.max(observed_at), source, out);
        }
        if let Some(kind) = reversal(self.status) {
            self.push(kind, self.status, observed_at.max(approved_at + 1), source, out);
        }
    }

    fn push(&self, kind: &str, status: &str, created: Millis, source: Source, out: &mut Vec<Derived>) {
        let id = format!("api:{}:{kind}", self.transaction);
        let mut purchase = json!({"transaction": self.transaction, "status": status});
        let p = purchase.as_object_mut().expect("object");
        if let Some(a) = self.approved_date {
            p.insert("approved_date".into(), a.into());
        }
        if let Some(n) = self.date_next_charge {
            p.insert("date_next_charge".into(), n.into());
        }
        if let Some(r) = self.recurrence {
            p.insert("recurrence_number".into(), r.into());
        }
        if let Some(price) = self.price.filter(|p| p.currency_code.is_some()) {
            p.insert("price".into(), json!({"value": price.value, "currency_value": price.currency_code}));
        }
        let mut data = json!({
            "product": product(self.product),
            "buyer": buyer(self.buyer),
            "purchase": purchase,
        });
        if let Some((code, status, plan)) = &self.subscription {
            data["subscription"] = json!({"status": status, "plan": plan, "subscriber": {"code": code}});
        }
        out.push(Derived { body: envelope(&id, kind, created, source, data), id });
    }
}

fn product(p: &ProductRef) -> Value {
    json!({"id": p.id, "name": p.name, "ucode": p.ucode})
}

fn buyer(b: &Person) -> Value {
    json!({"email": b.email, "name": b.name})
}

fn envelope(id: &str, kind: &str, created: Millis, source: Source, data: Value) -> Value {
    json!({"id": id, "creation_date": created, "event": kind, "version": "2.0.0",
           "tollgate_source": source.as_str(), "data": data})
}

/// A one-off sale: its approval, completion and reversal. Subscription charges come
/// with their subscription instead (the sales history does not name the subscriber).
pub fn sale_events(sale: &Sale, source: Source, observed_at: Millis) -> Vec<Derived> {
    let mut out = Vec::new();
    if sale.purchase.is_subscription {
        return out;
    }
    let p = &sale.purchase;
    Charge {
        product: &sale.product,
        buyer: &sale.buyer,
        transaction: &p.transaction,
        status: &p.status,
        approved_date: p.approved_date.or(p.order_date),
        date_next_charge: None,
        recurrence: None,
        price: p.price.as_ref(),
        subscription: None,
    }
    .events(source, observed_at, &mut out);
    out
}

/// A subscription and its charges: every approved charge (paying up to the next one's
/// approval, the last up to the subscription's `date_next_charge`), every reversal, and
/// a cancellation when Hotmart reports it over.
pub fn subscription_events(
    sub: &Subscription,
    charges: &[SubscriptionPurchase],
    source: Source,
    observed_at: Millis,
) -> Vec<Derived> {
    let mut charges: Vec<&SubscriptionPurchase> =
        charges.iter().filter(|c| c.approved_date.is_some()).collect();
    charges.sort_by_key(|c| (c.approved_date, c.recurrency_number));
    let period_ms = i64::from(sub.plan.as_ref().and_then(|p| p.recurrency_period).unwrap_or(30)) * 86_400_000;
    let plan = sub.plan.as_ref().map_or(Value::Null, |p| json!({"id": p.id, "name": p.name}));
    let mut out = Vec::new();
    for (i, c) in charges.iter().enumerate() {
        let next = match charges.get(i + 1) {
            Some(later) => later.approved_date,
            None => sub.date_next_charge.or(c.approved_date.map(|a| a + period_ms)),
        };
        Charge {
            product: &sub.product,
            buyer: &sub.subscriber,
            transaction: &c.transaction,
            status: &c.status,
            approved_date: c.approved_date,
            date_next_charge: next,
            recurrence: c.recurrency_number,
            price: c.price.as_ref().or(sub.price.as_ref()),
            subscription: Some((&sub.subscriber_code, &sub.status, plan.clone())),
        }
        .events(source, observed_at, &mut out);
    }
    if is_cancelled(&sub.status) {
        let id = format!("api:{}:SUBSCRIPTION_CANCELLATION", sub.subscriber_code);
        let last_paid = charges.last().and_then(|c| c.approved_date).unwrap_or(sub.accession_date);
        let data = json!({
            "date_next_charge": sub.date_next_charge,
            "product": product(&sub.product),
            "subscriber": {"code": sub.subscriber_code, "email": sub.subscriber.email, "name": sub.subscriber.name},
            "subscription": {"id": sub.subscription_id, "plan": plan},
        });
        let created = observed_at.max(last_paid + 1);
        out.push(Derived { body: envelope(&id, "SUBSCRIPTION_CANCELLATION", created, source, data), id });
    }
    out
}

/// Every event the records imply, in a stable order (subscriptions, then sales).
pub fn derive(
    subscriptions: &[(Subscription, Vec<SubscriptionPurchase>)],
    sales: &[Sale],
    source: Source,
    observed_at: Millis,
) -> Vec<Derived> {
    let mut out = Vec::new();
    for (sub, charges) in subscriptions {
        out.extend(subscription_events(sub, charges, source, observed_at));
    }
    for sale in sales {
        out.extend(sale_events(sale, source, observed_at));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PlanRef, SalePurchase};
    use tollgate_domain::hotmart::EventKind;

    const DAY: i64 = 86_400_000;
    const T0: i64 = 1_700_000_000_000;

    fn person() -> Person {
        Person { name: Some("Ana Souza".into()), email: "Ana@Example.com".into(), ucode: None }
    }

    fn parse(d: &Derived) -> tollgate_domain::HotmartEvent {
        let r = tollgate_domain::ingress::receive(d.body.to_string().as_bytes()).unwrap();
        assert_eq!(r.key, d.id);
        r.event.unwrap_or_else(|e| panic!("{} does not parse: {e}", d.body))
    }

    fn charge(n: u32, status: &str) -> SubscriptionPurchase {
        SubscriptionPurchase {
            transaction: format!("HP{n}"),
            approved_date: Some(T0 + i64::from(n) * 30 * DAY),
            status: status.into(),
            price: Some(Price { value: 49.9, currency_code: Some("BRL".into()) }),
            payment_type: None,
            recurrency_number: Some(n),
        }
    }

    fn sub(status: &str) -> Subscription {
        Subscription {
            subscriber_code: "SUB1".into(),
            subscription_id: Some(7),
            status: status.into(),
            accession_date: T0,
            date_next_charge: Some(T0 + 90 * DAY),
            transaction: None,
            plan: Some(PlanRef { id: Some(1), name: Some("Monthly".into()), recurrency_period: Some(30) }),
            product: ProductRef { id: 42, name: Some("Course".into()), ucode: None },
            price: None,
            subscriber: person(),
        }
    }

    #[test]
    fn subscription_charges_chain_their_periods_and_parse_to_one_workflow() {
        let evs = subscription_events(
            &sub("CANCELLED_BY_CUSTOMER"),
            &[charge(2, "APPROVED"), charge(1, "APPROVED"), charge(3, "WAITING_PAYMENT")],
            Source::Import,
            T0 + 100 * DAY,
        );
        let parsed: Vec<_> = evs.iter().map(parse).collect();
        let kinds: Vec<_> = parsed.iter().map(|e| e.kind.clone()).collect();
        assert_eq!(
            kinds,
            [EventKind::PurchaseApproved, EventKind::PurchaseApproved, EventKind::SubscriptionCancellation]
        );
        assert!(parsed.iter().all(|e| e.workflow_key().unwrap().workflow_id() == "subscription-42-SUB1"));
        // The first charge pays up to the second; the last to the subscription's next charge.
        assert_eq!(parsed[0].date_next_charge, Some(T0 + 60 * DAY));
        assert_eq!(parsed[1].date_next_charge, Some(T0 + 90 * DAY));
        assert_eq!(parsed[2].date_next_charge, Some(T0 + 90 * DAY));
        assert_eq!(parsed[0].buyer.as_ref().unwrap().email.as_str(), "ana@example.com");
        assert_eq!(parsed[0].product_name.as_deref(), Some("Course"));
        assert_eq!(evs[0].body["tollgate_source"], "import");
        // Same records, same bodies: a re-import is recognised by id.
        assert_eq!(
            evs,
            subscription_events(
                &sub("CANCELLED_BY_CUSTOMER"),
                &[charge(2, "APPROVED"), charge(1, "APPROVED"), charge(3, "WAITING_PAYMENT")],
                Source::Import,
                T0 + 100 * DAY
            )
        );
    }

    #[test]
    fn refunded_charge_is_approved_then_reversed_after_its_approval() {
        let evs = subscription_events(&sub("ACTIVE"), &[charge(1, "REFUNDED")], Source::Reconcile, T0);
        let parsed: Vec<_> = evs.iter().map(parse).collect();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[1].kind, EventKind::PurchaseRefunded);
        assert!(parsed[1].created_at > parsed[0].created_at);
        assert_eq!(evs[1].id, "api:HP1:PURCHASE_REFUNDED");
        assert_eq!(evs[1].body["tollgate_source"], "reconcile");
    }

    #[test]
    fn one_off_sales() {
        let sale = |status: &str, is_subscription| Sale {
            product: ProductRef { id: 9, name: Some("Book".into()), ucode: None },
            buyer: person(),
            purchase: SalePurchase {
                transaction: "HP9".into(),
                order_date: Some(T0 - 1000),
                approved_date: Some(T0),
                status: status.into(),
                recurrency_number: None,
                is_subscription,
                price: Some(Price { value: 235.76, currency_code: Some("USD".into()) }),
                warranty_expire_date: None,
            },
        };
        let kinds = |s: &Sale| {
            sale_events(s, Source::Import, T0 + DAY).iter().map(|d| parse(d).kind).collect::<Vec<_>>()
        };
        assert_eq!(kinds(&sale("APPROVED", false)), [EventKind::PurchaseApproved]);
        assert_eq!(
            kinds(&sale("COMPLETE", false)),
            [EventKind::PurchaseApproved, EventKind::PurchaseComplete]
        );
        assert_eq!(
            kinds(&sale("CHARGEBACK", false)),
            [EventKind::PurchaseApproved, EventKind::PurchaseChargeback]
        );
        assert!(kinds(&sale("APPROVED", true)).is_empty());
        assert!(kinds(&sale("WAITING_PAYMENT", false)).is_empty());
        let ev = parse(&sale_events(&sale("APPROVED", false), Source::Import, T0)[0]);
        assert_eq!(ev.workflow_key().unwrap().workflow_id(), "purchase-HP9");
        assert_eq!(ev.purchase.unwrap().price.unwrap().currency, "USD");
    }
}
