//! Deterministic synthetic revenue rows: a school's sales over a span of days, for the
//! dashboard's browser test and the warehouse benchmark.

use tollgate_domain::metrics::{DAY_MS, Day};
use tollgate_domain::money::Money;
use tollgate_domain::revenue::{RevenueKind, RevenueRow};

use crate::rng::Rng;

/// One-off courses (product, price in cents) and subscription plans (product, price,
/// months per charge).
const COURSES: [(i64, i64); 3] = [(1001, 19_700), (1002, 49_700), (1003, 9_700)];
const PLANS: [(i64, i64, i64); 2] = [(2001, 4_990, 1), (2002, 49_900, 12)];

/// Sales for the days `last - days + 1 ..= last`: about `per_day` one-off sales and
/// `per_day / 4` new subscriptions a day, with renewals, refunds, chargebacks and churn.
pub fn revenue_rows(seed: u64, last: Day, days: i64, per_day: u64, currency: &str) -> Vec<RevenueRow> {
    let mut rng = Rng::new(seed);
    let mut rows = Vec::new();
    let first = last.index() - days + 1;
    let end = last.end_ms();
    let money = |minor: i64| Money { minor, currency: currency.to_string() };
    let base = |txn: String, kind: RevenueKind, product: i64, minor: i64, at: i64| RevenueRow {
        key: format!("{txn}:{}", kind.as_str()),
        kind,
        event_id: format!("syn-{txn}-{}", kind.as_str()),
        transaction: txn,
        product_id: product,
        buyer_email: "buyer@example.com".into(),
        subscriber_code: None,
        recurrence: None,
        gross: money(minor),
        producer_net: Some(money(minor * 9 / 10)),
        occurred_at: at,
        paid_until: None,
    };
    for d in first..=last.index() {
        let day_start = d * DAY_MS;
        // Weekends sell less; a launch spike every 20 days.
        let weekday = (d + 3).rem_euclid(7);
        let mut n = per_day / 2 + rng.below(per_day.max(1));
        if weekday >= 5 {
            n = n * 2 / 3;
        }
        if d % 20 == 0 {
            n *= 3;
        }
        for i in 0..n {
            let (product, price) = COURSES[rng.below(COURSES.len() as u64) as usize];
            let at = day_start + rng.below(DAY_MS as u64) as i64;
            let txn = format!("S{seed}-{d}-{i}");
            rows.push(base(txn.clone(), RevenueKind::Charge, product, price, at));
            let later = at + rng.below(5 * DAY_MS as u64) as i64;
            if later < end && rng.chance(6) {
                rows.push(base(txn, RevenueKind::Refund, product, -price, later));
            } else if later < end && rng.chance(1) {
                rows.push(base(txn, RevenueKind::Chargeback, product, -price, later));
            }
        }
        for i in 0..(n / 4).max(1) {
            let (product, price, months) = PLANS[usize::from(rng.chance(20))];
            let code = format!("SUB{seed}-{d}-{i}");
            let mut at = day_start + rng.below(DAY_MS as u64) as i64;
            let mut recurrence = 1;
            while at < end {
                let until = at + months * 30 * DAY_MS;
                let txn = format!("{code}-{recurrence}");
                rows.push(RevenueRow {
                    subscriber_code: Some(code.clone()),
                    recurrence: Some(recurrence),
                    paid_until: Some(until),
                    ..base(txn.clone(), RevenueKind::Charge, product, price, at)
                });
                if rng.chance(3) && at + DAY_MS < end {
                    rows.push(RevenueRow {
                        subscriber_code: Some(code.clone()),
                        ..base(txn, RevenueKind::Refund, product, -price, at + DAY_MS)
                    });
                    break;
                }
                if rng.chance(12) {
                    break; // churns: no further renewal
                }
                at = until;
                recurrence += 1;
            }
        }
    }
    rows
}
