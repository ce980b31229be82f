//! Revenue reconciliation against a real journal and warehouse (both SQLite).

use tollgate_domain::fixtures::Sale;
use tollgate_domain::hotmart::{self, HotmartEvent};
use tollgate_domain::revenue::row_for;
use tollgate_store::{DocStore, SqliteDocs};
use tollgate_warehouse::{SqliteWarehouse, Warehouse};
use tollgate_workflows::acts::ReconcileWindow;

const DAY: i64 = 86_400_000;

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn approval(txn: &str, id: &str, at: i64) -> HotmartEvent {
    let body = Sale::one_off(5, txn, &format!("{txn}@example.com")).event("PURCHASE_APPROVED", id, at);
    hotmart::parse(body.to_string().as_bytes()).unwrap().event
}

struct Setup {
    docs: DocStore,
    warehouse: Warehouse,
    db: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// Journals `events` (each routed to its purchase) and books their rows.
async fn setup(events: &[HotmartEvent]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let docs = DocStore::Sqlite(SqliteDocs::open(&db).unwrap());
    let warehouse = Warehouse::Sqlite(SqliteWarehouse::open(&db).unwrap());
    for e in events {
        let wf = e.workflow_key().map(|k| k.workflow_id());
        docs.append(e.clone(), wf, "{}".into()).await.unwrap();
        if let Some(row) = row_for(e) {
            warehouse.record(row).await.unwrap();
        }
    }
    Setup { docs, warehouse, db, _dir: dir }
}

fn window(at: i64, repair: bool) -> ReconcileWindow {
    ReconcileWindow { from_ms: at - DAY, to_ms: at + DAY, repair, settled_before_ms: now() + 60_000 }
}

/// A stored event this version cannot read (as after a schema change) must not make its
/// warehouse row look "extra": the repair would delete real revenue.
#[tokio::test]
async fn an_undecodable_journal_entry_aborts_the_repair() {
    let t = now() - 3_600_000;
    let s = setup(&[approval("HP1", "e1", t), approval("HP2", "e2", t + 1)]).await;
    rusqlite::Connection::open(&s.db)
        .unwrap()
        .execute("UPDATE journal SET event = '{\"from\":\"a future schema\"}' WHERE event_id = 'e2'", [])
        .unwrap();
    let report =
        tollgate_activities::revenue_reconcile::run(&s.docs, &s.warehouse, &window(t, true)).await.unwrap();
    let rows = s.warehouse.rows_between(t - DAY, t + DAY).await.unwrap();
    assert_eq!(rows.len(), 2, "no row deleted: {report:?}");
    assert_eq!(report.removed_extra, 0, "{report:?}");
    assert_eq!(report.undecodable, 1, "{report:?}");
    let why = report.repair_skipped.as_deref().expect("the report says why nothing was repaired");
    assert!(why.contains("1 journal entr") && why.contains("decode"), "{why}");
}

/// The same window with every entry readable repairs as before.
#[tokio::test]
async fn a_readable_window_still_repairs() {
    let t = now() - 3_600_000;
    let s = setup(&[approval("HP1", "e1", t)]).await;
    s.warehouse.delete_keys(vec!["HP1:charge".into()]).await.unwrap();
    s.warehouse.record(row_for(&approval("HPX", "ex", t)).unwrap()).await.unwrap();
    let report =
        tollgate_activities::revenue_reconcile::run(&s.docs, &s.warehouse, &window(t, true)).await.unwrap();
    assert_eq!((report.repaired_missing, report.removed_extra, report.undecodable), (1, 1, 0), "{report:?}");
    assert_eq!(report.repair_skipped, None);
    let keys: Vec<_> =
        s.warehouse.rows_between(t - DAY, t + DAY).await.unwrap().into_iter().map(|r| r.key).collect();
    assert_eq!(keys, ["HP1:charge"]);
}

fn reversal(kind: &str, txn: &str, id: &str, at: i64) -> HotmartEvent {
    let body = Sale::one_off(5, txn, &format!("{txn}@example.com")).event(kind, id, at);
    hotmart::parse(body.to_string().as_bytes()).unwrap().event
}

/// Refund then chargeback of one charge: the journal implies one reversal (the earliest),
/// so a second one stored before the rule existed is extra, and the repair removes it.
#[tokio::test]
async fn a_second_reversal_of_a_transaction_is_extra() {
    let t = now() - 3_600_000;
    let events = [
        approval("HP1", "e1", t),
        reversal("PURCHASE_REFUNDED", "HP1", "e2", t + 60_000),
        reversal("PURCHASE_CHARGEBACK", "HP1", "e3", t + 120_000),
    ];
    let s = setup(&events).await;
    // A row an older version booked besides the refund.
    rusqlite::Connection::open(&s.db)
        .unwrap()
        .execute(
            "INSERT INTO revenue (key, kind, txn, event_id, product_id, buyer_email, gross_minor, currency,
                                  occurred_at, recorded_at)
             VALUES ('HP1:chargeback', 'chargeback', 'HP1', 'e3', 5, 'HP1@example.com', -19700, 'BRL', ?1, ?1)",
            [t + 120_000],
        )
        .unwrap();
    let report =
        tollgate_activities::revenue_reconcile::run(&s.docs, &s.warehouse, &window(t, false)).await.unwrap();
    assert_eq!((report.expected, report.found), (2, 3), "{report:?}");
    assert_eq!(report.extra, ["HP1:chargeback"]);
    assert!(report.missing.is_empty(), "{report:?}");
    let report =
        tollgate_activities::revenue_reconcile::run(&s.docs, &s.warehouse, &window(t, true)).await.unwrap();
    assert_eq!(report.removed_extra, 1, "{report:?}");
    let rows = s.warehouse.rows_between(t - DAY, t + DAY).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.gross.minor).sum::<i64>(), 0, "the charge and one reversal net to zero");
}
