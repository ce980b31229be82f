//! When an access run finishes or wakes, as a table.

use tollgate_domain::access::{AccessState, Verdict};
use tollgate_domain::hotmart::Millis;
use tollgate_domain::lifecycle::{Next, Pass, Timing, next};

const NOW: Millis = 1_760_000_000_000;
const HOUR: Millis = 3_600_000;
const DAY: Millis = 24 * HOUR;
const TIMING: Timing = Timing { retention_ms: 30 * DAY, retry_ms: 5 * 60_000, link_poll_ms: 60_000 };

fn v(state: AccessState, entitled: bool, until: Option<Millis>, settled: bool) -> Verdict {
    Verdict { state, entitled, until, settled, reason: String::new() }
}

#[test]
fn finish_and_wake_table() {
    use AccessState::*;
    let active_until = v(Active, true, Some(NOW + 10 * DAY), false);
    let lifetime = v(Active, true, None, false);
    let settled = v(Active, true, None, true);
    let revoked = v(Revoked, false, None, false);
    let awaiting_link = v(AwaitingLink, false, None, false);
    let awaiting_payment = v(AwaitingPayment, false, None, false);
    // (name, verdict, in_sync, inbox_pending, last_change, want)
    let cases: Vec<(&str, &Verdict, bool, bool, Millis, Next)> = vec![
        ("events arrived during the pass", &settled, true, true, NOW, Next::Again),
        ("settled and in sync finishes", &settled, true, false, NOW, Next::Finish),
        (
            "settled but TalentLMS behind retries",
            &settled,
            false,
            false,
            NOW,
            Next::SleepUntil(NOW + 5 * 60_000),
        ),
        (
            "entitled until a deadline sleeps to it",
            &active_until,
            true,
            false,
            NOW,
            Next::SleepUntil(NOW + 10 * DAY),
        ),
        ("lifetime waits for a signal", &lifetime, true, false, NOW, Next::WaitForSignal),
        (
            "entitled but out of sync retries first",
            &active_until,
            false,
            false,
            NOW,
            Next::SleepUntil(NOW + 5 * 60_000),
        ),
        ("no link polls", &awaiting_link, true, false, NOW - 40 * DAY, Next::SleepUntil(NOW + 60_000)),
        (
            "revoked, recent change, stays for retention",
            &revoked,
            true,
            false,
            NOW - DAY,
            Next::SleepUntil(NOW + 29 * DAY),
        ),
        ("revoked and quiet for retention finishes", &revoked, true, false, NOW - 30 * DAY, Next::Finish),
        (
            "revoked, quiet, but out of sync retries",
            &revoked,
            false,
            false,
            NOW - 30 * DAY,
            Next::SleepUntil(NOW + 5 * 60_000),
        ),
        (
            "awaiting payment stays for retention",
            &awaiting_payment,
            true,
            false,
            NOW,
            Next::SleepUntil(NOW + 30 * DAY),
        ),
        (
            "awaiting payment, long quiet, finishes",
            &awaiting_payment,
            true,
            false,
            NOW - 31 * DAY,
            Next::Finish,
        ),
    ];
    let mut failures = Vec::new();
    for (name, verdict, in_sync, inbox_pending, last_change, want) in cases {
        let got = next(Pass { verdict, in_sync, inbox_pending, now: NOW, last_change }, TIMING);
        if got != want {
            failures.push(format!("{name}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn a_deadline_at_the_end_of_time_is_a_wait_for_a_signal() {
    let huge = Timing { retry_ms: Millis::MAX, ..TIMING };
    let pass = Pass {
        verdict: &v(AccessState::Active, true, None, false),
        in_sync: false,
        inbox_pending: false,
        now: NOW,
        last_change: NOW,
    };
    assert_eq!(next(pass, huge), Next::WaitForSignal);
}
