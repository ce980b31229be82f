//! Logging: one subscriber per process, to stderr.

/// Used when `RUST_LOG` is unset or does not parse.
pub const DEFAULT_FILTER: &str = "info,temporalio_sdk_core=warn";

/// Logs to stderr filtered by `filter` (`Settings::log_filter`), colored only on a terminal.
pub fn init(filter: &str) {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| DEFAULT_FILTER.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
