//! Revenue metrics over warehouse facts. Pure: every warehouse backend fetches facts, and
//! this module turns them into the figures the dashboard, the daily rollup and the tests
//! share, so two backends cannot disagree on what "active" or "MRR" means.
//!
//! Days are UTC calendar days. Amounts stay integer minor units of one currency: nothing
//! here adds two currencies together.

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use crate::hotmart::Millis;
use crate::revenue::RevenueKind;

pub const DAY_MS: i64 = 86_400_000;
/// A subscription charge without a next-charge date covers this long (the access rules'
/// fallback, so access and revenue agree).
pub use crate::access::FALLBACK_PERIOD_MS;
/// Longest plan period the range queries look back for (yearly plans, with slack).
pub const MAX_PERIOD_MS: i64 = 400 * DAY_MS;
/// Longest range the dashboard and the rollup accept.
pub const MAX_RANGE_DAYS: i64 = 3_700;

/// A UTC calendar day, `YYYY-MM-DD` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Day(NaiveDate);

impl Day {
    pub fn from_index(days_since_epoch: i64) -> Self {
        Self(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Duration::days(days_since_epoch))
    }
    pub fn of_ms(ms: Millis) -> Self {
        Self::from_index(ms.div_euclid(DAY_MS))
    }
    pub fn index(self) -> i64 {
        (self.0 - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days()
    }
    /// First millisecond of the day.
    pub fn start_ms(self) -> Millis {
        self.index() * DAY_MS
    }
    /// First millisecond of the next day.
    pub fn end_ms(self) -> Millis {
        self.start_ms() + DAY_MS
    }
    pub fn next(self) -> Self {
        Self(self.0 + Days::new(1))
    }
    pub fn prev(self) -> Self {
        Self(self.0 - Days::new(1))
    }
}

impl FromStr for Day {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map(Self)
            .map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD)"))
    }
}

impl TryFrom<String> for Day {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Day> for String {
    fn from(d: Day) -> String {
        d.to_string()
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

/// Days `from..=to`, non-empty and at most [`MAX_RANGE_DAYS`] long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayRange {
    pub from: Day,
    pub to: Day,
}

impl DayRange {
    pub fn new(from: Day, to: Day) -> Result<Self, String> {
        if from > to {
            return Err(format!("from ({from}) is after to ({to})"));
        }
        if to.index() - from.index() >= MAX_RANGE_DAYS {
            return Err(format!("a range is at most {MAX_RANGE_DAYS} days"));
        }
        Ok(Self { from, to })
    }
    pub fn one(day: Day) -> Self {
        Self { from: day, to: day }
    }
    pub fn days(self) -> impl Iterator<Item = Day> {
        (self.from.index()..=self.to.index()).map(Day::from_index)
    }
    pub fn len(self) -> usize {
        (self.to.index() - self.from.index() + 1) as usize
    }
    pub fn is_empty(self) -> bool {
        false
    }
    pub fn start_ms(self) -> Millis {
        self.from.start_ms()
    }
    pub fn end_ms(self) -> Millis {
        self.to.end_ms()
    }
}

/// An ISO 4217 code: three ASCII letters, upper case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

impl Currency {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Currency {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.len() == 3 && s.chars().all(|c| c.is_ascii_alphabetic()) {
            Ok(Self(s.to_ascii_uppercase()))
        } else {
            Err(format!("{s:?} is not a currency code (three letters, e.g. BRL)"))
        }
    }
}

impl TryFrom<String> for Currency {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Revenue of one course (product) on one day in one currency. Reversals are negative.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourseDay {
    pub day: String,
    pub product_id: i64,
    pub currency: String,
    pub charges_minor: i64,
    pub refunds_minor: i64,
    pub chargebacks_minor: i64,
    /// charges + refunds + chargebacks (signed).
    pub total_minor: i64,
    pub charge_count: i64,
    pub refund_count: i64,
    pub chargeback_count: i64,
}

/// One `(day, product, kind)` group as a backend's GROUP BY returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindTotal {
    pub day_index: i64,
    pub product_id: i64,
    pub kind: RevenueKind,
    pub sum_minor: i64,
    pub count: i64,
}

/// Folds grouped sums into one row per day and course, ordered by day then product.
pub fn course_days(currency: &Currency, groups: Vec<KindTotal>) -> Vec<CourseDay> {
    let mut out: BTreeMap<(i64, i64), CourseDay> = BTreeMap::new();
    for g in groups {
        let row = out.entry((g.day_index, g.product_id)).or_insert_with(|| CourseDay {
            day: Day::from_index(g.day_index).to_string(),
            product_id: g.product_id,
            currency: currency.to_string(),
            ..CourseDay::default()
        });
        match g.kind {
            RevenueKind::Charge => {
                row.charges_minor += g.sum_minor;
                row.charge_count += g.count;
            }
            // A partial refund is money paid back too; only reversals end a subscription.
            RevenueKind::Refund | RevenueKind::PartialRefund => {
                row.refunds_minor += g.sum_minor;
                row.refund_count += g.count;
            }
            RevenueKind::Chargeback => {
                row.chargebacks_minor += g.sum_minor;
                row.chargeback_count += g.count;
            }
        }
        row.total_minor += g.sum_minor;
    }
    out.into_values().collect()
}

/// A subscription revenue row, as the subscription metrics need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionFact {
    pub product_id: i64,
    pub subscriber_code: Option<String>,
    pub transaction: String,
    pub kind: RevenueKind,
    pub gross_minor: i64,
    pub occurred_at: Millis,
    pub paid_until: Option<Millis>,
}

/// Subscription figures at the end of one day, in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionDay {
    pub day: String,
    pub currency: String,
    /// Subscriptions with a paid, unreversed charge covering the day's last instant.
    pub active: i64,
    /// Sum over active subscriptions of their covering charge, per month of period.
    pub mrr_minor: i64,
    /// Active the day before, not active at the end of this day.
    pub churned: i64,
    /// Not active the day before, active at the end of this day.
    pub started: i64,
}

