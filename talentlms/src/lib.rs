//! Client for the TalentLMS REST API v1: users, courses and enrollments.
//!
//! Calls are idempotent where TalentLMS allows it: "already enrolled" and "not enrolled"
//! are outcomes, not errors, and [`Client::ensure_user`] survives create races.

mod error;
mod model;

use std::fmt;
use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};
use reqwest::RequestBuilder;
use serde::de::{DeserializeOwned, IgnoredAny};

pub use error::Error;
pub use model::{
    Course, CourseDetail, CourseId, CourseUser, EnrollOutcome, NewUser, RateLimit, UnenrollOutcome, User,
    UserCourse, UserId,
};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Path-argument values keep only RFC 3986 unreserved characters; `@ , : / +` etc. are
/// encoded so they cannot be read as argument separators.
const ARG_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// A TalentLMS school. Cheap to clone (shares one connection pool).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// `{school}/api/v1/`
    api: String,
    api_key: String,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("api", &self.api).field("api_key", &"<redacted>").finish()
    }
}

impl Client {
    /// `base_url` is the school root (`https://myschool.talentlms.com`); `/api/v1/` is appended.
    pub fn new(base_url: &str, api_key: impl Into<String>) -> Result<Self, Error> {
        Self::with_timeout(base_url, api_key, REQUEST_TIMEOUT)
    }

