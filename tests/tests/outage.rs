//! Temporal down, processes killed: an acknowledged webhook still reaches its workflow.

use std::time::Duration;

use tollgate_domain::fixtures::Sale;
use tollgate_tests::{Stack, StackOptions, TemporalServer, now_ms, unique, unique_product};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_is_acknowledged_while_temporal_is_down_and_delivered_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut temporal = TemporalServer::start(Some(&dir.path().join("temporal.db")));
    let mut stack =
        Stack::spawn(StackOptions { temporal: Some(temporal.address()), ..Default::default() }).await;
    let p = 7_000_000 + (now_ms() % 1_000_000);
    stack.link(p, &["101"], &["--policy", "lifetime"]).await;

    // Warm path works.
    let email_a = format!("{}@example.com", unique("up"));
    stack
        .post(&Sale::one_off(p, &unique("HP"), &email_a).event("PURCHASE_APPROVED", &unique("e"), now_ms()))
        .await;
    stack.wait_enrolled(&email_a, &["101"], Duration::from_secs(20)).await;

    temporal.stop();
    let email_b = format!("{}@example.com", unique("down"));
    let (code, body) = stack
        .post(&Sale::one_off(p, &unique("HP"), &email_b).event("PURCHASE_APPROVED", &unique("e"), now_ms()))
        .await;
    assert_eq!(code, 200, "journaled, so acknowledged: {body}");

    // The starter crashes before Temporal returns; a new one finds the entry in the journal.
    stack.kill_starter().await;
    stack.start_starter().await;
    let email_c = format!("{}@example.com", unique("down2"));
    assert_eq!(
        stack
            .post(&Sale::one_off(p, &unique("HP"), &email_c).event(
                "PURCHASE_APPROVED",
                &unique("e"),
                now_ms()
            ))
            .await
            .0,
        200
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(stack.enrolled(&email_b).is_empty());

    temporal.restart();
    if stack.worker.as_mut().is_some_and(|w| w.try_wait().ok().flatten().is_some()) {
        eprintln!("worker exited while Temporal was down; restarting it as a supervisor would");
        stack.start_worker();
    }
    stack.wait_enrolled(&email_b, &["101"], Duration::from_secs(60)).await;
    stack.wait_enrolled(&email_c, &["101"], Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_resumes_and_deadlines_still_fire() {
    let mut stack = Stack::spawn(StackOptions::default()).await;
    let p = 8_000_000 + (now_ms() % 1_000_000);
    stack.link(p, &["102"], &["--policy", "fixed_term", "--term", "6s"]).await;
    let email = format!("{}@example.com", unique("kw"));
    let t = now_ms();
    stack
        .post(&Sale { approved_date: Some(t), ..Sale::one_off(p, &unique("HP"), &email) }.event(
            "PURCHASE_APPROVED",
            &unique("e"),
            t,
        ))
        .await;
    stack.wait_enrolled(&email, &["102"], Duration::from_secs(20)).await;
    // kill -9 while the workflow sleeps on its deadline; the timer lives in Temporal.
    stack.kill_worker().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stack.start_worker();
    stack.wait_enrolled(&email, &[], Duration::from_secs(30)).await;
    assert!(now_ms() >= t + 6_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_worker_and_starter_cleanly_and_new_ones_carry_on() {
    let mut stack = Stack::spawn(StackOptions::default()).await;
    let p = unique_product();
    stack.link(p, &["101"], &["--policy", "lifetime"]).await;
    let first = format!("{}@example.com", unique("term"));
    stack
        .post(&Sale::one_off(p, &unique("HP"), &first).event("PURCHASE_APPROVED", &unique("e"), now_ms()))
        .await;
    stack.wait_enrolled(&first, &["101"], Duration::from_secs(20)).await;

    let status = stack.terminate_worker(Duration::from_secs(20)).await;
    assert!(status.success(), "a drained worker exits 0, got {status}\n{}", stack.logs());
    let logs = stack.full_logs();
    assert!(logs.contains("shutting down: finishing in-flight tasks") && logs.contains("SIGTERM"), "{logs}");
    assert!(logs.contains("worker stopped"), "{logs}");

    // The starter too stops cleanly on SIGTERM; a new one serves the same journal.
    let status = stack.terminate_starter(Duration::from_secs(20)).await;
    assert!(status.success(), "starter exit {status}\n{}", stack.logs());
    stack.start_starter().await;

    // Acknowledged while no worker runs; the next worker enrolls it.
    let second = format!("{}@example.com", unique("term"));
    stack
        .post(&Sale::one_off(p, &unique("HP"), &second).event("PURCHASE_APPROVED", &unique("e"), now_ms()))
        .await;
    stack.start_worker();
    stack.wait_enrolled(&second, &["101"], Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_over_its_memory_ceiling_exits_to_be_restarted() {
    let mut stack = Stack::spawn(StackOptions::default()).await;
    let p = unique_product();
    stack.link(p, &["102"], &["--policy", "lifetime"]).await;
    let first = format!("{}@example.com", unique("rss"));
    stack
        .post(&Sale::one_off(p, &unique("HP"), &first).event("PURCHASE_APPROVED", &unique("e"), now_ms()))
        .await;
    stack.wait_enrolled(&first, &["102"], Duration::from_secs(20)).await;

    // Every process is over 1 MB: the restarted worker drains and asks to be restarted.
    stack.kill_worker().await;
    stack.env.push(("TOLLGATE_WORKER_MAX_RSS_MB".into(), "1".into()));
    stack.start_worker();
    let status = stack.wait_worker_exit(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(75), "{}", stack.logs());
    assert!(stack.full_logs().contains("over TOLLGATE_WORKER_MAX_RSS_MB=1"), "{}", stack.logs());

    // What a supervisor does next: a fresh worker (no ceiling here) picks up the work.
    stack.env.retain(|(k, _)| k != "TOLLGATE_WORKER_MAX_RSS_MB");
    let second = format!("{}@example.com", unique("rss"));
    stack
        .post(&Sale::one_off(p, &unique("HP"), &second).event("PURCHASE_APPROVED", &unique("e"), now_ms()))
        .await;
    stack.start_worker();
    stack.wait_enrolled(&second, &["102"], Duration::from_secs(30)).await;
}
