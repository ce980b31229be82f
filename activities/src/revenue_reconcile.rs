//! Revenue reconciliation: the webhook journal is the record of what Hotmart told us, so
//! the rows it implies (by the same pure `row_for` the workflows use, and the same
//! one-reversal-per-transaction rule the warehouse applies) are compared with the
//! warehouse over a window.

use std::collections::{BTreeMap, BTreeSet};

use tollgate_domain::metrics::{DAY_MS, ReconcileReport};
use tollgate_domain::revenue::{RevenueRow, first_reversals, row_for};
use tollgate_store::DocStore;
use tollgate_warehouse::Warehouse;
use tollgate_workflows::acts::ReconcileWindow;

/// Journal entries are read from this long before the window: a charge's row carries its
/// approval time, which can precede the webhook's arrival.
const JOURNAL_SLACK_MS: i64 = 7 * DAY_MS;

pub async fn run(
    docs: &DocStore,
    warehouse: &Warehouse,
    w: &ReconcileWindow,
) -> anyhow::Result<ReconcileReport> {
    let in_window = |r: &RevenueRow| r.occurred_at >= w.from_ms && r.occurred_at < w.to_ms;
    let settled = docs.journal_window(w.from_ms - JOURNAL_SLACK_MS, w.settled_before_ms).await?;
    // Rows implied by entries received long enough ago to have reached the warehouse; the
    // first entry per key wins, as in the warehouse (a charge resent under a new event id).
    let mut expected: BTreeMap<String, RevenueRow> = BTreeMap::new();
    for row in first_reversals(settled.entries.iter().filter_map(|e| row_for(&e.event)))
        .into_iter()
        .filter(in_window)
    {
        expected.entry(row.key.clone()).or_insert(row);
    }
    // Keys implied by newer entries are on their way: neither missing nor extra yet.
    let newer = docs.journal_window(w.settled_before_ms, i64::MAX).await?;
    let in_flight: BTreeSet<String> =
        newer.entries.iter().filter_map(|e| row_for(&e.event).filter(in_window)).map(|r| r.key).collect();
    let found: BTreeMap<String, RevenueRow> =
        warehouse.rows_between(w.from_ms, w.to_ms).await?.into_iter().map(|r| (r.key.clone(), r)).collect();

    let missing: Vec<RevenueRow> = expected
        .iter()
        .filter(|(k, _)| !found.contains_key(*k) && !in_flight.contains(*k))
        .map(|(_, r)| r.clone())
        .collect();
    let extra: Vec<String> =
        found.keys().filter(|k| !expected.contains_key(*k) && !in_flight.contains(*k)).cloned().collect();
    let differing: Vec<String> = expected
        .iter()
        .filter_map(|(k, e)| found.get(k).filter(|f| !same_money(e, f)).map(|_| k.clone()))
        .collect();

    let undecodable = settled.undecodable.len() + newer.undecodable.len();
    let mut report = ReconcileReport {
        from_ms: w.from_ms,
        to_ms: w.to_ms,
        expected: expected.len(),
        found: found.len(),
        missing: missing.iter().map(|r| r.key.clone()).collect(),
        extra: extra.clone(),
        differing,
        repaired_missing: 0,
        removed_extra: 0,
        undecodable,
        repair_skipped: None,
    };
    if w.repair && undecodable > 0 {
        // What an unreadable entry implies is unknown: its rows would look "extra" and be
        // deleted. Report only, until a version that reads them runs.
        let sample: Vec<&str> =
            settled.undecodable.iter().chain(&newer.undecodable).take(5).map(String::as_str).collect();
        report.repair_skipped = Some(format!(
            "{undecodable} journal entr{} in the window cannot be decoded by this version (e.g. {}); \
             nothing repaired",
            if undecodable == 1 { "y" } else { "ies" },
            sample.join(", ")
        ));
    } else if w.repair {
        for row in missing {
            if warehouse.record(row).await? {
                report.repaired_missing += 1;
            }
        }
        report.removed_extra = warehouse.delete_keys(extra).await?;
    }
    Ok(report)
}

fn same_money(a: &RevenueRow, b: &RevenueRow) -> bool {
    a.gross == b.gross && a.occurred_at == b.occurred_at && a.product_id == b.product_id
}
