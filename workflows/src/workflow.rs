//! `AccessWorkflow`: one durable run per subscription or one-off purchase.
//!
//! Signals only append events to an inbox; the run loop folds them into [`Facts`], asks
//! the pure rules for a [`Verdict`], makes TalentLMS match it through activities, then
//! sleeps until the next deadline or the next signal. Everything time-based reads
//! workflow time, so replays are deterministic.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::{Duration, UNIX_EPOCH};
use temporalio_common::search_attributes::{SearchAttributeKey, SearchAttributeUpdate, Timestamp};
use temporalio_common::{Priority, RetryPolicy};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, CancellableFuture, ContinueAsNewOptions, LocalActivityOptions, SyncWorkflowContext,
    TimerOptions, WorkflowContext, WorkflowContextView, WorkflowResult,
};

use crate::acts::{
    CreateUser, Enroll, EnrollKnown, Enrollment, FindUser, HeldGrants, KnownUser, LoadLedger, LoadLink,
    NewStudent, RecordAccess, RecordRevenue, SaveLedger, StudentRef, Unenroll,
};
use tollgate_domain::access::{self, AccessState, CourseLink, Facts, KeyKind, Verdict};
use tollgate_domain::duration::secs_to_ms;
use tollgate_domain::hotmart::{HotmartEvent, Millis, WorkflowKey};
use tollgate_domain::ledger::LedgerEntry;
use tollgate_domain::lifecycle::{self, Next, Pass, Timing};
use tollgate_domain::revenue;
use tollgate_domain::student::StudentAccess;

// Names on the wire (histories, the Temporal UI, other SDKs), used by the registration below.
pub const WORKFLOW_TYPE: &str = "AccessWorkflow";
pub const SIGNAL_EVENT: &str = "hotmart_event";
pub const SIGNAL_LINK_CHANGED: &str = "link_changed";
pub const QUERY_STATUS: &str = "status";

/// Search attributes operators filter on in the Temporal UI.
pub const SA_BUYER_EMAIL: SearchAttributeKey<String> = SearchAttributeKey::keyword("BuyerEmail");
pub const SA_PRODUCT_ID: SearchAttributeKey<String> = SearchAttributeKey::keyword("ProductId");
pub const SA_ACCESS_STATE: SearchAttributeKey<String> = SearchAttributeKey::keyword("AccessState");
pub const SA_ACCESS_UNTIL: SearchAttributeKey<Timestamp> = SearchAttributeKey::datetime("AccessUntil");
/// `(name, type)` pairs for `temporal operator search-attribute create`.
pub const SEARCH_ATTRIBUTES: [(&str, &str); 4] = [
    ("BuyerEmail", "Keyword"),
    ("ProductId", "Keyword"),
    ("AccessState", "Keyword"),
    ("AccessUntil", "Datetime"),
];

/// Knobs that shape timing. Deadlines themselves come from events and the course link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesConfig {
    /// How often a purchase waiting for a course link re-reads it.
    pub link_poll_secs: u64,
    /// How long a run stays open after access ends, to absorb late and out-of-order events.
    pub retention_secs: u64,
    /// Continue-as-new once history has this many events.
    pub max_history: u32,
    /// Task queue of the TalentLMS activities (rate-limited per queue).
    pub talentlms_task_queue: String,
    /// Longest pause between retries of a failing activity.
    pub max_retry_interval_secs: u64,
}

impl Default for RulesConfig {
    fn default() -> Self {
        Self {
            link_poll_secs: 60,
            retention_secs: 30 * 86_400,
            max_history: 2_000,
            talentlms_task_queue: "tollgate-talentlms".into(),
            max_retry_interval_secs: 300,
        }
    }
}

/// One decision the workflow took, with its reason: the operator's "why".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub at: Millis,
    pub state: AccessState,
    pub entitled: bool,
    pub until: Option<Millis>,
    pub reason: String,
    /// What changed in TalentLMS: "enrolled in 101", "unenrolled from 102", errors.
    pub actions: Vec<String>,
}

