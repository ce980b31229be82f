//! The starter: webhook ingress, the journal forwarder, the staff API, the revenue
//! dashboard, and the operator CLI.

pub mod api;
pub mod dashboard;
pub mod forwarder;
pub mod ops;
pub mod revenue_ops;
pub mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tollgate_activities::config::Settings;
use tollgate_store::DocStore;

/// What `serve` needs beyond the shared [`Settings`].
#[derive(Clone)]
pub struct ServeConfig {
    pub addr: SocketAddr,
    /// The Hotmart token. Never logged.
    pub hottok: String,
    /// Bearer token of the staff API; `None` leaves the API off.
    pub api_token: Option<String>,
    /// Read-only token of the revenue dashboard (the API token also opens it).
    pub dashboard_token: Option<String>,
    pub settings: Settings,
    /// Off in tests that exercise only the ingress.
    pub forward: bool,
}

/// A running starter: its bound address and a way to stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub docs: DocStore,
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
    let docs = DocStore::open(&cfg.settings.store).await?;
    let wake = Arc::new(Notify::new());
    if cfg.forward {
        tokio::spawn(forwarder::run(docs.clone(), cfg.settings.clone(), wake.clone()));
    }
    let state = webhook::AppState::new(docs.clone(), &cfg.hottok, wake)
        .with_ingress(webhook::Ingress::from_env(&cfg.settings)?);
    let mut router = webhook::router(state);
    if let Some(token) = &cfg.api_token {
        let talentlms = match &cfg.settings.talentlms_api_key {
            Some(key) => Some(talentlms::Client::new(&cfg.settings.talentlms_url, key.clone())?),
            None => None,
        };
        router = router.merge(api::router(api::ApiState {
            docs: docs.clone(),
            settings: cfg.settings.clone(),
            token: token.as_bytes().into(),
            talentlms,
        }));
    }
    let readers: Vec<Vec<u8>> =
        [&cfg.api_token, &cfg.dashboard_token].into_iter().flatten().map(|t| t.as_bytes().to_vec()).collect();
    if !readers.is_empty() {
        let warehouse = tollgate_warehouse::Warehouse::open(&cfg.settings.warehouse).await?;
        router =
            router.merge(dashboard::router(dashboard::DashState { warehouse, tokens: Arc::new(readers) }));
    }
    let listener = TcpListener::bind(cfg.addr).await?;
    let addr = listener.local_addr()?;
    let shutdown = Arc::new(Notify::new());
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        axum::serve(listener, router).with_graceful_shutdown(async move { stop.notified().await }).await?;
        Ok(())
    });
    tracing::info!(%addr, "listening for Hotmart webhooks on /webhooks/hotmart");
    Ok(Running { addr, docs, shutdown, task })
}
