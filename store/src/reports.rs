//! Run reports (Hotmart reconciliation, TalentLMS audit) and Hotmart product names
//! (SQLite). Reports are kept as JSON documents by kind, so each job owns its shape.

use rusqlite::params;
use tollgate_domain::ProductId;

use crate::db::{Db, now_ms};

#[derive(Clone)]
pub struct Reports {
    db: Db,
}

impl Reports {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Creates or replaces the report `id` of `kind`.
    pub async fn put(&self, kind: &str, id: &str, at_ms: i64, doc: String) -> anyhow::Result<()> {
        let (kind, id) = (kind.to_string(), id.to_string());
        self.db
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO reports (kind, id, at, doc) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (kind, id) DO UPDATE SET at = ?3, doc = ?4",
                    params![kind, id, at_ms, doc],
                )?;
                Ok(())
            })
            .await
    }

    /// The newest `limit` reports of `kind`, newest first.
    pub async fn latest(&self, kind: &str, limit: usize) -> anyhow::Result<Vec<String>> {
        let kind = kind.to_string();
        self.db
            .call(move |conn| {
                let mut st = conn
                    .prepare("SELECT doc FROM reports WHERE kind = ?1 ORDER BY at DESC, id DESC LIMIT ?2")?;
                let rows = st.query_map(params![kind, limit as i64], |r| r.get(0))?;
                Ok(rows.collect::<Result<Vec<String>, _>>()?)
            })
            .await
    }

    /// Records a product's name (the newest wins).
    pub async fn put_product_name(&self, product: ProductId, name: String) -> anyhow::Result<()> {
        self.db
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO product_names (product_id, name, updated_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (product_id) DO UPDATE SET name = ?2, updated_at = ?3 WHERE name <> ?2",
                    params![product.0, name, now_ms()],
                )?;
                Ok(())
            })
            .await
    }

    /// Every known product name, by product id.
    pub async fn product_names(&self) -> anyhow::Result<Vec<(ProductId, String)>> {
        self.db
            .call(|conn| {
                let mut st =
                    conn.prepare("SELECT product_id, name FROM product_names ORDER BY product_id")?;
                let rows = st.query_map([], |r| Ok((ProductId(r.get(0)?), r.get(1)?)))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }
}
