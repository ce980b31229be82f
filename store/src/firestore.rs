//! The Firestore backend of [`DocStore`](crate::DocStore): the same operations and
//! semantics as the SQLite tables, as Firestore documents.
//!
//! # Documents
//!
//! Document ids are built from keys with [`doc_id`]: `/`, `%`, `|` and control characters
//! are percent-encoded, and the parts of a compound id are joined with `|`.
//!
//! | collection | id | fields |
//! | --- | --- | --- |
//! | `course_links` | `{product_id}` | `product_id` int, `courses` string array, `policy` (JSON of `AccessPolicy`), `updated_at` ms |
//! | `journal` | `{event_id}` | `received_at` ms, `kind`, `workflow_id` string or null, `routable` bool, `event` (JSON of `HotmartEvent`; empty when quarantined at ingress), `body` (as received, token removed), `deliveries` int, `forwarded` bool, `forwarded_at` ms or null, `quarantined` string or null, `held` bool (quarantined), `parser_version` int or null |
//! | `subscribers` | `{subscriber_code}` | `workflow_id`: routes events that name the subscriber but not the product |
//! | `grants` | `{user}\|{course}\|{workflow}` | `user`, `course`, `workflow`, `granted_at` ms, `releasing` bool |
//! | `ledger` | `{workflow_id}` | `facts` (JSON of `Facts`), `user_id` string or null, `updated_at` ms |
//! | `leases` | `{name}` | `holder` string, `expires_at` ms: the journal forwarder's lease (one holder per shard) |
//! | `student_access` | `{email}\|{workflow_id}` | the fields of [`StudentAccess`] (`email`, `workflow_id`, `product_id`, `updated_at`, ...) |
//! | `reports` | `{kind}\|{id}` | `kind`, `id`, `at` ms, `doc` (the report as JSON) |
//! | `product_names` | `{product_id}` | `product_id` int, `name`, `updated_at` ms |
//!
//! # Races
//!
//! Writes that must not race are create-if-absent (the `CreateDocument` RPC fails with
//! `ALREADY_EXISTS`) or read-then-write transactions: journal append (create; a resend
//! increments `deliveries` with a server-side transform, never a contended transaction), link create (create), link put / delete
//! (transaction, returning the previous link), grant (create), release and drop (transactions),
//! ledger put (transaction, merging facts),
//! student put (transaction, only when not older).
//!
//! # Indexes real Firestore needs
//!
//! Single-field indexes (automatic) serve the links page (`product_id >`, ordered by
//! `product_id`), `by_email` (equality on `email`; sorted here) and the grants of a user
//! and course (equalities on `user` and `course`; sorted here), of a workflow (`held_grants`,
//! equality on `workflow`) and of a course (`course_grants`, equality on `course`). These composite indexes
//! must be created (the emulator needs none):
//!
//! - `journal`: `forwarded ASC, routable ASC, quarantined ASC, received_at ASC, __name__ ASC`
//!   (`pending`, and the waiting count of `journal_counts`);
//! - `journal`: `routable ASC, received_at ASC, __name__ ASC` (`journal_between`, the
//!   revenue reconciliation);
//! - `journal`: `held ASC, received_at ASC` (the oldest quarantined entry, `quarantine_stats`);
//! - `student_access`: `product_id ASC, workflow_id ASC` (`access_by_product`);
//! - `reports`: `kind ASC, at DESC` (`latest_reports`).
//!
//! ```text
//! gcloud firestore indexes composite create --collection-group=journal \
//!   --field-config=field-path=forwarded,order=ascending --field-config=field-path=routable,order=ascending \
//!   --field-config=field-path=quarantined,order=ascending --field-config=field-path=received_at,order=ascending
//! gcloud firestore indexes composite create --collection-group=journal \
//!   --field-config=field-path=routable,order=ascending --field-config=field-path=received_at,order=ascending
//! gcloud firestore indexes composite create --collection-group=student_access \
//!   --field-config=field-path=product_id,order=ascending --field-config=field-path=workflow_id,order=ascending
//! ```

use firestore::errors::{BackoffError, FirestoreError, FirestoreErrorInTransaction};
use firestore::{FirestoreDb, FirestoreDbOptions, FirestoreWritePrecondition};
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use tollgate_domain::ledger::{CourseGrant, Grant, LedgerEntry};
use tollgate_domain::{AccessPolicy, CourseLink, Facts, HotmartEvent, ProductId};

use crate::db::now_ms;
use crate::{
    Appended, JournalEntry, JournalWindow, QuarantineStats, Quarantined, Release, StoreError, StudentAccess,
};

pub const COURSE_LINKS: &str = "course_links";
pub const JOURNAL: &str = "journal";
pub const GRANTS: &str = "grants";
pub const LEDGER: &str = "ledger";
pub const STUDENT_ACCESS: &str = "student_access";
pub const SUBSCRIBERS: &str = "subscribers";
pub const REPORTS: &str = "reports";
pub const PRODUCT_NAMES: &str = "product_names";
pub const LEASES: &str = "leases";

/// Firestore's `BatchWrite` takes at most 500 writes.
const MAX_BATCH: usize = 500;
/// Status codes of a write in a batch.
const OK: i32 = 0;
const NOT_FOUND: i32 = 5;

const ID_ESCAPES: &AsciiSet = &CONTROLS.add(b'/').add(b'%').add(b'|');

