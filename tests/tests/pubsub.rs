//! The Pub/Sub journal (`TOLLGATE_JOURNAL=pubsub`) against the official emulator: the
//! webhook answers once Pub/Sub has the event, `tollgate-starter forward` hands it to
//! Temporal, a duplicate changes nothing, a killed forwarder loses nothing, and a message
//! no version can read ends in the dead-letter topic and then the quarantine.

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::json;
use tollgate_domain::fixtures::Sale;
use tollgate_tests::{Stack, StackOptions, now_ms, unique, unique_product};

const WAIT: Duration = Duration::from_secs(60);

/// `None` only when the Pub/Sub tests are skipped on purpose.
fn emulator() -> Option<String> {
    match std::env::var("PUBSUB_EMULATOR_HOST") {
        Ok(host) => Some(host),
        Err(_) => {
            assert_eq!(
                std::env::var("TOLLGATE_SKIP_PUBSUB").as_deref(),
                Ok("1"),
                "PUBSUB_EMULATOR_HOST is not set: start the emulator (scripts/test.sh does; or `source \
                 scripts/lib.sh && ensure_pubsub_emulator`), or set TOLLGATE_SKIP_PUBSUB=1"
            );
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_journal_forwards_once_survives_a_killed_forwarder_and_dead_letters_poison() {
    let Some(host) = emulator() else { return };
    // Pub/Sub validates names: a real-looking project id per test.
    let project = format!("tollgate-{}", unique("").chars().rev().take(12).collect::<String>());
    let env = vec![
        ("TOLLGATE_JOURNAL".to_string(), "pubsub".to_string()),
        ("PUBSUB_PROJECT_ID".to_string(), project.clone()),
        ("PUBSUB_EMULATOR_HOST".to_string(), host.clone()),
    ];
    let stack = Stack::spawn(StackOptions { env, ..Default::default() }).await;
    // Setup is idempotent: everything the first time, nothing the second.
    let first = stack.starter_cmd(&["pubsub", "setup"]).await;
    assert_eq!(first.lines().count(), 4, "{first}");
    assert!(first.contains(&format!("projects/{project}/topics/tollgate-webhooks-dead-letter")), "{first}");
    assert_eq!(stack.starter_cmd(&["pubsub", "setup"]).await, "");

    let mut forwarder = stack.spawn_starter_cmd(&["forward"], "forward.log");
    let product = unique_product();
    stack.link(product, &["101"], &["--policy", "lifetime"]).await;

    // A delivery and its resend: both published (no dedupe at the door), applied once.
    let email = format!("{}@example.com", unique("ps"));
    let sale = Sale::one_off(product, &unique("HP"), &email);
    let body = sale.event("PURCHASE_APPROVED", &unique("e"), now_ms());
    for _ in 0..2 {
        let (code, answer) = stack.post(&body).await;
        assert_eq!((code, answer["status"].as_str()), (200, Some("accepted")), "{answer}");
    }
    stack.wait_enrolled(&email, &["101"], WAIT).await;
    stack.wait_revenue(WAIT, |rows| !rows.is_empty()).await;
    // Give the second copy time to arrive; it must change nothing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(stack.enroll_calls(), 1, "the duplicate enrolled again");
    assert_eq!(stack.revenue().await.len(), 1, "the duplicate booked revenue twice");

    // The forwarder dies (SIGKILL); what Pub/Sub acknowledged meanwhile waits there.
    forwarder.kill().await.unwrap();
    let late = format!("{}@example.com", unique("late"));
    let (code, _) = stack
        .post(&Sale::one_off(product, &unique("HP"), &late).event(
            "PURCHASE_APPROVED",
            &unique("e"),
            now_ms(),
        ))
        .await;
    assert_eq!(code, 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(stack.enrolled(&late).is_empty(), "nothing forwards while the forwarder is down");
    let _forwarder = stack.spawn_starter_cmd(&["forward"], "forward.log");
    stack.wait_enrolled(&late, &["101"], WAIT).await;

    // A message this version cannot read (another version's shape) is retried, dead-lettered
    // after 5 attempts and shown in the quarantine.
    let poison = unique("poison");
    let data = base64::engine::general_purpose::STANDARD.encode(br#"{"not":"a hotmart body"}"#);
    let publish = json!({"messages": [{"data": data, "attributes": {"event_id": poison, "workflow_id": "purchase-X"}}]});
    let r = stack
        .http
        .post(format!("http://{host}/v1/projects/{project}/topics/tollgate-webhooks:publish"))
        .json(&publish)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, page) = stack.api("GET", "/api/journal/quarantine", None).await;
        let found =
            page["items"].as_array().into_iter().flatten().find(|q| q["id"] == poison.as_str()).cloned();
        if let Some(q) = found {
            assert!(q["reason"].as_str().unwrap().contains("dead-lettered by Pub/Sub after 5"), "{q}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the poison message never reached the quarantine: {page}\n{}",
            std::fs::read_to_string(stack.dir.path().join("forward.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
