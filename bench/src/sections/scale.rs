//! Once, on its own dev server: N subscriptions waiting on a deadline 30 days away.

use std::time::{Duration, Instant};

use futures::StreamExt;
use tollgate_domain::fixtures::Sale;
use tollgate_domain::hotmart::{ProductId, WorkflowKey};
use tollgate_domain::metrics::DAY_MS;
use tollgate_tests::{now_ms, unique};

use super::Run;
use crate::args::Args;
use crate::process::{Cpu, file_bytes, mb, proc_status_kb};
use crate::send::{ack_stats, send};
use crate::stream::{Delivery, PLAN};

pub async fn scale_section(a: &Args) {
    println!(
        "\n=== scale: {} subscriptions waiting on a deadline 30 days away (TalentLMS cap {}/s, worker cache {}) ===",
        a.scale,
        a.scale_max_rps,
        std::env::var("TOLLGATE_MAX_CACHED_WORKFLOWS").unwrap_or_else(|_| "default".into())
    );
    let run = Run::start(a, false, a.scale_max_rps).await;
    run.stack.link(PLAN, &["103"], &["--policy", "subscription", "--grace", "3d"]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let db_before = file_bytes(&run.db);
    let worker = run.pid("worker").unwrap();
    let rss_before = proc_status_kb(worker, "VmRSS:");
    let tag = unique("z");
    let next = now_ms() + 30 * DAY_MS;
    let deliveries: Vec<Delivery> = (0..a.scale)
        .map(|i| {
            let email = format!("z{i}-{tag}@example.com");
            let sale =
                Sale::subscription(PLAN, &format!("Z{tag}{i}"), &format!("HP{tag}z{i}"), &email, 1, next);
            Delivery {
                body: sale.event("PURCHASE_APPROVED", &format!("{tag}-{i}"), now_ms()).to_string().into(),
            }
        })
        .collect();
    let cpu = Cpu::start(&run.pids());
    let start = Instant::now();
    let (acks, _) = send(&run.poster, &deliveries, None, 64).await;
    let s = ack_stats(&acks);
    println!(
        "  acknowledged in {:.1} s (non-2xx {}, no answer {})",
        s.last_ack.duration_since(start).as_secs_f64(),
        s.non2xx,
        s.no_answer
    );
    let (drained, pending) = run.drained(Duration::from_secs(a.scale_timeout)).await;
    match drained {
        Some(t) => println!(
            "  all started in Temporal {:.1} s after the first request ({:.0} workflows/s)",
            t.duration_since(start).as_secs_f64(),
            a.scale as f64 / t.duration_since(start).as_secs_f64()
        ),
        None => println!("  {pending} not yet started after {} s", a.scale_timeout),
    }
    // Enrolled = the workflow ran its first task and its TalentLMS activities: it now waits.
    let deadline = start + Duration::from_secs(a.scale_timeout);
    let enrolled = loop {
        let enrolled = run.stack.sim.state().enrollments.iter().filter(|e| e.course_id == "103").count();
        if enrolled >= a.scale || Instant::now() > deadline {
            break enrolled;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let all_in = start.elapsed().as_secs_f64();
    println!(
        "  {enrolled} of {} enrolled {all_in:.1} s after the first request ({:.0} subscriptions/s end to end)",
        a.scale,
        enrolled as f64 / all_in
    );
    println!("  {}", cpu.line());
    // Let the worker settle, then read memory and the DB.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let running = temporal_count(&run.temporal.address(), "ExecutionStatus='Running'");
    let active = temporal_count(&run.temporal.address(), "AccessState='active'");
    let db_after = file_bytes(&run.db);
    println!("  Temporal visibility: {running} running workflows, {active} with AccessState='active'");
    run.print_memory("  ");
    let rss_now = proc_status_kb(worker, "VmRSS:");
    let hwm = proc_status_kb(worker, "VmHWM:");
    println!(
        "  worker RSS: {} before, {} with {} live ({} peak while starting; target <= 100 MB: {})",
        mb(rss_before),
        mb(rss_now),
        a.scale,
        mb(hwm),
        if hwm.unwrap_or(u64::MAX) <= 100 * 1024 { "met" } else { "MISSED" }
    );
    println!(
        "  Temporal DB (file + WAL): {:.1} MB before, {:.1} MB after: {:.0} bytes per subscription",
        db_before as f64 / 1e6,
        db_after as f64 / 1e6,
        (db_after.saturating_sub(db_before)) as f64 / a.scale as f64
    );
    let sim = run.stack.sim.state();
    println!(
        "  TalentLMS: {} calls, peak {} in any 1 s (cap {}/s)",
        sim.total_calls, sim.max_calls_per_second, a.scale_max_rps
    );
    // A status query brings an evicted workflow back into the worker (a replay), as a
    // renewal day would. Memory that grows here grows with every wake-up, not with the
    // number of live subscriptions.
    let started = Instant::now();
    let ids = (0..a.scale).map(|i| {
        WorkflowKey::Subscription { product: ProductId(PLAN), subscriber: format!("Z{tag}{i}") }.workflow_id()
    });
    let answered = futures::stream::iter(ids)
        .map(|id| {
            let stack = run.stack.clone();
            async move { stack.status(&id).await.is_some() }
        })
        .buffer_unordered(16)
        .filter(|ok| futures::future::ready(*ok))
        .count()
        .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    println!(
        "  woke every subscription once (status query, {answered} answered in {:.1} s): worker RSS {} -> {}",
        started.elapsed().as_secs_f64(),
        mb(rss_now),
        mb(proc_status_kb(worker, "VmRSS:"))
    );
}

/// `temporal workflow count --query ...` against the dev server.
pub fn temporal_count(addr: &str, query: &str) -> String {
    std::process::Command::new("temporal")
        .args(["workflow", "count", "--address", addr, "--query", query])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().replace('\n', " "))
        .unwrap_or_else(|e| format!("? ({e})"))
}
