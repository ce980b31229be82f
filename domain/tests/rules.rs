//! The access rules as a table: event stream + policy + time -> verdict. Every stream is
//! built in Hotmart's wire format and goes through the real parser first.

use serde_json::Value;
use tollgate_domain::access::{
    AccessPolicy, AccessState, CourseLink, FALLBACK_PERIOD_MS, Facts, KeyKind, evaluate, verdict,
};
use tollgate_domain::fixtures::{Sale, cancellation, charge_date_update, switch_plan};
use tollgate_domain::hotmart::ProductId;
use tollgate_domain::hotmart::{self, HotmartEvent, Millis};

const T0: Millis = 1_760_000_000_000;
const DAY: Millis = 86_400_000;
const GRACE: u64 = 3 * 86_400;

fn ev(body: Value) -> HotmartEvent {
    hotmart::parse(body.to_string().as_bytes()).expect("fixture parses").event
}

fn facts(events: &[HotmartEvent]) -> Facts {
    let mut f = Facts::default();
    for e in events {
        f.apply(e);
    }
    f
}

fn sub(rec: u32, txn: &str, next: Millis) -> Sale {
    Sale::subscription(7, "SUB1", txn, "ana@example.com", rec, next)
}

struct Case {
    name: &'static str,
    events: Vec<HotmartEvent>,
    /// The product's policy; `None`: the product has no course link.
    policy: Option<AccessPolicy>,
    kind: KeyKind,
    now: Millis,
    state: AccessState,
    entitled: bool,
    until: Option<Millis>,
}

