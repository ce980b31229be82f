//! The journal backends side by side: `sqlite`, `firestore` and `pubsub`, each with 1 and
//! 3 starters (round-robin), on one Temporal dev server and the local emulators. Per run:
//! ack latency (p50/p99) at a fixed request rate, and the drain rate into Temporal (new
//! purchase workflows visible in Temporal per second, from the first request to the
//! last one). The emulators are not GCP: the ratios and where time goes are the point.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tollgate_domain::fixtures::Sale;
use tollgate_simulator::SimConfig;
use tollgate_tests::{Stack, StackOptions, TemporalServer, now_ms, unique, unique_product};

use crate::args::Args;
use crate::send::Poster;
use crate::stats::{dist, ms};

struct Row {
    backend: &'static str,
    starters: usize,
    outcome: Result<(String, String, String, String), String>,
}

pub async fn journals_section(a: &Args) {
    println!("\n-- journals: {} purchases per run at {}/s", a.journal_events, a.journal_rate);
    let temporal = TemporalServer::start(None);
    let mut rows = Vec::new();
    for backend in ["sqlite", "firestore", "pubsub"] {
        for starters in [1, 3] {
            let outcome = match missing(backend, starters) {
                Some(why) => Err(why),
                None => Ok(run(a, &temporal, backend, starters).await),
            };
            rows.push(Row { backend, starters, outcome });
        }
    }
    println!("\n| journal | starters | ack p50 | ack p99 | non-2xx | drain into Temporal |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        match r.outcome {
            Ok((p50, p99, errors, drain)) => {
                println!("| {} | {} | {p50} | {p99} | {errors} | {drain} |", r.backend, r.starters)
            }
            Err(why) => println!("| {} | {} | - | - | - | {why} |", r.backend, r.starters),
        }
    }
}

/// Why a combination cannot run here, if it cannot.
fn missing(backend: &str, starters: usize) -> Option<String> {
    let need = |var: &str| std::env::var_os(var).is_none().then(|| format!("skipped: {var} unset"));
    match backend {
        "sqlite" if starters > 1 => Some("n/a: one starter per SQLite file".into()),
        "firestore" => need("FIRESTORE_EMULATOR_HOST"),
        "pubsub" => need("FIRESTORE_EMULATOR_HOST").or_else(|| need("PUBSUB_EMULATOR_HOST")),
        _ => None,
    }
}

async fn run(
    a: &Args,
    temporal: &TemporalServer,
    backend: &str,
    starters: usize,
) -> (String, String, String, String) {
    let project = format!("tollgate-{}", unique("").chars().rev().take(12).collect::<String>());
    let mut env = Vec::new();
    if backend != "sqlite" {
        env.push(("TOLLGATE_STORE".to_string(), "firestore".to_string()));
        env.push(("FIRESTORE_PROJECT_ID".to_string(), project.clone()));
    }
    if backend == "pubsub" {
        env.push(("TOLLGATE_JOURNAL".to_string(), "pubsub".to_string()));
        env.push(("PUBSUB_PROJECT_ID".to_string(), project));
    }
    let stack = Stack::spawn(StackOptions {
        temporal: Some(temporal.address()),
        env,
        sim: SimConfig { rate_limit: 10_000_000, ..Default::default() },
        max_rps: 1000.0,
        retention: "1h",
        ..Default::default()
    })
    .await;
    let mut children = Vec::new();
    if backend == "pubsub" {
        stack.starter_cmd(&["pubsub", "setup"]).await;
        children.push(stack.spawn_starter_cmd(&["forward"], "forward.log"));
    }
    let mut addrs = vec![stack.http_addr.clone()];
    for i in 1..starters {
        let (child, addr) = stack.spawn_starter(&format!("starter-{i}.log")).await;
        children.push(child);
        addrs.push(addr);
    }
    let product = unique_product();
    stack.link(product, &["101"], &["--policy", "lifetime"]).await;
    let posters: Vec<Poster> = addrs.iter().map(|addr| Poster::new(addr, a.timeout_ms)).collect();
    let bodies: Vec<Arc<str>> = (0..a.journal_events)
        .map(|_| {
            let email = format!("{}@example.com", unique("j"));
            Sale::one_off(product, &unique("HP"), &email)
                .event("PURCHASE_APPROVED", &unique("e"), now_ms())
                .to_string()
                .into()
        })
        .collect();

    let start = Instant::now();
    let gap = Duration::from_secs_f64(1.0 / a.journal_rate);
    let mut sends = Vec::with_capacity(bodies.len());
    for (i, body) in bodies.into_iter().enumerate() {
        let poster = posters[i % posters.len()].clone();
        sends.push(tokio::spawn(async move { poster.post(body).await }));
        tokio::time::sleep_until((start + gap * (i as u32 + 1)).into()).await;
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for s in sends {
        let ack = s.await.unwrap();
        if ack.status == 200 {
            lat.push(ack.ms);
        } else {
            errors += 1;
        }
    }
    let d = dist(lat);
    let drain = drained(&stack, a.journal_events - errors, start, Duration::from_secs(a.drain_timeout)).await;
    println!("  {backend} x{starters}: ack p50 {} p99 {} ({errors} non-2xx); {drain}", ms(d.p50), ms(d.p99));
    drop(children);
    (ms(d.p50), ms(d.p99), errors.to_string(), drain)
}

/// Polls Temporal's visibility until `want` workflows exist on the stack's task queue.
async fn drained(stack: &Stack, want: usize, start: Instant, within: Duration) -> String {
    let queue = stack.env.iter().find(|(k, _)| k == "TOLLGATE_TASK_QUEUE").map(|(_, v)| v.clone()).unwrap();
    let client = stack.client().await;
    let query = format!("TaskQueue = '{queue}' AND WorkflowType = 'AccessWorkflow'");
    let deadline = Instant::now() + within;
    loop {
        let opts = temporalio_client::WorkflowCountOptions::builder().build();
        let n = client.count_workflows(query.clone(), opts).await.map(|c| c.count()).unwrap_or(0);
        if n >= want {
            let secs = start.elapsed().as_secs_f64();
            return format!("{:.0}/s ({want} in {secs:.1} s)", want as f64 / secs);
        }
        if Instant::now() > deadline {
            return format!("timeout: {n} of {want} after {:.0} s", start.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
