//! The load generator: realistic Hotmart streams, seeded.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::Value;
use tollgate_domain::fixtures::{Sale, cancellation};
use tollgate_domain::metrics::DAY_MS;
use tollgate_tests::now_ms;
use tollgate_tests::rng::Rng;

// The products each stack links: lifetime, a 5-second fixed term, a subscription plan.
pub const LIFETIME: i64 = 4_000_001;
pub const TERM: i64 = 4_000_002;
pub const PLAN: i64 = 4_000_003;

pub struct Delivery {
    pub body: Arc<str>,
}

#[derive(Default)]
pub struct Mix {
    pub kinds: BTreeMap<&'static str, usize>,
    pub workflows: usize,
    pub duplicates: usize,
    pub out_of_order: usize,
}

impl Mix {
    pub fn line(&self, n: usize) -> String {
        let kinds: Vec<String> = self.kinds.iter().map(|(k, v)| format!("{k} {v}")).collect();
        format!(
            "{n} deliveries to {} workflows: {}; {} duplicates, {} delivered before an earlier event of their stream",
            self.workflows,
            kinds.join(", "),
            self.duplicates,
            self.out_of_order
        )
    }
}

/// About `n` deliveries from interleaved customer streams, in Hotmart's shapes: 40% one-off
/// purchases (5% refunded), 60% subscriptions whose first charge may be followed by a
/// renewal, a delayed charge, a cancellation or a refund. Every subscription's next charge
/// is 30+ days away, so no deadline fires during the run. `dup` is the share of deliveries
/// sent twice (same envelope id, later); `reorder` the share moved ahead of its place.
pub fn stream(n: usize, dup: f64, reorder: f64, rng: &mut Rng, tag: &str) -> (Vec<Delivery>, Mix) {
    let now = now_ms();
    let mut streams: Vec<Vec<(&'static str, Value)>> = Vec::new();
    let mut count = 0;
    let mut mix = Mix::default();
    let mut c = 0;
    while count < n {
        c += 1;
        let email = format!("s{c}-{tag}@example.com");
        let mut evs: Vec<(&'static str, Value)> = Vec::new();
        let t = now - 60_000;
        let id = |k: usize| format!("{tag}-{c}-{k}");
        if rng.f() < 0.4 {
            let sale = Sale::one_off(LIFETIME, &format!("HP{tag}{c}"), &email);
            evs.push(("purchase", sale.event("PURCHASE_APPROVED", &id(0), t)));
            if rng.f() < 0.05 {
                evs.push(("refund", sale.event("PURCHASE_REFUNDED", &id(1), t + 1000)));
            }
        } else {
            let sub = format!("SUB{tag}{c}");
            let first = Sale::subscription(PLAN, &sub, &format!("HP{tag}{c}a"), &email, 1, now + 30 * DAY_MS);
            evs.push(("subscription", first.event("PURCHASE_APPROVED", &id(0), t)));
            let r = rng.f();
            if r < 0.35 {
                let renew =
                    Sale::subscription(PLAN, &sub, &format!("HP{tag}{c}b"), &email, 2, now + 60 * DAY_MS);
                evs.push(("renewal", renew.event("PURCHASE_APPROVED", &id(1), t + 1000)));
                if rng.f() < 0.15 {
                    evs.push((
                        "cancellation",
                        cancellation(&id(2), t + 2000, PLAN, &sub, &email, now + 60 * DAY_MS),
                    ));
                }
            } else if r < 0.45 {
                let late =
                    Sale::subscription(PLAN, &sub, &format!("HP{tag}{c}b"), &email, 2, now + 30 * DAY_MS);
                evs.push(("delay", late.event("PURCHASE_DELAYED", &id(1), t + 1000)));
            } else if r < 0.55 {
                evs.push((
                    "cancellation",
                    cancellation(&id(1), t + 1000, PLAN, &sub, &email, now + 30 * DAY_MS),
                ));
            } else if r < 0.60 {
                evs.push(("refund", first.event("PURCHASE_REFUNDED", &id(1), t + 1000)));
            }
        }
        count += evs.len();
        streams.push(evs);
    }
    mix.workflows = streams.len();
    // Interleave: each stream starts at a random slot and its events follow `gap` slots
    // apart; a reordered event is moved up to two gaps earlier; a duplicate is sent again
    // up to four gaps later.
    let gap = 40.0;
    let span = count as f64;
    let mut keyed: Vec<(f64, usize, usize, bool)> = Vec::new();
    for (s, evs) in streams.iter().enumerate() {
        let start = rng.f() * span;
        for j in 0..evs.len() {
            let mut key = start + j as f64 * gap;
            if rng.f() < reorder {
                key -= rng.f() * 2.0 * gap;
            }
            keyed.push((key, s, j, false));
            if rng.f() < dup {
                keyed.push((key + rng.f() * 4.0 * gap, s, j, true));
                mix.duplicates += 1;
            }
        }
    }
    keyed.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    let mut seen_max: HashMap<usize, usize> = HashMap::new();
    let mut bodies: HashMap<(usize, usize), Arc<str>> = HashMap::new();
    let mut out = Vec::with_capacity(keyed.len());
    for (_, s, j, is_dup) in keyed {
        let (kind, body) = &streams[s][j];
        if !is_dup {
            *mix.kinds.entry(kind).or_default() += 1;
            match seen_max.get(&s) {
                Some(&m) if m > j => mix.out_of_order += 1,
                _ => {}
            }
            let m = seen_max.entry(s).or_insert(j);
            *m = (*m).max(j);
        }
        let body = bodies.entry((s, j)).or_insert_with(|| body.to_string().into()).clone();
        out.push(Delivery { body });
    }
    (out, mix)
}