fn cases() -> Vec<Case> {
    let one = Sale::one_off(5, "HP1", "bia@example.com");
    let lifetime = AccessPolicy::Lifetime;
    let term = AccessPolicy::FixedTerm { term_secs: 30 * 86_400 };
    let subp = AccessPolicy::Subscription { grace_secs: GRACE };
    let p = KeyKind::Purchase;
    let s = KeyKind::Subscription;
    let c = |name, events, policy: &AccessPolicy, kind, now, state, entitled, until| Case {
        name,
        events,
        policy: Some(policy.clone()),
        kind,
        now,
        state,
        entitled,
        until,
    };
    let unlinked = |name, events, kind, state| Case {
        name,
        events,
        policy: None,
        kind,
        now: T0 + DAY,
        state,
        entitled: false,
        until: None,
    };
    let mut no_next_charge = sub(1, "HP1", 0);
    no_next_charge.date_next_charge = None;
    vec![
        unlinked("no link, no events", vec![], p, AccessState::AwaitingPayment),
        unlinked(
            "no link, approved purchase waits for one",
            vec![ev(one.event("PURCHASE_APPROVED", "a1", T0))],
            p,
            AccessState::AwaitingLink,
        ),
        // A reversal needs no policy (issue 11, item 3): it revokes without a link.
        unlinked(
            "no link, a refund alone revokes",
            vec![ev(one.event("PURCHASE_REFUNDED", "r1", T0))],
            p,
            AccessState::Revoked,
        ),
        unlinked(
            "no link (deleted), a chargeback after the approval revokes",
            vec![
                ev(one.event("PURCHASE_APPROVED", "a1", T0)),
                ev(one.event("PURCHASE_CHARGEBACK", "c1", T0 + DAY)),
            ],
            p,
            AccessState::Revoked,
        ),
        unlinked(
            "no link, a later charge that was not reversed waits for one",
            vec![
                ev(sub(1, "HP1", T0 + 30 * DAY).event("PURCHASE_APPROVED", "a1", T0)),
                ev(sub(1, "HP1", T0 + 30 * DAY).event("PURCHASE_REFUNDED", "r1", T0 + DAY)),
                ev(sub(2, "HP2", T0 + 60 * DAY).event("PURCHASE_APPROVED", "a2", T0 + 30 * DAY)),
            ],
            s,
            AccessState::AwaitingLink,
        ),
        c(
            "subscription charge without a next charge date covers the fallback period",
            vec![ev(no_next_charge.event("PURCHASE_APPROVED", "a1", T0))],
            &subp,
            s,
            T0 + DAY,
            AccessState::Active,
            true,
            Some(T0 + FALLBACK_PERIOD_MS + GRACE as i64 * 1000),
        ),
        c("nothing yet", vec![], &lifetime, p, T0, AccessState::AwaitingPayment, false, None),
        c(
            "boleto printed only",
            vec![ev(one.event("PURCHASE_BILLET_PRINTED", "e0", T0))],
            &lifetime,
            p,
            T0,
            AccessState::AwaitingPayment,
            false,
            None,
        ),
        c(
            "lifetime approved",
            vec![ev(one.event("PURCHASE_APPROVED", "e1", T0))],
            &lifetime,
            p,
            T0 + 400 * DAY,
            AccessState::Active,
            true,
            None,
        ),
        c(
            "lifetime refunded",
            vec![
                ev(one.event("PURCHASE_APPROVED", "e1", T0)),
                ev(one.event("PURCHASE_REFUNDED", "e2", T0 + DAY)),
            ],
            &lifetime,
            p,
            T0 + DAY,
            AccessState::Revoked,
            false,
            None,
        ),
        c(
            "lifetime chargeback",
            vec![
                ev(one.event("PURCHASE_APPROVED", "e1", T0)),
                ev(one.event("PURCHASE_CHARGEBACK", "e2", T0 + DAY)),
            ],
            &lifetime,
            p,
            T0 + DAY,
            AccessState::Revoked,
            false,
            None,
        ),
        c(
            "refund before approval",
            vec![ev(one.event("PURCHASE_REFUNDED", "e2", T0 + DAY))],
            &lifetime,
            p,
            T0 + DAY,
            AccessState::Revoked,
            false,
            None,
        ),
        c(
            "protest changes nothing",
            vec![
                ev(one.event("PURCHASE_APPROVED", "e1", T0)),
                ev(one.event("PURCHASE_PROTEST", "e2", T0 + DAY)),
            ],
            &lifetime,
            p,
            T0 + DAY,
            AccessState::Active,
            true,
            None,
        ),
        c(
            "canceled after approval",
            vec![
                ev(one.event("PURCHASE_APPROVED", "e1", T0)),
                ev(one.event("PURCHASE_CANCELED", "e2", T0 + DAY)),
            ],
            &lifetime,
            p,
            T0 + DAY,
            AccessState::Revoked,
            false,
            None,
        ),
        c(
            "fixed term running",
            vec![ev(one.event("PURCHASE_APPROVED", "e1", T0))],
            &term,
            p,
            T0 + 29 * DAY,
            AccessState::Active,
            true,
            Some(T0 + 30 * DAY),
        ),
        c(
            "fixed term over",
            vec![ev(one.event("PURCHASE_APPROVED", "e1", T0))],
            &term,
            p,
            T0 + 30 * DAY,
            AccessState::Expired,
            false,
            None,
        ),
        c(
            "subscription paid",
            vec![ev(sub(1, "HP1", T0 + 30 * DAY).event("PURCHASE_APPROVED", "a1", T0))],
            &subp,
            s,
            T0 + DAY,
            AccessState::Active,
            true,
            Some(T0 + 33 * DAY),
        ),
        c(
            "subscription in grace",
            vec![ev(sub(1, "HP1", T0 + 30 * DAY).event("PURCHASE_APPROVED", "a1", T0))],
            &subp,
            s,
            T0 + 31 * DAY,
            AccessState::Grace,
            true,
            Some(T0 + 33 * DAY),
        ),
        c(
            "subscription lapsed",
            vec![ev(sub(1, "HP1", T0 + 30 * DAY).event("PURCHASE_APPROVED", "a1", T0))],
            &subp,
            s,
            T0 + 33 * DAY,
            AccessState::Expired,
            false,
            None,
        ),
        c(
            "renewal extends",
            vec![
                ev(sub(1, "HP1", T0 + 30 * DAY).event("PURCHASE_APPROVED", "a1", T0)),
                ev(sub(2, "HP2", T0 + 60 * DAY).event("PURCHASE_APPROVED", "a2", T0 + 30 * DAY)),
            ],
            &subp,
            s,
            T0 + 40 * DAY,
            AccessState::Active,
            true,
            Some(T0 + 63 * DAY),
        ),
        c(
            "delay starts grace early",
            vec![
                ev(sub(1, "HP1", T0 + 30 * DAY).event("PURCHASE_APPROVED", "a1", T0)),
                ev(sub(2, "HP2", T0 + 30 * DAY).event("PURCHASE_DELAYED", "d2", T0 + 20 * DAY)),
            ],
            &subp,
            s,
            T0 + 21 * DAY,
            AccessState::Grace,
            true,
            Some(T0 + 23 * DAY),
        ),
        c(
            "late payment after lapse re-enrolls",
            vec![
                ev(sub(1, "HP1", T0 + 30 * DAY).event("PURCHASE_APPROVED", "a1", T0)),
                ev(sub(2, "HP2", T0 + 30 * DAY).event("PURCHASE_DELAYED", "d2", T0 + 30 * DAY)),
                ev(sub(2, "HP2", T0 + 65 * DAY).event("PURCHASE_APPROVED", "a2", T0 + 35 * DAY)),
            ],
            &subp,
            s,
            T0 + 36 * DAY,
            AccessState::Active,
            true,
            Some(T0 + 68 * DAY),
        ),
        c(
            "cancellation keeps the paid period, no grace",
            vec![
                ev(sub(1, "HP1", T0 + 30 * DAY).event("PURCHASE_APPROVED", "a1", T0)),
                ev(cancellation("c1", T0 + 5 * DAY, 7, "SUB1", "ana@example.com", T0 + 30 * DAY)),
            ],
            &subp,
            s,
            T0 + 29 * DAY,
            AccessState::Cancelled,
            true,
            Some(T0 + 30 * DAY),
        ),
        c(
            "cancellation ends at paid period",
            vec![
                ev(sub(1, "HP1", T0 + 30 * DAY).event("PURCHASE_APPROVED", "a1", T0)),
                ev(cancellation("c1", T0 + 5 * DAY, 7, "SUB1", "ana@example.com", T0 + 30 * DAY)),
            ],
            &subp,
            s,
            T0 + 30 * DAY,
            AccessState::Expired,
            false,
            None,
        ),
        c(
            // Grace would run to day 23 (delay on day 20), the cancellation states day 30:
            // the earlier end wins.
            "cancellation after a delay ends with the grace, not the later paid date",
            vec![
                ev(sub(1, "HP1", T0 + 30 * DAY).event("PURCHASE_APPROVED", "a1", T0)),
                ev(sub(2, "HP2", T0 + 30 * DAY).event("PURCHASE_DELAYED", "d2", T0 + 20 * DAY)),
                ev(cancellation("c1", T0 + 21 * DAY, 7, "SUB1", "ana@example.com", T0 + 30 * DAY)),
            ],
            &subp,
            s,
            T0 + 22 * DAY,
            AccessState::Cancelled,
            true,
            Some(T0 + 23 * DAY),
        ),
        c(
            "cancellation after a delay: access ends when the grace does",
            vec![
                ev(sub(1, "HP1", T0 + 30 * DAY).event("PURCHASE_APPROVED", "a1", T0)),
                ev(sub(2, "HP2", T0 + 30 * DAY).event("PURCHASE_DELAYED", "d2", T0 + 20 * DAY)),
                ev(cancellation("c1", T0 + 21 * DAY, 7, "SUB1", "ana@example.com", T0 + 30 * DAY)),
            ],
            &subp,
            s,
            T0 + 24 * DAY,
            AccessState::Expired,
            false,
            None,
        ),
        c(
            "cancellation before its stated date ends, even after a delay whose grace runs later",
            vec![
                ev(sub(1, "HP1", T0 + 30 * DAY).event("PURCHASE_APPROVED", "a1", T0)),
                ev(sub(2, "HP2", T0 + 30 * DAY).event("PURCHASE_DELAYED", "d2", T0 + 29 * DAY)),
                ev(cancellation("c1", T0 + 29 * DAY + 1, 7, "SUB1", "ana@example.com", T0 + 30 * DAY)),
            ],
            &subp,
            s,
            T0 + 29 * DAY + 2,
            AccessState::Cancelled,
            true,
            Some(T0 + 30 * DAY),
        ),
        c(
            "charge date moved",
            vec![
                ev(sub(1, "HP1", T0 + 30 * DAY).event("PURCHASE_APPROVED", "a1", T0)),
                ev(charge_date_update("u1", T0 + DAY, 7, "SUB1", "ana@example.com", T0 + 45 * DAY)),
            ],
            &subp,
            s,
            T0 + 40 * DAY,
            AccessState::Active,
            true,
            Some(T0 + 48 * DAY),
        ),
        c(
            "switch plan carries its next charge",
            vec![
                ev(sub(1, "HP1", T0 + 30 * DAY).event("PURCHASE_APPROVED", "a1", T0)),
                ev(switch_plan("sp", T0 + DAY, 7, "SUB1", "ana@example.com", T0 + 365 * DAY, "Yearly")),
            ],
            &subp,
            s,
            T0 + 100 * DAY,
            AccessState::Active,
            true,
            Some(T0 + 368 * DAY),
        ),
        c(
            "refund of the current charge revokes a subscription",
            vec![
                ev(sub(1, "HP1", T0 + 30 * DAY).event("PURCHASE_APPROVED", "a1", T0)),
                ev(sub(1, "HP1", T0 + 30 * DAY).event("PURCHASE_REFUNDED", "r1", T0 + DAY)),
            ],
            &subp,
            s,
            T0 + DAY,
            AccessState::Revoked,
            false,
            None,
        ),
        c(
            "trial at price 0 still grants",
            vec![ev(Sale { price: Some("0".into()), producer_net: None, ..sub(1, "HP1", T0 + 7 * DAY) }
                .event("PURCHASE_APPROVED", "a1", T0))],
            &subp,
            s,
            T0 + DAY,
            AccessState::Active,
            true,
            Some(T0 + 10 * DAY),
        ),
    ]
}

