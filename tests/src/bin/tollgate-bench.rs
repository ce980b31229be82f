//! Tollgate's load generator and benchmark (a program, not a test). For each ingress
//! (`journal`: the default, webhook -> SQLite journal -> forwarder -> Temporal; `direct`:
//! the starter with `TOLLGATE_INGRESS=direct`, one signal-with-start per request) it spawns
//! a fresh stack (worker + starter binaries, the TalentLMS simulator in-process, a Temporal
//! dev server with a SQLite file) and runs the sections:
//!
//!   enroll    new purchases at a fixed rate: purchase -> enrolled in the simulator
//!   unenroll  fixed-term purchases with a 5 s term: unenroll lateness after the deadline
//!   burst     a realistic Hotmart stream (purchases, renewals, delays, cancellations,
//!             refunds, with duplicates and reordering) sent all at once: all acknowledged?
//!             how long until all of it is in Temporal?
//!   ack       the same kind of stream at a fixed request rate: ack latency, errors, and
//!             the drain rate from the journal into Temporal
//!
//! then prints one table with both ingresses side by side and the targets of issue 5.
//! Two more sections run once on their own dev server:
//!
//!   ceiling   the dev server's own intake: signal-with-start of new workflows straight from
//!             this process on a queue no worker polls (no Tollgate code involved)
//!   scale     N subscription workflows with their next charge 30 days away, all enrolled
//!             and waiting on their deadline: worker RSS, Temporal DB bytes per subscription
//!
//! cargo build --release --bins && TOLLGATE_TEST_PROFILE=release \
//!   cargo run --release -p tollgate-tests --bin tollgate-bench -- [--quick] [flags]
//!
//! Flags (defaults are the targets): --sections enroll,unenroll,burst,ack,ceiling,scale
//! --ingress journal,direct --enroll-rate 10 --enroll-secs 20 --expiries 50 --burst 5000
//! --burst-conc 256 --ack-rate 500 --ack-secs 60 --dup 0.1 --reorder 0.2 --max-rps 40
//! --drain-timeout 300 --timeout-ms 10000 --scale 10000 --scale-max-rps 400
//! --scale-timeout 900 (seconds for the scale section to get them all enrolled) --ceiling 2000
//! --seed 1. `--quick` shrinks every count for a ~5-minute smoke run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::Value;
use tokio::sync::Semaphore;
use tollgate_domain::fixtures::{Sale, cancellation};
use tollgate_domain::hotmart::{ProductId, WorkflowKey};
use tollgate_simulator::SimConfig;
use tollgate_tests::{HOTTOK, Stack, StackOptions, TemporalServer, now_ms, unique};

const LIFETIME: i64 = 4_000_001;
const TERM: i64 = 4_000_002;
const PLAN: i64 = 4_000_003;
const DAY_MS: i64 = 86_400_000;

#[derive(Clone)]
struct Args {
    sections: HashSet<String>,
    ingress: Vec<String>,
    enroll_rate: f64,
    enroll_secs: u64,
    expiries: usize,
    burst: usize,
    burst_conc: usize,
    ack_rate: f64,
    ack_secs: u64,
    dup: f64,
    reorder: f64,
    max_rps: f64,
    drain_timeout: u64,
    timeout_ms: u64,
    scale: usize,
    scale_max_rps: f64,
    scale_timeout: u64,
    ceiling: usize,
    seed: u64,
}

