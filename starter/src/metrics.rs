//! The starter's metrics, served at `/metrics` (Prometheus text): webhook requests by
//! outcome, the journal (appended, forwarded, pending, oldest pending age, quarantined)
//! and how long an entry waits in the journal before Temporal accepts it.

use std::sync::LazyLock;

use prometheus::{
    Histogram, IntCounter, IntCounterVec, IntGauge, register_histogram, register_int_counter,
    register_int_counter_vec, register_int_gauge,
};

use crate::startup::AppState;

/// Webhook deliveries by outcome: `accepted`, `duplicate`, `quarantined`, `ignored` (no
/// workflow), `unauthorized`, `invalid`, `unavailable` (journal write failed).
pub static WEBHOOKS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "tollgate_webhook_requests_total",
        "Hotmart webhook requests by outcome",
        &["outcome"]
    )
    .expect("metric registers once")
});

pub static JOURNAL_APPENDED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!("tollgate_journal_appended_total", "New journal entries (first deliveries)")
        .expect("metric registers once")
});

pub static JOURNAL_FORWARDED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!("tollgate_journal_forwarded_total", "Journal entries Temporal accepted")
        .expect("metric registers once")
});

/// From an entry's journaling (its `received_at`) to Temporal accepting it.
pub static FORWARD_LATENCY: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "tollgate_journal_forward_latency_seconds",
        "Time from a webhook being journaled to Temporal accepting it",
        vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0]
    )
    .expect("metric registers once")
});

/// Age of the oldest entry still waiting for Temporal (0 when none), from when it was
/// journaled: kept by the forwarder and re-read from the store at each scrape, so a
/// backlog left by a previous process (or while Temporal is unreachable) shows its age.
pub static OLDEST_PENDING_AGE: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "tollgate_journal_oldest_pending_age_seconds",
        "How long the oldest journal entry has waited for Temporal"
    )
    .expect("metric registers once")
});

/// 1 while this starter holds the journal forwarder's lease (only the holder forwards).
pub static FORWARDER_ACTIVE: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!("tollgate_forwarder_active", "1 while this starter holds the journal forwarder lease")
        .expect("metric registers once")
});

static PENDING: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!("tollgate_journal_pending", "Journal entries not yet forwarded")
        .expect("metric registers once")
});

static QUARANTINED: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!("tollgate_journal_quarantined", "Journal entries the parser could not read")
        .expect("metric registers once")
});

static ENTRIES: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!("tollgate_journal_entries", "Journal entries").expect("metric registers once")
});

/// Registers every series at zero, so alerts see them before the first event.
pub fn init() {
    for outcome in
        ["accepted", "duplicate", "quarantined", "ignored", "unauthorized", "invalid", "unavailable"]
    {
        WEBHOOKS.with_label_values(&[outcome]);
    }
    LazyLock::force(&JOURNAL_APPENDED);
    LazyLock::force(&JOURNAL_FORWARDED);
    LazyLock::force(&FORWARD_LATENCY);
    LazyLock::force(&OLDEST_PENDING_AGE);
}

/// Seconds since `ms` (epoch ms), never negative.
pub fn age_secs(ms: i64) -> i64 {
    (tollgate_store::now_ms() - ms).max(0) / 1000
}

/// Seconds the oldest pending journal entry has waited since it was journaled (0 if none).
pub async fn oldest_pending_age(docs: &tollgate_store::DocStore) -> anyhow::Result<i64> {
    Ok(docs.pending(1).await?.first().map_or(0, |e| age_secs(e.received_at)))
}

/// `GET /metrics`: the journal gauges are read from the store at scrape time.
pub async fn scrape(
    axum::extract::State(s): axum::extract::State<AppState>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if !tollgate_service::metrics::allowed(s.settings.metrics_token.as_ref(), &headers) {
        return tollgate_service::metrics::unauthorized();
    }
    match s.docs.journal_counts().await {
        Ok((entries, pending)) => {
            ENTRIES.set(entries);
            PENDING.set(pending);
        }
        Err(e) => tracing::warn!(error = %format!("{e:#}"), "metrics: cannot count the journal"),
    }
    match oldest_pending_age(&s.docs).await {
        Ok(age) => OLDEST_PENDING_AGE.set(age),
        Err(e) => tracing::warn!(error = %format!("{e:#}"), "metrics: cannot read the oldest pending entry"),
    }
    match s.docs.quarantine_stats().await {
        Ok(q) => QUARANTINED.set(q.count as i64),
        Err(e) => tracing::warn!(error = %format!("{e:#}"), "metrics: cannot read the quarantine"),
    }
    tollgate_service::metrics::respond(None, &s.metrics_http).await.into_response()
}
