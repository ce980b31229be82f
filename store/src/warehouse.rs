//! The embedded revenue warehouse: one row per transaction and kind.

use rusqlite::params;
use tollgate_workflows::money::Money;
use tollgate_workflows::revenue::{RevenueKind, RevenueRow};

use crate::db::{Db, now_ms};

#[derive(Clone)]
pub struct Warehouse {
    db: Db,
}

impl Warehouse {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Inserts the row unless its key exists. Returns whether it was inserted.
    pub async fn record(&self, row: RevenueRow) -> anyhow::Result<bool> {
        self.db
            .call(move |c| {
                let n = c.execute(
                    "INSERT INTO revenue (key, kind, txn, event_id, product_id, buyer_email, subscriber_code, recurrence,
                                          gross_minor, net_minor, currency, occurred_at, recorded_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                     ON CONFLICT(key) DO NOTHING",
                    params![
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
                        now_ms(),
                    ],
                )?;
                Ok(n == 1)
            })
            .await
    }

    /// All rows, oldest first.
    pub async fn rows(&self) -> anyhow::Result<Vec<RevenueRow>> {
        self.db
            .call(|c| {
                let mut st = c.prepare(
                    "SELECT key, kind, txn, event_id, product_id, buyer_email, subscriber_code, recurrence,
                            gross_minor, net_minor, currency, occurred_at FROM revenue ORDER BY occurred_at, key",
                )?;
                let rows = st.query_map([], |r| {
                    let currency: String = r.get(10)?;
                    let kind: String = r.get(1)?;
                    Ok(RevenueRow {
                        key: r.get(0)?,
                        kind: match kind.as_str() {
                            "refund" => RevenueKind::Refund,
                            "chargeback" => RevenueKind::Chargeback,
                            _ => RevenueKind::Charge,
                        },
                        transaction: r.get(2)?,
                        event_id: r.get(3)?,
                        product_id: r.get(4)?,
                        buyer_email: r.get(5)?,
                        subscriber_code: r.get(6)?,
                        recurrence: r.get(7)?,
                        gross: Money { minor: r.get(8)?, currency: currency.clone() },
                        producer_net: r.get::<_, Option<i64>>(9)?.map(|minor| Money { minor, currency }),
                        occurred_at: r.get(11)?,
                    })
                })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }
}