/// State carried across continue-as-new.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carried {
    pub facts: Facts,
    pub inbox: Vec<HotmartEvent>,
    pub enrolled: BTreeSet<String>,
    pub user_id: Option<String>,
    pub decisions: Vec<Decision>,
    pub last_change: Option<Millis>,
    pub runs: u32,
    /// Whether a run that started revoked already released the link's courses.
    #[serde(default)]
    pub swept: bool,
    /// The last course link seen. A link removed later keeps applying to this run:
    /// removal stops future purchases, it does not silently unenroll current students.
    #[serde(default)]
    pub link: Option<CourseLink>,
    /// The ledger's grants of this key were released (or there were none) since the last
    /// enroll: a run without access is done only then.
    #[serde(default)]
    pub released: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessInput {
    pub key: WorkflowKey,
    pub config: RulesConfig,
    #[serde(default)]
    pub carried: Option<Carried>,
    /// The run keeps its facts and grants in the entitlement ledger. Runs started before
    /// the ledger existed have no such field in their recorded input and replay the old
    /// way; their continuation (a new history) switches over.
    #[serde(default)]
    pub ledger: bool,
    /// The run enrolls in the fewest TalentLMS calls: a returning student's known user
    /// id (verified by the enroll itself), else create first and look up only when the
    /// user exists. Older recorded inputs lack it and replay find-create-enroll.
    #[serde(default)]
    pub lean_enrol: bool,
}

impl AccessInput {
    /// The input of a new run of `key`: on the ledger, lean enrolment.
    pub fn new(key: WorkflowKey, config: RulesConfig, carried: Option<Carried>) -> Self {
        Self { key, config, carried, ledger: true, lean_enrol: true }
    }
}

/// What the `status` query returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub workflow_id: String,
    pub state: AccessState,
    pub entitled: bool,
    pub until: Option<Millis>,
    pub reason: String,
    pub buyer_email: Option<String>,
    pub product_id: Option<i64>,
    pub link: Option<CourseLink>,
    pub enrolled_courses: Vec<String>,
    pub talentlms_user_id: Option<String>,
    pub events_seen: usize,
    pub pending_events: usize,
    pub decisions: Vec<Decision>,
    pub continued_as_new: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub state: AccessState,
    pub reason: String,
    pub enrolled_courses: Vec<String>,
    /// Everything the run knew, so a later run can resume from it (a link change that
    /// must reach a settled lifetime purchase starts one with this as its input).
    #[serde(default)]
    pub carried: Carried,
}

const MAX_DECISIONS: usize = 100;

#[workflow]
pub struct AccessWorkflow {
    key: WorkflowKey,
    config: RulesConfig,
    c: Carried,
    /// Re-read the link before the next decision (first pass, or `link_changed`).
    link_stale: bool,
    /// Bumped by every signal, so the run loop can wait for "anything new".
    generation: u64,
    verdict: Option<Verdict>,
    attention: Option<String>,
    last_attrs: Option<(String, Option<Millis>)>,
    /// Whether this run uses the entitlement ledger ([`AccessInput::ledger`]).
    ledger: bool,
    /// [`AccessInput::lean_enrol`].
    lean: bool,
}

