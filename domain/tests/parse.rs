use serde_json::json;
use tollgate_domain::error::ParseError;
use tollgate_domain::fixtures::{Sale, cancellation, charge_date_update, switch_plan};
use tollgate_domain::hotmart::{EventKind, PurchaseStatus, SubscriptionStatus, WorkflowKey, parse};

/// The documented renewal approval, verbatim.
const RENEWAL: &str = r#"{"id":"510de29e-8892-48a6-8e1a-d8f264be6cb4","creation_date":1746561253944,
 "event":"PURCHASE_APPROVED","version":"2.0.0",
 "data":{"product":{"id":1355458,"ucode":"a1b2","name":"Data Engineering Bootcamp"},
  "buyer":{"email":"ana@example.com","name":"Ana Souza","first_name":"Ana","last_name":"Souza"},
  "commissions":[{"value":7.05,"source":"MARKETPLACE","currency_value":"BRL"},
                 {"value":86.93,"source":"PRODUCER","currency_value":"BRL"}],
  "purchase":{"transaction":"HP3399780969","status":"APPROVED",
   "order_date":1746561247000,"approved_date":1746561249000,"date_next_charge":1749239649000,
   "recurrence_number":2,"price":{"value":93.98,"currency_value":"BRL"},
   "full_price":{"value":119.40,"currency_value":"BRL"},
   "payment":{"type":"CREDIT_CARD","installments_number":1},"offer":{"code":"ffwqvtyv"}},
  "subscription":{"status":"ACTIVE","plan":{"id":1038897,"name":"Monthly"},
   "subscriber":{"code":"IY8BW62L"}}}}"#;

#[test]
fn documented_renewal() {
    let d = parse(RENEWAL.as_bytes()).unwrap();
    let e = d.event;
    assert_eq!(e.kind, EventKind::PurchaseApproved);
    assert_eq!(e.created_at, 1746561253944);
    let p = e.purchase.as_ref().unwrap();
    assert_eq!(p.transaction, "HP3399780969");
    assert_eq!(p.recurrence_number, Some(2));
    assert_eq!(p.price.as_ref().unwrap().minor, 9398);
    assert_eq!(p.producer_net.as_ref().unwrap().minor, 8693);
    assert_eq!(p.status, Some(PurchaseStatus::Approved));
    assert_eq!(e.subscription_status, Some(SubscriptionStatus::Active));
    assert_eq!(e.buyer.unwrap().email.as_str(), "ana@example.com");
    assert_eq!(e.date_next_charge, Some(1749239649000));
    assert!(d.hottok.is_none());
}

#[test]
fn workflow_keys() {
    let d = parse(RENEWAL.as_bytes()).unwrap();
    assert_eq!(d.event.workflow_key().unwrap().workflow_id(), "subscription-1355458-IY8BW62L");
    let one = Sale::one_off(9, "HP77", "x@example.com").event("PURCHASE_APPROVED", "i", 1_700_000_000_000);
    let e = parse(one.to_string().as_bytes()).unwrap().event;
    assert_eq!(e.workflow_key(), Some(WorkflowKey::Purchase { transaction: "HP77".into() }));
    assert_eq!(e.workflow_key().unwrap().workflow_id(), "purchase-HP77");
}

#[test]
fn subscription_shaped_events_share_the_subscription_key() {
    let t = 1_700_000_000_000;
    for body in [
        cancellation("c", t, 7, "SUB1", "Ana@Example.com", t + 1),
        charge_date_update("u", t, 7, "SUB1", "ana@example.com", t + 2),
        switch_plan("s", t, 7, "SUB1", "ana@example.com", t + 3, "Yearly"),
        Sale::subscription(7, "SUB1", "HP1", "ana@example.com", 1, t).event("PURCHASE_DELAYED", "d", t),
    ] {
        let e = parse(body.to_string().as_bytes()).unwrap().event;
        assert_eq!(e.workflow_key().unwrap().workflow_id(), "subscription-7-SUB1", "{}", e.kind);
        assert!(e.date_next_charge.is_some());
    }
    let sp = parse(switch_plan("s", t, 7, "SUB1", "a@b.co", t + 3, "Yearly").to_string().as_bytes())
        .unwrap()
        .event;
    assert_eq!(sp.plan.unwrap().name.as_deref(), Some("Yearly"));
    let c =
        parse(cancellation("c", t, 7, "SUB1", "Ana@Example.com", t).to_string().as_bytes()).unwrap().event;
    assert_eq!(c.buyer.unwrap().email.as_str(), "ana@example.com", "emails are normalised");
}

