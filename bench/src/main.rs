//! Tollgate's load generator and benchmark (a program, not a test). For each ingress
//! (`journal`: the default, webhook -> SQLite journal -> forwarder -> Temporal; `direct`,
//! by name: the starter with `TOLLGATE_INGRESS=direct`, one signal-with-start per request)
//! it spawns a fresh stack (worker + starter binaries, the TalentLMS simulator in-process,
//! a Temporal dev server with a SQLite file, on /dev/shm unless `--temporal-db-dir`) and
//! runs the sections:
//!
//!   enroll    new purchases at a fixed rate: purchase -> enrolled in the simulator
//!   unenroll  fixed-term purchases with a 5 s term: unenroll lateness after the deadline
//!   burst     a realistic Hotmart stream (purchases, renewals, delays, cancellations,
//!             refunds, with duplicates and reordering) sent all at once: all acknowledged?
//!             how long until all of it is in Temporal (worker paused), against the same
//!             server's own signal-with-start rate measured right after?
//!   ack       the same kind of stream at a fixed request rate: ack latency, errors, and
//!             the drain rate from the journal into Temporal
//!
//! then prints one table with both ingresses side by side and the targets of issue 5.
//! Two more sections run once on their own dev server:
//!
//!   ceiling   the dev server's own intake: signal-with-start of new workflows straight from
//!             this process on a queue no worker polls (no Tollgate code involved), with
//!             its file where the other sections keep it and on disk
//!   journals  the sqlite, firestore and pubsub journals side by side, with 1 and 3
//!             starters: ack p50/p99 and the drain rate into Temporal (needs the Firestore
//!             and Pub/Sub emulators; only when asked for: `--sections journals`)
//!   scale     N subscription workflows with their next charge 30 days away, all enrolled
//!             and waiting on their deadline: worker RSS, Temporal DB bytes per subscription
//!   import    a school of N customers imported from the Hotmart simulator (500 calls/min):
//!             customers per minute, the busiest minute against the limit; then the time of
//!             one TalentLMS drift audit over the enrolments it made
//!
//! cargo build --release --bins && TOLLGATE_TEST_PROFILE=release \
//!   cargo run --release -p tollgate-bench --bin tollgate-bench -- [--quick] [flags]
//!
//! `--help` lists the flags; their defaults are the targets.

mod args;
mod disk;
mod process;
mod sdk_metrics;
mod sections;
mod send;
mod stats;
mod stream;

use std::time::Instant;

use crate::args::Args;
use crate::sections::{ceiling_section, import_section, ingress_run, journals_section, scale_section};
use crate::stats::print_table;

/// Many sockets in flight when the direct ingress falls behind: raise the soft limit (the
/// worker and starter inherit it).
fn raise_nofile() {
    unsafe {
        let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = Args::parse();
    raise_nofile();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    println!(
        "Tollgate benchmark; Temporal dev server with a SQLite file in {}; {cores} cores; load average at start: {}",
        a.temporal_db_dir.display(),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
    println!("args: {}", std::env::args().skip(1).collect::<Vec<_>>().join(" "));
    let t0 = Instant::now();
    if a.sections.contains("ceiling") {
        ceiling_section(&a).await;
    }
    let per_ingress = ["enroll", "unenroll", "burst", "ack"].iter().any(|s| a.sections.contains(*s));
    let mut reports = Vec::new();
    if per_ingress {
        for ingress in &a.ingress {
            let rep = ingress_run(&a, ingress, a.seed).await;
            reports.push((ingress.clone(), rep));
        }
        print_table(&a, &reports);
    }
    if a.sections.contains("scale") {
        scale_section(&a).await;
    }
    if a.sections.contains("import") {
        import_section(&a).await;
    }
    if a.sections.contains("journals") {
        journals_section(&a).await;
    }
    println!("\nbenchmark wall time {:.0} s", t0.elapsed().as_secs_f64());
}
