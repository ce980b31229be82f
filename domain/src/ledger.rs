//! The entitlement ledger: the durable record of what each purchase or subscription
//! (workflow key) knows and was granted, kept in the document store so it outlives the
//! workflow run and its history. A new run of a key starts from the ledger's facts, and a
//! revoke removes exactly the grants its key holds, with the TalentLMS user id stored
//! when the grant was made: never a lookup by email, never the current course link.

use serde::{Deserialize, Serialize};

use crate::access::Facts;

/// What the ledger keeps per workflow key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub workflow_id: String,
    /// Every event folded so far, merged across runs ([`Facts::merge`]).
    pub facts: Facts,
    /// The TalentLMS user the key enrolled, once known.
    pub talentlms_user_id: Option<String>,
}

/// One enrollment a key holds: recorded before the enroll call (the intent), removed
/// only after TalentLMS confirmed the unenroll.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Grant {
    pub user_id: String,
    pub course_id: String,
}

/// Who holds a course for a user: one grant, seen from the course (the TalentLMS audit).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CourseGrant {
    pub user_id: String,
    pub workflow_id: String,
}
