//! Fixed-term purchases with a 5 s term: unenroll lateness after the deadline, while a
//! wave of new purchases keeps the TalentLMS cap full.
//!
//! Three variants, each on the same stack:
//! - `during` (the target): the expiring students are enrolled on an idle cap, then the
//!   wave starts, so every deadline falls while enrolments fill the cap. What it measures
//!   is whether unenrolls queue behind the wave, and whether the wave starves.
//! - `quiet` (the control): the same without the wave, so the same path on an idle dev
//!   server; what `during` adds to it is the wave's load on the server and the cap.
//! - `overload`: the wave and the expiring purchases start together, so demand is above
//!   the cap and the expiring students' own enrolments come out of its backlog, some after
//!   their term. Reported for comparison; no target.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tollgate_domain::fixtures::Sale;
use tollgate_tests::{now_ms, purchase_wf, unique};

use super::Run;
use super::breakdown::{Expiry, print_expiry_breakdown};
use crate::args::Args;
use crate::process::Cpu;
use crate::stats::{Report, dist, ms, print_dist};
use crate::stream::{LIFETIME, TERM};

/// Time between the expiring purchases' approval dates (and so between their deadlines).
const SPACING_MS: i64 = 50;
const TERM_MS: i64 = 5_000;

/// One unenroll run (`--unenroll-variants`); see the module's comment.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Variant {
    During,
    Quiet,
    Overload,
}

pub async fn unenroll_section(a: &Args, run: &Run, rep: &mut Report) {
    for variant in &a.unenroll_variants {
        unenroll_run(a, run, rep, *variant).await;
    }
}

async fn unenroll_run(a: &Args, run: &Run, rep: &mut Report, variant: Variant) {
    let overload = variant == Variant::Overload;
    // New students cost two calls each (create, enroll): this wave alone fills the cap.
    let wave_rate = if variant == Variant::Quiet { 0.0 } else { a.max_rps / 2.0 };
    let t0 = now_ms();
    let last_approved = t0 + (a.expiries as i64 - 1) * SPACING_MS;
    // `during`: the expiring students' two calls each take expiries * 2 / cap seconds on an
    // idle cap (2.5 s for 50 at 40/s); the wave starts just after, well before the first
    // deadline.
    let wave_from =
        if overload { t0 } else { t0 + (a.expiries as f64 * 2.0 / a.max_rps * 1000.0) as i64 + 500 };
    let wave_until = last_approved + TERM_MS + 5_000;
    println!(
        "-- unenroll ({}): {} fixed-term purchases with a 5 s term; {}",
        clap::ValueEnum::to_possible_value(&variant).expect("named").get_name(),
        a.expiries,
        match variant {
            Variant::Overload =>
                "new purchases at the cap from the same moment, so the expiring students' \
                           enrolments queue in the cap's backlog",
            Variant::Quiet => "no other load (the control)",
            Variant::During =>
                "new purchases at the cap from when the expiring students are enrolled until after \
                  the last deadline",
        }
    );
    if wave_rate > 0.0 {
        println!("  wave: {wave_rate} new students/s, two calls each");
    }
    if !overload && wave_from >= t0 + TERM_MS {
        // Too many expiries for the cap: the wave would start after the first deadline.
        println!(
            "  WARNING: the wave starts {} ms after the first deadline; fewer --expiries or a higher --max-rps",
            wave_from - t0 - TERM_MS
        );
    }
    let cpu = Cpu::start(&run.pids());
    let waits = run.task_waits().await;
    let wave_sent: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
    let wave = tokio::spawn({
        let poster = run.poster.clone();
        let sent = wave_sent.clone();
        async move {
            if wave_rate == 0.0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis((wave_from - now_ms()).max(0) as u64)).await;
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / wave_rate));
            while now_ms() < wave_until {
                tick.tick().await;
                let e = format!("wave-{}@example.com", unique(""));
                let body = Sale::one_off(LIFETIME, &unique("HP"), &e).event(
                    "PURCHASE_APPROVED",
                    &unique("e"),
                    now_ms(),
                );
                sent.lock().unwrap().push((e, now_ms()));
                let poster = poster.clone();
                tokio::spawn(async move { poster.post(body.to_string().into()).await });
            }
        }
    });
    let mut deadlines = HashMap::new();
    let mut workflow_of = HashMap::new();
    for i in 0..a.expiries {
        let e = format!("exp{i}-{}@example.com", unique(""));
        let approved = t0 + i as i64 * SPACING_MS;
        let txn = unique("HP");
        let sale = Sale { approved_date: Some(approved), ..Sale::one_off(TERM, &txn, &e) };
        run.poster.post(sale.event("PURCHASE_APPROVED", &unique("e"), approved).to_string().into()).await;
        deadlines.insert(e.clone(), approved + TERM_MS);
        workflow_of.insert(e, purchase_wf(&txn));
    }
    let seen = watch(run, &deadlines, &wave_sent, &wave, Duration::from_secs(30)).await;
    let d = dist(seen.gone.iter().map(|(e, t)| (t - deadlines[e]) as f64).collect());
    print_dist("unenroll lateness after deadline", d);
    let never_unenrolled = a.expiries - seen.gone.len() - seen.never_enrolled;
    println!("  never unenrolled {never_unenrolled}; term over before enrolment {}", seen.never_enrolled);
    let w = dist(seen.wave_latency.clone());
    if wave_rate > 0.0 {
        print_dist("wave purchase -> enrolled meanwhile", w);
        println!("  wave: {} purchases, {} never seen enrolled", seen.wave_sent, seen.wave_sent - w.n);
    }
    println!("  {}", cpu.line());
    run.print_task_waits_since(&waits).await;
    let samples: Vec<Expiry> = seen
        .gone
        .iter()
        .map(|(e, t)| Expiry { workflow_id: workflow_of[e].clone(), deadline: deadlines[e], gone: *t })
        .collect();
    let phases = print_expiry_breakdown(&run.stack, &samples).await;
    if variant == Variant::Quiet {
        rep.add(
            "unenroll lateness p50 / p99, no wave (control)",
            format!("{} / {}", ms(d.p50), ms(d.p99)),
            None,
        );
        let pickup = phases.get("workflow task picked up").unwrap_or(dist(vec![]));
        rep.add(
            "unenroll, no wave: timer fired -> task picked up p50 / p99",
            format!("{} / {}", ms(pickup.p50), ms(pickup.p99)),
            None,
        );
        return;
    }
    if overload {
        rep.add(
            "unenroll lateness p50 / p99, overload (no target)",
            format!("{} / {}", ms(d.p50), ms(d.p99)),
            None,
        );
        rep.add("unenroll overload: term over before enrolment", seen.never_enrolled.to_string(), None);
        return;
    }
    rep.add("unenroll lateness p50", ms(d.p50), None);
    let all_seen = never_unenrolled == 0 && seen.never_enrolled == 0;
    rep.add("unenroll lateness p99", ms(d.p99), Some(d.p99 <= 2000.0 && all_seen));
    // Neither starves: the wave keeps being enrolled while the unenrolls go first.
    rep.add(
        "unenroll: wave purchase -> enrolled p50 / p99",
        format!("{} / {}", ms(w.p50), ms(w.p99)),
        Some(w.n == seen.wave_sent),
    );
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

