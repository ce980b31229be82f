//! Healing lost webhooks end to end: Hotmart (the simulator) knows sales whose webhooks
//! never arrived, refunds and a chargeback Tollgate never heard of, a renewal and a
//! cancellation; one `hotmart reconcile` run delivers exactly those (not what webhooks
//! already told), after which TalentLMS and the revenue rows match the oracle; a second
//! run delivers nothing. The report is readable through the CLI and the staff API.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_domain::fixtures::Sale;
use tollgate_simulator::hotmart::{self, HotmartConfig, School, SubscriptionRecord};
use tollgate_tests::{Stack, StackOptions, now_ms, unique, unique_product};

use super::hotmart::{enrolled, use_hotmart};

const DAY: i64 = 86_400_000;

fn buyer(email: &str) -> Value {
    json!({"name": "Ana Souza", "email": email, "ucode": unique("b")})
}

/// A monthly subscription with a charge approved at each of `charges`.
fn subscription(
    product: i64,
    code: &str,
    email: &str,
    status: &str,
    charges: &[i64],
    next: i64,
) -> SubscriptionRecord {
    let purchases = charges
        .iter()
        .enumerate()
        .map(|(k, at)| {
            json!({"transaction": format!("{code}c{k}"), "approved_date": at, "status": "APPROVED",
                   "price": {"value": 49.9, "currency_code": "BRL"}, "payment_type": "CREDIT_CARD",
                   "recurrency_number": k + 1, "under_warranty": false, "purchase_subscription": true})
        })
        .collect();
    let subscription = json!({
        "subscriber_code": code, "subscription_id": 4_000_000, "status": status,
        "accession_date": charges[0], "request_date": charges[0], "date_next_charge": next, "trial": false,
        "transaction": format!("{code}c0"),
        "plan": {"name": "Monthly", "id": 726420, "recurrency_period": 30},
        "product": {"id": product, "name": format!("Monthly club {product}"), "ucode": format!("u{product}")},
        "price": {"value": 49.9, "currency_code": "BRL"},
        "subscriber": {"name": "Ana Souza", "email": email, "ucode": unique("b")},
    });
    SubscriptionRecord { subscription, purchases }
}

