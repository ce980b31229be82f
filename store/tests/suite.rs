//! One suite over [`DocStore`], run against both backends: every shared test body is
//! written once and instantiated as `<name>::sqlite` and `<name>::firestore`.
//!
//! The Firestore half needs the emulator (`FIRESTORE_EMULATOR_HOST`, started by
//! `scripts/test.sh`). Without it those tests fail, unless `TOLLGATE_SKIP_FIRESTORE=1`.
//! Each test gets its own project id, so they run in parallel on one emulator.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tollgate_domain::Facts;
use tollgate_domain::fixtures::Sale;
use tollgate_domain::hotmart::parse;
use tollgate_domain::{AccessPolicy, CourseLink, HotmartEvent, ProductId};
use tollgate_store::{
    Appended, CourseGrant, Db, DocStore, FirestoreDocs, Grant, Journal, LedgerEntry, QuarantineStats,
    Release, SqliteDocs, StoreError, StudentAccess,
};

fn event(id: &str, txn: &str) -> HotmartEvent {
    let body = Sale::one_off(5, txn, "ana@example.com").event("PURCHASE_APPROVED", id, 1_760_000_000_000);
    parse(body.to_string().as_bytes()).unwrap().event
}

struct Fixture {
    store: DocStore,
    _dir: Option<tempfile::TempDir>,
}

fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = DocStore::Sqlite(SqliteDocs::open(dir.path().join("t.db")).unwrap());
    Fixture { store, _dir: Some(dir) }
}

/// `None` only when the Firestore half is explicitly skipped.
async fn firestore(test: &str) -> Option<Fixture> {
    if std::env::var_os("FIRESTORE_EMULATOR_HOST").is_none() {
        if std::env::var("TOLLGATE_SKIP_FIRESTORE").as_deref() == Ok("1") {
            eprintln!("TOLLGATE_SKIP_FIRESTORE=1: skipping the Firestore run of {test}");
            return None;
        }
        panic!(
            "FIRESTORE_EMULATOR_HOST is not set, so the Firestore backend cannot be tested. Start the emulator \
             (scripts/test.sh does; or `source scripts/lib.sh && ensure_firestore_emulator`), or set \
             TOLLGATE_SKIP_FIRESTORE=1 to skip the Firestore half of this suite on purpose."
        );
    }
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let project = format!(
        "t-{}-{}-{}-{}",
        test.replace('_', "-"),
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    );
    let store = DocStore::Firestore(FirestoreDocs::open(&project, None).await.unwrap());
    assert_eq!(store.backend(), "firestore");
    Some(Fixture { store, _dir: None })
}

/// Instantiates each shared test body for both backends.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let f = super::sqlite();
                assert_eq!(f.store.backend(), "sqlite");
                super::$name(&f.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn firestore() {
                let Some(f) = super::firestore(stringify!($name)).await else { return };
                super::$name(&f.store).await;
            }
        }
    )*};
}

both_backends!(
    journal_dedupes_resends_and_forwards,
    journal_pending_is_oldest_first_and_limited,
    concurrent_appends_count_each_event_once,
    twenty_concurrent_copies_of_one_event_are_all_taken,
    an_undecodable_entry_is_quarantined_not_blocking,
    links_create_put_delete,
    links_page_in_product_order,
    a_course_is_released_only_by_its_last_grant,
    student_access_keeps_the_newest,
    student_access_by_email_and_product,
    journal_between_lists_routable_entries_in_a_window,
    an_unreadable_delivery_is_kept_quarantined_and_released_by_a_redrive,
    quarantine_pages_by_key,
    a_subscriber_code_finds_its_workflow,
    the_ledger_merges_facts_across_runs,
    a_key_lists_the_grants_it_holds,
    a_release_whose_unenroll_may_have_happened_reclaims,
    reports_are_kept_by_kind_newest_first,
    product_names_are_kept_and_renamed,
    a_course_lists_its_grants_but_not_those_being_released,
    a_lease_has_one_holder_until_it_expires,
);

async fn a_course_lists_its_grants_but_not_those_being_released(s: &DocStore) {
    s.grant("u2", "101", "purchase-B").await.unwrap();
    s.grant("u1", "101", "purchase-A").await.unwrap();
    s.grant("u1", "102", "purchase-A").await.unwrap();
    s.grant("u3", "101", "purchase-C").await.unwrap();
    // u3's last grant is being released: the unenroll is under way.
    assert_eq!(s.release("u3", "101", "purchase-C").await.unwrap(), Release::Last);
    let g = |u: &str, w: &str| CourseGrant { user_id: u.into(), workflow_id: w.into() };
    assert_eq!(s.course_grants("101").await.unwrap(), [g("u1", "purchase-A"), g("u2", "purchase-B")]);
    assert_eq!(s.course_grants("102").await.unwrap(), [g("u1", "purchase-A")]);
    assert!(s.course_grants("103").await.unwrap().is_empty());
}

