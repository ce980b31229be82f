//! Chaos: a few hundred webhooks (duplicated and shuffled) while the worker and the
//! starter are killed with SIGKILL and restarted, the Temporal dev server (file DB) is
//! stopped and restarted, and TalentLMS fails ~30% of calls with 5xx, 429 and slow answers.
//! Afterwards TalentLMS enrollments and revenue rows must equal an oracle computed from
//! the event stream by the pure rules: nothing lost, nothing doubled.

use std::time::Duration;

use tollgate_simulator::{FaultConfig, SimConfig};
use tollgate_tests::oracle::{Catalog, deliveries};
use tollgate_tests::{Stack, StackOptions, TemporalServer, now_ms};

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
    let catalog = Catalog { lifetime: base, subscription: base + 1 };
    catalog.link(&stack).await;

    // The stream: one-off purchases and subscriptions; every event delivered once, a
    // quarter of them twice, all shuffled (seeded, so a failure can be replayed).
    let bodies = catalog.stream(100, 45);
    let deliveries = deliveries(&bodies, 4, 0x5eed);
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

    // The oracle: the pure rules over each workflow's events; enrollments and revenue
    // must converge to it.
    let oracle = catalog.oracle(&bodies);
    oracle.converge(&stack, Duration::from_secs(240)).await;
    let state = stack.sim.state();
    eprintln!(
        "chaos: converged; TalentLMS saw {} calls, {} injected faults; {} students, {} revenue rows",
        state.total_calls,
        state.injected_faults,
        oracle.enrollments.len(),
        oracle.revenue.len()
    );
    assert!(state.injected_faults > 10, "the storm never happened");
}
