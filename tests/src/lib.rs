//! `spawn_stack`: a whole Tollgate on this machine for one test. The Temporal dev server is
//! shared by the tests of one binary (each test gets its own task queues, database and
//! simulator, so tests run in parallel); a test that needs to stop Temporal starts its own.

pub mod temporal;

pub mod history;
pub mod oracle;
pub mod rng;
pub mod synthetic;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::process::{Child, Command};
use tollgate_domain::hotmart::{ProductId, WorkflowKey};
use tollgate_simulator::{SimConfig, SimHandle};
use tollgate_workflows::Status;

pub use temporal::{TemporalServer, shared_temporal};

pub const HOTTOK: &str = "test-hottok-0123456789";
pub const API_TOKEN: &str = "test-api-token-abcdef";
pub const DASHBOARD_TOKEN: &str = "test-dashboard-token-98765";

/// Where `cargo build` put the binaries (the test command builds them first).
pub fn bin(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let profile = std::env::var("TOLLGATE_TEST_PROFILE").unwrap_or_else(|_| "debug".into());
    let p = target.join(profile).join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (scripts/test.sh does)",
        p.display()
    );
    p
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Unique names so parallel tests never share a workflow id or a task queue.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros();
    format!("{prefix}{}{}{}", std::process::id(), t % 100_000_000, N.fetch_add(1, Ordering::Relaxed))
}

/// A Hotmart product id no other test of this binary uses.
pub fn unique_product() -> i64 {
    use std::sync::atomic::{AtomicI64, Ordering};
    static N: AtomicI64 = AtomicI64::new(0);
    (now_ms() % 1_000_000_000) * 100 + N.fetch_add(1, Ordering::Relaxed)
}

pub use tollgate_store::now_ms;

/// The id of a one-off purchase's workflow, as the starter names it.
pub fn purchase_wf(transaction: &str) -> String {
    WorkflowKey::Purchase { transaction: transaction.to_string() }.workflow_id()
}

/// The id of a subscription's workflow, as the starter names it.
pub fn subscription_wf(product: i64, subscriber: &str) -> String {
    WorkflowKey::Subscription { product: ProductId(product), subscriber: subscriber.to_string() }
        .workflow_id()
}

#[derive(Clone)]
pub struct StackOptions {
    pub temporal: Option<String>,
    pub link_poll: &'static str,
    pub retention: &'static str,
    pub max_history: u32,
    pub max_rps: f64,
    pub sim: SimConfig,
    /// More environment for every process of the stack (e.g. `TOLLGATE_STORE=firestore`).
    pub env: Vec<(String, String)>,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            temporal: None,
            link_poll: "1s",
            retention: "30s",
            max_history: 2000,
            max_rps: 50.0,
            sim: SimConfig::default(),
            env: Vec::new(),
        }
    }
}

pub struct Stack {
    pub dir: tempfile::TempDir,
    pub sim: SimHandle,
    pub temporal: String,
    pub http_addr: String,
    pub env: Vec<(String, String)>,
    pub worker: Option<Child>,
    pub starter: Option<Child>,
    pub http: reqwest::Client,
    /// One connection for every query and poll of this stack.
    temporal_client: tokio::sync::OnceCell<temporalio_client::Client>,
}

