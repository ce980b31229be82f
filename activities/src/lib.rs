//! Every side effect Tollgate performs, as Temporal activities. Each is idempotent:
//! TalentLMS "already enrolled"/"not enrolled" count as success, users are found before
//! they are created, and revenue rows are keyed.

pub mod config;

use std::sync::Arc;
use std::time::Duration;

use temporalio_macros::activities;
use temporalio_sdk::ApplicationFailure;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tollgate_store::{Links, Warehouse};
use tollgate_workflows::acts::{Enrollment, StudentRef};
use tollgate_workflows::revenue::RevenueRow;
use tollgate_workflows::{CourseLink, ProductId};

/// Activities backed by the document store and warehouse; run on the main task queue.
pub struct StoreActivities {
    pub links: Links,
    pub warehouse: Warehouse,
}

#[activities]
impl StoreActivities {
    #[activity(name = "load_link")]
    pub async fn load_link(self: Arc<Self>, _ctx: ActivityContext, product: ProductId) -> Result<Option<CourseLink>, ActivityError> {
        Ok(self.links.get(product).await?)
    }

    #[activity(name = "record_revenue")]
    pub async fn record_revenue(self: Arc<Self>, _ctx: ActivityContext, row: RevenueRow) -> Result<bool, ActivityError> {
        let inserted = self.warehouse.record(row.clone()).await?;
        tracing::info!(key = %row.key, gross = %row.gross, inserted, "revenue row");
        Ok(inserted)
    }
}

/// TalentLMS activities; run on their own task queue, whose dispatch rate the server
/// caps at `TALENTLMS_MAX_RPS` across all workers.
pub struct TalentLmsActivities {
    pub client: talentlms::Client,
}

#[activities]
impl TalentLmsActivities {
    #[activity(name = "ensure_user")]
    pub async fn ensure_user(self: Arc<Self>, _ctx: ActivityContext, s: StudentRef) -> Result<String, ActivityError> {
        let user = self
            .client
            .ensure_user(&s.email, &s.first_name, &s.last_name)
            .await
            .map_err(|e| failure("find or create user", e))?;
        Ok(user.id.to_string())
    }

    #[activity(name = "enroll")]
    pub async fn enroll(self: Arc<Self>, _ctx: ActivityContext, e: Enrollment) -> Result<(), ActivityError> {
        let outcome = self
            .client
            .enroll(&talentlms::UserId(e.user_id.clone()), &talentlms::CourseId(e.course_id.clone()))
            .await
            .map_err(|err| failure("enroll", err))?;
        tracing::info!(user = %e.user_id, course = %e.course_id, ?outcome, "enroll");
        Ok(())
    }

    #[activity(name = "unenroll")]
    pub async fn unenroll(self: Arc<Self>, _ctx: ActivityContext, e: Enrollment) -> Result<(), ActivityError> {
        let outcome = self
            .client
            .unenroll(&talentlms::UserId(e.user_id.clone()), &talentlms::CourseId(e.course_id.clone()))
            .await
            .map_err(|err| failure("unenroll", err))?;
        tracing::info!(user = %e.user_id, course = %e.course_id, ?outcome, "unenroll");
        Ok(())
    }
}

/// Retryable errors come back after the server's advertised reset; the rest stop retrying
/// with TalentLMS's own message.
fn failure(what: &str, e: talentlms::Error) -> ActivityError {
    let msg = format!("TalentLMS {what}: {e}");
    if e.is_retryable() {
        tracing::warn!("{msg} (will retry)");
        let delay = e.retry_after().map(|d| d.max(Duration::from_millis(100)));
        ActivityError::application(ApplicationFailure::builder(msg).maybe_next_retry_delay(delay).build())
    } else {
        tracing::error!("{msg} (not retryable)");
        ActivityError::application(ApplicationFailure::non_retryable(msg))
    }
}
