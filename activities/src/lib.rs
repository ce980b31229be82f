//! Every side effect Tollgate performs, as Temporal activities. Each is idempotent:
//! TalentLMS "already enrolled"/"not enrolled" count as success, users are found before
//! they are created, and revenue rows are keyed.

pub mod enrolment;
pub mod hotmart;
pub mod metrics;
pub mod revenue_reconcile;

use std::sync::Arc;
use std::time::Duration;

use temporalio_macros::activities;
use temporalio_sdk::ApplicationFailure;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tollgate_domain::metrics::{Day, DayRollup, ReconcileReport};
use tollgate_domain::revenue::RevenueRow;
use tollgate_domain::{CourseLink, ProductId};
use tollgate_store::{DocStore, Grant, LedgerEntry, StudentAccess};
use tollgate_warehouse::Warehouse;
use tollgate_workflows::acts::{self, Enrollment, NewStudent, ReconcileWindow};

/// Activities backed by the document store and warehouse; run on the main task queue.
pub struct StoreActivities {
    pub docs: DocStore,
    pub warehouse: Warehouse,
}

#[activities]
impl StoreActivities {
    #[activity(definition = acts::LoadLink)]
    pub async fn load_link(
        self: Arc<Self>,
        _ctx: ActivityContext,
        product: ProductId,
    ) -> Result<Option<CourseLink>, ActivityError> {
        Ok(self.docs.link(product).await?)
    }

    #[activity(definition = acts::LoadLedger)]
    pub async fn load_ledger(
        self: Arc<Self>,
        _ctx: ActivityContext,
        workflow_id: String,
    ) -> Result<Option<LedgerEntry>, ActivityError> {
        Ok(self.docs.ledger(&workflow_id).await?)
    }

    #[activity(definition = acts::SaveLedger)]
    pub async fn save_ledger(
        self: Arc<Self>,
        _ctx: ActivityContext,
        entry: LedgerEntry,
    ) -> Result<(), ActivityError> {
        Ok(self.docs.put_ledger(entry).await?)
    }

    #[activity(definition = acts::KnownUser)]
    pub async fn known_user(
        self: Arc<Self>,
        _ctx: ActivityContext,
        email: String,
    ) -> Result<Option<String>, ActivityError> {
        let mut records = self.docs.access_by_email(&email).await?;
        records.sort_by_key(|r| std::cmp::Reverse(r.updated_at));
        Ok(records.into_iter().find_map(|r| r.talentlms_user_id))
    }

    #[activity(definition = acts::HeldGrants)]
    pub async fn held_grants(
        self: Arc<Self>,
        _ctx: ActivityContext,
        workflow_id: String,
    ) -> Result<Vec<Grant>, ActivityError> {
        Ok(self.docs.held_grants(&workflow_id).await?)
    }

    #[activity(definition = acts::RecordAccess)]
    pub async fn record_access(
        self: Arc<Self>,
        _ctx: ActivityContext,
        a: StudentAccess,
    ) -> Result<(), ActivityError> {
        let state = a.state.clone();
        // Each decision once: a retried write of the same record is not another one.
        if self.docs.put_access(a).await? {
            metrics::DECISIONS.with_label_values(&[&state]).inc();
        }
        Ok(())
    }

    #[activity(definition = acts::RecordRevenue)]
    pub async fn record_revenue(
        self: Arc<Self>,
        _ctx: ActivityContext,
        row: RevenueRow,
    ) -> Result<bool, ActivityError> {
        let inserted = self.warehouse.record(row.clone()).await?;
        if inserted {
            metrics::REVENUE_ROWS.with_label_values(&[row.kind.as_str()]).inc();
        }
        tracing::info!(key = %row.key, gross = %row.gross, inserted, "revenue row");
        Ok(inserted)
    }

    #[activity(definition = acts::RollupDay)]
    pub async fn rollup_day(
        self: Arc<Self>,
        _ctx: ActivityContext,
        day: Day,
    ) -> Result<DayRollup, ActivityError> {
        let rollup = self.warehouse.rollup_day(day).await?;
        tracing::info!(%day, courses = rollup.courses.len(), "daily rollup written");
        Ok(rollup)
    }

    #[activity(definition = acts::DeliverHotmart)]
    pub async fn deliver_hotmart(
        self: Arc<Self>,
        _ctx: ActivityContext,
        d: acts::HotmartDelivery,
    ) -> Result<acts::DeliveryReport, ActivityError> {
        Ok(hotmart::deliver(&self.docs, &d).await?)
    }

