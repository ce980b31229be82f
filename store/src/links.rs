//! Course links: which TalentLMS courses a Hotmart product unlocks, and for how long.

use rusqlite::{OptionalExtension, params};
use tollgate_domain::{AccessPolicy, CourseLink, ProductId};

use crate::StoreError;
use crate::db::{Db, now_ms};

#[derive(Clone)]
pub struct Links {
    db: Db,
}

impl Links {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Creates or replaces the link of `link.product_id`; returns the previous one.
    pub async fn put(&self, link: CourseLink) -> anyhow::Result<Option<CourseLink>> {
        let courses = serde_json::to_string(&link.courses)?;
        let policy = serde_json::to_string(&link.policy)?;
        self.db
            .call(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let previous = get_in(&tx, link.product_id)?;
                tx.execute(
                    "INSERT INTO course_links (product_id, courses, policy, updated_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(product_id) DO UPDATE SET courses = excluded.courses, policy = excluded.policy,
                     updated_at = excluded.updated_at",
                    params![link.product_id.0, courses, policy, now_ms()],
                )?;
                tx.commit()?;
                Ok(previous)
            })
            .await
    }

    /// Creates the link only if the product has none.
    pub async fn create(&self, link: CourseLink) -> Result<(), StoreError> {
        let courses = serde_json::to_string(&link.courses).map_err(anyhow::Error::from)?;
        let policy = serde_json::to_string(&link.policy).map_err(anyhow::Error::from)?;
        let inserted = self
            .db
            .call(move |c| {
                Ok(c.execute(
                    "INSERT INTO course_links (product_id, courses, policy, updated_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(product_id) DO NOTHING",
                    params![link.product_id.0, courses, policy, now_ms()],
                )? == 1)
            })
            .await?;
        if inserted { Ok(()) } else { Err(StoreError::Conflict) }
    }

    pub async fn get(&self, product: ProductId) -> anyhow::Result<Option<CourseLink>> {
        self.db.call(move |c| get_in(c, product)).await
    }

    /// Links ordered by product id, those after `after`, at most `limit`.
    pub async fn page(&self, after: Option<ProductId>, limit: usize) -> anyhow::Result<Vec<CourseLink>> {
        self.db
            .call(move |c| {
                let mut st = c.prepare(
                    "SELECT product_id, courses, policy FROM course_links WHERE product_id > ?1
                     ORDER BY product_id LIMIT ?2",
                )?;
                let rows = st.query_map(params![after.map_or(i64::MIN, |p| p.0), limit as i64], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
                })?;
                rows.map(|r| decode(r?)).collect()
            })
            .await
    }

    /// Deletes the link; returns it if there was one.
    pub async fn remove(&self, product: ProductId) -> anyhow::Result<Option<CourseLink>> {
        self.db
            .call(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let previous = get_in(&tx, product)?;
                tx.execute("DELETE FROM course_links WHERE product_id = ?1", [product.0])?;
                tx.commit()?;
                Ok(previous)
            })
            .await
    }
}

fn get_in(c: &rusqlite::Connection, product: ProductId) -> anyhow::Result<Option<CourseLink>> {
    let row = c
        .query_row(
            "SELECT product_id, courses, policy FROM course_links WHERE product_id = ?1",
            [product.0],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)),
        )
        .optional()?;
    row.map(decode).transpose()
}

fn decode((product, courses, policy): (i64, String, String)) -> anyhow::Result<CourseLink> {
    Ok(CourseLink {
        product_id: ProductId(product),
        courses: serde_json::from_str(&courses)?,
        policy: serde_json::from_str::<AccessPolicy>(&policy)?,
    })
}