struct Seen {
    /// Email -> when first seen without access at or after its deadline.
    gone: HashMap<String, i64>,
    /// Expiring students never seen enrolled (their term ended first).
    never_enrolled: usize,
    /// Purchase -> first seen enrolled, per wave student seen.
    wave_latency: Vec<f64>,
    wave_sent: usize,
}

/// One pass over the simulator for every transition: when each expiring student is first
/// seen without access at or after their deadline, having been seen with it before, and
/// when each wave student is first seen enrolled. Waiting for every enrolment first would
/// stamp all unenrolls at the end of that wait when one enrolment comes late.
async fn watch(
    run: &Run,
    deadlines: &HashMap<String, i64>,
    wave_sent: &Mutex<Vec<(String, i64)>>,
    wave: &tokio::task::JoinHandle<()>,
    within: Duration,
) -> Seen {
    let mut had_access = HashSet::new();
    let mut gone = HashMap::new();
    // Wave purchases not yet seen enrolled, taken from `wave_sent` past the cursor.
    let (mut waiting, mut taken, mut wave_latency) = (Vec::new(), 0, Vec::new());
    let until = deadlines.values().max().copied().unwrap_or(0) + within.as_millis() as i64;
    loop {
        let enrolled: HashSet<String> = run.stack.sim.enrollments().into_iter().map(|(e, _)| e).collect();
        let t = now_ms();
        for (email, deadline) in deadlines {
            if enrolled.contains(email) {
                had_access.insert(email.clone());
            } else if t >= *deadline && had_access.contains(email) {
                gone.entry(email.clone()).or_insert(t);
            }
        }
        // Finished before the read, so the read holds every purchase the wave sent.
        let wave_done = wave.is_finished();
        {
            let sent = wave_sent.lock().unwrap();
            waiting.extend_from_slice(&sent[taken..]);
            taken = sent.len();
        }
        waiting.retain(|(email, at)| {
            let seen = enrolled.contains(email);
            if seen {
                wave_latency.push((t - at) as f64);
            }
            !seen
        });
        let done = gone.len() == deadlines.len() && wave_done && waiting.is_empty();
        if done || t >= until {
            return Seen {
                gone,
                never_enrolled: deadlines.len() - had_access.len(),
                wave_latency,
                wave_sent: taken,
            };
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
