//! `hotmart::parse` on arbitrary bytes: what POST /webhooks/hotmart does with a body.
//!
//! Invariants (the handler relies on them):
//! - it never panics (a panic would be a 500 / a dead request task, not a 400);
//! - `Ok`: `stored_body` (what the journal keeps) is a JSON object without `hottok`;
//! - `Err`: the Display text, which becomes the 400 body, is not empty.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_domain::hotmart;

fuzz_target!(|body: &[u8]| {
    match hotmart::parse(body) {
        Ok(d) => {
            let stored: serde_json::Value = serde_json::from_str(&d.stored_body)
                .unwrap_or_else(|e| panic!("stored_body is not JSON ({e}): {:?}", d.stored_body));
            let obj = stored.as_object().expect("stored_body is a JSON object");
            assert!(!obj.contains_key("hottok"), "stored_body keeps the hottok: {}", d.stored_body);
            // The envelope fields the parser required are still there.
            assert!(obj.contains_key("id") && obj.contains_key("data"), "{}", d.stored_body);
        }
        Err(e) => {
            let reason = e.to_string();
            assert!(!reason.is_empty(), "empty 400 reason for {e:?}");
            if let Some(field) = e.field() {
                assert!(!field.is_empty(), "empty field name for {e:?}");
            }
        }
    }
    // The pre-auth token reader runs on the same untrusted bytes first.
    let _ = hotmart::body_hottok(body);
});