async fn reports_are_kept_by_kind_newest_first(s: &DocStore) {
    s.put_report("hotmart_reconcile", "r1", 1_000, r#"{"n":1}"#.into()).await.unwrap();
    s.put_report("hotmart_reconcile", "r2", 3_000, r#"{"n":2}"#.into()).await.unwrap();
    s.put_report("talentlms_audit", "a1", 2_000, r#"{"a":1}"#.into()).await.unwrap();
    // A run that reports again replaces its document.
    s.put_report("hotmart_reconcile", "r1", 2_000, r#"{"n":3}"#.into()).await.unwrap();
    assert_eq!(s.latest_reports("hotmart_reconcile", 10).await.unwrap(), [r#"{"n":2}"#, r#"{"n":3}"#]);
    assert_eq!(s.latest_reports("hotmart_reconcile", 1).await.unwrap(), [r#"{"n":2}"#]);
    assert_eq!(s.latest_reports("talentlms_audit", 10).await.unwrap(), [r#"{"a":1}"#]);
    assert!(s.latest_reports("other", 10).await.unwrap().is_empty());
}

async fn product_names_are_kept_and_renamed(s: &DocStore) {
    assert!(s.product_names().await.unwrap().is_empty());
    s.put_product_name(ProductId(1002), "Fixed term".into()).await.unwrap();
    s.put_product_name(ProductId(1001), "Lifetime".into()).await.unwrap();
    s.put_product_name(ProductId(1002), "Fixed term (2025)".into()).await.unwrap();
    assert_eq!(
        s.product_names().await.unwrap(),
        [(ProductId(1001), "Lifetime".to_string()), (ProductId(1002), "Fixed term (2025)".to_string())]
    );
}

async fn a_lease_has_one_holder_until_it_expires(s: &DocStore) {
    // Long enough that an emulator round trip cannot eat the margins below.
    let ttl = 1500;
    assert!(s.acquire_lease("forwarder-0", "a", ttl).await.unwrap());
    assert!(!s.acquire_lease("forwarder-0", "b", ttl).await.unwrap(), "held by a");
    assert!(s.acquire_lease("forwarder-1", "b", ttl).await.unwrap(), "another shard is free");
    // Renewing keeps it.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(s.acquire_lease("forwarder-0", "a", ttl).await.unwrap());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(!s.acquire_lease("forwarder-0", "b", ttl).await.unwrap(), "a renewed it");
    // a dies (stops renewing): b takes over once it expires, and a cannot take it back.
    tokio::time::sleep(Duration::from_millis(ttl as u64 + 100)).await;
    assert!(s.acquire_lease("forwarder-0", "b", ttl).await.unwrap());
    assert!(!s.acquire_lease("forwarder-0", "a", ttl).await.unwrap());
    // A clean stop hands it over at once; releasing another's lease does nothing.
    s.release_lease("forwarder-0", "a").await.unwrap();
    assert!(!s.acquire_lease("forwarder-0", "c", ttl).await.unwrap());
    s.release_lease("forwarder-0", "b").await.unwrap();
    assert!(s.acquire_lease("forwarder-0", "c", ttl).await.unwrap());
    // Racing for a free lease: exactly one wins.
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let s = s.clone();
            // A contended attempt may fail outright: that holder just tries again later.
            tokio::spawn(async move {
                s.acquire_lease("forwarder-2", &format!("r{i}"), 10_000).await.unwrap_or(false)
            })
        })
        .collect();
    let mut won = 0;
    for r in racers {
        won += r.await.unwrap() as usize;
    }
    assert_eq!(won, 1);
}

async fn the_ledger_merges_facts_across_runs(s: &DocStore) {
    assert_eq!(s.ledger("purchase-HP1").await.unwrap(), None);
    let fold = |events: &[HotmartEvent]| {
        let mut f = Facts::default();
        events.iter().for_each(|e| {
            f.apply(e);
        });
        f
    };
    let approval = event("a1", "HP1");
    let refund = {
        let body =
            Sale::one_off(5, "HP1", "ana@example.com").event("PURCHASE_REFUNDED", "r1", 1_760_000_100_000);
        parse(body.to_string().as_bytes()).unwrap().event
    };
    // The first run saw only the refund and knew the user; the second only the approval.
    let first = LedgerEntry {
        workflow_id: "purchase-HP1".into(),
        facts: fold(std::slice::from_ref(&refund)),
        talentlms_user_id: Some("u1".into()),
    };
    s.put_ledger(first).await.unwrap();
    let second = LedgerEntry {
        workflow_id: "purchase-HP1".into(),
        facts: fold(std::slice::from_ref(&approval)),
        talentlms_user_id: None,
    };
    s.put_ledger(second).await.unwrap();
    let got = s.ledger("purchase-HP1").await.unwrap().unwrap();
    assert_eq!(got.facts, fold(&[approval, refund]));
    assert_eq!(got.talentlms_user_id.as_deref(), Some("u1"));
    assert_eq!(got.workflow_id, "purchase-HP1");
    assert_eq!(s.ledger("purchase-HP2").await.unwrap(), None);
}

async fn a_key_lists_the_grants_it_holds(s: &DocStore) {
    s.grant("u1", "102", "purchase-A").await.unwrap();
    s.grant("u1", "101", "purchase-A").await.unwrap();
    s.grant("u9", "101", "purchase-A").await.unwrap();
    s.grant("u1", "101", "purchase-B").await.unwrap();
    let g = |u: &str, c: &str| Grant { user_id: u.into(), course_id: c.into() };
    assert_eq!(s.held_grants("purchase-A").await.unwrap(), [g("u1", "101"), g("u1", "102"), g("u9", "101")]);
    assert_eq!(s.held_grants("purchase-B").await.unwrap(), [g("u1", "101")]);
    assert!(s.held_grants("purchase-C").await.unwrap().is_empty());
    // Held until the unenroll is confirmed, released after.
    assert_eq!(s.release("u9", "101", "purchase-A").await.unwrap(), Release::Last);
    assert_eq!(s.held_grants("purchase-A").await.unwrap().len(), 3);
    s.drop_grant("u9", "101", "purchase-A").await.unwrap();
    assert_eq!(s.held_grants("purchase-A").await.unwrap(), [g("u1", "101"), g("u1", "102")]);
}

async fn a_release_whose_unenroll_may_have_happened_reclaims(s: &DocStore) {
    s.grant("u1", "101", "purchase-A").await.unwrap();
    // A's release is the last: it unenrolls. Meanwhile B enrolls (TalentLMS: "already
    // enrolled"), which A's unenroll then undoes.
    assert_eq!(s.release("u1", "101", "purchase-A").await.unwrap(), Release::Last);
    s.grant("u1", "101", "purchase-B").await.unwrap();
    // A releases again after its unenroll (or on a retry): it must enroll again for B,
    // and keeps its grant until it did (a failed re-enroll retries the same way).
    let reclaim = Release::Reclaim { by: "purchase-B".into() };
    assert_eq!(s.release("u1", "101", "purchase-A").await.unwrap(), reclaim);
    assert_eq!(s.release("u1", "101", "purchase-A").await.unwrap(), reclaim);
    s.drop_grant("u1", "101", "purchase-A").await.unwrap();
    assert_eq!(s.release("u1", "101", "purchase-A").await.unwrap(), Release::NotHeld);
    assert_eq!(s.release("u1", "101", "purchase-B").await.unwrap(), Release::Last);
}

async fn an_unreadable_delivery_is_kept_quarantined_and_released_by_a_redrive(s: &DocStore) {
    assert_eq!(s.quarantine_stats().await.unwrap(), QuarantineStats { count: 0, oldest_received_at: None });
    let body = r#"{"id":"q1", "event":"PURCHASE_APPROVED", "data":{}}"#;
    let q = |body: &str| {
        s.append_quarantined(
            "q1".into(),
            Some("PURCHASE_APPROVED".into()),
            body.into(),
            "missing data.buyer".into(),
            1,
        )
    };
    assert_eq!(q(body).await.unwrap(), Appended::New);
    assert_eq!(q(body).await.unwrap(), Appended::Duplicate { deliveries: 2 }, "a resend is counted");
    let stats = s.quarantine_stats().await.unwrap();
    assert_eq!(stats.count, 1);
    assert!(stats.oldest_received_at.is_some());
    // Kept, never pending, listed with what operators need.
    assert_eq!(s.journal_counts().await.unwrap(), (1, 0));
    assert!(s.pending(10).await.unwrap().is_empty());
    let listed = s.quarantined(None, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    let e = &listed[0];
    assert_eq!(
        (e.key.as_str(), e.event_name.as_deref(), e.reason.as_str(), e.parser_version, e.body.as_str()),
        ("q1", Some("PURCHASE_APPROVED"), "missing data.buyer", Some(1), body)
    );
    // Still unreadable after a redrive: the new reason and version are kept.
    s.requarantine("q1".into(), "still missing data.buyer".into(), 2).await.unwrap();
    let e = &s.quarantined(None, 10).await.unwrap()[0];
    assert_eq!((e.reason.as_str(), e.parser_version), ("still missing data.buyer", Some(2)));
    // Readable now: released to its workflow and forwarded like any entry.
    let mut ev = event("q1", "HQ1");
    assert!(s.release_quarantined("q1".into(), ev.clone(), Some("purchase-HQ1".into())).await.unwrap());
    assert!(
        !s.release_quarantined("q1".into(), ev.clone(), Some("purchase-HQ1".into())).await.unwrap(),
        "once"
    );
    assert_eq!(s.quarantine_stats().await.unwrap().count, 0);
    let pending = s.pending(10).await.unwrap();
    assert_eq!(
        (pending.len(), pending[0].key.as_str(), pending[0].workflow_id.as_str()),
        (1, "q1", "purchase-HQ1")
    );
    assert_eq!(pending[0].event, ev);
    // An entry that was never quarantined is not released.
    ev = event("e9", "HQ9");
    s.append(ev.clone(), Some("purchase-HQ9".into()), "{}".into()).await.unwrap();
    assert!(!s.release_quarantined("e9".into(), ev, Some("purchase-HQ9".into())).await.unwrap());
}

async fn quarantine_pages_by_key(s: &DocStore) {
    for key in ["k3", "k1", "k2"] {
        s.append_quarantined(key.into(), None, "[]".into(), "not an object".into(), 2).await.unwrap();
    }
    let keys = |v: Vec<tollgate_store::Quarantined>| v.into_iter().map(|q| q.key).collect::<Vec<_>>();
    assert_eq!(keys(s.quarantined(None, 2).await.unwrap()), ["k1", "k2"]);
    assert_eq!(keys(s.quarantined(Some("k2".into()), 2).await.unwrap()), ["k3"]);
    assert_eq!(s.quarantined(None, 10).await.unwrap()[0].event_name, None);
}

async fn a_subscriber_code_finds_its_workflow(s: &DocStore) {
    let body = Sale::subscription(7, "SUB9", "HS1", "ana@example.com", 1, 1_762_000_000_000).event(
        "PURCHASE_APPROVED",
        "s1",
        1_760_000_000_000,
    );
    let ev = parse(body.to_string().as_bytes()).unwrap().event;
    assert_eq!(s.subscriber_workflow("SUB9".into()).await.unwrap(), None);
    s.append(ev, Some("subscription-7-SUB9".into()), "{}".into()).await.unwrap();
    assert_eq!(s.subscriber_workflow("SUB9".into()).await.unwrap().as_deref(), Some("subscription-7-SUB9"));
    assert_eq!(s.subscriber_workflow("OTHER".into()).await.unwrap(), None);
}

async fn journal_between_lists_routable_entries_in_a_window(s: &DocStore) {
    let now =
        || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let before = now();
    s.append(event("b1", "HB1"), Some("purchase-HB1".into()), "{}".into()).await.unwrap();
    tick().await;
    s.append(event("b2", "HB2"), None, "{}".into()).await.unwrap();
    tick().await;
    s.append(event("b3", "HB3"), Some("purchase-HB3".into()), "{}".into()).await.unwrap();
    let p = s.pending(10).await.unwrap();
    s.mark_forwarded(p.iter().map(|e| e.key.clone()).filter(|k| k == "b1").collect()).await.unwrap();
    let keys = |v: Vec<tollgate_store::JournalEntry>| v.into_iter().map(|e| e.key).collect::<Vec<_>>();
    // Forwarded or not, routable only, oldest first.
    assert_eq!(keys(s.journal_between(before, now() + 1).await.unwrap()), ["b1", "b3"]);
    assert!(s.journal_between(0, before).await.unwrap().is_empty());
    let all = s.journal_between(before, now() + 1).await.unwrap();
    assert_eq!(all[0].event, event("b1", "HB1"));
}

/// Entries written a few ms apart, so `received_at` orders them in every backend.
async fn tick() {
    tokio::time::sleep(Duration::from_millis(3)).await;
}

async fn journal_dedupes_resends_and_forwards(s: &DocStore) {
    let e = event("e1", "HP1");
    assert_eq!(s.append(e.clone(), Some("purchase-HP1".into()), "{}".into()).await.unwrap(), Appended::New);
    assert_eq!(
        s.append(e.clone(), Some("purchase-HP1".into()), "{}".into()).await.unwrap(),
        Appended::Duplicate { deliveries: 2 }
    );
    assert_eq!(
        s.append(e.clone(), Some("purchase-HP1".into()), "{}".into()).await.unwrap(),
        Appended::Duplicate { deliveries: 3 }
    );
    // Unroutable events are kept but never pending.
    assert_eq!(s.append(event("e2", "HP2"), None, "{}".into()).await.unwrap(), Appended::New);
    assert_eq!(s.journal_counts().await.unwrap(), (2, 1));

    let pending = s.pending(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].key, "e1");
    assert_eq!(pending[0].event, e);
    assert_eq!(pending[0].workflow_id, "purchase-HP1");

    s.mark_forwarded(vec![]).await.unwrap();
    // Unknown keys are ignored.
    s.mark_forwarded(vec![pending[0].key.clone(), "no-such-event".into()]).await.unwrap();
    assert!(s.pending(10).await.unwrap().is_empty());
    assert_eq!(s.journal_counts().await.unwrap(), (2, 0));
    // A resend after forwarding is still recognised, and not pending again.
    assert_eq!(
        s.append(e, Some("purchase-HP1".into()), "{}".into()).await.unwrap(),
        Appended::Duplicate { deliveries: 4 }
    );
    assert!(s.pending(10).await.unwrap().is_empty());
}

async fn journal_pending_is_oldest_first_and_limited(s: &DocStore) {
    // Ids deliberately not in arrival order.
    for (i, id) in ["e9", "e3", "e7", "e1", "e5"].iter().enumerate() {
        s.append(event(id, &format!("HP{i}")), Some(format!("w{i}")), "{}".into()).await.unwrap();
        tick().await;
    }
    let keys = |v: Vec<tollgate_store::JournalEntry>| v.into_iter().map(|e| e.key).collect::<Vec<_>>();
    assert_eq!(keys(s.pending(10).await.unwrap()), ["e9", "e3", "e7", "e1", "e5"]);
    assert_eq!(keys(s.pending(2).await.unwrap()), ["e9", "e3"]);
    assert!(s.pending(0).await.unwrap().is_empty());
    s.mark_forwarded(vec!["e3".into(), "e1".into()]).await.unwrap();
    assert_eq!(keys(s.pending(10).await.unwrap()), ["e9", "e7", "e5"]);
    assert_eq!(s.journal_counts().await.unwrap(), (5, 3));
}

async fn concurrent_appends_count_each_event_once(s: &DocStore) {
    let mut tasks = Vec::new();
    for i in 0..200 {
        let s = s.clone();
        // 100 distinct ids, each delivered twice, all at once.
        tasks.push(tokio::spawn(async move {
            s.append(
                event(&format!("e{}", i % 100), &format!("HP{}", i % 100)),
                Some(format!("w{}", i % 100)),
                "{}".into(),
            )
            .await
            .unwrap()
        }));
    }
    let (mut new, mut dup) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Appended::New => new += 1,
            Appended::Duplicate { deliveries } => {
                assert_eq!(deliveries, 2);
                dup += 1;
            }
        }
    }
    assert_eq!((new, dup), (100, 100));
    assert_eq!(s.journal_counts().await.unwrap(), (100, 100));
    assert_eq!(s.pending(1000).await.unwrap().len(), 100);
}

/// Hotmart resends in bursts: every copy must be taken (a 503 for a duplicate makes it
/// resend again), one as new and each other one counted exactly once.
async fn twenty_concurrent_copies_of_one_event_are_all_taken(s: &DocStore) {
    let e = event("burst", "HPburst");
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (s, e) = (s.clone(), e.clone());
            tokio::spawn(async move { s.append(e, Some("purchase-HPburst".into()), "{}".into()).await })
        })
        .collect();
    let mut counts = Vec::new();
    let mut new = 0;
    for t in tasks {
        match t.await.unwrap().expect("every copy is taken") {
            Appended::New => new += 1,
            Appended::Duplicate { deliveries } => counts.push(deliveries),
        }
    }
    counts.sort();
    assert_eq!(new, 1);
    assert_eq!(counts, (2..=20).collect::<Vec<i64>>(), "each copy counted once");
    assert_eq!(s.journal_counts().await.unwrap(), (1, 1));
}

/// Rewrites the stored event of `key` as an entry a different version might have written.
async fn corrupt_event(s: &DocStore, key: &'static str) {
    const BROKEN: &str = r#"{"broken":true}"#;
    match s {
        DocStore::Sqlite(b) => {
            b.db.call(move |c| {
                assert_eq!(c.execute("UPDATE journal SET event = ?1 WHERE event_id = ?2", [BROKEN, key])?, 1);
                Ok(())
            })
            .await
            .unwrap()
        }
        DocStore::Firestore(b) => {
            #[derive(serde::Serialize, serde::Deserialize)]
            struct Event {
                event: String,
            }
            let _: serde::de::IgnoredAny = b
                .db()
                .fluent()
                .update()
                .fields(["event"])
                .in_col(tollgate_store::firestore::JOURNAL)
                .precondition(firestore::FirestoreWritePrecondition::Exists(true))
                .document_id(key)
                .object(&Event { event: BROKEN.into() })
                .execute()
                .await
                .unwrap();
        }
    }
}

async fn an_undecodable_entry_is_quarantined_not_blocking(s: &DocStore) {
    s.append(event("e1", "HP1"), Some("w1".into()), "{}".into()).await.unwrap();
    tick().await;
    s.append(event("e2", "HP2"), Some("w2".into()), "{}".into()).await.unwrap();
    corrupt_event(s, "e1").await;
    let pending = s.pending(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].workflow_id, "w2");
    // Kept, but no longer waiting.
    assert_eq!(s.journal_counts().await.unwrap(), (2, 1));
    assert_eq!(s.pending(10).await.unwrap().len(), 1);
    // A resend of the quarantined entry is counted, and stays quarantined.
    assert_eq!(
        s.append(event("e1", "HP1"), Some("w1".into()), "{}".into()).await.unwrap(),
        Appended::Duplicate { deliveries: 2 }
    );
    assert_eq!(s.journal_counts().await.unwrap(), (2, 1));
}

fn link(product: i64, courses: &[&str], policy: AccessPolicy) -> CourseLink {
    CourseLink {
        product_id: ProductId(product),
        courses: courses.iter().map(|c| c.to_string()).collect(),
        policy,
    }
}

async fn links_create_put_delete(s: &DocStore) {
    assert!(s.link(ProductId(1)).await.unwrap().is_none());
    let first = link(1, &["101", "102"], AccessPolicy::FixedTerm { term_secs: 60 });
    s.create_link(first.clone()).await.unwrap();
    assert_eq!(s.link(ProductId(1)).await.unwrap(), Some(first.clone()));

    let other = link(1, &["999"], AccessPolicy::Lifetime);
    assert!(matches!(s.create_link(other).await, Err(StoreError::Conflict)));
    assert_eq!(s.link(ProductId(1)).await.unwrap(), Some(first.clone()), "a failed create changes nothing");

    let changed = link(1, &[], AccessPolicy::Subscription { grace_secs: 3600 });
    assert_eq!(s.put_link(changed.clone()).await.unwrap(), Some(first));
    assert_eq!(s.link(ProductId(1)).await.unwrap(), Some(changed.clone()));
    // put creates too.
    let second = link(2, &["201"], AccessPolicy::Lifetime);
    assert_eq!(s.put_link(second.clone()).await.unwrap(), None);

    assert_eq!(s.delete_link(ProductId(1)).await.unwrap(), Some(changed));
    assert_eq!(s.delete_link(ProductId(1)).await.unwrap(), None);
    assert!(s.link(ProductId(1)).await.unwrap().is_none());
    assert_eq!(s.links_page(None, 10).await.unwrap(), vec![second]);
}

async fn links_page_in_product_order(s: &DocStore) {
    for p in [5, 1, 30, -2, 10, 200] {
        s.create_link(link(p, &[&format!("c{p}")], AccessPolicy::Lifetime)).await.unwrap();
    }
    let ids = |v: Vec<CourseLink>| v.into_iter().map(|l| l.product_id.0).collect::<Vec<_>>();
    assert_eq!(ids(s.links_page(None, 100).await.unwrap()), [-2, 1, 5, 10, 30, 200]);
    // Walk it in pages of two.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s.links_page(after, 2).await.unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(last.product_id);
        seen.extend(ids(page));
    }
    assert_eq!(seen, [-2, 1, 5, 10, 30, 200]);
    assert_eq!(ids(s.links_page(Some(ProductId(7)), 2).await.unwrap()), [10, 30]);
    assert!(s.links_page(Some(ProductId(200)), 10).await.unwrap().is_empty());
    assert!(s.links_page(None, 0).await.unwrap().is_empty());
    assert_eq!(s.links_page(Some(ProductId(1)), 1).await.unwrap()[0].courses, ["c5"]);
}

async fn a_course_is_released_only_by_its_last_grant(s: &DocStore) {
    assert_eq!(s.release("u1", "101", "purchase-A").await.unwrap(), Release::NotHeld);
    s.grant("u1", "101", "purchase-A").await.unwrap();
    s.grant("u1", "101", "purchase-A").await.unwrap();
    s.grant("u1", "101", "purchase-B").await.unwrap();
    // Grants of other users and courses do not count.
    s.grant("u2", "101", "purchase-C").await.unwrap();
    s.grant("u1", "102", "purchase-C").await.unwrap();
    assert_eq!(
        s.release("u1", "101", "purchase-A").await.unwrap(),
        Release::StillGranted { by: "purchase-B".into() }
    );
    assert_eq!(s.release("u1", "101", "purchase-A").await.unwrap(), Release::NotHeld);
    // The last grant survives until the unenroll really happened (retry-safe).
    assert_eq!(s.release("u1", "101", "purchase-B").await.unwrap(), Release::Last);
    assert_eq!(s.release("u1", "101", "purchase-B").await.unwrap(), Release::Last);
    s.drop_grant("u1", "101", "purchase-B").await.unwrap();
    s.drop_grant("u1", "101", "purchase-B").await.unwrap();
    assert_eq!(s.release("u1", "101", "purchase-B").await.unwrap(), Release::NotHeld);
    assert_eq!(s.release("u2", "101", "purchase-C").await.unwrap(), Release::Last);
    // Keys with the id separator and a slash stay distinct.
    s.grant("u|1", "10/1", "w").await.unwrap();
    assert_eq!(s.release("u", "1|10/1", "w").await.unwrap(), Release::NotHeld);
    assert_eq!(s.release("u|1", "10/1", "w").await.unwrap(), Release::Last);
}

fn access(email: &str, workflow: &str, product: i64, updated_at: i64) -> StudentAccess {
    StudentAccess {
        email: email.into(),
        workflow_id: workflow.into(),
        product_id: product,
        talentlms_user_id: Some("42".into()),
        state: "active".into(),
        entitled: true,
        until: Some(1_800_000_000_000),
        courses: vec!["101".into(), "102".into()],
        reason: "approved".into(),
        updated_at,
    }
}

async fn student_access_keeps_the_newest(s: &DocStore) {
    let a = access("ana@example.com", "purchase-HP1", 5, 100);
    assert!(s.put_access(a.clone()).await.unwrap(), "a first decision is new");
    assert_eq!(s.access_by_email("ana@example.com").await.unwrap(), vec![a.clone()]);
    assert!(!s.put_access(a.clone()).await.unwrap(), "a retried write is not another decision");

    // A late retry of an older decision changes nothing.
    let older = StudentAccess { state: "pending".into(), updated_at: 50, ..a.clone() };
    assert!(!s.put_access(older).await.unwrap());
    assert_eq!(s.access_by_email("ana@example.com").await.unwrap(), vec![a.clone()]);

    // A newer one replaces it whole: no stale optional field survives.
    let newer = StudentAccess {
        state: "revoked".into(),
        entitled: false,
        until: None,
        talentlms_user_id: None,
        courses: vec![],
        reason: "refunded".into(),
        updated_at: 200,
        ..a.clone()
    };
    assert!(s.put_access(newer.clone()).await.unwrap(), "a later decision is new");
    assert_eq!(s.access_by_email("ana@example.com").await.unwrap(), vec![newer.clone()]);

    // The same time overwrites (last write wins on ties).
    let same = StudentAccess { reason: "chargeback".into(), ..newer };
    assert!(!s.put_access(same.clone()).await.unwrap());
    assert_eq!(s.access_by_email("ana@example.com").await.unwrap(), vec![same]);
}

async fn student_access_by_email_and_product(s: &DocStore) {
    // Product 7: w1..w5 across several students, put out of order; product 8: one.
    for (email, wf) in
        [("bo@x.io", "w4"), ("ana@x.io", "w2"), ("a/b|c@x.io", "w5"), ("ana@x.io", "w1"), ("bo@x.io", "w3")]
    {
        s.put_access(access(email, wf, 7, 1)).await.unwrap();
    }
    s.put_access(access("ana@x.io", "w0", 8, 1)).await.unwrap();

    let wfs = |v: Vec<StudentAccess>| v.into_iter().map(|a| a.workflow_id).collect::<Vec<_>>();
    assert_eq!(wfs(s.access_by_email("ana@x.io").await.unwrap()), ["w0", "w1", "w2"]);
    assert_eq!(wfs(s.access_by_email("bo@x.io").await.unwrap()), ["w3", "w4"]);
    assert_eq!(s.access_by_email("a/b|c@x.io").await.unwrap(), vec![access("a/b|c@x.io", "w5", 7, 1)]);
    assert!(s.access_by_email("nobody@x.io").await.unwrap().is_empty());

    assert_eq!(wfs(s.access_by_product(7, None, 2).await.unwrap()), ["w1", "w2"]);
    assert_eq!(wfs(s.access_by_product(7, Some("w2".into()), 2).await.unwrap()), ["w3", "w4"]);
    assert_eq!(wfs(s.access_by_product(7, Some("w4".into()), 2).await.unwrap()), ["w5"]);
    assert!(s.access_by_product(7, Some("w5".into()), 2).await.unwrap().is_empty());
    assert_eq!(wfs(s.access_by_product(8, None, 10).await.unwrap()), ["w0"]);
    assert!(s.access_by_product(9, None, 10).await.unwrap().is_empty());
    assert!(s.access_by_product(7, None, 0).await.unwrap().is_empty());
}

// ---- SQLite only ----

#[tokio::test]
async fn sqlite_journal_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let s = DocStore::Sqlite(SqliteDocs::open(&path).unwrap());
    let e = event("e1", "HP1");
    assert_eq!(s.append(e.clone(), Some("purchase-HP1".into()), "{}".into()).await.unwrap(), Appended::New);
    drop(s);

    // A new process sees what was acknowledged.
    let s2 = DocStore::Sqlite(SqliteDocs::open(&path).unwrap());
    let pending = s2.pending(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].event, e);
    assert_eq!(
        s2.append(e, Some("purchase-HP1".into()), "{}".into()).await.unwrap(),
        Appended::Duplicate { deliveries: 2 }
    );
}