#[workflow_methods]
impl AccessWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: AccessInput) -> Self {
        Self {
            key: input.key,
            config: input.config,
            c: input.carried.unwrap_or_default(),
            link_stale: true,
            generation: 0,
            verdict: None,
            attention: None,
            last_attrs: None,
            ledger: input.ledger,
            lean: input.lean_enrol,
        }
    }

    #[signal(name = SIGNAL_EVENT)]
    pub fn on_event(&mut self, _ctx: &mut SyncWorkflowContext<Self>, event: HotmartEvent) {
        self.c.inbox.push(event);
        self.generation += 1;
    }

    /// Sent when the product's course link was added or changed.
    #[signal(name = SIGNAL_LINK_CHANGED)]
    pub fn on_link_changed(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _unit: ()) {
        self.link_stale = true;
        self.generation += 1;
    }

    #[query(name = QUERY_STATUS)]
    pub fn status(&self, ctx: &WorkflowContextView) -> Status {
        let v = self.verdict.clone();
        Status {
            workflow_id: ctx.workflow_id().to_string(),
            state: v.as_ref().map_or(AccessState::AwaitingPayment, |v| v.state),
            entitled: v.as_ref().is_some_and(|v| v.entitled),
            until: v.as_ref().and_then(|v| v.until),
            reason: match (&self.attention, &v) {
                (Some(a), _) => a.clone(),
                (None, Some(v)) => v.reason.clone(),
                (None, None) => "starting".into(),
            },
            buyer_email: self.c.facts.buyer.as_ref().map(|b| b.value.email.to_string()),
            product_id: self.c.facts.product_id.map(|p| p.0),
            link: self.c.link.clone(),
            enrolled_courses: self.c.enrolled.iter().cloned().collect(),
            talentlms_user_id: self.c.user_id.clone(),
            events_seen: self.c.facts.seen.len(),
            pending_events: self.c.inbox.len(),
            decisions: self.c.decisions.clone(),
            continued_as_new: self.c.runs,
        }
    }

    /// One pass per wake-up: fold new events, decide, make TalentLMS match, record, then
    /// finish or sleep until the next deadline or signal.
    #[run(name = WORKFLOW_TYPE)]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<Outcome> {
        let cfg = ctx.state(|s| s.config.clone());
        if ctx.state(|s| s.ledger) {
            load_ledger(ctx, &cfg).await?;
        }
        loop {
            // Any signal after this point wakes the sleep at the end of this pass.
            let seen = ctx.state(|s| s.generation);
            let now = now_ms(ctx);
            let known_user = ctx.state(|s| s.c.user_id.clone());
            let fresh = ctx.state_mut(|s| s.fold_inbox(now));
            refresh_link(ctx, &cfg).await?;
            let now = now_ms(ctx);
            let verdict = ctx.state(|s| s.verdict_at(now));
            let mut actions = sync_enrolments(ctx, &cfg, &verdict).await?;
            if ctx.state(|s| s.ledger && (!fresh.is_empty() || s.c.user_id != known_user)) {
                let entry = ctx.state(|s| s.ledger_entry());
                ctx.execute_local_activity(SaveLedger, entry, local_opts(&cfg)).await?;
            }
            actions.extend(fresh.iter().filter_map(revenue::unbooked));
            if let Some(record) = ctx.state_mut(|s| s.note(now, &verdict, actions)) {
                ctx.execute_local_activity(RecordAccess, record, local_opts(&cfg)).await?;
            }
            upsert_attributes(ctx, &verdict, now);
            // Revenue after access: a student should not wait on the warehouse.
            for row in fresh.iter().filter_map(revenue::row_for) {
                ctx.execute_local_activity(RecordRevenue, row, local_opts(&cfg)).await?;
            }
            let wake = match ctx.state(|s| s.next_step(&verdict, now)) {
                Next::Again => continue,
                Next::Finish => return Ok(ctx.state(|s| s.outcome(&verdict))),
                Next::SleepUntil(at) => Some(at),
                Next::WaitForSignal => None,
            };
            if ctx.continue_as_new_suggested() || ctx.history_length() >= cfg.max_history {
                let next = ctx.state(|s| s.continued());
                ctx.continue_as_new(next, ContinueAsNewOptions::default())?;
            }
            sleep(ctx, seen, wake).await?;
        }
    }
}

fn changed_verdict(old: Option<&Verdict>, v: &Verdict) -> bool {
    old.is_none_or(|o| {
        o.state != v.state || o.entitled != v.entitled || o.until != v.until || o.reason != v.reason
    })
}

impl AccessWorkflow {
    fn verdict_at(&self, now: Millis) -> Verdict {
        access::verdict(&self.c.facts, self.c.link.as_ref(), KeyKind::from(&self.key), now)
    }

    /// Folds the inbox into the facts; returns the events that were new.
    fn fold_inbox(&mut self, now: Millis) -> Vec<HotmartEvent> {
        let inbox = std::mem::take(&mut self.c.inbox);
        let fresh: Vec<HotmartEvent> = inbox.into_iter().filter(|e| self.c.facts.apply(e)).collect();
        if !fresh.is_empty() {
            self.c.last_change = Some(now);
        }
        fresh
    }

