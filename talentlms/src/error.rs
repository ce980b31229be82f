use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

/// Used when a 429 carries neither `Retry-After` nor `X-RateLimit-Reset`
/// (TalentLMS windows are 5 s long).
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// A failed TalentLMS call. `op` names the call ("enroll user 34 in course 12").
/// Never contains the API key.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("TalentLMS rate limit hit during {op}, retry in {}s: {message}", retry_after.as_secs_f32().ceil())]
    RateLimited { op: String, retry_after: Duration, message: String },

    #[error("TalentLMS server error (HTTP {status}) during {op}: {message}")]
    Server { op: String, status: u16, message: String },

    #[error("TalentLMS refused the API key (HTTP {status}) during {op}: {message}")]
    Unauthorized { op: String, status: u16, message: String },

    #[error("TalentLMS rejected {op}: {message}")]
    Rejected { op: String, status: u16, kind: String, message: String },

    #[error("could not reach TalentLMS during {op}: {source}")]
    Transport {
        op: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("unexpected TalentLMS response to {op}: {detail}")]
    Decode { op: String, detail: String },

    #[error("invalid TalentLMS client configuration: {0}")]
    Config(String),
}

impl Error {
    /// Worth retrying later: rate limits, 5xx/408, and network failures.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Server { .. } | Self::Transport { .. })
    }

    /// How long to wait before retrying a rate-limited call.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// A create failed because the email or login is taken.
    pub fn is_conflict(&self) -> bool {
        match self {
            Self::Rejected { status, message, .. } => *status == 409 || contains(message, "already exists"),
            _ => false,
        }
    }

    /// The user id names no TalentLMS user (deleted by hand, or never this instance's).
    pub fn is_unknown_user(&self) -> bool {
        self.rejected_with("user does not exist")
    }

    /// The HTTP status TalentLMS answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Server { status, .. }
            | Self::Unauthorized { status, .. }
            | Self::Rejected { status, .. } => Some(*status),
            Self::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    /// TalentLMS's message, when the failure came from TalentLMS.
    pub fn message(&self) -> Option<&str> {
        match self {
            Self::RateLimited { message, .. }
            | Self::Server { message, .. }
            | Self::Unauthorized { message, .. }
            | Self::Rejected { message, .. } => Some(message),
            _ => None,
        }
    }

    /// A 4xx whose message says `needle` (TalentLMS v1 signals states like
    /// "already enrolled" only through the message text).
    pub(crate) fn rejected_with(&self, needle: &str) -> bool {
        matches!(self, Self::Rejected { message, .. } if contains(message, needle))
    }

    pub(crate) fn transport(op: &str, source: reqwest::Error) -> Self {
        if source.is_decode() {
            Self::Decode { op: op.into(), detail: source.to_string() }
        } else {
            Self::Transport { op: op.into(), source: source.without_url() }
        }
    }

    pub(crate) fn from_response(op: &str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        let (kind, message) =
            parse_error_body(body).unwrap_or_else(|| (String::new(), fallback_message(status, body)));
        let op = op.to_owned();
        match status.as_u16() {
            429 => Self::RateLimited { op, retry_after: retry_after(headers, SystemTime::now()), message },
            401 | 403 => Self::Unauthorized { op, status: status.as_u16(), message },
            408 | 500..=599 => Self::Server { op, status: status.as_u16(), message },
            s => Self::Rejected { op, status: s, kind, message },
        }
    }
}

fn contains(haystack: &str, needle: &str) -> bool {
    haystack.to_ascii_lowercase().contains(needle)
}

fn parse_error_body(body: &[u8]) -> Option<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Body {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        #[serde(default, rename = "type")]
        kind: Option<String>,
        message: String,
    }
    let b: Body = serde_json::from_slice(body).ok()?;
    Some((b.error.kind.unwrap_or_default(), b.error.message))
}

/// Non-JSON error bodies (proxies, HTML pages): a short excerpt, or the status reason.
fn fallback_message(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        status.canonical_reason().unwrap_or("no error message").to_owned()
    } else {
        text.chars().take(200).collect()
    }
}

/// `Retry-After` (seconds), else `X-RateLimit-Reset` (epoch seconds; small values are
/// taken as seconds from now), else a default. Clamped to [1 s, 1 h].
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Duration {
    let num = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<u64>().ok();
    let wait = if let Some(secs) = num("retry-after") {
        Duration::from_secs(secs)
    } else if let Some(reset) = num("x-ratelimit-reset") {
        if reset < 1_000_000_000 {
            Duration::from_secs(reset)
        } else {
            let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
            Duration::from_secs(reset).saturating_sub(now)
        }
    } else {
        DEFAULT_RETRY_AFTER
    };
    wait.clamp(Duration::from_secs(1), MAX_RETRY_AFTER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn retry_after_prefers_retry_after_then_reset_then_default() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            retry_after(&headers(&[("retry-after", "7"), ("x-ratelimit-reset", "1700000003")]), now),
            Duration::from_secs(7)
        );
        assert_eq!(
            retry_after(&headers(&[("x-ratelimit-reset", "1700000003")]), now),
            Duration::from_secs(3)
        );
        assert_eq!(retry_after(&headers(&[("x-ratelimit-reset", "4")]), now), Duration::from_secs(4));
        assert_eq!(retry_after(&headers(&[]), now), DEFAULT_RETRY_AFTER);
        // A reset already in the past still waits a little; absurd values are capped.
        assert_eq!(
            retry_after(&headers(&[("x-ratelimit-reset", "1699999990")]), now),
            Duration::from_secs(1)
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "999999")]), now), MAX_RETRY_AFTER);
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), DEFAULT_RETRY_AFTER);
    }

    #[test]
    fn statuses_map_to_variants() {
        let body =
            br#"{"error":{"type":"invalid_request_error","message":"The requested course does not exist"}}"#;
        let e = Error::from_response(
            "enroll user 34 in course 12",
            StatusCode::NOT_FOUND,
            &HeaderMap::new(),
            body,
        );
        assert!(matches!(&e, Error::Rejected { status: 404, kind, .. } if kind == "invalid_request_error"));
        assert_eq!(
            e.to_string(),
            "TalentLMS rejected enroll user 34 in course 12: The requested course does not exist"
        );
        assert!(!e.is_retryable());

        let e = Error::from_response(
            "x",
            StatusCode::BAD_GATEWAY,
            &HeaderMap::new(),
            b"<html><body>Bad Gateway</body></html>",
        );
        assert!(matches!(&e, Error::Server { status: 502, message, .. } if message.contains("Bad Gateway")));
        assert!(e.is_retryable());

        let e = Error::from_response("x", StatusCode::FORBIDDEN, &HeaderMap::new(), b"");
        assert!(matches!(&e, Error::Unauthorized { status: 403, message, .. } if message == "Forbidden"));
        assert!(!e.is_retryable());

        let e = Error::from_response(
            "x",
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[("retry-after", "2")]),
            b"{}",
        );
        assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
        assert!(e.is_retryable());

        let dup = br#"{"error":{"type":"invalid_request_error","message":"A user with the same email address already exists"}}"#;
        assert!(Error::from_response("x", StatusCode::BAD_REQUEST, &HeaderMap::new(), dup).is_conflict());
    }
}
