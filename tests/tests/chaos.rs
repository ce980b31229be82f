//! Chaos: a few hundred webhooks (duplicated and shuffled) while the worker and the
//! starter are killed with SIGKILL and restarted, the Temporal dev server (file DB) is
//! stopped and restarted, and TalentLMS fails ~30% of calls with 5xx, 429 and slow answers.
//! Afterwards TalentLMS enrollments and revenue rows must equal an oracle computed from
//! the event stream by the pure rules: nothing lost, nothing doubled.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::Value;
use tollgate_domain::access::{AccessPolicy, Facts, KeyKind, evaluate};
use tollgate_domain::fixtures::{Sale, cancellation};
use tollgate_domain::hotmart::{self, HotmartEvent};
use tollgate_domain::revenue::{first_reversals, row_for};
use tollgate_simulator::{FaultConfig, SimConfig};
use tollgate_tests::rng::Rng;
use tollgate_tests::{Stack, StackOptions, TemporalServer, now_ms, unique};

const DAY: i64 = 86_400_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_loses_nothing_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut temporal = TemporalServer::start(Some(&dir.path().join("temporal.db")));
    let faults = FaultConfig {
        error_rate: 0.15,
        rate_limited_rate: 0.10,
        slow_rate: 0.05,
        slow_ms: 300,
        ..Default::default()
    };
    let mut stack = Stack::spawn(StackOptions {
        temporal: Some(temporal.address()),
        sim: SimConfig { faults, ..Default::default() },
        max_rps: 100.0,
        retention: "1h",
        ..Default::default()
    })
    .await;
    let base = 60_000_000 + (now_ms() % 1_000_000) * 10;
    let (lifetime, subscription) = (base, base + 1);
    stack.link(lifetime, &["101"], &["--policy", "lifetime"]).await;
    stack.link(subscription, &["102", "103"], &["--policy", "subscription", "--grace", "1d"]).await;
    let courses = BTreeMap::from([(lifetime, vec!["101"]), (subscription, vec!["102", "103"])]);
    let policies = BTreeMap::from([
        (lifetime, AccessPolicy::Lifetime),
        (subscription, AccessPolicy::Subscription { grace_secs: 86_400 }),
    ]);

    // The stream: one-off purchases (some refunded or charged back) and subscriptions
    // (renewals, cancellations, refunds); deadlines are days away, so the final state
    // does not depend on when the test runs.
    let t = now_ms();
    let mut bodies: Vec<Value> = Vec::new();
    for i in 0..100 {
        let sale = Sale::one_off(lifetime, &unique("HP"), &format!("{}@example.com", unique("life")));
        bodies.push(sale.event("PURCHASE_APPROVED", &unique("e"), t + i));
        if i % 3 == 0 {
            bodies.push(sale.event("PURCHASE_REFUNDED", &unique("e"), t + 1000 + i));
        } else if i % 5 == 0 {
            bodies.push(sale.event("PURCHASE_CHARGEBACK", &unique("e"), t + 1000 + i));
        }
    }
    for i in 0..45 {
        let code = unique("SUB");
        let email = format!("{}@example.com", unique("sub"));
        let first = Sale::subscription(subscription, &code, &unique("HP"), &email, 1, t + 30 * DAY);
        bodies.push(first.event("PURCHASE_APPROVED", &unique("e"), t - 20 * DAY + i));
        let second = Sale::subscription(subscription, &code, &unique("HP"), &email, 2, t + 60 * DAY);
        if i % 2 == 0 {
            bodies.push(second.event("PURCHASE_APPROVED", &unique("e"), t - DAY + i));
        }
        if i % 4 == 0 {
            bodies.push(cancellation(
                &unique("e"),
                t - 10 * DAY + i,
                subscription,
                &code,
                &email,
                t + 30 * DAY,
            ));
        }
        if i % 6 == 0 {
            let latest = if i % 2 == 0 { &second } else { &first };
            bodies.push(latest.event("PURCHASE_REFUNDED", &unique("e"), t + i));
        }
    }
    // Deliveries: every event once, a quarter of them twice, all shuffled.
    // Seeded, so a failure can be replayed.
    let mut rng = Rng::new(0x5eed);
    let mut deliveries: Vec<Value> = bodies.clone();
    for (i, b) in bodies.iter().enumerate() {
        if i % 4 == 0 {
            deliveries.push(b.clone());
        }
    }
    for i in (1..deliveries.len()).rev() {
        deliveries.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let n = deliveries.len();
    eprintln!("chaos: {} distinct events, {n} deliveries", bodies.len());

    for (i, body) in deliveries.iter().enumerate() {
        if i == n / 5 {
            stack.kill_worker().await;
            stack.start_worker();
        } else if i == 2 * n / 5 {
            stack.kill_starter().await;
            stack.start_starter().await;
        } else if i == 3 * n / 5 {
            temporal.stop();
        } else if i == 4 * n / 5 {
            temporal.restart();
            stack.kill_worker().await;
            stack.start_worker();
        }
        let (code, b) = stack.post(body).await;
        assert_eq!(code, 200, "delivery {i}: {b}");
    }

    // The oracle: the pure rules over each workflow's events.
    let events: Vec<HotmartEvent> =
        bodies.iter().map(|b| hotmart::parse(b.to_string().as_bytes()).unwrap().event).collect();
    let mut by_key: BTreeMap<String, Vec<&HotmartEvent>> = BTreeMap::new();
    for e in &events {
        by_key.entry(e.workflow_key().unwrap().workflow_id()).or_default().push(e);
    }
    let now = now_ms();
    let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (id, evs) in &by_key {
        let mut facts = Facts::default();
        evs.iter().for_each(|e| {
            facts.apply(e);
        });
        let product = facts.product_id.unwrap().0;
        let kind = if id.starts_with("subscription-") { KeyKind::Subscription } else { KeyKind::Purchase };
        let v = evaluate(&facts, &policies[&product], kind, now);
        let email = facts.buyer.as_ref().unwrap().value.email.to_string();
        let set = expected.entry(email).or_default();
        if v.entitled {
            set.extend(courses[&product].iter().map(|c| c.to_string()));
        }
    }
    let mut expected_revenue: BTreeMap<String, i64> = BTreeMap::new();
    // As the warehouse books them: one reversal per transaction, then one row per key.
    for r in first_reversals(events.iter().filter_map(row_for)) {
        expected_revenue.entry(r.key).or_insert(r.gross.minor);
    }

    // Converge: enrollments and revenue equal the oracle.
    let deadline = Instant::now() + Duration::from_secs(240);
    let actual_enrollments = || {
        let mut m: BTreeMap<String, BTreeSet<String>> =
            expected.keys().map(|e| (e.clone(), BTreeSet::new())).collect();
        for (email, course) in stack.sim.enrollments() {
            m.entry(email).or_default().insert(course);
        }
        m
    };
    loop {
        let rows = stack.revenue().await;
        let revenue: BTreeMap<String, i64> = rows
            .iter()
            .map(|r| (r["key"].as_str().unwrap().to_string(), r["gross"]["minor"].as_i64().unwrap()))
            .collect();
        let enrolled = actual_enrollments();
        if enrolled == expected && revenue == expected_revenue {
            assert_eq!(rows.len(), expected_revenue.len(), "a revenue row was written twice");
            break;
        }
        if Instant::now() > deadline {
            let wrong: Vec<_> =
                expected.iter().filter(|(e, c)| enrolled.get(*e) != Some(c)).take(5).collect();
            panic!(
                "did not converge: {} students differ (e.g. {wrong:?}), revenue {} rows vs {} expected\n{}",
                expected.iter().filter(|(e, c)| enrolled.get(*e) != Some(c)).count(),
                revenue.len(),
                expected_revenue.len(),
                stack.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let state = stack.sim.state();
    eprintln!(
        "chaos: converged; TalentLMS saw {} calls, {} injected faults; {} students, {} revenue rows",
        state.total_calls,
        state.injected_faults,
        expected.len(),
        expected_revenue.len()
    );
    assert!(state.injected_faults > 10, "the storm never happened");
}