    /// The courses the verdict entitles the student to.
    fn desired(&self, v: &Verdict) -> BTreeSet<String> {
        match (v.entitled, &self.c.link) {
            (true, Some(link)) => link.courses.iter().cloned().collect(),
            _ => BTreeSet::new(),
        }
    }

    /// A run that starts revoked (e.g. a chargeback after an earlier, completed run
    /// enrolled the student) releases the link's courses once; grants make that a no-op
    /// where this workflow never enrolled anyone.
    fn sweep(&self, v: &Verdict) -> BTreeSet<String> {
        match &self.c.link {
            Some(l) if v.state == AccessState::Revoked && self.c.enrolled.is_empty() && !self.c.swept => {
                l.courses.iter().cloned().collect()
            }
            _ => BTreeSet::new(),
        }
    }

    fn next_step(&self, v: &Verdict, now: Millis) -> Next {
        let released = !self.ledger || v.entitled || self.c.released;
        let pass = Pass {
            verdict: v,
            in_sync: self.attention.is_none() && self.c.enrolled == self.desired(v) && released,
            inbox_pending: !self.c.inbox.is_empty(),
            now,
            last_change: self.c.last_change.unwrap_or(now),
        };
        let timing = Timing {
            retention_ms: secs_to_ms(self.config.retention_secs),
            retry_ms: secs_to_ms(self.config.max_retry_interval_secs),
            link_poll_ms: secs_to_ms(self.config.link_poll_secs),
        };
        lifecycle::next(pass, timing)
    }

    fn continued(&self) -> AccessInput {
        let carried = Carried { runs: self.c.runs + 1, ..self.c.clone() };
        AccessInput::new(self.key.clone(), self.config.clone(), Some(carried))
    }

    /// Appends a decision when the verdict or TalentLMS changed; returns the student record
    /// to store when there was a change.
    fn note(&mut self, now: Millis, v: &Verdict, actions: Vec<String>) -> Option<StudentAccess> {
        let changed = changed_verdict(self.verdict.as_ref(), v);
        let record = changed || !actions.is_empty();
        if record {
            self.c.decisions.push(Decision {
                at: now,
                state: v.state,
                entitled: v.entitled,
                until: v.until,
                reason: v.reason.clone(),
                actions,
            });
            let excess = self.c.decisions.len().saturating_sub(MAX_DECISIONS);
            self.c.decisions.drain(..excess);
        }
        if changed {
            self.c.last_change = Some(now);
        }
        self.verdict = Some(v.clone());
        let (email, product) =
            (self.c.facts.buyer.as_ref()?.value.email.to_string(), self.c.facts.product_id?);
        record.then(|| StudentAccess {
            email,
            workflow_id: self.key.workflow_id(),
            product_id: product.0,
            talentlms_user_id: self.c.user_id.clone(),
            state: v.state.as_str().into(),
            entitled: v.entitled,
            until: v.until,
            courses: self.c.enrolled.iter().cloned().collect(),
            reason: v.reason.clone(),
            updated_at: now,
        })
    }

    fn ledger_entry(&self) -> LedgerEntry {
        LedgerEntry {
            workflow_id: self.key.workflow_id(),
            facts: self.c.facts.clone(),
            talentlms_user_id: self.c.user_id.clone(),
        }
    }

    fn outcome(&self, v: &Verdict) -> Outcome {
        Outcome {
            state: v.state,
            reason: v.reason.clone(),
            enrolled_courses: self.c.enrolled.iter().cloned().collect(),
            carried: self.c.clone(),
        }
    }

    fn student(&self) -> Option<StudentRef> {
        let b = &self.c.facts.buyer.as_ref()?.value;
        let email = b.email.to_string();
        let (first, last) = match (&b.first_name, &b.last_name, &b.name) {
            (Some(f), Some(l), _) => (f.clone(), l.clone()),
            (_, _, Some(n)) => match n.trim().split_once(' ') {
                Some((f, l)) => (f.to_string(), l.trim().to_string()),
                None => (n.trim().to_string(), "-".into()),
            },
            _ => (email.split('@').next().unwrap_or("student").to_string(), "-".into()),
        };
        Some(StudentRef { email, first_name: first, last_name: last })
    }
}

