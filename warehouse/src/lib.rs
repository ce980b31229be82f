//! The revenue warehouse: one fact row per transaction and kind, the daily rollup, and
//! the queries the dashboard reads.
//!
//! Two backends chosen by configuration (`TOLLGATE_WAREHOUSE`): embedded SQLite (default,
//! no server) and BigQuery. Backends only store and fetch; every figure (per-course days,
//! active subscriptions, MRR, churn) is computed once, in
//! [`tollgate_domain::metrics`], from what they fetch.

pub mod bigquery;
pub mod sqlite;

use std::collections::BTreeMap;

use tollgate_domain::hotmart::Millis;
use tollgate_domain::metrics::{
    self, CourseDay, Currency, Day, DayRange, DayRollup, KindTotal, MAX_PERIOD_MS, SubscriptionDay,
    SubscriptionFact,
};
use tollgate_domain::revenue::RevenueRow;

pub use bigquery::BigQueryWarehouse;
pub use sqlite::SqliteWarehouse;

/// Which backend, from the environment.
#[derive(Debug, Clone)]
pub enum WarehouseConfig {
    /// `TOLLGATE_WAREHOUSE=sqlite` (default): tables in the `TOLLGATE_DB` file.
    Sqlite { path: std::path::PathBuf },
    /// `TOLLGATE_WAREHOUSE=bigquery`: `BIGQUERY_PROJECT_ID`, `BIGQUERY_DATASET`; the emulator
    /// when `BIGQUERY_EMULATOR_HOST` is set, else `GOOGLE_APPLICATION_CREDENTIALS`.
    BigQuery { project_id: String, dataset: String, emulator_host: Option<String> },
}

#[derive(Clone)]
pub enum Warehouse {
    Sqlite(SqliteWarehouse),
    BigQuery(BigQueryWarehouse),
}

macro_rules! dispatch {
    ($self:ident, $b:ident => $e:expr) => {
        match $self {
            Warehouse::Sqlite($b) => $e,
            Warehouse::BigQuery($b) => $e,
        }
    };
}

/// The fact window a subscription query needs: charges that may cover `range`, and any
/// reversal of them.
#[derive(Debug, Clone, Copy)]
pub struct SubscriptionWindow {
    /// Charges before this cannot cover the range (no plan is longer than a year).
    pub charges_from_ms: Millis,
    /// Nothing at or after this matters.
    pub until_ms: Millis,
    /// A charge whose paid period ends at or before this cannot cover the range.
    pub covers_from_ms: Millis,
}

impl SubscriptionWindow {
    pub fn for_range(range: DayRange) -> Self {
        // One day earlier than the range: churn compares with the day before.
        let start = range.from.prev().start_ms();
        Self { charges_from_ms: start - MAX_PERIOD_MS, until_ms: range.end_ms(), covers_from_ms: start }
    }
}

