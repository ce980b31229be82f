//! Course links: which TalentLMS courses a Hotmart product unlocks, and for how long.

use rusqlite::{OptionalExtension, params};
use tollgate_workflows::{AccessPolicy, CourseLink, ProductId};

use crate::db::{Db, now_ms};

#[derive(Clone)]
pub struct Links {
    db: Db,
}

impl Links {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Creates or replaces the link of `link.product_id`.
    pub async fn upsert(&self, link: CourseLink) -> anyhow::Result<()> {
        let courses = serde_json::to_string(&link.courses)?;
        let policy = serde_json::to_string(&link.policy)?;
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT INTO course_links (product_id, courses, policy, updated_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(product_id) DO UPDATE SET courses = excluded.courses, policy = excluded.policy,
                     updated_at = excluded.updated_at",
                    params![link.product_id.0, courses, policy, now_ms()],
                )?;
                Ok(())
            })
            .await
    }

    pub async fn get(&self, product: ProductId) -> anyhow::Result<Option<CourseLink>> {
        self.db
            .call(move |c| {
                let row = c
                    .query_row(
                        "SELECT product_id, courses, policy FROM course_links WHERE product_id = ?1",
                        [product.0],
                        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)),
                    )
                    .optional()?;
                row.map(decode).transpose()
            })
            .await
    }

    pub async fn list(&self) -> anyhow::Result<Vec<CourseLink>> {
        self.db
            .call(|c| {
                let mut st =
                    c.prepare("SELECT product_id, courses, policy FROM course_links ORDER BY product_id")?;
                let rows = st.query_map([], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
                })?;
                rows.map(|r| decode(r?)).collect()
            })
            .await
    }

    /// Returns whether a link existed.
    pub async fn remove(&self, product: ProductId) -> anyhow::Result<bool> {
        self.db
            .call(move |c| Ok(c.execute("DELETE FROM course_links WHERE product_id = ?1", [product.0])? > 0))
            .await
    }
}

fn decode((product, courses, policy): (i64, String, String)) -> anyhow::Result<CourseLink> {
    Ok(CourseLink {
        product_id: ProductId(product),
        courses: serde_json::from_str(&courses)?,
        policy: serde_json::from_str::<AccessPolicy>(&policy)?,
    })
}
