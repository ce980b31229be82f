//! Activity signatures the workflow calls, by name and types only. The implementations
//! (all the I/O) live in the `activities` crate and register under the same names, so
//! this crate stays free of HTTP and database code.

use serde::{Deserialize, Serialize};
use temporalio_common::ActivityDefinition;

use tollgate_domain::access::CourseLink;
use tollgate_domain::hotmart::ProductId;
use tollgate_domain::ledger::{Grant, LedgerEntry};
use tollgate_domain::metrics::{Day, DayRollup, ReconcileReport};
use tollgate_domain::revenue::RevenueRow;
use tollgate_domain::student::StudentAccess;

macro_rules! activity {
    ($(#[$m:meta])* $marker:ident, $name:literal, $input:ty => $output:ty) => {
        $(#[$m])*
        pub struct $marker;
        impl ActivityDefinition for $marker {
            type Input = $input;
            type Output = $output;
            fn name(&self) -> &str {
                $name
            }
        }
        impl $marker {
            pub const NAME: &'static str = $name;
        }
    };
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudentRef {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    pub user_id: String,
    pub course_id: String,
    /// The workflow that grants (or releases) this enrollment.
    pub workflow_id: String,
}

activity!(
    /// Reads the product's course link from the document store.
    LoadLink, "load_link", ProductId => Option<CourseLink>
);
/// Input of [`CreateUser`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewStudent {
    pub student: StudentRef,
    /// Retry with a suffixed login: the plain one belongs to another user.
    pub login_suffix: bool,
}

// Each TalentLMS activity makes at most one HTTP call, so the task queue's dispatch
// rate is also the cap on calls per second.
activity!(
    /// Looks the TalentLMS user up by email; returns its id.
    FindUser, "find_user", String => Option<String>
);
activity!(
    /// Creates the TalentLMS user; `None` when the email or login already exists.
    CreateUser, "create_user", NewStudent => Option<String>
);
activity!(
    /// Records the grant, then enrolls; "already enrolled" is success.
    Enroll, "enroll", Enrollment => ()
);
activity!(
    /// Enroll with a user id that may be stale (learned by another purchase of the same
    /// email; the user may have been deleted by hand since): records the grant, then
    /// enrolls. `false` when TalentLMS knows no such user (the grant is dropped again).
    EnrollKnown, "enroll_known", Enrollment => bool
);
activity!(
    /// The TalentLMS user id an earlier purchase of this email learned, if any: a
    /// returning student costs one TalentLMS call (the enroll, which verifies it).
    KnownUser, "known_user", String => Option<String>
);
activity!(
    /// Drops this workflow's grant; unenrolls only when no other workflow grants the
    /// course ("not enrolled" is success), and enrolls again when another grant arrived
    /// while it unenrolled. Returns what happened, for the decision log.
    Unenroll, "unenroll", Enrollment => String
);
activity!(
    /// Reads the entitlement ledger's entry of a workflow id.
    LoadLedger, "load_ledger", String => Option<LedgerEntry>
);
activity!(
    /// Merges facts and the TalentLMS user id into the ledger.
    SaveLedger, "save_ledger", LedgerEntry => ()
);
activity!(
    /// The grants a workflow id holds (what a revoke must release).
    HeldGrants, "held_grants", String => Vec<Grant>
);
activity!(
    /// Upserts the student's access record (newer decisions win).
    RecordAccess, "record_access", StudentAccess => ()
);
activity!(
    /// Writes a revenue row; a second write of the same key is a no-op. Returns whether
    /// this call inserted it.
    RecordRevenue, "record_revenue", RevenueRow => bool
);

/// The reconciliation's resolved window (the workflow turns "the last N days" into
/// times with its own clock, so a replay passes the same input).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileWindow {
    pub from_ms: i64,
    pub to_ms: i64,
    pub repair: bool,
    /// Journal entries received after this are not judged yet.
    pub settled_before_ms: i64,
}

activity!(
    /// Computes and writes the daily rollup of one day (replacing any earlier one).
    RollupDay, "rollup_day", Day => DayRollup
);
activity!(
    /// Compares revenue rows with the webhook journal over a window; repairs on request.
    ReconcileRevenue, "reconcile", ReconcileWindow => ReconcileReport
);

/// One page request of a Hotmart list (subscriptions or sales history).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    pub since_ms: Option<i64>,
    /// Upper bound of the accession / order date (the import's start).
    pub until_ms: i64,
    pub product_id: Option<i64>,
    pub page_size: u32,
    pub page_token: Option<String>,
    /// Sales history: the `transaction_status` filter.
    pub status: Option<String>,
    /// Subscriptions: only those whose next charge is on or after this (the
    /// reconciliation's window), whatever their accession.
    #[serde(default)]
    pub next_charge_since_ms: Option<i64>,
}

