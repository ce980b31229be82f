//! The revenue warehouse: one fact row per transaction and kind, the daily rollup, and
//! the queries the dashboard reads.
//!
//! Two backends chosen by configuration (`TOLLGATE_WAREHOUSE`): embedded SQLite (default,
//! no server) and BigQuery. Backends only store and fetch; every figure (per-course days,
//! active subscriptions, MRR, churn) is computed once, in
//! [`tollgate_domain::metrics`], from what they fetch.

pub mod bigquery;
pub mod sqlite;

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

    /// Replaces the stored rollup of `rollup.day`.
    pub async fn write_rollup(&self, rollup: &DayRollup) -> anyhow::Result<()> {
        dispatch!(self, b => b.write_rollup(rollup).await)
    }

    pub async fn read_rollup(&self, day: Day) -> anyhow::Result<Option<DayRollup>> {
        dispatch!(self, b => b.read_rollup(day).await)
    }

    // ---- Figures, the same for every backend ----

    pub async fn course_days(&self, currency: &Currency, range: DayRange) -> anyhow::Result<Vec<CourseDay>> {
        Ok(metrics::course_days(currency, self.kind_totals(currency, range).await?))
    }

    pub async fn subscription_days(
        &self,
        currency: &Currency,
        range: DayRange,
    ) -> anyhow::Result<Vec<SubscriptionDay>> {
        let facts = self.subscription_facts(currency, SubscriptionWindow::for_range(range)).await?;
        Ok(metrics::subscription_days(currency, &facts, range))
    }

    /// The rollup of one day from the facts as they are now (not stored).
    pub async fn compute_rollup(&self, day: Day) -> anyhow::Result<DayRollup> {
        let range = DayRange::one(day);
        let mut courses = Vec::new();
        let mut subscriptions = Vec::new();
        for currency in self.currencies().await? {
            courses.extend(self.course_days(&currency, range).await?);
            subscriptions.extend(
                self.subscription_days(&currency, range)
                    .await?
                    .into_iter()
                    .filter(|s| s.active > 0 || s.churned > 0 || s.started > 0),
            );
        }
        courses.sort_by(|a, b| (a.product_id, &a.currency).cmp(&(b.product_id, &b.currency)));
        subscriptions.sort_by(|a, b| a.currency.cmp(&b.currency));
        Ok(DayRollup { day, courses, subscriptions })
    }

    /// Computes and stores the rollup of `day`; re-running it for the same facts gives
    /// the same rows.
    pub async fn rollup_day(&self, day: Day) -> anyhow::Result<DayRollup> {
        let rollup = self.compute_rollup(day).await?;
        self.write_rollup(&rollup).await?;
        Ok(rollup)
    }
}
