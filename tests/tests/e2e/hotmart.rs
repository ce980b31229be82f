//! Onboarding from Hotmart's API end to end: a school's existing customers (lifetime,
//! fixed-term, active, overdue, cancelled and refunded) in the Hotmart simulator are
//! imported through the `HotmartImport` workflow and end with exactly the enrolments the
//! access rules imply, while the Hotmart simulator injects 5xx, 429s and token expiry and
//! webhooks keep arriving (nothing doubles); a dry run before it changes nothing;
//! re-running the import changes nothing.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use tollgate_domain::fixtures::Sale;
use tollgate_simulator::hotmart::{self, HotmartConfig, HotmartFaults, School, SchoolProducts};
use tollgate_tests::{Stack, StackOptions, now_ms, unique, unique_product};

const DAY: i64 = 86_400_000;
const CUSTOMERS: usize = 200;

/// The enrolments the documented rules imply, computed from the school's records alone:
/// lifetime until a refund or chargeback; fixed-term for 365 days after approval; a
/// subscription until its next charge date (plus the 3-day grace unless cancelled), not
/// if its latest charge was refunded.
fn expected(school: &School, p: SchoolProducts, now: i64) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for s in &school.sales {
        let email = s["buyer"]["email"].as_str().unwrap().to_string();
        let status = s["purchase"]["status"].as_str().unwrap();
        let approved = s["purchase"]["approved_date"].as_i64().unwrap();
        let product = s["product"]["id"].as_i64().unwrap();
        let paid = matches!(status, "APPROVED" | "COMPLETE");
        if product == p.lifetime && paid {
            out.insert((email, "101".to_string()));
        } else if product == p.fixed_term && paid && approved + 365 * DAY > now {
            out.insert((email, "102".to_string()));
        }
    }
    for r in &school.subscriptions {
        let s = &r.subscription;
        let email = s["subscriber"]["email"].as_str().unwrap().to_string();
        let next = s["date_next_charge"].as_i64().unwrap();
        let cancelled =
            s["status"].as_str().unwrap() != "ACTIVE" && s["status"].as_str().unwrap() != "OVERDUE";
        let refunded = r.purchases.last().is_some_and(|c| c["status"] == "REFUNDED");
        let until = if cancelled { next } else { next + 3 * DAY };
        if !refunded && until > now {
            out.insert((email, "103".to_string()));
        }
    }
    out
}

/// Webhooks sent while the import runs, with the buyer's email: the approval of the
/// latest charge of every tenth subscription (as Hotmart sent it, under its own event
/// id), and 20 new lifetime buyers the API has not listed.
fn webhook_stream(school: &School, p: SchoolProducts) -> Vec<(Value, String)> {
    let mut out = Vec::new();
    for r in school.subscriptions.iter().step_by(10) {
        let s = &r.subscription;
        let (email, code) =
            (s["subscriber"]["email"].as_str().unwrap(), s["subscriber_code"].as_str().unwrap());
        let last = r.purchases.last().unwrap();
        let txn = last["transaction"].as_str().unwrap();
        let mut sale = Sale::subscription(
            p.subscription,
            code,
            txn,
            email,
            last["recurrency_number"].as_u64().unwrap() as u32,
            s["date_next_charge"].as_i64().unwrap(),
        );
        sale.approved_date = last["approved_date"].as_i64();
        sale.price = Some("49.9".into());
        let at = sale.approved_date.unwrap();
        out.push((sale.event("PURCHASE_APPROVED", &format!("wh-{txn}"), at), email.to_string()));
    }
    for i in 0..20 {
        let email = format!("{}@new.example", unique("buyer"));
        let sale = Sale::one_off(p.lifetime, &format!("HPNEW{}x{i}", p.lifetime), &email);
        out.push((sale.event("PURCHASE_APPROVED", &unique("wh-new"), now_ms()), email));
    }
    out
}

/// Points the stack's worker and CLI at the Hotmart simulator.
pub(crate) async fn use_hotmart(stack: &mut Stack, hm: &hotmart::HotmartHandle) {
    for (k, v) in [
        ("HOTMART_CLIENT_ID", hm.client_id().to_string()),
        ("HOTMART_CLIENT_SECRET", hm.client_secret().to_string()),
        ("HOTMART_API_URL", hm.base_url()),
        ("HOTMART_MAX_PER_MINUTE", "1200".to_string()),
    ] {
        stack.env.push((k.into(), v));
    }
    // The worker reads the Hotmart settings at start.
    stack.kill_worker().await;
    stack.start_worker();
}

