//! What operators and on-call engineers touch: concurrent CLI runs against a running
//! starter, slow clients, error bodies, readiness, and the student lookup by email.
//!
//! Every CLI command and route must work on every backend, so the tests that touch the
//! store or the warehouse run twice (`<name>::sqlite`, `<name>::firestore`): on the
//! embedded SQLite, and on the production backends, the Firestore and BigQuery emulators
//! (`FIRESTORE_EMULATOR_HOST`, `BIGQUERY_EMULATOR_HOST`; `scripts/test.sh` starts them).
//! Without an emulator the production variant fails, unless `TOLLGATE_SKIP_FIRESTORE=1`.

use std::time::{Duration, Instant};

use tollgate_domain::fixtures::Sale;
use tollgate_tests::{Stack, StackOptions, now_ms, purchase_wf, unique, unique_product};

use crate::WAIT;

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    /// Firestore documents and the BigQuery warehouse, on their emulators.
    Production,
}

/// The environment that puts a stack on the production backends, each test in its own
/// Firestore project; `None` when skipped on purpose. The tests share one BigQuery
/// dataset, created here once (each test's products and emails are its own): every
/// process opening a fresh dataset would run the whole DDL on the one emulator.
async fn production_env() -> Option<Vec<(&'static str, String)>> {
    let (Ok(firestore), Ok(bigquery)) =
        (std::env::var("FIRESTORE_EMULATOR_HOST"), std::env::var("BIGQUERY_EMULATOR_HOST"))
    else {
        assert_eq!(
            std::env::var("TOLLGATE_SKIP_FIRESTORE").as_deref(),
            Ok("1"),
            "FIRESTORE_EMULATOR_HOST and BIGQUERY_EMULATOR_HOST must be set: start the emulators \
             (scripts/test.sh does; or `source scripts/lib.sh; ensure_firestore_emulator; ensure_bq_emulator`), \
             or set TOLLGATE_SKIP_FIRESTORE=1 to skip the production-backend variants"
        );
        eprintln!("TOLLGATE_SKIP_FIRESTORE=1: skipping the production-backend variant");
        return None;
    };
    static DATASET: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    let dataset = DATASET.get_or_init(|| bigquery_dataset(&bigquery)).await.clone();
    Some(vec![
        ("TOLLGATE_STORE", "firestore".into()),
        ("FIRESTORE_PROJECT_ID", unique("ops-e2e").to_lowercase()),
        ("FIRESTORE_EMULATOR_HOST", firestore),
        ("TOLLGATE_WAREHOUSE", "bigquery".into()),
        ("BIGQUERY_PROJECT_ID", "test-project".into()),
        ("BIGQUERY_DATASET", dataset),
        ("BIGQUERY_EMULATOR_HOST", bigquery),
    ])
}

/// A new BigQuery dataset with the warehouse's schema, made before the processes start:
/// they then find it current instead of each running the DDL on the emulator at once.
async fn bigquery_dataset(host: &str) -> String {
    let dataset = unique("ops_e2e");
    tollgate_warehouse::BigQueryWarehouse::open("test-project", &dataset, Some(host))
        .await
        .expect("the BigQuery emulator creates the dataset");
    dataset
}

/// A stack on `backend`; `None` when that backend is skipped on purpose.
async fn spawn_on(backend: Backend, opts: StackOptions) -> Option<Stack> {
    let extra = match backend {
        Backend::Sqlite => return Some(Stack::spawn(opts).await),
        Backend::Production => production_env().await?,
    };
    // The harness starts on SQLite; restart both processes on the production backends.
    let mut stack = Stack::spawn(opts).await;
    stack.kill_worker().await;
    stack.kill_starter().await;
    stack.env.extend(extra.into_iter().map(|(k, v)| (k.to_string(), v)));
    stack.start_worker();
    stack.start_starter().await;
    Some(stack)
}

/// `name::sqlite` and `name::firestore` tests calling `name(backend)`.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn firestore() {
                super::$name(super::Backend::Production).await
            }
        }
    )*};
}

on_every_backend!(
    ten_concurrent_cli_link_adds_all_succeed_while_the_starter_runs,
    status_by_email_finds_an_address_with_a_quote,
    readyz_follows_temporal_while_healthz_stays_live,
    metrics_of_starter_and_worker_move_after_a_purchase,
    staff_console_links_confirmation_student_timeline_and_journal,
);

