//! Revenue end to end: webhooks -> workflows -> warehouse -> dashboard JSON, the daily
//! rollup (re-runnable), reconciliation with repair, and the Temporal Schedules.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::Value;
use tollgate_domain::fixtures::Sale;
use tollgate_domain::metrics::{DAY_MS, Day, DayRollup};
use tollgate_domain::money::Money;
use tollgate_domain::revenue::{RevenueKind, RevenueRow};
use tollgate_tests::{API_TOKEN, DASHBOARD_TOKEN, Stack, StackOptions, now_ms, unique, unique_product};
use tollgate_warehouse::{SqliteWarehouse, Warehouse};

use crate::{WAIT, email};

/// GET a dashboard endpoint with the read-only token.
async fn dash(stack: &Stack, path: &str) -> (u16, Value) {
    stack.api_as("GET", path, None, Some(DASHBOARD_TOKEN)).await
}

/// Polls `path` until `pred` holds; returns the body and how long it took.
async fn wait_dash(stack: &Stack, path: &str, pred: impl Fn(&Value) -> bool) -> (Value, Duration) {
    let start = Instant::now();
    loop {
        let (status, body) = dash(stack, path).await;
        if status == 200 && pred(&body) {
            return (body, start.elapsed());
        }
        assert!(start.elapsed() < WAIT, "{path} never matched: {status} {body:#}\n{}", stack.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sum(rows: &Value, field: &str) -> i64 {
    rows.as_array().unwrap().iter().map(|r| r[field].as_i64().unwrap()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_reach_the_dashboard_and_the_rollup_matches() {
    let stack = Stack::spawn(StackOptions::default()).await;
    let (sub_p, one_p) = (unique_product(), unique_product());
    stack.link(sub_p, &["103"], &["--policy", "subscription", "--grace", "1d"]).await;
    stack.link(one_p, &["104"], &["--policy", "lifetime"]).await;
    let t = now_ms();
    let day = Day::of_ms(t);
    let q = format!("from={day}&to={day}&currency=BRL");

    // A subscription paid twice (first charge and a renewal), and a one-off purchase
    // that is refunded.
    let (code, sub_email) = (unique("SUB"), email("rev-sub"));
    let first = Sale::subscription(sub_p, &code, &unique("HP"), &sub_email, 1, t + 30 * DAY_MS);
    let renewal = Sale::subscription(sub_p, &code, &unique("HP"), &sub_email, 2, t + 1 + 30 * DAY_MS);
    let (txn, one_email) = (unique("HP"), email("rev-one"));
    let one_off = Sale::one_off(one_p, &txn, &one_email);
    for body in [
        first.event("PURCHASE_APPROVED", &unique("e"), t),
        renewal.event("PURCHASE_APPROVED", &unique("e"), t + 1),
        one_off.event("PURCHASE_APPROVED", &unique("e"), t + 2),
    ] {
        assert_eq!(stack.post(&body).await.0, 200);
    }
    let (daily, took) =
        wait_dash(&stack, &format!("/api/revenue/daily?{q}"), |b| sum(&b["courses"], "charge_count") == 3)
            .await;
    eprintln!(
        "three charges visible in the dashboard JSON {} ms after the last webhook ack",
        took.as_millis()
    );
    assert_eq!(daily["exponent"], 2);
    assert_eq!(sum(&daily["courses"], "charges_minor"), 2 * 9398 + 19700);

    assert_eq!(stack.post(&one_off.event("PURCHASE_REFUNDED", &unique("e"), now_ms())).await.0, 200);
    let (daily, took) =
        wait_dash(&stack, &format!("/api/revenue/daily?{q}"), |b| sum(&b["courses"], "refund_count") == 1)
            .await;
    eprintln!("refund visible {} ms after its ack", took.as_millis());
    let courses = daily["courses"].as_array().unwrap();
    let of = |p: i64| courses.iter().find(|c| c["product_id"] == p).unwrap_or_else(|| panic!("{daily:#}"));
    assert_eq!(
        (of(sub_p)["total_minor"].as_i64(), of(sub_p)["charge_count"].as_i64()),
        (Some(2 * 9398), Some(2))
    );
    assert_eq!(
        (of(one_p)["charges_minor"].as_i64(), of(one_p)["refunds_minor"].as_i64()),
        (Some(19700), Some(-19700))
    );
    assert_eq!(of(one_p)["total_minor"], 0);

    // Subscriptions: one active, MRR = the renewal's charge (one month).
    let (_, subs) = dash(&stack, &format!("/api/revenue/subscriptions?{q}")).await;
    let today = &subs["days"][0];
    assert_eq!((today["active"].as_i64(), today["mrr_minor"].as_i64()), (Some(1), Some(9398)), "{subs:#}");
    // Another currency has none of it: currencies are never mixed.
    let (_, usd) = dash(&stack, &format!("/api/revenue/daily?from={day}&to={day}&currency=USD")).await;
    assert_eq!(usd["courses"], serde_json::json!([]));
    let (_, cur) = dash(&stack, "/api/revenue/currencies").await;
    assert_eq!(cur["currencies"], serde_json::json!(["BRL"]));

    // The daily rollup of that day, through its workflow, equals the dashboard's figures
    // (computed from the facts); a re-run gives the same result.
    let rollup = |out: String| serde_json::from_str::<DayRollup>(out.lines().next().unwrap()).unwrap();
    let d = day.to_string();
    let first_run = rollup(stack.starter_cmd(&["revenue", "rollup", "--from", &d]).await);
    assert_eq!(serde_json::to_value(&first_run.courses).unwrap(), daily["courses"]);
    assert_eq!(serde_json::to_value(&first_run.subscriptions).unwrap(), subs["days"]);
    let again = rollup(stack.starter_cmd(&["revenue", "rollup", "--from", &d]).await);
    assert_eq!(again, first_run);

    // Reconciliation: all rows match the journal ...
    let reconcile = |repair: bool| {
        let mut args = vec!["revenue", "reconcile", "--from", &d, "--settle", "0s"];
        if repair {
            args.push("--repair");
        }
        let stack = &stack;
        async move { serde_json::from_str::<Value>(&stack.starter_cmd(&args).await).unwrap() }
    };
    let report = reconcile(false).await;
    assert_eq!((report["expected"].as_u64(), report["found"].as_u64()), (Some(4), Some(4)), "{report:#}");
    assert_eq!(report["missing"], serde_json::json!([]));
    // ... then a row goes missing and a stray one appears in the warehouse.
    let w = Warehouse::Sqlite(SqliteWarehouse::open(stack.dir.path().join("tollgate.db")).unwrap());
    assert_eq!(w.delete_keys(vec![format!("{txn}:refund")]).await.unwrap(), 1);
    let stray = RevenueRow {
        key: "GHOST:charge".into(),
        kind: RevenueKind::Charge,
        transaction: "GHOST".into(),
        event_id: "none".into(),
        product_id: one_p,
        buyer_email: "ghost@example.com".into(),
        subscriber_code: None,
        recurrence: None,
        gross: Money { minor: 100, currency: "BRL".into() },
        producer_net: None,
        occurred_at: t,
        paid_until: None,
    };
    assert!(w.record(stray).await.unwrap());
    let report = reconcile(false).await;
    assert_eq!(report["missing"], serde_json::json!([format!("{txn}:refund")]), "{report:#}");
    assert_eq!(report["extra"], serde_json::json!(["GHOST:charge"]));
    assert_eq!(report["repaired_missing"], 0, "report-only does not write");
    let report = reconcile(true).await;
    assert_eq!((report["repaired_missing"].as_u64(), report["removed_extra"].as_u64()), (Some(1), Some(1)));
    let report = reconcile(false).await;
    assert_eq!(
        (report["missing"].clone(), report["extra"].clone()),
        (serde_json::json!([]), serde_json::json!([]))
    );
    let (_, after) = dash(&stack, &format!("/api/revenue/daily?{q}")).await;
    assert_eq!(after["courses"], daily["courses"], "repaired back to the facts");
}

/// A refund and a chargeback of one charge book one reversal (the earliest by Hotmart's
/// clock, whatever the arrival order), so the charge nets to zero; a later partial refund
/// is booked apart. In a three-decimal currency, as the dashboard shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refund_and_chargeback_of_one_charge_net_to_zero() {
    let stack = Stack::spawn(StackOptions::default()).await;
    let product = unique_product();
    stack.link(product, &["104"], &["--policy", "lifetime"]).await;
    let t = now_ms();
    let day = Day::of_ms(t);
    let path = format!("/api/revenue/daily?from={day}&to={}&currency=KWD", day.next());
    let mut sale = Sale::one_off(product, &unique("HP"), &email("rev-twice"));
    (sale.currency, sale.price, sale.producer_net) =
        ("KWD".into(), Some("12.345".into()), Some("11.5".into()));
    let totals = |b: &Value| {
        let c = &b["courses"];
        (sum(c, "charges_minor"), sum(c, "refunds_minor"), sum(c, "chargebacks_minor"), sum(c, "total_minor"))
    };
    assert_eq!(stack.post(&sale.event("PURCHASE_APPROVED", &unique("e"), t)).await.0, 200);
    let (daily, _) = wait_dash(&stack, &path, |b| sum(&b["courses"], "charge_count") == 1).await;
    assert_eq!((daily["exponent"].as_u64(), totals(&daily).0), (Some(3), 12_345), "12.345 KWD: {daily:#}");
    // The refund arrives first but Hotmart created the chargeback earlier: it replaces it.
    assert_eq!(stack.post(&sale.event("PURCHASE_REFUNDED", &unique("e"), t + 2_000)).await.0, 200);
    wait_dash(&stack, &path, |b| sum(&b["courses"], "refund_count") == 1).await;
    assert_eq!(stack.post(&sale.event("PURCHASE_CHARGEBACK", &unique("e"), t + 1_000)).await.0, 200);
    let (daily, _) = wait_dash(&stack, &path, |b| {
        sum(&b["courses"], "chargeback_count") == 1 && sum(&b["courses"], "refund_count") == 0
    })
    .await;
    assert_eq!(totals(&daily), (12_345, 0, -12_345, 0), "{daily:#}");
    // Another refund of it later is refused; a partial refund after it is booked (its row
    // shows the refused one was handled first: one workflow applies events in order).
    assert_eq!(stack.post(&sale.event("PURCHASE_REFUNDED", &unique("e"), t + 3_000)).await.0, 200);
    let mut partial = sale.event("PURCHASE_REFUNDED", &unique("e"), t + 4_000);
    partial["data"]["purchase"]["status"] = "PARTIALLY_REFUNDED".into();
    partial["data"]["purchase"]["refunded_value"] = serde_json::json!({"value": 1, "currency_value": "KWD"});
    assert_eq!(stack.post(&partial).await.0, 200);
    let (daily, _) = wait_dash(&stack, &path, |b| sum(&b["courses"], "refund_count") == 1).await;
    assert_eq!(totals(&daily), (12_345, -1_000, -12_345, -1_000), "{daily:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_auth_and_validation() {
    let stack = Stack::spawn(StackOptions::default()).await;
    let q = "/api/revenue/daily?currency=BRL";
    assert_eq!(stack.api_as("GET", q, None, None).await.0, 401);
    assert_eq!(stack.api_as("GET", q, None, Some("wrong")).await.0, 401);
    assert_eq!(stack.api_as("GET", q, None, Some(DASHBOARD_TOKEN)).await.0, 200);
    assert_eq!(stack.api_as("GET", q, None, Some(API_TOKEN)).await.0, 200, "the staff token reads too");
    let (s, body) = stack.api_as("GET", "/api/revenue/daily", None, Some(DASHBOARD_TOKEN)).await;
    assert_eq!((s, body["field"].as_str()), (422, Some("currency")));
    let (s, body) = stack
        .api_as("GET", "/api/revenue/daily?currency=BRL&from=2026-02-30", None, Some(DASHBOARD_TOKEN))
        .await;
    assert_eq!((s, body["field"].as_str()), (422, Some("from")));
    let (s, _) = stack
        .api_as(
            "GET",
            "/api/revenue/subscriptions?currency=BRL&from=2026-03-02&to=2026-03-01",
            None,
            Some(DASHBOARD_TOKEN),
        )
        .await;
    assert_eq!(s, 422);
    // The page: a sign-in form without a token; ?token= sets a cookie and drops the token
    // from the URL; the cookie then opens the page and the JSON.
    let base = format!("http://{}", stack.http_addr);
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = no_redirect.get(format!("{base}/dashboard")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("Dashboard token"));
    let r = no_redirect.get(format!("{base}/dashboard?token=nope")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = no_redirect
        .get(format!("{base}/dashboard?token={DASHBOARD_TOKEN}&currency=BRL"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/dashboard?currency=BRL");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let r = no_redirect.get(format!("{base}/dashboard")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("/dashboard/chart.js"));
    let r = no_redirect.get(format!("{base}{q}")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = no_redirect
        .post(format!("{base}/dashboard/login"))
        .form(&[("token", DASHBOARD_TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let js = no_redirect.get(format!("{base}/dashboard/chart.js")).send().await.unwrap();
    assert!(js.text().await.unwrap().contains("Chart.js v4"));
    // The token never reaches the logs.
    assert!(!stack.full_logs().contains(DASHBOARD_TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_apply_is_idempotent_and_a_scheduled_run_completes() {
    use temporalio_client::RpcOptions;
    use temporalio_client::schedules::{
        ScheduleDescriptionAction, ScheduleOverlapPolicy, TriggerScheduleOptions,
    };
    let stack = Stack::spawn(StackOptions::default()).await;
    let out = stack.starter_cmd(&["schedules", "apply"]).await;
    let again = stack.starter_cmd(&["schedules", "apply", "--rollup-cron", "30 1 * * *"]).await;
    // No other test applies schedules; this test owns the ids on its server.
    assert!(out.contains("tollgate-revenue-rollup:") && out.contains("tollgate-revenue-reconcile:"), "{out}");
    assert_eq!(again.lines().filter(|l| l.ends_with("updated")).count(), 2, "{again}");
    let client = stack.client().await;
    let handle = client.get_schedule_handle("tollgate-revenue-rollup");
    let desc = handle.describe(RpcOptions::default()).await.unwrap();
    let ScheduleDescriptionAction::StartWorkflow(action) = desc.action() else {
        panic!("not a workflow action")
    };
    assert_eq!(action.workflow_type(), "RevenueRollup");
    let spec = &desc.raw().schedule.as_ref().unwrap().spec.as_ref().unwrap();
    assert!(format!("{spec:?}").contains("30"), "the update replaced the cron: {spec:?}");
    let queue = action.task_queue().to_string();
    for id in ["tollgate-revenue-rollup", "tollgate-revenue-reconcile"] {
        client
            .get_schedule_handle(id)
            .trigger(ScheduleOverlapPolicy::AllowAll, TriggerScheduleOptions::default())
            .await
            .unwrap();
    }
    let deadline = Instant::now() + WAIT;
    for kind in ["RevenueRollup", "RevenueReconcile"] {
        let query =
            format!("WorkflowType = '{kind}' AND TaskQueue = '{queue}' AND ExecutionStatus = 'Completed'");
        loop {
            let mut list = client.list_workflows(query.clone(), Default::default());
            if let Some(Ok(_)) = list.next().await {
                break;
            }
            assert!(Instant::now() < deadline, "no completed {kind} run from the schedule\n{}", stack.logs());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
