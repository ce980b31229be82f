//! Tollgate's document store.
//!
//! [`DocStore`] holds course links, students, the webhook journal and enrollment grants.
//! Two backends, chosen by configuration (`TOLLGATE_STORE`): the embedded SQLite file
//! (default; no server) and Firestore.

mod db;
pub mod firestore;
pub mod grants;
pub mod journal;
pub mod lease;
pub mod ledger;
pub mod links;
pub mod reports;
pub mod students;

use tollgate_domain::{CourseLink, HotmartEvent, ProductId};

pub use crate::firestore::FirestoreDocs;
pub use db::{Db, now_ms};
pub use grants::{Grants, Release};
pub use journal::{Appended, Journal, JournalEntry, JournalWindow, QuarantineStats, Quarantined};
pub use lease::{Leases, claim_sqlite_host, this_host};
pub use ledger::Ledger;
pub use links::Links;
pub use reports::Reports;
pub use students::Students;
pub use tollgate_domain::ledger::{CourseGrant, Grant, LedgerEntry};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The document already exists (a create that must not overwrite).
    #[error("already exists")]
    Conflict,
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

pub use tollgate_domain::student::StudentAccess;

/// Which backend, from the environment.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    /// `TOLLGATE_STORE=sqlite` (default), file `TOLLGATE_DB`.
    Sqlite { path: std::path::PathBuf },
    /// `TOLLGATE_STORE=firestore`, project `FIRESTORE_PROJECT_ID` (the emulator is used
    /// when `FIRESTORE_EMULATOR_HOST` is set).
    Firestore { project_id: String, database: Option<String> },
}

/// The embedded backend: every table in one SQLite file.
#[derive(Clone)]
pub struct SqliteDocs {
    pub db: Db,
    pub journal: Journal,
    pub links: Links,
    pub grants: Grants,
    pub ledger: Ledger,
    pub students: Students,
    pub reports: Reports,
    pub leases: Leases,
}

impl SqliteDocs {
    /// Opens the file; the journal's group-commit writer runs on the current runtime.
    pub fn open(path: impl AsRef<std::path::Path>) -> anyhow::Result<Self> {
        let db = Db::open(path)?;
        Ok(Self {
            journal: Journal::new(db.clone()),
            links: Links::new(db.clone()),
            grants: Grants::new(db.clone()),
            ledger: Ledger::new(db.clone()),
            students: Students::new(db.clone()),
            reports: Reports::new(db.clone()),
            leases: Leases::new(db.clone()),
            db,
        })
    }
}

#[derive(Clone)]
pub enum DocStore {
    Sqlite(SqliteDocs),
    Firestore(FirestoreDocs),
}

/// Forwards a call to whichever backend is configured: `$sqlite` with `$b` bound to the
/// [`SqliteDocs`], `$firestore` with it bound to the [`FirestoreDocs`].
macro_rules! dispatch {
    ($self:ident, $b:ident => $sqlite:expr, $firestore:expr) => {
        match $self {
            DocStore::Sqlite($b) => $sqlite,
            DocStore::Firestore($b) => $firestore,
        }
    };
}

impl DocStore {
    pub async fn open(cfg: &StoreConfig) -> anyhow::Result<Self> {
        match cfg {
            StoreConfig::Sqlite { path } => Ok(Self::Sqlite(SqliteDocs::open(path)?)),
            StoreConfig::Firestore { project_id, database } => {
                Ok(Self::Firestore(FirestoreDocs::open(project_id, database.as_deref()).await?))
            }
        }
    }