/// The document id of a key made of `parts`: each part percent-encoded (so it holds no
/// `/` and no `|`), joined with `|`. Ids Firestore reserves (`.`, `..`, `__*__`) and
/// empty ids are rejected rather than silently rewritten.
pub fn doc_id(parts: &[&str]) -> anyhow::Result<String> {
    let id =
        parts.iter().map(|p| utf8_percent_encode(p, ID_ESCAPES).to_string()).collect::<Vec<_>>().join("|");
    if id.is_empty()
        || id == "."
        || id == ".."
        || (id.len() >= 4 && id.starts_with("__") && id.ends_with("__"))
    {
        anyhow::bail!("{id:?} cannot be a Firestore document id");
    }
    Ok(id)
}

/// The key a single-part document id was built from.
fn key_of(id: &str) -> String {
    percent_decode_str(id).decode_utf8_lossy().into_owned()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LinkDoc {
    product_id: i64,
    courses: Vec<String>,
    /// `AccessPolicy` as JSON, as in SQLite (its tagged enum stays readable across versions).
    policy: String,
    updated_at: i64,
}

impl LinkDoc {
    fn of(link: &CourseLink) -> anyhow::Result<Self> {
        Ok(Self {
            product_id: link.product_id.0,
            courses: link.courses.clone(),
            policy: serde_json::to_string(&link.policy)?,
            updated_at: now_ms(),
        })
    }

    fn link(self) -> Result<CourseLink, serde_json::Error> {
        Ok(CourseLink {
            product_id: ProductId(self.product_id),
            courses: self.courses,
            policy: serde_json::from_str::<AccessPolicy>(&self.policy)?,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct JournalDoc {
    received_at: i64,
    kind: String,
    #[serde(default, with = "firestore::serialize_as_null")]
    workflow_id: Option<String>,
    routable: bool,
    event: String,
    body: String,
    deliveries: i64,
    forwarded: bool,
    #[serde(default, with = "firestore::serialize_as_null")]
    forwarded_at: Option<i64>,
    /// Null, not absent: `pending` filters on `quarantined == null`.
    #[serde(default, with = "firestore::serialize_as_null")]
    quarantined: Option<String>,
    /// Whether the entry is quarantined (an equality the quarantine listing can filter on).
    #[serde(default)]
    held: bool,
    /// The parser version that quarantined the entry at ingress.
    #[serde(default, with = "firestore::serialize_as_null")]
    parser_version: Option<u32>,
}

/// What `pending` reads of a journal document.
#[derive(Debug, Deserialize)]
struct PendingRow {
    workflow_id: Option<String>,
    event: String,
    received_at: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Forwarded {
    forwarded: bool,
    forwarded_at: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Quarantine {
    quarantined: String,
    held: bool,
    #[serde(default, with = "firestore::serialize_as_null")]
    parser_version: Option<u32>,
}

/// What a redrive writes when the parser now reads the entry.
#[derive(Debug, Serialize, Deserialize)]
struct Released {
    kind: String,
    #[serde(with = "firestore::serialize_as_null")]
    workflow_id: Option<String>,
    routable: bool,
    event: String,
    forwarded: bool,
    #[serde(with = "firestore::serialize_as_null")]
    forwarded_at: Option<i64>,
    #[serde(with = "firestore::serialize_as_null")]
    quarantined: Option<String>,
    held: bool,
    #[serde(with = "firestore::serialize_as_null")]
    parser_version: Option<u32>,
}

/// `subscribers/{code}`: the workflow of a subscriber code, for events that name the
/// subscriber but not the product.
#[derive(Debug, Serialize, Deserialize)]
struct SubscriberDoc {
    workflow_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct GrantDoc {
    user: String,
    course: String,
    workflow: String,
    granted_at: i64,
    #[serde(default)]
    releasing: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LedgerDoc {
    facts: String,
    #[serde(default, with = "firestore::serialize_as_null")]
    user_id: Option<String>,
    updated_at: i64,
}

/// `StudentAccess` with explicit nulls, so a replaced document keeps no stale value.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StudentDoc {
    email: String,
    workflow_id: String,
    product_id: i64,
    #[serde(default, with = "firestore::serialize_as_null")]
    talentlms_user_id: Option<String>,
    state: String,
    entitled: bool,
    #[serde(default, with = "firestore::serialize_as_null")]
    until: Option<i64>,
    #[serde(default)]
    courses: Vec<String>,
    reason: String,
    updated_at: i64,
}

impl From<StudentAccess> for StudentDoc {
    fn from(a: StudentAccess) -> Self {
        let StudentAccess {
            email,
            workflow_id,
            product_id,
            talentlms_user_id,
            state,
            entitled,
            until,
            courses,
            reason,
            updated_at,
        } = a;
        Self {
            email,
            workflow_id,
            product_id,
            talentlms_user_id,
            state,
            entitled,
            until,
            courses,
            reason,
            updated_at,
        }
    }
}

impl From<StudentDoc> for StudentAccess {
    fn from(d: StudentDoc) -> Self {
        let StudentDoc {
            email,
            workflow_id,
            product_id,
            talentlms_user_id,
            state,
            entitled,
            until,
            courses,
            reason,
            updated_at,
        } = d;
        Self {
            email,
            workflow_id,
            product_id,
            talentlms_user_id,
            state,
            entitled,
            until,
            courses,
            reason,
            updated_at,
        }
    }
}

#[derive(Debug, Deserialize)]
struct UpdatedAt {
    #[serde(default)]
    updated_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LeaseDoc {
    holder: String,
    expires_at: i64,
}

#[derive(Debug, Deserialize)]
struct Count {
    count: i64,
}

type TxResult<T> = Result<T, BackoffError<FirestoreError>>;

/// A failure inside a transaction that a retry cannot fix.
fn permanent(
    tx: &firestore::FirestoreTransaction<'_>,
    e: impl std::error::Error + Send + Sync + 'static,
) -> BackoffError<FirestoreError> {
    FirestoreErrorInTransaction::permanent(tx, e)
}

/// The grants of one user and course, oldest first (ties by workflow): inside a
/// transaction, so a concurrent grant or release retries it.
async fn grants_of(db: &FirestoreDb, user: &str, course: &str) -> Result<Vec<GrantDoc>, FirestoreError> {
    let mut all: Vec<GrantDoc> = db
        .fluent()
        .select()
        .from(GRANTS)
        .filter(|q| q.for_all([q.field("user").eq(user), q.field("course").eq(course)]))
        .obj()
        .query()
        .await?;
    all.sort_by(|a, b| (a.granted_at, &a.workflow).cmp(&(b.granted_at, &b.workflow)));
    Ok(all)
}

/// The Firestore backend. Cheap to clone (one shared gRPC channel).
#[derive(Clone)]
pub struct FirestoreDocs {
    db: FirestoreDb,
}

impl FirestoreDocs {
    /// Connects to `project_id` (database `(default)` unless named). With
    /// `FIRESTORE_EMULATOR_HOST` set, talks to that emulator and needs no credentials.
    pub async fn open(project_id: &str, database: Option<&str>) -> anyhow::Result<Self> {
        let mut options = FirestoreDbOptions::new(project_id.to_string());
        if let Some(database) = database {
            options = options.with_database_id(database.to_string());
        }
        let db = FirestoreDb::with_options(options)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to Firestore project {project_id}: {e}"))?;
        Ok(Self { db })
    }

    /// The client, for maintenance and tests.
    pub fn db(&self) -> &FirestoreDb {
        &self.db
    }

    // ---- Course links ----

    pub async fn link(&self, product: ProductId) -> anyhow::Result<Option<CourseLink>> {
        let doc: Option<LinkDoc> = self
            .db
            .fluent()
            .select()
            .by_id_in(COURSE_LINKS)
            .obj()
            .one(doc_id(&[&product.0.to_string()])?)
            .await?;
        Ok(doc.map(LinkDoc::link).transpose()?)
    }

    /// Creates the link only if the product has none.
    pub async fn create_link(&self, link: CourseLink) -> Result<(), StoreError> {
        let doc = LinkDoc::of(&link)?;
        let id = doc_id(&[&doc.product_id.to_string()])?;
        match self
            .db
            .fluent()
            .insert()
            .into(COURSE_LINKS)
            .document_id(&id)
            .object(&doc)
            .execute::<IgnoredAny>()
            .await
        {
            Ok(_) => Ok(()),
            Err(FirestoreError::DataConflictError(_)) => Err(StoreError::Conflict),
            Err(e) => Err(anyhow::Error::from(e).into()),
        }
    }

    /// Creates or replaces the link; returns the previous one.
    pub async fn put_link(&self, link: CourseLink) -> anyhow::Result<Option<CourseLink>> {
        let doc = LinkDoc::of(&link)?;
        let id = doc_id(&[&doc.product_id.to_string()])?;
        let previous = self
            .db
            .run_transaction(|db, tx| {
                let (doc, id) = (doc.clone(), id.clone());
                Box::pin(async move {
                    let previous: Option<LinkDoc> =
                        db.fluent().select().by_id_in(COURSE_LINKS).obj().one(&id).await?;
                    db.fluent()
                        .update()
                        .in_col(COURSE_LINKS)
                        .document_id(&id)
                        .object(&doc)
                        .add_to_transaction(tx)?;
                    TxResult::Ok(previous)
                })
            })
            .await?;
        Ok(previous.map(LinkDoc::link).transpose()?)
    }

    /// Deletes the link; returns it if there was one.
    pub async fn delete_link(&self, product: ProductId) -> anyhow::Result<Option<CourseLink>> {
        let id = doc_id(&[&product.0.to_string()])?;
        let previous = self
            .db
            .run_transaction(|db, tx| {
                let id = id.clone();
                Box::pin(async move {
                    let previous: Option<LinkDoc> =
                        db.fluent().select().by_id_in(COURSE_LINKS).obj().one(&id).await?;
                    if previous.is_some() {
                        db.fluent().delete().from(COURSE_LINKS).document_id(&id).add_to_transaction(tx)?;
                    }
                    TxResult::Ok(previous)
                })
            })
            .await?;
        Ok(previous.map(LinkDoc::link).transpose()?)
    }

    /// Links ordered by product id, those after `after`, at most `limit`.
    pub async fn links_page(
        &self,
        after: Option<ProductId>,
        limit: usize,
    ) -> anyhow::Result<Vec<CourseLink>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let after = after.map_or(i64::MIN, |p| p.0);
        let docs: Vec<LinkDoc> = self
            .db
            .fluent()
            .select()
            .from(COURSE_LINKS)
            .filter(|q| q.for_all([q.field("product_id").greater_than(after)]))
            .order(|o| o.fields([o.field("product_id").asc()]))
            .limit(clamp(limit))
            .obj()
            .query()
            .await?;
        docs.into_iter().map(|d| Ok(d.link()?)).collect()
    }

    // ---- Webhook journal ----

    /// Durably records one delivery: creates `journal/{event_id}`; when it exists already
    /// (a resend), counts the delivery in a transaction.
    pub async fn append(
        &self,
        event: HotmartEvent,
        workflow_id: Option<String>,
        body: String,
    ) -> anyhow::Result<Appended> {
        let key = event.id.to_string();
        let now = now_ms();
        let routable = workflow_id.is_some();
        let doc = JournalDoc {
            received_at: now,
            kind: event.kind.to_string(),
            workflow_id: workflow_id.clone(),
            routable,
            event: serde_json::to_string(&event)?,
            body,
            deliveries: 1,
            // Unroutable events are kept for the record but never pending.
            forwarded: !routable,
            forwarded_at: (!routable).then_some(now),
            quarantined: None,
            held: false,
            parser_version: None,
        };
        let appended = self.insert_or_count(&key, &doc).await?;
        if appended == Appended::New {
            self.remember_subscriber(&event, workflow_id.as_deref()).await?;
        }
        Ok(appended)
    }

    /// Durably records a delivery the parser could not read, quarantined with the reason.
    pub async fn append_quarantined(
        &self,
        key: String,
        event_name: Option<String>,
        body: String,
        reason: String,
        parser_version: u32,
    ) -> anyhow::Result<Appended> {
        let doc = JournalDoc {
            received_at: now_ms(),
            kind: event_name.unwrap_or_default(),
            workflow_id: None,
            routable: false,
            event: String::new(),
            body,
            deliveries: 1,
            forwarded: false,
            forwarded_at: None,
            quarantined: Some(reason),
            held: true,
            parser_version: Some(parser_version),
        };
        self.insert_or_count(&key, &doc).await
    }

    async fn insert_or_count(&self, key: &str, doc: &JournalDoc) -> anyhow::Result<Appended> {
        let id = doc_id(&[key])?;
        match self
            .db
            .fluent()
            .insert()
            .into(JOURNAL)
            .document_id(&id)
            .object(doc)
            .execute::<IgnoredAny>()
            .await
        {
            Ok(_) => return Ok(Appended::New),
            Err(FirestoreError::DataConflictError(_)) => {}
            Err(e) => return Err(e.into()),
        }
        // A resend: count it with a server-side increment, not a read-then-write
        // transaction. Copies of one event arrive in bursts, and contended transactions abort
        // (a 503 for a copy already stored); an increment never conflicts.
        let mut attempt = 0;
        let deliveries = loop {
            match self.count_delivery(&id).await {
                Ok(n) => break n,
                Err(e) if attempt < 4 => {
                    attempt += 1;
                    tracing::debug!(key, error = %e, attempt, "counting a resend failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
                }
                Err(e) => return Err(e),
            }
        };
        Ok(Appended::Duplicate { deliveries })
    }

    /// `deliveries += 1` on an existing entry; returns the new count.
    async fn count_delivery(&self, id: &str) -> anyhow::Result<i64> {
        use firestore::gcloud_sdk::google::firestore::v1::value::ValueType;
        let writer = self.db.create_simple_batch_writer().await?;
        let mut batch = writer.new_batch();
        self.db
            .fluent()
            .update()
            .in_col(JOURNAL)
            .precondition(FirestoreWritePrecondition::Exists(true))
            .document_id(id)
            .transforms(|t| t.fields([t.field("deliveries").increment(1)]))
            .only_transform()
            .add_to_batch(&mut batch)?;
        let response = batch.write().await?;
        if let Some(status) = response.statuses.first().filter(|s| s.code != OK) {
            anyhow::bail!(
                "counting a resend of journal entry {id} failed: {} {}",
                status.code,
                status.message
            );
        }
        match response.write_results.first().and_then(|w| w.transform_results.first()) {
            Some(v) => match v.value.value_type {
                Some(ValueType::IntegerValue(n)) => Ok(n),
                ref other => anyhow::bail!("journal entry {id}: deliveries is {other:?}, not an integer"),
            },
            None => anyhow::bail!("journal entry {id}: the increment returned no value"),
        }
    }

    /// Indexes a subscription event's subscriber code under its workflow (first one wins).
    pub async fn remember_subscriber(
        &self,
        event: &HotmartEvent,
        workflow_id: Option<&str>,
    ) -> anyhow::Result<()> {
        let (Some(code), Some(wf), true) = (&event.subscriber_code, workflow_id, event.product_id.is_some())
        else {
            return Ok(());
        };
        let doc = SubscriberDoc { workflow_id: wf.to_string() };
        match self
            .db
            .fluent()
            .insert()
            .into(SUBSCRIBERS)
            .document_id(doc_id(&[code])?)
            .object(&doc)
            .execute::<IgnoredAny>()
            .await
        {
            Ok(_) | Err(FirestoreError::DataConflictError(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The workflow a subscriber code was first routed to.
    pub async fn subscriber_workflow(&self, code: String) -> anyhow::Result<Option<String>> {
        let doc: Option<SubscriberDoc> =
            self.db.fluent().select().by_id_in(SUBSCRIBERS).obj().one(&doc_id(&[&code])?).await?;
        Ok(doc.map(|d| d.workflow_id))
    }

    /// Quarantined entries by key, after the cursor `after`. The quarantine is meant to
    /// stay small (it alerts when not empty), so this reads all of it and pages here.
    pub async fn quarantined(&self, after: Option<String>, limit: usize) -> anyhow::Result<Vec<Quarantined>> {
        let docs =
            self.db.fluent().select().from(JOURNAL).filter(|q| q.field("held").eq(true)).query().await?;
        let mut out = Vec::with_capacity(docs.len());
        for doc in docs {
            let key = key_of(doc.name.rsplit('/').next().unwrap_or_default());
            if after.as_ref().is_some_and(|a| key <= *a) {
                continue;
            }
            let d = FirestoreDb::deserialize_doc_to::<JournalDoc>(&doc)?;
            out.push(Quarantined {
                key,
                received_at: d.received_at,
                event_name: Some(d.kind).filter(|k| !k.is_empty()),
                reason: d.quarantined.unwrap_or_default(),
                parser_version: d.parser_version,
                body: d.body,
            });
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out.truncate(limit);
        Ok(out)
    }

    /// A count aggregate and the oldest entry's time: /healthz polls this, so it reads no bodies.
    pub async fn quarantine_stats(&self) -> anyhow::Result<QuarantineStats> {
        let count: Vec<Count> = self
            .db
            .fluent()
            .select()
            .from(JOURNAL)
            .filter(|q| q.field("held").eq(true))
            .aggregate(|a| a.fields([a.field("count").count()]))
            .obj()
            .query()
            .await?;
        #[derive(Deserialize)]
        struct Received {
            received_at: i64,
        }
        let oldest: Vec<Received> = self
            .db
            .fluent()
            .select()
            .fields(["received_at"])
            .from(JOURNAL)
            .filter(|q| q.field("held").eq(true))
            .order(|o| o.fields([o.field("received_at").asc()]))
            .limit(1)
            .obj()
            .query()
            .await?;
        Ok(QuarantineStats {
            count: count.first().map_or(0, |c| c.count),
            oldest_received_at: oldest.first().map(|r| r.received_at),
        })
    }

    /// A redriven entry the parser now reads leaves quarantine with its event and route.
    /// False if `key` is not quarantined.
    pub async fn release_quarantined(
        &self,
        key: String,
        event: HotmartEvent,
        workflow_id: Option<String>,
    ) -> anyhow::Result<bool> {
        let id = doc_id(&[&key])?;
        let routable = workflow_id.is_some();
        let released = Released {
            kind: event.kind.to_string(),
            workflow_id: workflow_id.clone(),
            routable,
            event: serde_json::to_string(&event)?,
            forwarded: !routable,
            forwarded_at: (!routable).then(now_ms),
            quarantined: None,
            held: false,
            parser_version: None,
        };
        let released = std::sync::Arc::new(released);
        let done = self
            .db
            .run_transaction(|db, tx| {
                let (id, released) = (id.clone(), released.clone());
                Box::pin(async move {
                    let current: Option<JournalDoc> =
                        db.fluent().select().by_id_in(JOURNAL).obj().one(&id).await?;
                    if !current.is_some_and(|d| d.held) {
                        return Ok(false);
                    }
                    db.fluent()
                        .update()
                        .fields([
                            "kind",
                            "workflow_id",
                            "routable",
                            "event",
                            "forwarded",
                            "forwarded_at",
                            "quarantined",
                            "held",
                            "parser_version",
                        ])
                        .in_col(JOURNAL)
                        .document_id(&id)
                        .object(&*released)
                        .add_to_transaction(tx)?;
                    Ok(true)
                })
            })
            .await?;
        if done {
            self.remember_subscriber(&event, workflow_id.as_deref()).await?;
        }
        Ok(done)
    }

    /// A redriven entry the parser still cannot read: the new reason and version.
    pub async fn requarantine(&self, key: String, reason: String, parser_version: u32) -> anyhow::Result<()> {
        self.db
            .fluent()
            .update()
            .fields(["quarantined", "held", "parser_version"])
            .in_col(JOURNAL)
            .precondition(FirestoreWritePrecondition::Exists(true))
            .document_id(doc_id(&[&key])?)
            .object(&Quarantine { quarantined: reason, held: true, parser_version: Some(parser_version) })
            .execute::<IgnoredAny>()
            .await?;
        Ok(())
    }

    /// Oldest entries (by `received_at`, then id) not yet handed to their workflow. An
    /// entry this version cannot decode is quarantined so it cannot block the ones after it.
    pub async fn pending(&self, limit: usize) -> anyhow::Result<Vec<JournalEntry>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let docs = self
            .db
            .fluent()
            .select()
            .from(JOURNAL)
            .filter(pending_filter)
            .order(|o| o.fields([o.field("received_at").asc(), o.field("__name__").asc()]))
            .limit(clamp(limit))
            .query()
            .await?;
        let mut out = Vec::with_capacity(docs.len());
        for doc in docs {
            let id = doc.name.rsplit('/').next().unwrap_or_default().to_string();
            let key = key_of(&id);
            let decoded = FirestoreDb::deserialize_doc_to::<PendingRow>(&doc)
                .map_err(|e| e.to_string())
                .and_then(|row| {
                    let workflow_id =
                        row.workflow_id.ok_or_else(|| "routable entry without a workflow id".to_string())?;
                    let event =
                        serde_json::from_str::<HotmartEvent>(&row.event).map_err(|e| e.to_string())?;
                    Ok((workflow_id, event, row.received_at))
                });
            match decoded {
                Ok((workflow_id, event, received_at)) => {
                    out.push(JournalEntry { key, workflow_id, event, received_at })
                }
                Err(reason) => {
                    tracing::error!(key, error = %reason, "journal entry cannot be decoded; quarantined");
                    self.db
                        .fluent()
                        .update()
                        .fields(["quarantined", "held"])
                        .in_col(JOURNAL)
                        .precondition(FirestoreWritePrecondition::Exists(true))
                        .document_id(&id)
                        .object(&Quarantine { quarantined: reason, held: true, parser_version: None })
                        .execute::<IgnoredAny>()
                        .await?;
                }
            }
        }
        Ok(out)
    }

    /// Routable entries received in `[from_ms, to_ms)`, forwarded or not, oldest first;
    /// the keys of those that cannot be decoded are listed apart.
    pub async fn journal_window(&self, from_ms: i64, to_ms: i64) -> anyhow::Result<JournalWindow> {
        let docs = self
            .db
            .fluent()
            .select()
            .from(JOURNAL)
            .filter(|q| {
                q.for_all([
                    q.field("routable").eq(true),
                    q.field("received_at").greater_than_or_equal(from_ms),
                    q.field("received_at").less_than(to_ms),
                ])
            })
            .order(|o| o.fields([o.field("received_at").asc(), o.field("__name__").asc()]))
            .query()
            .await?;
        let mut out = JournalWindow { entries: Vec::with_capacity(docs.len()), undecodable: Vec::new() };
        for doc in docs {
            let id = doc.name.rsplit('/').next().unwrap_or_default().to_string();
            let Ok(row) = FirestoreDb::deserialize_doc_to::<PendingRow>(&doc) else {
                out.undecodable.push(key_of(&id));
                continue;
            };
            let Some(workflow_id) = row.workflow_id else { continue };
            match serde_json::from_str::<HotmartEvent>(&row.event) {
                Ok(event) => out.entries.push(JournalEntry {
                    key: key_of(&id),
                    workflow_id,
                    event,
                    received_at: row.received_at,
                }),
                Err(_) => out.undecodable.push(key_of(&id)),
            }
        }
        Ok(out)
    }

    /// Marks entries as handed over; unknown keys are ignored.
    pub async fn mark_forwarded(&self, keys: Vec<String>) -> anyhow::Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let ids = keys.iter().map(|k| doc_id(&[k])).collect::<anyhow::Result<Vec<_>>>()?;
        let mark = Forwarded { forwarded: true, forwarded_at: now_ms() };
        let writer = self.db.create_simple_batch_writer().await?;
        for chunk in ids.chunks(MAX_BATCH) {
            let mut batch = writer.new_batch();
            for id in chunk {
                self.db
                    .fluent()
                    .update()
                    .fields(["forwarded", "forwarded_at"])
                    .in_col(JOURNAL)
                    .precondition(FirestoreWritePrecondition::Exists(true))
                    .document_id(id)
                    .object(&mark)
                    .add_to_batch(&mut batch)?;
            }
            let response = batch.write().await?;
            for (status, id) in response.statuses.iter().zip(chunk) {
                if status.code != OK && status.code != NOT_FOUND {
                    anyhow::bail!(
                        "marking journal entry {id} forwarded failed: {} {}",
                        status.code,
                        status.message
                    );
                }
            }
        }
        Ok(())
    }

    /// (entries, waiting to be forwarded).
    pub async fn journal_counts(&self) -> anyhow::Result<(i64, i64)> {
        let all: Vec<Count> = self
            .db
            .fluent()
            .select()
            .from(JOURNAL)
            .aggregate(|a| a.fields([a.field("count").count()]))
            .obj()
            .query()
            .await?;
        let waiting: Vec<Count> = self
            .db
            .fluent()
            .select()
            .from(JOURNAL)
            .filter(pending_filter)
            .aggregate(|a| a.fields([a.field("count").count()]))
            .obj()
            .query()
            .await?;
        let n = |v: Vec<Count>| v.first().map_or(0, |c| c.count);
        Ok((n(all), n(waiting)))
    }

    // ---- Leases ----

    /// Takes or renews `name` for `holder` in a transaction (read the holder and expiry,
    /// write only if free, expired or ours): two processes never both get it.
    pub async fn acquire_lease(&self, name: String, holder: String, ttl_ms: i64) -> anyhow::Result<bool> {
        let id = doc_id(&[&name])?;
        let held = self
            .db
            .run_transaction(|db, tx| {
                let (id, holder) = (id.clone(), holder.clone());
                Box::pin(async move {
                    let current: Option<LeaseDoc> =
                        db.fluent().select().by_id_in(LEASES).obj().one(&id).await?;
                    let now = now_ms();
                    if current.is_some_and(|l| l.holder != holder && l.expires_at > now) {
                        return Ok(false);
                    }
                    db.fluent()
                        .update()
                        .in_col(LEASES)
                        .document_id(&id)
                        .object(&LeaseDoc { holder, expires_at: now + ttl_ms })
                        .add_to_transaction(tx)?;
                    Ok(true)
                })
            })
            .await?;
        Ok(held)
    }

    /// Deletes `name` if `holder` has it.
    pub async fn release_lease(&self, name: String, holder: String) -> anyhow::Result<()> {
        let id = doc_id(&[&name])?;
        self.db
            .run_transaction(|db, tx| {
                let (id, holder) = (id.clone(), holder.clone());
                Box::pin(async move {
                    let current: Option<LeaseDoc> =
                        db.fluent().select().by_id_in(LEASES).obj().one(&id).await?;
                    if current.is_some_and(|l| l.holder == holder) {
                        db.fluent().delete().from(LEASES).document_id(&id).add_to_transaction(tx)?;
                    }
                    Ok(())
                })
            })
            .await?;
        Ok(())
    }

    // ---- Enrollment grants ----

    pub async fn grant(&self, user: &str, course: &str, workflow: &str) -> anyhow::Result<()> {
        let id = doc_id(&[user, course, workflow])?;
        let doc = GrantDoc {
            user: user.into(),
            course: course.into(),
            workflow: workflow.into(),
            granted_at: now_ms(),
            releasing: false,
        };
        match self
            .db
            .fluent()
            .insert()
            .into(GRANTS)
            .document_id(&id)
            .object(&doc)
            .execute::<IgnoredAny>()
            .await
        {
            Ok(_) | Err(FirestoreError::DataConflictError(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Decides an unenroll (see [`Grants::release`](crate::Grants::release)), in one
    /// transaction over the grants of `user` and `course`.
    pub async fn release(&self, user: &str, course: &str, workflow: &str) -> anyhow::Result<Release> {
        let id = doc_id(&[user, course, workflow])?;
        let (user, course, workflow) = (user.to_string(), course.to_string(), workflow.to_string());
        Ok(self
            .db
            .run_transaction(|db, tx| {
                let (id, user, course, workflow) =
                    (id.clone(), user.clone(), course.clone(), workflow.clone());
                Box::pin(async move {
                    let Some(mut own) =
                        db.fluent().select().by_id_in(GRANTS).obj::<GrantDoc>().one(&id).await?
                    else {
                        return TxResult::Ok(Release::NotHeld);
                    };
                    let other =
                        grants_of(&db, &user, &course).await?.into_iter().find(|g| g.workflow != workflow);
                    Ok(match other {
                        Some(g) if own.releasing => Release::Reclaim { by: g.workflow },
                        Some(g) => {
                            db.fluent().delete().from(GRANTS).document_id(&id).add_to_transaction(tx)?;
                            Release::StillGranted { by: g.workflow }
                        }
                        None => {
                            own.releasing = true;
                            db.fluent()
                                .update()
                                .in_col(GRANTS)
                                .document_id(&id)
                                .object(&own)
                                .add_to_transaction(tx)?;
                            Release::Last
                        }
                    })
                })
            })
            .await?)
    }

    pub async fn drop_grant(&self, user: &str, course: &str, workflow: &str) -> anyhow::Result<()> {
        let id = doc_id(&[user, course, workflow])?;
        self.db.fluent().delete().from(GRANTS).document_id(&id).execute().await?;
        Ok(())
    }

    /// The grants of `course` (equality on `course`), releasing ones left out.
    pub async fn course_grants(&self, course: &str) -> anyhow::Result<Vec<CourseGrant>> {
        let mut out: Vec<CourseGrant> = self
            .db
            .fluent()
            .select()
            .from(GRANTS)
            .filter(|q| q.field("course").eq(course))
            .obj::<GrantDoc>()
            .query()
            .await?
            .into_iter()
            .filter(|g| !g.releasing)
            .map(|g| CourseGrant { user_id: g.user, workflow_id: g.workflow })
            .collect();
        out.sort();
        Ok(out)
    }

    pub async fn held_grants(&self, workflow: &str) -> anyhow::Result<Vec<Grant>> {
        let mut held: Vec<Grant> = self
            .db
            .fluent()
            .select()
            .from(GRANTS)
            .filter(|q| q.field("workflow").eq(workflow))
            .obj::<GrantDoc>()
            .query()
            .await?
            .into_iter()
            .map(|g| Grant { user_id: g.user, course_id: g.course })
            .collect();
        held.sort();
        Ok(held)
    }

    // ---- Entitlement ledger ----

    pub async fn ledger(&self, workflow: &str) -> anyhow::Result<Option<LedgerEntry>> {
        let id = doc_id(&[workflow])?;
        let doc: Option<LedgerDoc> = self.db.fluent().select().by_id_in(LEDGER).obj().one(&id).await?;
        doc.map(|d| {
            Ok(LedgerEntry {
                workflow_id: workflow.to_string(),
                facts: serde_json::from_str(&d.facts)?,
                talentlms_user_id: d.user_id,
            })
        })
        .transpose()
    }

    /// Merges `entry` into the stored one, in a transaction.
    pub async fn put_ledger(&self, entry: LedgerEntry) -> anyhow::Result<()> {
        let id = doc_id(&[&entry.workflow_id])?;
        Ok(self
            .db
            .run_transaction(|db, tx| {
                let (id, entry) = (id.clone(), entry.clone());
                Box::pin(async move {
                    let old: Option<LedgerDoc> = db.fluent().select().by_id_in(LEDGER).obj().one(&id).await?;
                    let mut facts = entry.facts;
                    let mut user_id = entry.talentlms_user_id;
                    if let Some(old) = old {
                        let old_facts: Facts =
                            serde_json::from_str(&old.facts).map_err(|e| permanent(tx, e))?;
                        facts.merge(&old_facts);
                        user_id = user_id.or(old.user_id);
                    }
                    let facts = serde_json::to_string(&facts).map_err(|e| permanent(tx, e))?;
                    let doc = LedgerDoc { facts, user_id, updated_at: now_ms() };
                    db.fluent()
                        .update()
                        .in_col(LEDGER)
                        .document_id(&id)
                        .object(&doc)
                        .add_to_transaction(tx)?;
                    TxResult::Ok(())
                })
            })
            .await?)
    }

    // ---- Students ----

    /// Upserts `(email, workflow_id)`; an older `updated_at` never overwrites a newer one.
    /// Whether it is a new decision: nothing stored for the key, or an older one.
    pub async fn put_access(&self, a: StudentAccess) -> anyhow::Result<bool> {
        let id = doc_id(&[&a.email, &a.workflow_id])?;
        let doc = StudentDoc::from(a);
        let new = self
            .db
            .run_transaction(|db, tx| {
                let (id, doc) = (id.clone(), doc.clone());
                Box::pin(async move {
                    let current: Option<UpdatedAt> =
                        db.fluent().select().by_id_in(STUDENT_ACCESS).obj().one(&id).await?;
                    let new = current.as_ref().is_none_or(|c| doc.updated_at > c.updated_at);
                    if current.is_none_or(|c| doc.updated_at >= c.updated_at) {
                        db.fluent()
                            .update()
                            .in_col(STUDENT_ACCESS)
                            .document_id(&id)
                            .object(&doc)
                            .add_to_transaction(tx)?;
                    }
                    TxResult::Ok(new)
                })
            })
            .await?;
        Ok(new)
    }

    /// Ordered by workflow id.
    pub async fn access_by_email(&self, email: &str) -> anyhow::Result<Vec<StudentAccess>> {
        let mut docs: Vec<StudentDoc> = self
            .db
            .fluent()
            .select()
            .from(STUDENT_ACCESS)
            .filter(|q| q.for_all([q.field("email").eq(email)]))
            .obj()
            .query()
            .await?;
        docs.sort_by(|a, b| a.workflow_id.cmp(&b.workflow_id));
        Ok(docs.into_iter().map(StudentAccess::from).collect())
    }

    /// The workflows of a product, ordered by workflow id, after `after`, at most `limit`.
    pub async fn access_by_product(
        &self,
        product: i64,
        after: Option<String>,
        limit: usize,
    ) -> anyhow::Result<Vec<StudentAccess>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let after = after.unwrap_or_default();
        let docs: Vec<StudentDoc> = self
            .db
            .fluent()
            .select()
            .from(STUDENT_ACCESS)
            .filter(|q| {
                q.for_all([
                    q.field("product_id").eq(product),
                    q.field("workflow_id").greater_than(after.as_str()),
                ])
            })
            .order(|o| o.fields([o.field("workflow_id").asc()]))
            .limit(clamp(limit))
            .obj()
            .query()
            .await?;
        Ok(docs.into_iter().map(StudentAccess::from).collect())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ReportDoc {
    kind: String,
    id: String,
    at: i64,
    doc: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ProductNameDoc {
    product_id: i64,
    name: String,
    updated_at: i64,
}

impl FirestoreDocs {
    // ---- Reports and product names ----

    /// Creates or replaces the report `id` of `kind`.
    pub async fn put_report(&self, kind: &str, id: &str, at_ms: i64, doc: String) -> anyhow::Result<()> {
        let key = doc_id(&[kind, id])?;
        let doc = ReportDoc { kind: kind.to_string(), id: id.to_string(), at: at_ms, doc };
        self.db
            .fluent()
            .update()
            .in_col(REPORTS)
            .document_id(&key)
            .object(&doc)
            .execute::<IgnoredAny>()
            .await?;
        Ok(())
    }

    /// The newest `limit` reports of `kind`, newest first.
    pub async fn latest_reports(&self, kind: &str, limit: usize) -> anyhow::Result<Vec<String>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let docs: Vec<ReportDoc> = self
            .db
            .fluent()
            .select()
            .from(REPORTS)
            .filter(|q| q.field("kind").eq(kind))
            .order(|o| o.fields([o.field("at").desc()]))
            .limit(clamp(limit))
            .obj()
            .query()
            .await?;
        Ok(docs.into_iter().map(|d| d.doc).collect())
    }

    /// Records a product's name (the newest wins).
    pub async fn put_product_name(&self, product: ProductId, name: String) -> anyhow::Result<()> {
        let key = doc_id(&[&product.0.to_string()])?;
        let doc = ProductNameDoc { product_id: product.0, name, updated_at: now_ms() };
        self.db
            .fluent()
            .update()
            .in_col(PRODUCT_NAMES)
            .document_id(&key)
            .object(&doc)
            .execute::<IgnoredAny>()
            .await?;
        Ok(())
    }

    /// Every known product name, by product id.
    pub async fn product_names(&self) -> anyhow::Result<Vec<(ProductId, String)>> {
        let mut docs: Vec<ProductNameDoc> =
            self.db.fluent().select().from(PRODUCT_NAMES).obj().query().await?;
        docs.sort_by_key(|d| d.product_id);
        Ok(docs.into_iter().map(|d| (ProductId(d.product_id), d.name)).collect())
    }
}

/// Routable, not forwarded, not quarantined.
fn pending_filter(
    q: firestore::select_filter_builder::FirestoreQueryFilterBuilder,
) -> Option<firestore::FirestoreQueryFilter> {
    q.for_all([
        q.field("forwarded").eq(false),
        q.field("routable").eq(true),
        q.field("quarantined").is_null(),
    ])
}

fn clamp(limit: usize) -> u32 {
    u32::try_from(limit).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_escape_separators() {
        assert_eq!(doc_id(&["ana@example.com", "purchase-HP1"]).unwrap(), "ana@example.com|purchase-HP1");
        assert_eq!(doc_id(&["a/b", "c|d", "50%"]).unwrap(), "a%2Fb|c%7Cd|50%25");
        assert_eq!(key_of(&doc_id(&["a/b|c%"]).unwrap()), "a/b|c%");
        assert!(doc_id(&[""]).is_err());
        assert!(doc_id(&[".."]).is_err());
        assert!(doc_id(&["__x__"]).is_err());
    }
}
