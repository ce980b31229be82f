//! Reading a workflow history as JSON (`Stack::history`): event times and timers, for
//! tests and the bench's breakdowns. Event times are the server's clock.

use serde_json::Value;

/// History event types (temporal.api.enums.v1.EventType).
pub const WF_STARTED: i64 = 1;
pub const WFT_STARTED: i64 = 6;
pub const ACT_SCHEDULED: i64 = 10;
pub const ACT_STARTED: i64 = 11;
pub const ACT_COMPLETED: i64 = 12;
pub const TIMER_STARTED: i64 = 17;
pub const TIMER_FIRED: i64 = 18;

/// (event type, event time in epoch ms) of every event, in order.
pub fn events(history: &Value) -> Vec<(i64, i64)> {
    all(history)
        .filter_map(|e| Some((e["event_type"].as_i64()?, at_ms(e["event_time"].as_str()?)?)))
        .collect()
}

/// Each timer's (started at, length), in epoch ms and ms.
pub fn timers(history: &Value) -> Vec<(i64, i64)> {
    all(history)
        .filter(|e| e["event_type"].as_i64() == Some(TIMER_STARTED))
        .filter_map(|e| {
            let length = find(e, "start_to_fire_timeout").and_then(duration_ms)?;
            Some((at_ms(e["event_time"].as_str()?)?, length))
        })
        .collect()
}

fn all(history: &Value) -> impl Iterator<Item = &Value> {
    history["events"].as_array().into_iter().flatten()
}

pub fn at_ms(rfc3339: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339).ok().map(|t| t.timestamp_millis())
}

/// The first value under `key` anywhere in `v` (event attributes sit in a oneof).
fn find<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) => m.get(key).or_else(|| m.values().find_map(|v| find(v, key))),
        Value::Array(a) => a.iter().find_map(|v| find(v, key)),
        _ => None,
    }
}

/// A protobuf Duration as JSON: `{"seconds": s, "nanos": n}` or `"1.5s"`.
fn duration_ms(v: &Value) -> Option<i64> {
    if let Some(s) = v.as_str() {
        return s.strip_suffix('s')?.parse::<f64>().ok().map(|s| (s * 1000.0).round() as i64);
    }
    let secs = v["seconds"].as_i64().or_else(|| v["seconds"].as_str()?.parse().ok())?;
    Some(secs * 1000 + v["nanos"].as_i64().unwrap_or(0) / 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_timers_in_either_duration_shape() {
        let h = serde_json::json!({"events": [
            {"event_type": 1, "event_time": "2026-12-01T00:00:00Z"},
            {"event_type": 17, "event_time": "2026-12-01T00:00:01.500Z",
             "attributes": {"TimerStartedEventAttributes": {"start_to_fire_timeout": {"seconds": 3, "nanos": 250000000}}}},
            {"event_type": 17, "event_time": "2026-12-01T00:00:02Z",
             "attributes": {"timer_started_event_attributes": {"start_to_fire_timeout": "0.75s"}}},
        ]});
        let t0 = at_ms("2026-12-01T00:00:00Z").unwrap();
        assert_eq!(events(&h).len(), 3);
        assert_eq!(timers(&h), vec![(t0 + 1_500, 3_250), (t0 + 2_000, 750)]);
    }
}
