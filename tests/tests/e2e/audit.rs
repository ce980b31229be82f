//! The TalentLMS drift audit end to end: staff edit TalentLMS by hand (the simulator's
//! admin API): a removal of an entitled student and an add of one who bought nothing for
//! that course are reported, left alone without `--repair`, repaired with it; a course
//! no link names is never read or touched.

use std::collections::BTreeSet;

use serde_json::Value;
use tollgate_domain::fixtures::Sale;
use tollgate_tests::{Stack, StackOptions, now_ms, purchase_wf, unique, unique_product};

use super::{WAIT, email};

fn enrolled(stack: &Stack) -> BTreeSet<(String, String)> {
    stack.sim.enrollments().into_iter().collect()
}

fn user_id(stack: &Stack, email: &str) -> String {
    stack.sim.users().into_iter().find(|u| u.email == email).expect("a TalentLMS user").id
}

async fn audit(stack: &Stack, args: &[&str]) -> Value {
    let mut all = vec!["talentlms", "audit"];
    all.extend_from_slice(args);
    serde_json::from_str(&stack.starter_cmd(&all).await).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_edits_are_reported_then_repaired_and_unlinked_courses_are_never_touched() {
    let stack = Stack::spawn(StackOptions::default()).await;
    let (p, q) = (unique_product(), unique_product());
    stack.link(p, &["101"], &["--policy", "lifetime"]).await;
    stack.link(q, &["102"], &["--policy", "lifetime"]).await;
    let (a, b, c) = (email("audit-a"), email("audit-b"), email("audit-c"));
    let txn_b = unique("HP");
    for (product, txn, who) in [(p, unique("HP"), &a), (p, txn_b.clone(), &b), (q, unique("HP"), &c)] {
        stack
            .post(&Sale::one_off(product, &txn, who).event("PURCHASE_APPROVED", &unique("e"), now_ms()))
            .await;
    }
    stack.wait_enrolled(&a, &["101"], WAIT).await;
    stack.wait_enrolled(&b, &["101"], WAIT).await;
    stack.wait_enrolled(&c, &["102"], WAIT).await;
    let (ua, ub, uc) = (user_id(&stack, &a), user_id(&stack, &b), user_id(&stack, &c));

    // By hand in TalentLMS: b removed from 101, c added to 101, a added to a course
    // nobody links.
    let staff_only = stack.sim.add_course("Staff only");
    stack.sim.edit_enrollment(&ub, "101", false).unwrap();
    stack.sim.edit_enrollment(&uc, "101", true).unwrap();
    stack.sim.edit_enrollment(&ua, &staff_only, true).unwrap();
    let edited = enrolled(&stack);

    // Report only: found, nothing changed.
    let report = audit(&stack, &[]).await;
    assert_eq!(
        (report["courses"].as_u64(), report["repair"].as_bool()),
        (Some(2), Some(false)),
        "{report:#}"
    );
    assert_eq!(
        (report["not_entitled"].as_u64(), report["not_enrolled"].as_u64()),
        (Some(1), Some(1)),
        "{report:#}"
    );
    let drift = report["drift"].as_array().unwrap();
    assert_eq!(drift.len(), 1, "{report:#}");
    assert_eq!(drift[0]["course_id"], "101");
    assert_eq!(drift[0]["not_entitled"], serde_json::json!([uc]));
    assert_eq!(drift[0]["not_enrolled"][0]["user_id"], ub.as_str());
    assert_eq!(drift[0]["not_enrolled"][0]["workflow_id"], purchase_wf(&txn_b).as_str());
    assert!(!report.to_string().contains(&format!("\"{staff_only}\"")), "{report:#}");
    assert_eq!(enrolled(&stack), edited);

    // Repair: b back in 101, c out of 101; the unlinked course keeps a.
    let repaired = audit(&stack, &["--repair"]).await;
    assert_eq!(
        (repaired["enrolled_now"].as_u64(), repaired["unenrolled_now"].as_u64()),
        (Some(1), Some(1)),
        "{repaired:#}"
    );
    let want: BTreeSet<(String, String)> = [(&a, "101"), (&b, "101"), (&c, "102"), (&a, staff_only.as_str())]
        .map(|(e, c)| (e.clone(), c.to_string()))
        .into();
    assert_eq!(enrolled(&stack), want);

    // Nothing left, and the reports are readable.
    let again = audit(&stack, &[]).await;
    assert!(again["summary"].as_str().unwrap().starts_with("ok"), "{again:#}");
    let listed: Vec<Value> = stack
        .starter_cmd(&["talentlms", "reports"])
        .await
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        listed.iter().map(|r| r["id"].clone()).collect::<Vec<_>>(),
        [again["id"].clone(), repaired["id"].clone(), report["id"].clone()]
    );
    let (status, api) = stack.api("GET", "/api/talentlms/audits?limit=1", None).await;
    assert_eq!(status, 200, "{api}");
    assert_eq!(api["items"][0]["id"], again["id"]);
    // The purchases still hold their grants: a later refund of b unenrolls as usual.
    stack.post(&Sale::one_off(p, &txn_b, &b).event("PURCHASE_REFUNDED", &unique("e"), now_ms())).await;
    stack.wait_enrolled(&b, &[], WAIT).await;
}
