//! Every webhook body Hotmart is known to have sent: real deliveries, its "send test"
//! button and its docs' examples (`tests/data/hotmart/`, origins in SOURCES.md there).
//! Each must parse to the event and workflow it concerns, or fail with the reason listed.

use serde_json::{Value, json};
use tollgate_domain::hotmart::{EventKind, parse};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/hotmart");

/// File -> the workflow it reaches (`None`: journaled, concerns no purchase), or the field
/// the parser refuses (the webhook keeps those quarantined): a charge-date update that
/// states no new date (its `subscription` is an IP address), and a docs example whose
/// `creation_date` (12345678) is neither epoch milliseconds nor seconds.
fn expected() -> Vec<(&'static str, Result<Option<&'static str>, &'static str>)> {
    vec![
        ("PURCHASE_APPROVED__rb7-financeiro-hotmart-docs.json", Err("creation_date")),
        (
            "UPDATE_SUBSCRIPTION_CHARGE_DATE__n8n-nodes-hotmart__1.json",
            Err("data.subscription.date_next_charge"),
        ),
        ("CLUB_FIRST_ACCESS__controle-de-eventos.json", Ok(None)),
        ("CLUB_FIRST_ACCESS__n8n-nodes-hotmart__1.json", Ok(None)),
        ("CLUB_FIRST_ACCESS__rb7-financeiro-hotmart-docs.json", Ok(None)),
        ("CLUB_MODULE_COMPLETED__controle-de-eventos.json", Ok(None)),
        ("CLUB_MODULE_COMPLETED__n8n-nodes-hotmart__1.json", Ok(None)),
        ("CLUB_MODULE_COMPLETED__rb7-financeiro-hotmart-docs.json", Ok(None)),
        ("PURCHASE_APPROVED__controle-de-eventos.json", Ok(Some("subscription-0-I9OT62C3"))),
        ("PURCHASE_APPROVED__ifood-synvaljordao-log.json", Ok(Some("subscription-0-I9OT62C3"))),
        ("PURCHASE_APPROVED__n8n-nodes-hotmart__1.json", Ok(Some("purchase-HP0967750879"))),
        ("PURCHASE_APPROVED__n8n-nodes-hotmart__5.json", Ok(Some("purchase-HP0738010860"))),
        ("PURCHASE_APPROVED__n8n-nodes-hotmart__7.json", Ok(Some("purchase-HP3399780969"))),
        ("PURCHASE_APPROVED__videomachinepro.json", Ok(Some("subscription-0-I9OT62C3"))),
        ("PURCHASE_BILLET_PRINTED__AnokCRM.json", Ok(Some("subscription-0-I9OT62C3"))),
        ("PURCHASE_BILLET_PRINTED__controle-de-eventos.json", Ok(Some("subscription-0-I9OT62C3"))),
        ("PURCHASE_BILLET_PRINTED__n8n-nodes-hotmart__1.json", Ok(Some("purchase-HP0967750879"))),
        ("PURCHASE_CANCELED__controle-de-eventos.json", Ok(Some("subscription-0-I9OT62C3"))),
        ("PURCHASE_CANCELED__n8n-nodes-hotmart__4.json", Ok(Some("purchase-HP0611705428"))),
        ("PURCHASE_CHARGEBACK__controle-de-eventos.json", Ok(Some("subscription-0-I9OT62C3"))),
        ("PURCHASE_CHARGEBACK__n8n-nodes-hotmart__1.json", Ok(Some("purchase-HP3654648971"))),
        ("PURCHASE_COMPLETE__controle-de-eventos.json", Ok(Some("subscription-0-I9OT62C3"))),
        ("PURCHASE_COMPLETE__n8n-nodes-hotmart__1.json", Ok(Some("purchase-HP0111784220"))),
        ("PURCHASE_DELAYED__controle-de-eventos.json", Ok(Some("subscription-0-I9OT62C3"))),
        ("PURCHASE_DELAYED__n8n-nodes-hotmart__1.json", Ok(Some("purchase-HP3412012500"))),
        ("PURCHASE_EXPIRED__controle-de-eventos.json", Ok(Some("subscription-0-I9OT62C3"))),
        ("PURCHASE_OUT_OF_SHOPPING_CART__controle-de-eventos.json", Ok(None)),
        ("PURCHASE_OUT_OF_SHOPPING_CART__n8n-nodes-hotmart__1.json", Ok(None)),
        ("PURCHASE_OUT_OF_SHOPPING_CART__rb7-financeiro-hotmart-docs.json", Ok(None)),
        ("PURCHASE_PROTEST__controle-de-eventos.json", Ok(Some("subscription-0-I9OT62C3"))),
        ("PURCHASE_PROTEST__n8n-nodes-hotmart__2.json", Ok(Some("purchase-HP1212266242"))),
        ("PURCHASE_REFUNDED__controle-de-eventos.json", Ok(Some("subscription-0-I9OT62C3"))),
        ("PURCHASE_REFUNDED__n8n-nodes-hotmart__1.json", Ok(Some("purchase-HP1212266242"))),
        ("PURCHASE_REFUNDED__tollgate-partially-refunded.json", Ok(Some("purchase-HP1212266242"))),
        ("PURCHASE_REFUNDED__tollgate-partial-amount.json", Ok(Some("purchase-HP1212266242"))),
        ("SUBSCRIPTION_CANCELLATION__controle-de-eventos.json", Ok(Some("subscription-788921-0000aaaa"))),
        ("SUBSCRIPTION_CANCELLATION__n8n-nodes-hotmart__1.json", Ok(Some("subscription-1355458-KOBB7XB2"))),
        (
            "SUBSCRIPTION_CANCELLATION__rb7-financeiro-hotmart-docs.json",
            Ok(Some("subscription-3526906-QO4THU04")),
        ),
        ("SWITCH_PLAN__controle-de-eventos.json", Ok(Some("subscription-0-9W2LNSG4"))),
        ("SWITCH_PLAN__rb7-financeiro-hotmart-docs.json", Ok(Some("subscription-4116023-AT3IV3RX"))),
        ("UPDATE_SUBSCRIPTION_CHARGE_DATE__controle-de-eventos.json", Ok(Some("subscription-0-00000000"))),
        (
            "UPDATE_SUBSCRIPTION_CHARGE_DATE__rb7-financeiro-hotmart-docs.json",
            Ok(Some("subscription-4756866-QG5LHFHP")),
        ),
    ]
}