/// Whole months a charge pays for (at least one): 28-31 days is one month, a year is 12.
fn months(occurred_at: Millis, paid_until: Millis) -> i64 {
    let days = (paid_until - occurred_at).max(0) as f64 / DAY_MS as f64;
    ((days / 30.44).round() as i64).max(1)
}

/// Active subscriptions, MRR, churn and starts per day of `range`.
///
/// A charge with a subscriber code covers `[occurred_at, paid_until)` (30 days when the
/// next charge date is unknown) and stops counting when its transaction is refunded or
/// charged back. A subscription is active at an instant some charge covers; its MRR is the
/// latest covering charge divided by the months that charge pays for (rounded down to
/// the minor unit, per subscription).
pub fn subscription_days(
    currency: &Currency,
    facts: &[SubscriptionFact],
    range: DayRange,
) -> Vec<SubscriptionDay> {
    let reversed: HashMap<&str, Millis> =
        facts.iter().filter(|f| f.kind.is_reversal()).fold(HashMap::new(), |mut m, f| {
            let at = m.entry(f.transaction.as_str()).or_insert(f.occurred_at);
            *at = (*at).min(f.occurred_at);
            m
        });
    // Each subscription's charges as (start, end, monthly value), sorted by start.
    let mut subs: HashMap<(i64, &str), Vec<(Millis, Millis, i64)>> = HashMap::new();
    for f in facts.iter().filter(|f| f.kind == RevenueKind::Charge) {
        let Some(code) = f.subscriber_code.as_deref() else { continue };
        let paid_until = f.paid_until.unwrap_or(f.occurred_at + FALLBACK_PERIOD_MS);
        let end = reversed.get(f.transaction.as_str()).map_or(paid_until, |r| paid_until.min(*r));
        let monthly = f.gross_minor / months(f.occurred_at, paid_until);
        subs.entry((f.product_id, code)).or_default().push((f.occurred_at, end, monthly));
    }
    // Slot 0 is the day before the range (for churn); slot i is day `first + i`.
    let first = range.from.index() - 1;
    let slots = range.len() + 1;
    let (mut active, mut mrr) = (vec![0i64; slots], vec![0i64; slots]);
    let (mut churned, mut started) = (vec![0i64; slots], vec![0i64; slots]);
    for charges in subs.values_mut() {
        charges.sort_unstable();
        // Only days some charge of this subscription can cover.
        let lo = charges.iter().map(|c| (c.0 + 1).div_euclid(DAY_MS)).min().unwrap_or(0).max(first);
        let hi =
            charges.iter().map(|c| c.1.div_euclid(DAY_MS)).max().unwrap_or(0).min(first + slots as i64 - 1);
        let mut was_active = false;
        let mut next = 0; // charges[..next] start at or before the current instant
        for d in lo..=hi {
            let t = (d + 1) * DAY_MS - 1;
            while next < charges.len() && charges[next].0 <= t {
                next += 1;
            }
            // The latest-starting charge still covering t.
            let covering = charges[..next].iter().rev().find(|c| t < c.1);
            let i = (d - first) as usize;
            if let Some(c) = covering {
                active[i] += 1;
                mrr[i] += c.2;
                if !was_active && i > 0 {
                    started[i] += 1;
                }
            } else if was_active {
                churned[i] += 1;
            }
            was_active = covering.is_some();
        }
        // `hi` is the day of the last end (not covered) or the range's last day, so a
        // subscription still active here churns, if ever, after the range.
    }
    (1..slots)
        .map(|i| SubscriptionDay {
            day: Day::from_index(first + i as i64).to_string(),
            currency: currency.to_string(),
            active: active[i],
            mrr_minor: mrr[i],
            churned: churned[i],
            started: started[i],
        })
        .collect()
}

