//! The rules' oracle for the stress suites (chaos, the scale-out topology): a seeded
//! stream of purchases and subscriptions, its deliveries (duplicated, shuffled), and the
//! final state the pure rules imply, which a stack must converge to: every student
//! enrolled in exactly the courses the rules grant and one revenue row per key, so
//! nothing lost and nothing applied twice.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::Value;
use tollgate_domain::access::{AccessPolicy, Facts, KeyKind, evaluate};
use tollgate_domain::fixtures::{Sale, cancellation};
use tollgate_domain::hotmart::{self, HotmartEvent};
use tollgate_domain::revenue::{first_reversals, row_for};

use crate::rng::Rng;
use crate::{Stack, now_ms, unique};

const DAY: i64 = 86_400_000;

/// Two products: one-off `lifetime` purchases and `subscription`s with a day of grace.
pub struct Catalog {
    pub lifetime: i64,
    pub subscription: i64,
}

impl Catalog {
    /// Links both products in the stack (course 101; courses 102 and 103).
    pub async fn link(&self, stack: &Stack) {
        stack.link(self.lifetime, &["101"], &["--policy", "lifetime"]).await;
        stack.link(self.subscription, &["102", "103"], &["--policy", "subscription", "--grace", "1d"]).await;
    }

    fn courses(&self, product: i64) -> &'static [&'static str] {
        if product == self.lifetime { &["101"] } else { &["102", "103"] }
    }

    fn policy(&self, product: i64) -> AccessPolicy {
        if product == self.lifetime {
            AccessPolicy::Lifetime
        } else {
            AccessPolicy::Subscription { grace_secs: 86_400 }
        }
    }

    /// The stream: `one_offs` one-off purchases (some refunded or charged back) and `subs`
    /// subscriptions (renewals, cancellations, refunds); deadlines are days away, so the
    /// final state does not depend on when the test runs.
    pub fn stream(&self, one_offs: usize, subs: usize) -> Vec<Value> {
        let (lifetime, subscription) = (self.lifetime, self.subscription);
        let t = now_ms();
        let mut bodies: Vec<Value> = Vec::new();
        for i in 0..one_offs as i64 {
            let sale = Sale::one_off(lifetime, &unique("HP"), &format!("{}@example.com", unique("life")));
            bodies.push(sale.event("PURCHASE_APPROVED", &unique("e"), t + i));
            if i % 3 == 0 {
                bodies.push(sale.event("PURCHASE_REFUNDED", &unique("e"), t + 1000 + i));
            } else if i % 5 == 0 {
                bodies.push(sale.event("PURCHASE_CHARGEBACK", &unique("e"), t + 1000 + i));
            }
        }
        for i in 0..subs as i64 {
            let code = unique("SUB");
            let email = format!("{}@example.com", unique("sub"));
            let first = Sale::subscription(subscription, &code, &unique("HP"), &email, 1, t + 30 * DAY);
            bodies.push(first.event("PURCHASE_APPROVED", &unique("e"), t - 20 * DAY + i));
            let second = Sale::subscription(subscription, &code, &unique("HP"), &email, 2, t + 60 * DAY);
            if i % 2 == 0 {
                bodies.push(second.event("PURCHASE_APPROVED", &unique("e"), t - DAY + i));
            }
            if i % 4 == 0 {
                bodies.push(cancellation(
                    &unique("e"),
                    t - 10 * DAY + i,
                    subscription,
                    &code,
                    &email,
                    t + 30 * DAY,
                ));
            }
            if i % 6 == 0 {
                let latest = if i % 2 == 0 { &second } else { &first };
                bodies.push(latest.event("PURCHASE_REFUNDED", &unique("e"), t + i));
            }
        }
        bodies
    }

    /// What the rules imply for `bodies`, evaluated now.
    pub fn oracle(&self, bodies: &[Value]) -> Oracle {
        let events: Vec<HotmartEvent> =
            bodies.iter().map(|b| hotmart::parse(b.to_string().as_bytes()).unwrap().event).collect();
        let mut by_key: BTreeMap<String, Vec<&HotmartEvent>> = BTreeMap::new();
        for e in &events {
            by_key.entry(e.workflow_key().unwrap().workflow_id()).or_default().push(e);
        }
        let now = now_ms();
        let mut enrollments: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (id, evs) in &by_key {
            let mut facts = Facts::default();
            evs.iter().for_each(|e| {
                facts.apply(e);
            });
            let product = facts.product_id.unwrap().0;
            let kind =
                if id.starts_with("subscription-") { KeyKind::Subscription } else { KeyKind::Purchase };
            let v = evaluate(&facts, &self.policy(product), kind, now);
            let email = facts.buyer.as_ref().unwrap().value.email.to_string();
            let set = enrollments.entry(email).or_default();
            if v.entitled {
                set.extend(self.courses(product).iter().map(|c| c.to_string()));
            }
        }
        let mut revenue: BTreeMap<String, i64> = BTreeMap::new();
        // As the warehouse books them: one reversal per transaction, then one row per key.
        for r in first_reversals(events.iter().filter_map(row_for)) {
            revenue.entry(r.key).or_insert(r.gross.minor);
        }
        Oracle { enrollments, revenue }
    }
}

