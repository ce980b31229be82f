//! One suite over [`Warehouse`], run against both backends: each shared test body is
//! instantiated as `<name>::sqlite` and `<name>::bigquery`.
//!
//! The BigQuery half needs the emulator (`BIGQUERY_EMULATOR_HOST`, started by
//! `scripts/test.sh`). Without it those tests fail, unless `TOLLGATE_SKIP_BIGQUERY=1`.
//! Each test gets its own dataset, so they run in parallel on one emulator.

use std::sync::atomic::{AtomicU32, Ordering};

use tollgate_domain::metrics::{CourseDay, DayRollup, SubscriptionDay};
use tollgate_domain::metrics::{Currency, DAY_MS, Day, DayRange, subscription_days};
use tollgate_domain::money::Money;
use tollgate_domain::revenue::{RevenueKind, RevenueRow};
use tollgate_warehouse::{BigQueryWarehouse, Warehouse};

struct Fixture {
    w: Warehouse,
    _dir: Option<tempfile::TempDir>,
}

fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let w = Warehouse::Sqlite(tollgate_warehouse::SqliteWarehouse::open(dir.path().join("w.db")).unwrap());
    Fixture { w, _dir: Some(dir) }
}

async fn bigquery(test: &str) -> Option<Fixture> {
    let Some(host) = std::env::var_os("BIGQUERY_EMULATOR_HOST") else {
        if std::env::var("TOLLGATE_SKIP_BIGQUERY").as_deref() == Ok("1") {
            eprintln!("TOLLGATE_SKIP_BIGQUERY=1: skipping the BigQuery run of {test}");
            return None;
        }
        panic!(
            "BIGQUERY_EMULATOR_HOST is not set, so the BigQuery backend cannot be tested. Start the emulator \
             (scripts/test.sh does; or `source scripts/lib.sh && ensure_bq_emulator`), or set \
             TOLLGATE_SKIP_BIGQUERY=1 to skip the BigQuery half of this suite on purpose."
        );
    };
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let dataset = format!("t_{test}_{}_{nanos}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
    let w = BigQueryWarehouse::open("test-project", &dataset, Some(host.to_str().unwrap())).await.unwrap();
    Some(Fixture { w: Warehouse::BigQuery(w), _dir: None })
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(super::sqlite().w).await;
            }
            #[tokio::test]
            async fn bigquery() {
                if let Some(f) = super::bigquery(stringify!($name)).await {
                    super::$name(f.w).await;
                }
            }
        }
    )*};
}

both!(
    record_is_idempotent,
    figures_per_course_and_currency,
    subscriptions_active_mrr_churn,
    rollup_reruns_alike,
    delete_and_window,
    one_reversal_per_transaction,
    amounts_keep_their_own_currency_and_minor_unit,
    open_range_reads_every_row,
    rows_of_one_buyer,
    rollups_and_live_agree_on_random_data,
    stale_rollups_are_never_served
);

fn day(s: &str) -> Day {
    s.parse().unwrap()
}

/// 10:00 UTC on `d` plus `h` hours.
fn at(d: &str, h: i64) -> i64 {
    day(d).start_ms() + (10 + h) * 3_600_000
}

fn row(txn: &str, kind: RevenueKind, product: i64, minor: i64, currency: &str, when: i64) -> RevenueRow {
    RevenueRow {
        key: format!("{txn}:{}", kind.as_str()),
        kind,
        transaction: txn.into(),
        event_id: format!("ev-{txn}-{}", kind.as_str()),
        product_id: product,
        buyer_email: format!("{txn}@example.com"),
        subscriber_code: None,
        recurrence: None,
        gross: Money { minor, currency: currency.into() },
        producer_net: Some(Money { minor: minor * 9 / 10, currency: currency.into() }),
        occurred_at: when,
        paid_until: None,
    }
}

fn sub(txn: &str, code: &str, product: i64, minor: i64, when: i64, until: i64) -> RevenueRow {
    RevenueRow {
        subscriber_code: Some(code.into()),
        recurrence: Some(1),
        paid_until: Some(until),
        ..row(txn, RevenueKind::Charge, product, minor, "BRL", when)
    }
}

fn brl() -> Currency {
    "BRL".parse().unwrap()
}