async fn wait_enrolments(stack: &Stack, want: &BTreeSet<(String, String)>, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while enrolled(stack) != *want {
        assert!(
            Instant::now() < deadline,
            "{what}: missing {:?}, extra {:?}\n{}",
            want.difference(&enrolled(stack)).collect::<Vec<_>>(),
            enrolled(stack).difference(want).collect::<Vec<_>>(),
            stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The staff API's name of a linked product.
async fn product_name(stack: &Stack, product: i64) -> Value {
    let (status, link) = stack.api("GET", &format!("/api/links/{product}"), None).await;
    assert_eq!(status, 200, "{link}");
    link["product_name"].clone()
}

async fn reconcile(stack: &Stack, args: &[&str]) -> Value {
    let mut all = vec!["hotmart", "reconcile"];
    all.extend_from_slice(args);
    let out = tokio::time::timeout(Duration::from_secs(120), stack.starter_cmd(&all))
        .await
        .unwrap_or_else(|_| panic!("the reconciliation did not finish\n{}", stack.logs()));
    serde_json::from_str(&out).unwrap()
}

/// `(kind, transaction or subscriber workflow)` of each listed difference.
fn missed(report: &Value) -> BTreeSet<(String, String)> {
    report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let what = m["transaction"].as_str().unwrap_or(m["workflow_id"].as_str().unwrap());
            (m["kind"].as_str().unwrap().to_string(), what.to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_reconciliation_heals_lost_webhooks_and_a_second_changes_nothing() {
    let (lifetime, monthly) = (unique_product(), unique_product());
    let now = now_ms();
    let at = now - DAY;
    let tag = unique("R");
    let emails: Vec<String> = (0..7).map(|i| format!("{tag}.{i}@school.example").to_lowercase()).collect();
    let txn = |i: usize| format!("{tag}HPL{i}");
    // One-off lifetime sales, as Hotmart now reports them: 0 approved (webhook arrived),
    // 1 refunded and 4 charged back (only their approvals arrived), 2 approved and 3
    // complete (their webhooks were lost).
    let statuses = ["APPROVED", "REFUNDED", "APPROVED", "COMPLETE", "CHARGEBACK"];
    let mut school = School::default();
    for (i, status) in statuses.iter().enumerate() {
        school.sales.push(hotmart::sale(lifetime, &buyer(&emails[i]), &txn(i), status, at));
    }
    // A renewal whose webhook was lost (its first charge's arrived, so access had lapsed),
    // and a cancellation whose webhook was lost (its paid period ended two days ago).
    let (renewed, cancelled) = (format!("{tag}S5"), format!("{tag}S6"));
    school.subscriptions.push(subscription(
        monthly,
        &renewed,
        &emails[5],
        "ACTIVE",
        &[now - 40 * DAY, now - 10 * DAY],
        now + 20 * DAY,
    ));
    school.subscriptions.push(subscription(
        monthly,
        &cancelled,
        &emails[6],
        "CANCELLED_BY_CUSTOMER",
        &[now - 32 * DAY],
        now - 2 * DAY,
    ));
    // A product only the products API names (nobody bought it yet).
    let unsold = unique_product();
    school.products.push(json!({"id": unsold, "name": "Unsold course", "ucode": "u1", "status": "ACTIVE",
                                "format": "ONLINE_COURSE", "is_subscription": false, "warranty_period": 7}));
    let lifetime_name = school.sales[0]["product"]["name"].clone();
    let hm = hotmart::spawn(HotmartConfig { school, ..Default::default() }).await.unwrap();

    let mut stack = Stack::spawn(StackOptions::default()).await;
    use_hotmart(&mut stack, &hm).await;
    stack.link(lifetime, &["101"], &["--policy", "lifetime"]).await;
    stack.link(monthly, &["103"], &["--policy", "subscription", "--grace", "3d"]).await;
    stack.link(unsold, &["102"], &["--policy", "lifetime"]).await;

    // What webhooks did deliver.
    for i in [0, 1, 4] {
        let sale = Sale::one_off(lifetime, &txn(i), &emails[i]);
        stack.post(&sale.event("PURCHASE_APPROVED", &unique("wh"), at)).await;
    }
    let mut first =
        Sale::subscription(monthly, &renewed, &format!("{renewed}c0"), &emails[5], 1, now - 10 * DAY);
    first.approved_date = Some(now - 40 * DAY);
    stack.post(&first.event("PURCHASE_APPROVED", &unique("wh"), now - 40 * DAY)).await;
    let mut only =
        Sale::subscription(monthly, &cancelled, &format!("{cancelled}c0"), &emails[6], 1, now - 2 * DAY);
    only.approved_date = Some(now - 32 * DAY);
    stack.post(&only.event("PURCHASE_APPROVED", &unique("wh"), now - 32 * DAY)).await;
    let course = |i: usize, c: &str| (emails[i].clone(), c.to_string());
    // Before: the refunded and charged-back buyers keep access, the cancelled subscriber is
    // in grace, the lost sales and the renewal have none.
    let before: BTreeSet<_> = [course(0, "101"), course(1, "101"), course(4, "101"), course(6, "103")].into();
    wait_enrolments(&stack, &before, "after the webhooks").await;
    let entries = stack.health().await["journal"]["entries"].as_u64().unwrap();
    // Product names come with the webhooks.
    assert_eq!(product_name(&stack, lifetime).await, json!(format!("Product {lifetime}")));
    assert_eq!(product_name(&stack, unsold).await, Value::Null);

    let want_missed: BTreeSet<(String, String)> = [
        ("PURCHASE_REFUNDED", txn(1)),
        ("PURCHASE_APPROVED", txn(2)),
        ("PURCHASE_APPROVED", txn(3)),
        ("PURCHASE_COMPLETE", txn(3)),
        ("PURCHASE_CHARGEBACK", txn(4)),
        ("PURCHASE_APPROVED", format!("{renewed}c1")),
        ("SUBSCRIPTION_CANCELLATION", format!("subscription-{monthly}-{cancelled}")),
    ]
    .into_iter()
    .map(|(k, w)| (k.to_string(), w))
    .collect();

    // A dry run reports the same differences and touches nothing.
    let dry = reconcile(&stack, &["--dry-run"]).await;
    assert_eq!(missed(&dry), want_missed, "{dry:#}");
    assert_eq!((dry["dry_run"].as_bool(), dry["delivered"].as_u64()), (Some(true), Some(0)), "{dry:#}");
    assert_eq!(stack.health().await["journal"]["entries"].as_u64().unwrap(), entries);

    let run = reconcile(&stack, &[]).await;
    assert_eq!(missed(&run), want_missed, "{run:#}");
    assert_eq!(run["missed"], 7, "{run:#}");
    assert_eq!(run["delivered"], 7, "{run:#}");
    // Everything else Hotmart implies (the approvals webhooks brought) was known.
    assert_eq!(run["known"], 5, "{run:#}");
    assert!(run["items"].as_array().unwrap().iter().all(|m| m["delivered"] == true));
    assert_eq!(stack.health().await["journal"]["entries"].as_u64().unwrap(), entries + 7);

    // The oracle: access as Hotmart's records imply, one revenue row per charge and reversal.
    let after: BTreeSet<_> = [course(0, "101"), course(2, "101"), course(3, "101"), course(5, "103")].into();
    wait_enrolments(&stack, &after, "after the reconciliation").await;
    let mut rows: BTreeSet<String> = (0..5).map(|i| format!("{}:charge", txn(i))).collect();
    rows.extend([format!("{}:refund", txn(1)), format!("{}:chargeback", txn(4))]);
    rows.extend([
        format!("{renewed}c0:charge"),
        format!("{renewed}c1:charge"),
        format!("{cancelled}c0:charge"),
    ]);
    let keys =
        |r: Vec<Value>| r.iter().map(|r| r["key"].as_str().unwrap().to_string()).collect::<BTreeSet<_>>();
    let got = stack.wait_revenue(Duration::from_secs(60), |r| r.len() >= rows.len()).await;
    assert_eq!(keys(got), rows);
    // Names: the newest an event stated, and the products API's.
    assert_eq!(product_name(&stack, lifetime).await, lifetime_name);
    assert_eq!(product_name(&stack, unsold).await, json!("Unsold course"));
    let (status, daily) = stack.api("GET", "/api/revenue/daily?currency=BRL", None).await;
    assert_eq!(status, 200, "{daily}");
    assert_eq!(daily["product_names"][lifetime.to_string()], lifetime_name, "{daily}");

    // Again: nothing is missed, nothing journaled, nothing changes.
    let again = reconcile(&stack, &[]).await;
    assert_eq!((again["missed"].as_u64(), again["delivered"].as_u64()), (Some(0), Some(0)), "{again:#}");
    assert_eq!(again["checked"], run["checked"]);
    assert_eq!(stack.health().await["journal"]["entries"].as_u64().unwrap(), entries + 7);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(enrolled(&stack), after);
    assert_eq!(keys(stack.revenue().await), rows);

    // The reports, newest first, through the CLI and the staff API.
    let listed: Vec<Value> = stack
        .starter_cmd(&["hotmart", "reports"])
        .await
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<&Value> = listed.iter().map(|r| &r["id"]).collect();
    assert_eq!(ids, [&again["id"], &run["id"], &dry["id"]]);
    assert!(listed[1]["summary"].as_str().unwrap().contains("7 of 12 facts missed"), "{:#}", listed[1]);
    let (status, api) = stack.api("GET", "/api/hotmart/reconciliations?limit=2", None).await;
    assert_eq!(status, 200, "{api}");
    assert_eq!(api["items"].as_array().unwrap().len(), 2);
    assert_eq!(api["items"][1]["missed_by_kind"]["PURCHASE_APPROVED"], 3, "{api:#}");
}
