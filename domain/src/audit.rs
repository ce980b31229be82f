//! The TalentLMS drift audit's judgement and report: who is enrolled in a linked course
//! against who the entitlement ledger's grants say should be. Pure, so the workflow
//! decides repairs deterministically.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::ledger::CourseGrant;

/// The report kind in the document store.
pub const REPORT_KIND: &str = "talentlms_audit";
/// The grant the audit takes for a moment to remove a leaked enrolment through the
/// ordinary unenroll (which removes a course only when its last grant goes).
pub const AUDIT_GRANT: &str = "talentlms-audit";
/// Differences a course's report lists one by one (the counts cover every one).
pub const MAX_ITEMS: usize = 200;

/// One course's drift.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourseDrift {
    pub course_id: String,
    /// The course is gone from TalentLMS (its grants cannot be honoured).
    #[serde(default)]
    pub missing_course: bool,
    /// Learners enrolled in TalentLMS.
    pub enrolled: u64,
    /// Users the grants entitle.
    pub entitled: u64,
    /// Enrolled learners no grant entitles (a manual add, a leak).
    pub not_entitled: Vec<String>,
    /// Entitled users who are not enrolled (a manual removal), with a grant's workflow.
    pub not_enrolled: Vec<CourseGrant>,
}

/// Compares a course's learners (`(user id, role)`; instructors are staff, not drift)
/// with its grants.
pub fn compare(course_id: &str, users: &[(String, String)], grants: &[CourseGrant]) -> CourseDrift {
    let enrolled: BTreeSet<&str> = users
        .iter()
        .filter(|(_, role)| role.is_empty() || role == "learner")
        .map(|(u, _)| u.as_str())
        .collect();
    let all: BTreeSet<&str> = users.iter().map(|(u, _)| u.as_str()).collect();
    // One grant per user is enough to restore an enrolment.
    let mut entitled: BTreeMap<&str, &CourseGrant> = BTreeMap::new();
    for g in grants {
        entitled.entry(g.user_id.as_str()).or_insert(g);
    }
    CourseDrift {
        course_id: course_id.to_string(),
        missing_course: false,
        enrolled: enrolled.len() as u64,
        entitled: entitled.len() as u64,
        not_entitled: enrolled.iter().filter(|u| !entitled.contains_key(*u)).map(|u| u.to_string()).collect(),
        not_enrolled: entitled.iter().filter(|(u, _)| !all.contains(*u)).map(|(_, g)| (*g).clone()).collect(),
    }
}

/// An audit run: stored by id, returned by the workflow, listed by the API and CLI.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReport {
    pub id: String,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    /// Whether differences were repaired.
    pub repair: bool,
    /// Linked courses audited.
    pub courses: u64,
    pub enrolled: u64,
    pub entitled: u64,
    pub not_entitled: u64,
    pub not_enrolled: u64,
    pub missing_courses: Vec<String>,
    /// Enrolments added and removed by the repair.
    pub enrolled_now: u64,
    pub unenrolled_now: u64,
    /// Per course with drift, its first [`MAX_ITEMS`] differences of each kind.
    pub drift: Vec<CourseDrift>,
}

impl AuditReport {
    pub fn add(&mut self, mut d: CourseDrift) {
        self.courses += 1;
        self.enrolled += d.enrolled;
        self.entitled += d.entitled;
        self.not_entitled += d.not_entitled.len() as u64;
        self.not_enrolled += d.not_enrolled.len() as u64;
        if d.missing_course {
            self.missing_courses.push(d.course_id.clone());
        }
        if !d.not_entitled.is_empty() || !d.not_enrolled.is_empty() {
            d.not_entitled.truncate(MAX_ITEMS);
            d.not_enrolled.truncate(MAX_ITEMS);
            self.drift.push(d);
        }
    }

    /// One line for the UI and the logs.
    pub fn summary(&self) -> String {
        let missing = match self.missing_courses.len() {
            0 => String::new(),
            n => format!("; {n} linked course(s) missing from TalentLMS"),
        };
        if self.not_entitled == 0 && self.not_enrolled == 0 {
            return format!(
                "ok: {} courses, {} enrolments match the grants{missing}",
                self.courses, self.enrolled
            );
        }
        let fixed = if self.repair {
            format!("repaired: {} enrolled, {} unenrolled", self.enrolled_now, self.unenrolled_now)
        } else {
            "report only".to_string()
        };
        format!(
            "{} enrolled but not entitled, {} entitled but not enrolled in {} courses; {fixed}{missing}",
            self.not_entitled, self.not_enrolled, self.courses
        )
    }
}
