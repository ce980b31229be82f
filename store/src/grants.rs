//! Which workflow granted which TalentLMS enrollment. One student can hold a course
//! through several purchases (a renewal bought as a new order, two products sharing a
//! course): the course is removed from TalentLMS only when the last grant goes.

use rusqlite::{OptionalExtension, params};

use crate::db::{Db, now_ms};

#[derive(Clone)]
pub struct Grants {
    db: Db,
}

/// What an unenroll should do at TalentLMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release {
    /// This workflow holds no grant: nothing to do.
    NotHeld,
    /// Other workflows still grant the course: keep it; this grant was dropped.
    StillGranted { by: String },
    /// This is the last grant: unenroll, then call [`Grants::drop_grant`].
    Last,
}

impl Grants {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub async fn grant(&self, user: &str, course: &str, workflow: &str) -> anyhow::Result<()> {
        let (u, c, w) = (user.to_string(), course.to_string(), workflow.to_string());
        self.db
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO grants (user_id, course_id, workflow_id, granted_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT DO NOTHING",
                    params![u, c, w, now_ms()],
                )?;
                Ok(())
            })
            .await
    }

    /// Decides an unenroll. The workflow's own grant is kept when it is the last one, so
    /// a retry after a failed TalentLMS call still sees it.
    pub async fn release(&self, user: &str, course: &str, workflow: &str) -> anyhow::Result<Release> {
        let (u, c, w) = (user.to_string(), course.to_string(), workflow.to_string());
        self.db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let held: bool = tx
                    .query_row(
                        "SELECT 1 FROM grants WHERE user_id = ?1 AND course_id = ?2 AND workflow_id = ?3",
                        params![u, c, w],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some();
                if !held {
                    return Ok(Release::NotHeld);
                }
                let other: Option<String> = tx
                    .query_row(
                        "SELECT workflow_id FROM grants WHERE user_id = ?1 AND course_id = ?2 AND workflow_id <> ?3
                         ORDER BY granted_at LIMIT 1",
                        params![u, c, w],
                        |r| r.get(0),
                    )
                    .optional()?;
                let out = match other {
                    Some(by) => {
                        tx.execute(
                            "DELETE FROM grants WHERE user_id = ?1 AND course_id = ?2 AND workflow_id = ?3",
                            params![u, c, w],
                        )?;
                        Release::StillGranted { by }
                    }
                    None => Release::Last,
                };
                tx.commit()?;
                Ok(out)
            })
            .await
    }

    pub async fn drop_grant(&self, user: &str, course: &str, workflow: &str) -> anyhow::Result<()> {
        let (u, c, w) = (user.to_string(), course.to_string(), workflow.to_string());
        self.db
            .call(move |conn| {
                conn.execute(
                    "DELETE FROM grants WHERE user_id = ?1 AND course_id = ?2 AND workflow_id = ?3",
                    params![u, c, w],
                )?;
                Ok(())
            })
            .await
    }
}
