//! New purchases at a fixed rate: purchase -> enrolled in the simulator.

use std::collections::HashMap;
use std::time::Duration;

use tollgate_domain::fixtures::Sale;
use tollgate_tests::{now_ms, purchase_wf, unique};

use super::breakdown::{Sample, print_breakdown};
use super::{Run, watch};
use crate::args::Args;
use crate::process::Cpu;
use crate::stats::{Report, dist, ms, print_dist};
use crate::stream::LIFETIME;

pub async fn enroll_section(a: &Args, run: &Run, rep: &mut Report) {
    let n = (a.enroll_rate * a.enroll_secs as f64) as usize;
    println!("-- enroll: {n} new purchases at {}/s", a.enroll_rate);
    let cpu = Cpu::start(&run.pids());
    let emails: Vec<String> = (0..n).map(|i| format!("e2e{i}-{}@example.com", unique(""))).collect();
    let want: HashMap<String, bool> = emails.iter().map(|e| (e.clone(), true)).collect();
    let watcher = tokio::spawn({
        let stack = run.stack.clone();
        async move { watch(&stack, &want, Duration::from_secs(120)).await }
    });
    let mut posted = HashMap::new();
    let mut workflow_of = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / a.enroll_rate));
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
    // Every 10th run, across the whole section.
    let samples: Vec<Sample> = emails
        .iter()
        .step_by(10)
        .filter_map(|e| {
            Some(Sample { workflow_id: workflow_of[e].clone(), posted: posted[e], enrolled: *seen.get(e)? })
        })
        .collect();
    print_breakdown(&run.stack, &samples).await;
    println!("  {}", cpu.line());
    rep.add("purchase -> enrolled p50", ms(d.p50), Some(d.p50 <= 150.0));
    rep.add("purchase -> enrolled p99", ms(d.p99), Some(d.p99 <= 1000.0 && seen.len() == n));
    rep.add("purchases never enrolled", (n - seen.len()).to_string(), None);
}