/// A new run of a key starts from what earlier runs learned: a refund a finished run saw
/// still counts when the approval is resent after it (an ended run's history is gone).
async fn load_ledger(ctx: &mut WorkflowContext<AccessWorkflow>, cfg: &RulesConfig) -> WorkflowResult<()> {
    let id = ctx.workflow_id().to_string();
    if let Some(entry) = ctx.execute_local_activity(LoadLedger, id, local_opts(cfg)).await? {
        ctx.state_mut(|s| {
            s.c.facts.merge(&entry.facts);
            if s.c.user_id.is_none() {
                s.c.user_id = entry.talentlms_user_id;
            }
        });
    }
    Ok(())
}

/// Re-reads the product's course link when told to (first pass, `link_changed`) and on
/// every pass while none is known (the poll).
async fn refresh_link(ctx: &mut WorkflowContext<AccessWorkflow>, cfg: &RulesConfig) -> WorkflowResult<()> {
    let product = ctx.state(|s| s.c.facts.product_id);
    let reload = ctx.state(|s| s.link_stale || s.c.link.is_none());
    if let (Some(product), true) = (product, reload) {
        let link = ctx.execute_local_activity(LoadLink, product, local_opts(cfg)).await?;
        ctx.state_mut(|s| {
            if link.is_some() {
                s.c.link = link;
            }
            s.link_stale = false;
        });
    }
    Ok(())
}

/// Sleeps until `wake` (forever when `None`) or the next signal after generation `seen`.
/// The timer's length is measured from now, not from the start of the pass: the pass may
/// have waited seconds for rate-capped TalentLMS calls, and the deadline would fire that
/// much late (the SDK compares only timer ids on replay, so the length may change).
async fn sleep(
    ctx: &mut WorkflowContext<AccessWorkflow>,
    seen: u64,
    wake: Option<Millis>,
) -> WorkflowResult<()> {
    let Some(wake_at) = wake else {
        ctx.wait_condition(move |s: &AccessWorkflow| s.generation != seen).await?;
        return Ok(());
    };
    // The timer drops its cancel callback when the run is evicted asleep: the patched
    // SDK (vendor/PATCHES.md) does that for every pending timer and activity.
    let sleep = Duration::from_millis(wake_at.saturating_sub(now_ms(ctx)).max(1) as u64);
    let timer = ctx.timer(TimerOptions::builder(sleep).build());
    let mut timer = std::pin::pin!(timer);
    temporalio_sdk::workflows::select! {
        woke = ctx.wait_condition(move |s: &AccessWorkflow| s.generation != seen) => { timer.cancel(); woke?; }
        _ = timer.as_mut() => {}
    };
    Ok(())
}