#[test]
fn every_known_body_parses_to_its_workflow() {
    let mut files: Vec<String> = std::fs::read_dir(DIR)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    let mut want = expected();
    want.sort_by_key(|(f, _)| *f);
    assert_eq!(files, want.iter().map(|(f, _)| f.to_string()).collect::<Vec<_>>(), "a sample without a row");
    let mut failures = Vec::new();
    for (file, want) in want {
        let body = std::fs::read(format!("{DIR}/{file}")).unwrap();
        let got = match parse(&body) {
            Ok(d) => Ok(d.event.workflow_key().map(|k| k.workflow_id())),
            Err(e) => Err(e.field().unwrap_or("-").to_string()),
        };
        let want = want.map(|w| w.map(str::to_string)).map_err(str::to_string);
        if got != want {
            failures.push(format!("{file}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_known_body_is_received_with_its_key_and_a_token_free_byte_copy() {
    for e in std::fs::read_dir(DIR).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let body = std::fs::read(&path).unwrap();
        let r = tollgate_domain::ingress::receive(&body).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(Some(r.key.as_str()), v["id"].as_str(), "{path:?}");
        assert_eq!(r.event_name.as_deref(), v["event"].as_str(), "{path:?}");
        assert!(!r.stored.contains("REDACTED-TOKEN") && !r.stored.contains("\"hottok\""), "{path:?}");
        let mut without: Value = v.clone();
        without.as_object_mut().unwrap().remove("hottok");
        assert_eq!(serde_json::from_str::<Value>(&r.stored).unwrap(), without, "{path:?}");
        if v.get("hottok").is_none() {
            assert_eq!(r.stored.as_bytes(), &body[..], "{path:?}: byte-faithful");
        }
    }
}

#[test]
fn purchase_status_spellings_hotmart_sends_are_known() {
    use tollgate_domain::hotmart::PurchaseStatus;
    for wire in ["CANCELED", "COMPLETED", "DELAYED", "DISPUTE", "BILLET_PRINTED", "PARTIALLY_REFUNDED"] {
        assert!(!matches!(PurchaseStatus::from_wire(wire), PurchaseStatus::Other(_)), "{wire}");
    }
}

fn sample(file: &str) -> Value {
    serde_json::from_slice(&std::fs::read(format!("{DIR}/{file}")).unwrap()).unwrap()
}

fn parsed(v: &Value) -> tollgate_domain::HotmartEvent {
    parse(v.to_string().as_bytes()).unwrap().event
}

#[test]
fn camel_case_envelope_and_iso_next_charge_date() {
    let e = parsed(&sample("UPDATE_SUBSCRIPTION_CHARGE_DATE__controle-de-eventos.json"));
    assert_eq!(e.kind, EventKind::UpdateSubscriptionChargeDate);
    assert_eq!(e.created_at, 1_763_247_745_640);
    assert_eq!(e.date_next_charge, Some(1_666_699_200_000), "2022-10-25T12:00:00.000Z");
    let e = parsed(&sample("CLUB_FIRST_ACCESS__controle-de-eventos.json"));
    assert_eq!(e.created_at, 1_763_247_745_996);
}

#[test]
fn dates_in_seconds_strings_and_iso_are_read_and_1970_never() {
    let mut v = sample("PURCHASE_APPROVED__n8n-nodes-hotmart__7.json");
    let ms = |v: &Value| parsed(v).purchase.unwrap().approved_date;
    for (given, want) in [
        (json!(1_760_000_000_123_i64), Some(1_760_000_000_123)),
        (json!(1_760_000_000), Some(1_760_000_000_000)),
        (json!("1760000000123"), Some(1_760_000_000_123)),
        (json!("2025-10-09T08:53:20Z"), Some(1_760_000_000_000)),
        (json!("2025-10-09T05:53:20.000-03:00"), Some(1_760_000_000_000)),
        (json!("2025-10-09"), Some(1_759_968_000_000)),
        (Value::Null, None),
    ] {
        v["data"]["purchase"]["approved_date"] = given.clone();
        assert_eq!(ms(&v), want, "{given}");
    }
    for bad in [json!(0), json!(12_345_678), json!(-5), json!("yesterday"), json!(99_999_999_999_999_i64)] {
        v["data"]["purchase"]["approved_date"] = bad.clone();
        let err = parse(v.to_string().as_bytes()).unwrap_err();
        assert_eq!(err.field(), Some("data.purchase.approved_date"), "{bad}");
    }
}

#[test]
fn a_price_without_currency_takes_the_purchase_s_other_currency_or_books_nothing() {
    let v = sample("PURCHASE_APPROVED__videomachinepro.json");
    let p = parsed(&v).purchase.unwrap();
    let price = p.price.unwrap();
    assert_eq!((price.minor, price.currency.as_str()), (150_000, "BRL"), "from original_offer_price");
    let mut bare = v.clone();
    bare["data"]["purchase"].as_object_mut().unwrap().remove("original_offer_price");
    let e = parsed(&bare);
    assert_eq!(e.purchase.as_ref().unwrap().price, None);
    assert_eq!(tollgate_domain::revenue::row_for(&e), None, "no currency, no revenue row");
    let why = tollgate_domain::revenue::unbooked(&e).expect("the reason is shown");
    assert!(why.contains("HP1121336654889") && why.contains("without a currency"), "{why}");
    assert_eq!(tollgate_domain::revenue::unbooked(&parsed(&v)), None, "priced charges need no note");
}

/// A partial refund (status `PARTIALLY_REFUNDED`, or a refunded amount below the price)
/// keeps access, books only what was paid back, and the decision says so.
#[test]
fn partial_refunds_keep_access_and_book_what_was_paid_back() {
    use tollgate_domain::access::{AccessPolicy, Facts, KeyKind, evaluate};
    use tollgate_domain::revenue::{RevenueKind, row_for, unbooked};
    let full = sample("PURCHASE_REFUNDED__n8n-nodes-hotmart__1.json");
    let mut approved = full.clone();
    approved["id"] = json!("approval-of-HP1212266242");
    approved["event"] = json!("PURCHASE_APPROVED");
    approved["data"]["purchase"]["status"] = json!("APPROVED");
    let approved = parsed(&approved);
    let no_amount = parsed(&sample("PURCHASE_REFUNDED__tollgate-partially-refunded.json"));
    let amount = parsed(&sample("PURCHASE_REFUNDED__tollgate-partial-amount.json"));
    let mut below_price = sample("PURCHASE_REFUNDED__tollgate-partial-amount.json");
    below_price["id"] = json!("refund-below-price");
    below_price["data"]["purchase"]["status"] = json!("REFUNDED");
    let below_price = parsed(&below_price);
    let at = amount.created_at + 1;
    for partial in [&no_amount, &amount, &below_price] {
        let mut f = Facts::default();
        f.apply(&approved);
        f.apply(partial);
        let v = evaluate(&f, &AccessPolicy::Lifetime, KeyKind::Purchase, at);
        assert!(v.entitled, "{}: {v:?}", partial.id);
        let why = unbooked(partial).expect("the decision says why access is kept");
        assert!(why.contains("partial refund of HP1212266242") && why.contains("access kept"), "{why}");
    }
    assert_eq!(row_for(&no_amount), None, "no amount stated, nothing booked");
    assert!(unbooked(&no_amount).unwrap().contains("nothing booked"));
    let row = row_for(&amount).expect("the stated amount is booked");
    assert_eq!(
        (row.kind, row.gross.minor, row.gross.currency.as_str()),
        (RevenueKind::PartialRefund, -25_050, "BRL")
    );
    assert_eq!(row.key, format!("HP1212266242:partial_refund:{}", amount.id));
    assert!(unbooked(&amount).unwrap().contains("-250.50 BRL booked"));
    assert_eq!(
        row_for(&below_price).map(|r| (r.kind, r.gross.minor)),
        Some((RevenueKind::PartialRefund, -25_050))
    );
    // A full refund still revokes and books the price; an amount equal to it is a full refund.
    let mut whole = sample("PURCHASE_REFUNDED__n8n-nodes-hotmart__1.json");
    whole["data"]["purchase"]["refunded_value"] = json!({"value": 997, "currency_value": "BRL"});
    for full in [parsed(&full), parsed(&whole)] {
        let mut f = Facts::default();
        f.apply(&approved);
        f.apply(&full);
        assert!(!evaluate(&f, &AccessPolicy::Lifetime, KeyKind::Purchase, at).entitled);
        assert_eq!(row_for(&full).map(|r| (r.kind, r.gross.minor)), Some((RevenueKind::Refund, -99_700)));
        assert_eq!(unbooked(&full), None);
    }
}

/// ISO 4217 minor units: a 3-decimal price and a producer net in its own currency
/// (Hotmart's docs example pays the producer in USD for a BRL sale).
#[test]
fn amounts_keep_their_minor_unit_and_their_own_currency() {
    let mut v = sample("PURCHASE_APPROVED__n8n-nodes-hotmart__7.json");
    v["data"]["purchase"]["price"] = json!({"value": 12.345, "currency_value": "KWD"});
    v["data"]["commissions"][1] = json!({"value": 10.5, "source": "PRODUCER", "currency_value": "KWD"});
    let row = tollgate_domain::revenue::row_for(&parsed(&v)).unwrap();
    assert_eq!((row.gross.minor, row.gross.currency.as_str()), (12_345, "KWD"));
    assert_eq!(row.producer_net.map(|m| m.minor), Some(10_500));
    let mut docs = sample("PURCHASE_APPROVED__rb7-financeiro-hotmart-docs.json");
    docs["creation_date"] = json!(1_760_000_000_000_i64);
    let p = parsed(&docs).purchase.unwrap();
    assert_eq!(p.price.map(|m| (m.minor, m.currency)), Some((15_060, "BRL".to_string())));
    assert_eq!(p.producer_net.map(|m| (m.minor, m.currency)), Some((310, "USD".to_string())));
}