async fn record_is_idempotent(w: Warehouse) {
    let r = sub("HP1", "S1", 7, 1990, at("2026-03-01", 0), at("2026-04-01", 0));
    assert!(w.record(r.clone()).await.unwrap(), "first write inserts");
    assert!(!w.record(r.clone()).await.unwrap(), "a retried write is a no-op");
    // Same key, different content (a second delivery with another event id): first wins.
    let mut again = r.clone();
    again.event_id = "other".into();
    assert!(!w.record(again).await.unwrap());
    let rows = w.rows_between(day("2026-03-01").start_ms(), day("2026-03-02").start_ms()).await.unwrap();
    assert_eq!(rows, vec![r], "one row, every field as written");
}

async fn figures_per_course_and_currency(w: Warehouse) {
    assert!(w.currencies().await.unwrap().is_empty(), "no rows, no currencies");
    let d = "2026-05-10";
    for r in [
        row("A1", RevenueKind::Charge, 1, 10_000, "BRL", at(d, 0)),
        row("A2", RevenueKind::Charge, 1, 5_050, "BRL", at(d, 1)),
        row("A2", RevenueKind::Refund, 1, -5_050, "BRL", at(d, 2)),
        row("B1", RevenueKind::Charge, 2, 2_000, "BRL", at(d, 3)),
        row("B1", RevenueKind::Chargeback, 2, -2_000, "BRL", at(d, 4)),
        row("C1", RevenueKind::Charge, 1, 999, "USD", at(d, 5)),
        row("D1", RevenueKind::Charge, 1, 700, "BRL", at("2026-05-11", 0)),
    ] {
        w.record(r).await.unwrap();
    }
    assert_eq!(w.currencies().await.unwrap(), vec![brl(), "USD".parse().unwrap()]);
    let rows = w.course_days(&brl(), DayRange::one(day(d))).await.unwrap();
    let got: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.product_id,
                r.charges_minor,
                r.refunds_minor,
                r.chargebacks_minor,
                r.total_minor,
                r.charge_count,
            )
        })
        .collect();
    assert_eq!(got, vec![(1, 15_050, -5_050, 0, 10_000, 2), (2, 2_000, 0, -2_000, 0, 1)]);
    assert!(rows.iter().all(|r| r.currency == "BRL" && r.day == d));
    let usd = w.course_days(&"USD".parse().unwrap(), DayRange::one(day(d))).await.unwrap();
    assert_eq!(usd.len(), 1);
    assert_eq!(usd[0].total_minor, 999, "currencies are never added together");
    let two = w.course_days(&brl(), DayRange::new(day(d), day("2026-05-11")).unwrap()).await.unwrap();
    assert_eq!(two.len(), 3);
    assert_eq!((two[2].day.as_str(), two[2].total_minor), ("2026-05-11", 700));
}

async fn subscriptions_active_mrr_churn(w: Warehouse) {
    let d0 = "2026-01-01";
    let t = at(d0, 0);
    let rows = vec![
        sub("S1a", "A", 1, 1990, t, t + 31 * DAY_MS),
        sub("S1b", "A", 1, 1990, t + 31 * DAY_MS, t + 59 * DAY_MS),
        sub("S2", "B", 1, 12_000, t, t + 365 * DAY_MS),
        RevenueRow { paid_until: None, ..sub("S3", "C", 2, 500, t, 0) },
        row("S3", RevenueKind::Refund, 2, -500, "BRL", t + 5 * DAY_MS),
        // A one-off purchase is not a subscription.
        row("P1", RevenueKind::Charge, 2, 4_000, "BRL", t),
    ];
    for r in &rows {
        w.record(r.clone()).await.unwrap();
    }
    let range = DayRange::new(day(d0), Day::from_index(day(d0).index() + 70)).unwrap();
    let days = w.subscription_days(&brl(), range).await.unwrap();
    let pick = |i: usize| (days[i].active, days[i].mrr_minor, days[i].churned, days[i].started);
    assert_eq!(pick(0), (3, 1990 + 1000 + 500, 0, 3));
    assert_eq!(pick(5), (2, 2990, 1, 0));
    assert_eq!(pick(31), (2, 2990, 0, 0));
    assert_eq!(pick(59), (1, 1000, 1, 0));
    assert_eq!(pick(70), (1, 1000, 0, 0));
    // The backend fetched exactly the facts the pure computation needs.
    let facts: Vec<_> = rows
        .iter()
        .filter(|r| r.subscriber_code.is_some() || r.kind != RevenueKind::Charge)
        .map(|r| tollgate_domain::metrics::SubscriptionFact {
            product_id: r.product_id,
            subscriber_code: r.subscriber_code.clone(),
            transaction: r.transaction.clone(),
            kind: r.kind,
            gross_minor: r.gross.minor,
            occurred_at: r.occurred_at,
            paid_until: r.paid_until,
        })
        .collect();
    assert_eq!(days, subscription_days(&brl(), &facts, range));
    if let Warehouse::BigQuery(bq) = &w {
        views_agree(bq, &days).await;
    }
}