    #[activity(definition = acts::SweepHotmart)]
    pub async fn sweep_hotmart(
        self: Arc<Self>,
        _ctx: ActivityContext,
        r: acts::SweepRequest,
    ) -> Result<tollgate_domain::sweep::SweepBatch, ActivityError> {
        Ok(hotmart::sweep(&self.docs, &r).await?)
    }

    #[activity(definition = acts::LinkedCourses)]
    pub async fn linked_courses(
        self: Arc<Self>,
        _ctx: ActivityContext,
        _: (),
    ) -> Result<Vec<String>, ActivityError> {
        let mut courses = std::collections::BTreeSet::new();
        let mut after = None;
        loop {
            let page = self.docs.links_page(after, 500).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.product_id);
            courses.extend(page.into_iter().flat_map(|l| l.courses));
        }
        Ok(courses.into_iter().collect())
    }

    #[activity(definition = acts::CourseGrants)]
    pub async fn course_grants(
        self: Arc<Self>,
        _ctx: ActivityContext,
        course: String,
    ) -> Result<Vec<tollgate_domain::ledger::CourseGrant>, ActivityError> {
        Ok(self.docs.course_grants(&course).await?)
    }

    #[activity(definition = acts::SaveAuditReport)]
    pub async fn save_audit_report(
        self: Arc<Self>,
        _ctx: ActivityContext,
        r: tollgate_domain::audit::AuditReport,
    ) -> Result<(), ActivityError> {
        tracing::info!(id = %r.id, summary = %r.summary(), "TalentLMS audit");
        let doc = serde_json::to_string(&r).map_err(anyhow::Error::from)?;
        Ok(self.docs.put_report(tollgate_domain::audit::REPORT_KIND, &r.id, r.started_at_ms, doc).await?)
    }

    #[activity(definition = acts::SaveProductNames)]
    pub async fn save_product_names(
        self: Arc<Self>,
        _ctx: ActivityContext,
        names: Vec<(i64, String)>,
    ) -> Result<(), ActivityError> {
        for (product, name) in names.into_iter().filter(|(_, n)| !n.trim().is_empty()) {
            self.docs.put_product_name(tollgate_domain::ProductId(product), name.trim().to_string()).await?;
        }
        Ok(())
    }

    #[activity(definition = acts::SaveHotmartReport)]
    pub async fn save_hotmart_report(
        self: Arc<Self>,
        _ctx: ActivityContext,
        r: tollgate_domain::sweep::HotmartReconcileReport,
    ) -> Result<(), ActivityError> {
        tracing::info!(id = %r.id, summary = %r.summary(), "Hotmart reconciliation");
        let doc = serde_json::to_string(&r).map_err(anyhow::Error::from)?;
        Ok(self.docs.put_report(tollgate_domain::sweep::REPORT_KIND, &r.id, r.started_at_ms, doc).await?)
    }

    #[activity(definition = acts::ReconcileRevenue)]
    pub async fn reconcile(
        self: Arc<Self>,
        _ctx: ActivityContext,
        window: ReconcileWindow,
    ) -> Result<ReconcileReport, ActivityError> {
        let report = revenue_reconcile::run(&self.docs, &self.warehouse, &window).await?;
        for (kind, n) in
            [("missing", &report.missing), ("extra", &report.extra), ("differing", &report.differing)]
        {
            metrics::RECONCILE_DIFFERENCES.with_label_values(&[kind]).inc_by(n.len() as u64);
        }
        tracing::info!(?report, "revenue reconciliation");
        Ok(report)
    }
}

/// TalentLMS activities; run on their own task queue, whose dispatch rate the server
/// caps at `TALENTLMS_MAX_RPS` across all workers. The server's limiter allows short
/// bursts, so each worker also spaces its own calls (`pace`): one worker never exceeds
/// the rate in any one-second window.
pub struct TalentLmsActivities {
    pub client: talentlms::Client,
    pub pace: Pace,
    pub docs: DocStore,
}

/// Spaces calls at least `interval` apart, in arrival order.
pub struct Pace {
    next: tokio::sync::Mutex<tokio::time::Instant>,
    interval: Duration,
}

impl Pace {
    pub fn per_second(rate: f64) -> Self {
        // 3% slack so network jitter cannot squeeze two calls into one window.
        let interval = Duration::from_secs_f64(1.03 / rate);
        Self { next: tokio::sync::Mutex::new(tokio::time::Instant::now()), interval }
    }