#[tokio::test]
async fn sqlite_concurrent_appends_group_commit_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::new(Db::open(dir.path().join("t.db")).unwrap());
    let mut tasks = Vec::new();
    for i in 0..300 {
        let j = j.clone();
        // Every event twice: 150 distinct ids, 300 deliveries.
        tasks.push(tokio::spawn(async move {
            j.append(event(&format!("e{}", i % 150), &format!("HP{i}")), Some(format!("w{i}")), "{}".into())
                .await
                .unwrap()
        }));
    }
    let mut new = 0;
    for t in tasks {
        if t.await.unwrap() == Appended::New {
            new += 1;
        }
    }
    assert_eq!(new, 150);
    assert_eq!(j.counts().await.unwrap(), (150, 150));
}

#[test]
fn a_sqlite_file_is_refused_to_a_second_machine() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    tollgate_store::claim_sqlite_host(&path, "host-a").unwrap();
    // Another process of the same machine: fine.
    tollgate_store::claim_sqlite_host(&path, "host-a").unwrap();
    let e = tollgate_store::claim_sqlite_host(&path, "host-b").unwrap_err().to_string();
    assert!(e.contains("host-a") && e.contains("TOLLGATE_STORE=firestore"), "{e}");
    // Moved on purpose: the marker removed, the new machine takes it.
    std::fs::remove_file(dir.path().join("t.db.host")).unwrap();
    tollgate_store::claim_sqlite_host(&path, "host-b").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_from_before_quarantine_at_ingress_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    // The journal as the first release created it.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TABLE journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,
             kind TEXT NOT NULL, workflow_id TEXT, event TEXT NOT NULL, received_at INTEGER NOT NULL,
             deliveries INTEGER NOT NULL DEFAULT 1, body TEXT NOT NULL, forwarded_at INTEGER, quarantined TEXT);",
        )
        .unwrap();
    let s = DocStore::Sqlite(SqliteDocs::open(&path).unwrap());
    s.append_quarantined("q".into(), None, "[]".into(), "not an object".into(), 2).await.unwrap();
    assert_eq!(s.quarantined(None, 1).await.unwrap()[0].parser_version, Some(2));
}
