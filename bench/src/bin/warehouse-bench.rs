//! Dashboard query time over a large embedded warehouse.
//!
//! `cargo run --release -p tollgate-bench --bin warehouse-bench -- [rows]` (default
//! 1,000,000): fills a fresh SQLite warehouse with synthetic sales spread over two years,
//! then times each query the dashboard and the daily rollup make, five runs each: all
//! from the facts first (the dashboard before rollups), then with stored rollups for
//! closed days (what it reads now), and after a late refund reopens a week.

use std::time::{Duration, Instant};

use tollgate_domain::metrics::{Currency, Day, DayRange};
use tollgate_tests::synthetic;
use tollgate_warehouse::{SqliteWarehouse, Warehouse};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn time<T, F: std::future::Future<Output = anyhow::Result<T>>>(
    name: &str,
    runs: usize,
    mut f: impl FnMut() -> F,
) -> anyhow::Result<T> {
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        last = Some(f().await?);
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "{name:<44} p50={:>8.1}ms  max={:>8.1}ms  (n={runs})",
        ms(times[times.len() / 2]),
        ms(*times.last().unwrap())
    );
    Ok(last.unwrap())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let target: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(1_000_000);
    let days = 730;
    let dir = tempfile::tempdir()?;
    // WAREHOUSE_BENCH_KEEP=path keeps the loaded file there, for EXPLAIN QUERY PLAN.
    let file =
        std::env::var_os("WAREHOUSE_BENCH_KEEP").map_or_else(|| dir.path().join("bench.db"), Into::into);
    let sqlite = SqliteWarehouse::open(&file)?;
    let today =
        Day::of_ms(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64);

    // Rows scale with sales per day (renewals accumulate over the span): measure at 10/day,
    // then scale to land near the target, BRL taking 10/11 of it.
    let at_ten = synthetic::revenue_rows(1, today, days, 10, "BRL").len() as f64;
    let per_day = ((target as f64 * 10.0 / 11.0 / at_ten * 10.0).round() as u64).max(1);
    let t = Instant::now();
    let rows = synthetic::revenue_rows(42, today, days, per_day, "BRL");
    let usd = synthetic::revenue_rows(43, today, days, (per_day / 10).max(1), "USD");
    let total = rows.len() + usd.len();
    for chunk in rows.chunks(50_000).chain(usd.chunks(50_000)) {
        sqlite.record_many(chunk.to_vec()).await?;
    }
    println!("Tollgate warehouse benchmark: embedded SQLite, 2 cores");
    println!(
        "{total} revenue rows over {days} days (BRL + USD) loaded in {:.1} s; file {:.0} MB",
        t.elapsed().as_secs_f64(),
        std::fs::metadata(&file)?.len() as f64 / 1e6
    );
    let w = Warehouse::Sqlite(sqlite);
    let brl: Currency = "BRL".parse().unwrap();
    let range = |n: i64| DayRange::new(Day::from_index(today.index() - n + 1), today).unwrap();

    time("currencies", 5, || w.currencies()).await?;
    println!("-- all live (every day from the facts; the dashboard before rollups)");
    for n in [30, 90, 365] {
        let rows =
            time(&format!("daily revenue per course, {n} days"), 5, || w.live_course_days(&brl, range(n)))
                .await?;
        let subs = time(&format!("subscriptions (active/MRR/churn), {n} days"), 5, || {
            w.live_subscription_days(&brl, range(n))
        })
        .await?;
        if n == 30 {
            println!(
                "   (30 days: {} course-day rows; active subscriptions today {}, MRR {} minor units)",
                rows.len(),
                subs.last().map_or(0, |s| s.active),
                subs.last().map_or(0, |s| s.mrr_minor)
            );
        }
    }
    let live = |n: i64| {
        let w = w.clone();
        let brl = brl.clone();
        async move {
            let (a, b) =
                tokio::join!(w.live_course_days(&brl, range(n)), w.live_subscription_days(&brl, range(n)));
            anyhow::Ok((a?, b?))
        }
    };
    let served = |n: i64| {
        let w = w.clone();
        let brl = brl.clone();
        async move {
            let (a, b) = tokio::join!(w.course_days(&brl, range(n)), w.subscription_days(&brl, range(n)));
            anyhow::Ok((a?, b?))
        }
    };
    time("dashboard load (both queries), 30 days", 5, || live(30)).await?;
    let year_live = time("dashboard load (both queries), 365 days", 5, || live(365)).await?;

    println!("-- rollups for closed days, live facts for today (what the dashboard reads now)");
    let t = Instant::now();
    let written = w.refresh_rollups(range(days)).await?;
    println!("rollup backfill of {written} closed days (every currency): {:.1} s", t.elapsed().as_secs_f64());
    for n in [30, 90, 365] {
        time(&format!("daily revenue per course, {n} days"), 5, || w.course_days(&brl, range(n))).await?;
        time(&format!("subscriptions (active/MRR/churn), {n} days"), 5, || {
            w.subscription_days(&brl, range(n))
        })
        .await?;
    }
    let changing = time("  of which: facts of today's changing subscriptions", 5, || {
        w.subscription_facts_changing(&brl, today)
    })
    .await?;
    println!("   ({} facts of subscriptions that change today)", changing.len());
    time("dashboard load (both queries), 30 days", 5, || served(30)).await?;
    let year = time("dashboard load (both queries), 365 days", 5, || served(365)).await?;
    anyhow::ensure!(year == year_live, "the figures from rollups differ from the live ones");
    println!("   (365 days: the same figures as all live)");

    // A late refund dated a week ago: that day and the six after it are read live until
    // the refresh the dashboard starts stores them again.
    let week_ago = Day::from_index(today.index() - 7);
    let charge = w
        .rows_between(week_ago.start_ms(), week_ago.end_ms())
        .await?
        .into_iter()
        .find(|r| r.kind == tollgate_domain::revenue::RevenueKind::Charge && r.gross.currency == "BRL");
    if let Some(c) = charge {
        let refund = tollgate_domain::revenue::RevenueRow {
            key: format!("{}:refund", c.transaction),
            kind: tollgate_domain::revenue::RevenueKind::Refund,
            event_id: "bench-late-refund".into(),
            gross: tollgate_domain::money::Money {
                minor: -c.gross.minor,
                currency: c.gross.currency.clone(),
            },
            producer_net: None,
            occurred_at: c.occurred_at + 1,
            paid_until: None,
            ..c
        };
        w.record(refund).await?;
        time("dashboard, 365 days, after a late refund 7 days ago", 1, || served(365)).await?;
        let t = Instant::now();
        let written = w.refresh_rollups(range(365)).await?;
        println!("refresh of the {written} days it reopened: {:.1} ms", ms(t.elapsed()));
        time("dashboard load (both queries), 365 days, refreshed", 5, || served(365)).await?;
    }
    Ok(())
}