#[test]
fn unknown_events_and_values_are_kept() {
    let body = json!({"id": "u1", "creation_date": 1_760_000_000_000_i64, "event": "SOMETHING_NEW", "version": "2.0.0", "data": {"foo": 1}});
    let e = parse(body.to_string().as_bytes()).unwrap().event;
    assert_eq!(e.kind, EventKind::Other("SOMETHING_NEW".into()));
    assert_eq!(e.workflow_key(), None);

    let mut v: serde_json::Value = serde_json::from_str(RENEWAL).unwrap();
    v["data"]["purchase"]["status"] = json!("CANCELED_SOMEHOW");
    v["data"]["subscription"]["status"] = json!("DELAYED_SOMEHOW");
    v["hottok"] = json!("tok");
    let d = parse(v.to_string().as_bytes()).unwrap();
    assert_eq!(d.event.purchase.unwrap().status, Some(PurchaseStatus::Other("CANCELED_SOMEHOW".into())));
    assert_eq!(d.event.subscription_status, Some(SubscriptionStatus::Other("DELAYED_SOMEHOW".into())));
    assert_eq!(d.hottok.as_deref(), Some("tok"));
    assert!(!d.stored_body.contains("hottok"), "the token is not kept: {}", d.stored_body);
    assert!(d.stored_body.contains("HP3399780969"));
}

#[test]
fn bad_bodies_name_the_field() {
    let cases: Vec<(&str, Box<dyn Fn(&mut serde_json::Value)>, &str)> = vec![
        (
            "no id",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("id");
            }),
            "id",
        ),
        (
            "no event",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("event");
            }),
            "event",
        ),
        ("bad date", Box::new(|v| v["creation_date"] = json!("yesterday")), "creation_date"),
        (
            "seconds not ms",
            Box::new(|v| v["data"]["purchase"]["date_next_charge"] = json!(-5)),
            "data.purchase.date_next_charge",
        ),
        (
            "no transaction",
            Box::new(|v| {
                v["data"]["purchase"].as_object_mut().unwrap().remove("transaction");
            }),
            "data.purchase.transaction",
        ),
        ("bad email", Box::new(|v| v["data"]["buyer"]["email"] = json!("not-an-email")), "email"),
        (
            "no product",
            Box::new(|v| {
                v["data"].as_object_mut().unwrap().remove("product");
            }),
            "data.product.id",
        ),
        (
            "no data",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("data");
            }),
            "data",
        ),
        (
            "bad price",
            Box::new(|v| v["data"]["purchase"]["price"]["value"] = json!("lots")),
            "data.purchase.price",
        ),
    ];
    for (name, mutate, field) in cases {
        let mut v: serde_json::Value = serde_json::from_str(RENEWAL).unwrap();
        mutate(&mut v);
        let err = parse(v.to_string().as_bytes()).expect_err(name);
        assert_eq!(err.field(), Some(field), "{name}: {err}");
    }
    assert!(matches!(parse(b"{not json"), Err(ParseError::NotJson(_))));
    assert!(parse(b"[1,2]").is_err());
}

#[test]
fn a_workflow_id_gives_back_its_key() {
    for key in [
        WorkflowKey::Purchase { transaction: "HP-12-3".into() },
        WorkflowKey::Subscription { product: tollgate_domain::ProductId(0), subscriber: "I9OT-62C3".into() },
        WorkflowKey::Subscription {
            product: tollgate_domain::ProductId(1355458),
            subscriber: "KOBB7XB2".into(),
        },
    ] {
        assert_eq!(WorkflowKey::from_workflow_id(&key.workflow_id()), Some(key.clone()));
    }
    for bad in ["purchase-", "subscription-x-A", "subscription-7-", "subscription-7", "other-1"] {
        assert_eq!(WorkflowKey::from_workflow_id(bad), None, "{bad}");
    }
}
