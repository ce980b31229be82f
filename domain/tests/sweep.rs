//! The reconciliation's matching: facts are the same by transaction and kind whatever
//! the event id (webhook, import, reconciliation).

use serde_json::Value;
use tollgate_domain::Facts;
use tollgate_domain::fixtures::{Sale, cancellation};
use tollgate_domain::hotmart::{self, HotmartEvent};
use tollgate_domain::sweep::{HotmartReconcileReport, MAX_ITEMS, Missed, SweepBatch, already_known};

const T0: i64 = 1_760_000_000_000;

fn ev(body: Value) -> HotmartEvent {
    hotmart::parse(body.to_string().as_bytes()).expect("fixture parses").event
}

#[test]
fn a_fact_is_known_by_transaction_and_kind_not_by_id() {
    let sale = Sale::one_off(7, "HP1", "ana@example.com");
    let mut facts = Facts::default();
    facts.apply(&ev(sale.event("PURCHASE_APPROVED", "webhook-1", T0)));
    // The same approval under the import's id: known. Its refund, and another charge: not.
    assert!(already_known(&facts, &ev(sale.event("PURCHASE_APPROVED", "api:HP1:PURCHASE_APPROVED", T0))));
    let refund = ev(sale.event("PURCHASE_REFUNDED", "api:HP1:PURCHASE_REFUNDED", T0 + 1));
    assert!(!already_known(&facts, &refund));
    let other = Sale::one_off(7, "HP2", "ana@example.com");
    assert!(!already_known(&facts, &ev(other.event("PURCHASE_APPROVED", "api:HP2:PURCHASE_APPROVED", T0))));
    assert!(!already_known(&facts, &ev(sale.event("PURCHASE_COMPLETE", "api:HP1:PURCHASE_COMPLETE", T0))));

    // A chargeback Tollgate heard of covers a refund Hotmart reports for that charge.
    facts.apply(&ev(sale.event("PURCHASE_CHARGEBACK", "webhook-2", T0 + 2)));
    assert!(already_known(&facts, &refund));
    // A cancellation (SUBSCRIPTION_CANCELLATION) is the subscription's, not a charge's.
    let cancel = ev(cancellation("api:S1:SUBSCRIPTION_CANCELLATION", T0, 7, "S1", "ana@example.com", T0));
    assert!(!already_known(&facts, &cancel));
    facts.apply(&ev(cancellation("webhook-3", T0, 7, "S1", "ana@example.com", T0)));
    assert!(already_known(&facts, &cancel));
}

#[test]
fn a_report_counts_every_difference_and_lists_the_first_ones() {
    let sale = Sale::one_off(7, "HP1", "ana@example.com");
    let approval = ev(sale.event("PURCHASE_APPROVED", "api:HP1:PURCHASE_APPROVED", T0));
    let missed = Missed::of(&approval, "purchase-HP1", true);
    assert_eq!(missed.transaction.as_deref(), Some("HP1"));
    assert_eq!(missed.email.as_deref(), Some("ana@example.com"));
    let mut r = HotmartReconcileReport::default();
    assert!(r.summary().starts_with("ok"), "{}", r.summary());
    r.add(SweepBatch { checked: MAX_ITEMS as u64 + 10, known: 0, missed: vec![missed; MAX_ITEMS + 10] });
    r.add(SweepBatch { checked: 3, known: 3, missed: vec![] });
    assert_eq!(
        (r.checked, r.known, r.missed, r.delivered),
        (MAX_ITEMS as u64 + 13, 3, MAX_ITEMS as u64 + 10, MAX_ITEMS as u64 + 10)
    );
    assert_eq!(r.items.len(), MAX_ITEMS);
    assert_eq!(r.missed_by_kind["PURCHASE_APPROVED"], MAX_ITEMS as u64 + 10);
    assert!(r.summary().contains("510 PURCHASE_APPROVED"), "{}", r.summary());
}

mod audit {
    use tollgate_domain::audit::{AuditReport, compare};
    use tollgate_domain::ledger::CourseGrant;

    fn g(u: &str, w: &str) -> CourseGrant {
        CourseGrant { user_id: u.into(), workflow_id: w.into() }
    }

    #[test]
    fn drift_is_learners_without_grants_and_grants_without_enrolment() {
        let users = [("1", "learner"), ("2", "learner"), ("9", "instructor"), ("4", "learner")]
            .map(|(u, r)| (u.to_string(), r.to_string()));
        // 1 entitled twice; 3 removed by hand; 4 added by hand; 9 teaches.
        let grants = [g("1", "purchase-A"), g("1", "purchase-B"), g("2", "purchase-C"), g("3", "purchase-D")];
        let d = compare("101", &users, &grants);
        assert_eq!((d.enrolled, d.entitled), (3, 3));
        assert_eq!(d.not_entitled, ["4"]);
        assert_eq!(d.not_enrolled, [g("3", "purchase-D")]);
        // An instructor who also bought the course is enrolled, not drift.
        let d = compare("101", &users, &[g("9", "purchase-E")]);
        assert!(d.not_enrolled.is_empty());

        let mut r = AuditReport::default();
        r.add(compare("101", &users, &grants));
        r.add(compare("102", &[], &[]));
        assert_eq!((r.courses, r.not_entitled, r.not_enrolled, r.drift.len()), (2, 1, 1, 1));
        assert!(
            r.summary().contains("1 enrolled but not entitled, 1 entitled but not enrolled"),
            "{}",
            r.summary()
        );
        assert!(AuditReport::default().summary().starts_with("ok"));
    }
}
