//! The entitlement ledger (issue 11): what a key was granted and learned outlives its
//! workflow run, so a revoke always finds what to remove, with the user id stored at
//! grant time, whatever the current course link, the buyer's email or TalentLMS's lookup
//! answers say.

use std::time::Duration;

use serde_json::json;
use tollgate_domain::AccessState;
use tollgate_domain::fixtures::Sale;
use tollgate_simulator::FaultConfig;
use tollgate_tests::{Stack, StackOptions, now_ms, purchase_wf, unique, unique_product};

use crate::{Settled, WAIT, email, settled};

fn short_retention() -> StackOptions {
    StackOptions { retention: "2s", ..Default::default() }
}

/// Item 1: the approval's delivery failed, the refund arrived, the run revoked and ended;
/// weeks later the producer resends the approval from Hotmart's UI. The fresh run must
/// start from the ledger's facts (the refund) and stay revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_resent_after_the_run_ended_stays_revoked() {
    let stack = Stack::spawn(short_retention()).await;
    let p = unique_product();
    stack.link(p, &["101"], &["--policy", "lifetime"]).await;
    let (txn, email) = (unique("HP"), email("resent"));
    let sale = Sale::one_off(p, &txn, &email);
    let t = now_ms();
    let approval = sale.event("PURCHASE_APPROVED", &unique("e"), t);
    stack.post(&sale.event("PURCHASE_REFUNDED", &unique("e"), t + 1000)).await;
    let wf = purchase_wf(&txn);
    stack.wait_status(&wf, WAIT, |s| s.state == AccessState::Revoked).await;
    let ended = stack.run_result(&wf, WAIT).await;
    assert_eq!(ended.state, AccessState::Revoked);

    stack.post(&approval).await;
    let s = stack.wait_status(&wf, WAIT, |s| s.events_seen == 2 && s.pending_events == 0).await;
    assert_eq!(s.state, AccessState::Revoked, "{s:#?}");
    assert!(s.reason.contains("refunded"), "{}", s.reason);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(stack.enrolled(&email).is_empty(), "a refunded purchase enrolled again");
}

/// Item 2: after the run ended, TalentLMS's user lookup answers 403 and its unenroll
/// fails for a while. The revoke needs no lookup (the grant holds the user id) and keeps
/// retrying the unenroll until the course is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_errors_during_revoke_retry_until_the_course_is_gone() {
    let stack = Stack::spawn(short_retention()).await;
    let Settled { sale, email, wf, t, .. } = settled(&stack, "lookup").await;

    stack.sim.set_faults(FaultConfig {
        forbidden_rate: 1.0,
        only: vec!["users".into(), "removeuserfromcourse".into()],
        ..Default::default()
    });
    // The buyer's email changed at Hotmart since the purchase, too.
    let moved = Sale { email: format!("new-{email}"), ..sale.clone() };
    stack.post(&moved.event("PURCHASE_CHARGEBACK", &unique("e"), t + 90_000)).await;
    let s = stack
        .wait_status(&wf, WAIT, |s| {
            s.decisions.iter().any(|d| d.actions.iter().any(|a| a.contains("failed (will retry)")))
        })
        .await;
    assert_eq!(s.state, AccessState::Revoked);
    assert_eq!(stack.enrolled(&email), ["101", "102"], "nothing removed while TalentLMS refuses");

    stack.sim.clear_faults();
    stack.wait_enrolled(&email, &[], WAIT).await;
    // Done only once everything was released.
    assert_eq!(stack.run_result(&wf, WAIT).await.state, AccessState::Revoked);
}

/// Item 3: the product's link was deleted, then the purchase is charged back. The fresh
/// run has no link, but a reversal needs none: it revokes and releases what the key
/// holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chargeback_after_link_deletion_unenrolls() {
    let stack = Stack::spawn(StackOptions::default()).await;
    let Settled { p, sale, email, wf, t } = settled(&stack, "nolink").await;
    stack.starter_cmd(&["links", "remove", "--product", &p.to_string()]).await;

    stack.post(&sale.event("PURCHASE_CHARGEBACK", &unique("e"), t + 90_000)).await;
    stack.wait_enrolled(&email, &[], WAIT).await;
    let s = stack.wait_status(&wf, WAIT, |s| s.state == AccessState::Revoked).await;
    assert!(s.reason.contains("charged back"), "{}", s.reason);
}

