//! Leases: one holder at a time for a named role (the journal forwarder of a shard), kept
//! by renewing before it expires and taken over by another process once it has.
//!
//! A holder that dies stops renewing; after `ttl` another process takes the lease and
//! resumes from what is still unmarked in the journal, so a batch cut short by the death
//! is forwarded again (the workflow de-duplicates by event id), never lost.

use rusqlite::params;

use crate::db::{Db, now_ms};

#[derive(Clone)]
pub struct Leases {
    db: Db,
}

impl Leases {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Takes or renews `name` for `holder` until now + `ttl_ms`: true when `holder` has it
    /// (it was free, expired, or already its own).
    pub async fn acquire(&self, name: String, holder: String, ttl_ms: i64) -> anyhow::Result<bool> {
        self.db
            .call(move |c| {
                let now = now_ms();
                let n = c.execute(
                    "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                     WHERE leases.holder = excluded.holder OR leases.expires_at <= ?4",
                    params![name, holder, now + ttl_ms, now],
                )?;
                Ok(n == 1)
            })
            .await
    }

    /// Gives `name` up if `holder` has it (a clean stop: the next holder need not wait).
    pub async fn release(&self, name: String, holder: String) -> anyhow::Result<()> {
        self.db
            .call(move |c| {
                c.execute("DELETE FROM leases WHERE name = ?1 AND holder = ?2", params![name, holder])?;
                Ok(())
            })
            .await
    }
}

/// Who runs this process, for the host check of a SQLite file: the kernel's host name.
pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Records `host` as the machine that uses the SQLite file at `db_path` (in
/// `{db_path}.host`), or refuses when another machine does. Processes of one machine share
/// a file safely (WAL, file locks, every write in a transaction); processes of two machines
/// on a network file system would corrupt it (WAL needs shared memory, and network locks
/// are unreliable), so a second machine is refused. Moving the file to a new machine on
/// purpose: delete `{db_path}.host`.
pub fn claim_sqlite_host(db_path: &std::path::Path, host: &str) -> anyhow::Result<()> {
    let marker = {
        let mut p = db_path.as_os_str().to_owned();
        p.push(".host");
        std::path::PathBuf::from(p)
    };
    if let Some(dir) = marker.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    // Create-if-absent: of two machines starting at once, exactly one writes the marker.
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&marker) {
        Ok(mut f) => {
            use std::io::Write;
            f.write_all(host.as_bytes())?;
            f.sync_all()?;
            return Ok(());
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(anyhow::anyhow!("cannot write {}: {e}", marker.display())),
    }
    let owner = std::fs::read_to_string(&marker)?;
    let owner = owner.trim();
    anyhow::ensure!(
        owner == host || owner.is_empty(),
        "the SQLite file {} is used by host {owner:?}, and this is {host:?}: SQLite cannot be shared between \
         machines (a network file system would corrupt it). Run several workers on one machine, or share \
         Firestore (TOLLGATE_STORE=firestore) and BigQuery (TOLLGATE_WAREHOUSE=bigquery) between machines. If the \
         file was moved here on purpose, delete {}.",
        db_path.display(),
        marker.display()
    );
    Ok(())
}
