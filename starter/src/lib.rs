//! The starter: webhook ingress, the journal forwarder, and the operator CLI.

pub mod forwarder;
pub mod ops;
pub mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tollgate_activities::config::Settings;
use tollgate_store::{Db, Journal};

/// What `serve` needs beyond the shared [`Settings`].
#[derive(Clone)]
pub struct ServeConfig {
    pub addr: SocketAddr,
    /// The Hotmart token. Never logged.
    pub hottok: String,
    pub settings: Settings,
    /// Off in tests that exercise only the ingress.
    pub forward: bool,
}

/// A running starter: its bound address and a way to stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub journal: Journal,
    shutdown: Arc<Notify>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.notify_waiters();
        self.task.await?
    }
}

/// Binds the HTTP server and starts the forwarder. The server answers even while
/// Temporal is unreachable: events wait in the journal.
pub async fn serve(cfg: ServeConfig) -> anyhow::Result<Running> {
    let db = Db::open(&cfg.settings.db_path)?;
    let journal = Journal::new(db);
    let wake = Arc::new(Notify::new());
    if cfg.forward {
        tokio::spawn(forwarder::run(journal.clone(), cfg.settings.clone(), wake.clone()));
    }
    let state = webhook::AppState::new(journal.clone(), &cfg.hottok, wake);
    let router = webhook::router(state);
    let listener = TcpListener::bind(cfg.addr).await?;
    let addr = listener.local_addr()?;
    let shutdown = Arc::new(Notify::new());
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        axum::serve(listener, router).with_graceful_shutdown(async move { stop.notified().await }).await?;
        Ok(())
    });
    tracing::info!(%addr, "listening for Hotmart webhooks on /webhooks/hotmart");
    Ok(Running { addr, journal, shutdown, task })
}