/// The BigQuery reporting views state the same definitions as the Rust figures.
async fn views_agree(bq: &BigQueryWarehouse, days: &[tollgate_domain::metrics::SubscriptionDay]) {
    let (p, d) = bq.dataset_path();
    let (rows, _) = bq
        .query(
            &format!(
                "SELECT CAST(a.day AS STRING), a.active, a.mrr_minor, COALESCE(c.churned, 0)
                 FROM `{p}.{d}.active_subscriptions` a
                 LEFT JOIN `{p}.{d}.churn` c ON c.day = a.day AND c.currency = a.currency
                 WHERE a.currency = 'BRL' ORDER BY a.day"
            ),
            &[],
        )
        .await
        .unwrap();
    let from_view: std::collections::BTreeMap<String, (i64, i64, i64)> = rows
        .iter()
        .map(|r| {
            let n = |i: usize| r[i].as_str().unwrap().split('.').next().unwrap().parse::<i64>().unwrap();
            (r[0].as_str().unwrap().to_string(), (n(1), n(2), n(3)))
        })
        .collect();
    for day in days.iter().filter(|d| d.active > 0) {
        let view = from_view.get(&day.day).copied().unwrap_or_default();
        assert_eq!(view, (day.active, day.mrr_minor, day.churned), "views disagree on {}", day.day);
    }
}

async fn rollup_reruns_alike(w: Warehouse) {
    let d = day("2026-07-04");
    w.record(row("R1", RevenueKind::Charge, 3, 1_000, "BRL", at("2026-07-04", 0))).await.unwrap();
    w.record(sub("R2", "Z", 4, 3_000, at("2026-07-04", 1), at("2026-08-04", 1))).await.unwrap();
    w.record(row("R3", RevenueKind::Charge, 3, 50, "EUR", at("2026-07-04", 2))).await.unwrap();
    assert_eq!(w.read_rollup(d).await.unwrap(), None);
    let first = w.rollup_day(d).await.unwrap();
    assert_eq!(first.courses.len(), 3, "{first:?}");
    assert_eq!(first.subscriptions.len(), 1);
    assert_eq!((first.subscriptions[0].active, first.subscriptions[0].mrr_minor), (1, 3_000));
    assert_eq!(w.read_rollup(d).await.unwrap().as_ref(), Some(&first));
    assert_eq!(w.rollup_day(d).await.unwrap(), first, "a re-run over the same facts is identical");
    assert_eq!(w.read_rollup(d).await.unwrap().as_ref(), Some(&first), "and stores no duplicates");
    // A late refund changes the day's facts: the re-run replaces the stored rollup.
    w.record(row("R1", RevenueKind::Refund, 3, -1_000, "BRL", at("2026-07-04", 5))).await.unwrap();
    let second = w.rollup_day(d).await.unwrap();
    assert_ne!(second, first);
    assert_eq!(w.read_rollup(d).await.unwrap(), Some(second.clone()));
    let p3 = second.courses.iter().find(|c| c.product_id == 3 && c.currency == "BRL").unwrap();
    assert_eq!((p3.total_minor, p3.refund_count), (0, 1));
}

