//! A journal entry whose stored event this version cannot decode (written under another
//! event schema) is listed apart by `journal_window`, on both backends, never silently
//! dropped: revenue reconciliation counts on it to hold back its repair.

use tollgate_domain::fixtures::Sale;
use tollgate_domain::hotmart::parse;
use tollgate_store::{DocStore, FirestoreDocs, SqliteDocs, firestore::doc_id};

const GARBAGE: &str = r#"{"from":"a future schema"}"#;

fn event(id: &str, txn: &str) -> tollgate_domain::HotmartEvent {
    let body = Sale::one_off(5, txn, "ana@example.com").event("PURCHASE_APPROVED", id, 1_760_000_000_000);
    parse(body.to_string().as_bytes()).unwrap().event
}

async fn journal_two(store: &DocStore) {
    for (id, txn) in [("w1", "HPW1"), ("w2", "HPW2")] {
        store.append(event(id, txn), Some(format!("purchase-{txn}")), "{}".into()).await.unwrap();
    }
}

async fn check(store: &DocStore) {
    let w = store.journal_window(0, i64::MAX).await.unwrap();
    assert_eq!(w.entries.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["w1"]);
    assert_eq!(w.undecodable, ["w2"]);
    assert_eq!(store.journal_between(0, i64::MAX).await.unwrap().len(), 1);
}

#[tokio::test]
async fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let docs = SqliteDocs::open(dir.path().join("t.db")).unwrap();
    let db = docs.db.clone();
    let store = DocStore::Sqlite(docs);
    journal_two(&store).await;
    db.call(|c| Ok(c.execute("UPDATE journal SET event = ?1 WHERE event_id = 'w2'", [GARBAGE])?))
        .await
        .unwrap();
    check(&store).await;
}

#[derive(serde::Serialize, serde::Deserialize)]
struct EventField {
    event: String,
}

#[tokio::test]
async fn firestore() {
    if std::env::var_os("FIRESTORE_EMULATOR_HOST").is_none() {
        assert_eq!(
            std::env::var("TOLLGATE_SKIP_FIRESTORE").as_deref(),
            Ok("1"),
            "FIRESTORE_EMULATOR_HOST is not set (`source scripts/lib.sh && ensure_firestore_emulator`), \
             or set TOLLGATE_SKIP_FIRESTORE=1 to skip the Firestore half on purpose"
        );
        return;
    }
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let docs =
        FirestoreDocs::open(&format!("t-journal-window-{}-{nanos}", std::process::id()), None).await.unwrap();
    let db = docs.db().clone();
    let store = DocStore::Firestore(docs);
    journal_two(&store).await;
    db.fluent()
        .update()
        .fields(["event"])
        .in_col(tollgate_store::firestore::JOURNAL)
        .document_id(doc_id(&["w2"]).unwrap())
        .object(&EventField { event: GARBAGE.into() })
        .execute::<serde::de::IgnoredAny>()
        .await
        .unwrap();
    check(&store).await;
}
