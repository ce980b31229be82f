//! One token check for every door: the webhook's hottok, the staff API's bearer token,
//! and the dashboard's bearer token or cookie. Comparisons are constant-time and every
//! accepted token is compared, so timing tells neither the token nor which one matched.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq;
use tollgate_service::Secret;
use tollgate_service::settings::HttpSettings;

use crate::error::ApiError;
use crate::session::Role;
use crate::startup::AppState;

#[derive(Clone)]
pub struct Tokens {
    hottok: Secret,
    api: Option<Secret>,
    dashboard: Option<Secret>,
}

impl Tokens {
    pub fn new(http: &HttpSettings) -> anyhow::Result<Self> {
        let hottok = http
            .hottok
            .clone()
            .ok_or_else(|| anyhow::anyhow!("TOLLGATE_HOTTOK is not set: every webhook would be refused"))?;
        Ok(Self { hottok, api: http.api_token.clone(), dashboard: http.dashboard_token.clone() })
    }

    /// The Hotmart webhook's token.
    pub fn hotmart(&self, presented: &[u8]) -> bool {
        matches(presented, [Some(&self.hottok)])
    }

    /// The staff API: its own token only.
    pub fn staff(&self, presented: &[u8]) -> bool {
        matches(presented, [self.api.as_ref()])
    }

    /// Revenue readers: the API token or the read-only dashboard token.
    pub fn reader(&self, presented: &[u8]) -> bool {
        matches(presented, [self.api.as_ref(), self.dashboard.as_ref()])
    }

    /// The role a sign-in token opens, if any.
    pub fn role(&self, presented: &[u8]) -> Option<Role> {
        if self.staff(presented) {
            Some(Role::Staff)
        } else if self.reader(presented) {
            Some(Role::Reader)
        } else {
            None
        }
    }

    pub fn api_enabled(&self) -> bool {
        self.api.is_some()
    }

    pub fn readers_enabled(&self) -> bool {
        self.api.is_some() || self.dashboard.is_some()
    }
}

fn matches<'a>(presented: &[u8], accepted: impl IntoIterator<Item = Option<&'a Secret>>) -> bool {
    // An empty configured token never matches.
    accepted.into_iter().flatten().fold(false, |ok, t| {
        let t = t.expose().as_bytes();
        ok | (!t.is_empty() & bool::from(presented.ct_eq(t)))
    })
}

/// The `Authorization: Bearer` token of a request, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Extractor that admits only requests with the staff API's bearer token.
pub struct Staff;

impl FromRequestParts<AppState> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match bearer(&parts.headers) {
            Some(t) if state.tokens.staff(t.as_bytes()) => Ok(Staff),
            _ => Err(ApiError::unauthorized("missing or wrong bearer token")),
        }
    }
}

/// Extractor: a revenue reader with a valid bearer token or a signed-in session.
pub struct Reader;

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match bearer(&parts.headers) {
            Some(t) if state.tokens.reader(t.as_bytes()) => Ok(Reader),
            None if state.sessions.of(&parts.headers).is_some() => Ok(Reader),
            _ => Err(ApiError::unauthorized("missing or wrong token")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(api: Option<&str>, dashboard: Option<&str>) -> Tokens {
        let secret = |v: Option<&str>| v.map(|v| Secret::from(v.to_string()));
        Tokens { hottok: Secret::from("hot".to_string()), api: secret(api), dashboard: secret(dashboard) }
    }

    #[test]
    fn each_door_takes_its_own_tokens() {
        let t = tokens(Some("api"), Some("dash"));
        assert!(t.hotmart(b"hot") && !t.hotmart(b"api") && !t.hotmart(b""));
        assert!(t.staff(b"api") && !t.staff(b"dash") && !t.staff(b"hot"));
        assert!(t.reader(b"api") && t.reader(b"dash") && !t.reader(b"hot") && !t.reader(b"da"));
        let off = tokens(None, None);
        assert!(!off.staff(b"") && !off.reader(b""));
    }
}
