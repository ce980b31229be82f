//! Logging: one subscriber per process, to stderr, as text or (TOLLGATE_LOG_FORMAT=json)
//! one JSON object per line whose fields (`event_id`, `workflow_id`, `request_id`, ...)
//! are top-level keys, for log pipelines to index.

/// Used when `RUST_LOG` is unset or does not parse.
pub const DEFAULT_FILTER: &str = "info,temporalio_sdk_core=warn";

/// Logs to stderr filtered by `filter` (`Settings::log_filter`); text is colored only on a
/// terminal.
pub fn init(filter: &str, json: bool) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| DEFAULT_FILTER.into());
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        fmt.json().flatten_event(true).with_current_span(true).with_span_list(false).init();
    } else {
        fmt.with_ansi(std::io::stderr().is_terminal()).init();
    }
}
