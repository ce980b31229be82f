use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A shared SQLite connection. Write transactions begin IMMEDIATE: a deferred one that
/// reads first and then writes gets SQLITE_BUSY at once (no busy wait) when another
/// process (worker, starter, CLI) holds the write lock. Calls run on tokio's blocking pool, never on a runtime
/// worker thread.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS journal (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    workflow_id  TEXT,
    event        TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    deliveries   INTEGER NOT NULL DEFAULT 1,
    body         TEXT NOT NULL,
    forwarded_at INTEGER,
    -- why an entry could not be forwarded (it is kept, and skipped)
    quarantined  TEXT,
    -- the parser version that quarantined it at ingress
    parser_version INTEGER
);
CREATE INDEX IF NOT EXISTS journal_pending ON journal(seq) WHERE forwarded_at IS NULL AND quarantined IS NULL;
CREATE INDEX IF NOT EXISTS journal_quarantined ON journal(event_id) WHERE quarantined IS NOT NULL;
-- Which workflow a subscriber code belongs to: events that name the subscriber but not
-- the product (a charge-date update) are routed through it.
CREATE TABLE IF NOT EXISTS subscribers (
    code        TEXT PRIMARY KEY,
    workflow_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS course_links (
    product_id  INTEGER PRIMARY KEY,
    courses     TEXT NOT NULL,
    policy      TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS student_access (
    email       TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    product_id  INTEGER NOT NULL,
    doc         TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (email, workflow_id)
);
CREATE INDEX IF NOT EXISTS student_access_product ON student_access(product_id, workflow_id);
CREATE TABLE IF NOT EXISTS grants (
    user_id     TEXT NOT NULL,
    course_id   TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    granted_at  INTEGER NOT NULL,
    -- 1 once an unenroll of this last grant may have reached TalentLMS
    releasing   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, course_id, workflow_id)
);
-- Leases (the journal forwarder's): one holder per name until expires_at (epoch ms).
CREATE TABLE IF NOT EXISTS leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
-- The entitlement ledger: per workflow key, its facts merged across runs.
CREATE TABLE IF NOT EXISTS ledger (
    workflow_id TEXT PRIMARY KEY,
    facts       TEXT NOT NULL,
    user_id     TEXT,
    updated_at  INTEGER NOT NULL
);
-- Run reports (Hotmart reconciliation, TalentLMS audit) as JSON, by kind.
CREATE TABLE IF NOT EXISTS reports (
    kind TEXT NOT NULL,
    id   TEXT NOT NULL,
    at   INTEGER NOT NULL,
    doc  TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS reports_latest ON reports(kind, at);
-- Hotmart product names, from webhooks and the products API.
CREATE TABLE IF NOT EXISTS product_names (
    product_id INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
"#;

impl Db {
    pub fn open(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut conn = Connection::open(&path)?;
        // First: the worker, the starter and the CLI open one file at the same moment, and
        // without a busy timeout the loser of a lock fails with "database is locked".
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // Switching a new file to WAL answers SQLITE_BUSY without waiting while another
        // process does the same: retry the set-up for a while.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while let Err(e) = set_up(&mut conn) {
            if !is_busy(&e) || std::time::Instant::now() >= deadline {
                return Err(e);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Ok(Self { conn: Arc::new(Mutex::new(conn)), path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the connection on this thread: for start-up work (schema), not for
    /// calls from async code.
    pub fn blocking<T>(&self, f: impl FnOnce(&mut Connection) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let mut guard = self.conn.lock().map_err(|_| anyhow::anyhow!("database connection poisoned"))?;
        f(&mut guard)
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn call<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> anyhow::Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().map_err(|_| anyhow::anyhow!("database connection poisoned"))?;
            f(&mut guard)
        })
        .await?
    }
}

fn set_up(conn: &mut Connection) -> anyhow::Result<()> {
    // WAL for concurrent readers across processes; FULL so an acknowledged webhook
    // survives power loss, not just a process crash.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(SCHEMA)?;
    migrate(conn)
}

fn is_busy(e: &anyhow::Error) -> bool {
    e.downcast_ref::<rusqlite::Error>()
        .and_then(|e| e.sqlite_error_code())
        .is_some_and(|c| matches!(c, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

/// Columns added after the first release, for files created before them. Under a write
/// lock: the worker and the starter may open a file at the same moment.
fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let conn = &*tx;
    let has = |table: &str, column: &str| -> rusqlite::Result<bool> {
        let n: i64 = conn.query_row(
            "SELECT COUNT(*) FROM pragma_table_info(?1) WHERE name = ?2",
            [table, column],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    };
    if !has("journal", "parser_version")? {
        // The parser version that quarantined an entry it could not read.
        conn.execute_batch("ALTER TABLE journal ADD COLUMN parser_version INTEGER")?;
    }
    if !has("grants", "releasing")? {
        conn.execute_batch("ALTER TABLE grants ADD COLUMN releasing INTEGER NOT NULL DEFAULT 0")?;
    }
    // The grants a key holds (a revoke), after `releasing` exists on old files.
    conn.execute_batch("CREATE INDEX IF NOT EXISTS grants_workflow ON grants(workflow_id)")?;
    // The grants of a course (the TalentLMS audit).
    conn.execute_batch("CREATE INDEX IF NOT EXISTS grants_course ON grants(course_id)")?;
    tx.commit()?;
    Ok(())
}

/// Wall-clock epoch milliseconds (for I/O code; workflows use workflow time).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
