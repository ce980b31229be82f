//! Once, on its own dev server: onboarding through Hotmart's API. A generated school in
//! the Hotmart simulator (Hotmart's 500 calls/min limit) is imported with `hotmart
//! import`: customers per minute, Hotmart calls and the busiest minute against the limit;
//! then one TalentLMS drift audit over the enrolments the import made.

use std::time::{Duration, Instant};

use serde_json::Value;
use tollgate_simulator::SimConfig;
use tollgate_simulator::hotmart::{self, HotmartConfig, School, SchoolProducts};
use tollgate_tests::{Stack, StackOptions, TemporalServer, now_ms, unique_product};

use crate::args::Args;

pub async fn import_section(a: &Args) {
    println!(
        "\n=== import: {} customers from the Hotmart simulator (limit {}/min, Tollgate budget {}/min) ===",
        a.import, a.import_limit, a.import_budget
    );
    let dir = tempfile::tempdir_in(&a.temporal_db_dir).unwrap();
    let temporal = TemporalServer::start(Some(&dir.path().join("temporal.db")));
    let products = SchoolProducts {
        lifetime: unique_product(),
        fixed_term: unique_product(),
        subscription: unique_product(),
    };
    let school = School::generate(a.import, a.seed, now_ms(), products);
    let hm = hotmart::spawn(HotmartConfig { school, rate_limit: a.import_limit, ..Default::default() })
        .await
        .unwrap();
    let mut stack = Stack::spawn(StackOptions {
        temporal: Some(temporal.address()),
        sim: SimConfig { rate_limit: 10_000_000, ..Default::default() },
        max_rps: a.max_rps,
        retention: "1h",
        ..Default::default()
    })
    .await;
    for (k, v) in [
        ("HOTMART_CLIENT_ID", hm.client_id().to_string()),
        ("HOTMART_CLIENT_SECRET", hm.client_secret().to_string()),
        ("HOTMART_API_URL", hm.base_url()),
        ("HOTMART_MAX_PER_MINUTE", a.import_budget.to_string()),
    ] {
        stack.env.push((k.into(), v));
    }
    stack.kill_worker().await;
    stack.start_worker();
    stack.link(products.lifetime, &["101"], &["--policy", "lifetime"]).await;
    stack.link(products.fixed_term, &["102"], &["--policy", "fixed_term", "--term", "365d"]).await;
    stack.link(products.subscription, &["103"], &["--policy", "subscription", "--grace", "3d"]).await;

    let start = Instant::now();
    let done: Value = serde_json::from_str(&stack.starter_cmd(&["hotmart", "import"]).await).unwrap();
    let secs = start.elapsed().as_secs_f64();
    let state = hm.state();
    println!(
        "  imported {} customers ({} subscriptions, {} sales, {} events) in {secs:.1} s = {:.0} customers/min",
        a.import,
        done["subscriptions"],
        done["sales"],
        done["events"],
        a.import as f64 * 60.0 / secs
    );
    println!(
        "  Hotmart calls {} ({:.0}/min on average), busiest minute {} of the {} allowed ({:.0}%), 429s {}",
        state.total_calls,
        state.total_calls as f64 * 60.0 / secs,
        state.max_calls_per_minute,
        a.import_limit,
        state.max_calls_per_minute as f64 * 100.0 / f64::from(a.import_limit),
        state.rate_limited_calls
    );
    // The workflows enroll after the import journaled their events.
    let settle = Instant::now();
    let mut last = usize::MAX;
    loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let n = stack.sim.enrollments().len();
        if (n == last && stack.health().await["journal"]["pending"] == 0)
            || settle.elapsed() > Duration::from_secs(600)
        {
            break;
        }
        last = n;
    }
    let enrolments = stack.sim.enrollments().len();
    let start = Instant::now();
    let audit: Value = serde_json::from_str(&stack.starter_cmd(&["talentlms", "audit"]).await).unwrap();
    println!(
        "  audit of {enrolments} enrolments in {} linked courses: {:.1} s ({})",
        audit["courses"],
        start.elapsed().as_secs_f64(),
        audit["summary"].as_str().unwrap_or("")
    );
    drop(stack);
    drop(temporal);
}
