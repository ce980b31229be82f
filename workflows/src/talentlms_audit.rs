//! `TalentLmsAudit`: staff edit TalentLMS by hand. For every course a link names, lists
//! its users through the rate-capped TalentLMS queue and compares them with the
//! entitlement ledger's grants: learners no grant entitles (a manual add, a leak) and
//! entitled users not enrolled (a manual removal). Reports by default; with `repair`
//! fixes through the ordinary enroll and unenroll activities. Courses nobody links are
//! never read or touched.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use temporalio_common::RetryPolicy;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ActivityOptions, WorkflowContext, WorkflowContextView, WorkflowResult};

use crate::acts::{CourseGrants, CourseUsers, Enroll, Enrollment, LinkedCourses, SaveAuditReport, Unenroll};
use crate::import::store_opts;
use crate::workflow::now_ms;
use tollgate_domain::audit::{AUDIT_GRANT, AuditReport, CourseDrift, compare};

pub const AUDIT_WORKFLOW_TYPE: &str = "TalentLmsAudit";
/// Repairs per run: bounds the history; the next run repairs the rest.
pub const MAX_REPAIRS: u64 = 2_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRequest {
    /// Fix the differences (default: report only).
    pub repair: bool,
    /// The rate-capped queue of the TalentLMS activities.
    pub talentlms_task_queue: String,
}

fn talentlms_opts(queue: &str) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(60))
        .task_queue(queue.to_string())
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_secs(1))
                .backoff_coefficient(2.0)
                .maximum_interval(Duration::from_secs(60))
                .build(),
        )
        .build()
}

#[workflow]
pub struct AuditWorkflow {
    req: AuditRequest,
}

#[workflow_methods]
impl AuditWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, req: AuditRequest) -> Self {
        Self { req }
    }

    #[run(name = AUDIT_WORKFLOW_TYPE)]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<AuditReport> {
        let req = ctx.state(|s| s.req.clone());
        let tl = talentlms_opts(&req.talentlms_task_queue);
        let mut report = AuditReport {
            id: ctx.workflow_id().to_string(),
            started_at_ms: now_ms(ctx),
            repair: req.repair,
            ..Default::default()
        };
        let courses = ctx.execute_activity(LinkedCourses, (), store_opts()).await?;
        for course in courses {
            let users = ctx.execute_activity(CourseUsers, course.clone(), tl.clone()).await?;
            let grants = ctx.execute_activity(CourseGrants, course.clone(), store_opts()).await?;
            let drift = match users {
                Some(users) => compare(&course, &users, &grants),
                None => CourseDrift {
                    course_id: course.clone(),
                    missing_course: true,
                    entitled: grants.len() as u64,
                    ..Default::default()
                },
            };
            if req.repair {
                for g in &drift.not_enrolled {
                    if report.enrolled_now + report.unenrolled_now >= MAX_REPAIRS {
                        break;
                    }
                    // The grant is there already; this is the enroll its workflow made.
                    let e = Enrollment {
                        user_id: g.user_id.clone(),
                        course_id: course.clone(),
                        workflow_id: g.workflow_id.clone(),
                    };
                    ctx.execute_activity(Enroll, e, tl.clone()).await?;
                    report.enrolled_now += 1;
                }
                for user in &drift.not_entitled {
                    if report.enrolled_now + report.unenrolled_now >= MAX_REPAIRS {
                        break;
                    }
                    // Held for a moment by the audit, then released like any revoke: the
                    // unenroll happens only if no purchase granted the course meanwhile.
                    let e = Enrollment {
                        user_id: user.clone(),
                        course_id: course.clone(),
                        workflow_id: AUDIT_GRANT.to_string(),
                    };
                    ctx.execute_activity(Enroll, e.clone(), tl.clone()).await?;
                    let outcome = ctx.execute_activity(Unenroll, e, tl.clone()).await?;
                    if outcome.starts_with("unenrolled") {
                        report.unenrolled_now += 1;
                    }
                }
            }
            report.add(drift);
        }
        report.finished_at_ms = Some(now_ms(ctx));
        ctx.execute_activity(SaveAuditReport, report.clone(), store_opts()).await?;
        Ok(report)
    }
}
