//! The dashboard in a real browser: headless Chromium loads `/dashboard` against a
//! warehouse with 60 days of sales, and the page must report every chart drawn with data
//! (points plotted and pixels painted on each canvas). The screenshot is kept in
//! `target/dashboard.png`; `TOLLGATE_UPDATE_SCREENSHOT=1` also refreshes the README's
//! `docs/dashboard.png`.
//!
//! Needs Chromium (`/usr/bin/chromium`, or `CHROMIUM`); `scripts/test.sh` installs it.
//! Without it the test fails, unless `TOLLGATE_SKIP_BROWSER=1`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tollgate_domain::metrics::Day;
use tollgate_tests::{DASHBOARD_TOKEN, Stack, StackOptions, now_ms, synthetic};
use tollgate_warehouse::SqliteWarehouse;

fn chromium() -> Option<PathBuf> {
    let candidates = [
        std::env::var("CHROMIUM").ok(),
        Some("/usr/bin/chromium".into()),
        Some("/usr/bin/chromium-browser".into()),
    ];
    candidates.into_iter().flatten().map(PathBuf::from).find(|p| p.exists())
}

/// Runs headless Chromium on `url` with the extra `args`, in a fresh profile.
async fn run_chromium(bin: &Path, profile: &Path, url: &str, args: &[String]) -> std::process::Output {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--window-size=1400,1380",
        "--virtual-time-budget=15000",
        &format!("--user-data-dir={}", profile.display()),
    ]);
    cmd.args(args).arg(url).kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .expect("chromium did not finish in 90 s")
        .expect("chromium runs")
}

fn attr(dom: &str, name: &str) -> Option<String> {
    let start = dom.find(&format!("{name}=\""))? + name.len() + 2;
    let end = dom[start..].find('"')? + start;
    Some(dom[start..end].replace("&quot;", "\"").replace("&amp;", "&"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_draws_every_chart_with_data() {
    let Some(bin) = chromium() else {
        if std::env::var("TOLLGATE_SKIP_BROWSER").as_deref() == Ok("1") {
            eprintln!("TOLLGATE_SKIP_BROWSER=1: no Chromium, skipping");
            return;
        }
        panic!(
            "Chromium not found (apt-get install chromium, or set CHROMIUM); TOLLGATE_SKIP_BROWSER=1 skips"
        );
    };
    let stack = Stack::spawn(StackOptions::default()).await;
    let today = Day::of_ms(now_ms());
    let w = SqliteWarehouse::open(stack.dir.path().join("tollgate.db")).unwrap();
    let rows = synthetic::revenue_rows(7, today, 60, 12, "BRL");
    let n = rows.len();
    w.record_many(rows).await.unwrap();
    w.record_many(synthetic::revenue_rows(8, today, 60, 2, "USD")).await.unwrap();

    let from = Day::from_index(today.index() - 44);
    let url = format!(
        "http://{}/dashboard?token={DASHBOARD_TOKEN}&from={from}&to={today}&currency=BRL",
        stack.http_addr
    );
    let profile = tempfile::tempdir().unwrap();
    let out = run_chromium(&bin, profile.path(), &url, &["--dump-dom".into()]).await;
    let dom = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        attr(&dom, "data-state").as_deref(),
        Some("ready"),
        "page did not finish ({} rows seeded)\nstderr: {}\n{dom}",
        n,
        String::from_utf8_lossy(&out.stderr)
    );
    let charts: Value = serde_json::from_str(&attr(&dom, "data-charts").expect("data-charts")).unwrap();
    for id in ["c-revenue", "c-mrr", "c-subs", "c-reversals"] {
        let (points, painted) =
            (charts[id]["points"].as_i64().unwrap(), charts[id]["painted"].as_i64().unwrap());
        assert!(points >= 20, "{id}: only {points} data points: {charts}");
        // Axes and legend alone paint a few thousand pixels; bars and filled lines far more.
        assert!(painted > 20_000, "{id}: {painted} painted pixels, looks blank: {charts}");
    }
    // The KPI cards show money in the chosen currency.
    assert!(dom.contains("R$"), "no BRL amounts on the page");

    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/dashboard.png");
    let profile = tempfile::tempdir().unwrap();
    let out = run_chromium(&bin, profile.path(), &url, &[format!("--screenshot={}", shot.display())]).await;
    let png = std::fs::read(&shot)
        .unwrap_or_else(|_| panic!("no screenshot: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(&png[1..4], b"PNG");
    assert!(png.len() > 50_000, "screenshot of {} bytes: likely blank", png.len());
    if std::env::var("TOLLGATE_UPDATE_SCREENSHOT").as_deref() == Ok("1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::copy(&shot, docs.join("dashboard.png")).unwrap();
    }
    eprintln!("{n} BRL rows; charts {charts}; screenshot {} ({} bytes)", shot.display(), png.len());
}
