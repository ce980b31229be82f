//! The dashboard in a real browser: headless Chromium loads `/dashboard` against a
//! warehouse with 60 days of sales, and the page must report every chart drawn with data
//! (points plotted and pixels painted on each canvas). The screenshot is kept in
//! `target/dashboard.png`; `TOLLGATE_UPDATE_SCREENSHOT=1` also refreshes the README's
//! `docs/dashboard.png`.
//!
//! The staff console is driven like a person would: `tests/browser/console.mjs`
//! (playwright-core on the same Chromium) signs in, creates a link with the course picker,
//! confirms a course removal on the impact page, finds a student and reads their timeline.
//! Its screenshots are kept in `target/`; `TOLLGATE_UPDATE_SCREENSHOT=1` refreshes
//! `docs/console-*.png`.
//!
//! Needs Chromium (`/usr/bin/chromium`, or `CHROMIUM`) and, for the console, Node with
//! `tests/browser/node_modules`; `scripts/test.sh` installs them. Without them the tests
//! fail, unless `TOLLGATE_SKIP_BROWSER=1`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tollgate_domain::fixtures::Sale;
use tollgate_domain::metrics::Day;
use tollgate_tests::{
    API_TOKEN, DASHBOARD_TOKEN, Stack, StackOptions, now_ms, synthetic, unique, unique_product,
};
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

/// Chromium, or `None` when it is missing and `TOLLGATE_SKIP_BROWSER=1` says to skip.
fn chromium_or_skip() -> Option<PathBuf> {
    let bin = chromium();
    if bin.is_none() {
        assert_eq!(
            std::env::var("TOLLGATE_SKIP_BROWSER").as_deref(),
            Ok("1"),
            "Chromium not found (apt-get install chromium, or set CHROMIUM); TOLLGATE_SKIP_BROWSER=1 skips"
        );
        eprintln!("TOLLGATE_SKIP_BROWSER=1: no Chromium, skipping");
    }
    bin
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Copies the screenshots a test took into `docs/` when asked to.
fn update_docs(shots: &[&Path]) {
    if std::env::var("TOLLGATE_UPDATE_SCREENSHOT").as_deref() == Ok("1") {
        let docs = repo().join("docs");
        std::fs::create_dir_all(&docs).unwrap();
        for shot in shots {
            std::fs::copy(shot, docs.join(shot.file_name().unwrap())).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_draws_every_chart_with_data() {
    let Some(bin) = chromium_or_skip() else { return };
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

    let shot = repo().join("target/dashboard.png");
    let profile = tempfile::tempdir().unwrap();
    let out = run_chromium(&bin, profile.path(), &url, &[format!("--screenshot={}", shot.display())]).await;
    let png = std::fs::read(&shot)
        .unwrap_or_else(|_| panic!("no screenshot: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(&png[1..4], b"PNG");
    assert!(png.len() > 50_000, "screenshot of {} bytes: likely blank", png.len());
    update_docs(&[&shot]);
    eprintln!("{n} BRL rows; charts {charts}; screenshot {} ({} bytes)", shot.display(), png.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_signs_in_links_with_the_picker_confirms_a_removal_and_shows_a_timeline() {
    let Some(bin) = chromium_or_skip() else { return };
    let script_dir = repo().join("tests/browser");
    assert!(
        script_dir.join("node_modules/playwright-core").exists(),
        "tests/browser/node_modules is missing: `source scripts/lib.sh; ensure_browser_deps` (scripts/test.sh does)"
    );
    let stack = Stack::spawn(StackOptions::default()).await;
    // A student enrolled in 101 and 102 through the product the browser will edit.
    let (edit, new) = (unique_product(), unique_product());
    stack.link(edit, &["101", "102"], &["--policy", "lifetime"]).await;
    let email = format!("{}@example.com", unique("browser"));
    let txn = unique("HP");
    stack.post(&Sale::one_off(edit, &txn, &email).event("PURCHASE_APPROVED", &unique("e"), now_ms())).await;
    stack.wait_enrolled(&email, &["101", "102"], Duration::from_secs(25)).await;

    let shots = repo().join("target/console-shots");
    std::fs::create_dir_all(&shots).unwrap();
    let args = serde_json::json!({
        "base": format!("http://{}", stack.http_addr),
        "token": API_TOKEN,
        "newProduct": new,
        "editProduct": edit,
        "email": email,
        "shots": shots,
        "chromium": bin,
    });
    let run = tokio::process::Command::new("node")
        .current_dir(&script_dir)
        .arg("console.mjs")
        .arg(args.to_string())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the browser script did not finish in 120 s")
        .expect("node runs (apt-get install nodejs)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "console.mjs failed: {stderr}\n{}", stack.logs());
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("console.mjs printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stdout))
    });

    // Signed in with a session cookie, HttpOnly and SameSite.
    assert_eq!(seen["cookie"][0]["httpOnly"], true, "{seen}");
    assert_eq!(seen["cookie"][0]["sameSite"], "Strict", "{seen}");
    // The picker shows the simulator's courses by name; the new link holds what was ticked.
    let picker = seen["picker"].as_array().unwrap();
    for c in ["101", "102", "103"] {
        assert!(picker.iter().any(|p| p["id"] == c && p["label"].as_str().unwrap().len() > 6), "{seen}");
    }
    assert!(
        seen["created"].as_str().unwrap().contains(&format!("Product {new} now unlocks 101, 103")),
        "{seen}"
    );
    assert_eq!(seen["listed"], serde_json::json!([new.to_string()]), "search narrows to the new link");
    let listed = stack.starter_cmd(&["links", "list"]).await;
    let line =
        listed.lines().find(|l| l.contains(&format!("\"product_id\":{new}"))).expect("new link stored");
    assert!(line.contains(r#"["101","103"]"#), "{line}");
    // The removal asked first, with the one student it affects, then reached them.
    assert_eq!(seen["affected"], 1, "{seen}");
    assert!(seen["confirmText"].as_str().unwrap().contains("removes course(s) 102"), "{seen}");
    assert!(seen["fanOut"].as_str().unwrap().contains("signalled 1 running"), "{seen}");
    stack.wait_enrolled(&email, &["101"], Duration::from_secs(25)).await;
    // The timeline: the enrolment, then the removal with its TalentLMS action.
    let timeline = seen["timeline"].as_array().unwrap();
    let actions: Vec<&str> = timeline.iter().map(|r| r["talentlms"].as_str().unwrap()).collect();
    assert!(actions.iter().any(|a| a.contains("enrolled in course 101")), "{timeline:?}");
    assert!(actions.iter().any(|a| a.contains("course 102")), "{timeline:?}");
    assert_eq!(seen["state"], "active", "{seen}");
    assert!(seen["temporalUi"].as_str().unwrap().contains("/workflows/"), "{seen}");

    let names = ["console-links.png", "console-confirm.png", "console-student.png"];
    let paths: Vec<PathBuf> = names.iter().map(|n| shots.join(n)).collect();
    for p in &paths {
        let png = std::fs::read(p).unwrap_or_else(|_| panic!("no screenshot {}", p.display()));
        assert_eq!(&png[1..4], b"PNG");
        assert!(png.len() > 10_000, "{}: {} bytes, likely blank", p.display(), png.len());
    }
    update_docs(&paths.iter().map(PathBuf::as_path).collect::<Vec<_>>());
    eprintln!("console seen: {seen}");
}
