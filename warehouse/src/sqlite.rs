//! The embedded warehouse: tables in the Tollgate SQLite file.

use rusqlite::{OptionalExtension, params};
use tollgate_domain::hotmart::Millis;
use tollgate_domain::metrics::{
    CourseDay, Currency, DAY_MS, Day, DayRange, DayRollup, KindTotal, SubscriptionDay, SubscriptionFact,
};
use tollgate_domain::money::Money;
use tollgate_domain::revenue::{RevenueKind, RevenueRow};
use tollgate_store::{Db, now_ms};

use crate::SubscriptionWindow;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS revenue (
    key             TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    txn             TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    product_id      INTEGER NOT NULL,
    buyer_email     TEXT NOT NULL,
    subscriber_code TEXT,
    recurrence      INTEGER,
    gross_minor     INTEGER NOT NULL,
    net_minor       INTEGER,
    currency        TEXT NOT NULL,
    occurred_at     INTEGER NOT NULL,
    recorded_at     INTEGER NOT NULL,
    paid_until      INTEGER,
    -- The producer net's own currency (Hotmart can pay it in another); NULL: `currency`.
    net_currency    TEXT
);
CREATE INDEX IF NOT EXISTS revenue_time ON revenue(occurred_at);
-- Covers the per-course daily sums: the dashboard's GROUP BY reads only this index.
CREATE INDEX IF NOT EXISTS revenue_daily_cover ON revenue(currency, occurred_at, product_id, kind, gross_minor);
CREATE INDEX IF NOT EXISTS revenue_txn ON revenue(txn);
-- The staff console's student page: a buyer's rows without reading the others.
CREATE INDEX IF NOT EXISTS revenue_buyer ON revenue(buyer_email COLLATE NOCASE);
-- Subscription charges by the end of what they pay for (30 days when unknown; the
-- constant is metrics::FALLBACK_PERIOD_MS and must match the query's expression).
CREATE INDEX IF NOT EXISTS revenue_subscription_coverage
    ON revenue(currency, COALESCE(paid_until, occurred_at + 2592000000))
    WHERE kind = 'charge' AND subscriber_code IS NOT NULL;
CREATE TABLE IF NOT EXISTS rollup_course (
    day               TEXT NOT NULL,
    product_id        INTEGER NOT NULL,
    currency          TEXT NOT NULL,
    charges_minor     INTEGER NOT NULL,
    refunds_minor     INTEGER NOT NULL,
    chargebacks_minor INTEGER NOT NULL,
    total_minor       INTEGER NOT NULL,
    charge_count      INTEGER NOT NULL,
    refund_count      INTEGER NOT NULL,
    chargeback_count  INTEGER NOT NULL,
    PRIMARY KEY (day, product_id, currency)
);
CREATE TABLE IF NOT EXISTS rollup_subscription (
    day        TEXT NOT NULL,
    currency   TEXT NOT NULL,
    active     INTEGER NOT NULL,
    mrr_minor  INTEGER NOT NULL,
    churned    INTEGER NOT NULL,
    started    INTEGER NOT NULL,
    PRIMARY KEY (day, currency)
);
CREATE TABLE IF NOT EXISTS rollup_day (
    day         TEXT PRIMARY KEY,
    computed_at INTEGER NOT NULL
);
"#;

const _: () = assert!(tollgate_domain::metrics::FALLBACK_PERIOD_MS == 2_592_000_000);

const COLUMNS: &str = "key, kind, txn, event_id, product_id, buyer_email, subscriber_code, recurrence, \
                       gross_minor, net_minor, currency, occurred_at, paid_until, net_currency";

#[derive(Clone)]
pub struct SqliteWarehouse {
    db: Db,
}

impl SqliteWarehouse {
    pub fn open(path: impl AsRef<std::path::Path>) -> anyhow::Result<Self> {
        Self::new(Db::open(path)?)
    }

    /// Uses an open Tollgate database (creates the warehouse tables if absent).
    pub fn new(db: Db) -> anyhow::Result<Self> {
        db.blocking(|conn| {
            // Files from before `paid_until` existed get the column.
            let has_paid_until = conn
                .prepare("SELECT 1 FROM pragma_table_info('revenue') WHERE name = 'paid_until'")?
                .exists([])?;
            let revenue_exists = conn
                .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'revenue'")?
                .exists([])?;
            if revenue_exists && !has_paid_until {
                conn.execute_batch("ALTER TABLE revenue ADD COLUMN paid_until INTEGER")?;
            }
            // And before `net_currency` (their nets were in the gross currency).
            let has_net_currency = conn
                .prepare("SELECT 1 FROM pragma_table_info('revenue') WHERE name = 'net_currency'")?
                .exists([])?;
            if revenue_exists && !has_net_currency {
                conn.execute_batch("ALTER TABLE revenue ADD COLUMN net_currency TEXT")?;
            }
            conn.execute_batch(SCHEMA)?;
            Ok(())
        })?;
        Ok(Self { db })
    }

    pub async fn record(&self, row: RevenueRow) -> anyhow::Result<bool> {
        Ok(self.record_many(vec![row]).await? == 1)
    }

    /// Rows in one transaction, each inserted unless its key exists; returns how many
    /// were inserted. A refund or chargeback is inserted only if no earlier one of its
    /// transaction is stored (by time, then event id), and replaces a later one: one
    /// reversal per transaction, the first by Hotmart's clock whatever the arrival order.
    pub async fn record_many(&self, rows: Vec<RevenueRow>) -> anyhow::Result<usize> {
        self.db
            .call(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let mut n = 0;
                {
                    let mut st = tx.prepare_cached(&format!(
                        "INSERT INTO revenue ({COLUMNS}, recorded_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
                         ON CONFLICT(key) DO NOTHING"
                    ))?;
                    let mut earlier = tx.prepare_cached(
                        "SELECT 1 FROM revenue WHERE txn = ?1 AND kind IN ('refund', 'chargeback')
                           AND (occurred_at < ?2 OR (occurred_at = ?2 AND event_id <= ?3))",
                    )?;
                    let mut later = tx.prepare_cached(
                        "DELETE FROM revenue WHERE txn = ?1 AND kind IN ('refund', 'chargeback')",
                    )?;
                    let now = now_ms();
                    for row in rows {
                        if row.kind.is_reversal() {
                            if earlier.exists(params![row.transaction, row.occurred_at, row.event_id])? {
                                continue;
                            }
                            later.execute([&row.transaction])?;
                        }
                        n += st.execute(params![
                            row.key,
                            row.kind.as_str(),
                            row.transaction,
                            row.event_id,
                            row.product_id,
                            row.buyer_email,
                            row.subscriber_code,
                            row.recurrence,
                            row.gross.minor,
                            row.producer_net.as_ref().map(|m| m.minor),
                            row.gross.currency,
                            row.occurred_at,
                            row.paid_until,
                            row.producer_net.as_ref().map(|m| m.currency.as_str()),
                            now,
                        ])?;
                    }
                }
                tx.commit()?;
                Ok(n)
            })
            .await
    }

    pub async fn rows_between(&self, from_ms: Millis, to_ms: Millis) -> anyhow::Result<Vec<RevenueRow>> {
        self.db
            .call(move |c| {
                let mut st = c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM revenue WHERE occurred_at >= ?1 AND occurred_at < ?2
                     ORDER BY occurred_at, key"
                ))?;
                let rows = st.query_map([from_ms, to_ms], read_row)?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }

    /// The rows of one buyer (email compared without case) in `products`, through the
    /// `revenue_buyer` index.
    pub async fn rows_of_buyer(&self, email: &str, products: &[i64]) -> anyhow::Result<Vec<RevenueRow>> {
        let (email, products) = (email.to_string(), products.to_vec());
        self.db
            .call(move |c| {
                let mut st = c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM revenue WHERE buyer_email = ?1 COLLATE NOCASE
                     ORDER BY occurred_at, key"
                ))?;
                let rows = st.query_map([email], read_row)?;
                let rows = rows.collect::<Result<Vec<_>, _>>()?;
                Ok(rows.into_iter().filter(|r| products.contains(&r.product_id)).collect())
            })
            .await
    }

    pub async fn delete_keys(&self, keys: Vec<String>) -> anyhow::Result<usize> {
        self.db
            .call(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let mut n = 0;
                {
                    let mut st = tx.prepare_cached("DELETE FROM revenue WHERE key = ?1")?;
                    for k in keys {
                        n += st.execute([k])?;
                    }
                }
                tx.commit()?;
                Ok(n)
            })
            .await
    }

    pub async fn currencies(&self) -> anyhow::Result<Vec<Currency>> {
        self.db
            .call(|c| {
                let mut st = c.prepare_cached("SELECT DISTINCT currency FROM revenue ORDER BY currency")?;
                let codes = st.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
                Ok(codes.into_iter().filter_map(|c| c.parse().ok()).collect())
            })
            .await
    }

    pub async fn kind_totals(&self, currency: &Currency, range: DayRange) -> anyhow::Result<Vec<KindTotal>> {
        let currency = currency.to_string();
        self.db
            .call(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT occurred_at / ?4 AS d, product_id, kind, SUM(gross_minor), COUNT(*)
                     FROM revenue WHERE currency = ?1 AND occurred_at >= ?2 AND occurred_at < ?3
                     GROUP BY d, product_id, kind",
                )?;
                let rows =
                    st.query_map(params![currency, range.start_ms(), range.end_ms(), DAY_MS], |r| {
                        let kind: String = r.get(2)?;
                        Ok(KindTotal {
                            day_index: r.get(0)?,
                            product_id: r.get(1)?,
                            kind: RevenueKind::parse(&kind).unwrap_or(RevenueKind::Charge),
                            sum_minor: r.get(3)?,
                            count: r.get(4)?,
                        })
                    })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }

    pub async fn subscription_facts(
        &self,
        currency: &Currency,
        w: SubscriptionWindow,
    ) -> anyhow::Result<Vec<SubscriptionFact>> {
        let currency = currency.to_string();
        self.db
            .call(move |c| {
                // Charges whose paid period reaches the window, then their reversals by
                // transaction. Each unary `+` steers the planner: charges by the coverage
                // index (not by time, which reads a year of rows), reversals by the txn
                // index (not a range scan per charge, which is quadratic).
                let mut st = c.prepare_cached(
                    "WITH ch AS (
                        SELECT product_id, subscriber_code, txn, kind, gross_minor, occurred_at, paid_until
                        FROM revenue
                        WHERE currency = ?1 AND kind = 'charge' AND subscriber_code IS NOT NULL
                          AND +occurred_at >= ?2 AND +occurred_at < ?3
                          AND COALESCE(paid_until, occurred_at + 2592000000) > ?4)
                     SELECT * FROM ch
                     UNION ALL
                     SELECT r.product_id, r.subscriber_code, r.txn, r.kind, r.gross_minor, r.occurred_at, r.paid_until
                     FROM ch JOIN revenue r ON r.txn = ch.txn
                     WHERE r.kind != 'charge' AND +r.currency = ?1 AND +r.occurred_at < ?3",
                )?;
                let rows = st.query_map(
                    params![currency, w.charges_from_ms, w.until_ms, w.covers_from_ms],
                    |r| {
                    let kind: String = r.get(3)?;
                    Ok(SubscriptionFact {
                        product_id: r.get(0)?,
                        subscriber_code: r.get(1)?,
                        transaction: r.get(2)?,
                        kind: RevenueKind::parse(&kind).unwrap_or(RevenueKind::Charge),
                        gross_minor: r.get(4)?,
                        occurred_at: r.get(5)?,
                        paid_until: r.get(6)?,
                    })
                    },
                )?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }

    pub async fn write_rollup(&self, rollup: &DayRollup) -> anyhow::Result<()> {
        let rollup = rollup.clone();
        self.db
            .call(move |c| {
                let day = rollup.day.to_string();
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                tx.execute("DELETE FROM rollup_course WHERE day = ?1", [&day])?;
                tx.execute("DELETE FROM rollup_subscription WHERE day = ?1", [&day])?;
                for r in &rollup.courses {
                    tx.execute(
                        "INSERT INTO rollup_course VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                        params![
                            day,
                            r.product_id,
                            r.currency,
                            r.charges_minor,
                            r.refunds_minor,
                            r.chargebacks_minor,
                            r.total_minor,
                            r.charge_count,
                            r.refund_count,
                            r.chargeback_count
                        ],
                    )?;
                }
                for s in &rollup.subscriptions {
                    tx.execute(
                        "INSERT INTO rollup_subscription VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![day, s.currency, s.active, s.mrr_minor, s.churned, s.started],
                    )?;
                }
                tx.execute(
                    "INSERT INTO rollup_day VALUES (?1, ?2) ON CONFLICT(day) DO UPDATE SET computed_at = ?2",
                    params![day, now_ms()],
                )?;
                tx.commit()?;
                Ok(())
            })
            .await
    }

    pub async fn read_rollup(&self, day: Day) -> anyhow::Result<Option<DayRollup>> {
        self.db
            .call(move |c| {
                let d = day.to_string();
                let known = c
                    .query_row("SELECT 1 FROM rollup_day WHERE day = ?1", [&d], |_| Ok(()))
                    .optional()?
                    .is_some();
                if !known {
                    return Ok(None);
                }
                let courses = c
                    .prepare_cached(
                        "SELECT product_id, currency, charges_minor, refunds_minor, chargebacks_minor, total_minor,
                                charge_count, refund_count, chargeback_count
                         FROM rollup_course WHERE day = ?1 ORDER BY product_id, currency",
                    )?
                    .query_map([&d], |r| {
                        Ok(CourseDay {
                            day: d.clone(),
                            product_id: r.get(0)?,
                            currency: r.get(1)?,
                            charges_minor: r.get(2)?,
                            refunds_minor: r.get(3)?,
                            chargebacks_minor: r.get(4)?,
                            total_minor: r.get(5)?,
                            charge_count: r.get(6)?,
                            refund_count: r.get(7)?,
                            chargeback_count: r.get(8)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                let subscriptions = c
                    .prepare_cached(
                        "SELECT currency, active, mrr_minor, churned, started
                         FROM rollup_subscription WHERE day = ?1 ORDER BY currency",
                    )?
                    .query_map([&d], |r| {
                        Ok(SubscriptionDay {
                            day: d.clone(),
                            currency: r.get(0)?,
                            active: r.get(1)?,
                            mrr_minor: r.get(2)?,
                            churned: r.get(3)?,
                            started: r.get(4)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Some(DayRollup { day, courses, subscriptions }))
            })
            .await
    }
}

/// One row of `SELECT {COLUMNS}`.
fn read_row(r: &rusqlite::Row) -> rusqlite::Result<RevenueRow> {
    let currency: String = r.get(10)?;
    let kind: String = r.get(1)?;
    Ok(RevenueRow {
        key: r.get(0)?,
        kind: RevenueKind::parse(&kind).unwrap_or(RevenueKind::Charge),
        transaction: r.get(2)?,
        event_id: r.get(3)?,
        product_id: r.get(4)?,
        buyer_email: r.get(5)?,
        subscriber_code: r.get(6)?,
        recurrence: r.get(7)?,
        gross: Money { minor: r.get(8)?, currency: currency.clone() },
        producer_net: match (r.get::<_, Option<i64>>(9)?, r.get::<_, Option<String>>(13)?) {
            (Some(minor), net_currency) => Some(Money { minor, currency: net_currency.unwrap_or(currency) }),
            (None, _) => None,
        },
        occurred_at: r.get(11)?,
        paid_until: r.get(12)?,
    })
}
