//! Every webhook body Hotmart is known to have sent (real deliveries, its "send test"
//! button, its docs' examples: `domain/tests/data/hotmart/`, origins in SOURCES.md there),
//! posted with a valid token: each is answered 2xx and journaled; each that concerns
//! access reaches its workflow, which ends where the access rules say; the ones this
//! parser cannot read are quarantined, and a redrive forwards them once it can.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use tollgate_domain::access::{AccessPolicy, CourseLink, Facts, KeyKind, verdict};
use tollgate_domain::fixtures::Sale;
use tollgate_domain::hotmart::{HotmartEvent, WorkflowKey, parse};
use tollgate_domain::{ProductId, ingress};
use tollgate_store::{DocStore, SqliteDocs};
use tollgate_tests::{Stack, StackOptions, now_ms, unique, unique_product};

use super::WAIT;

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../domain/tests/data/hotmart");

fn samples() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(SAMPLES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    out
}

/// The products the samples name, linked to course 101 (Hotmart's test product 0 cannot
/// be linked: its events wait for a link, which is their effect).
fn policies() -> BTreeMap<i64, AccessPolicy> {
    let sub = AccessPolicy::Subscription { grace_secs: 3 * 86_400 };
    [1355458, 3526906, 788921, 4116023, 4756866]
        .map(|p| (p, sub.clone()))
        .into_iter()
        .chain([213344, 5036092, 5485679, 4713431].map(|p| (p, AccessPolicy::Lifetime)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_real_hotmart_body_is_journaled_and_reaches_its_workflow() {
    let stack = Stack::spawn(StackOptions::default()).await;
    for (product, policy) in policies() {
        let (policy, extra) = match policy {
            AccessPolicy::Lifetime => ("lifetime", json!(null)),
            _ => ("subscription", json!("3d")),
        };
        let body = json!({"product_id": product, "courses": ["101"], "policy": policy, "grace": extra});
        let (code, b) = stack.api("POST", "/api/links", Some(body)).await;
        assert!(code == 201 || code == 200, "link {product}: {code} {b}");
    }

    let mut keys = BTreeSet::new();
    let mut quarantined = BTreeSet::new();
    // workflow id -> the events that reach it
    let mut routed: BTreeMap<String, Vec<HotmartEvent>> = BTreeMap::new();
    let mut table = Vec::new();
    for (file, body) in samples() {
        let (code, b) = stack.post_raw(body.clone(), Some(tollgate_tests::HOTTOK)).await;
        assert_eq!(code, 200, "{file}: {b}");
        let key = b["event_id"].as_str().unwrap().to_string();
        keys.insert(key.clone());
        let received = ingress::receive(&body).unwrap();
        assert_eq!(key, received.key, "{file}");
        match (b["status"].as_str(), received.event) {
            (Some("quarantined"), Err(_)) => {
                quarantined.insert(key);
                table.push((file, "-".to_string(), format!("quarantined: {}", b["reason"])));
            }
            (Some("quarantined"), Ok(ev)) => {
                // Understood but not routable yet (a subscriber nothing else names).
                assert!(ev.workflow_key().is_none(), "{file}: {b}");
                quarantined.insert(key);
                table.push((file, "-".to_string(), format!("quarantined: {}", b["reason"])));
            }
            (Some("duplicate"), Ok(_)) => {
                // Hotmart's docs reuse one example id for two events: the first is kept.
                table.push((file, "-".to_string(), "a resend of an id already journaled".into()));
            }
            (Some("accepted"), Ok(ev)) => {
                let want = ev.workflow_key().filter(|_| ev.affects_access()).map(|k| k.workflow_id());
                assert_eq!(b["workflow_id"].as_str(), want.as_deref(), "{file}: {b}");
                match want {
                    Some(wf) => {
                        table.push((file, wf.clone(), String::new()));
                        routed.entry(wf).or_default().push(ev);
                    }
                    None => table.push((file, "-".to_string(), "journaled; concerns no purchase".into())),
                }
            }
            (status, ev) => panic!("{file}: {status:?} with {ev:?}: {b}"),
        }
    }
    let health = stack.health().await;
    assert_eq!(health["journal"]["entries"].as_u64(), Some(keys.len() as u64), "{health}");
    assert_eq!(health["journal"]["quarantined"].as_u64(), Some(quarantined.len() as u64), "{health}");
    assert_eq!(
        quarantined.len(),
        2,
        "the charge-date update without a date and the docs example dated 12345678"
    );
    let (_, listed) = stack.api("GET", "/api/journal/quarantine", None).await;
    let listed: BTreeSet<String> =
        listed["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(listed, quarantined);

    // Each workflow ends where the rules say, given the events that reached it.
    let policies = policies();
    let mut effects = BTreeMap::new();
    for (wf, events) in &routed {
        let mut facts = Facts::default();
        for e in events {
            facts.apply(e);
        }
        let key = WorkflowKey::from_workflow_id(wf).unwrap();
        let link = facts.product_id.and_then(|p| {
            policies.get(&p.0).map(|policy| CourseLink {
                product_id: ProductId(p.0),
                courses: vec!["101".into()],
                policy: policy.clone(),
            })
        });
        let want = verdict(&facts, link.as_ref(), KeyKind::from(&key), now_ms());
        let got = stack
            .wait_status(wf, WAIT, |s| {
                s.events_seen > 0
                    && s.pending_events == 0
                    && s.state == want.state
                    && s.entitled == want.entitled
            })
            .await;
        assert_eq!(
            got.enrolled_courses,
            if want.entitled { vec!["101".to_string()] } else { vec![] },
            "{wf}"
        );
        effects.insert(wf.clone(), format!("{} ({})", got.state, got.reason));
    }
    eprintln!("| file | workflow | effect |\n|---|---|---|");
    for (file, wf, effect) in table {
        let effect = if effect.is_empty() { effects[&wf].clone() } else { effect };
        eprintln!("| {file} | {wf} | {effect} |");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quarantined_bodies_are_forwarded_by_a_redrive_once_the_parser_reads_them() {
    let stack = Stack::spawn(StackOptions::default()).await;
    let product = unique_product();
    stack.link(product, &["101"], &["--policy", "lifetime"]).await;
    // Two deliveries as an older parser left them: it did not know `creationDate`.
    let docs = DocStore::Sqlite(SqliteDocs::open(stack.dir.path().join("tollgate.db")).unwrap());
    let mut students = Vec::new();
    for _ in 0..2 {
        let email = format!("{}@example.com", unique("redrive"));
        let mut body =
            Sale::one_off(product, &unique("HP"), &email).event("PURCHASE_APPROVED", &unique("e"), now_ms());
        let created = body.as_object_mut().unwrap().remove("creation_date").unwrap();
        body["creationDate"] = created;
        let id = body["id"].as_str().unwrap().to_string();
        let reason = "missing required field `creation_date`".to_string();
        docs.append_quarantined(id.clone(), Some("PURCHASE_APPROVED".into()), body.to_string(), reason, 1)
            .await
            .unwrap();
        assert!(parse(body.to_string().as_bytes()).is_ok(), "this parser reads it");
        students.push((id, email));
    }
    assert_eq!(stack.health().await["journal"]["quarantined"], 2);
    let (_, page) = stack.api("GET", "/api/journal/quarantine?limit=1", None).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["items"][0]["parser_version"], 1, "{page}");
    assert!(page["next"].is_string(), "{page}");

    // One through the API...
    let (first, second) = (&students[0], &students[1]);
    let (code, b) = stack.api("POST", &format!("/api/journal/{}/redrive", first.0), None).await;
    assert_eq!((code, b["released"].clone()), (200, json!([first.0])), "{b}");
    stack.wait_enrolled(&first.1, &["101"], WAIT).await;
    // ... the rest through the CLI.
    let out = stack.starter_cmd(&["journal", "redrive", "--all"]).await;
    assert!(out.contains(&second.0), "{out}");
    stack.wait_enrolled(&second.1, &["101"], WAIT).await;
    assert_eq!(stack.health().await["journal"]["quarantined"], 0);
    let (code, b) = stack.api("POST", &format!("/api/journal/{}/redrive", first.0), None).await;
    assert_eq!((code, b["error"].as_str()), (404, Some("not_found")), "not quarantined any more: {b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charge_date_update_without_product_reaches_its_subscription_by_subscriber_code() {
    let stack = Stack::spawn(StackOptions::default()).await;
    let product = unique_product();
    stack.link(product, &["101"], &["--policy", "subscription", "--grace", "1d"]).await;
    let (code, t) = (unique("SUB"), now_ms());
    let email = format!("{}@example.com", unique("chg"));
    let sale = Sale::subscription(product, &code, &unique("HP"), &email, 1, t + 86_400_000);
    let (status, b) = stack.post(&sale.event("PURCHASE_APPROVED", &unique("a"), t)).await;
    assert_eq!(status, 200, "{b}");
    let wf =
        WorkflowKey::Subscription { product: ProductId(product), subscriber: code.clone() }.workflow_id();
    stack.wait_enrolled(&email, &["101"], WAIT).await;
    // Hotmart's n8n-recorded shape: the subscriber, no product.
    let moved = t + 40 * 86_400_000;
    let update = json!({
        "id": unique("chg"), "creation_date": t + 1000, "event": "UPDATE_SUBSCRIPTION_CHARGE_DATE", "version": "2.0.0",
        "data": {"subscriber": {"code": code, "email": email}, "subscription": {"date_next_charge": moved, "status": "ACTIVE"}},
    });
    let (status, b) = stack.post(&update).await;
    assert_eq!((status, b["workflow_id"].as_str()), (200, Some(wf.as_str())), "{b}");
    stack.wait_status(&wf, WAIT, |s| s.until == Some(moved + 86_400_000)).await;
    // A subscriber nothing else named is kept quarantined, not lost.
    let mut stray = update.clone();
    stray["id"] = json!(unique("chg"));
    stray["data"]["subscriber"]["code"] = json!(unique("NOBODY"));
    let (status, b) = stack.post(&stray).await;
    assert_eq!((status, b["status"].as_str()), (200, Some("quarantined")), "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charge_without_any_currency_grants_access_books_nothing_and_says_why() {
    let stack = Stack::spawn(StackOptions::default()).await;
    let product = unique_product();
    stack.link(product, &["101"], &["--policy", "lifetime"]).await;
    let email = format!("{}@example.com", unique("nocur"));
    let mut body =
        Sale::one_off(product, &unique("HP"), &email).event("PURCHASE_APPROVED", &unique("e"), now_ms());
    // Hotmart's 2022 test sender: a price, and no currency anywhere.
    body["data"]["purchase"]["price"] = json!({"value": 1500});
    body["data"].as_object_mut().unwrap().remove("commissions");
    let (code, b) = stack.post(&body).await;
    assert_eq!((code, b["status"].as_str()), (200, Some("accepted")), "{b}");
    let txn = body["data"]["purchase"]["transaction"].as_str().unwrap().to_string();
    let wf = WorkflowKey::Purchase { transaction: txn.clone() }.workflow_id();
    let status = stack
        .wait_status(&wf, WAIT, |s| {
            s.decisions.iter().flat_map(|d| &d.actions).any(|a| a.contains("without a currency"))
        })
        .await;
    assert!(status.entitled, "access does not wait for revenue");
    stack.wait_enrolled(&email, &["101"], WAIT).await;
    assert!(stack.revenue().await.iter().all(|r| r["transaction"] != txn.as_str()), "no revenue row");
}
