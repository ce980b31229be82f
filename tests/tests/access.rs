//! End-to-end: webhooks through the starter, the real Temporal dev server, the worker and
//! the TalentLMS simulator.

use std::time::Duration;

use tollgate_tests::{Stack, StackOptions, now_ms, unique};
use tollgate_workflows::AccessState;
use tollgate_workflows::fixtures::{Sale, cancellation};

const WAIT: Duration = Duration::from_secs(20);

fn product() -> i64 {
    (now_ms() % 1_000_000_000) + rand_suffix()
}

fn rand_suffix() -> i64 {
    use std::sync::atomic::{AtomicI64, Ordering};
    static N: AtomicI64 = AtomicI64::new(0);
    N.fetch_add(1_000_000_000, Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchase_enrolls_and_refund_unenrolls() {
    let stack = Stack::spawn(StackOptions::default()).await;
    let p = product();
    stack.link(p, &["101", "102"], &["--policy", "lifetime"]).await;
    let txn = unique("HP");
    let email = format!("{}@example.com", unique("ana"));
    let sale = Sale::one_off(p, &txn, &email);
    let t = now_ms();

    let (code, body) = stack.post(&sale.event("PURCHASE_APPROVED", &unique("e"), t)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "accepted");
    assert_eq!(body["workflow_id"], format!("purchase-{txn}"));
    stack.wait_enrolled(&email, &["101", "102"], WAIT).await;

    stack.post(&sale.event("PURCHASE_REFUNDED", &unique("e"), t + 1000)).await;
    stack.wait_enrolled(&email, &[], WAIT).await;
    let s = stack.wait_status(&format!("purchase-{txn}"), WAIT, |s| s.state == AccessState::Revoked).await;
    assert!(s.reason.contains("refunded"), "{}", s.reason);
    assert!(s.decisions.iter().any(|d| d.actions.iter().any(|a| a.contains("unenrolled from course 101"))), "{:#?}", s.decisions);

    // Revenue: the charge and its refund, once each.
    let rows = stack.revenue().await;
    let mine: Vec<_> = rows.iter().filter(|r| r["transaction"] == txn.as_str()).collect();
    assert_eq!(mine.len(), 2, "{rows:#?}");
    let sum: i64 = mine.iter().map(|r| r["gross"]["minor"].as_i64().unwrap()).sum();
    assert_eq!(sum, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_keeps_access_until_paid_period_ends() {
    let stack = Stack::spawn(StackOptions::default()).await;
    let p = product();
    stack.link(p, &["103"], &["--policy", "subscription", "--grace", "2s"]).await;
    let code = unique("SUB");
    let email = format!("{}@example.com", unique("cam"));
    let t = now_ms();
    let paid_until = t + 6_000;
    let sale = Sale::subscription(p, &code, &unique("HP"), &email, 1, paid_until);
    stack.post(&sale.event("PURCHASE_APPROVED", &unique("e"), t)).await;
    stack.wait_enrolled(&email, &["103"], WAIT).await;
    stack.post(&cancellation(&unique("e"), t + 500, p, &code, &email, paid_until)).await;
    let wf = format!("subscription-{p}-{code}");
    stack.wait_status(&wf, WAIT, |s| s.state == AccessState::Cancelled).await;
    assert_eq!(stack.enrolled(&email), vec!["103"], "still enrolled during the paid period");
    stack.wait_enrolled(&email, &[], WAIT).await;
    let left = now_ms();
    // No grace after a cancellation: out at the paid period's end (+ timer lateness).
    assert!(left >= paid_until, "unenrolled {} ms early", paid_until - left);
}
