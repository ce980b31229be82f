//! Once, on its own dev server: its signal-with-start rate with no Tollgate process.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Semaphore;
use tollgate_tests::rng::Rng;
use tollgate_tests::{TemporalServer, unique};

use crate::args::Args;
use crate::process::{Cpu, temporal_pids};
use crate::stream::stream;

/// The dev server's own intake ceiling: signal-with-start of new workflows on a task queue
/// nobody polls, from this process, `conc` at a time.
pub async fn ceiling_section(a: &Args) {
    println!("\n=== ceiling: the dev server's own signal-with-start rate (no Tollgate process) ===");
    // The configured place at two concurrencies; the disk once more when that differs, so the
    // report shows how much of the server's pace is its own fsyncs.
    let mut runs = vec![(a.temporal_db_dir.clone(), 32usize), (a.temporal_db_dir.clone(), 128)];
    let disk = std::env::temp_dir();
    if disk != a.temporal_db_dir {
        runs.push((disk, 32));
    }
    for (place, conc) in runs {
        let dir = tempfile::tempdir_in(&place).unwrap();
        let temporal = TemporalServer::start(Some(&dir.path().join("temporal.db")));
        let (rate, cpu) = signal_with_start_rate(&temporal.address(), a.ceiling, conc).await;
        println!(
            "  {} events, {conc} in flight, SQLite file in {}: {rate:.0}/s; {cpu}",
            a.ceiling,
            place.display()
        );
    }
}

/// `n` signal-with-starts of a realistic stream straight from this process to the server at
/// `addr`, `conc` at a time, on a queue nobody polls: (accepted per second, how many were
/// accepted and where the CPU went).
pub async fn signal_with_start_rate(addr: &str, n: usize, conc: usize) -> (f64, String) {
    use temporalio_client::{WorkflowIdConflictPolicy, WorkflowStartOptions};
    use tollgate_workflows::{AccessInput, AccessWorkflow, RulesConfig};
    let client = tollgate_tests::temporal::client(addr).await;
    let tag = unique("c");
    let mut rng = Rng::new(conc as u64);
    let (deliveries, _) = stream(n, 0.0, 0.0, &mut rng, &format!("{tag}{conc}"));
    let events: Vec<_> = deliveries
        .iter()
        .map(|d| tollgate_domain::hotmart::parse(d.body.as_bytes()).unwrap().event)
        .collect();
    let cpu =
        Cpu::start(&[("temporal", temporal_pids().first().copied()), ("bench", Some(std::process::id()))]);
    let start = Instant::now();
    let sem = Arc::new(Semaphore::new(conc));
    let mut tasks = Vec::new();
    for ev in events {
        let permit = sem.clone().acquire_owned().await.unwrap();
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let key = ev.workflow_key().unwrap();
            let input = AccessInput::new(key.clone(), RulesConfig::default(), None);
            let opts = WorkflowStartOptions::new("nobody-polls", key.workflow_id())
                .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
                .build();
            let r = client
                .signal_with_start_workflow(AccessWorkflow::run, input, AccessWorkflow::on_event, ev, opts)
                .await;
            drop(permit);
            r.is_ok()
        }));
    }
    let mut ok = 0;
    let total = tasks.len();
    for t in tasks {
        ok += t.await.unwrap() as usize;
    }
    // A refusal is counted, not retried: the rate is of accepted ones. (The stream of `n`
    // events may carry a delivery or two more.)
    let secs = start.elapsed().as_secs_f64();
    (ok as f64 / secs, format!("{ok} of {total} accepted; {}", cpu.line()))
}
