//! Fixed-term purchases with a 5 s term: unenroll lateness after the deadline.

use std::collections::HashMap;
use std::time::Duration;

use tollgate_domain::fixtures::Sale;
use tollgate_tests::{now_ms, purchase_wf, unique};

use super::Run;
use super::breakdown::{Expiry, print_expiry_breakdown};
use crate::args::Args;
use crate::process::Cpu;
use crate::stats::{Report, dist, ms, print_dist};
use crate::stream::{LIFETIME, TERM};

pub async fn unenroll_section(a: &Args, run: &Run, rep: &mut Report) {
    // New students cost two calls each (create, enroll): this wave alone fills the cap.
    let wave_rate = a.max_rps / 2.0;
    println!(
        "-- unenroll: {} fixed-term purchases with a 5 s term, while new purchases arrive at {wave_rate}/s (the cap)",
        a.expiries
    );
    let cpu = Cpu::start(&run.pids());
    let waits = run.task_waits().await;
    let t0 = now_ms();
    let wave_until = t0 + a.expiries as i64 * 50 + 10_000;
    let wave = tokio::spawn({
        let poster = run.poster.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / wave_rate));
            let mut sent = 0;
            while now_ms() < wave_until {
                tick.tick().await;
                let e = format!("wave{sent}-{}@example.com", unique(""));
                let body = Sale::one_off(LIFETIME, &unique("HP"), &e).event(
                    "PURCHASE_APPROVED",
                    &unique("e"),
                    now_ms(),
                );
                let poster = poster.clone();
                tokio::spawn(async move { poster.post(body.to_string().into()).await });
                sent += 1;
            }
            sent
        }
    });
    let mut deadlines = HashMap::new();
    let mut workflow_of = HashMap::new();
    for i in 0..a.expiries {
        let e = format!("exp{i}-{}@example.com", unique(""));
        let approved = t0 + (i as i64 * 50);
        let txn = unique("HP");
        let sale = Sale { approved_date: Some(approved), ..Sale::one_off(TERM, &txn, &e) };
        run.poster.post(sale.event("PURCHASE_APPROVED", &unique("e"), approved).to_string().into()).await;
        deadlines.insert(e.clone(), approved + 5_000);
        workflow_of.insert(e, purchase_wf(&txn));
    }
    let (gone, never) = watch_expiries(run, &deadlines, Duration::from_secs(30)).await;
    let d = dist(gone.iter().map(|(e, t)| (t - deadlines[e]) as f64).collect());
    print_dist("unenroll lateness after deadline", d);
    println!(
        "  never unenrolled {}; term over before enrolment {never}; enrolment wave: {} purchases",
        a.expiries - gone.len() - never,
        wave.await.unwrap_or(0)
    );
    println!("  {}", cpu.line());
    run.print_task_waits_since(&waits).await;
    let samples: Vec<Expiry> = gone
        .iter()
        .map(|(e, t)| Expiry { workflow_id: workflow_of[e].clone(), deadline: deadlines[e], gone: *t })
        .collect();
    let phases = print_expiry_breakdown(&run.stack, &samples).await;
    rep.add("unenroll lateness p50", ms(d.p50), None);
    rep.add("unenroll lateness p99", ms(d.p99), Some(d.p99 <= 2000.0 && gone.len() + never == a.expiries));
    // The part of it the dev server's timers own, and the part after the timer fired.
    let set = phases.get("as the workflow set it").unwrap_or(dist(vec![]));
    let timer = phases.get("fired (dev server)").unwrap_or(dist(vec![]));
    let ours = phases.get("Tollgate's part").unwrap_or(dist(vec![]));
    rep.add(
        "unenroll: timer due after the deadline p50 / p99",
        format!("{} / {}", ms(set.p50), ms(set.p99)),
        None,
    );
    rep.add(
        "unenroll: dev server timer lateness p50 / p99",
        format!("{} / {}", ms(timer.p50), ms(timer.p99)),
        None,
    );
    rep.add("unenroll: timer fired -> gone p50 / p99", format!("{} / {}", ms(ours.p50), ms(ours.p99)), None);
}

/// One pass over the simulator for both transitions: when each student is first seen
/// without access at or after their deadline, having been seen with it before. Waiting
/// for every enrolment first would stamp all unenrolls at the end of that wait when one
/// enrolment comes late. Returns (email -> first seen gone, students never seen enrolled).
async fn watch_expiries(
    run: &Run,
    deadlines: &HashMap<String, i64>,
    within: Duration,
) -> (HashMap<String, i64>, usize) {
    let mut had_access = std::collections::HashSet::new();
    let mut gone = HashMap::new();
    let until = deadlines.values().max().copied().unwrap_or(0) + within.as_millis() as i64;
    while gone.len() < deadlines.len() && now_ms() < until {
        let enrolled: std::collections::HashSet<String> =
            run.stack.sim.enrollments().into_iter().map(|(e, _)| e).collect();
        let t = now_ms();
        for (email, deadline) in deadlines {
            if enrolled.contains(email) {
                had_access.insert(email.clone());
            } else if t >= *deadline && had_access.contains(email) {
                gone.entry(email.clone()).or_insert(t);
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (gone, deadlines.len() - had_access.len())
}
