//! Enroll and unenroll with the grants, as plain functions (the activities wrap them, the
//! concurrency tests call them directly).
//!
//! Two keys can share a course for one user. The store serialises the decisions and the
//! release re-checks after the unenroll: an enroll by another key that lands while the
//! unenroll is in flight ("already enrolled", then removed) is enrolled again before this
//! key's grant goes, so the course ends enrolled while any grant holds it.

use tollgate_store::{DocStore, Release};
use tollgate_workflows::acts::Enrollment;

use crate::Pace;

/// Why an enrollment call failed: TalentLMS's error, or the store's.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("TalentLMS {0}: {1}")]
    TalentLms(&'static str, talentlms::Error),
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

fn ids(e: &Enrollment) -> (talentlms::UserId, talentlms::CourseId) {
    (talentlms::UserId(e.user_id.clone()), talentlms::CourseId(e.course_id.clone()))
}

/// Records the grant (the intent), then enrolls; "already enrolled" is success.
pub async fn enroll(
    docs: &DocStore,
    client: &talentlms::Client,
    pace: &Pace,
    e: &Enrollment,
) -> Result<talentlms::EnrollOutcome, Failure> {
    // Grant first: an enroll TalentLMS applies but reports as failed is still released
    // by a later revoke, which lists this key's grants.
    docs.grant(&e.user_id, &e.course_id, &e.workflow_id).await?;
    call_enroll(client, pace, e).await
}

/// [`enroll`] with a user id that may be stale: `false` (and no grant left behind) when
/// TalentLMS knows no such user.
pub async fn enroll_known(
    docs: &DocStore,
    client: &talentlms::Client,
    pace: &Pace,
    e: &Enrollment,
) -> Result<bool, Failure> {
    match enroll(docs, client, pace, e).await {
        Ok(_) => Ok(true),
        Err(Failure::TalentLms(_, err)) if err.is_unknown_user() => {
            docs.drop_grant(&e.user_id, &e.course_id, &e.workflow_id).await?;
            Ok(false)
        }
        Err(f) => Err(f),
    }
}

async fn call_enroll(
    client: &talentlms::Client,
    pace: &Pace,
    e: &Enrollment,
) -> Result<talentlms::EnrollOutcome, Failure> {
    let (user, course) = ids(e);
    pace.wait().await;
    let outcome = client.enroll(&user, &course).await;
    crate::metrics::talentlms_call("enroll", &outcome);
    outcome.map_err(|err| Failure::TalentLms("enroll", err))
}

/// Drops this key's grant; unenrolls only when it was the last one. Returns what
/// happened, for the decision log.
pub async fn unenroll(
    docs: &DocStore,
    client: &talentlms::Client,
    pace: &Pace,
    e: &Enrollment,
) -> Result<String, Failure> {
    let mut unenrolled = false;
    loop {
        match docs.release(&e.user_id, &e.course_id, &e.workflow_id).await? {
            Release::NotHeld if unenrolled => return Ok(format!("unenrolled from course {}", e.course_id)),
            Release::NotHeld => return Ok("not granted by this purchase; left as is".into()),
            Release::StillGranted { by } => return Ok(format!("kept: still granted by {by}")),
            Release::Reclaim { by } => {
                // Our unenroll (this attempt's or a lost earlier one's) may have undone
                // `by`'s enroll.
                call_enroll(client, pace, e).await?;
                docs.drop_grant(&e.user_id, &e.course_id, &e.workflow_id).await?;
                tracing::info!(user = %e.user_id, course = %e.course_id, %by, "enrolled again for a grant made during the unenroll");
                return Ok(format!("kept: granted by {by} meanwhile (enrolled again)"));
            }
            Release::Last if unenrolled => {
                docs.drop_grant(&e.user_id, &e.course_id, &e.workflow_id).await?;
            }
            Release::Last => {
                let (user, course) = ids(e);
                pace.wait().await;
                let outcome = client.unenroll(&user, &course).await;
                crate::metrics::talentlms_call("unenroll", &outcome);
                let outcome = outcome.map_err(|err| Failure::TalentLms("unenroll", err))?;
                tracing::info!(user = %e.user_id, course = %e.course_id, ?outcome, "unenroll");
                unenrolled = true;
            }
        }
    }
}
