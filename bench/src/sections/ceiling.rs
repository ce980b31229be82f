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
    use temporalio_client::{WorkflowIdConflictPolicy, WorkflowStartOptions};
    use tollgate_workflows::{AccessInput, AccessWorkflow, RulesConfig};
    println!("\n=== ceiling: the dev server's own signal-with-start rate (no Tollgate process) ===");
    let dir = tempfile::tempdir().unwrap();
    let temporal = TemporalServer::start(Some(&dir.path().join("temporal.db")));
    let client = tollgate_tests::temporal::client(&temporal.address()).await;
    let tag = unique("c");
    for conc in [32usize, 128] {
        let mut rng = Rng::new(conc as u64);
        let (deliveries, _) = stream(a.ceiling, 0.0, 0.0, &mut rng, &format!("{tag}{conc}"));
        let events: Vec<_> = deliveries
            .iter()
            .map(|d| tollgate_domain::hotmart::parse(d.body.as_bytes()).unwrap().event)
            .collect();
        let cpu = Cpu::start(&[
            ("temporal", temporal_pids().first().copied()),
            ("bench", Some(std::process::id())),
        ]);
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
                    .signal_with_start_workflow(
                        AccessWorkflow::run,
                        input,
                        AccessWorkflow::on_event,
                        ev,
                        opts,
                    )
                    .await;
                drop(permit);
                r.is_ok()
            }));
        }
        let mut ok = 0;
        let n = tasks.len();
        for t in tasks {
            ok += t.await.unwrap() as usize;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "  {n} signal-with-starts ({ok} ok), {conc} in flight: {secs:.1} s = {:.0}/s; {}",
            n as f64 / secs,
            cpu.line()
        );
    }
}
