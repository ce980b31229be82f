//! Which workflow granted which TalentLMS enrollment. One student can hold a course
//! through several purchases (a renewal bought as a new order, two products sharing a
//! course): the course is removed from TalentLMS only when the last grant goes.
//!
//! A grant is written before the enroll call (the intent: an enroll TalentLMS applied but
//! reported as failed is still released later) and removed only after the unenroll.

use rusqlite::{OptionalExtension, params};
use tollgate_domain::ledger::{CourseGrant, Grant};

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
    /// This grant is being released and `by` granted the course meanwhile: the unenroll
    /// may have undone `by`'s enroll, so enroll again, then call [`Grants::drop_grant`].
    Reclaim { by: String },
    /// This is the last grant: unenroll, then release again (a grant made meanwhile
    /// answers `Reclaim`), then call [`Grants::drop_grant`].
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

    /// Decides an unenroll. The workflow's own grant is kept (marked releasing) when it
    /// is the last one, so a retry after a failed TalentLMS call still sees it.
    pub async fn release(&self, user: &str, course: &str, workflow: &str) -> anyhow::Result<Release> {
        let (u, c, w) = (user.to_string(), course.to_string(), workflow.to_string());
        self.db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let releasing: Option<bool> = tx
                    .query_row(
                        "SELECT releasing FROM grants WHERE user_id = ?1 AND course_id = ?2 AND workflow_id = ?3",
                        params![u, c, w],
                        |r| r.get(0),
                    )
                    .optional()?;
                let Some(releasing) = releasing else {
                    return Ok(Release::NotHeld);
                };
                let other: Option<String> = tx
                    .query_row(
                        "SELECT workflow_id FROM grants WHERE user_id = ?1 AND course_id = ?2 AND workflow_id <> ?3
                         ORDER BY granted_at LIMIT 1",
                        params![u, c, w],
                        |r| r.get(0),
                    )
                    .optional()?;
                let out = match other {
                    Some(by) if releasing => Release::Reclaim { by },
                    Some(by) => {
                        tx.execute(
                            "DELETE FROM grants WHERE user_id = ?1 AND course_id = ?2 AND workflow_id = ?3",
                            params![u, c, w],
                        )?;
                        Release::StillGranted { by }
                    }
                    None => {
                        tx.execute(
                            "UPDATE grants SET releasing = 1 WHERE user_id = ?1 AND course_id = ?2 AND workflow_id = ?3",
                            params![u, c, w],
                        )?;
                        Release::Last
                    }
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

    /// The grants of `course`, by user then workflow, releasing ones left out (their
    /// unenroll is under way).
    pub async fn for_course(&self, course: &str) -> anyhow::Result<Vec<CourseGrant>> {
        let c = course.to_string();
        self.db
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT user_id, workflow_id FROM grants WHERE course_id = ?1 AND releasing = 0
                     ORDER BY user_id, workflow_id",
                )?;
                let rows =
                    stmt.query_map([c], |r| Ok(CourseGrant { user_id: r.get(0)?, workflow_id: r.get(1)? }))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }

    /// The grants `workflow` holds, by user and course.
    pub async fn held(&self, workflow: &str) -> anyhow::Result<Vec<Grant>> {
        let w = workflow.to_string();
        self.db
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT user_id, course_id FROM grants WHERE workflow_id = ?1 ORDER BY user_id, course_id",
                )?;
                let rows = stmt.query_map([w], |r| Ok(Grant { user_id: r.get(0)?, course_id: r.get(1)? }))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }
}
