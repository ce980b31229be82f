//! TalentLMS having a bad hour: 5xx, 429 and commits whose answer is lost. Access must
//! still end exactly where the payments say, with nothing lost or doubled.

use std::collections::BTreeMap;
use std::time::Duration;

use tollgate_domain::fixtures::Sale;
use tollgate_simulator::{FaultConfig, SimConfig};
use tollgate_tests::{Stack, StackOptions, now_ms, purchase_wf, unique};

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
    assert_eq!(state.total_calls - before, 24, "create + two enrolls per new student, no lookup");
    assert!(state.max_calls_per_second <= 3, "peak {} calls/s over the cap of 3", state.max_calls_per_second);
}

/// TalentLMS calls by endpoint since `before`.
fn calls_since(stack: &Stack, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    let now = stack.sim.state().calls_by_endpoint;
    now.into_iter()
        .map(|(k, n)| (n - before.get(&k).copied().unwrap_or(0), k))
        .filter(|(n, _)| *n > 0)
        .map(|(n, k)| (k, n))
        .collect()
}

fn calls(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

/// A new student costs a create and an enroll; a returning one only the enroll; one that
/// already exists in TalentLMS a create, a lookup and an enroll; and a known user deleted
/// by hand is found out by the enroll and created again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_enrolment_costs_the_fewest_talentlms_calls() {
    let stack = Stack::spawn(StackOptions::default()).await;
    let base = 9_600_000 + (now_ms() % 100_000) * 4;
    let (p1, p2, p3, p4) = (base, base + 1, base + 2, base + 3);
    for (p, course) in [(p1, "101"), (p2, "102"), (p3, "103"), (p4, "104")] {
        stack.link(p, &[course], &["--policy", "lifetime"]).await;
    }
    let wait = Duration::from_secs(30);
    let buy = |p: i64, email: &str| {
        Sale::one_off(p, &unique("HP"), email).event("PURCHASE_APPROVED", &unique("e"), now_ms())
    };
    let first_txn = unique("HP");
    let ana = format!("{}@example.com", unique("ana"));

    let before = stack.sim.state().calls_by_endpoint;
    let sale = Sale::one_off(p1, &first_txn, &ana);
    let t = now_ms();
    stack.post(&sale.event("PURCHASE_APPROVED", &unique("e"), t)).await;
    stack.post(&sale.event("PURCHASE_COMPLETE", &unique("e"), t + 1)).await;
    let first_wf = purchase_wf(&first_txn);
    stack.wait_enrolled(&ana, &["101"], wait).await;
    assert_eq!(
        calls_since(&stack, &before),
        calls(&[("usersignup", 1), ("addusertocourse", 1)]),
        "new student"
    );

    // Her first run has recorded her TalentLMS id with its decision once it ends; a
    // second purchase reads it there.
    stack.run_result(&first_wf, wait).await;
    let before = stack.sim.state().calls_by_endpoint;
    stack.post(&buy(p2, &ana)).await;
    stack.wait_enrolled(&ana, &["101", "102"], wait).await;
    assert_eq!(calls_since(&stack, &before), calls(&[("addusertocourse", 1)]), "returning student");

    let bea = format!("{}@example.com", unique("bea"));
    stack.sim.add_user(&bea, &unique("bea-login"));
    let before = stack.sim.state().calls_by_endpoint;
    stack.post(&buy(p3, &bea)).await;
    stack.wait_enrolled(&bea, &["103"], wait).await;
    assert_eq!(
        calls_since(&stack, &before),
        calls(&[("usersignup", 1), ("users", 1), ("addusertocourse", 1)]),
        "a student TalentLMS already had"
    );

    assert!(stack.sim.delete_user(&ana));
    let before = stack.sim.state().calls_by_endpoint;
    stack.post(&buy(p4, &ana)).await;
    stack.wait_enrolled(&ana, &["104"], wait).await;
    assert_eq!(
        calls_since(&stack, &before),
        calls(&[("addusertocourse", 2), ("usersignup", 1)]),
        "a known user deleted by hand"
    );
}