impl Warehouse {
    pub async fn open(cfg: &WarehouseConfig) -> anyhow::Result<Self> {
        Ok(match cfg {
            WarehouseConfig::Sqlite { path } => Self::Sqlite(SqliteWarehouse::open(path)?),
            WarehouseConfig::BigQuery { project_id, dataset, emulator_host } => {
                Self::BigQuery(BigQueryWarehouse::open(project_id, dataset, emulator_host.as_deref()).await?)
            }
        })
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::BigQuery(_) => "bigquery",
        }
    }

    /// Inserts the row unless its key exists. Returns whether this call inserted it.
    pub async fn record(&self, row: RevenueRow) -> anyhow::Result<bool> {
        dispatch!(self, b => b.record(row).await)
    }

    /// Rows with `from_ms <= occurred_at < to_ms`, oldest first (then by key).
    pub async fn rows_between(&self, from_ms: Millis, to_ms: Millis) -> anyhow::Result<Vec<RevenueRow>> {
        dispatch!(self, b => b.rows_between(from_ms, to_ms).await)
    }

    /// The rows of one buyer (email compared without case) in `products`, oldest first:
    /// the student page reads these, not the whole table.
    pub async fn rows_of_buyer(&self, email: &str, products: &[i64]) -> anyhow::Result<Vec<RevenueRow>> {
        dispatch!(self, b => b.rows_of_buyer(email, products).await)
    }

    /// Deletes rows by key; returns how many existed.
    pub async fn delete_keys(&self, keys: Vec<String>) -> anyhow::Result<usize> {
        if keys.is_empty() {
            return Ok(0);
        }
        dispatch!(self, b => b.delete_keys(keys).await)
    }

    /// Currencies that have any row, sorted.
    pub async fn currencies(&self) -> anyhow::Result<Vec<Currency>> {
        dispatch!(self, b => b.currencies().await)
    }

    /// Sums per `(day, product, kind)` in one currency over the range.
    pub async fn kind_totals(&self, currency: &Currency, range: DayRange) -> anyhow::Result<Vec<KindTotal>> {
        dispatch!(self, b => b.kind_totals(currency, range).await)
    }

    pub async fn subscription_facts(
        &self,
        currency: &Currency,
        window: SubscriptionWindow,
    ) -> anyhow::Result<Vec<SubscriptionFact>> {
        dispatch!(self, b => b.subscription_facts(currency, window).await)
    }

    /// The facts of every subscription whose status or MRR can change during `day`.
    pub async fn subscription_facts_changing(
        &self,
        currency: &Currency,
        day: Day,
    ) -> anyhow::Result<Vec<SubscriptionFact>> {
        dispatch!(self, b => b.subscription_facts_changing(currency, day).await)
    }

    /// Replaces the stored rollups of their days, each with the change mark its facts
    /// were read at (see [`RollupSlice`]).
    pub async fn write_rollups(&self, rollups: &[(DayRollup, i64)]) -> anyhow::Result<()> {
        if rollups.is_empty() {
            return Ok(());
        }
        dispatch!(self, b => b.write_rollups(rollups).await)
    }

    pub async fn read_rollup(&self, day: Day) -> anyhow::Result<Option<DayRollup>> {
        dispatch!(self, b => b.read_rollup(day).await)
    }

    /// The change marks of `range` and what is stored for it (rows of `currency` only;
    /// none without one).
    pub async fn rollup_slice(
        &self,
        range: DayRange,
        currency: Option<&Currency>,
    ) -> anyhow::Result<RollupSlice> {
        dispatch!(self, b => b.rollup_slice(range, currency).await)
    }

    // ---- Figures, the same for every backend ----

    /// Revenue per course and day: stored rollups for closed days whose facts have not
    /// changed since, live facts for the rest (today, later days, and days without a
    /// rollup or with a stale one). The same figures as [`Self::live_course_days`].
    pub async fn course_days(&self, currency: &Currency, range: DayRange) -> anyhow::Result<Vec<CourseDay>> {
        let plan = self.plan(currency, range, today()).await?;
        let mut out: Vec<CourseDay> = plan.fresh.into_values().flat_map(|s| s.courses).collect();
        for run in plan.live {
            out.extend(self.live_course_days(currency, run).await?);
        }
        out.sort_by(|a, b| (&a.day, a.product_id).cmp(&(&b.day, b.product_id)));
        Ok(out)
    }

    /// Active subscriptions, MRR, churn and starts per day, from rollups where they are
    /// fresh as in [`Self::course_days`]. The same figures as [`Self::live_subscription_days`].
    pub async fn subscription_days(
        &self,
        currency: &Currency,
        range: DayRange,
    ) -> anyhow::Result<Vec<SubscriptionDay>> {
        let plan = self.plan(currency, range, today()).await?;
        let fresh: BTreeMap<Day, SubscriptionDay> = plan
            .fresh
            .into_iter()
            .map(|(day, s)| {
                // A rollup keeps no row for a currency with nothing active, started or churned.
                let zero = || SubscriptionDay {
                    day: day.to_string(),
                    currency: currency.to_string(),
                    active: 0,
                    mrr_minor: 0,
                    churned: 0,
                    started: 0,
                };
                (day, s.subscription.unwrap_or_else(zero))
            })
            .collect();
        let mut out = Vec::with_capacity(range.len());
        for mut run in plan.live {
            // A live day right after a fresh one: that rollup plus what changes on the day.
            if let Some(before) = fresh.get(&run.from.prev()) {
                out.push(self.subscription_day_after(currency, before, run.from).await?);
                if run.from == run.to {
                    continue;
                }
                run.from = run.from.next();
            }
            out.extend(self.live_subscription_days(currency, run).await?);
        }
        out.extend(fresh.into_values());
        out.sort_by(|a, b| a.day.cmp(&b.day));
        Ok(out)
    }

    /// The figures of `day` from those of the day before: only a subscription with a
    /// charge starting, a paid period ending or a reversal on `day` can change between
    /// the two days' last instants, so the others' share carries over unchanged. What
    /// makes today cheap: the live figures of any day read every covering charge.
    async fn subscription_day_after(
        &self,
        currency: &Currency,
        before: &SubscriptionDay,
        day: Day,
    ) -> anyhow::Result<SubscriptionDay> {
        let facts = self.subscription_facts_changing(currency, day).await?;
        let pair = metrics::subscription_days(currency, &facts, DayRange { from: day.prev(), to: day });
        let (was, now) = (&pair[0], &pair[1]);
        Ok(SubscriptionDay {
            day: day.to_string(),
            currency: currency.to_string(),
            active: before.active - was.active + now.active,
            mrr_minor: before.mrr_minor - was.mrr_minor + now.mrr_minor,
            churned: now.churned,
            started: now.started,
        })
    }

    /// Which days of `range` a stored rollup answers, and the runs of days read live.
    async fn plan(&self, currency: &Currency, range: DayRange, today: Day) -> anyhow::Result<Plan> {
        let mut fresh = BTreeMap::new();
        if range.from < today {
            let closed = DayRange { from: range.from, to: range.to.min(today.prev()) };
            let slice = self.rollup_slice(closed, Some(currency)).await?;
            fresh = slice.fresh();
        }
        Ok(Plan { live: runs(range, |d| !fresh.contains_key(&d)), fresh })
    }

    /// Revenue per course and day, from the facts.
    pub async fn live_course_days(
        &self,
        currency: &Currency,
        range: DayRange,
    ) -> anyhow::Result<Vec<CourseDay>> {
        Ok(metrics::course_days(currency, self.kind_totals(currency, range).await?))
    }

    /// Subscription figures per day, from the facts.
    pub async fn live_subscription_days(
        &self,
        currency: &Currency,
        range: DayRange,
    ) -> anyhow::Result<Vec<SubscriptionDay>> {
        let facts = self.subscription_facts(currency, SubscriptionWindow::for_range(range)).await?;
        Ok(metrics::subscription_days(currency, &facts, range))
    }

    /// The rollup of each day of `range` from the facts as they are now (not stored).
    async fn compute_rollups(&self, range: DayRange) -> anyhow::Result<Vec<DayRollup>> {
        let mut days: BTreeMap<Day, DayRollup> = range
            .days()
            .map(|day| (day, DayRollup { day, courses: Vec::new(), subscriptions: Vec::new() }))
            .collect();
        let day_of = |s: &str| s.parse::<Day>().map_err(anyhow::Error::msg);
        for currency in self.currencies().await? {
            for c in self.live_course_days(&currency, range).await? {
                days.get_mut(&day_of(&c.day)?).expect("a day of the range").courses.push(c);
            }
            for s in self.live_subscription_days(&currency, range).await? {
                if s.active > 0 || s.churned > 0 || s.started > 0 {
                    days.get_mut(&day_of(&s.day)?).expect("a day of the range").subscriptions.push(s);
                }
            }
        }
        Ok(days
            .into_values()
            .map(|mut r| {
                r.courses.sort_by(|a, b| (a.product_id, &a.currency).cmp(&(b.product_id, &b.currency)));
                r.subscriptions.sort_by(|a, b| a.currency.cmp(&b.currency));
                r
            })
            .collect())
    }

    /// The rollup of one day from the facts as they are now (not stored).
    pub async fn compute_rollup(&self, day: Day) -> anyhow::Result<DayRollup> {
        Ok(self.compute_rollups(DayRange::one(day)).await?.remove(0))
    }

    /// Computes and stores the rollup of `day`; re-running it for the same facts gives
    /// the same rows.
    pub async fn rollup_day(&self, day: Day) -> anyhow::Result<DayRollup> {
        // The mark is read before the facts: a change that lands in between leaves the
        // stored rollup stale (recomputed), never wrongly fresh.
        let mark = self.rollup_slice(DayRange::one(day), None).await?.marks[0];
        let rollup = self.compute_rollup(day).await?;
        self.write_rollups(&[(rollup.clone(), mark)]).await?;
        Ok(rollup)
    }

    /// Computes and stores the rollup of every closed day of `range` (before today, UTC)
    /// that has none or a stale one, a run of such days at a time; returns how many days
    /// it wrote. What the dashboard calls after it had to read closed days live.
    pub async fn refresh_rollups(&self, range: DayRange) -> anyhow::Result<usize> {
        let today = today();
        if range.from >= today {
            return Ok(0);
        }
        let closed = DayRange { from: range.from, to: range.to.min(today.prev()) };
        let slice = self.rollup_slice(closed, None).await?;
        let fresh = slice.fresh();
        let mut written = 0;
        for run in runs(closed, |d| !fresh.contains_key(&d)) {
            let rollups = self.compute_rollups(run).await?;
            let marked: Vec<_> = rollups
                .into_iter()
                .map(|r| {
                    let mark = slice.mark(r.day).expect("a day of the slice");
                    (r, mark)
                })
                .collect();
            written += marked.len();
            self.write_rollups(&marked).await?;
        }
        Ok(written)
    }
}

