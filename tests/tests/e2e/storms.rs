//! TalentLMS having a bad hour: 5xx, 429 and commits whose answer is lost. Access must
//! still end exactly where the payments say, with nothing lost or doubled.

use std::time::Duration;

use tollgate_domain::fixtures::Sale;
use tollgate_simulator::{FaultConfig, SimConfig};
use tollgate_tests::{Stack, StackOptions, now_ms, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_and_rate_limit_storms_lose_nothing() {
    let faults = FaultConfig {
        error_rate: 0.2,
        rate_limited_rate: 0.1,
        fail_after_commit_rate: 0.1,
        ..Default::default()
    };
    let sim = SimConfig { faults, ..Default::default() };
    let stack = Stack::spawn(StackOptions { sim, ..Default::default() }).await;
    let p = 9_000_000 + (now_ms() % 1_000_000);
    stack.link(p, &["101", "102"], &["--policy", "lifetime"]).await;

    let t = now_ms();
    let mut keep = Vec::new();
    let mut refunded = Vec::new();
    let mut txns = Vec::new();
    for i in 0..16 {
        let (txn, email) = (unique("HP"), format!("{}@example.com", unique("storm")));
        let sale = Sale::one_off(p, &txn, &email);
        assert_eq!(stack.post(&sale.event("PURCHASE_APPROVED", &unique("e"), t + i)).await.0, 200);
        if i % 4 == 0 {
            assert_eq!(stack.post(&sale.event("PURCHASE_REFUNDED", &unique("e"), t + 1000 + i)).await.0, 200);
            refunded.push(email);
        } else {
            keep.push(email);
        }
        txns.push(txn);
    }
    for e in &keep {
        stack.wait_enrolled(e, &["101", "102"], Duration::from_secs(90)).await;
    }
    for e in &refunded {
        stack.wait_enrolled(e, &[], Duration::from_secs(90)).await;
    }
    let state = stack.sim.state();
    assert!(state.injected_faults > 0, "the storm never happened");
    // One TalentLMS user per student despite lost answers and retries.
    let users = stack.sim.users();
    for e in &keep {
        assert_eq!(users.iter().filter(|u| &u.email == e).count(), 1, "{e}: one user");
    }
    // A refund that arrives before the workflow ran means the user is never created.
    for e in &refunded {
        assert!(users.iter().filter(|u| &u.email == e).count() <= 1, "{e} created more than once");
    }
    // Every charge and refund recorded once: wait for the refunded runs to record theirs.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let rows = loop {
        let rows = stack.revenue().await;
        if rows.len() >= txns.len() + refunded.len() || std::time::Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(rows.len(), txns.len() + refunded.len(), "{rows:#?}");
    for txn in &txns {
        let n = rows.iter().filter(|r| r["transaction"] == txn.as_str() && r["kind"] == "charge").count();
        assert_eq!(n, 1, "{txn}");
    }
    assert_eq!(rows.iter().filter(|r| r["kind"] == "refund").count(), refunded.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talentlms_calls_never_exceed_the_configured_rate() {
    let stack = Stack::spawn(StackOptions { max_rps: 3.0, ..Default::default() }).await;
    let p = 9_500_000 + (now_ms() % 1_000_000);
    stack.link(p, &["101", "102"], &["--policy", "lifetime"]).await;
    // Linking checks the courses in TalentLMS (directly, not through the capped queue):
    // count only what the purchases cost, and keep those calls out of their seconds.
    let before = stack.sim.state().total_calls;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let t = now_ms();
    let emails: Vec<String> = (0..8).map(|_| format!("{}@example.com", unique("rps"))).collect();
    for (i, e) in emails.iter().enumerate() {
        stack
            .post(&Sale::one_off(p, &unique("HP"), e).event("PURCHASE_APPROVED", &unique("e"), t + i as i64))
            .await;
    }
    for e in &emails {
        stack.wait_enrolled(e, &["101", "102"], Duration::from_secs(90)).await;
    }
    let state = stack.sim.state();
    eprintln!(
        "TalentLMS calls: {} total, peak {} in one second",
        state.total_calls, state.max_calls_per_second
    );
    assert_eq!(state.total_calls - before, 32, "find + create + two enrolls per student");
    assert!(state.max_calls_per_second <= 3, "peak {} calls/s over the cap of 3", state.max_calls_per_second);
}