async fn delete_and_window(w: Warehouse) {
    let d = "2026-09-09";
    for (i, h) in [0, 5, 13].into_iter().enumerate() {
        w.record(row(&format!("W{i}"), RevenueKind::Charge, 1, 100, "BRL", at(d, h))).await.unwrap();
    }
    let all = w.rows_between(day(d).start_ms(), day(d).end_ms() + DAY_MS).await.unwrap();
    assert_eq!(all.iter().map(|r| r.transaction.as_str()).collect::<Vec<_>>(), ["W0", "W1", "W2"]);
    // W2 at 23:00 falls on the next day's boundary? No: 10 + 13 = 23:00 the same day.
    let only_day = w.rows_between(day(d).start_ms(), day(d).end_ms()).await.unwrap();
    assert_eq!(only_day.len(), 3);
    assert_eq!(w.delete_keys(vec!["W1:charge".into(), "nope:charge".into()]).await.unwrap(), 1);
    let left = w.rows_between(day(d).start_ms(), day(d).end_ms()).await.unwrap();
    assert_eq!(left.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["W0:charge", "W2:charge"]);
}

/// Refund and chargeback of one transaction: the earliest reversal by (time, event id) is
/// the one booked, whatever the order they arrive in; a later one is refused, an earlier
/// one replaces it.
async fn one_reversal_per_transaction(w: Warehouse) {
    let d = "2026-08-08";
    let rev = |txn, kind, h| row(txn, kind, 1, -10_000, "BRL", at(d, h));
    w.record(row("T1", RevenueKind::Charge, 1, 10_000, "BRL", at(d, 0))).await.unwrap();
    assert!(w.record(rev("T1", RevenueKind::Refund, 1)).await.unwrap());
    assert!(
        !w.record(rev("T1", RevenueKind::Chargeback, 2)).await.unwrap(),
        "a second reversal of T1 is refused"
    );
    w.record(row("T2", RevenueKind::Charge, 1, 10_000, "BRL", at(d, 0))).await.unwrap();
    assert!(w.record(rev("T2", RevenueKind::Refund, 5)).await.unwrap());
    assert!(
        w.record(rev("T2", RevenueKind::Chargeback, 3)).await.unwrap(),
        "the earlier reversal replaces it"
    );
    assert!(!w.record(rev("T2", RevenueKind::Refund, 5)).await.unwrap(), "and a retried later one stays out");
    assert!(!w.record(rev("T2", RevenueKind::Chargeback, 3)).await.unwrap(), "a retried winner is a no-op");
    // A partial refund is not the reversal: it is booked besides it.
    w.record(row("T3", RevenueKind::Charge, 1, 10_000, "BRL", at(d, 0))).await.unwrap();
    let partial = RevenueRow {
        key: "T3:partial_refund:p1".into(),
        ..row("T3", RevenueKind::PartialRefund, 1, -2_500, "BRL", at(d, 1))
    };
    assert!(w.record(partial.clone()).await.unwrap());
    assert!(w.record(rev("T3", RevenueKind::Refund, 2)).await.unwrap(), "a partial refund is not a reversal");
    let keys: Vec<_> = w
        .rows_between(day(d).start_ms(), day(d).end_ms())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(
        keys,
        [
            "T1:charge",
            "T2:charge",
            "T3:charge",
            "T1:refund",
            "T3:partial_refund:p1",
            "T3:refund",
            "T2:chargeback"
        ]
    );
    let days = w.course_days(&brl(), DayRange::one(day(d))).await.unwrap();
    assert_eq!(
        (days[0].charges_minor, days[0].refunds_minor, days[0].chargebacks_minor, days[0].total_minor),
        (30_000, -22_500, -10_000, -2_500),
        "T1 and T2 net to zero; T3 is refunded in full after a partial refund"
    );
}

