//! The sections: per ingress (enroll, unenroll, burst, ack) on one stack, then the
//! once-only ones (ceiling, scale) on their own dev server.

mod ack;
mod breakdown;
mod burst;
mod ceiling;
mod enroll;
mod import;
mod journals;
mod scale;
mod unenroll;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tollgate_simulator::SimConfig;
use tollgate_tests::rng::Rng;
use tollgate_tests::{Stack, StackOptions, TemporalServer, now_ms};

use crate::args::Args;
use crate::process::{file_bytes, mb, proc_status_kb, temporal_pids};
use crate::sdk_metrics::WaitHistogram;
use crate::send::Poster;
use crate::stats::Report;
use crate::stream::{LIFETIME, PLAN, TERM};
use ack::ack_section;
use burst::burst_section;
use enroll::enroll_section;
use unenroll::unenroll_section;

pub use unenroll::Variant;

pub use ceiling::{ceiling_section, signal_with_start_rate};
pub use import::import_section;
pub use journals::journals_section;
pub use scale::scale_section;

/// One stack on its own dev server (SQLite file), for one ingress or the scale section.
pub struct Run {
    stack: Arc<Stack>,
    temporal: TemporalServer,
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    poster: Poster,
    direct: bool,
    /// Where the worker serves its metrics (the SDK's included).
    worker_metrics: String,
}

impl Run {
    pub async fn start(a: &Args, direct: bool, max_rps: f64) -> Run {
        let dir = tempfile::tempdir_in(&a.temporal_db_dir).unwrap();
        let db = dir.path().join("temporal.db");
        let temporal = TemporalServer::start(Some(&db));
        // The simulator never refuses: the check is that Tollgate keeps under its cap.
        let sim = SimConfig { rate_limit: 10_000_000, ..Default::default() };
        let worker_metrics = format!("127.0.0.1:{}", tollgate_tests::free_port());
        let mut stack = Stack::spawn(StackOptions {
            temporal: Some(temporal.address()),
            sim,
            max_rps,
            retention: "1h",
            env: vec![("TOLLGATE_WORKER_METRICS_ADDR".into(), worker_metrics.clone())],
            ..Default::default()
        })
        .await;
        if direct {
            stack.kill_starter().await;
            stack.env.push(("TOLLGATE_INGRESS".into(), "direct".into()));
            stack.start_starter().await;
        }
        let poster = Poster::new(&stack.http_addr, a.timeout_ms);
        Run { stack: Arc::new(stack), temporal, _dir: dir, db, poster, direct, worker_metrics }
    }

    pub fn pids(&self) -> Vec<(&'static str, Option<u32>)> {
        vec![
            ("temporal", temporal_pids().first().copied()),
            ("worker", self.stack.worker.as_ref().and_then(|c| c.id())),
            ("starter", self.stack.starter.as_ref().and_then(|c| c.id())),
            ("bench+simulator", Some(std::process::id())),
        ]
    }

    /// One line per process: RSS now and its peak.
    pub fn print_memory(&self, prefix: &str) {
        for (name, pid) in self.pids() {
            if let Some(p) = pid {
                println!(
                    "{prefix}{name} (pid {p}): RSS now {}, peak RSS {}",
                    mb(proc_status_kb(p, "VmRSS:")),
                    mb(proc_status_kb(p, "VmHWM:"))
                );
            }
        }
    }

    /// The worker's workflow task waits so far (see [`WaitHistogram`]).
    pub async fn task_waits(&self) -> WaitHistogram {
        WaitHistogram::scrape(&self.stack.http, &self.worker_metrics).await
    }

    /// Prints the workflow task waits since `before` (a [`Run::task_waits`] snapshot).
    pub async fn print_task_waits_since(&self, before: &WaitHistogram) {
        println!(
            "  workflow tasks' wait for a poll (SDK metric): {}",
            self.task_waits().await.since(before).line()
        );
    }

    pub fn pid(&self, name: &str) -> Option<u32> {
        self.pids().into_iter().find(|(n, _)| *n == name).and_then(|(_, p)| p)
    }

    /// Waits until everything acknowledged is in Temporal: the journal has nothing pending
    /// (the direct ingress has nothing to drain once the answers are in). Returns the
    /// instant it happened, or None on timeout.
    pub async fn drained(&self, within: Duration) -> (Option<Instant>, i64) {
        let deadline = Instant::now() + within;
        loop {
            let h = self.stack.health().await;
            let pending = h["journal"]["pending"].as_i64().unwrap_or(-1);
            if pending == 0 {
                return (Some(Instant::now()), 0);
            }
            if Instant::now() > deadline {
                return (None, pending);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Watches the simulator and records when each email gains or loses all its courses.
pub async fn watch(stack: &Stack, want: &HashMap<String, bool>, within: Duration) -> HashMap<String, i64> {
    let mut seen = HashMap::new();
    let deadline = Instant::now() + within;
    while seen.len() < want.len() && Instant::now() < deadline {
        let enrolled: HashSet<String> = stack.sim.enrollments().into_iter().map(|(e, _)| e).collect();
        let t = now_ms();
        for (email, want_enrolled) in want {
            if !seen.contains_key(email) && enrolled.contains(email) == *want_enrolled {
                seen.insert(email.clone(), t);
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    seen
}

pub async fn ingress_run(a: &Args, ingress: &str, seed: u64) -> Report {
    let direct = ingress == "direct";
    println!("\n=== ingress: {ingress} ===");
    let run = Run::start(a, direct, a.max_rps).await;
    let stack = &run.stack;
    stack.link(LIFETIME, &["101"], &["--policy", "lifetime"]).await;
    stack.link(TERM, &["102"], &["--policy", "fixed_term", "--term", "5s"]).await;
    stack.link(PLAN, &["103"], &["--policy", "subscription", "--grace", "3d"]).await;
    let mut rep = Report::default();
    let mut rng = Rng::new(seed);
    if a.sections.contains("enroll") {
        enroll_section(a, &run, &mut rep).await;
    }
    if a.sections.contains("unenroll") {
        unenroll_section(a, &run, &mut rep).await;
    }
    if a.sections.contains("burst") {
        burst_section(a, &run, &mut rep, &mut rng).await;
    }
    if a.sections.contains("ack") {
        ack_section(a, &run, &mut rep, &mut rng).await;
    }
    let sim = stack.sim.state();
    println!(
        "-- TalentLMS simulator: {} calls, peak {} in any 1 s, {} refused; cap {}/s",
        sim.total_calls, sim.max_calls_per_second, sim.rate_limited_calls, a.max_rps
    );
    run.print_memory("-- ");
    rep.add("peak RSS worker", mb(run.pid("worker").and_then(|p| proc_status_kb(p, "VmHWM:"))), None);
    rep.add("peak RSS starter", mb(run.pid("starter").and_then(|p| proc_status_kb(p, "VmHWM:"))), None);
    rep.add(
        "peak RSS Temporal dev server",
        mb(run.pid("temporal").and_then(|p| proc_status_kb(p, "VmHWM:"))),
        None,
    );
    rep.add(
        "TalentLMS peak calls in any 1 s",
        sim.max_calls_per_second.to_string(),
        Some(sim.max_calls_per_second as f64 <= a.max_rps),
    );
    rep.add(
        "TalentLMS calls (total / refused)",
        format!("{} / {}", sim.total_calls, sim.rate_limited_calls),
        None,
    );
    rep.add("TalentLMS configured cap", format!("{}/s", a.max_rps), None);
    rep.add("Temporal DB file at the end", mb(Some(file_bytes(&run.db) / 1024)), None);
    drop(run.temporal);
    rep
}
