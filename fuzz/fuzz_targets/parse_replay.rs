//! Stricter, not run in CI: a body that parsed once must parse again from its journal
//! copy (`stored_body`) to the same event, with no token: re-serialising the JSON (serde_json
//! `Value::to_string`) must not change anything the parser reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_domain::hotmart;

fuzz_target!(|body: &[u8]| {
    if let Ok(d) = hotmart::parse(body) {
        let again = hotmart::parse(d.stored_body.as_bytes())
            .unwrap_or_else(|e| panic!("stored_body does not re-parse ({e}): {}", d.stored_body));
        assert_eq!(again.hottok, None);
        assert_eq!(again.event, d.event, "re-parsing the journal copy changes the event");
        // Not asserted: `again.stored_body == d.stored_body`. serde_json (without its
        // `float_roundtrip` feature) can move a float's last digit on each re-parse, so the
        // journal copy is not byte-stable; see the report of issue 5.
    }
});
