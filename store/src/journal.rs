//! The webhook journal: every accepted delivery is committed here before Hotmart gets
//! its 2xx, keyed by the envelope id so a resend is recognised. The forwarder drains
//! entries that are not yet handed to Temporal.
//!
//! Appends are group-committed: concurrent webhook requests share one transaction and one
//! fsync, which keeps ack latency flat under bursts.

use rusqlite::params;
use tokio::sync::{mpsc, oneshot};
use tollgate_domain::HotmartEvent;

use crate::db::{Db, now_ms};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    New,
    /// Already journaled (a resend); `deliveries` counts every arrival.
    Duplicate {
        deliveries: i64,
    },
}

#[derive(Debug, Clone)]
pub struct JournalEntry {
    /// The envelope id: the entry's key in every backend.
    pub key: String,
    pub workflow_id: String,
    pub event: HotmartEvent,
}

struct Pending {
    event: HotmartEvent,
    workflow_id: Option<String>,
    body: String,
    reply: oneshot::Sender<anyhow::Result<Appended>>,
}

#[derive(Clone)]
pub struct Journal {
    db: Db,
    tx: mpsc::Sender<Pending>,
}

const MAX_BATCH: usize = 512;

impl Journal {
    /// Starts the group-commit writer on the current tokio runtime.
    pub fn new(db: Db) -> Self {
        let (tx, rx) = mpsc::channel::<Pending>(4096);
        tokio::spawn(writer(db.clone(), rx));
        Self { db, tx }
    }

    /// Durably records one delivery. `body` is the stored copy of the raw body (with the
    /// token already removed); `workflow_id` is `None` for events that route nowhere.
    pub async fn append(
        &self,
        event: HotmartEvent,
        workflow_id: Option<String>,
        body: String,
    ) -> anyhow::Result<Appended> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Pending { event, workflow_id, body, reply })
            .await
            .map_err(|_| anyhow::anyhow!("journal writer stopped"))?;
        rx.await.map_err(|_| anyhow::anyhow!("journal writer dropped the request"))?
    }

    /// Oldest entries not yet handed to their workflow. An entry this version cannot
    /// decode is quarantined (kept, with the reason) so it cannot block the ones after it.
    pub async fn pending(&self, limit: usize) -> anyhow::Result<Vec<JournalEntry>> {
        self.db
            .call(move |c| {
                let rows: Vec<(String, String, String)> = {
                    let mut st = c.prepare_cached(
                        "SELECT event_id, workflow_id, event FROM journal
                         WHERE forwarded_at IS NULL AND quarantined IS NULL AND workflow_id IS NOT NULL
                         ORDER BY seq LIMIT ?1",
                    )?;
                    st.query_map([limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                        .collect::<Result<_, _>>()?
                };
                let mut out = Vec::with_capacity(rows.len());
                for (key, workflow_id, json) in rows {
                    match serde_json::from_str(&json) {
                        Ok(event) => out.push(JournalEntry { key, workflow_id, event }),
                        Err(e) => {
                            tracing::error!(key, error = %e, "journal entry cannot be decoded; quarantined");
                            c.execute(
                                "UPDATE journal SET quarantined = ?1 WHERE event_id = ?2",
                                params![e.to_string(), key],
                            )?;
                        }
                    }
                }
                Ok(out)
            })
            .await
    }

    /// Routable entries received in `[from_ms, to_ms)`, forwarded or not, oldest first.
    /// Entries that cannot be decoded are skipped (the forwarder quarantines them).
    pub async fn between(&self, from_ms: i64, to_ms: i64) -> anyhow::Result<Vec<JournalEntry>> {
        self.db
            .call(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT event_id, workflow_id, event FROM journal
                     WHERE received_at >= ?1 AND received_at < ?2 AND workflow_id IS NOT NULL ORDER BY seq",
                )?;
                let rows = st.query_map([from_ms, to_ms], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
                })?;
                let mut out = Vec::new();
                for row in rows {
                    let (key, workflow_id, json) = row?;
                    if let Ok(event) = serde_json::from_str(&json) {
                        out.push(JournalEntry { key, workflow_id, event });
                    }
                }
                Ok(out)
            })
            .await
    }

    pub async fn mark_forwarded(&self, keys: Vec<String>) -> anyhow::Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        self.db
            .call(move |c| {
                let tx = c.transaction()?;
                {
                    let mut st =
                        tx.prepare_cached("UPDATE journal SET forwarded_at = ?1 WHERE event_id = ?2")?;
                    let now = now_ms();
                    for k in keys {
                        st.execute(params![now, k])?;
                    }
                }
                tx.commit()?;
                Ok(())
            })
            .await
    }

    /// (entries, waiting to be forwarded).
    pub async fn counts(&self) -> anyhow::Result<(i64, i64)> {
        self.db
            .call(|c| {
                Ok(c.query_row(
                    "SELECT COUNT(*), COUNT(*) FILTER (WHERE forwarded_at IS NULL AND quarantined IS NULL AND workflow_id IS NOT NULL)
                     FROM journal",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?)
            })
            .await
    }
}

async fn writer(db: Db, mut rx: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let work: Vec<Pending> = std::mem::take(&mut batch);
        let rows: Vec<(String, String, Option<String>, String, String)> = work
            .iter()
            .map(|p| {
                let json = serde_json::to_string(&p.event).unwrap_or_default();
                (
                    p.event.id.to_string(),
                    p.event.kind.to_string(),
                    p.workflow_id.clone(),
                    json,
                    p.body.clone(),
                )
            })
            .collect();
        let result = db
            .call(move |c| {
                let tx = c.transaction()?;
                let mut out = Vec::with_capacity(rows.len());
                {
                    let mut st = tx.prepare_cached(
                        "INSERT INTO journal (event_id, kind, workflow_id, event, body, received_at, forwarded_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, CASE WHEN ?3 IS NULL THEN ?6 END)
                         ON CONFLICT(event_id) DO UPDATE SET deliveries = deliveries + 1
                         RETURNING deliveries",
                    )?;
                    let now = now_ms();
                    for (id, kind, wf, json, body) in rows {
                        let n: i64 = st.query_row(params![id, kind, wf, json, body, now], |r| r.get(0))?;
                        out.push(if n == 1 { Appended::New } else { Appended::Duplicate { deliveries: n } });
                    }
                }
                tx.commit()?;
                Ok(out)
            })
            .await;
        match result {
            Ok(outcomes) => {
                for (p, o) in work.into_iter().zip(outcomes) {
                    let _ = p.reply.send(Ok(o));
                }
            }
            Err(e) => {
                let msg = format!("{e:#}");
                for p in work {
                    let _ = p.reply.send(Err(anyhow::anyhow!("journal write failed: {msg}")));
                }
            }
        }
    }
}
