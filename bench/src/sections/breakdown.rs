//! Where purchase -> enrolled goes: each sampled run's history, phase by phase, from the
//! moment the webhook was posted. Event times are the server's clock, the same machine's.

use std::collections::BTreeMap;

use serde_json::Value;
use tollgate_tests::Stack;

use crate::stats::{dist, print_dist};

// History event types (temporal.api.enums.v1.EventType).
const WF_STARTED: i64 = 1;
const WFT_STARTED: i64 = 6;
const ACT_SCHEDULED: i64 = 10;
const ACT_STARTED: i64 = 11;
const ACT_COMPLETED: i64 = 12;

/// One run to break down: its workflow id, when its webhook was posted and when the
/// simulator showed the enrolment (epoch ms).
pub struct Sample {
    pub workflow_id: String,
    pub posted: i64,
    pub enrolled: i64,
}

/// Prints the median and p99 of each phase over the samples.
pub async fn print_breakdown(stack: &Stack, samples: &[Sample]) {
    let client = stack.client().await;
    let mut phases: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for s in samples {
        let handle = client.get_workflow_handle::<tollgate_workflows::AccessWorkflow>(s.workflow_id.clone());
        let Ok(json) = handle.fetch_history(Default::default()).to_json().await else { continue };
        let Ok(history) = serde_json::from_slice::<Value>(&json) else { continue };
        for (name, d) in phases_of(&history, s) {
            phases.entry(name).or_default().push(d);
        }
    }
    println!("  breakdown over {} runs (history event times; phases in order):", samples.len());
    for (name, v) in phases {
        print_dist(&format!("  {}", &name[3..]), dist(v));
    }
}

/// `(phase, ms)` for one run, up to its last TalentLMS activity before the enrolment.
fn phases_of(history: &Value, s: &Sample) -> Vec<(String, f64)> {
    let events: Vec<(i64, i64)> = history["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| Some((e["event_type"].as_i64()?, at_ms(e["event_time"].as_str()?)?)))
        .collect();
    let first =
        |ty: i64, after: i64| events.iter().find(|(t, at)| *t == ty && *at >= after).map(|(_, at)| *at);
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

fn at_ms(rfc3339: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339).ok().map(|t| t.timestamp_millis())
}