/// API records to turn into webhook events and journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HotmartDelivery {
    pub source: hotmart_api::events::Source,
    pub observed_at_ms: i64,
    pub subscriptions: Vec<(hotmart_api::Subscription, Vec<hotmart_api::SubscriptionPurchase>)>,
    pub sales: Vec<hotmart_api::Sale>,
}

/// What a delivery did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryReport {
    pub events: u64,
    /// Journaled now (the rest the journal had already).
    pub new: u64,
    /// Ids of the new events.
    pub new_ids: Vec<String>,
}

// Each Hotmart activity makes one API call (plus, rarely, a token fetch), on the Hotmart
// task queue whose dispatch rate the server caps for every worker.
activity!(
    /// One page of subscriptions (every status) in the request's accession window.
    HotmartSubscriptionsPage, "hotmart_subscriptions_page", PageRequest => hotmart_api::Page<hotmart_api::Subscription>
);
activity!(
    /// Every charge of one subscription.
    HotmartSubscriptionPurchases, "hotmart_subscription_purchases", String => Vec<hotmart_api::SubscriptionPurchase>
);
activity!(
    /// One page of the sales history with the request's status.
    HotmartSalesPage, "hotmart_sales_page", PageRequest => hotmart_api::Page<hotmart_api::Sale>
);
activity!(
    /// Turns API records into webhook bodies and journals them by id (the forwarder
    /// delivers them); an id the journal has is left alone.
    DeliverHotmart, "deliver_hotmart", HotmartDelivery => DeliveryReport
);

/// Records for the reconciliation to compare with what Tollgate knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepRequest {
    pub delivery: HotmartDelivery,
    /// Judge and report only: journal nothing.
    pub dry_run: bool,
    /// Journal entries received since this count as known (besides the ledger): events
    /// journaled but not yet folded by their workflow.
    pub journal_since_ms: i64,
}

activity!(
    /// Turns API records into webhook bodies, keeps those whose fact (transaction and
    /// kind) neither the ledger nor the recent journal holds, and journals them.
    SweepHotmart, "sweep_hotmart", SweepRequest => tollgate_domain::sweep::SweepBatch
);
activity!(
    /// Stores a reconciliation report (replacing the run's earlier one).
    SaveHotmartReport, "save_hotmart_report", tollgate_domain::sweep::HotmartReconcileReport => ()
);
activity!(
    /// One page of the account's products (the products API).
    HotmartProductsPage, "hotmart_products_page", Option<String> => hotmart_api::Page<hotmart_api::Product>
);
activity!(
    /// Records product names `(product id, name)` in the document store.
    SaveProductNames, "save_product_names", Vec<(i64, String)> => ()
);

// The TalentLMS drift audit.
activity!(
    /// Every course id some course link names (courses nobody links are never audited).
    LinkedCourses, "linked_courses", () => Vec<String>
);
activity!(
    /// The grants of one course (not those being released).
    CourseGrants, "course_grants", String => Vec<tollgate_domain::ledger::CourseGrant>
);
activity!(
    /// One course's users `(user id, role)` from TalentLMS (one call, on the TalentLMS
    /// queue); `None` when the course does not exist.
    CourseUsers, "course_users", String => Option<Vec<(String, String)>>
);
activity!(
    /// Stores an audit report.
    SaveAuditReport, "save_audit_report", tollgate_domain::audit::AuditReport => ()
);