/// Every event once, every `every`-th twice, all shuffled (seeded, so a failure replays).
pub fn deliveries(bodies: &[Value], every: usize, seed: u64) -> Vec<Value> {
    let mut rng = Rng::new(seed);
    let mut out: Vec<Value> = bodies.to_vec();
    out.extend(bodies.iter().step_by(every).cloned());
    for i in (1..out.len()).rev() {
        out.swap(i, rng.below(i as u64 + 1) as usize);
    }
    out
}

/// The final state the rules imply.
pub struct Oracle {
    /// Per student email, the courses they must end enrolled in (possibly none).
    pub enrollments: BTreeMap<String, BTreeSet<String>>,
    /// Per revenue key, its gross in minor units.
    pub revenue: BTreeMap<String, i64>,
}

impl Oracle {
    /// Waits until the stack's TalentLMS enrollments and revenue rows equal the oracle
    /// (a row written twice fails at once); panics with the difference after `within`.
    pub async fn converge(&self, stack: &Stack, within: Duration) {
        let deadline = Instant::now() + within;
        let actual_enrollments = || {
            let mut m: BTreeMap<String, BTreeSet<String>> =
                self.enrollments.keys().map(|e| (e.clone(), BTreeSet::new())).collect();
            for (email, course) in stack.sim.enrollments() {
                m.entry(email).or_default().insert(course);
            }
            m
        };
        loop {
            let rows = stack.revenue().await;
            let revenue: BTreeMap<String, i64> = rows
                .iter()
                .map(|r| (r["key"].as_str().unwrap().to_string(), r["gross"]["minor"].as_i64().unwrap()))
                .collect();
            let enrolled = actual_enrollments();
            if enrolled == self.enrollments && revenue == self.revenue {
                assert_eq!(rows.len(), self.revenue.len(), "a revenue row was written twice");
                return;
            }
            if Instant::now() > deadline {
                let differ = self.enrollments.iter().filter(|(e, c)| enrolled.get(*e) != Some(c));
                let wrong: Vec<_> = differ.clone().take(5).collect();
                panic!(
                    "did not converge: {} students differ (e.g. {wrong:?}), revenue {} rows vs {} expected ({})\n{}",
                    differ.count(),
                    revenue.len(),
                    self.revenue.len(),
                    revenue_diff(&self.revenue, &revenue),
                    stack.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// The revenue keys missing, unexpected or with another gross (up to five of each), so a
/// failed run names the purchase to look up in its workflow's history.
fn revenue_diff(want: &BTreeMap<String, i64>, got: &BTreeMap<String, i64>) -> String {
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).take(5).collect();
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).take(5).collect();
    let other: Vec<_> = want
        .iter()
        .filter_map(|(k, w)| got.get(k).filter(|g| *g != w).map(|g| (k, *w, *g)))
        .take(5)
        .collect();
    format!("missing {missing:?}, unexpected {extra:?}, other gross (key, want, got) {other:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revenue_difference_names_the_keys() {
        let want = BTreeMap::from([("a".to_string(), 100), ("b".to_string(), 200), ("c".to_string(), 300)]);
        let got = BTreeMap::from([("a".to_string(), 100), ("c".to_string(), 301), ("d".to_string(), 5)]);
        assert_eq!(
            revenue_diff(&want, &got),
            r#"missing ["b"], unexpected ["d"], other gross (key, want, got) [("c", 300, 301)]"#
        );
    }
}
