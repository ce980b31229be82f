//! The webhook journal: every accepted delivery is committed here before Hotmart gets
//! its 2xx, keyed by the envelope id so a resend is recognised. The forwarder drains
//! entries that are not yet handed to Temporal.
//!
//! Appends are group-committed: concurrent webhook requests share one transaction and one
//! fsync, which keeps ack latency flat under bursts.

use rusqlite::{OptionalExtension, params};
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

/// A delivery the parser could not make an event of: kept as received, with the reason,
/// until a redrive with a parser that understands it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Quarantined {
    /// The journal key (the envelope id, or a digest of a body without one).
    pub key: String,
    pub received_at: i64,
    /// The envelope's `event`, when it names one.
    pub event_name: Option<String>,
    pub reason: String,
    /// The parser version that refused it (`None`: refused at forwarding, before versions).
    pub parser_version: Option<u32>,
    /// The stored copy of the body (token removed).
    pub body: String,
}

/// How many entries are quarantined, and when the oldest was received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct QuarantineStats {
    pub count: i64,
    pub oldest_received_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct JournalEntry {
    /// The envelope id: the entry's key in every backend.
    pub key: String,
    pub workflow_id: String,
    pub event: HotmartEvent,
    /// When it was journaled (epoch ms): backlog age and forward latency count from here.
    pub received_at: i64,
}

/// The routable entries of a window, and the keys of those whose stored event this
/// version cannot decode (written by a version with another event schema).
#[derive(Debug, Clone, Default)]
pub struct JournalWindow {
    pub entries: Vec<JournalEntry>,
    pub undecodable: Vec<String>,
}

/// What one delivery becomes in the journal.
enum Row {
    Event { event: HotmartEvent, workflow_id: Option<String> },
    Quarantined { key: String, event_name: Option<String>, reason: String, parser_version: u32 },
}