/// The daily rollup of one day: what the scheduled workflow writes and returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayRollup {
    pub day: Day,
    pub courses: Vec<CourseDay>,
    /// One per currency with any subscription activity.
    pub subscriptions: Vec<SubscriptionDay>,
}

/// Input of the rollup workflow: an explicit day (a backfill or a re-run), or none for
/// "yesterday" by the workflow's clock (the schedule's daily run).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollupRequest {
    pub day: Option<Day>,
}

/// Input of the reconciliation: the window of revenue rows to check, by occurred_at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileRequest {
    /// Check rows of the last `lookback_days` days (ending now) ...
    pub lookback_days: u32,
    /// ... or this explicit range instead.
    #[serde(default)]
    pub range: Option<DayRange>,
    /// Write missing rows and delete extra ones; otherwise only report.
    pub repair: bool,
    /// Journal entries younger than this are still on their way to the warehouse
    /// through their workflow, and are not judged yet.
    pub settle_secs: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileReport {
    pub from_ms: Millis,
    pub to_ms: Millis,
    /// Rows the journal implies in the window.
    pub expected: usize,
    /// Rows the warehouse holds in the window.
    pub found: usize,
    /// Keys implied by the journal and absent from the warehouse.
    pub missing: Vec<String>,
    /// Keys in the warehouse no journal entry implies.
    pub extra: Vec<String>,
    /// Keys present on both sides with a different amount, currency or time (reported only).
    pub differing: Vec<String>,
    pub repaired_missing: usize,
    pub removed_extra: usize,
    /// Journal entries of the window this version cannot decode.
    #[serde(default)]
    pub undecodable: usize,
    /// Why a requested repair changed nothing (the report alone is still made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repair_skipped: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charge(code: &str, txn: &str, at: Millis, until: Option<Millis>, gross: i64) -> SubscriptionFact {
        SubscriptionFact {
            product_id: 1,
            subscriber_code: Some(code.into()),
            transaction: txn.into(),
            kind: RevenueKind::Charge,
            gross_minor: gross,
            occurred_at: at,
            paid_until: until,
        }
    }

    #[test]
    fn days_parse_and_index() {
        let d: Day = "2026-11-25".parse().unwrap();
        assert_eq!(Day::from_index(d.index()), d);
        assert_eq!(Day::of_ms(d.start_ms()), d);
        assert_eq!(Day::of_ms(d.end_ms() - 1), d);
        assert!("2026-13-01".parse::<Day>().is_err());
        assert!(DayRange::new(d, d.prev()).is_err());
        assert_eq!(DayRange::new(d.prev(), d).unwrap().len(), 2);
        assert!("brl".parse::<Currency>().unwrap().as_str() == "BRL");
        assert!("R$".parse::<Currency>().is_err());
    }

    #[test]
    fn active_mrr_churn() {
        let brl: Currency = "BRL".parse().unwrap();
        let d0: Day = "2026-01-01".parse().unwrap();
        let at = d0.start_ms() + 10 * 3_600_000;
        let facts = vec![
            // Monthly plan, renewed once, then lapses.
            charge("A", "t1", at, Some(at + 31 * DAY_MS), 1990),
            charge("A", "t2", at + 31 * DAY_MS, Some(at + 59 * DAY_MS), 1990),
            // Yearly plan: 12 months.
            charge("B", "t3", at, Some(at + 365 * DAY_MS), 12_000),
            // Refunded after 5 days.
            charge("C", "t4", at, None, 500),
            SubscriptionFact {
                kind: RevenueKind::Refund,
                gross_minor: -500,
                ..charge("C", "t4", at + 5 * DAY_MS, None, 0)
            },
        ];
        let range = DayRange::new(d0, Day::from_index(d0.index() + 70)).unwrap();
        let days = subscription_days(&brl, &facts, range);
        assert_eq!(days.len(), 71);
        assert_eq!((days[0].active, days[0].mrr_minor, days[0].started), (3, 1990 + 1000 + 500, 3));
        // Day 5: C refunded during the day.
        assert_eq!((days[5].active, days[5].churned), (2, 1));
        // A renewed on day 31: no churn, still 2.
        assert_eq!((days[31].active, days[31].churned, days[31].mrr_minor), (2, 0, 2990));
        // A lapses on day 59.
        assert_eq!((days[58].active, days[59].active, days[59].churned), (2, 1, 1));
        assert_eq!(days[70].mrr_minor, 1000);
    }

    /// The definition, evaluated literally per day and subscription.
    fn reference(facts: &[SubscriptionFact], range: DayRange) -> Vec<(i64, i64, i64, i64)> {
        let covering = |code: &str, product: i64, t: Millis| {
            facts
                .iter()
                .filter(|f| f.kind == RevenueKind::Charge && f.subscriber_code.as_deref() == Some(code))
                .filter(|f| f.product_id == product && f.occurred_at <= t)
                .filter(|f| {
                    let until = f.paid_until.unwrap_or(f.occurred_at + FALLBACK_PERIOD_MS);
                    let rev = facts
                        .iter()
                        .filter(|r| r.kind.is_reversal() && r.transaction == f.transaction)
                        .map(|r| r.occurred_at)
                        .min();
                    t < rev.map_or(until, |r| until.min(r))
                })
                .max_by_key(|f| f.occurred_at)
                .map(|f| {
                    let until = f.paid_until.unwrap_or(f.occurred_at + FALLBACK_PERIOD_MS);
                    f.gross_minor / months(f.occurred_at, until)
                })
        };
        let mut keys: Vec<(i64, String)> =
            facts.iter().filter_map(|f| Some((f.product_id, f.subscriber_code.clone()?))).collect();
        keys.sort();
        keys.dedup();
        range
            .days()
            .map(|d| {
                let (t, prev) = (d.end_ms() - 1, d.start_ms() - 1);
                let (mut a, mut m, mut c, mut st) = (0, 0, 0, 0);
                for (p, k) in &keys {
                    let (now, before) = (covering(k, *p, t), covering(k, *p, prev));
                    if let Some(v) = now {
                        a += 1;
                        m += v;
                    }
                    c += i64::from(before.is_some() && now.is_none());
                    st += i64::from(before.is_none() && now.is_some());
                }
                (a, m, c, st)
            })
            .collect()
    }

    #[test]
    fn subscription_days_match_the_literal_definition() {
        let brl: Currency = "BRL".parse().unwrap();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = |n: i64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as i64
        };
        let d0: Day = "2026-03-01".parse().unwrap();
        for _case in 0..60 {
            let mut facts = Vec::new();
            for i in 0..rnd(12) + 1 {
                let code = format!("S{}", rnd(4));
                let at = d0.start_ms() + rnd(40 * DAY_MS);
                let until = match rnd(3) {
                    0 => None,
                    1 => Some(at + rnd(60 * DAY_MS)),
                    _ => Some(at + 365 * DAY_MS),
                };
                let txn = format!("T{i}");
                facts.push(SubscriptionFact {
                    product_id: rnd(2),
                    ..charge(&code, &txn, at, until, 100 + rnd(5000))
                });
                if rnd(4) == 0 {
                    let f = facts.last().unwrap().clone();
                    facts.push(SubscriptionFact {
                        kind: RevenueKind::Refund,
                        gross_minor: -f.gross_minor,
                        occurred_at: f.occurred_at + rnd(20 * DAY_MS),
                        paid_until: None,
                        ..f
                    });
                }
            }
            let range =
                DayRange::new(Day::from_index(d0.index() + rnd(20)), Day::from_index(d0.index() + 45))
                    .unwrap();
            let got: Vec<_> = subscription_days(&brl, &facts, range)
                .into_iter()
                .map(|s| (s.active, s.mrr_minor, s.churned, s.started))
                .collect();
            assert_eq!(got, reference(&facts, range), "{facts:#?}");
        }
    }

    #[test]
    fn course_days_keep_kinds_apart() {
        let brl: Currency = "BRL".parse().unwrap();
        let g =
            |kind, sum, count| KindTotal { day_index: 20_000, product_id: 7, kind, sum_minor: sum, count };
        let rows = course_days(
            &brl,
            vec![
                g(RevenueKind::Charge, 3000, 2),
                g(RevenueKind::Refund, -1000, 1),
                g(RevenueKind::Chargeback, -500, 1),
            ],
        );
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].charges_minor, rows[0].refunds_minor, rows[0].total_minor), (3000, -1000, 1500));
    }
}