/// TalentLMS enrolment sync: makes TalentLMS match the verdict's courses, also releasing
/// the sweep (courses this run may not know it holds). Permanent failures are reported on
/// the status (and retried later) instead of failing the run, so no payment state is lost.
async fn sync_enrolments(
    ctx: &mut WorkflowContext<AccessWorkflow>,
    cfg: &RulesConfig,
    verdict: &Verdict,
) -> WorkflowResult<Vec<String>> {
    let mut actions = Vec::new();
    ctx.state_mut(|s| s.attention = None);
    if ctx.state(|s| s.ledger && !verdict.entitled && !s.c.released) {
        release_held(ctx, cfg, &mut actions).await?;
        return Ok(actions);
    }
    let (desired, sweep) =
        ctx.state(|s| (s.desired(verdict), if s.ledger { BTreeSet::new() } else { s.sweep(verdict) }));
    let (desired, sweep) = (&desired, &sweep);
    let current = ctx.state(|s| s.c.enrolled.clone());
    let to_add: Vec<String> = desired.difference(&current).cloned().collect();
    let to_remove: Vec<String> = current.union(sweep).filter(|c| !desired.contains(*c)).cloned().collect();
    if to_add.is_empty() && to_remove.is_empty() {
        return Ok(actions);
    }
    let workflow_id = ctx.workflow_id().to_string();
    let known = ctx.state(|s| s.c.user_id.clone());
    let user_id = match (known, to_add.is_empty()) {
        (Some(id), _) => id,
        // Only removing: look the user up, never create one just to unenroll.
        (None, true) => {
            let email = ctx.state(|s| s.student().map(|st| st.email));
            let found = match email {
                Some(e) => ctx.execute_activity(FindUser, e, talentlms_opts(cfg)).await.ok().flatten(),
                None => None,
            };
            match found {
                Some(id) => id,
                None => {
                    ctx.state_mut(|s| {
                        s.c.swept = true;
                        s.c.enrolled.clear();
                    });
                    return Ok(actions);
                }
            }
        }
        (None, false) => {
            let Some(student) = ctx.state(|s| s.student()) else {
                ctx.state_mut(|s| {
                    s.attention = Some("waiting for an event that names the buyer's email".into())
                });
                return Ok(actions);
            };
            let found = if ctx.state(|s| s.lean) {
                lean_user(ctx, cfg, student).await
            } else {
                ensure_user(ctx, cfg, student).await
            };
            match found {
                Ok(id) => id,
                Err(msg) => {
                    let msg = format!("cannot find or create the TalentLMS user: {msg}");
                    actions.push(msg.clone());
                    ctx.state_mut(|s| s.attention = Some(msg));
                    return Ok(actions);
                }
            }
        }
    };
    ctx.state_mut(|s| {
        s.c.user_id = Some(user_id.clone());
        // The enroll records a grant before its call: a later revoke must look again.
        s.c.released &= to_add.is_empty();
    });
    let lean = ctx.state(|s| s.lean);
    let mut user_id = user_id;
    for course in to_add {
        let input = Enrollment {
            user_id: user_id.clone(),
            course_id: course.clone(),
            workflow_id: workflow_id.clone(),
        };
        let enrolled = if lean {
            enroll_lean(ctx, cfg, input, &mut user_id).await
        } else {
            ctx.execute_activity(Enroll, input, talentlms_opts(cfg)).await.map_err(|e| e.to_string())
        };
        match enrolled {
            Ok(()) => {
                ctx.state_mut(|s| s.c.enrolled.insert(course.clone()));
                actions.push(format!("enrolled in course {course}"));
            }
            Err(e) => {
                let msg = format!("enroll in course {course} failed: {e}");
                actions.push(msg.clone());
                ctx.state_mut(|s| s.attention = Some(msg));
            }
        }
    }
    let mut failed = false;
    for course in to_remove {
        let input =
            Enrollment { user_id: user_id.clone(), course_id: course, workflow_id: workflow_id.clone() };
        failed |= !unenroll(ctx, cfg, input, &mut actions).await;
    }
    if !failed && !sweep.is_empty() {
        ctx.state_mut(|s| s.c.swept = true);
    }
    Ok(actions)
}

/// Enroll with a user id that may be stale; when TalentLMS knows no such user (deleted
/// by hand), find or create the student again and enroll once more with the new id.
async fn enroll_lean(
    ctx: &mut WorkflowContext<AccessWorkflow>,
    cfg: &RulesConfig,
    mut input: Enrollment,
    user_id: &mut String,
) -> Result<(), String> {
    let opts = fair_talentlms_opts(cfg, Fairness::Enroll);
    if ctx.execute_activity(EnrollKnown, input.clone(), opts.clone()).await.map_err(|e| e.to_string())? {
        return Ok(());
    }
    let student = ctx.state(|s| s.student()).ok_or("the buyer's email is unknown")?;
    *user_id = create_or_find(ctx, cfg, student).await?;
    ctx.state_mut(|s| s.c.user_id = Some(user_id.clone()));
    input.user_id = user_id.clone();
    match ctx.execute_activity(EnrollKnown, input, opts).await.map_err(|e| e.to_string())? {
        true => Ok(()),
        false => Err(format!("TalentLMS user {user_id} vanished right after it was found")),
    }
}