#[test]
fn rules_table() {
    let mut failures = Vec::new();
    for case in cases() {
        let f = facts(&case.events);
        let link = case.policy.clone().map(|policy| CourseLink {
            product_id: f.product_id.unwrap_or(ProductId(7)),
            courses: vec!["101".into()],
            policy,
        });
        let v = verdict(&f, link.as_ref(), case.kind, case.now);
        if (v.state, v.entitled, v.until) != (case.state, case.entitled, case.until) {
            failures.push(format!(
                "{}: got {:?}/{}/{:?} ({}), want {:?}/{}/{:?}",
                case.name, v.state, v.entitled, v.until, v.reason, case.state, case.entitled, case.until
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_permutation_and_duplication_gives_the_same_facts() {
    for case in cases() {
        let ordered = facts(&case.events);
        let n = case.events.len();
        let mut idx: Vec<usize> = (0..n).collect();
        // All permutations (streams here are at most 3 events), each with every event twice.
        permute(&mut idx, 0, &mut |perm| {
            let shuffled: Vec<HotmartEvent> =
                perm.iter().chain(perm.iter().rev()).map(|&i| case.events[i].clone()).collect();
            assert_eq!(facts(&shuffled), ordered, "{}: order {perm:?}", case.name);
        });
    }
}

fn permute(v: &mut Vec<usize>, k: usize, f: &mut impl FnMut(&[usize])) {
    if k == v.len() {
        f(v);
        return;
    }
    for i in k..v.len() {
        v.swap(k, i);
        permute(v, k + 1, f);
        v.swap(k, i);
    }
}

#[test]
fn lifetime_is_settled_after_complete() {
    let one = Sale::one_off(5, "HP1", "bia@example.com");
    let f = facts(&[
        ev(one.event("PURCHASE_COMPLETE", "c", T0 + 8 * DAY)),
        ev(one.event("PURCHASE_APPROVED", "a", T0)),
    ]);
    let v = evaluate(&f, &AccessPolicy::Lifetime, KeyKind::Purchase, T0 + 9 * DAY);
    assert!(v.entitled && v.settled, "{v:?}");
}

#[test]
fn resend_is_recognised() {
    let one = Sale::one_off(5, "HP1", "bia@example.com");
    let e = ev(one.event("PURCHASE_APPROVED", "same-id", T0));
    let mut f = Facts::default();
    assert!(f.apply(&e));
    assert!(!f.apply(&e));
}

#[test]
fn policy_changes_that_can_end_access_sooner() {
    let (life, term30, term365) = (
        AccessPolicy::Lifetime,
        AccessPolicy::FixedTerm { term_secs: 30 * 86_400 },
        AccessPolicy::FixedTerm { term_secs: 365 * 86_400 },
    );
    let (sub3, sub1) =
        (AccessPolicy::Subscription { grace_secs: GRACE }, AccessPolicy::Subscription { grace_secs: 86_400 });
    for (old, new, shorter) in [
        (&life, &term365, true),
        (&life, &sub3, true),
        (&life, &life, false),
        (&term365, &term30, true),
        (&term30, &term365, false),
        (&term30, &life, false),
        (&sub3, &sub1, true),
        (&sub1, &sub3, false),
        (&sub3, &term365, true),
        (&term365, &sub3, true),
        (&sub3, &life, false),
    ] {
        assert_eq!(old.shortened_by(new), shorter, "{old} -> {new}");
    }
}
