//! Scaling out: several starters on one Firestore journal (one forwarder at a time, taken
//! over when its holder is killed), several workers on one task queue and one SQLite
//! file of one machine, and a second machine refused that file.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use tollgate_domain::fixtures::Sale;
use tollgate_tests::{HOTTOK, Stack, StackOptions, now_ms, oracle, unique, unique_product};

const WAIT: Duration = Duration::from_secs(60);

async fn post_to(http: &reqwest::Client, addr: &str, body: &Value) -> Option<u16> {
    let r = http
        .post(format!("http://{addr}/webhooks/hotmart"))
        .header("X-HOTMART-HOTTOK", HOTTOK)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .ok()?;
    Some(r.status().as_u16())
}

async fn get_json(http: &reqwest::Client, url: String) -> Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

/// `tollgate_journal_forwarded_total` of the starter at `addr`.
async fn forwarded(http: &reqwest::Client, addr: &str) -> u64 {
    let text = http.get(format!("http://{addr}/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("tollgate_journal_forwarded_total "))
        .map_or(0, |v| v.trim().parse().unwrap())
}

async fn wait_all_enrolled(stack: &Stack, emails: &[String], course: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let enrolled: BTreeSet<String> =
            stack.sim.enrollments().into_iter().filter(|(_, c)| c == course).map(|(e, _)| e).collect();
        let missing: Vec<&String> = emails.iter().filter(|e| !enrolled.contains(*e)).collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} never enrolled, e.g. {:?}\n{}",
            missing.len(),
            missing[0],
            stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Firestore journal, two starters: one forwards, the other stands by; the active one is
/// killed in the middle of a burst and the other takes over. Every acknowledged event is
/// applied once; the ones the dead starter never answered are resent, as Hotmart would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starters_on_one_firestore_journal_forward_once_and_take_over_from_a_killed_one() {
    if std::env::var_os("FIRESTORE_EMULATOR_HOST").is_none() {
        assert_eq!(
            std::env::var("TOLLGATE_SKIP_FIRESTORE").as_deref(),
            Ok("1"),
            "FIRESTORE_EMULATOR_HOST is not set (scripts/test.sh starts the emulator); TOLLGATE_SKIP_FIRESTORE=1 skips"
        );
        return;
    }
    let env = vec![
        ("TOLLGATE_STORE".to_string(), "firestore".to_string()),
        ("FIRESTORE_PROJECT_ID".to_string(), unique("scale-")),
    ];
    let mut stack = Stack::spawn(StackOptions { env, ..Default::default() }).await;
    let http = reqwest::Client::new();
    let (b_child, b_addr) = stack.spawn_starter("starter-b.log").await;
    let mut b_child = Some(b_child);
    let a_addr = stack.http_addr.clone();
    // Exactly one forwarder is active.
    let deadline = Instant::now() + Duration::from_secs(15);
    let active = loop {
        let a = get_json(&http, format!("http://{a_addr}/healthz")).await["forwarder"].clone();
        let b = get_json(&http, format!("http://{b_addr}/healthz")).await["forwarder"].clone();
        match (a.as_str(), b.as_str()) {
            (Some("active"), Some("standby")) => break 'a',
            (Some("standby"), Some("active")) => break 'b',
            _ => {}
        }
        assert!(Instant::now() < deadline, "no single active forwarder: a {a}, b {b}\n{}", stack.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (active_addr, standby_addr) =
        if active == 'a' { (a_addr.clone(), b_addr.clone()) } else { (b_addr.clone(), a_addr.clone()) };

    let product = unique_product();
    stack.link(product, &["101"], &["--policy", "lifetime"]).await;
    let sale = |email: &str| {
        Sale::one_off(product, &unique("HP"), email).event("PURCHASE_APPROVED", &unique("e"), now_ms())
    };

    // Round-robin over both starters: each entry is forwarded once, by the active one.
    let first: Vec<String> = (0..10).map(|_| format!("{}@example.com", unique("rr"))).collect();
    for (i, email) in first.iter().enumerate() {
        let addr = if i % 2 == 0 { &a_addr } else { &b_addr };
        assert_eq!(post_to(&http, addr, &sale(email)).await, Some(200));
    }
    wait_all_enrolled(&stack, &first, "101").await;
    assert_eq!(forwarded(&http, &active_addr).await, 10, "the active forwarder sends each entry once");
    assert_eq!(forwarded(&http, &standby_addr).await, 0, "the standby forwards nothing");

    // A burst to the active starter, killed (SIGKILL) in the middle of it.
    let burst: Vec<(String, Value)> = (0..30)
        .map(|_| {
            let email = format!("{}@example.com", unique("burst"));
            let body = sale(&email);
            (email, body)
        })
        .collect();
    let sends: Vec<_> = burst
        .iter()
        .map(|(_, body)| {
            let (http, addr, body) = (http.clone(), active_addr.clone(), body.clone());
            tokio::spawn(async move { post_to(&http, &addr, &body).await })
        })
        .collect();
    // Killed once a few are answered: some acknowledged entries are then not forwarded yet.
    let deadline = Instant::now() + Duration::from_secs(10);
    while sends.iter().filter(|s| s.is_finished()).count() < 5 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    if active == 'a' {
        stack.kill_starter().await;
    } else {
        b_child.take().unwrap().kill().await.unwrap();
    }
    let mut resent = 0;
    for ((_, body), send) in burst.iter().zip(sends) {
        if send.await.unwrap() != Some(200) {
            // Not acknowledged: Hotmart resends it, here to the surviving starter.
            resent += 1;
            assert_eq!(post_to(&http, &standby_addr, body).await, Some(200));
        }
    }
    eprintln!(
        "scale: {} of {} burst deliveries acknowledged before the kill",
        burst.len() - resent,
        burst.len()
    );
    let emails: Vec<String> = burst.iter().map(|(e, _)| e.clone()).collect();
    wait_all_enrolled(&stack, &emails, "101").await;
    assert_eq!(get_json(&http, format!("http://{standby_addr}/healthz")).await["forwarder"], "active");
    let health = get_json(&http, format!("http://{standby_addr}/healthz")).await;
    assert_eq!(health["journal"]["pending"], 0, "{health}");
    // Nothing applied twice: one enrollment call per student, one revenue row per sale.
    let state = stack.sim.state();
    // A run books revenue just after it enrolls: wait for the last rows, then count.
    let sales = first.len() + burst.len();
    let rows = stack.wait_revenue(WAIT, |r| r.len() >= sales).await;
    assert_eq!(rows.len(), sales, "one revenue row per sale");
    assert_eq!(stack.enroll_calls(), (first.len() + burst.len()) as u64, "one enroll call per student");
    eprintln!("scale: TalentLMS saw {} calls", state.total_calls);
}

/// Two workers of one machine on one task queue and one SQLite file: every purchase
/// applied once. A worker of another machine is refused the file with a clear message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_one_sqlite_file_and_a_second_machine_is_refused() {
    let stack = Stack::spawn(StackOptions::default()).await;
    let _second = stack.spawn_worker("worker-2.log");
    let product = unique_product();
    stack.link(product, &["101"], &["--policy", "lifetime"]).await;
    let emails: Vec<String> = (0..20).map(|_| format!("{}@example.com", unique("two"))).collect();
    for email in &emails {
        let body =
            Sale::one_off(product, &unique("HP"), email).event("PURCHASE_APPROVED", &unique("e"), now_ms());
        assert_eq!(stack.post(&body).await.0, 200);
    }
    wait_all_enrolled(&stack, &emails, "101").await;
    let rows = stack.wait_revenue(WAIT, |r| r.len() >= emails.len()).await;
    assert_eq!(rows.len(), emails.len(), "one revenue row per sale");
    let keys: BTreeSet<&str> = rows.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), emails.len());
    assert_eq!(stack.enroll_calls(), emails.len() as u64, "one enroll call per student");

    // The first worker recorded this machine; pretend the file came from another one.
    let db = stack.dir.path().join("tollgate.db");
    let marker = stack.dir.path().join("tollgate.db.host");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), tollgate_store::this_host());
    std::fs::write(&marker, "another-machine").unwrap();
    let mut third = stack.spawn_worker("worker-3.log");
    let status = tokio::time::timeout(Duration::from_secs(30), third.wait()).await.unwrap().unwrap();
    assert!(!status.success(), "a worker of another machine must not start on {}", db.display());
    let log = std::fs::read_to_string(stack.dir.path().join("worker-3.log")).unwrap();
    assert!(
        log.contains("is used by host \"another-machine\"") && log.contains("TOLLGATE_STORE=firestore"),
        "{log}"
    );
}

