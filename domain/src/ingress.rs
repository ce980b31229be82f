//! What the webhook makes of an authenticated body. Once a body is JSON it is kept,
//! whatever its shape: the journal stores the bytes as received (minus the token), under
//! a key that recognises resends, with the event when this parser understands it and the
//! reason when it does not (a quarantined entry, redriven after the parser learns the
//! shape). Only a body that is not JSON at all is refused.

use serde_json::Value;

use crate::error::ParseError;
use crate::hotmart::{self, HotmartEvent};

/// Bumped whenever the parser learns a shape, so a quarantined entry says which parser
/// refused it.
pub const PARSER_VERSION: u32 = 2;

/// An authenticated JSON body, ready to journal.
#[derive(Debug, Clone)]
pub struct Received {
    /// The journal key: the envelope `id`, or a digest of the body when it has no usable
    /// one (so a resend of an odd body is still recognised).
    pub key: String,
    /// The envelope's `event`, when it names one (for the quarantine listing).
    pub event_name: Option<String>,
    /// The body's own `hottok`, if any.
    pub hottok: Option<String>,
    /// The body as received with every top-level `hottok` member removed: the audit copy.
    pub stored: String,
    /// The event, or why this parser cannot make one of the body.
    pub event: Result<HotmartEvent, ParseError>,
}

/// Reads an authenticated body. Errs only when it is not JSON.
pub fn receive(body: &[u8]) -> Result<Received, ParseError> {
    let root: Value = serde_json::from_slice(body).map_err(|e| ParseError::NotJson(e.to_string()))?;
    // serde_json checked the bytes are UTF-8 JSON.
    let text = std::str::from_utf8(body).map_err(|e| ParseError::NotJson(e.to_string()))?;
    let stored = match &root {
        Value::Object(o) if o.contains_key("hottok") => strip_member(text, "hottok"),
        _ => text.to_string(),
    };
    let obj = root.as_object();
    let field = |name: &str| obj.and_then(|o| o.get(name));
    let key = match field("id") {
        Some(Value::String(s)) if (1..=200).contains(&s.len()) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => format!("body-{:016x}", fnv1a(stored.as_bytes())),
    };
    Ok(Received {
        key,
        event_name: field("event").and_then(Value::as_str).map(str::to_string),
        hottok: field("hottok").and_then(Value::as_str).map(str::to_string),
        event: hotmart::event_of(&root),
        stored,
    })
}

/// 64-bit FNV-1a: a stable digest (same on every machine and version) for keys.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// Removes every top-level member `name` of a JSON object text, leaving every other byte
/// as it was. `text` must be valid JSON (the caller parsed it).
fn strip_member(text: &str, name: &str) -> String {
    let b = text.as_bytes();
    let mut spans = Vec::new(); // byte ranges to cut
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return text.to_string();
    }
    i += 1;
    let mut prev_end = i; // end of the previous member (or just after `{`)
    let mut first = true;
    loop {
        let start = skip_ws(b, i);
        if b.get(start) != Some(&b'"') {
            break; // `}` of an empty object
        }
        let key_end = skip_string(b, start);
        let colon = skip_ws(b, key_end);
        let value_start = skip_ws(b, colon + 1);
        let value_end = skip_value(b, value_start);
        let next = skip_ws(b, value_end);
        let comma = b.get(next) == Some(&b',');
        // Compared unescaped: `"hott\u006fk"` is the same key.
        if serde_json::from_str::<String>(&text[start..key_end]).is_ok_and(|k| k == name) {
            // Cut the member and one adjacent comma, so the object stays valid.
            spans.push(match (first, comma) {
                (true, true) => (start, skip_ws(b, next + 1)),
                (true, false) => (start, value_end),
                (false, _) => (prev_end, value_end),
            });
            if !first {
                // The next cut starts after this one (two tokens in a row).
                prev_end = value_end;
            }
        } else {
            first = false;
            prev_end = value_end;
        }
        if !comma {
            break;
        }
        i = next + 1;
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (s, e) in spans {
        out.push_str(&text[at..s]);
        at = e;
    }
    out.push_str(&text[at..]);
    out
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// `b[i]` is the opening quote; returns the index after the closing one.
fn skip_string(b: &[u8], mut i: usize) -> usize {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// Returns the index after the value starting at `b[i]`.
fn skip_value(b: &[u8], mut i: usize) -> usize {
    match b.get(i) {
        Some(b'"') => skip_string(b, i),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            while i < b.len() {
                match b[i] {
                    b'"' => {
                        i = skip_string(b, i);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            i
        }
        _ => {
            while i < b.len() && !matches!(b[i], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                i += 1;
            }
            i
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_only_the_top_level_token_and_keeps_every_other_byte() {
        for (given, want) in [
            (r#"{"hottok":"s","id":"1"}"#, r#"{"id":"1"}"#),
            (r#"{ "id" : "1" ,  "hottok" : "s" }"#, r#"{ "id" : "1" }"#),
            (
                r#"{"a":{"hottok":"x"},"hottok":"s","b":[1,{"c":"}"}]}"#,
                r#"{"a":{"hottok":"x"},"b":[1,{"c":"}"}]}"#,
            ),
            (r#"{"hottok":"s"}"#, r#"{}"#),
            ("{\n  \"hottok\": \"s\",\n  \"id\": 1.50\n}", "{\n  \"id\": 1.50\n}"),
            (r#"{"hottok":"a","x":"\"hottok\"","hottok":"b"}"#, r#"{"x":"\"hottok\""}"#),
            (r#"{"hott\u006fk":"s","id":"1"}"#, r#"{"id":"1"}"#),
            // Found by the fuzzer: two tokens in a row after another member.
            (r#"{"id":"1","hottok":"a","hottok":"b","data":{}}"#, r#"{"id":"1","data":{}}"#),
            (r#"{"id":"1", "hottok":"a" , "hottok":"b"}"#, r#"{"id":"1"}"#),
            (r#"{"hottok":"a","hottok":"b","id":"1","hottok":"c","hottok":"d"}"#, r#"{"id":"1"}"#),
            (r#"{"id":"1"}"#, r#"{"id":"1"}"#),
        ] {
            let got = strip_member(given, "hottok");
            assert_eq!(got, want, "{given}");
            let v: Value = serde_json::from_str(&got).expect("still JSON");
            assert!(v.get("hottok").is_none());
        }
    }

    #[test]
    fn any_json_is_received_and_only_non_json_is_refused() {
        for body in
            [&br#"[1,2]"#[..], br#""x""#, b"null", br#"{"id":"e1"}"#, br#"{"event":"X","hottok":"t"}"#]
        {
            let r = receive(body).expect("JSON is received");
            assert!(r.event.is_err(), "{r:?}");
            assert!(!r.stored.contains("hottok"));
        }
        assert!(matches!(receive(b"{nope").unwrap_err(), ParseError::NotJson(_)));
        assert!(matches!(receive(b"\xff\xfe").unwrap_err(), ParseError::NotJson(_)));
        let a = receive(br#"{"event":"X"}"#).unwrap();
        assert!(a.key.starts_with("body-"), "no id: a digest key");
        assert_eq!(a.key, receive(br#"{"event":"X"}"#).unwrap().key, "stable, so resends are recognised");
        assert_eq!(a.event_name.as_deref(), Some("X"));
        assert_eq!(receive(br#"{"id":12}"#).unwrap().key, "12");
    }
}