pub(crate) fn enrolled(stack: &Stack) -> BTreeSet<(String, String)> {
    stack.sim.enrollments().into_iter().collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn import_existing_customers_with_faults_and_webhooks_then_reimport_changes_nothing() {
    import_school(CUSTOMERS).await;
}

/// The same with the 1,000 customers (a few minutes: run with `--ignored`).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "1,000 customers take minutes; run with --ignored"]
async fn import_a_thousand_customers() {
    import_school(1_000).await;
}

async fn import_school(customers: usize) {
    let products = SchoolProducts {
        lifetime: unique_product(),
        fixed_term: unique_product(),
        subscription: unique_product(),
    };
    let now = now_ms();
    let school = School::generate(customers, 12, now, products);
    let want = expected(&school, products, now);
    let hm = hotmart::spawn(HotmartConfig { school: school.clone(), ..Default::default() }).await.unwrap();

    let mut stack = Stack::spawn(StackOptions::default()).await;
    use_hotmart(&mut stack, &hm).await;
    stack.link(products.lifetime, &["101"], &["--policy", "lifetime"]).await;
    stack.link(products.fixed_term, &["102"], &["--policy", "fixed_term", "--term", "365d"]).await;
    stack.link(products.subscription, &["103"], &["--policy", "subscription", "--grace", "3d"]).await;

    // Dry run: says what would change, touches nothing.
    let dry: Value =
        serde_json::from_str(&stack.starter_cmd(&["hotmart", "import", "--dry-run"]).await).unwrap();
    let dry_enroll: BTreeSet<String> = dry["to_enroll"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["email"].as_str().unwrap().to_string())
        .collect();
    let want_emails: BTreeSet<String> = want.iter().map(|(e, _)| e.clone()).collect();
    assert_eq!(dry_enroll, want_emails, "dry run's students to enroll");
    assert!(dry["to_unenroll"].as_array().unwrap().is_empty());
    assert!(!dry["revenue_rows"].as_array().unwrap().is_empty());
    assert_eq!(stack.health().await["journal"]["entries"], 0, "the dry run journaled something");
    assert!(enrolled(&stack).is_empty());

    // The import, through 5xx, 429s and expired tokens, while webhooks keep arriving:
    // real approvals (Hotmart's own ids) of charges the import also reads, and new buyers.
    hm.set_faults(HotmartFaults { error_rate: 0.1, rate_limited_rate: 0.1, expired_token_rate: 0.03 });
    let webhooks = webhook_stream(&school, products);
    let mut want = want;
    for (_, email) in webhooks
        .iter()
        .filter(|(b, _)| b["data"]["purchase"]["transaction"].as_str().unwrap().starts_with("HPNEW"))
    {
        want.insert((email.clone(), "101".to_string()));
    }
    let started = Instant::now();
    let (out, ()) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(300), stack.starter_cmd(&["hotmart", "import"])),
        async {
            for (body, _) in &webhooks {
                let (status, answer) = stack.post(body).await;
                assert_eq!(status, 200, "{answer}");
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        }
    );
    let out = out.unwrap_or_else(|_| panic!("the import did not finish\n{}", stack.logs()));
    let done: Value = serde_json::from_str(&out).unwrap();
    let import_time = started.elapsed();
    assert_eq!(done["phase"]["list"], "done", "{done:#}");
    assert_eq!(done["subscriptions"].as_u64().unwrap() as usize, school.subscriptions.len());
    assert_eq!(done["events_new"], dry["new_events"], "{done:#}");
    let state = hm.state();
    assert!(state.injected_faults > 0, "{state:?}");
    let deadline = Instant::now() + Duration::from_secs(240);
    while enrolled(&stack) != want {
        assert!(
            Instant::now() < deadline,
            "enrolments differ: missing {:?}, extra {:?}\n{}",
            want.difference(&enrolled(&stack)).take(5).collect::<Vec<_>>(),
            enrolled(&stack).difference(&want).take(5).collect::<Vec<_>>(),
            stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "imported {customers} customers ({} events) in {import_time:?}; Hotmart calls {}, peak {}/min; enrolments {}",
        done["events"],
        state.total_calls,
        state.max_calls_per_minute,
        want.len()
    );
    // One row per charge and reversal, whichever of the webhook and the import told it.
    let new_buyers = want.len() - expected(&school, products, now).len();
    let rows = dry["revenue_rows"].as_array().unwrap().len() + new_buyers;
    stack.wait_revenue(Duration::from_secs(60), |r| r.len() >= rows).await;
    assert_eq!(stack.revenue().await.len(), rows);
    let entries = stack.health().await["journal"]["entries"].clone();

    // Again: every id is journaled already, so nothing changes.
    hm.set_faults(HotmartFaults::default());
    let again: Value = serde_json::from_str(&stack.starter_cmd(&["hotmart", "import"]).await).unwrap();
    assert_eq!(again["events_new"], 0, "{again:#}");
    assert_eq!(again["events"], done["events"]);
    assert_eq!(stack.health().await["journal"]["entries"], entries);
    let dry: Value =
        serde_json::from_str(&stack.starter_cmd(&["hotmart", "import", "--dry-run"]).await).unwrap();
    assert_eq!(dry["new_events"], 0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(enrolled(&stack), want);
    assert_eq!(stack.revenue().await.len(), rows);
}