fn args() -> Args {
    let mut a = Args {
        sections: ["enroll", "unenroll", "burst", "ack", "ceiling", "scale"].map(String::from).into(),
        ingress: vec!["journal".into(), "direct".into()],
        enroll_rate: 10.0,
        enroll_secs: 20,
        expiries: 50,
        burst: 5000,
        burst_conc: 256,
        ack_rate: 500.0,
        ack_secs: 60,
        dup: 0.1,
        reorder: 0.2,
        max_rps: 40.0,
        drain_timeout: 300,
        timeout_ms: 10_000,
        scale: 10_000,
        scale_max_rps: 400.0,
        scale_timeout: 900,
        ceiling: 2000,
        seed: 1,
    };
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.iter().any(|f| f == "--quick") {
        a.enroll_secs = 5;
        a.expiries = 10;
        a.burst = 500;
        a.ack_secs = 5;
        a.drain_timeout = 60;
        a.scale = 500;
        a.ceiling = 300;
    }
    let mut it = raw.iter().filter(|f| *f != "--quick");
    while let Some(flag) = it.next() {
        let val = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        let list = || val.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        match flag.as_str() {
            "--sections" => a.sections = list().collect(),
            "--ingress" => a.ingress = list().collect(),
            "--enroll-rate" => a.enroll_rate = val.parse().unwrap(),
            "--enroll-secs" => a.enroll_secs = val.parse().unwrap(),
            "--expiries" => a.expiries = val.parse().unwrap(),
            "--burst" => a.burst = val.parse().unwrap(),
            "--burst-conc" => a.burst_conc = val.parse().unwrap(),
            "--ack-rate" => a.ack_rate = val.parse().unwrap(),
            "--ack-secs" => a.ack_secs = val.parse().unwrap(),
            "--dup" => a.dup = val.parse().unwrap(),
            "--reorder" => a.reorder = val.parse().unwrap(),
            "--max-rps" => a.max_rps = val.parse().unwrap(),
            "--drain-timeout" => a.drain_timeout = val.parse().unwrap(),
            "--timeout-ms" => a.timeout_ms = val.parse().unwrap(),
            "--scale" => a.scale = val.parse().unwrap(),
            "--scale-max-rps" => a.scale_max_rps = val.parse().unwrap(),
            "--scale-timeout" => a.scale_timeout = val.parse().unwrap(),
            "--ceiling" => a.ceiling = val.parse().unwrap(),
            "--seed" => a.seed = val.parse().unwrap(),
            other => panic!("unknown flag {other}"),
        }
    }
    for i in &a.ingress {
        assert!(i == "journal" || i == "direct", "--ingress takes journal and/or direct, not {i}");
    }
    a
}

// ---------------------------------------------------------------------------------------
// Statistics and the table.

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[derive(Clone, Copy, Default)]
struct Dist {
    n: usize,
    p50: f64,
    p99: f64,
    max: f64,
}

fn dist(mut v: Vec<f64>) -> Dist {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Dist { n: v.len(), p50: pct(&v, 0.5), p99: pct(&v, 0.99), max: v.last().copied().unwrap_or(f64::NAN) }
}

fn ms(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v >= 10_000.0 {
        format!("{:.1} s", v / 1000.0)
    } else {
        format!("{v:.1} ms")
    }
}

fn print_dist(name: &str, d: Dist) {
    println!("  {name:<36} n={:<6} p50={:>9} p99={:>9} max={:>9}", d.n, ms(d.p50), ms(d.p99), ms(d.max));
}

/// One table row: the figure per ingress and whether it meets its target.
#[derive(Default)]
struct Report {
    rows: Vec<(String, String, Option<bool>)>,
}

impl Report {
    fn add(&mut self, label: &str, value: String, met: Option<bool>) {
        self.rows.push((label.to_string(), value, met));
    }
}

fn print_table(args: &Args, reports: &[(String, Report)]) {
    let targets: HashMap<&str, &str> = [
        ("ack p99", "<= 20 ms"),
        ("ack errors (non-2xx + no answer)", "0"),
        ("burst: not acknowledged", "0"),
        ("burst: left undrained", "0"),
        ("purchase -> enrolled p50", "<= 150 ms"),
        ("purchase -> enrolled p99", "<= 1 s"),
        ("unenroll lateness p99", "<= 2 s"),
        ("TalentLMS peak calls in any 1 s", "<= cap"),
    ]
    .into();
    let mut labels: Vec<String> = Vec::new();
    for (_, r) in reports {
        for (l, _, _) in &r.rows {
            if !labels.contains(l) {
                labels.push(l.clone());
            }
        }
    }
    let w = 22;
    println!();
    println!(
        "== Tollgate benchmark: ingress side by side (ack {}/s x {} s, burst {}, {} purchases/s, TalentLMS cap {}/s)",
        args.ack_rate, args.ack_secs, args.burst, args.enroll_rate, args.max_rps
    );
    let mut head = format!("{:<40}", "figure");
    for (name, _) in reports {
        head.push_str(&format!(" {name:>w$}"));
    }
    head.push_str(&format!("  {:<10}", "target"));
    println!("{head}");
    println!("{}", "-".repeat(head.len()));
    for l in &labels {
        let mut line = format!("{l:<40}");
        for (_, r) in reports {
            let cell = match r.rows.iter().find(|(x, _, _)| x == l) {
                Some((_, v, Some(true))) => format!("{v} ok"),
                Some((_, v, Some(false))) => format!("{v} MISS"),
                Some((_, v, None)) => v.clone(),
                None => "-".into(),
            };
            line.push_str(&format!(" {cell:>w$}"));
        }
        line.push_str(&format!("  {}", targets.get(l.as_str()).copied().unwrap_or("")));
        println!("{line}");
    }
}

