//! `ingress::receive` on arbitrary bytes: what POST /webhooks/hotmart does with an
//! authenticated body.
//!
//! Invariants (the handler relies on them):
//! - it never panics (a panic would be a 500 / a dead request task);
//! - it refuses (the only 400) exactly the bodies that are not JSON: any JSON is kept;
//! - the stored copy is JSON, equal to the body minus its top-level `hottok` members, and
//!   keeps the body's bytes when there is no token;
//! - the journal key is never empty; a refusal or a quarantine always carries a reason.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_domain::ingress;

fuzz_target!(|body: &[u8]| {
    let json = serde_json::from_slice::<serde_json::Value>(body);
    match ingress::receive(body) {
        Ok(r) => {
            let mut want = json.unwrap_or_else(|e| panic!("received a body that is not JSON ({e})"));
            let stored: serde_json::Value = serde_json::from_str(&r.stored)
                .unwrap_or_else(|e| panic!("stored copy is not JSON ({e}): {:?}", r.stored));
            let had_token = want.as_object_mut().is_some_and(|o| o.remove("hottok").is_some());
            assert_eq!(stored, want, "stored copy differs from the body minus its token");
            if !had_token {
                assert_eq!(r.stored.as_bytes(), body, "stored copy is not byte-faithful");
            }
            assert!(!r.key.is_empty());
            if let Err(e) = &r.event {
                assert!(!e.to_string().is_empty(), "empty quarantine reason for {e:?}");
            }
        }
        Err(e) => {
            assert!(json.is_err(), "refused JSON: {e}");
            assert!(!e.to_string().is_empty(), "empty 400 reason for {e:?}");
        }
    }
});