impl Stack {
    pub async fn spawn(opts: StackOptions) -> Stack {
        let temporal = match opts.temporal.clone() {
            Some(t) => t,
            None => shared_temporal().to_string(),
        };
        let dir = tempfile::tempdir().unwrap();
        let sim = tollgate_simulator::spawn(opts.sim.clone()).await.unwrap();
        let http_addr = String::new();
        let queue = unique("tq");
        let env: Vec<(String, String)> = [
            ("TEMPORAL_ADDRESS", temporal.clone()),
            ("TEMPORAL_NAMESPACE", "default".into()),
            ("TOLLGATE_TASK_QUEUE", queue.clone()),
            ("TOLLGATE_TALENTLMS_QUEUE", format!("{queue}-lms")),
            ("TOLLGATE_DB", dir.path().join("tollgate.db").display().to_string()),
            ("TOLLGATE_HOTTOK", HOTTOK.into()),
            ("TOLLGATE_API_TOKEN", API_TOKEN.into()),
            ("TOLLGATE_DASHBOARD_TOKEN", DASHBOARD_TOKEN.into()),
            ("TOLLGATE_LINK_POLL", opts.link_poll.into()),
            ("TOLLGATE_RETENTION", opts.retention.into()),
            ("TOLLGATE_MAX_HISTORY", opts.max_history.to_string()),
            ("TOLLGATE_MAX_RETRY_INTERVAL", "2s".into()),
            // A starter killed with SIGKILL keeps the forwarder lease this long.
            ("TOLLGATE_FORWARDER_LEASE", "3s".into()),
            ("TALENTLMS_URL", sim.base_url()),
            ("TALENTLMS_API_KEY", sim.api_key().to_string()),
            ("TALENTLMS_MAX_RPS", opts.max_rps.to_string()),
            ("RUST_LOG", "info,temporalio_sdk_core=warn".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(opts.env.iter().cloned())
        .collect();
        let mut stack = Stack {
            dir,
            sim,
            temporal,
            http_addr,
            env,
            worker: None,
            starter: None,
            http: reqwest::Client::new(),
            temporal_client: Default::default(),
        };
        stack.start_worker();
        stack.start_starter().await;
        stack
    }

    fn command(&self, bin_name: &str, log: &str) -> Command {
        let mut cmd = Command::new(bin(bin_name));
        cmd.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join(log)).unwrap();
        cmd.stdout(Stdio::from(log.try_clone().unwrap())).stderr(Stdio::from(log)).kill_on_drop(true);
        cmd
    }

    pub fn start_worker(&mut self) {
        self.worker = Some(self.spawn_worker("worker.log"));
    }

    /// `tollgate-starter {args}` as a long-running process (e.g. `forward`), logging to `log`.
    pub fn spawn_starter_cmd(&self, args: &[&str], log: &str) -> Child {
        self.command("tollgate-starter", log).args(args).spawn().unwrap()
    }

    /// Another worker process on the same task queues, logging to `log`.
    pub fn spawn_worker(&self, log: &str) -> Child {
        self.command("tollgate-worker", log).spawn().unwrap()
    }

    /// Starts `starter serve` on a port the OS picks, and waits for its health check.
    pub async fn start_starter(&mut self) {
        let (child, addr) = self.spawn_starter("starter.log").await;
        self.http_addr = addr;
        self.starter = Some(child);
    }

    /// Another `starter serve` process (logging to `log`) on a port the OS picks, once its
    /// health check answers: the process and its address.
    pub async fn spawn_starter(&self, log: &str) -> (Child, String) {
        let log_path = self.dir.path().join(log);
        let before = std::fs::read_to_string(&log_path).map(|s| s.len()).unwrap_or(0);
        let mut cmd = self.command("tollgate-starter", log);
        cmd.arg("serve").env("TOLLGATE_HTTP_ADDR", "127.0.0.1:0");
        let mut child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = loop {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(addr) = log[before.min(log.len())..]
                .lines()
                .filter(|l| l.contains("listening"))
                .find_map(|l| match serde_json::from_str::<Value>(l) {
                    // TOLLGATE_LOG_FORMAT=json
                    Ok(json) => json["addr"].as_str().map(str::to_string),
                    Err(_) => l.split("addr=").nth(1).map(str::to_string),
                })
            {
                break addr.trim().to_string();
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("starter exited with {status}:\n{}", self.logs());
            }
            assert!(Instant::now() < deadline, "starter did not come up:\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        let r = self.http.get(format!("http://{addr}/healthz")).send().await.unwrap();
        assert!(r.status().is_success(), "healthz: {}", r.status());
        (child, addr)
    }

    /// kill -9.
    pub async fn kill_worker(&mut self) {
        if let Some(mut c) = self.worker.take() {
            c.kill().await.unwrap();
        }
    }

    /// SIGTERM, then waits for the worker to exit by itself.
    pub async fn terminate_worker(&mut self, within: Duration) -> std::process::ExitStatus {
        let child = self.worker.take().expect("worker running");
        self.terminate(child, within).await
    }

    /// SIGTERM, then waits for the starter to exit by itself.
    pub async fn terminate_starter(&mut self, within: Duration) -> std::process::ExitStatus {
        let child = self.starter.take().expect("starter running");
        self.terminate(child, within).await
    }

    /// Waits for the worker process to exit and returns how it ended.
    pub async fn wait_worker_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let child = self.worker.take().expect("worker running");
        self.wait_exit(child, within).await
    }

    async fn terminate(&self, child: Child, within: Duration) -> std::process::ExitStatus {
        let pid = child.id().expect("process running").to_string();
        assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        self.wait_exit(child, within).await
    }

    async fn wait_exit(&self, mut child: Child, within: Duration) -> std::process::ExitStatus {
        match tokio::time::timeout(within, child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => panic!("still running after {within:?}\n{}", self.logs()),
        }
    }

    pub async fn kill_starter(&mut self) {
        if let Some(mut c) = self.starter.take() {
            c.kill().await.unwrap();
        }
    }

    /// Every log line the stack's processes wrote so far.
    pub fn full_logs(&self) -> String {
        ["worker.log", "starter.log", "cli.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn logs(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        // Backtrace frames would push the error message itself out of the tail.
        let frame = |l: &&str| {
            let t = l.trim_start();
            t.starts_with("at ") || t.split_once(": ").is_some_and(|(n, _)| n.parse::<u32>().is_ok())
        };
        let tail = |s: String| {
            let lines: Vec<&str> = s.lines().filter(|l| !frame(l)).collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        };
        format!(
            "--- worker.log ---\n{}\n--- starter.log ---\n{}",
            tail(read("worker.log")),
            tail(read("starter.log"))
        )
    }

    /// `GET /healthz`: liveness plus the journal's `entries` and `pending` counts.
    pub async fn health(&self) -> Value {
        let r = self.http.get(format!("http://{}/healthz", self.http_addr)).send().await.unwrap();
        r.json().await.unwrap()
    }

    /// Calls the staff API with the bearer token; returns (status, JSON body or Null).
    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.api_as(method, path, body, Some(API_TOKEN)).await
    }

    pub async fn api_as(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("http://{}{path}", self.http_addr));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Posts a webhook body with the header token.
    pub async fn post(&self, body: &Value) -> (u16, Value) {
        self.post_raw(body.to_string().into_bytes(), Some(HOTTOK)).await
    }

    pub async fn post_raw(&self, body: Vec<u8>, hottok: Option<&str>) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("http://{}/webhooks/hotmart", self.http_addr))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = hottok {
            req = req.header("X-HOTMART-HOTTOK", t);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Runs a starter subcommand; its stderr goes to `cli.log`.
    pub async fn starter_output(&self, args: &[&str]) -> std::process::Output {
        self.command("tollgate-starter", "cli.log").args(args).stdout(Stdio::piped()).output().await.unwrap()
    }

    /// Runs a starter subcommand and returns its stdout.
    pub async fn starter_cmd(&self, args: &[&str]) -> String {
        let out = self
            .command("tollgate-starter", "cli.log")
            .args(args)
            .stdout(Stdio::piped())
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "starter {args:?} failed:\n{}",
            std::fs::read_to_string(self.dir.path().join("cli.log")).unwrap_or_default()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub async fn link(&self, product: i64, courses: &[&str], policy: &[&str]) {
        let product = product.to_string();
        let mut args = vec!["links", "add", "--product", &product];
        for c in courses {
            args.extend(["--course", c]);
        }
        args.extend(policy);
        self.starter_cmd(&args).await;
    }

    /// TalentLMS enroll calls so far (without injected faults: one per student and course).
    pub fn enroll_calls(&self) -> u64 {
        self.sim
            .state()
            .calls_by_endpoint
            .iter()
            .filter(|(k, _)| k.contains("addusertocourse"))
            .map(|(_, n)| n)
            .sum()
    }

    /// (email, course) pairs enrolled in the simulator.
    pub fn enrolled(&self, email: &str) -> Vec<String> {
        let mut v: Vec<String> =
            self.sim.enrollments().into_iter().filter(|(e, _)| e == email).map(|(_, c)| c).collect();
        v.sort();
        v
    }

    pub async fn wait_enrolled(&self, email: &str, want: &[&str], within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self.enrolled(email) == want {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "{email}: enrolled in {:?}, want {want:?} after {within:?}\n{}",
                    self.enrolled(email),
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn client(&self) -> temporalio_client::Client {
        self.temporal_client.get_or_init(|| temporal::client(&self.temporal)).await.clone()
    }

    /// Waits for the workflow's current run to finish and returns its result.
    pub async fn run_result(
        &self,
        workflow_id: &str,
        within: Duration,
    ) -> tollgate_workflows::workflow::Outcome {
        let client = self.client().await;
        let handle =
            client.get_workflow_handle::<tollgate_workflows::AccessWorkflow>(workflow_id.to_string());
        tokio::time::timeout(within, handle.get_result(Default::default()))
            .await
            .unwrap_or_else(|_| panic!("{workflow_id} did not finish within {within:?}\n{}", self.logs()))
            .expect("workflow result")
    }

    pub async fn status(&self, workflow_id: &str) -> Option<Status> {
        let client = self.client().await;
        let handle =
            client.get_workflow_handle::<tollgate_workflows::AccessWorkflow>(workflow_id.to_string());
        handle.query(tollgate_workflows::AccessWorkflow::status, (), Default::default()).await.ok()
    }

    pub async fn wait_status(
        &self,
        workflow_id: &str,
        within: Duration,
        pred: impl Fn(&Status) -> bool,
    ) -> Status {
        let deadline = Instant::now() + within;
        let mut last = None;
        loop {
            if let Some(s) = self.status(workflow_id).await {
                if pred(&s) {
                    return s;
                }
                last = Some(s);
            }
            if Instant::now() > deadline {
                panic!("{workflow_id}: status never matched; last {last:#?}\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Revenue rows once `pred` holds (rows are written just after access changes).
    pub async fn wait_revenue(&self, within: Duration, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let rows = self.revenue().await;
            if pred(&rows) {
                return rows;
            }
            if Instant::now() > deadline {
                panic!("revenue never matched: {rows:#?}\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn revenue(&self) -> Vec<Value> {
        self.starter_cmd(&["revenue", "rows"])
            .await
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Stack {
    /// The run's history as JSON (the SDK's serialisation: snake_case, numeric types).
    pub async fn history(&self, workflow_id: &str) -> Vec<u8> {
        self.try_history(workflow_id).await.expect("fetch history")
    }

    /// The history as JSON (see [`history`](crate::history) to read it); `None` when it
    /// cannot be fetched or parsed.
    pub async fn history_json(&self, workflow_id: &str) -> Option<Value> {
        serde_json::from_slice(&self.try_history(workflow_id).await.ok()?).ok()
    }

    async fn try_history(&self, workflow_id: &str) -> anyhow::Result<Vec<u8>> {
        let client = self.client().await;
        let handle =
            client.get_workflow_handle::<tollgate_workflows::AccessWorkflow>(workflow_id.to_string());
        Ok(handle.fetch_history(Default::default()).to_json().await?)
    }

    /// Replays the workflow's history (all runs of `workflow_id`, latest first) against
    /// the current code: a nondeterminism error fails the test. With
    /// `TOLLGATE_RECORD_HISTORIES=1` the history is also saved under `tests/histories/`
    /// for the replay suite.
    pub async fn check_replay(&self, workflow_id: &str, name: &str) {
        let json = self.history(workflow_id).await;
        if let Err(e) = replay_json(&json).await {
            // Kept for a post-mortem: `replay_json` on this file reproduces it.
            let saved = std::env::temp_dir().join(format!("tollgate-replay-{name}-{workflow_id}.json"));
            let _ = std::fs::write(&saved, &json);
            panic!("{workflow_id} does not replay (history saved to {}): {e}", saved.display());
        }
        if std::env::var("TOLLGATE_RECORD_HISTORIES").is_ok_and(|v| v == "1") {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("histories");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("{name}{HISTORY_GENERATION}.json")), &json).unwrap();
        }
    }
}

/// Suffix of newly recorded histories. Older generations stay in `tests/histories/`: runs
/// they stand for may still be open in production, so they must keep replaying. Bump it
/// when the workflow's commands change behind a new input flag.
/// ("" = before the ledger, "-lean" = ledger + lean enrolment.)
const HISTORY_GENERATION: &str = "-lean";

/// Replays one JSON history with the current `AccessWorkflow`.
pub async fn replay_json(json: &[u8]) -> anyhow::Result<()> {
    use temporalio_client::WorkflowHistory;
    use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};
    let history = WorkflowHistory::from_json(json)?;
    let opts =
        WorkflowReplayerOptions::new().register_workflow::<tollgate_workflows::AccessWorkflow>()?.build();
    WorkflowReplayer::new(opts)?.replay_workflow(history).await?;
    Ok(())
}