    pub async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let slot = (*next).max(tokio::time::Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[activities]
impl TalentLmsActivities {
    #[activity(definition = acts::FindUser)]
    pub async fn find_user(
        self: Arc<Self>,
        _ctx: ActivityContext,
        email: String,
    ) -> Result<Option<String>, ActivityError> {
        self.pace.wait().await;
        let user = self.client.find_user_by_email(&email).await;
        metrics::talentlms_call("find_user", &user);
        let user = user.map_err(|e| failure(enrolment::Failure::TalentLms("find user", e)))?;
        Ok(user.map(|u| u.id.to_string()))
    }

    #[activity(definition = acts::CreateUser)]
    pub async fn create_user(
        self: Arc<Self>,
        _ctx: ActivityContext,
        n: NewStudent,
    ) -> Result<Option<String>, ActivityError> {
        let s = &n.student;
        let new = talentlms::NewUser::for_student(&s.email, &s.first_name, &s.last_name, n.login_suffix);
        self.pace.wait().await;
        let created = self.client.create_user(&new).await;
        metrics::talentlms_call("create_user", &created);
        match created {
            Ok(user) => {
                tracing::info!(user = %user.id, "created TalentLMS user");
                Ok(Some(user.id.to_string()))
            }
            // Created meanwhile (another worker, or our own earlier attempt whose answer was lost).
            Err(e) if e.is_conflict() => Ok(None),
            Err(e) => Err(failure(enrolment::Failure::TalentLms("create user", e))),
        }
    }

    #[activity(definition = acts::CourseUsers)]
    pub async fn course_users(
        self: Arc<Self>,
        _ctx: ActivityContext,
        course: String,
    ) -> Result<Option<Vec<(String, String)>>, ActivityError> {
        self.pace.wait().await;
        let detail = self.client.course_users(&talentlms::CourseId(course)).await;
        metrics::talentlms_call("course_users", &detail);
        let detail = detail.map_err(|e| failure(enrolment::Failure::TalentLms("list course users", e)))?;
        Ok(detail.map(|d| d.users.into_iter().map(|u| (u.id.0, u.role)).collect()))
    }

    #[activity(definition = acts::Enroll)]
    pub async fn enroll(self: Arc<Self>, _ctx: ActivityContext, e: Enrollment) -> Result<(), ActivityError> {
        let outcome = enrolment::enroll(&self.docs, &self.client, &self.pace, &e).await.map_err(failure)?;
        tracing::info!(user = %e.user_id, course = %e.course_id, ?outcome, "enroll");
        Ok(())
    }

    #[activity(definition = acts::EnrollKnown)]
    pub async fn enroll_known(
        self: Arc<Self>,
        _ctx: ActivityContext,
        e: Enrollment,
    ) -> Result<bool, ActivityError> {
        let known =
            enrolment::enroll_known(&self.docs, &self.client, &self.pace, &e).await.map_err(failure)?;
        tracing::info!(user = %e.user_id, course = %e.course_id, known, "enroll with a known user id");
        Ok(known)
    }

    #[activity(definition = acts::Unenroll)]
    pub async fn unenroll(
        self: Arc<Self>,
        _ctx: ActivityContext,
        e: Enrollment,
    ) -> Result<String, ActivityError> {
        enrolment::unenroll(&self.docs, &self.client, &self.pace, &e).await.map_err(failure)
    }
}

/// Retryable errors come back after the server's advertised reset; the rest stop retrying
/// with TalentLMS's own message.
fn failure(f: enrolment::Failure) -> ActivityError {
    let msg = f.to_string();
    match f {
        enrolment::Failure::TalentLms(_, e) => retry_after_reset(msg, e.is_retryable(), e.retry_after()),
        // The store is ours: retry until it answers.
        enrolment::Failure::Store(e) => e.into(),
    }
}

/// An API's error as an activity failure: retried (after the advertised reset, when the
/// API gave one) or, when no retry can succeed, final with the API's message.
pub(crate) fn retry_after_reset(msg: String, retryable: bool, reset: Option<Duration>) -> ActivityError {
    if retryable {
        tracing::warn!("{msg} (will retry)");
        let delay = reset.map(|d| d.max(Duration::from_millis(100)));
        ActivityError::application(ApplicationFailure::builder(msg).maybe_next_retry_delay(delay).build())
    } else {
        tracing::error!("{msg} (not retryable)");
        ActivityError::application(ApplicationFailure::non_retryable(msg))
    }
}
