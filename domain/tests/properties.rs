//! Property: any duplication and reordering of an event stream gives the same facts, the
//! same access verdict at any time, and the same revenue rows as the ordered stream.

use proptest::prelude::*;
use std::collections::BTreeMap;
use tollgate_domain::access::{AccessPolicy, Facts, KeyKind, evaluate};
use tollgate_domain::fixtures::{Sale, cancellation, charge_date_update};
use tollgate_domain::hotmart::{self, HotmartEvent};
use tollgate_domain::revenue::{RevenueRow, first_reversals, row_for};

const T0: i64 = 1_760_000_000_000;
const DAY: i64 = 86_400_000;

/// One subscription's plausible history: charges, delays, reversals, a cancellation and
/// a charge-date move, at generated times.
fn stream() -> impl Strategy<Value = Vec<HotmartEvent>> {
    let step = (0u8..7, 0i64..90, 1u32..6);
    prop::collection::vec(step, 1..12).prop_map(|steps| {
        steps
            .into_iter()
            .enumerate()
            .map(|(i, (kind, day, rec))| {
                let at = T0 + day * DAY + i as i64;
                let sale =
                    Sale::subscription(7, "SUB", &format!("HP{rec}"), "ana@example.com", rec, at + 30 * DAY);
                let id = format!("e{i}");
                let body = match kind {
                    0 | 1 => sale.event("PURCHASE_APPROVED", &id, at),
                    2 => sale.event("PURCHASE_DELAYED", &id, at),
                    3 => sale.event("PURCHASE_REFUNDED", &id, at),
                    4 => sale.event("PURCHASE_CHARGEBACK", &id, at),
                    5 => cancellation(&id, at, 7, "SUB", "ana@example.com", at + 10 * DAY),
                    _ => charge_date_update(&id, at, 7, "SUB", "ana@example.com", at + 20 * DAY),
                };
                hotmart::parse(body.to_string().as_bytes()).unwrap().event
            })
            .collect()
    })
}

fn fold(events: &[HotmartEvent]) -> (Facts, BTreeMap<String, RevenueRow>) {
    let mut facts = Facts::default();
    let mut rows = Vec::new();
    for e in events {
        if facts.apply(e) {
            rows.extend(row_for(e));
        }
    }
    // As the warehouse books them: one reversal per transaction (the earliest), else the
    // first row per key, like `INSERT .. ON CONFLICT DO NOTHING`.
    let mut revenue = BTreeMap::new();
    for r in first_reversals(rows) {
        revenue.entry(r.key.clone()).or_insert(r);
    }
    (facts, revenue)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn duplication_and_reordering_change_nothing(
        events in stream(),
        order in prop::collection::vec(any::<prop::sample::Index>(), 1..30),
    ) {
        let (facts, revenue) = fold(&events);
        // A delivery sequence: every event at least once, plus arbitrary repeats, shuffled.
        let mut delivery: Vec<HotmartEvent> = events.clone();
        delivery.extend(order.iter().map(|i| events[i.index(events.len())].clone()));
        let n = delivery.len();
        for (k, i) in order.iter().enumerate() {
            delivery.swap(k % n, i.index(n));
        }
        let (facts2, revenue2) = fold(&delivery);
        prop_assert_eq!(&facts, &facts2);
        // Same revenue keys and amounts (the row's event id may be either duplicate's).
        let amounts = |r: &BTreeMap<String, RevenueRow>| r.iter().map(|(k, v)| (k.clone(), v.gross.clone())).collect::<Vec<_>>();
        prop_assert_eq!(amounts(&revenue), amounts(&revenue2));
        // A charge and its reversals net to zero at most: never paid back twice.
        let mut per_txn: BTreeMap<&str, i64> = BTreeMap::new();
        for r in revenue.values() {
            *per_txn.entry(r.transaction.as_str()).or_default() += r.gross.minor;
        }
        for (txn, net) in &per_txn {
            let charged = revenue.contains_key(&format!("{txn}:charge"));
            prop_assert!(net >= &(if charged { 0 } else { -9_398 }), "{} nets {}", txn, net);
        }
        let policy = AccessPolicy::Subscription { grace_secs: 3 * 86_400 };
        for day in [0, 15, 45, 95, 130] {
            let now = T0 + day * DAY;
            prop_assert_eq!(
                evaluate(&facts, &policy, KeyKind::Subscription, now),
                evaluate(&facts2, &policy, KeyKind::Subscription, now)
            );
        }
    }

    /// The ledger's merge: facts folded in two parts (an ended run's and a new run's, with
    /// overlap) merge into the facts of the whole stream.
    #[test]
    fn merging_split_folds_equals_folding_the_whole(
        events in stream(),
        cut in any::<prop::sample::Index>(),
        overlap in 0usize..3,
    ) {
        let (whole, _) = fold(&events);
        let at = cut.index(events.len() + 1);
        let (mut first, _) = fold(&events[..at]);
        let (second, _) = fold(&events[at.saturating_sub(overlap)..]);
        let mut reverse = second.clone();
        first.merge(&second);
        prop_assert_eq!(&first, &whole);
        reverse.merge(&fold(&events[..at]).0);
        prop_assert_eq!(&reverse, &whole);
    }
}
