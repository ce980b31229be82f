//! The webhook's edge: authentication, validation, size limit, de-duplication. Nothing
//! rejected is stored.

use serde_json::json;
use tollgate_domain::fixtures::Sale;
use tollgate_tests::{HOTTOK, Stack, StackOptions, now_ms, unique};

async fn journal_entries(stack: &Stack) -> i64 {
    stack.health().await["journal"]["entries"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_bad_input_with_clear_errors_and_stores_nothing() {
    let stack = Stack::spawn(StackOptions::default()).await;
    let body =
        Sale::one_off(1, &unique("HP"), "a@example.com").event("PURCHASE_APPROVED", &unique("e"), now_ms());
    let bytes = body.to_string().into_bytes();

    // No token, wrong token, token of the wrong length.
    for tok in [None, Some("wrong-token-0123456789"), Some("x")] {
        let (code, b) = stack.post_raw(bytes.clone(), tok).await;
        assert_eq!(code, 401, "{tok:?}: {b}");
        assert_eq!(b["error"], "unauthorized");
    }
    // Garbage without a token is still a 401, not a 400: unauthenticated callers learn nothing.
    assert_eq!(stack.post_raw(b"not json".to_vec(), None).await.0, 401);

    // Malformed with a valid token: 400 naming the problem.
    let (code, b) = stack.post_raw(b"{\"id\": 1".to_vec(), Some(HOTTOK)).await;
    assert_eq!(code, 400);
    assert_eq!(b["error"], "invalid_payload");
    assert!(b["reason"].as_str().unwrap().contains("not JSON"), "{b}");
    // JSON the parser cannot read is not refused (Hotmart would give up on the URL): it is
    // kept, quarantined with the reason naming the field.
    let mut missing = body.clone();
    missing["data"]["buyer"].as_object_mut().unwrap().remove("email");
    let (code, b) = stack.post(&missing).await;
    assert_eq!((code, b["status"].as_str()), (200, Some("quarantined")), "{b}");
    assert!(b["reason"].as_str().unwrap().contains("data.buyer.email"), "{b}");

    // Over 1 MiB: 413.
    let mut big = body.clone();
    big["data"]["padding"] = json!("x".repeat(1024 * 1024));
    assert_eq!(stack.post(&big).await.0, 413);

    assert_eq!(
        journal_entries(&stack).await,
        1,
        "refused requests are not journaled; the quarantined one is"
    );

    // Secrets never reach the logs, even when a wrong token is presented.
    let logs = stack.full_logs();
    assert!(logs.contains("webhook rejected"), "the rejections were logged");
    for secret in [HOTTOK, "wrong-token-0123456789", stack.sim.api_key()] {
        assert!(!logs.contains(secret), "a secret appeared in the logs");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepts_the_token_in_the_body_and_keeps_unknown_events() {
    let stack = Stack::spawn(StackOptions::default()).await;
    let mut body =
        Sale::one_off(1, &unique("HP"), "a@example.com").event("PURCHASE_APPROVED", &unique("e"), now_ms());
    body["hottok"] = json!(HOTTOK);
    let (code, b) = stack.post_raw(body.to_string().into_bytes(), None).await;
    assert_eq!((code, b["status"].as_str()), (200, Some("accepted")), "{b}");

    let unknown = json!({"id": unique("u"), "creation_date": now_ms(), "event": "BRAND_NEW_EVENT", "version": "2.0.0", "data": {"x": 1}});
    let (code, b) = stack.post(&unknown).await;
    assert_eq!((code, b["status"].as_str()), (200, Some("accepted")), "{b}");
    assert!(b["workflow_id"].is_null(), "routes nowhere, but is kept: {b}");
    assert_eq!(journal_entries(&stack).await, 2);

    // The stored copy has no token in it.
    let db = rusqlite_free_check(&stack);
    assert!(!db.contains(HOTTOK), "the hottok was stored in the journal");
}

/// Reads the database file as bytes: the token must not appear anywhere in it.
fn rusqlite_free_check(stack: &Stack) -> String {
    let mut all = Vec::new();
    for f in ["tollgate.db", "tollgate.db-wal"] {
        all.extend(std::fs::read(stack.dir.path().join(f)).unwrap_or_default());
    }
    String::from_utf8_lossy(&all).into_owned()
}
