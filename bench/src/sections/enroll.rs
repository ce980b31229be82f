//! New purchases at a fixed rate: purchase -> enrolled in the simulator. Then the same
//! path at 1 purchase/s, the control: what it costs when the dev server is not busy.

use std::collections::HashMap;
use std::time::Duration;

use tollgate_domain::fixtures::Sale;
use tollgate_tests::{now_ms, purchase_wf, unique};

use super::breakdown::{Sample, print_breakdown};
use super::{Run, watch};
use crate::args::Args;
use crate::process::Cpu;
use crate::stats::{Dist, Report, dist, ms, print_dist};
use crate::stream::LIFETIME;

pub async fn enroll_section(a: &Args, run: &Run, rep: &mut Report) {
    let n = (a.enroll_rate * a.enroll_secs as f64) as usize;
    let (d, never) = purchases(run, a.enroll_rate, n).await;
    rep.add("purchase -> enrolled p50", ms(d.p50), Some(d.p50 <= 150.0));
    rep.add("purchase -> enrolled p99", ms(d.p99), Some(d.p99 <= 1000.0 && never == 0));
    rep.add("purchases never enrolled", never.to_string(), None);
    if a.enroll_rate > 1.0 {
        let (c, _) = purchases(run, 1.0, a.enroll_secs as usize).await;
        rep.add(
            "control at 1/s: purchase -> enrolled p50 / p99",
            format!("{} / {}", ms(c.p50), ms(c.p99)),
            None,
        );
    }
}

/// Posts `n` new purchases at `rate` per second; prints the latency, the breakdown and the
/// CPU line. Returns the latency and how many were never enrolled.
async fn purchases(run: &Run, rate: f64, n: usize) -> (Dist, usize) {
    println!("-- enroll: {n} new purchases at {rate}/s");
    let cpu = Cpu::start(&run.pids());
    let waits = run.task_waits().await;
    let emails: Vec<String> = (0..n).map(|i| format!("e2e{i}-{}@example.com", unique(""))).collect();
    let want: HashMap<String, bool> = emails.iter().map(|e| (e.clone(), true)).collect();
    let watcher = tokio::spawn({
        let stack = run.stack.clone();
        async move { watch(&stack, &want, Duration::from_secs(120)).await }
    });
    let mut posted = HashMap::new();
    let mut workflow_of = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let mut errors = 0;
    let mut sends = Vec::new();
    for e in &emails {
        tick.tick().await;
        let txn = unique("HP");
        let body = Sale::one_off(LIFETIME, &txn, e).event("PURCHASE_APPROVED", &unique("e"), now_ms());
        workflow_of.insert(e.clone(), purchase_wf(&txn));
        posted.insert(e.clone(), now_ms());
        let poster = run.poster.clone();
        sends.push(tokio::spawn(async move { poster.post(body.to_string().into()).await }));
    }
    for s in sends {
        if !(200..300).contains(&s.await.unwrap().status) {
            errors += 1;
        }
    }
    let seen = watcher.await.unwrap();
    let d = dist(seen.iter().map(|(e, t)| (t - posted[e]) as f64).collect());
    print_dist("purchase -> enrolled", d);
    println!("  never enrolled {}, posts not acknowledged {errors}", n - seen.len());
    // Every 10th run across the whole run, at least 10 of them.
    let step = (n / 10).clamp(1, 10);
    let samples: Vec<Sample> = emails
        .iter()
        .step_by(step)
        .filter_map(|e| {
            Some(Sample { workflow_id: workflow_of[e].clone(), posted: posted[e], enrolled: *seen.get(e)? })
        })
        .collect();
    print_breakdown(&run.stack, &samples).await;
    run.print_task_waits_since(&waits).await;
    println!("  {}", cpu.line());
    (d, n - seen.len())
}