    /// Like [`Client::new`] with a different whole-request timeout.
    pub fn with_timeout(
        base_url: &str,
        api_key: impl Into<String>,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let api_key = api_key.into();
        if api_key.trim().is_empty() {
            return Err(Error::Config("the API key is empty".into()));
        }
        let url = reqwest::Url::parse(base_url.trim())
            .map_err(|e| Error::Config(format!("invalid base URL {base_url:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(Error::Config(format!("base URL {base_url:?} must be an http(s) URL with a host")));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // Not echoed: it may hold a secret.
            return Err(Error::Config("the base URL must not contain credentials".into()));
        }
        let root = url.as_str().trim_end_matches('/');
        let root = root.strip_suffix("/api/v1").unwrap_or(root);
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(timeout)
            .user_agent(concat!("tollgate-talentlms/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("cannot build HTTP client: {e}")))?;
        Ok(Self { http, api: format!("{root}/api/v1/"), api_key })
    }

    fn get(&self, path: &str) -> RequestBuilder {
        self.http.get(format!("{}{path}", self.api))
    }

    fn post(&self, path: &str, form: &[(&str, &str)]) -> RequestBuilder {
        self.http.post(format!("{}{path}", self.api)).form(form)
    }

    async fn call<T: DeserializeOwned>(&self, op: &str, req: RequestBuilder) -> Result<T, Error> {
        let started = Instant::now();
        let resp = req
            .basic_auth(&self.api_key, Some(""))
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| Error::transport(op, e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(|e| Error::transport(op, e))?;
        tracing::debug!(
            op,
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "TalentLMS call"
        );
        if !status.is_success() {
            return Err(Error::from_response(op, status, &headers, &body));
        }
        serde_json::from_slice(&body).map_err(|e| Error::Decode { op: op.into(), detail: e.to_string() })
    }

    async fn lookup<T: DeserializeOwned>(
        &self,
        op: &str,
        path: &str,
        absent: &str,
    ) -> Result<Option<T>, Error> {
        match self.call(op, self.get(path)).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.rejected_with(absent) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn find_user_by_email(&self, email: &str) -> Result<Option<User>, Error> {
        let op = format!("find user by email {email}");
        self.lookup(&op, &format!("users/{}", args(&[("email", email)])), "user does not exist").await
    }

    pub async fn user(&self, id: &UserId) -> Result<Option<User>, Error> {
        let op = format!("get user {id}");
        self.lookup(&op, &format!("users/{}", args(&[("id", id.as_str())])), "user does not exist").await
    }

    /// Fails with an error whose [`Error::is_conflict`] is true if the email or login is taken.
    pub async fn create_user(&self, new: &NewUser) -> Result<User, Error> {
        let op = format!("create user {}", new.email);
        let form = [
            ("first_name", new.first_name.as_str()),
            ("last_name", new.last_name.as_str()),
            ("email", new.email.as_str()),
            ("login", new.login.as_str()),
            ("password", new.password.as_str()),
        ];
        self.call(&op, self.post("usersignup", &form)).await
    }

    /// Finds the user by email or creates one (login derived from the email, random password).
    /// Safe under concurrency: a create that conflicts is followed by another lookup. Empty
    /// names are replaced (TalentLMS requires both) by the email's local part and "-".
    pub async fn ensure_user(&self, email: &str, first_name: &str, last_name: &str) -> Result<User, Error> {
        if let Some(user) = self.find_user_by_email(email.trim()).await? {
            return Ok(user);
        }
        for suffixed in [false, true] {
            let err =
                match self.create_user(&NewUser::for_student(email, first_name, last_name, suffixed)).await {
                    Ok(user) => return Ok(user),
                    Err(e) if e.is_conflict() => e,
                    Err(e) => return Err(e),
                };
            // Either another worker created this email first, or the login is someone else's.
            if let Some(user) = self.find_user_by_email(email.trim()).await? {
                return Ok(user);
            }
            if suffixed {
                return Err(err);
            }
        }
        unreachable!("the loop returns")
    }

    /// Enrolls as learner. Enrolling twice is `AlreadyEnrolled`, not an error.
    pub async fn enroll(&self, user: &UserId, course: &CourseId) -> Result<EnrollOutcome, Error> {
        let op = format!("enroll user {user} in course {course}");
        let form = [("user_id", user.as_str()), ("course_id", course.as_str()), ("role", "learner")];
        match self.call::<IgnoredAny>(&op, self.post("addusertocourse", &form)).await {
            Ok(_) => Ok(EnrollOutcome::Enrolled),
            Err(e) if e.rejected_with("already enrolled") => Ok(EnrollOutcome::AlreadyEnrolled),
            Err(e) => Err(e),
        }
    }

    /// Removing a user who is not enrolled is `NotEnrolled`, not an error.
    pub async fn unenroll(&self, user: &UserId, course: &CourseId) -> Result<UnenrollOutcome, Error> {
        let op = format!("remove user {user} from course {course}");
        let path = format!(
            "removeuserfromcourse/{}",
            args(&[("course_id", course.as_str()), ("user_id", user.as_str())])
        );
        match self.call::<IgnoredAny>(&op, self.get(&path)).await {
            Ok(_) => Ok(UnenrollOutcome::Removed),
            Err(e) if e.rejected_with("not enrolled") => Ok(UnenrollOutcome::NotEnrolled),
            Err(e) => Err(e),
        }
    }

    pub async fn course(&self, id: &CourseId) -> Result<Option<Course>, Error> {
        let op = format!("get course {id}");
        self.lookup(&op, &format!("courses/{}", args(&[("id", id.as_str())])), "course does not exist").await
    }

    /// The course with the users enrolled in it; `None` when the course does not exist.
    pub async fn course_users(&self, id: &CourseId) -> Result<Option<CourseDetail>, Error> {
        let op = format!("get course {id}");
        self.lookup(&op, &format!("courses/{}", args(&[("id", id.as_str())])), "course does not exist").await
    }

    pub async fn courses(&self) -> Result<Vec<Course>, Error> {
        self.call("list courses", self.get("courses")).await
    }

    pub async fn rate_limit(&self) -> Result<RateLimit, Error> {
        self.call("get rate limit", self.get("ratelimit")).await
    }
}

/// `key:value,key:value` with encoded values.
fn args(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}:{}", utf8_percent_encode(v, ARG_VALUE)))
        .collect::<Vec<_>>()
        .join(",")
}

impl NewUser {
    /// A learner account for `email`: login derived from the email (with a random suffix
    /// when that login is taken by someone else), a strong random password, and names
    /// TalentLMS accepts (both are required there).
    pub fn for_student(email: &str, first_name: &str, last_name: &str, login_suffix: bool) -> Self {
        let email = email.trim();
        let first = Some(first_name.trim())
            .filter(|s| !s.is_empty())
            .unwrap_or(email.split('@').next().unwrap_or(email));
        let last = Some(last_name.trim()).filter(|s| !s.is_empty()).unwrap_or("-");
        let mut login = login_for(email);
        if login_suffix {
            login = format!("{login}-{}", rand::rng().random_range(1000..10000));
        }
        NewUser {
            first_name: first.into(),
            last_name: last.into(),
            email: email.into(),
            login,
            password: random_password(),
        }
    }
}

/// The email itself, lowercased, with anything unusual for a login replaced by `_`.
fn login_for(email: &str) -> String {
    email
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "@._-".contains(c) { c } else { '_' })
        .collect()
}

/// 24 characters with every class present, so strict password policies accept it. Nobody
/// needs to know it: learners set their own through TalentLMS's reset flow or SSO.
fn random_password() -> String {
    const SETS: [&[u8]; 4] =
        [b"abcdefghijkmnopqrstuvwxyz", b"ABCDEFGHJKLMNPQRSTUVWXYZ", b"23456789", b"!#%+-=?@_"];
    let mut rng = rand::rng();
    let all: Vec<u8> = SETS.concat();
    let mut pw: Vec<u8> = SETS.iter().map(|set| *set.choose(&mut rng).expect("non-empty")).collect();
    pw.extend((0..20).map(|_| *all.choose(&mut rng).expect("non-empty")));
    pw.shuffle(&mut rng);
    String::from_utf8(pw).expect("ascii")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_encode_separators_in_values() {
        assert_eq!(args(&[("email", "ana+x@example.com")]), "email:ana%2Bx%40example.com");
        assert_eq!(args(&[("course_id", "12"), ("user_id", "34")]), "course_id:12,user_id:34");
        assert_eq!(args(&[("username", "a,b:c/d")]), "username:a%2Cb%3Ac%2Fd");
    }

    #[test]
    fn login_and_password_shapes() {
        assert_eq!(login_for(" Ana.Maria+buy@Example.com "), "ana.maria_buy@example.com");
        let pw = random_password();
        assert_eq!(pw.len(), 24);
        assert!(pw.bytes().any(|b| b.is_ascii_lowercase()));
        assert!(pw.bytes().any(|b| b.is_ascii_uppercase()));
        assert!(pw.bytes().any(|b| b.is_ascii_digit()));
        assert!(pw.bytes().any(|b| !b.is_ascii_alphanumeric()));
        assert_ne!(pw, random_password());
    }

    #[test]
    fn base_url_handling_and_redacted_debug() {
        let c = Client::new("https://school.talentlms.com/", "secret-key-123").unwrap();
        assert_eq!(c.api, "https://school.talentlms.com/api/v1/");
        let c = Client::new("http://127.0.0.1:8089/api/v1", "secret-key-123").unwrap();
        assert_eq!(c.api, "http://127.0.0.1:8089/api/v1/");
        assert!(!format!("{c:?}").contains("secret-key-123"));
        assert!(matches!(Client::new("not a url", "k"), Err(Error::Config(_))));
        assert!(matches!(Client::new("ftp://x.io", "k"), Err(Error::Config(_))));
        assert!(matches!(Client::new("https://x.io", " "), Err(Error::Config(_))));
        let e = Client::new("https://key:pw@x.io", "k").unwrap_err();
        assert!(!e.to_string().contains("key:pw"));
    }
}
