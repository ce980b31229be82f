//! What a Tollgate process needs before it does any work: its [`Settings`] (parsed once,
//! at start-up, from the environment), telemetry, shutdown signals, and a lazily
//! connected Temporal client. The worker and the starter both start here.

pub mod metrics;
pub mod settings;
pub mod telemetry;
pub mod temporal;

pub use settings::{Ingress, JournalBackend, PubSubSettings, Secret, Settings};
pub use temporal::Temporal;

/// Resolves with the signal's name on SIGTERM (systemd, Kubernetes) or SIGINT (Ctrl-C).
pub async fn shutdown_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}
