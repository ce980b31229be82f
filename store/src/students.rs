//! Students as operators and the API see them: per workflow (purchase or subscription),
//! the buyer, their TalentLMS user, the access state and courses. Written by the worker
//! whenever a decision changes; the live source of truth stays the workflow's `status`.

use rusqlite::{OptionalExtension, params};

use crate::StudentAccess;
use crate::db::Db;

#[derive(Clone)]
pub struct Students {
    db: Db,
}

impl Students {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Upserts the row of `(email, workflow_id)`; an older `updated_at` never overwrites a
    /// newer one (activity retries can arrive late).
    /// Whether it is a new decision: nothing stored for the key, or an older one.
    pub async fn put(&self, a: StudentAccess) -> anyhow::Result<bool> {
        let doc = serde_json::to_string(&a)?;
        self.db
            .call(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let stored: Option<i64> = tx
                    .query_row(
                        "SELECT updated_at FROM student_access WHERE email = ?1 AND workflow_id = ?2",
                        params![a.email, a.workflow_id],
                        |r| r.get(0),
                    )
                    .optional()?;
                tx.execute(
                    "INSERT INTO student_access (email, workflow_id, product_id, doc, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(email, workflow_id) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at,
                     product_id = excluded.product_id WHERE excluded.updated_at >= student_access.updated_at",
                    params![a.email, a.workflow_id, a.product_id, doc, a.updated_at],
                )?;
                tx.commit()?;
                Ok(stored.is_none_or(|t| a.updated_at > t))
            })
            .await
    }

    pub async fn by_email(&self, email: &str) -> anyhow::Result<Vec<StudentAccess>> {
        let email = email.to_string();
        self.db
            .call(move |c| {
                let mut st =
                    c.prepare_cached("SELECT doc FROM student_access WHERE email = ?1 ORDER BY workflow_id")?;
                let docs = st.query_map(params![email], |r| r.get::<_, String>(0))?;
                docs.map(|d| Ok(serde_json::from_str(&d?)?)).collect()
            })
            .await
    }

    /// The workflows of a product, ordered by workflow id, after `after`, at most `limit`.
    pub async fn by_product(
        &self,
        product: i64,
        after: Option<String>,
        limit: usize,
    ) -> anyhow::Result<Vec<StudentAccess>> {
        self.db
            .call(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT doc FROM student_access WHERE product_id = ?1 AND workflow_id > ?2
                     ORDER BY workflow_id LIMIT ?3",
                )?;
                let docs = st.query_map(params![product, after.unwrap_or_default(), limit as i64], |r| {
                    r.get::<_, String>(0)
                })?;
                docs.map(|d| Ok(serde_json::from_str(&d?)?)).collect()
            })
            .await
    }
}