/// Three-decimal and zero-decimal currencies are stored and summed in their own minor
/// unit, and a producer net paid in another currency keeps it.
async fn amounts_keep_their_own_currency_and_minor_unit(w: Warehouse) {
    let d = "2026-06-01";
    let mut kwd = row("K1", RevenueKind::Charge, 1, 12_345, "KWD", at(d, 0));
    kwd.producer_net = Some(Money { minor: 3_100, currency: "USD".into() });
    w.record(kwd.clone()).await.unwrap();
    w.record(row("K2", RevenueKind::Charge, 1, 1_005, "KWD", at(d, 1))).await.unwrap();
    w.record(row("J1", RevenueKind::Charge, 1, 1_500, "JPY", at(d, 2))).await.unwrap();
    let rows = w.rows_between(day(d).start_ms(), day(d).end_ms()).await.unwrap();
    assert_eq!(rows[0], kwd, "the producer net keeps its own currency");
    assert_eq!(rows[1].producer_net, Some(Money { minor: 904, currency: "KWD".into() }));
    let kwd_days = w.course_days(&"KWD".parse().unwrap(), DayRange::one(day(d))).await.unwrap();
    assert_eq!((kwd_days[0].charges_minor, kwd_days[0].charge_count), (13_350, 2), "13.350 KWD");
    let jpy = w.course_days(&"JPY".parse().unwrap(), DayRange::one(day(d))).await.unwrap();
    assert_eq!(jpy[0].total_minor, 1_500);
}

#[tokio::test]
async fn sqlite_file_from_before_paid_until_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let c = rusqlite_conn(&path);
    c.execute_batch(
        "CREATE TABLE revenue (key TEXT PRIMARY KEY, kind TEXT NOT NULL, txn TEXT NOT NULL, event_id TEXT NOT NULL,
            product_id INTEGER NOT NULL, buyer_email TEXT NOT NULL, subscriber_code TEXT, recurrence INTEGER,
            gross_minor INTEGER NOT NULL, net_minor INTEGER, currency TEXT NOT NULL, occurred_at INTEGER NOT NULL,
            recorded_at INTEGER NOT NULL);
         INSERT INTO revenue VALUES ('old:charge', 'charge', 'old', 'e', 1, 'a@b.c', NULL, NULL, 100, NULL, 'BRL', 5, 5);",
    )
    .unwrap();
    drop(c);
    let w = Warehouse::Sqlite(tollgate_warehouse::SqliteWarehouse::open(&path).unwrap());
    let rows = w.rows_between(0, 10).await.unwrap();
    assert_eq!((rows.len(), rows[0].paid_until), (1, None));
    assert!(w.record(sub("new", "S", 1, 10, 6, 7)).await.unwrap());
}

fn rusqlite_conn(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

/// `revenue rows` without `--from` asks for `[i64::MIN, i64::MAX)`: every backend answers
/// with every row (BigQuery's own range is years 1..9999).
async fn open_range_reads_every_row(w: Warehouse) {
    w.record(row("OR1", RevenueKind::Charge, 1, 100, "BRL", at("2026-02-02", 0))).await.unwrap();
    w.record(row("OR2", RevenueKind::Refund, 1, -100, "BRL", at("2031-07-07", 0))).await.unwrap();
    let all = w.rows_between(i64::MIN, i64::MAX).await.unwrap();
    assert_eq!(all.iter().map(|r| r.transaction.as_str()).collect::<Vec<_>>(), ["OR1", "OR2"]);
}

async fn rows_of_one_buyer(w: Warehouse) {
    let mine = |txn: &str, kind, product, when| RevenueRow {
        buyer_email: "O'Brien@Example.com".into(),
        ..row(txn, kind, product, 100, "BRL", when)
    };
    w.record(mine("B1", RevenueKind::Charge, 1, at("2026-02-02", 0))).await.unwrap();
    w.record(mine("B1", RevenueKind::Refund, 1, at("2026-02-05", 0))).await.unwrap();
    w.record(mine("B2", RevenueKind::Charge, 2, at("2026-02-03", 0))).await.unwrap();
    w.record(mine("B3", RevenueKind::Charge, 3, at("2026-02-04", 0))).await.unwrap();
    // Someone else, in the same product.
    w.record(row("B4", RevenueKind::Charge, 1, 100, "BRL", at("2026-02-04", 0))).await.unwrap();
    let keys = |rows: Vec<RevenueRow>| rows.into_iter().map(|r| r.key).collect::<Vec<_>>();
    // Any case of the address; only the products asked for; oldest first.
    let got = w.rows_of_buyer("o'brien@example.com", &[1, 2]).await.unwrap();
    assert_eq!(keys(got), ["B1:charge", "B2:charge", "B1:refund"]);
    assert_eq!(keys(w.rows_of_buyer("O'BRIEN@EXAMPLE.COM", &[3]).await.unwrap()), ["B3:charge"]);
    assert!(w.rows_of_buyer("o'brien@example.com", &[]).await.unwrap().is_empty());
    assert!(w.rows_of_buyer("nobody@example.com", &[1, 2, 3]).await.unwrap().is_empty());
}

/// Every process opens the warehouse: a second open of a current dataset finds the
/// schema digest and keeps the data (one digest row, however often it is opened).
#[tokio::test]
async fn bigquery_reopen_checks_the_schema_digest() {
    let Some(f) = bigquery("reopen").await else { return };
    let Warehouse::BigQuery(w) = f.w else { unreachable!() };
    let r = row("RO1", RevenueKind::Charge, 1, 100, "BRL", at("2026-02-02", 0));
    assert!(w.record(r.clone()).await.unwrap());
    let (project, dataset) = w.dataset_path();
    let host = std::env::var("BIGQUERY_EMULATOR_HOST").unwrap();
    let again = BigQueryWarehouse::open(project, dataset, Some(&host)).await.unwrap();
    let (digests, _) =
        again.query(&format!("SELECT digest FROM `{project}.{dataset}.schema_digest`"), &[]).await.unwrap();
    assert_eq!(digests.len(), 1, "{digests:?}");
    assert_eq!(again.rows_between(i64::MIN, i64::MAX).await.unwrap(), vec![r]);
}

fn today() -> Day {
    Day::of_ms(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64)
}

/// A seeded xorshift: the same rows on every run and backend.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: i64) -> i64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as i64
    }
}

