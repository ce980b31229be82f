//! Dashboard query time over a large embedded warehouse.
//!
//! `cargo run --release -p tollgate-bench --bin warehouse-bench -- [rows]` (default
//! 1,000,000): fills a fresh SQLite warehouse with synthetic sales spread over two years,
//! then times each query the dashboard and the daily rollup make, five runs each.

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
    let sqlite = SqliteWarehouse::open(dir.path().join("bench.db"))?;
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
        std::fs::metadata(dir.path().join("bench.db"))?.len() as f64 / 1e6
    );
    let w = Warehouse::Sqlite(sqlite);
    let brl: Currency = "BRL".parse().unwrap();
    let range = |n: i64| DayRange::new(Day::from_index(today.index() - n + 1), today).unwrap();

    time("currencies", 5, || w.currencies()).await?;
    for n in [30, 90, 365] {
        let rows =
            time(&format!("daily revenue per course, {n} days"), 5, || w.course_days(&brl, range(n))).await?;
        let subs = time(&format!("subscriptions (active/MRR/churn), {n} days"), 5, || {
            w.subscription_days(&brl, range(n))
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
    let dashboard = |n: i64| {
        let w = w.clone();
        let brl = brl.clone();
        async move {
            let (a, b) = tokio::join!(w.course_days(&brl, range(n)), w.subscription_days(&brl, range(n)));
            a?;
            b?;
            anyhow::Ok(())
        }
    };
    time("dashboard load (both queries), 30 days", 5, || dashboard(30)).await?;
    time("dashboard load (both queries), 365 days", 5, || dashboard(365)).await?;
    time("daily rollup of one day (compute + write)", 5, || w.rollup_day(today.prev())).await?;
    Ok(())
}