/// Item 7: TalentLMS applied an enroll but answered with an HTML maintenance page (a
/// permanent decode error), and the purchase was refunded before any retry. The grant
/// was recorded before the call, so the refund removes that course too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enroll_reported_failed_is_released_by_the_refund() {
    let stack = Stack::spawn(StackOptions::default()).await;
    let p = unique_product();
    stack.link(p, &["101"], &["--policy", "lifetime"]).await;
    let (txn, email) = (unique("HP"), email("intent"));
    let sale = Sale::one_off(p, &txn, &email);
    let t = now_ms();
    stack.post(&sale.event("PURCHASE_APPROVED", &unique("e"), t)).await;
    stack.wait_enrolled(&email, &["101"], WAIT).await;
    let wf = purchase_wf(&txn);
    // The link change finds running workflows through visibility, which lags a little.
    let deadline = std::time::Instant::now() + WAIT;
    while !stack.starter_cmd(&["status", "--email", &email]).await.contains(&wf) {
        assert!(std::time::Instant::now() < deadline, "{wf} never became visible");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    stack.sim.set_faults(FaultConfig {
        html_after_commit_rate: 1.0,
        only: vec!["addusertocourse".into()],
        ..Default::default()
    });
    stack.link(p, &["101", "102"], &["--policy", "lifetime"]).await;
    stack
        .wait_status(&wf, WAIT, |s| {
            s.decisions.iter().any(|d| d.actions.iter().any(|a| a.contains("enroll in course 102 failed")))
        })
        .await;
    assert_eq!(stack.enrolled(&email), ["101", "102"], "TalentLMS applied the enroll it reported failed");

    stack.post(&sale.event("PURCHASE_REFUNDED", &unique("e"), t + 1000)).await;
    stack.wait_enrolled(&email, &[], WAIT).await;
}

/// Items 8 and 9: a link change reaches every settled purchase, also one whose history
/// the namespace's retention purged (rebuilt from the ledger), and the answer counts
/// what it reached; a policy change that shortens access needs confirmation and says
/// how many students it affects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_change_reaches_settled_purchases_whose_history_was_purged() {
    let stack = Stack::spawn(StackOptions::default()).await;
    let p = unique_product();
    stack.link(p, &["101"], &["--policy", "lifetime"]).await;
    let t = now_ms();
    let mut buyers = Vec::new();
    for name in ["purged", "kept"] {
        let (txn, email) = (unique("HP"), email(name));
        let sale = Sale::one_off(p, &txn, &email);
        stack.post(&sale.event("PURCHASE_APPROVED", &unique("e"), t)).await;
        stack.post(&sale.event("PURCHASE_COMPLETE", &unique("e"), t + 1)).await;
        stack.wait_enrolled(&email, &["101"], WAIT).await;
        stack.run_result(&purchase_wf(&txn), WAIT).await;
        buyers.push((purchase_wf(&txn), email));
    }
    // The first purchase's history is gone, as after the namespace's retention period.
    let purged = &buyers[0].0;
    let temporal = |args: &[&str]| {
        let out = std::process::Command::new("temporal")
            .args(args)
            .args(["--address", &stack.temporal, "--namespace", "default", "-w", purged])
            .output()
            .expect("temporal CLI");
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, err) = temporal(&["workflow", "delete", "--yes"]);
    assert!(ok, "{err}");
    // Deletion is asynchronous (seconds on the dev server).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !temporal(&["workflow", "describe"]).1.contains("not found") {
        assert!(std::time::Instant::now() < deadline, "{purged} was not deleted");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let path = format!("/api/links/{p}");
    let (code, body) = stack
        .api("PUT", &path, Some(json!({"courses": ["101"], "policy": "fixed_term", "term": "30d"})))
        .await;
    assert_eq!(code, 409, "{body}");
    assert_eq!(body["details"]["students_affected"], 2, "{body}");
    assert_eq!(body["details"]["shortened"], "lifetime -> fixed_term 30d", "{body}");

    let (code, body) =
        stack.api("PUT", &path, Some(json!({"courses": ["101", "102"], "policy": "lifetime"}))).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["workflows"]["resumed"], 2, "{body}");
    assert_eq!(body["workflows"]["failed"], 0, "{body}");
    for (_, email) in &buyers {
        stack.wait_enrolled(email, &["101", "102"], WAIT).await;
    }
}