// ---------------------------------------------------------------------------------------
// Processes: RSS and CPU from /proc.

fn proc_status_kb(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()
}

fn mb(kb: Option<u64>) -> String {
    kb.map(|k| format!("{:.1} MB", k as f64 / 1024.0)).unwrap_or_else(|| "-".into())
}

/// utime + stime of one process (clock ticks).
fn proc_ticks(pid: u32) -> u64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0 };
    let rest = &s[s.rfind(')').map(|i| i + 2).unwrap_or(0)..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

/// (busy, total) clock ticks of the whole machine.
fn machine_ticks() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> =
        s.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Direct children of this process named `temporal` (the dev servers).
fn temporal_pids() -> Vec<u32> {
    let me = std::process::id();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let comm = stat.split('(').nth(1).and_then(|s| s.split(')').next()).unwrap_or("");
        let ppid: u32 = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if ppid == me && comm == "temporal" {
            out.push(pid);
        }
    }
    out
}

/// CPU use over a section: the machine's busy share and each process's share of it.
struct Cpu {
    at: Instant,
    machine: (u64, u64),
    procs: Vec<(&'static str, u32, u64)>,
}

impl Cpu {
    fn start(procs: &[(&'static str, Option<u32>)]) -> Cpu {
        let procs = procs.iter().filter_map(|(n, p)| p.map(|p| (*n, p, proc_ticks(p)))).collect();
        Cpu { at: Instant::now(), machine: machine_ticks(), procs }
    }

    /// The machine's busy share since `start`, in percent of all cores.
    fn busy(&self) -> f64 {
        let (busy, total) = machine_ticks();
        100.0 * (busy - self.machine.0) as f64 / (total - self.machine.1).max(1) as f64
    }

    /// The share of all cores used by processes not in the list (another build, ...).
    fn others(&self) -> f64 {
        let (busy, total) = machine_ticks();
        let ours: u64 = self.procs.iter().map(|(_, p, t0)| proc_ticks(*p).saturating_sub(*t0)).sum();
        100.0 * (busy - self.machine.0).saturating_sub(ours) as f64 / (total - self.machine.1).max(1) as f64
    }

    fn line(&self) -> String {
        let (busy, total) = machine_ticks();
        let (db, dt) = (busy - self.machine.0, (total - self.machine.1).max(1));
        let mut s = format!(
            "cpu over {:.0} s: machine {:.0}% busy (2 cores = 200%: {:.0}%)",
            self.at.elapsed().as_secs_f64(),
            100.0 * db as f64 / dt as f64,
            200.0 * db as f64 / dt as f64
        );
        let mut ours = 0;
        for (name, pid, t0) in &self.procs {
            let d = proc_ticks(*pid).saturating_sub(*t0);
            ours += d;
            s.push_str(&format!(", {name} {:.0}%", 200.0 * d as f64 / dt as f64));
        }
        s.push_str(&format!(", everything else {:.0}%", 200.0 * db.saturating_sub(ours) as f64 / dt as f64));
        s
    }
}

fn file_bytes(db: &std::path::Path) -> u64 {
    ["", "-wal", "-shm", "-journal"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", db.display())).ok())
        .map(|m| m.len())
        .sum()
}

// ---------------------------------------------------------------------------------------
// The load generator: realistic Hotmart streams.

/// splitmix64: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Delivery {
    body: Arc<str>,
}

#[derive(Default)]
struct Mix {
    kinds: BTreeMap<&'static str, usize>,
    workflows: usize,
    duplicates: usize,
    out_of_order: usize,
}

impl Mix {
    fn line(&self, n: usize) -> String {
        let kinds: Vec<String> = self.kinds.iter().map(|(k, v)| format!("{k} {v}")).collect();
        format!(
            "{n} deliveries to {} workflows: {}; {} duplicates, {} delivered before an earlier event of their stream",
            self.workflows,
            kinds.join(", "),
            self.duplicates,
            self.out_of_order
        )
    }
}

/// About `n` deliveries from interleaved customer streams, in Hotmart's shapes: 40% one-off
/// purchases (5% refunded), 60% subscriptions whose first charge may be followed by a
/// renewal, a delayed charge, a cancellation or a refund. Every subscription's next charge
/// is 30+ days away, so no deadline fires during the run. `dup` is the share of deliveries
/// sent twice (same envelope id, later); `reorder` the share moved ahead of its place.
fn stream(n: usize, dup: f64, reorder: f64, rng: &mut Rng, tag: &str) -> (Vec<Delivery>, Mix) {
    let now = now_ms();
    let mut streams: Vec<Vec<(&'static str, Value)>> = Vec::new();
    let mut count = 0;
    let mut mix = Mix::default();
    let mut c = 0;
    while count < n {
        c += 1;
        let email = format!("s{c}-{tag}@example.com");
        let mut evs: Vec<(&'static str, Value)> = Vec::new();
        let t = now - 60_000;
        let id = |k: usize| format!("{tag}-{c}-{k}");
        if rng.f() < 0.4 {
            let sale = Sale::one_off(LIFETIME, &format!("HP{tag}{c}"), &email);
            evs.push(("purchase", sale.event("PURCHASE_APPROVED", &id(0), t)));
            if rng.f() < 0.05 {
                evs.push(("refund", sale.event("PURCHASE_REFUNDED", &id(1), t + 1000)));
            }
        } else {
            let sub = format!("SUB{tag}{c}");
            let first = Sale::subscription(PLAN, &sub, &format!("HP{tag}{c}a"), &email, 1, now + 30 * DAY_MS);
            evs.push(("subscription", first.event("PURCHASE_APPROVED", &id(0), t)));
            let r = rng.f();
            if r < 0.35 {
                let renew =
                    Sale::subscription(PLAN, &sub, &format!("HP{tag}{c}b"), &email, 2, now + 60 * DAY_MS);
                evs.push(("renewal", renew.event("PURCHASE_APPROVED", &id(1), t + 1000)));
                if rng.f() < 0.15 {
                    evs.push((
                        "cancellation",
                        cancellation(&id(2), t + 2000, PLAN, &sub, &email, now + 60 * DAY_MS),
                    ));
                }
            } else if r < 0.45 {
                let late =
                    Sale::subscription(PLAN, &sub, &format!("HP{tag}{c}b"), &email, 2, now + 30 * DAY_MS);
                evs.push(("delay", late.event("PURCHASE_DELAYED", &id(1), t + 1000)));
            } else if r < 0.55 {
                evs.push((
                    "cancellation",
                    cancellation(&id(1), t + 1000, PLAN, &sub, &email, now + 30 * DAY_MS),
                ));
            } else if r < 0.60 {
                evs.push(("refund", first.event("PURCHASE_REFUNDED", &id(1), t + 1000)));
            }
        }
        count += evs.len();
        streams.push(evs);
    }
    mix.workflows = streams.len();
    // Interleave: each stream starts at a random slot and its events follow `gap` slots
    // apart; a reordered event is moved up to two gaps earlier; a duplicate is sent again
    // up to four gaps later.
    let gap = 40.0;
    let span = count as f64;
    let mut keyed: Vec<(f64, usize, usize, bool)> = Vec::new();
    for (s, evs) in streams.iter().enumerate() {
        let start = rng.f() * span;
        for j in 0..evs.len() {
            let mut key = start + j as f64 * gap;
            if rng.f() < reorder {
                key -= rng.f() * 2.0 * gap;
            }
            keyed.push((key, s, j, false));
            if rng.f() < dup {
                keyed.push((key + rng.f() * 4.0 * gap, s, j, true));
                mix.duplicates += 1;
            }
        }
    }
    keyed.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    let mut seen_max: HashMap<usize, usize> = HashMap::new();
    let mut bodies: HashMap<(usize, usize), Arc<str>> = HashMap::new();
    let mut out = Vec::with_capacity(keyed.len());
    for (_, s, j, is_dup) in keyed {
        let (kind, body) = &streams[s][j];
        if !is_dup {
            *mix.kinds.entry(kind).or_default() += 1;
            match seen_max.get(&s) {
                Some(&m) if m > j => mix.out_of_order += 1,
                _ => {}
            }
            let m = seen_max.entry(s).or_insert(j);
            *m = (*m).max(j);
        }
        let body = bodies.entry((s, j)).or_insert_with(|| body.to_string().into()).clone();
        out.push(Delivery { body });
    }
    (out, mix)
}

/// What one POST got back: status (0 = no answer within the timeout or a connection
/// error), latency, and whether the starter called it a new event.
#[derive(Clone, Copy)]
struct Ack {
    status: u16,
    ms: f64,
    accepted: bool,
    done_at: Instant,
}

#[derive(Clone)]
struct Poster {
    http: reqwest::Client,
    url: String,
}

impl Poster {
    fn new(addr: &str, timeout_ms: u64) -> Poster {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(timeout_ms))
            .pool_max_idle_per_host(1024)
            .build()
            .unwrap();
        Poster { http, url: format!("http://{addr}/webhooks/hotmart") }
    }

    async fn post(&self, body: Arc<str>) -> Ack {
        let t = Instant::now();
        let r = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("X-HOTMART-HOTTOK", HOTTOK)
            .body(body.to_string())
            .send()
            .await;
        let (status, accepted) = match r {
            Ok(r) => {
                let status = r.status().as_u16();
                let v: Value = r.json().await.unwrap_or(Value::Null);
                (status, v["status"] == "accepted")
            }
            Err(_) => (0, false),
        };
        Ack { status, ms: t.elapsed().as_secs_f64() * 1000.0, accepted, done_at: Instant::now() }
    }
}

/// Sends the deliveries at `rate` per second (open loop: a slow answer never delays the
/// next request), or all at once with at most `conc` in flight when `rate` is None.
async fn send(poster: &Poster, deliveries: &[Delivery], rate: Option<f64>, conc: usize) -> (Vec<Ack>, f64) {
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(deliveries.len());
    let sem = Arc::new(Semaphore::new(conc));
    let mut tick = rate.map(|r| {
        let mut t = tokio::time::interval(Duration::from_secs_f64(1.0 / r));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        t
    });
    for d in deliveries {
        let permit = match &mut tick {
            Some(t) => {
                t.tick().await;
                None
            }
            None => Some(sem.clone().acquire_owned().await.unwrap()),
        };
        let (poster, body) = (poster.clone(), d.body.clone());
        tasks.push(tokio::spawn(async move {
            let a = poster.post(body).await;
            drop(permit);
            a
        }));
    }
    let sent_for = start.elapsed().as_secs_f64();
    let mut acks = Vec::with_capacity(tasks.len());
    for t in tasks {
        acks.push(t.await.unwrap());
    }
    (acks, sent_for)
}

struct AckStats {
    lat: Dist,
    non2xx: usize,
    no_answer: usize,
    accepted: usize,
    last_ack: Instant,
}

fn ack_stats(acks: &[Ack]) -> AckStats {
    AckStats {
        lat: dist(acks.iter().filter(|a| a.status != 0).map(|a| a.ms).collect()),
        non2xx: acks.iter().filter(|a| a.status != 0 && !(200..300).contains(&a.status)).count(),
        no_answer: acks.iter().filter(|a| a.status == 0).count(),
        accepted: acks.iter().filter(|a| a.accepted).count(),
        last_ack: acks.iter().map(|a| a.done_at).max().unwrap_or_else(Instant::now),
    }
}

// ---------------------------------------------------------------------------------------
// The stack.

struct Run {
    stack: Arc<Stack>,
    temporal: TemporalServer,
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    poster: Poster,
    direct: bool,
}

impl Run {
    async fn start(a: &Args, direct: bool, max_rps: f64) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("temporal.db");
        let temporal = TemporalServer::start(Some(&db));
        // The simulator never refuses: the check is that Tollgate keeps under its cap.
        let sim = SimConfig { rate_limit: 10_000_000, ..Default::default() };
        let mut stack = Stack::spawn(StackOptions {
            temporal: Some(temporal.address()),
            sim,
            max_rps,
            retention: "1h",
            ..Default::default()
        })
        .await;
        if direct {
            stack.kill_starter().await;
            stack.env.push(("TOLLGATE_INGRESS".into(), "direct".into()));
            stack.start_starter().await;
        }
        let poster = Poster::new(&stack.http_addr, a.timeout_ms);
        Run { stack: Arc::new(stack), temporal, _dir: dir, db, poster, direct }
    }

    fn pids(&self) -> Vec<(&'static str, Option<u32>)> {
        vec![
            ("temporal", temporal_pids().first().copied()),
            ("worker", self.stack.worker.as_ref().and_then(|c| c.id())),
            ("starter", self.stack.starter.as_ref().and_then(|c| c.id())),
            ("bench+simulator", Some(std::process::id())),
        ]
    }

    /// One line per process: RSS now and its peak.
    fn print_memory(&self, prefix: &str) {
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

    fn pid(&self, name: &str) -> Option<u32> {
        self.pids().into_iter().find(|(n, _)| *n == name).and_then(|(_, p)| p)
    }

    /// Waits until everything acknowledged is in Temporal: the journal has nothing pending
    /// (the direct ingress has nothing to drain once the answers are in). Returns the
    /// instant it happened, or None on timeout.
    async fn drained(&self, within: Duration) -> (Option<Instant>, i64) {
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
async fn watch(stack: &Stack, want: &HashMap<String, bool>, within: Duration) -> HashMap<String, i64> {
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

async fn enroll_section(a: &Args, run: &Run, rep: &mut Report) {
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
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / a.enroll_rate));
    let mut errors = 0;
    let mut sends = Vec::new();
    for e in &emails {
        tick.tick().await;
        let body =
            Sale::one_off(LIFETIME, &unique("HP"), e).event("PURCHASE_APPROVED", &unique("e"), now_ms());
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
    println!("  {}", cpu.line());
    rep.add("purchase -> enrolled p50", ms(d.p50), Some(d.p50 <= 150.0));
    rep.add("purchase -> enrolled p99", ms(d.p99), Some(d.p99 <= 1000.0 && seen.len() == n));
    rep.add("purchases never enrolled", (n - seen.len()).to_string(), None);
}

async fn unenroll_section(a: &Args, run: &Run, rep: &mut Report) {
    println!("-- unenroll: {} fixed-term purchases with a 5 s term", a.expiries);
    let cpu = Cpu::start(&run.pids());
    let t0 = now_ms();
    let mut deadlines = HashMap::new();
    for i in 0..a.expiries {
        let e = format!("exp{i}-{}@example.com", unique(""));
        let approved = t0 + (i as i64 * 50);
        let sale = Sale { approved_date: Some(approved), ..Sale::one_off(TERM, &unique("HP"), &e) };
        run.poster.post(sale.event("PURCHASE_APPROVED", &unique("e"), approved).to_string().into()).await;
        deadlines.insert(e, approved + 5_000);
    }
    let want: HashMap<String, bool> = deadlines.keys().map(|e| (e.clone(), true)).collect();
    watch(&run.stack, &want, Duration::from_secs(30)).await;
    let want: HashMap<String, bool> = deadlines.keys().map(|e| (e.clone(), false)).collect();
    let gone = watch(&run.stack, &want, Duration::from_secs(60)).await;
    let d = dist(gone.iter().map(|(e, t)| (t - deadlines[e]) as f64).collect());
    print_dist("unenroll lateness after deadline", d);
    println!("  never unenrolled {}", a.expiries - gone.len());
    println!("  {}", cpu.line());
    rep.add("unenroll lateness p50", ms(d.p50), None);
    rep.add("unenroll lateness p99", ms(d.p99), Some(d.p99 <= 2000.0 && gone.len() == a.expiries));
}

async fn burst_section(a: &Args, run: &Run, rep: &mut Report, rng: &mut Rng) {
    let (deliveries, mix) = stream(a.burst, a.dup, a.reorder, rng, &unique("b"));
    println!("-- burst: {} deliveries at once ({} in flight at most)", deliveries.len(), a.burst_conc);
    println!("  stream: {}", mix.line(deliveries.len()));
    let cpu = Cpu::start(&run.pids());
    let start = Instant::now();
    let (acks, sent_for) = send(&run.poster, &deliveries, None, a.burst_conc).await;
    let s = ack_stats(&acks);
    let acked_in = s.last_ack.duration_since(start).as_secs_f64();
    print_dist("burst ack latency", s.lat);
    println!(
        "  all answered {acked_in:.1} s after the first request (requests sent over {sent_for:.1} s); \
         non-2xx {}, no answer {}",
        s.non2xx, s.no_answer
    );
    let (drained, pending) = run.drained(Duration::from_secs(a.drain_timeout)).await;
    let done = drained.map(|d| d.max(s.last_ack).duration_since(start).as_secs_f64());
    let signals = if run.direct { acks.iter().filter(|a| a.status == 200).count() } else { s.accepted };
    match done {
        Some(t) => println!(
            "  all in Temporal {t:.1} s after the first request: {signals} signal-with-starts, {:.0}/s",
            signals as f64 / t
        ),
        None => println!("  {pending} still in the journal after {} s", a.drain_timeout),
    }
    println!("  {}", cpu.line());
    let lost = s.non2xx + s.no_answer;
    rep.add("burst: ack p99", ms(s.lat.p99), None);
    rep.add("burst: not acknowledged", lost.to_string(), Some(lost == 0));
    rep.add("burst: all answered after", format!("{acked_in:.1} s"), None);
    rep.add(
        "burst: all in Temporal after",
        done.map(|t| format!("{t:.1} s")).unwrap_or_else(|| format!("> {} s", a.drain_timeout)),
        None,
    );
    rep.add("burst: left undrained", pending.to_string(), Some(pending == 0));
    if let Some(t) = done {
        rep.add("burst: intake into Temporal", format!("{:.0} ev/s", signals as f64 / t), None);
    }
}

async fn ack_section(a: &Args, run: &Run, rep: &mut Report, rng: &mut Rng) {
    let n = (a.ack_rate * a.ack_secs as f64) as usize;
    let (mut deliveries, mix) = stream(n, a.dup, a.reorder, rng, &unique("a"));
    deliveries.truncate(n);
    println!("-- ack: {} deliveries at {}/s", deliveries.len(), a.ack_rate);
    println!("  stream: {}", mix.line(deliveries.len()));
    let before = run.stack.health().await["journal"]["entries"].as_i64().unwrap_or(0);
    let cpu = Cpu::start(&run.pids());
    let start = Instant::now();
    let (acks, sent_for) = send(&run.poster, &deliveries, Some(a.ack_rate), usize::MAX >> 4).await;
    let s = ack_stats(&acks);
    print_dist("webhook ack latency", s.lat);
    let codes: BTreeMap<u16, usize> = acks.iter().fold(BTreeMap::new(), |mut m, a| {
        *m.entry(a.status).or_default() += 1;
        m
    });
    println!(
        "  sent over {sent_for:.1} s ({:.0}/s achieved); answers by status (0 = none within {} ms): {codes:?}",
        deliveries.len() as f64 / sent_for,
        a.timeout_ms
    );
    let cpu_line = cpu.line();
    let busy = cpu.busy();
    let others = cpu.others();
    let (drained, pending) = run.drained(Duration::from_secs(a.drain_timeout)).await;
    let elapsed = drained.unwrap_or_else(Instant::now).max(s.last_ack).duration_since(start).as_secs_f64();
    let (signals, label) = if run.direct {
        (acks.iter().filter(|a| a.status == 200).count() as i64, "signal-with-starts answered")
    } else {
        let entries = run.stack.health().await["journal"]["entries"].as_i64().unwrap_or(0);
        (entries - before - pending, "journal entries forwarded")
    };
    let rate = signals as f64 / elapsed;
    println!(
        "  {signals} {label} {elapsed:.1} s after the first request ({rate:.0}/s){}",
        if pending > 0 { format!("; {pending} still pending at the timeout") } else { String::new() }
    );
    println!("  during the send: {cpu_line}");
    let errors = s.non2xx + s.no_answer;
    rep.add("ack p50", ms(s.lat.p50), None);
    rep.add("ack p99", ms(s.lat.p99), Some(s.lat.p99 <= 20.0 && s.no_answer == 0));
    rep.add("ack max", ms(s.lat.max), None);
    rep.add("ack errors (non-2xx + no answer)", format!("{} + {}", s.non2xx, s.no_answer), Some(errors == 0));
    rep.add("ack: achieved request rate", format!("{:.0}/s", deliveries.len() as f64 / sent_for), None);
    rep.add(
        "drain rate into Temporal (ev/s)",
        format!("{rate:.0}{}", if pending > 0 { " (timeout)" } else { "" }),
        None,
    );
    rep.add(
        "ack: all in Temporal after",
        if pending > 0 { format!("> {elapsed:.0} s") } else { format!("{elapsed:.1} s") },
        None,
    );
    rep.add("ack: machine CPU busy while sending", format!("{busy:.0}%"), None);
    rep.add("ack: of which not this stack (other jobs)", format!("{others:.0}%"), None);
}

async fn ingress_run(a: &Args, ingress: &str, seed: u64) -> Report {
    let direct = ingress == "direct";
    println!("\n=== ingress: {ingress} ===");
    let run = Run::start(a, direct, a.max_rps).await;
    let stack = &run.stack;
    stack.link(LIFETIME, &["101"], &["--policy", "lifetime"]).await;
    stack.link(TERM, &["102"], &["--policy", "fixed_term", "--term", "5s"]).await;
    stack.link(PLAN, &["103"], &["--policy", "subscription", "--grace", "3d"]).await;
    let mut rep = Report::default();
    let mut rng = Rng(seed);
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

// ---------------------------------------------------------------------------------------
// Once-only sections.

/// The dev server's own intake ceiling: signal-with-start of new workflows on a task queue
/// nobody polls, from this process, `conc` at a time.
async fn ceiling_section(a: &Args) {
    use temporalio_client::{WorkflowIdConflictPolicy, WorkflowStartOptions};
    use tollgate_workflows::{AccessInput, AccessWorkflow, RulesConfig};
    println!("\n=== ceiling: the dev server's own signal-with-start rate (no Tollgate process) ===");
    let dir = tempfile::tempdir().unwrap();
    let temporal = TemporalServer::start(Some(&dir.path().join("temporal.db")));
    let client = tollgate_tests::temporal::client(&temporal.address()).await;
    let tag = unique("c");
    for conc in [32usize, 128] {
        let mut rng = Rng(conc as u64);
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
                let input = AccessInput { key: key.clone(), config: RulesConfig::default(), carried: None };
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

async fn scale_section(a: &Args) {
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
fn temporal_count(addr: &str, query: &str) -> String {
    std::process::Command::new("temporal")
        .args(["workflow", "count", "--address", addr, "--query", query])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().replace('\n', " "))
        .unwrap_or_else(|e| format!("? ({e})"))
}

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
    let a = args();
    raise_nofile();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    println!(
        "Tollgate benchmark; Temporal dev server with a SQLite file; {cores} cores; load average at start: {}",
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
    println!("\nbenchmark wall time {:.0} s", t0.elapsed().as_secs_f64());
}
