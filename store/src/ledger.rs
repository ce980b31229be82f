//! The entitlement ledger's facts per workflow key (SQLite). Grants live in `grants`.

use rusqlite::{OptionalExtension, params};
use tollgate_domain::Facts;
use tollgate_domain::ledger::LedgerEntry;

use crate::db::{Db, now_ms};

#[derive(Clone)]
pub struct Ledger {
    db: Db,
}

impl Ledger {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub async fn get(&self, workflow: &str) -> anyhow::Result<Option<LedgerEntry>> {
        let w = workflow.to_string();
        self.db
            .call(move |conn| {
                let row: Option<(String, Option<String>)> = conn
                    .query_row("SELECT facts, user_id FROM ledger WHERE workflow_id = ?1", [&w], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()?;
                row.map(|(facts, user)| {
                    Ok(LedgerEntry {
                        workflow_id: w.clone(),
                        facts: serde_json::from_str(&facts)?,
                        talentlms_user_id: user,
                    })
                })
                .transpose()
            })
            .await
    }

    /// Merges `entry` into the stored one (facts merged, a known user id kept).
    pub async fn put(&self, entry: LedgerEntry) -> anyhow::Result<()> {
        self.db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let old: Option<(String, Option<String>)> = tx
                    .query_row(
                        "SELECT facts, user_id FROM ledger WHERE workflow_id = ?1",
                        [&entry.workflow_id],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                let mut facts = entry.facts;
                let mut user = entry.talentlms_user_id;
                if let Some((old_facts, old_user)) = old {
                    facts.merge(&serde_json::from_str::<Facts>(&old_facts)?);
                    user = user.or(old_user);
                }
                tx.execute(
                    "INSERT INTO ledger (workflow_id, facts, user_id, updated_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (workflow_id) DO UPDATE SET facts = ?2, user_id = ?3, updated_at = ?4",
                    params![entry.workflow_id, serde_json::to_string(&facts)?, user, now_ms()],
                )?;
                tx.commit()?;
                Ok(())
            })
            .await
    }
}