/// One unenroll; a failure is noted for the operator (and the pass retried later).
/// Returns whether it went through.
async fn unenroll(
    ctx: &mut WorkflowContext<AccessWorkflow>,
    cfg: &RulesConfig,
    input: Enrollment,
    actions: &mut Vec<String>,
) -> bool {
    let course = input.course_id.clone();
    let opts = if ctx.state(|s| s.lean) {
        fair_talentlms_opts(cfg, Fairness::Unenroll)
    } else {
        talentlms_opts(cfg)
    };
    match ctx.execute_activity(Unenroll, input, opts).await {
        Ok(what) => {
            ctx.state_mut(|s| s.c.enrolled.remove(&course));
            actions.push(format!("course {course}: {what}"));
            true
        }
        Err(e) => {
            let msg = format!("unenroll from course {course} failed (will retry): {e}");
            actions.push(msg.clone());
            ctx.state_mut(|s| s.attention = Some(msg));
            false
        }
    }
}

/// Revoke through the ledger: releases every grant this key holds, with the TalentLMS
/// user id stored at grant time and whatever link it was granted under. Done only when
/// all went through; a failure is retried on a later pass, never taken as done.
async fn release_held(
    ctx: &mut WorkflowContext<AccessWorkflow>,
    cfg: &RulesConfig,
    actions: &mut Vec<String>,
) -> WorkflowResult<()> {
    let workflow_id = ctx.workflow_id().to_string();
    let held = ctx.execute_local_activity(HeldGrants, workflow_id.clone(), local_opts(cfg)).await?;
    let mut failed = false;
    for grant in held {
        let input = Enrollment {
            user_id: grant.user_id,
            course_id: grant.course_id,
            workflow_id: workflow_id.clone(),
        };
        failed |= !unenroll(ctx, cfg, input, actions).await;
    }
    if !failed {
        ctx.state_mut(|s| {
            s.c.released = true;
            s.c.enrolled.clear();
        });
    }
    Ok(())
}

/// 9999-12-31T00:00:00Z: what `AccessUntil` shows for lifetime access.
pub const FOREVER_MS: Millis = 253_402_214_400_000;

/// Find, else create; on a create conflict (another worker, or the login is taken) look
/// up again, then try once with a suffixed login.
async fn ensure_user(
    ctx: &mut WorkflowContext<AccessWorkflow>,
    cfg: &RulesConfig,
    student: StudentRef,
) -> Result<String, String> {
    let email = student.email.clone();
    for login_suffix in [false, true] {
        if let Some(id) = ctx
            .execute_activity(FindUser, email.clone(), talentlms_opts(cfg))
            .await
            .map_err(|e| e.to_string())?
        {
            return Ok(id);
        }
        let input = NewStudent { student: student.clone(), login_suffix };
        if let Some(id) =
            ctx.execute_activity(CreateUser, input, talentlms_opts(cfg)).await.map_err(|e| e.to_string())?
        {
            return Ok(id);
        }
    }
    Err(format!("{email} exists in TalentLMS but cannot be found by email"))
}

/// The user id for a new enrolment in the fewest calls: the one an earlier purchase of
/// this email learned (no call; the enroll verifies it), else [`create_or_find`].
async fn lean_user(
    ctx: &mut WorkflowContext<AccessWorkflow>,
    cfg: &RulesConfig,
    student: StudentRef,
) -> Result<String, String> {
    let known = ctx.execute_local_activity(KnownUser, student.email.clone(), local_opts(cfg)).await;
    match known.map_err(|e| e.to_string())? {
        Some(id) => Ok(id),
        None => create_or_find(ctx, cfg, student).await,
    }
}

/// Create first (a new student costs one call); only when the email or login is taken
/// look it up, then once more with a suffixed login.
async fn create_or_find(
    ctx: &mut WorkflowContext<AccessWorkflow>,
    cfg: &RulesConfig,
    student: StudentRef,
) -> Result<String, String> {
    let opts = fair_talentlms_opts(cfg, Fairness::Enroll);
    let email = student.email.clone();
    for login_suffix in [false, true] {
        let input = NewStudent { student: student.clone(), login_suffix };
        if let Some(id) =
            ctx.execute_activity(CreateUser, input, opts.clone()).await.map_err(|e| e.to_string())?
        {
            return Ok(id);
        }
        if let Some(id) =
            ctx.execute_activity(FindUser, email.clone(), opts.clone()).await.map_err(|e| e.to_string())?
        {
            return Ok(id);
        }
    }
    Err(format!("{email} exists in TalentLMS but cannot be found by email"))
}

