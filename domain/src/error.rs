//! Why a webhook body could not be turned into an event.

/// Why a body was refused. Shown to the caller in the 400 body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("missing required field `{0}`")]
    Missing(&'static str),
    #[error("field `{field}` is invalid: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl ParseError {
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::NotJson(_) => None,
            Self::Missing(f) | Self::Invalid { field: f, .. } => Some(f),
        }
    }
}