/// Sales over the days `first..=last` (relative to today): one-off and subscription
/// charges in two currencies, refunds, chargebacks and partial refunds dated after them.
fn random_rows(rng: &mut Rng, tag: &str, n: usize, first: i64, last: i64) -> Vec<RevenueRow> {
    let t0 = today().start_ms();
    let mut rows = Vec::new();
    for i in 0..n {
        let txn = format!("{tag}{i}");
        let when = t0 + first * DAY_MS + rng.below((last - first + 1) * DAY_MS);
        let currency = if rng.below(4) == 0 { "USD" } else { "BRL" };
        let product = 1 + rng.below(3);
        let minor = 100 + rng.below(20_000);
        let mut charge = row(&txn, RevenueKind::Charge, product, minor, currency, when);
        if rng.below(2) == 0 {
            charge.subscriber_code = Some(format!("S{}", rng.below(8)));
            charge.recurrence = Some(1);
            charge.paid_until = match rng.below(3) {
                0 => None,
                1 => Some(when + (28 + rng.below(4)) * DAY_MS),
                _ => Some(when + 365 * DAY_MS),
            };
        }
        rows.push(charge);
        let later = (when + rng.below(10 * DAY_MS)).min(t0 + DAY_MS - 1);
        match rng.below(8) {
            0 => rows.push(row(&txn, RevenueKind::Refund, product, -minor, currency, later)),
            1 => rows.push(row(&txn, RevenueKind::Chargeback, product, -minor, currency, later)),
            2 => rows.push(RevenueRow {
                key: format!("{txn}:partial_refund:1"),
                ..row(&txn, RevenueKind::PartialRefund, product, -minor / 3, currency, later)
            }),
            _ => {}
        }
    }
    rows
}

/// The served figures equal the all-live ones for every range tried.
async fn assert_same_as_live(w: &Warehouse, ranges: &[DayRange], when: &str) {
    let currencies =
        if w.backend() == "bigquery" { vec![brl()] } else { vec![brl(), "USD".parse().unwrap()] };
    for currency in currencies {
        for &range in ranges {
            let live: Vec<CourseDay> = w.live_course_days(&currency, range).await.unwrap();
            assert_eq!(
                w.course_days(&currency, range).await.unwrap(),
                live,
                "{when}: courses {currency} {range:?}"
            );
            let live: Vec<SubscriptionDay> = w.live_subscription_days(&currency, range).await.unwrap();
            assert_eq!(
                w.subscription_days(&currency, range).await.unwrap(),
                live,
                "{when}: subscriptions {currency} {range:?}"
            );
        }
    }
}

/// Closed days of `range` a stored rollup would answer now.
async fn fresh_days(w: &Warehouse, range: DayRange) -> Vec<Day> {
    w.rollup_slice(range, None).await.unwrap().fresh().into_keys().collect()
}