fn upsert_attributes(ctx: &mut WorkflowContext<AccessWorkflow>, v: &Verdict, now: Millis) {
    let attrs = (v.state.as_str().to_string(), v.until);
    if ctx.state(|s| s.last_attrs.as_ref() == Some(&attrs)) {
        return;
    }
    let (email, product) =
        ctx.state(|s| (s.c.facts.buyer.as_ref().map(|b| b.value.email.to_string()), s.c.facts.product_id));
    let mut updates: Vec<SearchAttributeUpdate> = vec![SA_ACCESS_STATE.value_set(attrs.0.clone())];
    if let Some(e) = email {
        updates.push(SA_BUYER_EMAIL.value_set(e));
    }
    if let Some(p) = product {
        updates.push(SA_PRODUCT_ID.value_set(p.to_string()));
    }
    // The server rejects an unset Datetime, so every state has a value: the deadline,
    // "forever" for lifetime access, or when access was last evaluated as off.
    let until = match (v.entitled, v.until) {
        (true, Some(u)) => u,
        (true, None) => FOREVER_MS,
        (false, _) => now,
    };
    updates.push(
        SA_ACCESS_UNTIL
            .value_set(Timestamp::new(until.div_euclid(1000), (until.rem_euclid(1000) * 1_000_000) as i32)),
    );
    ctx.upsert_search_attributes(updates);
    ctx.state_mut(|s| s.last_attrs = Some(attrs));
}

/// Workflow time (deterministic on replay), epoch ms.
pub(crate) fn now_ms<W>(ctx: &WorkflowContext<W>) -> Millis {
    ctx.workflow_time().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_millis() as Millis)
}

fn retry(cfg: &RulesConfig) -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_millis(500))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(cfg.max_retry_interval_secs.max(1)))
        .build()
}

/// Store and warehouse calls are short local activities: they run in the worker that
/// runs the workflow, and after a worker crash they re-run at once on replay instead of
/// waiting out a task timeout (which would also delay the deadlines queued behind them).
fn local_opts(cfg: &RulesConfig) -> LocalActivityOptions {
    LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(10))
        .retry_policy(retry(cfg))
        .build()
}

/// TalentLMS activities run on their own, rate-limited task queue. They retry until they
/// succeed or fail permanently (a 4xx that cannot succeed).
fn talentlms_opts(cfg: &RulesConfig) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(20))
        .task_queue(cfg.talentlms_task_queue.clone())
        .retry_policy(retry(cfg))
        .build()
}

/// [`talentlms_opts`] with a fairness key. Enrolls and unenrolls share the TalentLMS
/// queue's rate cap; with fairness keys the server dispatches a backlog of both by weight,
/// so a wave of enrolments cannot hold unenrolls past their deadline, nor the reverse.
fn fair_talentlms_opts(cfg: &RulesConfig, fairness: Fairness) -> ActivityOptions {
    let mut opts = talentlms_opts(cfg);
    let (key, weight) = match fairness {
        Fairness::Enroll => ("enroll", 1.0),
        // 3:1. An unenroll has a deadline and arrives no faster than terms end; a wave of
        // enrolments can fill the cap for minutes. Enrolments keep a quarter of the cap
        // during a mass expiry, so neither starves. Replay-safe: core matches an
        // activity's command to its event by type only.
        Fairness::Unenroll => ("unenroll", 3.0),
    };
    opts.priority = Some(Priority::builder().fairness_key(key).fairness_weight(weight).build());
    opts
}

/// The two kinds of TalentLMS call that share the queue's cap by fairness key.
#[derive(Clone, Copy)]
enum Fairness {
    Enroll,
    Unenroll,
}