fn today() -> Day {
    Day::of_ms(tollgate_store::now_ms())
}

/// The maximal runs of consecutive days of `range` for which `pick` holds.
fn runs(range: DayRange, pick: impl Fn(Day) -> bool) -> Vec<DayRange> {
    let mut out: Vec<DayRange> = Vec::new();
    for d in range.days().filter(|d| pick(*d)) {
        match out.last_mut() {
            Some(run) if run.to.next() == d => run.to = d,
            _ => out.push(DayRange::one(d)),
        }
    }
    out
}

struct Plan {
    fresh: BTreeMap<Day, StoredRollup>,
    live: Vec<DayRange>,
}

/// What a backend holds for a range of days, read as one consistent picture.
///
/// A day's *change mark* counts every insert and delete of a fact dated on or before
/// it (the backends count them on write). A day's figures depend only on facts dated up
/// to its end (charges covering it started by then; a reversal counts from its own
/// time), so a rollup stored with the mark it was computed at is fresh exactly while
/// that mark is unchanged. A late row for an old day, or a reconcile repair, moves the
/// marks of that day and every later one.
#[derive(Debug)]
pub struct RollupSlice {
    pub range: DayRange,
    /// The current mark of each day of the range, in order.
    pub marks: Vec<i64>,
    /// The stored rollups of the range, with the mark each was computed at.
    pub stored: BTreeMap<Day, StoredRollup>,
}

#[derive(Debug, Clone)]
pub struct StoredRollup {
    pub basis: i64,
    /// The rows of the currency asked for.
    pub courses: Vec<CourseDay>,
    pub subscription: Option<SubscriptionDay>,
}

impl RollupSlice {
    /// The stored rollups whose mark is still current.
    pub fn fresh(&self) -> BTreeMap<Day, StoredRollup> {
        self.stored
            .iter()
            .filter(|(day, s)| self.mark(**day) == Some(s.basis))
            .map(|(d, s)| (*d, s.clone()))
            .collect()
    }

    pub fn mark(&self, day: Day) -> Option<i64> {
        self.marks.get(usize::try_from(day.index() - self.range.from.index()).ok()?).copied()
    }
}