    pub fn backend(&self) -> &'static str {
        dispatch!(self, _b => "sqlite", "firestore")
    }

    // Course links.
    pub async fn link(&self, product: ProductId) -> anyhow::Result<Option<CourseLink>> {
        dispatch!(self, b => b.links.get(product).await, b.link(product).await)
    }
    pub async fn create_link(&self, link: CourseLink) -> Result<(), StoreError> {
        dispatch!(self, b => b.links.create(link).await, b.create_link(link).await)
    }
    /// Creates or replaces; returns the previous link.
    pub async fn put_link(&self, link: CourseLink) -> anyhow::Result<Option<CourseLink>> {
        dispatch!(self, b => b.links.put(link).await, b.put_link(link).await)
    }
    /// Returns the deleted link.
    pub async fn delete_link(&self, product: ProductId) -> anyhow::Result<Option<CourseLink>> {
        dispatch!(self, b => b.links.remove(product).await, b.delete_link(product).await)
    }
    /// Ordered by product id, strictly after `after`.
    pub async fn links_page(
        &self,
        after: Option<ProductId>,
        limit: usize,
    ) -> anyhow::Result<Vec<CourseLink>> {
        dispatch!(self, b => b.links.page(after, limit).await, b.links_page(after, limit).await)
    }

    // Webhook journal.
    pub async fn append(
        &self,
        event: HotmartEvent,
        workflow_id: Option<String>,
        body: String,
    ) -> anyhow::Result<Appended> {
        dispatch!(self, b => b.journal.append(event, workflow_id, body).await, b.append(event, workflow_id, body).await)
    }
    /// Records a delivery the parser could not read, quarantined with the reason.
    pub async fn append_quarantined(
        &self,
        key: String,
        event_name: Option<String>,
        body: String,
        reason: String,
        parser_version: u32,
    ) -> anyhow::Result<Appended> {
        dispatch!(self,
            b => b.journal.append_quarantined(key, event_name, body, reason, parser_version).await,
            b.append_quarantined(key, event_name, body, reason, parser_version).await)
    }
    /// Quarantined entries by key, after the cursor `after`.
    pub async fn quarantined(&self, after: Option<String>, limit: usize) -> anyhow::Result<Vec<Quarantined>> {
        dispatch!(self, b => b.journal.quarantined(after, limit).await, b.quarantined(after, limit).await)
    }
    pub async fn quarantine_stats(&self) -> anyhow::Result<QuarantineStats> {
        dispatch!(self, b => b.journal.quarantine_stats().await, b.quarantine_stats().await)
    }
    /// A redriven entry the parser now reads leaves quarantine (false: not quarantined).
    pub async fn release_quarantined(
        &self,
        key: String,
        event: HotmartEvent,
        workflow_id: Option<String>,
    ) -> anyhow::Result<bool> {
        dispatch!(self, b => b.journal.release(key, event, workflow_id).await, b.release_quarantined(key, event, workflow_id).await)
    }
    /// A redriven entry the parser still cannot read: the new reason and version.
    pub async fn requarantine(&self, key: String, reason: String, parser_version: u32) -> anyhow::Result<()> {
        dispatch!(self, b => b.journal.requarantine(key, reason, parser_version).await, b.requarantine(key, reason, parser_version).await)
    }
    /// Indexes the subscriber code of an event journaled elsewhere (Pub/Sub) under its workflow.
    pub async fn remember_subscriber(&self, event: &HotmartEvent, workflow_id: &str) -> anyhow::Result<()> {
        dispatch!(self,
            b => b.journal.remember_subscriber(event.clone(), workflow_id.to_string()).await,
            b.remember_subscriber(event, Some(workflow_id)).await)
    }
    /// The workflow a subscriber code belongs to, from earlier events that named both.
    pub async fn subscriber_workflow(&self, code: String) -> anyhow::Result<Option<String>> {
        dispatch!(self, b => b.journal.subscriber_workflow(code).await, b.subscriber_workflow(code).await)
    }
    pub async fn pending(&self, limit: usize) -> anyhow::Result<Vec<JournalEntry>> {
        dispatch!(self, b => b.journal.pending(limit).await, b.pending(limit).await)
    }
    pub async fn mark_forwarded(&self, keys: Vec<String>) -> anyhow::Result<()> {
        dispatch!(self, b => b.journal.mark_forwarded(keys).await, b.mark_forwarded(keys).await)
    }
    /// Routable entries received in `[from_ms, to_ms)`, forwarded or not, oldest first.
    pub async fn journal_between(&self, from_ms: i64, to_ms: i64) -> anyhow::Result<Vec<JournalEntry>> {
        Ok(self.journal_window(from_ms, to_ms).await?.entries)
    }
    /// The same entries, plus the keys of those this version cannot decode.
    pub async fn journal_window(&self, from_ms: i64, to_ms: i64) -> anyhow::Result<JournalWindow> {
        dispatch!(self, b => b.journal.between(from_ms, to_ms).await, b.journal_window(from_ms, to_ms).await)
    }
    /// (entries, waiting to be forwarded).
    pub async fn journal_counts(&self) -> anyhow::Result<(i64, i64)> {
        dispatch!(self, b => b.journal.counts().await, b.journal_counts().await)
    }

    // Leases.
    /// Takes or renews the lease `name` for `holder` for `ttl_ms`: true when `holder` has it.
    pub async fn acquire_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> anyhow::Result<bool> {
        let (name, holder) = (name.to_string(), holder.to_string());
        dispatch!(self, b => b.leases.acquire(name, holder, ttl_ms).await, b.acquire_lease(name, holder, ttl_ms).await)
    }
    /// Gives the lease up if `holder` has it.
    pub async fn release_lease(&self, name: &str, holder: &str) -> anyhow::Result<()> {
        let (name, holder) = (name.to_string(), holder.to_string());
        dispatch!(self, b => b.leases.release(name, holder).await, b.release_lease(name, holder).await)
    }

    // Enrollment grants.
    pub async fn grant(&self, user: &str, course: &str, workflow: &str) -> anyhow::Result<()> {
        dispatch!(self, b => b.grants.grant(user, course, workflow).await, b.grant(user, course, workflow).await)
    }
    pub async fn release(&self, user: &str, course: &str, workflow: &str) -> anyhow::Result<Release> {
        dispatch!(self, b => b.grants.release(user, course, workflow).await, b.release(user, course, workflow).await)
    }
    pub async fn drop_grant(&self, user: &str, course: &str, workflow: &str) -> anyhow::Result<()> {
        dispatch!(self, b => b.grants.drop_grant(user, course, workflow).await, b.drop_grant(user, course, workflow).await)
    }
    /// The grants a workflow key holds.
    pub async fn held_grants(&self, workflow: &str) -> anyhow::Result<Vec<Grant>> {
        dispatch!(self, b => b.grants.held(workflow).await, b.held_grants(workflow).await)
    }

    /// The grants of a course (not those being released), by user then workflow.
    pub async fn course_grants(&self, course: &str) -> anyhow::Result<Vec<CourseGrant>> {
        dispatch!(self, b => b.grants.for_course(course).await, b.course_grants(course).await)
    }

    // Entitlement ledger.
    pub async fn ledger(&self, workflow: &str) -> anyhow::Result<Option<LedgerEntry>> {
        dispatch!(self, b => b.ledger.get(workflow).await, b.ledger(workflow).await)
    }
    /// Merges into the stored entry.
    pub async fn put_ledger(&self, entry: LedgerEntry) -> anyhow::Result<()> {
        dispatch!(self, b => b.ledger.put(entry).await, b.put_ledger(entry).await)
    }

    // Run reports (JSON documents by kind) and product names.
    /// Creates or replaces the report `id` of `kind`.
    pub async fn put_report(&self, kind: &str, id: &str, at_ms: i64, doc: String) -> anyhow::Result<()> {
        dispatch!(self, b => b.reports.put(kind, id, at_ms, doc).await, b.put_report(kind, id, at_ms, doc).await)
    }
    /// The newest `limit` reports of `kind`, newest first.
    pub async fn latest_reports(&self, kind: &str, limit: usize) -> anyhow::Result<Vec<String>> {
        dispatch!(self, b => b.reports.latest(kind, limit).await, b.latest_reports(kind, limit).await)
    }
    /// Records a product's name (the newest wins).
    pub async fn put_product_name(&self, product: ProductId, name: String) -> anyhow::Result<()> {
        dispatch!(self, b => b.reports.put_product_name(product, name).await, b.put_product_name(product, name).await)
    }
    /// Every known product name, by product id.
    pub async fn product_names(&self) -> anyhow::Result<Vec<(ProductId, String)>> {
        dispatch!(self, b => b.reports.product_names().await, b.product_names().await)
    }

    // Students.
    /// Stores a student record unless a newer one is stored; returns whether it is a new
    /// decision (a retried write of the same one is not).
    pub async fn put_access(&self, a: StudentAccess) -> anyhow::Result<bool> {
        dispatch!(self, b => b.students.put(a).await, b.put_access(a).await)
    }
    pub async fn access_by_email(&self, email: &str) -> anyhow::Result<Vec<StudentAccess>> {
        dispatch!(self, b => b.students.by_email(email).await, b.access_by_email(email).await)
    }
    pub async fn access_by_product(
        &self,
        product: i64,
        after: Option<String>,
        limit: usize,
    ) -> anyhow::Result<Vec<StudentAccess>> {
        dispatch!(self, b => b.students.by_product(product, after, limit).await, b.access_by_product(product, after, limit).await)
    }
}
