//! When an access run finishes, and when it wakes up next. Pure, so the rule is a table
//! (`domain/tests/lifecycle.rs`) rather than branches inside the workflow loop.

use crate::access::{AccessState, Verdict};
use crate::hotmart::Millis;

/// What a run does after one pass (fold, verdict, TalentLMS sync, records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Events arrived during the pass: take another one at once.
    Again,
    /// Nothing can change access any more, or access ended and stayed quiet for the
    /// retention period: the run completes (a later event starts a fresh one).
    Finish,
    /// Sleep until this time, or until a signal, whichever comes first.
    SleepUntil(Millis),
    /// Sleep until a signal: nothing is due (lifetime access).
    WaitForSignal,
}

/// The timing knobs, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long a run stays open after access ends, for late and out-of-order events.
    pub retention_ms: Millis,
    /// When to retry a TalentLMS sync that did not reach the verdict.
    pub retry_ms: Millis,
    /// How often a purchase without a course link re-reads it.
    pub link_poll_ms: Millis,
}

/// What the run knows at the end of a pass.
#[derive(Debug, Clone, Copy)]
pub struct Pass<'a> {
    pub verdict: &'a Verdict,
    /// TalentLMS matches the verdict and nothing needs an operator's attention.
    pub in_sync: bool,
    /// Signals are waiting in the inbox.
    pub inbox_pending: bool,
    pub now: Millis,
    /// When the verdict or the facts last changed (`now` if never).
    pub last_change: Millis,
}

pub fn next(pass: Pass<'_>, timing: Timing) -> Next {
    let Pass { verdict, in_sync, inbox_pending, now, last_change } = pass;
    if inbox_pending {
        return Next::Again;
    }
    let quiet_until = last_change.saturating_add(timing.retention_ms);
    let waiting_for_link = verdict.state == AccessState::AwaitingLink;
    if in_sync && verdict.settled {
        return Next::Finish;
    }
    if in_sync && !verdict.entitled && !waiting_for_link && now >= quiet_until {
        return Next::Finish;
    }
    let wake_at = if !in_sync {
        now.saturating_add(timing.retry_ms)
    } else if waiting_for_link {
        now.saturating_add(timing.link_poll_ms)
    } else if let Some(until) = verdict.until {
        until
    } else if verdict.entitled {
        Millis::MAX
    } else {
        quiet_until
    };
    if wake_at == Millis::MAX { Next::WaitForSignal } else { Next::SleepUntil(wake_at) }
}