async fn ten_concurrent_cli_link_adds_all_succeed_while_the_starter_runs(backend: Backend) {
    let Some(stack) = spawn_on(backend, StackOptions::default()).await else { return };
    let products: Vec<String> = (0..10).map(|_| unique_product().to_string()).collect();
    let runs = products.iter().map(|p| {
        let stack = &stack;
        async move {
            stack
                .starter_output(&["links", "add", "--product", p, "--course", "101", "--course", "102"])
                .await
        }
    });
    let outs = futures::future::join_all(runs).await;
    let failed = outs.iter().filter(|o| !o.status.success()).count();
    assert_eq!(failed, 0, "{failed} of 10 runs failed:\n{}", stack.full_logs());
    let listed = stack.starter_cmd(&["links", "list"]).await;
    for p in &products {
        assert!(listed.contains(&format!("\"product_id\":{p}")), "{p} missing from {listed}");
    }
}

async fn status_by_email_finds_an_address_with_a_quote(backend: Backend) {
    let Some(stack) = spawn_on(backend, StackOptions::default()).await else { return };
    let p = unique_product();
    stack.link(p, &["101"], &["--policy", "lifetime"]).await;
    let email = format!("o'brien.{}@example.com", unique("q"));
    let txn = unique("HP");
    stack.post(&Sale::one_off(p, &txn, &email).event("PURCHASE_APPROVED", &unique("e"), now_ms())).await;
    stack.wait_enrolled(&email, &["101"], WAIT).await;
    // Visibility is eventually consistent: the run appears in the list shortly after.
    let deadline = Instant::now() + WAIT;
    loop {
        let out = stack.starter_output(&["status", "--email", &email]).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "status failed:\n{}", stack.full_logs());
        if stdout.contains(&purchase_wf(&txn)) {
            break;
        }
        assert!(Instant::now() < deadline, "status never listed {}: {stdout}", purchase_wf(&txn));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Writes `bytes` one per second to a fresh connection; returns how long the server kept
/// the connection open and what it answered (empty if it just closed it).
async fn trickle(addr: &str, head: &[u8], bytes: &[u8], give_up: Duration) -> (Duration, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let start = Instant::now();
    conn.write_all(head).await.unwrap();
    let (mut rd, mut wr) = conn.into_split();
    let writer = async {
        for b in bytes {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if wr.write_all(&[*b]).await.is_err() {
                break;
            }
        }
        std::future::pending::<()>().await
    };
    let reader = async {
        let mut answer = Vec::new();
        let _ = rd.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    };
    let answer = tokio::select! {
        a = reader => a,
        _ = writer => unreachable!(),
        _ = tokio::time::sleep(give_up) => panic!("connection still open after {give_up:?}"),
    };
    (start.elapsed(), answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_headers_or_body_is_cut_off() {
    let mut stack = Stack::spawn(StackOptions::default()).await;
    stack.kill_starter().await;
    stack.env.push(("TOLLGATE_HTTP_HEADER_TIMEOUT".into(), "2s".into()));
    stack.env.push(("TOLLGATE_HTTP_BODY_TIMEOUT".into(), "3s".into()));
    stack.start_starter().await;
    let addr = stack.http_addr.clone();
    // Headers at a byte a second: closed after the 2 s header timeout.
    let slow_headers = b"X-Hotmart-Hottok: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let (open, _) = trickle(
        &addr,
        b"POST /webhooks/hotmart HTTP/1.1\r\nHost: x\r\n",
        slow_headers,
        Duration::from_secs(15),
    )
    .await;
    assert!(open < Duration::from_secs(8), "headers: open {open:?}");
    // Whole headers, then the body at a byte a second: 408 after the 3 s body timeout.
    let head = format!(
        "POST /webhooks/hotmart HTTP/1.1\r\nHost: x\r\nX-Hotmart-Hottok: {}\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n",
        tollgate_tests::HOTTOK
    );
    let (open, answer) = trickle(&addr, head.as_bytes(), &[b' '; 64], Duration::from_secs(15)).await;
    assert!(open < Duration::from_secs(8), "body: open {open:?}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // A normal client is served as before.
    assert_eq!(stack.health().await["status"], "ok");
}

async fn readyz_follows_temporal_while_healthz_stays_live(backend: Backend) {
    if matches!(backend, Backend::Production) && production_env().await.is_none() {
        return;
    }
    // Its own dev server: this test stops it.
    let mut temporal =
        tokio::task::spawn_blocking(|| tollgate_tests::TemporalServer::start(None)).await.unwrap();
    let opts = StackOptions { temporal: Some(temporal.address().to_string()), ..Default::default() };
    let mut stack = spawn_on(backend, opts).await.expect("not skipped");
    let get = |path: &'static str| {
        let url = format!("http://{}{path}", stack.http_addr);
        let http = stack.http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            (r.status().as_u16(), r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (code, body) = get("/readyz").await;
    assert_eq!((code, body["checks"]["temporal"].as_str()), (200, Some("ok")), "{body}");
    temporal.stop();
    let deadline = Instant::now() + WAIT;
    loop {
        let (code, body) = get("/readyz").await;
        if code == 503 {
            assert_eq!(body["checks"]["temporal"], "unreachable", "{body}");
            assert_eq!(body["checks"]["journal"], "ok", "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "readyz still {code} with Temporal stopped: {body}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(get("/healthz").await.0, 200, "liveness does not depend on Temporal");
    stack.kill_worker().await;

    // A webhook journaled while Temporal is down waits. Its age counts from when it was
    // journaled, also in a starter started later (which never reached Temporal at all).
    let email = format!("{}@example.com", unique("age"));
    let sale = Sale::one_off(unique_product(), &unique("HP"), &email);
    assert_eq!(stack.post(&sale.event("PURCHASE_APPROVED", &unique("e"), now_ms())).await.0, 200);
    tokio::time::sleep(Duration::from_secs(3)).await;
    stack.kill_starter().await;
    stack.start_starter().await;
    let url = format!("http://{}/metrics", stack.http_addr);
    let page = stack.http.get(url).send().await.unwrap().text().await.unwrap();
    assert_eq!(sample(&page, "tollgate_journal_pending"), 1.0);
    let age = sample(&page, "tollgate_journal_oldest_pending_age_seconds");
    assert!((3.0..120.0).contains(&age), "oldest pending age {age} s, journaled over 3 s ago");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_are_served_without_a_cdn_and_sessions_hold_no_token() {
    let stack = Stack::spawn(StackOptions::default()).await;
    let base = format!("http://{}", stack.http_addr);
    let r = stack.http.get(format!("{base}/docs")).send().await.unwrap();
    assert!(r.headers()["content-security-policy"].to_str().unwrap().starts_with("default-src 'self'"));
    let page = r.text().await.unwrap();
    assert!(!page.contains("http://") && !page.contains("https://"), "{page}");
    for asset in ["/docs/swagger-ui.js", "/docs/swagger-ui.css", "/docs/init.js"] {
        assert!(page.contains(asset), "{asset} not in {page}");
        let r = stack.http.get(format!("{base}{asset}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{asset}");
        assert!(r.text().await.unwrap().len() > 300, "{asset}");
    }
    // Sign-in: the cookie is a session id, never the token; Secure behind an HTTPS proxy.
    let no_redirect = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for (proxy, secure) in [(None, false), (Some("https"), true)] {
        let mut req =
            no_redirect.post(format!("{base}/dashboard/login")).form(&[("token", tollgate_tests::API_TOKEN)]);
        if let Some(p) = proxy {
            req = req.header("x-forwarded-proto", p);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 303);
        let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(!cookie.contains(tollgate_tests::API_TOKEN), "{cookie}");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
        assert_eq!(cookie.contains("Secure"), secure, "{cookie}");
        let session = cookie.split(';').next().unwrap().to_string();
        let r =
            no_redirect.get(format!("{base}/api/revenue/currencies")).header("cookie", &session).send().await;
        assert_eq!(r.unwrap().status(), 200);
    }
    let r = no_redirect
        .get(format!("{base}/api/revenue/currencies"))
        .header("cookie", "tollgate_session=forged")
        .send();
    assert_eq!(r.await.unwrap().status(), 401);
}

/// The value of one sample (`name{labels}` exactly as exposed) in a Prometheus text page.
fn sample(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} not in:\n{page}"))
}

async fn metrics_of_starter_and_worker_move_after_a_purchase(backend: Backend) {
    let Some(mut stack) = spawn_on(backend, StackOptions::default()).await else { return };
    let port = tollgate_tests::free_port();
    stack.kill_worker().await;
    stack.kill_starter().await;
    const TOKEN: &str = "test-metrics-token-4242";
    stack.env.push(("TOLLGATE_WORKER_METRICS_ADDR".into(), format!("127.0.0.1:{port}")));
    stack.env.push(("TOLLGATE_METRICS_TOKEN".into(), TOKEN.into()));
    stack.start_worker();
    stack.start_starter().await;
    let scrape = |url: String| {
        let http = stack.http.clone();
        async move {
            let deadline = Instant::now() + WAIT;
            loop {
                match http.get(&url).bearer_auth(TOKEN).send().await {
                    Ok(r) if r.status().is_success() => {
                        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
                        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
                        return r.text().await.unwrap();
                    }
                    _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
                    other => panic!("{url}: {other:?}"),
                }
            }
        }
    };
    let starter_url = format!("http://{}/metrics", stack.http_addr);
    let worker_url = format!("http://127.0.0.1:{port}/metrics");
    let before = scrape(starter_url.clone()).await;
    scrape(worker_url.clone()).await;
    // With TOLLGATE_METRICS_TOKEN set, a scrape without it (or with another) reads nothing.
    for url in [&starter_url, &worker_url] {
        for token in [None, Some("test-metrics-token-4243"), Some(tollgate_tests::API_TOKEN)] {
            let mut req = stack.http.get(url.as_str());
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 401, "{url} with {token:?}");
            assert!(!r.text().await.unwrap().contains("tollgate_"), "{url} leaked metrics");
        }
    }
    let accepted = r#"tollgate_webhook_requests_total{outcome="accepted"}"#;
    assert_eq!(sample(&before, accepted), 0.0);
    assert_eq!(sample(&before, "tollgate_journal_forwarded_total"), 0.0);

    let p = unique_product();
    stack.link(p, &["101"], &["--policy", "lifetime"]).await;
    let email = format!("{}@example.com", unique("metrics"));
    let txn = unique("HP");
    stack.post(&Sale::one_off(p, &txn, &email).event("PURCHASE_APPROVED", &unique("e"), now_ms())).await;
    stack.post_raw(b"{}".to_vec(), Some("wrong-token")).await;
    // The BigQuery emulator's first statements after it starts can take seconds each.
    let slow = Duration::from_secs(60);
    stack.wait_enrolled(&email, &["101"], slow).await;
    stack.wait_revenue(slow, |rows| rows.iter().any(|r| r["transaction"] == txn.as_str())).await;

    let after = scrape(starter_url).await;
    assert_eq!(sample(&after, accepted), 1.0);
    assert_eq!(sample(&after, r#"tollgate_webhook_requests_total{outcome="unauthorized"}"#), 1.0);
    assert_eq!(sample(&after, "tollgate_journal_appended_total"), 1.0);
    assert_eq!(sample(&after, "tollgate_journal_forwarded_total"), 1.0);
    assert_eq!(sample(&after, "tollgate_journal_forward_latency_seconds_count"), 1.0);
    assert_eq!(sample(&after, "tollgate_journal_pending"), 0.0);
    assert_eq!(sample(&after, "tollgate_journal_quarantined"), 0.0);

    // The row is visible once written; the worker counts it when the write returns, which
    // on BigQuery is one statement (the day's change mark) later.
    let charge = r#"tollgate_revenue_rows_written_total{kind="charge"}"#;
    let deadline = Instant::now() + slow;
    let worker = loop {
        let page = scrape(worker_url.clone()).await;
        if sample(&page, charge) >= 1.0 || Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(sample(&worker, r#"tollgate_talentlms_calls_total{operation="enroll",result="ok"}"#) >= 1.0);
    assert!(sample(&worker, r#"tollgate_revenue_rows_written_total{kind="charge"}"#) >= 1.0);
    assert!(sample(&worker, r#"tollgate_decisions_total{state="active"}"#) >= 1.0);
    assert_eq!(sample(&worker, "tollgate_talentlms_rate_limited_total"), 0.0);
    // The Temporal SDK core's own worker metrics, on the same page.
    assert!(worker.lines().any(|l| l.starts_with("temporal_")), "no SDK metrics:\n{worker}");
}

/// A console form's hidden CSRF token.
fn csrf(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a CSRF field") + r#"name="csrf" value=""#.len();
    html[at..].split('"').next().unwrap().to_string()
}

async fn staff_console_links_confirmation_student_timeline_and_journal(backend: Backend) {
    let Some(stack) = spawn_on(backend, StackOptions::default()).await else { return };
    let base = format!("http://{}", stack.http_addr);
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    // Signed out: the sign-in form; the read-only dashboard token does not open it.
    let r = browser.get(format!("{base}/console/links")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = browser.post(format!("{base}/console/login")).form(&[("token", tollgate_tests::DASHBOARD_TOKEN)]);
    assert_eq!(r.send().await.unwrap().status(), 401);
    let r = browser.post(format!("{base}/console/login")).form(&[("token", tollgate_tests::API_TOKEN)]);
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    assert!(!cookie.contains(tollgate_tests::API_TOKEN));
    let get = |path: String| {
        let (browser, cookie, base) = (browser.clone(), cookie.clone(), base.clone());
        async move {
            let r = browser.get(format!("{base}{path}")).header("cookie", cookie).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let post = |path: &'static str, form: Vec<(&'static str, String)>| {
        let (browser, cookie, base) = (browser.clone(), cookie.clone(), base.clone());
        async move {
            let r = browser
                .post(format!("{base}{path}"))
                .header("cookie", cookie)
                .form(&form)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };

    // The picker lists the simulator's courses.
    let (code, links) = get("/console/links".into()).await;
    assert_eq!(code, 200, "{links}");
    for c in ["101", "102", "103"] {
        assert!(links.contains(&format!(r#"name="courses" value="{c}""#)), "course {c} not in the picker");
    }
    let token = csrf(&links);
    let p = unique_product();
    // Without the CSRF token nothing changes.
    let form = |courses: &[&str], extra: Vec<(&'static str, String)>| {
        let mut f = vec![("product_id", p.to_string()), ("policy", "lifetime".to_string())];
        f.extend(courses.iter().map(|c| ("courses", c.to_string())));
        f.extend(extra);
        f
    };
    let (code, _) = post("/console/links", form(&["101", "102"], vec![("csrf", "forged".into())])).await;
    assert_eq!(code, 403);
    assert!(stack.starter_cmd(&["links", "list"]).await.lines().all(|l| !l.contains(&format!(":{p},"))));
    let (code, page) = post("/console/links", form(&["101", "102"], vec![("csrf", token.clone())])).await;
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("signalled 0 running and resumed 0"), "{page}");

    // A student buys; then removing course 102 asks for confirmation with the count.
    let email = format!("{}@example.com", unique("console"));
    let txn = unique("HP");
    stack.post(&Sale::one_off(p, &txn, &email).event("PURCHASE_APPROVED", &unique("e"), now_ms())).await;
    stack.wait_enrolled(&email, &["101", "102"], WAIT).await;
    let deadline = Instant::now() + WAIT;
    let page = loop {
        let (code, page) = post("/console/links", form(&["101"], vec![("csrf", token.clone())])).await;
        assert_eq!(code, 409, "{page}");
        if page.contains(r#"<b id="affected">1</b>"#) || Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(page.contains(r#"<b id="affected">1</b>"#) && page.contains("102"), "{page}");
    let (code, page) =
        post("/console/links", form(&["101"], vec![("csrf", token.clone()), ("confirm", "true".into())]))
            .await;
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("signalled 1 running"), "{page}");
    stack.wait_enrolled(&email, &["101"], WAIT).await;

    // The student page: state, courses, the decisions timeline, revenue, the Temporal UI link.
    let (code, student) = get(format!("/console/students?email={email}")).await;
    assert_eq!(code, 200, "{student}");
    assert!(student.contains(&purchase_wf(&txn)) && student.contains(r#"class="state">active"#), "{student}");
    assert!(student.contains("class=\"timeline\"") && student.contains("enrolled"), "{student}");
    assert!(student.contains("unenrolled") || student.contains("102"), "{student}");
    assert!(student.contains("/namespaces/default/workflows/"), "{student}");
    let today = tollgate_domain::metrics::Day::of_ms(now_ms()).to_string();
    stack.starter_cmd(&["revenue", "reconcile", "--from", &today]).await;
    let deadline = Instant::now() + WAIT;
    let journal = loop {
        let (_, journal) = get("/console/journal".into()).await;
        if journal.contains("class=\"reconciliations\"") || Instant::now() > deadline {
            break journal;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(journal.contains(r#"<b id="quarantined">0</b>"#), "{journal}");
    assert!(
        journal.contains("class=\"reconciliations\"") && journal.contains("revenue-reconcile-"),
        "{journal}"
    );

    // A picture of the console for the README (the pages are static HTML: no script).
    if let Some(bin) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|b| std::path::Path::new(b).exists())
    {
        let dir = tempfile::tempdir().unwrap();
        let html = dir.path().join("student.html");
        std::fs::write(&html, &student).unwrap();
        let shot = dir.path().join("console.png");
        let out = tokio::process::Command::new(bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=1200,900",
            ])
            .arg(format!("--user-data-dir={}", dir.path().join("profile").display()))
            .arg(format!("--screenshot={}", shot.display()))
            .arg(format!("file://{}", html.display()))
            .output()
            .await
            .unwrap();
        let png = std::fs::read(&shot)
            .unwrap_or_else(|_| panic!("no screenshot: {}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(&png[1..4], b"PNG");
        if std::env::var("TOLLGATE_UPDATE_SCREENSHOT").as_deref() == Ok("1") {
            let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/console.png");
            std::fs::copy(&shot, docs).unwrap();
        }
    }
}

/// The operator commands on the production warehouse backend (the BigQuery emulator):
/// `revenue rows` without `--from`, the dashboard JSON and the console's student page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_work_on_bigquery() {
    let Ok(host) = std::env::var("BIGQUERY_EMULATOR_HOST") else {
        assert_eq!(
            std::env::var("TOLLGATE_SKIP_BIGQUERY").as_deref(),
            Ok("1"),
            "BIGQUERY_EMULATOR_HOST is not set: start the emulator (scripts/test.sh does) or set TOLLGATE_SKIP_BIGQUERY=1"
        );
        return;
    };
    let mut stack = Stack::spawn(StackOptions::default()).await;
    stack.kill_worker().await;
    stack.kill_starter().await;
    for (k, v) in [
        ("TOLLGATE_WAREHOUSE", "bigquery".to_string()),
        ("BIGQUERY_PROJECT_ID", "test-project".into()),
        ("BIGQUERY_DATASET", bigquery_dataset(&host).await),
        ("BIGQUERY_EMULATOR_HOST", host),
    ] {
        stack.env.push((k.into(), v));
    }
    stack.start_worker();
    stack.start_starter().await;
    let p = unique_product();
    stack.link(p, &["101"], &["--policy", "lifetime"]).await;
    let email = format!("{}@example.com", unique("bq"));
    let txn = unique("HP");
    stack.post(&Sale::one_off(p, &txn, &email).event("PURCHASE_APPROVED", &unique("e"), now_ms())).await;
    // `revenue rows` without --from: every row, from BigQuery.
    let rows = stack.wait_revenue(WAIT, |rows| rows.iter().any(|r| r["transaction"] == txn.as_str())).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (code, b) = stack
        .api_as("GET", "/api/revenue/daily?currency=BRL", None, Some(tollgate_tests::DASHBOARD_TOKEN))
        .await;
    assert_eq!(code, 200, "{b}");
    assert!(b["courses"].as_array().unwrap().iter().any(|c| c["product_id"] == p), "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_event_and_workflow_ids_as_fields() {
    let mut stack = Stack::spawn(StackOptions::default()).await;
    stack.kill_starter().await;
    stack.env.push(("TOLLGATE_LOG_FORMAT".into(), "json".into()));
    stack.start_starter().await;
    let txn = unique("HP");
    let event_id = unique("e");
    let email = format!("{}@example.com", unique("json"));
    let (code, _) = stack
        .post(&Sale::one_off(unique_product(), &txn, &email).event("PURCHASE_APPROVED", &event_id, now_ms()))
        .await;
    assert_eq!(code, 200);
    let log = std::fs::read_to_string(stack.dir.path().join("starter.log")).unwrap();
    let journaled = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|j| j["message"] == "webhook journaled")
        .unwrap_or_else(|| panic!("no JSON line for the webhook:\n{log}"));
    assert_eq!(journaled["event_id"], event_id.as_str(), "{journaled}");
    assert_eq!(journaled["workflow_id"], purchase_wf(&txn).as_str(), "{journaled}");
    assert_eq!(journaled["level"], "INFO", "{journaled}");
}
