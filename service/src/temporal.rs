//! One Temporal client per process, connected on first use.

use std::sync::Arc;

use temporalio_client::{Client, Connection};
use tokio::sync::OnceCell;

use crate::settings::TemporalSettings;

/// A shared handle: clones use the same connection. Connecting lazily lets the starter
/// come up (and journal webhooks) while Temporal is down; a failed attempt is retried
/// by the next caller.
#[derive(Clone)]
pub struct Temporal {
    settings: TemporalSettings,
    client: Arc<OnceCell<Client>>,
}

impl Temporal {
    pub fn new(settings: TemporalSettings) -> Self {
        Self { settings, client: Arc::new(OnceCell::new()) }
    }

    pub async fn client(&self) -> anyhow::Result<&Client> {
        self.client.get_or_try_init(|| connect(&self.settings)).await
    }
}

async fn connect(s: &TemporalSettings) -> anyhow::Result<Client> {
    let target = s.connection.target.to_string();
    let conn = Connection::connect(s.connection.clone())
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to Temporal at {target}: {e}"))?;
    Ok(Client::new(conn, s.client.clone())?)
}