struct Pending {
    row: Row,
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
        self.write(Row::Event { event, workflow_id }, body).await
    }

    /// Durably records a delivery the parser could not read, quarantined with the reason.
    pub async fn append_quarantined(
        &self,
        key: String,
        event_name: Option<String>,
        body: String,
        reason: String,
        parser_version: u32,
    ) -> anyhow::Result<Appended> {
        self.write(Row::Quarantined { key, event_name, reason, parser_version }, body).await
    }

    async fn write(&self, row: Row, body: String) -> anyhow::Result<Appended> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Pending { row, body, reply })
            .await
            .map_err(|_| anyhow::anyhow!("journal writer stopped"))?;
        rx.await.map_err(|_| anyhow::anyhow!("journal writer dropped the request"))?
    }

    /// Quarantined entries by key, after the cursor `after`.
    pub async fn quarantined(&self, after: Option<String>, limit: usize) -> anyhow::Result<Vec<Quarantined>> {
        self.db
            .call(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT event_id, received_at, NULLIF(kind, ''), quarantined, parser_version, body FROM journal
                     WHERE quarantined IS NOT NULL AND event_id > ?1 ORDER BY event_id LIMIT ?2",
                )?;
                let rows = st.query_map(params![after.unwrap_or_default(), limit as i64], |r| {
                    Ok(Quarantined {
                        key: r.get(0)?,
                        received_at: r.get(1)?,
                        event_name: r.get(2)?,
                        reason: r.get(3)?,
                        parser_version: r.get(4)?,
                        body: r.get(5)?,
                    })
                })?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }

    pub async fn quarantine_stats(&self) -> anyhow::Result<QuarantineStats> {
        self.db
            .call(|c| {
                Ok(c.query_row(
                    "SELECT COUNT(*), MIN(received_at) FROM journal WHERE quarantined IS NOT NULL",
                    [],
                    |r| Ok(QuarantineStats { count: r.get(0)?, oldest_received_at: r.get(1)? }),
                )?)
            })
            .await
    }

    /// A redriven entry the parser now reads: stored with its event and route, it leaves
    /// quarantine (and is forwarded like any other). False if `key` is not quarantined.
    pub async fn release(
        &self,
        key: String,
        event: HotmartEvent,
        workflow_id: Option<String>,
    ) -> anyhow::Result<bool> {
        let json = serde_json::to_string(&event)?;
        let kind = event.kind.to_string();
        self.db
            .call(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let n = tx.execute(
                    "UPDATE journal SET event = ?2, kind = ?3, workflow_id = ?4, quarantined = NULL, parser_version = NULL,
                            forwarded_at = CASE WHEN ?4 IS NULL THEN ?5 END
                     WHERE event_id = ?1 AND quarantined IS NOT NULL",
                    params![key, json, kind, workflow_id, now_ms()],
                )?;
                remember_subscriber(&tx, &event, workflow_id.as_deref())?;
                tx.commit()?;
                Ok(n == 1)
            })
            .await
    }

    /// A redriven entry the parser still cannot read: the new reason and version.
    pub async fn requarantine(&self, key: String, reason: String, parser_version: u32) -> anyhow::Result<()> {
        self.db
            .call(move |c| {
                c.execute(
                    "UPDATE journal SET quarantined = ?2, parser_version = ?3 WHERE event_id = ?1 AND quarantined IS NOT NULL",
                    params![key, reason, parser_version],
                )?;
                Ok(())
            })
            .await
    }

    /// Indexes a subscription event's subscriber code under its workflow (first one wins),
    /// for an event journaled elsewhere (the Pub/Sub ingress).
    pub async fn remember_subscriber(&self, event: HotmartEvent, workflow_id: String) -> anyhow::Result<()> {
        self.db.call(move |c| Ok(remember_subscriber(c, &event, Some(&workflow_id))?)).await
    }

    /// The workflow a subscriber code was last routed to, from the journal's index.
    pub async fn subscriber_workflow(&self, code: String) -> anyhow::Result<Option<String>> {
        self.db
            .call(move |c| {
                Ok(c.query_row("SELECT workflow_id FROM subscribers WHERE code = ?1", [code], |r| r.get(0))
                    .optional()?)
            })
            .await
    }

    /// Oldest entries not yet handed to their workflow. An entry this version cannot
    /// decode is quarantined (kept, with the reason) so it cannot block the ones after it.
    pub async fn pending(&self, limit: usize) -> anyhow::Result<Vec<JournalEntry>> {
        self.db
            .call(move |c| {
                let rows: Vec<(String, String, String, i64)> = {
                    let mut st = c.prepare_cached(
                        "SELECT event_id, workflow_id, event, received_at FROM journal
                         WHERE forwarded_at IS NULL AND quarantined IS NULL AND workflow_id IS NOT NULL
                         ORDER BY seq LIMIT ?1",
                    )?;
                    st.query_map([limit as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                        .collect::<Result<_, _>>()?
                };
                let mut out = Vec::with_capacity(rows.len());
                for (key, workflow_id, json, received_at) in rows {
                    match serde_json::from_str(&json) {
                        Ok(event) => out.push(JournalEntry { key, workflow_id, event, received_at }),
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
    pub async fn between(&self, from_ms: i64, to_ms: i64) -> anyhow::Result<JournalWindow> {
        self.db
            .call(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT event_id, workflow_id, event, received_at FROM journal
                     WHERE received_at >= ?1 AND received_at < ?2 AND workflow_id IS NOT NULL ORDER BY seq",
                )?;
                let rows = st.query_map([from_ms, to_ms], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get(3)?))
                })?;
                let mut out = JournalWindow::default();
                for row in rows {
                    let (key, workflow_id, json, received_at) = row?;
                    match serde_json::from_str(&json) {
                        Ok(event) => out.entries.push(JournalEntry { key, workflow_id, event, received_at }),
                        Err(_) => out.undecodable.push(key),
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
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
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

    /// (entries, waiting to be forwarded). Two index-only counts: one query with a FILTER
    /// read every row, raw bodies' overflow pages included, on each health probe.
    pub async fn counts(&self) -> anyhow::Result<(i64, i64)> {
        self.db
            .call(|c| {
                let total = c.prepare_cached("SELECT COUNT(*) FROM journal")?.query_row([], |r| r.get(0))?;
                let pending = c
                    .prepare_cached(
                        "SELECT COUNT(*) FROM journal
                         WHERE forwarded_at IS NULL AND quarantined IS NULL AND workflow_id IS NOT NULL",
                    )?
                    .query_row([], |r| r.get(0))?;
                Ok((total, pending))
            })
            .await
    }
}

/// Indexes a subscription event's subscriber code under its workflow (first one wins).
fn remember_subscriber(
    c: &rusqlite::Connection,
    event: &HotmartEvent,
    workflow_id: Option<&str>,
) -> rusqlite::Result<()> {
    if let (Some(code), Some(wf), true) = (&event.subscriber_code, workflow_id, event.product_id.is_some()) {
        c.prepare_cached("INSERT OR IGNORE INTO subscribers (code, workflow_id) VALUES (?1, ?2)")?
            .execute(params![code, wf])?;
    }
    Ok(())
}

async fn writer(db: Db, mut rx: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // The rows move to the blocking pool; the replies stay here.
        let (rows, replies): (Vec<(Row, String)>, Vec<_>) =
            std::mem::take(&mut batch).into_iter().map(|p| ((p.row, p.body), p.reply)).unzip();
        let result = db
            .call(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let mut out = Vec::with_capacity(rows.len());
                {
                    let mut st = tx.prepare_cached(
                        "INSERT INTO journal (event_id, kind, workflow_id, event, body, received_at, forwarded_at, quarantined, parser_version)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, CASE WHEN ?3 IS NULL AND ?7 IS NULL THEN ?6 END, ?7, ?8)
                         ON CONFLICT(event_id) DO UPDATE SET deliveries = deliveries + 1
                         RETURNING deliveries",
                    )?;
                    let now = now_ms();
                    for (row, body) in rows {
                        let n: i64 = match row {
                            Row::Event { event, workflow_id } => {
                                let json = serde_json::to_string(&event).unwrap_or_default();
                                let n = st.query_row(
                                    params![event.id.to_string(), event.kind.to_string(), workflow_id, json, body, now, None::<String>, None::<u32>],
                                    |r| r.get(0),
                                )?;
                                remember_subscriber(&tx, &event, workflow_id.as_deref())?;
                                n
                            }
                            Row::Quarantined { key, event_name, reason, parser_version } => st.query_row(
                                params![key, event_name.unwrap_or_default(), None::<String>, "", body, now, reason, parser_version],
                                |r| r.get(0),
                            )?,
                        };
                        out.push(if n == 1 { Appended::New } else { Appended::Duplicate { deliveries: n } });
                    }
                }
                tx.commit()?;
                Ok(out)
            })
            .await;
        match result {
            Ok(outcomes) => {
                for (reply, o) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(o));
                }
            }
            Err(e) => {
                let msg = format!("{e:#}");
                for reply in replies {
                    let _ = reply.send(Err(anyhow::anyhow!("journal write failed: {msg}")));
                }
            }
        }
    }
}
