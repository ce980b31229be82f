use tollgate_store::{Appended, Db, Grants, Journal, Links, Release, Warehouse};
use tollgate_workflows::fixtures::Sale;
use tollgate_workflows::hotmart::parse;
use tollgate_workflows::revenue::row_for;
use tollgate_workflows::{AccessPolicy, CourseLink, HotmartEvent, ProductId};

fn event(id: &str, txn: &str) -> HotmartEvent {
    let body = Sale::one_off(5, txn, "ana@example.com").event("PURCHASE_APPROVED", id, 1_760_000_000_000);
    parse(body.to_string().as_bytes()).unwrap().event
}

fn db() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("t.db")).unwrap();
    (dir, db)
}

#[tokio::test]
async fn journal_recognises_resends_and_survives_reopen() {
    let (dir, db) = db();
    let j = Journal::new(db);
    let e = event("e1", "HP1");
    assert_eq!(j.append(e.clone(), Some("purchase-HP1".into()), "{}".into()).await.unwrap(), Appended::New);
    assert_eq!(
        j.append(e.clone(), Some("purchase-HP1".into()), "{}".into()).await.unwrap(),
        Appended::Duplicate { deliveries: 2 }
    );
    // Unroutable events are kept but never pending.
    assert_eq!(j.append(event("e2", "HP2"), None, "{}".into()).await.unwrap(), Appended::New);
    assert_eq!(j.counts().await.unwrap(), (2, 1));

    // A new process sees what was acknowledged.
    let j2 = Journal::new(Db::open(dir.path().join("t.db")).unwrap());
    let pending = j2.pending(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].event, e);
    assert_eq!(pending[0].workflow_id, "purchase-HP1");
    j2.mark_forwarded(vec![pending[0].seq]).await.unwrap();
    assert!(j2.pending(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn concurrent_appends_group_commit_without_loss() {
    let (_dir, db) = db();
    let j = Journal::new(db);
    let mut tasks = Vec::new();
    for i in 0..300 {
        let j = j.clone();
        // Every event twice: 300 distinct ids, 600 deliveries.
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

#[tokio::test]
async fn links_crud() {
    let (_dir, db) = db();
    let links = Links::new(db);
    assert!(links.get(ProductId(1)).await.unwrap().is_none());
    let link = CourseLink {
        product_id: ProductId(1),
        courses: vec!["101".into(), "102".into()],
        policy: AccessPolicy::FixedTerm { term_secs: 60 },
    };
    links.upsert(link.clone()).await.unwrap();
    assert_eq!(links.get(ProductId(1)).await.unwrap(), Some(link.clone()));
    let changed = CourseLink { policy: AccessPolicy::Lifetime, ..link };
    links.upsert(changed.clone()).await.unwrap();
    assert_eq!(links.list().await.unwrap(), vec![changed]);
    assert!(links.remove(ProductId(1)).await.unwrap());
    assert!(!links.remove(ProductId(1)).await.unwrap());
}

#[tokio::test]
async fn revenue_is_recorded_once() {
    let (_dir, db) = db();
    let w = Warehouse::new(db);
    let row = row_for(&event("e1", "HP1")).unwrap();
    assert!(w.record(row.clone()).await.unwrap());
    assert!(!w.record(row.clone()).await.unwrap());
    assert_eq!(w.rows().await.unwrap(), vec![row]);
}

#[tokio::test]
async fn a_course_is_released_only_by_its_last_grant() {
    let (_dir, db) = db();
    let g = Grants::new(db);
    assert_eq!(g.release("u1", "101", "purchase-A").await.unwrap(), Release::NotHeld);
    g.grant("u1", "101", "purchase-A").await.unwrap();
    g.grant("u1", "101", "purchase-A").await.unwrap();
    g.grant("u1", "101", "purchase-B").await.unwrap();
    assert_eq!(
        g.release("u1", "101", "purchase-A").await.unwrap(),
        Release::StillGranted { by: "purchase-B".into() }
    );
    assert_eq!(g.release("u1", "101", "purchase-A").await.unwrap(), Release::NotHeld);
    // The last grant survives until the unenroll really happened (retry-safe).
    assert_eq!(g.release("u1", "101", "purchase-B").await.unwrap(), Release::Last);
    assert_eq!(g.release("u1", "101", "purchase-B").await.unwrap(), Release::Last);
    g.drop_grant("u1", "101", "purchase-B").await.unwrap();
    assert_eq!(g.release("u1", "101", "purchase-B").await.unwrap(), Release::NotHeld);
}

#[tokio::test]
async fn an_undecodable_entry_is_quarantined_not_blocking() {
    let (dir, db) = db();
    let j = Journal::new(db);
    j.append(event("e1", "HP1"), Some("w1".into()), "{}".into()).await.unwrap();
    j.append(event("e2", "HP2"), Some("w2".into()), "{}".into()).await.unwrap();
    // Simulate an entry written by a different version.
    let raw = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
    raw.execute("UPDATE journal SET event = '{\"broken\":true}' WHERE event_id = 'e1'", []).unwrap();
    let pending = j.pending(10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].workflow_id, "w2");
    assert_eq!(j.counts().await.unwrap(), (2, 1));
}
