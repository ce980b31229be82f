//! Building the running starter from its settings: the app state, the router, the
//! listener and the journal forwarder.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tollgate_service::{Ingress, JournalBackend, Settings, Temporal};
use tollgate_store::DocStore;
use tollgate_warehouse::Warehouse;

use crate::auth::Tokens;
use crate::links::LinkService;
use crate::session::Sessions;
use crate::{forwarder, routes};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub docs: DocStore,
    /// The one Temporal connection of the process (forwarder, direct ingress, API).
    pub temporal: Temporal,
    pub tokens: Tokens,
    pub links: LinkService,
    /// Wakes the forwarder when a new event is journaled.
    pub wake: Arc<Notify>,
    /// Signed-in browsers (dashboard, console).
    pub sessions: Sessions,
    pub metrics_http: reqwest::Client,
    /// Open when someone may read revenue (dashboard, console).
    pub warehouse: Option<Warehouse>,
    /// TOLLGATE_JOURNAL=pubsub: routable webhooks are published here.
    pub pubsub: Option<crate::pubsub::PubSub>,
}

/// A running starter: a way to stop it.
pub struct Running {
    shutdown: Arc<Notify>,
    docs: DocStore,
    lease: Arc<tokio::sync::Mutex<forwarder::Lease>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stops accepting connections and answers the requests in flight.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.notify_waiters();
        let served = self.task.await?;
        // Another starter may take over forwarding at once rather than after the lease's term.
        self.lease.lock().await.release(&self.docs).await;
        served
    }
}

/// Binds the HTTP server and starts the forwarder. The server answers even while
/// Temporal is unreachable: events wait in the journal.
pub async fn serve(settings: Settings, addr: SocketAddr) -> anyhow::Result<Running> {
    let tokens = Tokens::new(&settings.http)?;
    if !tokens.api_enabled() {
        tracing::warn!("TOLLGATE_API_TOKEN is not set: the staff API is off");
    }
    if settings.http.ingress == Ingress::Direct {
        tracing::warn!("TOLLGATE_INGRESS=direct: webhooks signal Temporal directly, without the journal");
    }
    let settings = Arc::new(settings);
    let docs = DocStore::open(&settings.store).await?;
    match docs.quarantine_stats().await? {
        q if q.count > 0 => tracing::warn!(
            quarantined = q.count,
            oldest_age_secs = q.oldest_received_at.map(|at| (tollgate_store::now_ms() - at) / 1000),
            "the journal holds deliveries this parser has not read; see GET /api/journal/quarantine, redrive with \
             POST /api/journal/{{id}}/redrive or `tollgate-starter journal redrive --all`"
        ),
        _ => tracing::info!("journal quarantine is empty"),
    }
    let temporal = Temporal::new(settings.temporal.clone());
    let warehouse = match tokens.readers_enabled() {
        true => Some(Warehouse::open(&settings.warehouse).await?),
        false => None,
    };
    let state = AppState {
        links: LinkService::new(docs.clone(), temporal.clone(), &settings)?,
        settings: settings.clone(),
        docs: docs.clone(),
        temporal: temporal.clone(),
        tokens,
        wake: Arc::new(Notify::new()),
        sessions: Sessions::default(),
        metrics_http: reqwest::Client::new(),
        warehouse: warehouse.clone(),
        pubsub: match &settings.journal {
            JournalBackend::PubSub(ps) => Some(crate::pubsub::PubSub::new(ps.clone())?),
            JournalBackend::Store => None,
        },
    };
    crate::metrics::init();
    let header_timeout = Duration::from_secs(settings.http.header_timeout_secs);
    let lease = new_lease(&settings);
    // With Pub/Sub the forwarder is its own process (`forward`): a Cloud Run starter only
    // has CPU while it answers a request.
    if settings.journal == JournalBackend::Store {
        tokio::spawn(forwarder::run(docs.clone(), settings, temporal, state.wake.clone(), lease.clone()));
    }
    let router = routes::router(state, warehouse);
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let shutdown = Arc::new(Notify::new());
    let stop = shutdown.clone();
    let task = tokio::spawn(accept(listener, router, header_timeout, stop));
    tracing::info!(%addr, "listening for Hotmart webhooks on /webhooks/hotmart");
    Ok(Running { shutdown, docs, lease, task })
}

fn new_lease(settings: &Settings) -> Arc<tokio::sync::Mutex<forwarder::Lease>> {
    Arc::new(tokio::sync::Mutex::new(forwarder::Lease::new(Duration::from_secs(
        settings.forwarder_lease_secs,
    ))))
}

/// The forwarder role without HTTP (`tollgate-starter forward`): the store's journal
/// forwarder (under the same lease as `serve`'s; with Pub/Sub it forwards redriven
/// quarantine entries), plus the Pub/Sub consumer when TOLLGATE_JOURNAL=pubsub.
pub async fn forward(settings: Settings) -> anyhow::Result<Running> {
    let settings = Arc::new(settings);
    let docs = DocStore::open(&settings.store).await?;
    let temporal = Temporal::new(settings.temporal.clone());
    crate::metrics::init();
    let lease = new_lease(&settings);
    let mut tasks = vec![tokio::spawn(forwarder::run(
        docs.clone(),
        settings.clone(),
        temporal.clone(),
        Arc::new(Notify::new()),
        lease.clone(),
    ))];
    if let JournalBackend::PubSub(ps) = &settings.journal {
        let pubsub = crate::pubsub::PubSub::new(ps.clone())?;
        tracing::info!(subscription = %ps.subscription, "forwarding Pub/Sub messages to Temporal");
        tasks.push(tokio::spawn(crate::pubsub::forward(pubsub, docs.clone(), settings.clone(), temporal)));
    }
    let shutdown = Arc::new(Notify::new());
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        stop.notified().await;
        // Unacked messages and unmarked entries are delivered again: nothing to flush.
        tasks.iter().for_each(|t| t.abort());
        Ok(())
    });
    Ok(Running { shutdown, docs, lease, task })
}

/// Serves HTTP/1.1 until `stop`, then waits for the requests in flight. A client must
/// send its request line and headers within `header_timeout` or the connection is closed
/// (a slow client cannot hold a connection open forever; bodies have their own timeout,
/// `routes::webhook`).
async fn accept(
    listener: TcpListener,
    router: axum::Router,
    header_timeout: Duration,
    stop: Arc<Notify>,
) -> anyhow::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let stopped = stop.notified();
    tokio::pin!(stopped);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stopped => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
