//! Where the time goes, from each sampled run's history, phase by phase: purchase ->
//! enrolled from the moment the webhook was posted, and deadline -> unenrolled from the
//! deadline. Event times are the server's clock, the same machine's.

use std::collections::BTreeMap;

use tollgate_tests::Stack;
use tollgate_tests::history::{
    self, ACT_COMPLETED, ACT_SCHEDULED, ACT_STARTED, TIMER_FIRED, WF_STARTED, WFT_STARTED,
};

use crate::stats::{dist, print_dist};

/// One run to break down: its workflow id, when its webhook was posted and when the
/// simulator showed the enrolment (epoch ms).
pub struct Sample {
    pub workflow_id: String,
    pub posted: i64,
    pub enrolled: i64,
}

/// One unenrolled run: its workflow id, its deadline and when the simulator showed the
/// access gone (epoch ms).
pub struct Expiry {
    pub workflow_id: String,
    pub deadline: i64,
    pub gone: i64,
}

/// Prints the median and p99 of each enrolment phase over the samples.
pub async fn print_breakdown(stack: &Stack, samples: &[Sample]) {
    let mut phases = Phases::default();
    for s in samples {
        phases.add(enrolment_phases(&events(stack, &s.workflow_id).await.0, s));
    }
    phases.print(samples.len());
}

/// Prints the median and p99 of each unenroll phase: the first one is the dev server's
/// own timer lateness, the wait for the rate cap comes after it.
pub async fn print_expiry_breakdown(stack: &Stack, samples: &[Expiry]) -> Phases {
    let mut phases = Phases::default();
    for s in samples {
        let (events, timers) = events(stack, &s.workflow_id).await;
        phases.add(expiry_phases(&events, &timers, s));
    }
    phases.print(samples.len());
    phases
}

/// Phase name (sorted by its two-digit prefix) -> durations in ms.
#[derive(Default)]
pub struct Phases(BTreeMap<String, Vec<f64>>);

impl Phases {
    fn add(&mut self, phases: Vec<(String, f64)>) {
        for (name, d) in phases {
            self.0.entry(name).or_default().push(d);
        }
    }

    fn print(&self, runs: usize) {
        println!("  breakdown over {runs} runs (history event times; phases in order):");
        for (name, v) in &self.0 {
            print_dist(&format!("  {}", &name[3..]), dist(v.clone()));
        }
    }

    /// The distribution of the phase whose name contains `part`.
    pub fn get(&self, part: &str) -> Option<crate::stats::Dist> {
        self.0.iter().find(|(k, _)| k.contains(part)).map(|(_, v)| dist(v.clone()))
    }
}

/// (event type, event time in epoch ms) of a run's history, and each timer's (started at,
/// length in ms); empty when it cannot be read.
async fn events(stack: &Stack, workflow_id: &str) -> (Vec<(i64, i64)>, Vec<(i64, i64)>) {
    match stack.history_json(workflow_id).await {
        Some(h) => (history::events(&h), history::timers(&h)),
        None => Default::default(),
    }
}

/// The time of the first event of type `ty` at or after `after`.
fn first(events: &[(i64, i64)], ty: i64, after: i64) -> Option<i64> {
    events.iter().find(|(t, at)| *t == ty && *at >= after).map(|(_, at)| *at)
}

/// `(phase, ms)` for one expiry: deadline -> timer due (when the workflow set it for) ->
/// fired -> unenroll scheduled -> picked up -> seen gone. Runs whose term ended before
/// they were enrolled never slept on a timer and give nothing.
fn expiry_phases(events: &[(i64, i64)], timers: &[(i64, i64)], s: &Expiry) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    // The timer set for the deadline: the last one started before it fired.
    let Some(fired) = first(events, TIMER_FIRED, s.deadline - 1_000).filter(|at| *at <= s.gone) else {
        return out;
    };
    out.push(("98 timer fired -> seen gone (Tollgate's part)".into(), (s.gone - fired) as f64));
    out.push(("99 total (deadline -> seen gone)".into(), (s.gone - s.deadline) as f64));
    if let Some((started, length)) = timers.iter().rev().find(|(at, _)| *at <= fired) {
        let due = started + length;
        out.push(("00 deadline -> timer due (as the workflow set it)".into(), (due - s.deadline) as f64));
        out.push(("01 timer due -> fired (dev server)".into(), (fired - due) as f64));
    }
    let Some(task) = first(events, WFT_STARTED, fired) else { return out };
    out.push(("02 timer fired -> workflow task picked up".into(), (task - fired) as f64));
    let Some(sched) = first(events, ACT_SCHEDULED, task) else { return out };
    out.push(("03 task (local activities) -> unenroll scheduled".into(), (sched - task) as f64));
    let Some(picked) = first(events, ACT_STARTED, sched) else { return out };
    out.push(("04 queue wait (rate cap)".into(), (picked - sched) as f64));
    // The access is gone during the call, before its completion is recorded.
    out.push(("05 pace + HTTP call (-> seen gone)".into(), (s.gone - picked) as f64));
    out
}

/// `(phase, ms)` for one run, up to its last TalentLMS activity before the enrolment.
fn enrolment_phases(events: &[(i64, i64)], s: &Sample) -> Vec<(String, f64)> {
    let first = |ty: i64, after: i64| first(events, ty, after);
    let mut out = Vec::new();
    let Some(started) = first(WF_STARTED, 0) else { return out };
    out.push(("00 webhook -> journal -> run started".into(), (started - s.posted) as f64));
    let Some(wft) = first(WFT_STARTED, started) else { return out };
    out.push(("01 run started -> first task picked up".into(), (wft - started) as f64));
    let mut cursor = wft;
    let mut n = 0;
    while let Some(sched) = first(ACT_SCHEDULED, cursor).filter(|at| *at <= s.enrolled) {
        let label =
            if n == 0 { "task (local activities) -> activity" } else { "activity done -> next scheduled" };
        out.push((format!("{:02} {label} #{}", 2 + n * 3, n + 1), (sched - cursor) as f64));
        let Some(picked) = first(ACT_STARTED, sched) else { break };
        out.push((format!("{:02} queue wait (rate cap) #{}", 3 + n * 3, n + 1), (picked - sched) as f64));
        let Some(done) = first(ACT_COMPLETED, picked) else { break };
        out.push((format!("{:02} pace + HTTP call #{}", 4 + n * 3, n + 1), (done - picked) as f64));
        cursor = done;
        n += 1;
    }
    out.push(("99 total (posted -> seen enrolled)".into(), (s.enrolled - s.posted) as f64));
    out
}