/// Rollups for closed days plus live facts for the rest give the all-live figures, before
/// and after late rows (and a repair's delete) land on closed days; a late row makes its
/// own day and every later one stale, no earlier one.
async fn rollups_and_live_agree_on_random_data(w: Warehouse) {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let today = today();
    let d = |n: i64| Day::from_index(today.index() + n);
    // The emulator takes a good part of a second per query: fewer rows, ranges and
    // currencies there (the same code paths).
    let bq = w.backend() == "bigquery";
    let mut rows = random_rows(&mut rng, "A", if bq { 10 } else { 40 }, -30, 0);
    // An unreversed charge to refund late, and a row for a repair to delete.
    rows.push(row("O1", RevenueKind::Charge, 1, 4_000, "BRL", d(-20).start_ms() + 3_600_000));
    rows.push(row("V1", RevenueKind::Charge, 2, 900, "USD", d(-22).start_ms() + 7_200_000));
    // Today's subscription figures come from yesterday's rollup and what changes today:
    // a subscription starting, one whose paid period ends, one refunded.
    let noon = today.start_ms() + 12 * 3_600_000;
    rows.push(sub("N1", "new", 1, 3_000, noon, noon + 30 * DAY_MS));
    rows.push(sub("E1", "ends", 2, 2_000, noon - 30 * DAY_MS, noon));
    rows.push(sub("R1", "refunded", 1, 1_500, noon - 10 * DAY_MS, noon + 20 * DAY_MS));
    rows.push(row("R1", RevenueKind::Refund, 1, -1_500, "BRL", noon + 1));
    for r in &rows {
        w.record(r.clone()).await.unwrap();
    }
    let all = DayRange::new(d(-30), today).unwrap();
    let ranges = [
        all,
        DayRange::new(d(-20), d(-5)).unwrap(),
        DayRange::one(d(-12)),
        DayRange::new(d(-3), d(2)).unwrap(),
    ];
    let ranges = if bq { &ranges[..1] } else { &ranges[..] };
    assert_same_as_live(&w, ranges, "no rollups yet").await;
    assert_eq!(w.refresh_rollups(all).await.unwrap(), 30, "every closed day, once");
    assert_eq!(fresh_days(&w, all).await, DayRange::new(d(-30), d(-1)).unwrap().days().collect::<Vec<_>>());
    assert_eq!(w.refresh_rollups(all).await.unwrap(), 0, "nothing left to refresh");
    assert_same_as_live(&w, ranges, "from rollups").await;

    // Late rows: a charge 15 days ago (a subscription covering the days after it), a
    // refund of an old charge dated 9 days ago, and a repair deleting a row of day -22.
    let mut late = random_rows(&mut rng, "L", 1, -15, -15);
    late[0].subscriber_code = Some("S1".into());
    late[0].paid_until = Some(late[0].occurred_at + 30 * DAY_MS);
    let old = rows.iter().find(|r| r.transaction == "O1").unwrap();
    let mut refund =
        row(&old.transaction, RevenueKind::Refund, old.product_id, -old.gross.minor, &old.gross.currency, 0);
    refund.occurred_at = (old.occurred_at + 1).max(d(-9).start_ms());
    let refund_day = Day::of_ms(refund.occurred_at);
    late.push(refund);
    for r in &late {
        w.record(r.clone()).await.unwrap();
    }
    let first_late = Day::of_ms(late[0].occurred_at).min(refund_day);
    assert_eq!(
        fresh_days(&w, all).await,
        DayRange::new(d(-30), first_late.prev()).unwrap().days().collect::<Vec<_>>()
    );
    assert_same_as_live(&w, ranges, "after late rows").await;
    let victim = rows.iter().find(|r| r.transaction == "V1").unwrap();
    assert_eq!(w.delete_keys(vec![victim.key.clone()]).await.unwrap(), 1);
    let victim_day = Day::of_ms(victim.occurred_at);
    assert_eq!(
        fresh_days(&w, all).await,
        DayRange::new(d(-30), victim_day.prev()).unwrap().days().collect::<Vec<_>>()
    );
    assert_same_as_live(&w, ranges, "after a repair").await;
    assert_eq!(w.refresh_rollups(all).await.unwrap() as i64, today.index() - victim_day.index());
    assert_same_as_live(&w, ranges, "refreshed").await;
}

