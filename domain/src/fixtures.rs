//! Hotmart webhook bodies in the wire format, for tests, the demo and the load generator.
//! Shapes follow `docs/hotmart-webhooks.md` (the documented v2 payloads).

use serde_json::{Value, json};

use crate::hotmart::Millis;

/// One charge of one buyer for one product; `subscriber` makes it a subscription.
#[derive(Debug, Clone)]
pub struct Sale {
    pub product: i64,
    pub transaction: String,
    pub email: String,
    pub subscriber: Option<String>,
    pub recurrence: Option<u32>,
    pub approved_date: Option<Millis>,
    pub date_next_charge: Option<Millis>,
    /// Gross as Hotmart writes it ("93.98").
    pub price: Option<String>,
    pub producer_net: Option<String>,
    pub currency: String,
}

impl Sale {
    pub fn one_off(product: i64, transaction: &str, email: &str) -> Self {
        Self {
            product,
            transaction: transaction.into(),
            email: email.into(),
            subscriber: None,
            recurrence: None,
            approved_date: None,
            date_next_charge: None,
            price: Some("197.00".into()),
            producer_net: Some("180.53".into()),
            currency: "BRL".into(),
        }
    }

    pub fn subscription(
        product: i64,
        subscriber: &str,
        transaction: &str,
        email: &str,
        recurrence: u32,
        next_charge: Millis,
    ) -> Self {
        Self {
            subscriber: Some(subscriber.into()),
            recurrence: Some(recurrence),
            date_next_charge: Some(next_charge),
            price: Some("93.98".into()),
            producer_net: Some("86.93".into()),
            ..Self::one_off(product, transaction, email)
        }
    }

    /// A purchase-shaped event (`PURCHASE_*`) for this sale.
    pub fn event(&self, kind: &str, id: &str, created: Millis) -> Value {
        let status = match kind {
            "PURCHASE_APPROVED" => "APPROVED",
            "PURCHASE_COMPLETE" => "COMPLETE",
            "PURCHASE_REFUNDED" => "REFUNDED",
            "PURCHASE_CHARGEBACK" => "CHARGEBACK",
            "PURCHASE_CANCELED" => "CANCELLED",
            "PURCHASE_EXPIRED" => "EXPIRED",
            "PURCHASE_DELAYED" => "OVERDUE",
            "PURCHASE_PROTEST" => "DISPUTE",
            "PURCHASE_BILLET_PRINTED" => "PRINTED_BILLET",
            _ => "STARTED",
        };
        let (first, last) = name_of(&self.email);
        let mut purchase = json!({
            "transaction": self.transaction,
            "status": status,
            "order_date": created - 5_000,
            "payment": {"type": "CREDIT_CARD", "installments_number": 1},
            "offer": {"code": "ffwqvtyv"},
        });
        let p = purchase.as_object_mut().expect("object");
        if let Some(a) = self.approved_date.or((kind == "PURCHASE_APPROVED").then_some(created)) {
            p.insert("approved_date".into(), a.into());
        }
        if let Some(n) = self.date_next_charge {
            p.insert("date_next_charge".into(), n.into());
        }
        if let Some(r) = self.recurrence {
            p.insert("recurrence_number".into(), r.into());
        }
        if let Some(price) = &self.price {
            p.insert("price".into(), json!({"value": raw_number(price), "currency_value": self.currency}));
        }
        let mut data = json!({
            "product": {"id": self.product, "ucode": "a1b2", "name": format!("Product {}", self.product)},
            "buyer": {"email": self.email, "name": format!("{first} {last}"), "first_name": first, "last_name": last},
            "producer": {"name": "Escola Exemplo"},
            "purchase": purchase,
        });
        if let Some(net) = &self.producer_net {
            data["commissions"] = json!([
                {"value": 7.05, "source": "MARKETPLACE", "currency_value": self.currency},
                {"value": raw_number(net), "source": "PRODUCER", "currency_value": self.currency},
            ]);
        }
        if let Some(code) = &self.subscriber {
            data["subscription"] = json!({
                "status": if kind == "PURCHASE_DELAYED" { "DELAYED" } else { "ACTIVE" },
                "plan": {"id": 1038897, "name": "Monthly"},
                "subscriber": {"code": code},
            });
        }
        envelope(kind, id, created, data)
    }
}

pub fn cancellation(
    id: &str,
    created: Millis,
    product: i64,
    subscriber: &str,
    email: &str,
    date_next_charge: Millis,
) -> Value {
    envelope(
        "SUBSCRIPTION_CANCELLATION",
        id,
        created,
        json!({
            "date_next_charge": date_next_charge,
            "cancellation_date": created,
            "actual_recurrence_value": 93.98,
            "product": {"id": product, "name": format!("Product {product}")},
            "subscriber": {"code": subscriber, "name": "Ana Souza", "email": email},
            "subscription": {"id": 4148584, "plan": {"id": 1038897, "name": "Monthly"}},
        }),
    )
}

pub fn charge_date_update(
    id: &str,
    created: Millis,
    product: i64,
    subscriber: &str,
    email: &str,
    date_next_charge: Millis,
) -> Value {
    envelope(
        "UPDATE_SUBSCRIPTION_CHARGE_DATE",
        id,
        created,
        json!({
            "subscriber": {"code": subscriber, "name": "Ana Souza", "email": email},
            "subscription": {"old_charge_day": 5, "new_charge_day": 20, "date_next_charge": date_next_charge,
                              "status": "ACTIVE", "product": {"id": product, "name": format!("Product {product}")}},
            "plan": {"id": 1038897, "name": "Monthly"},
        }),
    )
}

pub fn switch_plan(
    id: &str,
    created: Millis,
    product: i64,
    subscriber: &str,
    email: &str,
    date_next_charge: Millis,
    plan: &str,
) -> Value {
    envelope(
        "SWITCH_PLAN",
        id,
        created,
        json!({
            "switch_plan_date": created,
            "subscription": {"subscriber_code": subscriber, "status": "ACTIVE", "date_next_charge": date_next_charge,
                              "product": {"id": product, "name": format!("Product {product}")}, "user": {"email": email}},
            "plans": [
                {"id": 1038897, "name": "Monthly", "offer": {"key": "aaa"}, "current": false},
                {"id": 1038898, "name": plan, "offer": {"key": "bbb"}, "current": true},
            ],
        }),
    )
}

pub fn envelope(kind: &str, id: &str, created: Millis, data: Value) -> Value {
    json!({"id": id, "creation_date": created, "event": kind, "version": "2.0.0", "data": data})
}

fn raw_number(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.into()))
}

fn name_of(email: &str) -> (String, String) {
    let local = email.split('@').next().unwrap_or("student");
    let mut first = local.to_string();
    if let Some(c) = first.get_mut(0..1) {
        c.make_ascii_uppercase();
    }
    (first, "Student".into())
}
