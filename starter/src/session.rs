//! Browser sessions of the dashboard and the staff console. Signing in with a token
//! creates a server-side session; the cookie holds only its random id (never the token),
//! `HttpOnly; SameSite=Strict`, and `Secure` when the service is reached over HTTPS
//! (`TOLLGATE_PUBLIC_URL=https://…` or `X-Forwarded-Proto: https` from the proxy). Each
//! session has its own CSRF token, which every form that changes something must echo.
//! Sessions live in this process: a restart signs everyone out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, header};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "tollgate_session";
/// How long a session lasts after sign-in.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// What the signed-in token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `TOLLGATE_DASHBOARD_TOKEN`: revenue figures only.
    Reader,
    /// `TOLLGATE_API_TOKEN`: the dashboard and the staff console.
    Staff,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub role: Role,
    pub csrf: String,
    expires: Instant,
}

impl Session {
    /// The form's CSRF token matches this session's (constant-time).
    pub fn csrf_ok(&self, presented: &str) -> bool {
        !presented.is_empty() && bool::from(presented.as_bytes().ct_eq(self.csrf.as_bytes()))
    }
}

#[derive(Clone, Default)]
pub struct Sessions(Arc<Mutex<HashMap<String, Session>>>);

impl Sessions {
    /// A new session; returns its id (the cookie value).
    pub fn create(&self, role: Role) -> String {
        let id = random_hex();
        let session = Session { role, csrf: random_hex(), expires: Instant::now() + LIFETIME };
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        all.retain(|_, s| s.expires > now);
        all.insert(id.clone(), session);
        id
    }

    /// The live session of a request's cookie.
    pub fn of(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers)?;
        let all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.get(&id).filter(|s| s.expires > Instant::now()).cloned()
    }

    pub fn end(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers) {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        }
    }
}

/// 256 random bits as hex.
fn random_hex() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// Whether the browser reached us over HTTPS: the configured public URL, or the proxy's
/// `X-Forwarded-Proto`.
pub fn over_https(configured: bool, headers: &HeaderMap) -> bool {
    configured
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// `Set-Cookie` for a session id (empty id and zero age: sign out).
pub fn set_cookie(id: &str, https: bool) -> HeaderValue {
    let age = if id.is_empty() { 0 } else { LIFETIME.as_secs() };
    let secure = if https { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={age}{secure}"))
        .expect("hex id and fixed attributes are a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_cookie_and_checks_its_csrf_token() {
        let sessions = Sessions::default();
        let id = sessions.create(Role::Staff);
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, format!("other=1; {COOKIE}={id}").parse().unwrap());
        let s = sessions.of(&headers).expect("session");
        assert_eq!(s.role, Role::Staff);
        assert!(s.csrf_ok(&s.csrf.clone()) && !s.csrf_ok("") && !s.csrf_ok(&id));
        sessions.end(&headers);
        assert!(sessions.of(&headers).is_none());
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_over_https() {
        let c = set_cookie("abc", false).to_str().unwrap().to_string();
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && !c.contains("Secure"), "{c}");
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        assert!(
            over_https(false, &h)
                && over_https(true, &HeaderMap::new())
                && !over_https(false, &HeaderMap::new())
        );
        assert!(set_cookie("abc", true).to_str().unwrap().ends_with("; Secure"));
    }
}
