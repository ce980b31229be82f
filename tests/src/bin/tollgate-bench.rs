//! Tollgate's core-loop benchmark (a program, not a test): spawns the whole stack against
//! a real Temporal dev server and prints
//!   1. purchase-to-enrolled latency at a fixed purchase rate,
//!   2. unenroll lateness after fixed-term deadlines,
//!   3. webhook ack latency at a fixed request rate, and how long the journal takes to
//!      drain into Temporal afterwards.
//!
//! cargo build --release --bins && TOLLGATE_TEST_PROFILE=release \
//!   cargo run --release -p tollgate-tests --bin tollgate-bench -- [--ack-rate 200 --ack-secs 10]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tollgate_simulator::SimConfig;
use tollgate_tests::{Stack, StackOptions, TemporalServer, now_ms, unique};
use tollgate_workflows::fixtures::Sale;

struct Args {
    enroll_rate: f64,
    enroll_secs: u64,
    expiries: usize,
    ack_rate: f64,
    ack_secs: u64,
}

fn args() -> Args {
    let mut a = Args { enroll_rate: 10.0, enroll_secs: 20, expiries: 50, ack_rate: 200.0, ack_secs: 10 };
    let v: Vec<String> = std::env::args().skip(1).collect();
    for pair in v.chunks(2) {
        let val = pair.get(1).map(String::as_str).unwrap_or("");
        match pair[0].as_str() {
            "--enroll-rate" => a.enroll_rate = val.parse().unwrap(),
            "--enroll-secs" => a.enroll_secs = val.parse().unwrap(),
            "--expiries" => a.expiries = val.parse().unwrap(),
            "--ack-rate" => a.ack_rate = val.parse().unwrap(),
            "--ack-secs" => a.ack_secs = val.parse().unwrap(),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn summary(name: &str, mut v: Vec<f64>, unit: &str) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{name:<34} n={:<6} p50={:>8.1}{unit} p99={:>8.1}{unit} max={:>8.1}{unit}",
        v.len(),
        pct(&v, 0.50),
        pct(&v, 0.99),
        v.last().copied().unwrap_or(f64::NAN)
    );
}

/// Watches the simulator and records when each email gains or loses all its courses.
async fn watch(stack: &Stack, want: &HashMap<String, bool>, within: Duration) -> HashMap<String, i64> {
    let mut seen = HashMap::new();
    let deadline = Instant::now() + within;
    while seen.len() < want.len() && Instant::now() < deadline {
        let enrolled: std::collections::HashSet<String> =
            stack.sim.enrollments().into_iter().map(|(e, _)| e).collect();
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    let dir = tempfile::tempdir().unwrap();
    let temporal = TemporalServer::start(Some(&dir.path().join("temporal.db")));
    let sim = SimConfig { rate_limit: 100_000, ..Default::default() };
    let stack = Arc::new(
        Stack::spawn(StackOptions {
            temporal: Some(temporal.address()),
            sim,
            max_rps: 200.0,
            retention: "1h",
            ..Default::default()
        })
        .await,
    );
    println!("Tollgate core-loop benchmark; Temporal dev server with a SQLite file; 2 cores");
    let lifetime = 4_000_001;
    let term = 4_000_002;
    stack.link(lifetime, &["101"], &["--policy", "lifetime"]).await;
    stack.link(term, &["102"], &["--policy", "fixed_term", "--term", "5s"]).await;

    // 1. Purchase-to-enrolled at a fixed rate.
    let n = (a.enroll_rate * a.enroll_secs as f64) as usize;
    let mut posted = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / a.enroll_rate));
    let watcher = {
        let stack = stack.clone();
        let emails: Vec<String> = (0..n).map(|i| format!("e2e{i}-{}@example.com", unique(""))).collect();
        let want: HashMap<String, bool> = emails.iter().map(|e| (e.clone(), true)).collect();
        let w = tokio::spawn({
            let stack = stack.clone();
            async move { watch(&stack, &want, Duration::from_secs(120)).await }
        });
        for e in &emails {
            tick.tick().await;
            let body =
                Sale::one_off(lifetime, &unique("HP"), e).event("PURCHASE_APPROVED", &unique("e"), now_ms());
            posted.insert(e.clone(), now_ms());
            let stack = stack.clone();
            tokio::spawn(async move { stack.post(&body).await });
        }
        w
    };
    let seen = watcher.await.unwrap();
    let lat: Vec<f64> = seen.iter().map(|(e, t)| (t - posted[e]) as f64).collect();
    println!("-- {n} purchases at {}/s", a.enroll_rate);
    summary("purchase -> enrolled", lat, "ms");
    println!("{:<34} {}", "never enrolled", n - seen.len());

    // 2. Unenroll lateness after fixed-term deadlines.
    let t0 = now_ms();
    let mut deadlines = HashMap::new();
    for i in 0..a.expiries {
        let e = format!("exp{i}-{}@example.com", unique(""));
        let approved = t0 + (i as i64 * 50);
        let sale = Sale { approved_date: Some(approved), ..Sale::one_off(term, &unique("HP"), &e) };
        stack.post(&sale.event("PURCHASE_APPROVED", &unique("e"), approved)).await;
        deadlines.insert(e, approved + 5_000);
    }
    let want: HashMap<String, bool> = deadlines.keys().map(|e| (e.clone(), true)).collect();
    watch(&stack, &want, Duration::from_secs(30)).await;
    let want: HashMap<String, bool> = deadlines.keys().map(|e| (e.clone(), false)).collect();
    let gone = watch(&stack, &want, Duration::from_secs(60)).await;
    let late: Vec<f64> = gone.iter().map(|(e, t)| (t - deadlines[e]) as f64).collect();
    println!("-- {} fixed-term purchases with a 5 s term", a.expiries);
    summary("unenroll lateness after deadline", late, "ms");

    // 3. Webhook ack latency at a fixed request rate, then journal drain.
    let total = (a.ack_rate * a.ack_secs as f64) as usize;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / a.ack_rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(total);
    let start = Instant::now();
    for i in 0..total {
        tick.tick().await;
        let body = Sale::one_off(lifetime, &unique("HP"), &format!("ack{i}@example.com")).event(
            "PURCHASE_APPROVED",
            &unique("e"),
            now_ms(),
        );
        let stack = stack.clone();
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let (code, _) = stack.post(&body).await;
            (code, t.elapsed().as_secs_f64() * 1000.0)
        }));
    }
    let mut lat = Vec::with_capacity(total);
    let mut errors = 0;
    for t in tasks {
        let (code, ms) = t.await.unwrap();
        if code != 200 {
            errors += 1;
        }
        lat.push(ms);
    }
    let sent_for = start.elapsed().as_secs_f64();
    println!("-- {total} webhooks at {}/s (sent in {sent_for:.1} s)", a.ack_rate);
    summary("webhook ack latency", lat, "ms");
    println!("{:<34} {errors}", "non-2xx answers");
    let drain_start = Instant::now();
    loop {
        let h = stack.health().await;
        if h["journal"]["pending"] == 0 {
            break;
        }
        if drain_start.elapsed() > Duration::from_secs(300) {
            println!("journal still has {} pending after 300 s", h["journal"]["pending"]);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drained = start.elapsed().as_secs_f64();
    println!(
        "{:<34} all forwarded {:.1} s after the first request ({:.0} events/s)",
        "journal -> Temporal drain",
        drained,
        total as f64 / drained
    );
    drop(temporal);
}
