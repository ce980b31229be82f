//! The worker's own counters (served with the Temporal SDK's on the worker's `/metrics`).

use std::sync::LazyLock;

use prometheus::{IntCounter, IntCounterVec, register_int_counter, register_int_counter_vec};

/// TalentLMS calls by operation (`find_user`, `create_user`, `enroll`, `unenroll`) and
/// result (`ok`, `retryable_error`, `error`).
pub static TALENTLMS_CALLS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "tollgate_talentlms_calls_total",
        "TalentLMS API calls by operation and result",
        &["operation", "result"]
    )
    .expect("metric registers once")
});

/// TalentLMS answered 429 (rate limited).
pub static TALENTLMS_RATE_LIMITED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!("tollgate_talentlms_rate_limited_total", "TalentLMS 429 answers")
        .expect("metric registers once")
});

/// Access decisions recorded, by resulting state (`active`, `grace`, `revoked`, ...).
pub static DECISIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!("tollgate_decisions_total", "Access decisions recorded, by state", &["state"])
        .expect("metric registers once")
});

/// Revenue rows newly written to the warehouse, by kind (`charge`, `refund`, `chargeback`).
pub static REVENUE_ROWS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!("tollgate_revenue_rows_written_total", "Revenue rows written", &["kind"])
        .expect("metric registers once")
});

/// Differences reconciliation found between the warehouse and the journal, by kind
/// (`missing`, `extra`, `differing`).
pub static RECONCILE_DIFFERENCES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "tollgate_reconcile_differences_total",
        "Revenue reconciliation differences found",
        &["kind"]
    )
    .expect("metric registers once")
});

/// Registers every series at zero, so dashboards and alerts see them before the first event.
pub fn init() {
    for op in ["find_user", "create_user", "enroll", "unenroll"] {
        for result in ["ok", "retryable_error", "error"] {
            TALENTLMS_CALLS.with_label_values(&[op, result]);
        }
    }
    LazyLock::force(&TALENTLMS_RATE_LIMITED);
    LazyLock::force(&DECISIONS);
    for kind in ["charge", "refund", "chargeback"] {
        REVENUE_ROWS.with_label_values(&[kind]);
    }
    for kind in ["missing", "extra", "differing"] {
        RECONCILE_DIFFERENCES.with_label_values(&[kind]);
    }
}

/// Counts one TalentLMS call's outcome.
pub fn talentlms_call<T>(operation: &str, r: &Result<T, talentlms::Error>) {
    let result = match r {
        Ok(_) => "ok",
        // Created meanwhile: the activity treats it as found.
        Err(e) if e.is_conflict() => "ok",
        Err(e) if e.is_retryable() => "retryable_error",
        Err(_) => "error",
    };
    TALENTLMS_CALLS.with_label_values(&[operation, result]).inc();
    if let Err(e) = r
        && e.status() == Some(429)
    {
        TALENTLMS_RATE_LIMITED.inc();
    }
}