/// A stored rollup is what the dashboard reads while its day's facts are unchanged (a
/// doctored one shows), and never once a fact dated on or before that day changed, nor
/// for today; a change after the day leaves it fresh.
async fn stale_rollups_are_never_served(w: Warehouse) {
    let today = today();
    let day = Day::from_index(today.index() - 5);
    let at = |d: Day, h: i64| d.start_ms() + (10 + h) * 3_600_000;
    w.record(row("F1", RevenueKind::Charge, 1, 1_000, "BRL", at(day, 0))).await.unwrap();
    w.record(row("F2", RevenueKind::Charge, 1, 500, "BRL", at(today, -10))).await.unwrap();
    let range = DayRange::new(Day::from_index(day.index() - 2), today).unwrap();
    let mark = |w: &Warehouse| {
        let w = w.clone();
        async move { w.rollup_slice(DayRange::one(day), None).await.unwrap().marks[0] }
    };
    let doctored = |d: Day, total: i64| DayRollup {
        day: d,
        courses: vec![CourseDay {
            day: d.to_string(),
            product_id: 1,
            currency: "BRL".into(),
            charges_minor: total,
            total_minor: total,
            charge_count: 1,
            ..CourseDay::default()
        }],
        subscriptions: vec![SubscriptionDay {
            day: d.to_string(),
            currency: "BRL".into(),
            active: 7,
            mrr_minor: 70,
            churned: 0,
            started: 7,
        }],
    };
    let totals = |w: &Warehouse| {
        let w = w.clone();
        async move {
            let courses = w.course_days(&brl(), range).await.unwrap();
            courses.iter().map(|c| (c.day.clone(), c.total_minor)).collect::<Vec<_>>()
        }
    };
    let m = mark(&w).await;
    w.write_rollups(&[(doctored(day, 999_999), m), (doctored(today, 888_888), m)]).await.unwrap();
    assert_eq!(
        totals(&w).await,
        [(day.to_string(), 999_999), (today.to_string(), 500)],
        "a fresh rollup is read for its closed day, never for today"
    );
    let subs = w.subscription_days(&brl(), range).await.unwrap();
    // The day after it starts from it: nothing of a subscription changes on that day.
    assert_eq!(subs.iter().map(|s| s.active).collect::<Vec<_>>(), [0, 0, 7, 7, 0, 0, 0, 0]);
    // An older basis is stale.
    w.write_rollups(&[(doctored(day, 999_999), m - 1)]).await.unwrap();
    assert_eq!(totals(&w).await, [(day.to_string(), 1_000), (today.to_string(), 500)]);
    w.write_rollups(&[(doctored(day, 999_999), m)]).await.unwrap();
    // A late row after the day leaves it fresh ...
    w.record(row("F3", RevenueKind::Charge, 2, 300, "BRL", at(Day::from_index(day.index() + 1), 0)))
        .await
        .unwrap();
    assert_eq!(totals(&w).await[0], (day.to_string(), 999_999));
    // ... one dated before it, on another product, makes it stale: figures are live again.
    w.record(row("F4", RevenueKind::Charge, 3, 200, "BRL", at(Day::from_index(day.index() - 1), 0)))
        .await
        .unwrap();
    let live = w.live_course_days(&brl(), range).await.unwrap();
    assert_eq!(w.course_days(&brl(), range).await.unwrap(), live);
    assert_eq!(
        w.subscription_days(&brl(), range).await.unwrap(),
        w.live_subscription_days(&brl(), range).await.unwrap()
    );
    // So does a late refund dated on the day itself, after a refresh.
    w.refresh_rollups(range).await.unwrap();
    let m = mark(&w).await;
    w.write_rollups(&[(doctored(day, 777_777), m)]).await.unwrap();
    assert_eq!(totals(&w).await[1], (day.to_string(), 777_777));
    w.record(row("F1", RevenueKind::Refund, 1, -1_000, "BRL", at(day, 5))).await.unwrap();
    assert_eq!(w.course_days(&brl(), range).await.unwrap(), w.live_course_days(&brl(), range).await.unwrap());
    assert_eq!(totals(&w).await[1], (day.to_string(), 0));
}