/// The scaled-out topology, one machine standing in for GCP: 3 starters (Pub/Sub journal,
/// Firestore store) taking round-robin webhooks, the `forward` role, 3 workers, the
/// Temporal dev server, the Firestore and Pub/Sub emulators, TalentLMS failing ~30% of
/// calls. One starter, one worker and the forwarder are SIGKILLed mid-stream (the
/// forwarder restarted later, as its supervisor would). The end state must equal the
/// rules' oracle: every student's courses, one revenue row per key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_of_three_starters_a_forwarder_and_three_workers_survives_sigkills() {
    let (Ok(_), Ok(pubsub)) =
        (std::env::var("FIRESTORE_EMULATOR_HOST"), std::env::var("PUBSUB_EMULATOR_HOST"))
    else {
        assert!(
            std::env::var("TOLLGATE_SKIP_FIRESTORE").as_deref() == Ok("1")
                || std::env::var("TOLLGATE_SKIP_PUBSUB").as_deref() == Ok("1"),
            "the topology needs FIRESTORE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST (scripts/test.sh starts both)"
        );
        return;
    };
    let faults = tollgate_simulator::FaultConfig {
        error_rate: 0.15,
        rate_limited_rate: 0.10,
        slow_rate: 0.05,
        slow_ms: 300,
        ..Default::default()
    };
    let project = format!("tollgate-{}", unique("").chars().rev().take(12).collect::<String>());
    let env = vec![
        ("TOLLGATE_STORE".to_string(), "firestore".to_string()),
        ("FIRESTORE_PROJECT_ID".to_string(), project.clone()),
        ("TOLLGATE_JOURNAL".to_string(), "pubsub".to_string()),
        ("PUBSUB_PROJECT_ID".to_string(), project),
        ("PUBSUB_EMULATOR_HOST".to_string(), pubsub),
    ];
    let stack = Stack::spawn(StackOptions {
        env,
        sim: tollgate_simulator::SimConfig { faults, ..Default::default() },
        max_rps: 100.0,
        retention: "1h",
        ..Default::default()
    })
    .await;
    stack.starter_cmd(&["pubsub", "setup"]).await;
    let (b, b_addr) = stack.spawn_starter("starter-b.log").await;
    let (_c, c_addr) = stack.spawn_starter("starter-c.log").await;
    let mut b = Some(b);
    let mut worker_2 = Some(stack.spawn_worker("worker-2.log"));
    let _worker_3 = stack.spawn_worker("worker-3.log");
    let mut forwarder = stack.spawn_starter_cmd(&["forward"], "forward.log");
    let base = 70_000_000 + (now_ms() % 1_000_000) * 10;
    let catalog = oracle::Catalog { lifetime: base, subscription: base + 1 };
    catalog.link(&stack).await;
    let bodies = catalog.stream(60, 25);
    let deliveries = oracle::deliveries(&bodies, 4, 0x70b0);
    let n = deliveries.len();
    eprintln!("topology: {} distinct events, {n} deliveries", bodies.len());

    let http = reqwest::Client::new();
    let mut starters = vec![stack.http_addr.clone(), b_addr, c_addr];
    for (i, body) in deliveries.iter().enumerate() {
        if i == n / 4 {
            // Starter B dies; its address stays in the rotation until a post to it fails.
            b.take().unwrap().kill().await.unwrap();
        } else if i == 2 * n / 5 {
            forwarder.kill().await.unwrap();
        } else if i == n / 2 {
            worker_2.take().unwrap().kill().await.unwrap();
        } else if i == 3 * n / 5 {
            forwarder = stack.spawn_starter_cmd(&["forward"], "forward.log");
        }
        // Round-robin; a starter that does not answer is dropped and the delivery resent
        // to the next one, as Hotmart resends.
        loop {
            let addr = starters[i % starters.len()].clone();
            match post_to(&http, &addr, body).await {
                Some(200) => break,
                Some(code) => panic!("delivery {i} to {addr}: {code}\n{}", stack.logs()),
                None => starters.retain(|s| *s != addr),
            }
        }
    }
    catalog.oracle(&bodies).converge(&stack, Duration::from_secs(300)).await;
    let state = stack.sim.state();
    eprintln!(
        "topology: converged; TalentLMS saw {} calls, {} injected faults",
        state.total_calls, state.injected_faults
    );
    assert!(state.injected_faults > 5, "the storm never happened");
    drop(forwarder);
}
