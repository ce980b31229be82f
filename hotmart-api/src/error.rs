use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Hotmart API configuration: {0}")]
    Config(String),
    #[error("{op}: {detail}")]
    Transport { op: String, detail: String },
    /// A non-2xx answer; `error` is Hotmart's `error` code when it sent one.
    #[error("{op}: HTTP {status} {error}: {description}")]
    Status { op: String, status: u16, error: String, description: String, retry_after: Option<Duration> },
    #[error("{op}: cannot read the answer: {detail}")]
    Decode { op: String, detail: String },
}

impl Error {
    /// 429, 5xx and transport failures: worth another attempt.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport { .. } => true,
            Error::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    /// The server's advertised reset, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub(crate) fn from_response(
        op: &str,
        status: u16,
        headers: &reqwest::header::HeaderMap,
        body: &[u8],
    ) -> Self {
        #[derive(serde::Deserialize, Default)]
        struct Body {
            #[serde(default)]
            error: String,
            #[serde(default)]
            error_description: String,
        }
        let b: Body = serde_json::from_slice(body).unwrap_or_default();
        Error::Status {
            op: op.into(),
            status,
            error: if b.error.is_empty() { "unknown".into() } else { b.error },
            // Bounded: an HTML error page is not worth a screenful of log.
            description: b.error_description.chars().take(300).collect(),
            retry_after: reset_of(headers),
        }
    }
}

/// `RateLimit-Reset` (seconds), else `Retry-After`.
pub(crate) fn reset_of(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    ["ratelimit-reset", "retry-after"]
        .iter()
        .find_map(|h| {
            headers.get(*h)?.to_str().ok()?.trim().parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0)
        })
        .map(Duration::from_secs_f64)
}
