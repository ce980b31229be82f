//! In-memory model of a TalentLMS school plus the call accounting the API layer needs.
//! Everything here is synchronous and clock-injected so it can be unit-tested.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

/// An error the way TalentLMS v1 reports it: status plus `{"error":{"type","message"}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn invalid(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, kind: "invalid_request_error", message: message.into() }
    }
    pub fn server(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, kind: "api_error", message: message.into() }
    }
    pub fn body(&self) -> Value {
        json!({ "error": { "type": self.kind, "message": self.message } })
    }
    fn no_user() -> Self {
        Self::invalid(StatusCode::NOT_FOUND, "The requested user does not exist")
    }
    fn no_course() -> Self {
        Self::invalid(StatusCode::NOT_FOUND, "The requested course does not exist")
    }
    pub fn bad_args() -> Self {
        Self::invalid(StatusCode::BAD_REQUEST, "Invalid arguments provided")
    }
}

pub type ApiResult = Result<Value, ApiError>;

/// Sliding log of accepted calls: at most `limit` calls in any `window`.
#[derive(Debug)]
pub struct RateWindow {
    limit: u32,
    window: Duration,
    calls: VecDeque<Instant>,
}

impl RateWindow {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self { limit, window, calls: VecDeque::new() }
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    fn prune(&mut self, now: Instant) {
        while self.calls.front().is_some_and(|&t| now.duration_since(t) >= self.window) {
            self.calls.pop_front();
        }
    }

    /// Takes a slot: `Ok(remaining)` or `Err(when the next slot frees)`.
    /// Refused calls take no slot, so a client that waits for the reset gets through.
    pub fn try_acquire(&mut self, now: Instant) -> Result<u32, Instant> {
        self.prune(now);
        if self.calls.len() as u32 >= self.limit {
            return Err(self.reset_at(now));
        }
        self.calls.push_back(now);
        Ok(self.limit - self.calls.len() as u32)
    }

    pub fn remaining(&mut self, now: Instant) -> u32 {
        self.prune(now);
        self.limit.saturating_sub(self.calls.len() as u32)
    }

    /// When the oldest call in the window expires (a full window from now if none).
    pub fn reset_at(&self, now: Instant) -> Instant {
        self.calls.front().map_or(now, |&t| t) + self.window
    }
}

/// Highest number of calls seen in any 1-second span (exact, sliding).
#[derive(Debug, Default)]
pub struct PeakTracker {
    recent: VecDeque<Instant>,
    pub max: usize,
}

impl PeakTracker {
    pub fn record(&mut self, now: Instant) {
        while self.recent.front().is_some_and(|&t| now.duration_since(t) >= Duration::from_secs(1)) {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        self.max = self.max.max(self.recent.len());
    }
}

/// Parses `key:value,key:value` path arguments. Splits before percent-decoding so an
/// encoded comma or colon inside a value (`%2C`, `%3A`) stays part of the value.
pub fn parse_args(raw: &str) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    for pair in raw.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once(':').ok_or_else(ApiError::bad_args)?;
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| ApiError::bad_args())
        };
        out.insert(decode(k)?, decode(v)?);
    }
    Ok(out)
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: u64,
    pub login: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub active: bool,
    pub created: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Course {
    pub id: String,
    pub name: String,
    pub code: String,
    pub description: String,
    #[serde(skip)]
    pub created: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Enrollment {
    role: String,
    enrolled: DateTime<Utc>,
}

pub fn seed_courses() -> Vec<Course> {
    let now = Utc::now();
    [
        ("101", "Onboarding Essentials", "ONB-101", "Everything a new member needs in the first week."),
        (
            "102",
            "Digital Marketing Fundamentals",
            "MKT-102",
            "Funnels, paid traffic and email marketing basics.",
        ),
        ("103", "Advanced Excel for Business", "XLS-103", "Pivot tables, lookups and dashboards."),
        (
            "104",
            "Leadership and Team Communication",
            "LDR-104",
            "Feedback, one-on-ones and running meetings.",
        ),
    ]
    .into_iter()
    .map(|(id, name, code, description)| Course {
        id: id.into(),
        name: name.into(),
        code: code.into(),
        description: description.into(),
        created: now,
    })
    .collect()
}

/// The school's data: users, courses and enrollments.
#[derive(Debug)]
pub struct Db {
    users: BTreeMap<u64, User>,
    next_user_id: u64,
    courses: Vec<Course>,
    enrollments: BTreeMap<(u64, String), Enrollment>,
}

impl Default for Db {
    fn default() -> Self {
        Self {
            users: BTreeMap::new(),
            next_user_id: 1,
            courses: seed_courses(),
            enrollments: BTreeMap::new(),
        }
    }
}

// TalentLMS renders dates in the school's format; DD/MM/YYYY is its default.
fn date(t: &DateTime<Utc>) -> String {
    t.format("%d/%m/%Y, %H:%M:%S").to_string()
}

fn ts(t: &DateTime<Utc>) -> String {
    t.timestamp().to_string()
}

impl Db {
    /// Deletes a user and their enrollments, as staff do in TalentLMS's admin pages.
    /// Returns whether the email was known.
    pub fn delete_user(&mut self, email: &str) -> bool {
        let Some(uid) = self.users.values().find(|u| u.email.eq_ignore_ascii_case(email)).map(|u| u.id)
        else {
            return false;
        };
        self.users.remove(&uid);
        self.enrollments.retain(|(u, _), _| *u != uid);
        true
    }

    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    pub fn courses(&self) -> &[Course] {
        &self.courses
    }

    /// (user, course_id, role) for every enrollment, ordered by user id then course id.
    pub fn enrollments(&self) -> impl Iterator<Item = (&User, &str, &str)> {
        self.enrollments
            .iter()
            .filter_map(|((uid, cid), e)| Some((self.users.get(uid)?, cid.as_str(), e.role.as_str())))
    }

    pub fn course_ids_of(&self, user_id: u64) -> Vec<String> {
        // The map is ordered by user id first: a range, not a scan of every enrollment.
        self.enrollments
            .range((user_id, String::new())..)
            .take_while(|((u, _), _)| *u == user_id)
            .map(|((_, c), _)| c.clone())
            .collect()
    }

    fn course(&self, id: &str) -> Result<&Course, ApiError> {
        self.courses.iter().find(|c| c.id == id).ok_or_else(ApiError::no_course)
    }

    fn user_by_id_arg(&self, id: &str) -> Result<&User, ApiError> {
        id.parse::<u64>().ok().and_then(|id| self.users.get(&id)).ok_or_else(ApiError::no_user)
    }

    pub fn add_course(
        &mut self,
        id: Option<String>,
        name: String,
        code: Option<String>,
    ) -> Result<Course, String> {
        if name.trim().is_empty() {
            return Err("course name must not be empty".into());
        }
        let id = match id {
            Some(id) if self.courses.iter().any(|c| c.id == id) => {
                return Err(format!("course {id} already exists"));
            }
            Some(id) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => id,
            Some(id) => return Err(format!("course id {id:?} must be numeric")),
            None => (self.courses.iter().filter_map(|c| c.id.parse::<u64>().ok()).max().unwrap_or(100) + 1)
                .to_string(),
        };
        let course = Course {
            code: code.unwrap_or_else(|| format!("C-{id}")),
            id,
            name,
            description: String::new(),
            created: Utc::now(),
        };
        self.courses.push(course.clone());
        Ok(course)
    }

    fn user_courses_json(&self, user_id: u64) -> Vec<Value> {
        self.enrollments
            .iter()
            .filter(|((u, _), _)| *u == user_id)
            .filter_map(|((_, cid), e)| {
                let c = self.course(cid).ok()?;
                Some(json!({
                    "id": c.id, "name": c.name, "role": e.role,
                    "enrolled_on": date(&e.enrolled), "enrolled_on_timestamp": ts(&e.enrolled),
                    "completed_on": "", "completed_on_timestamp": "",
                    "completion_percentage": "0",
                    "expired_on": "", "expired_on_timestamp": "",
                    "total_time": "", "total_time_seconds": "0",
                    "last_accessed_unit_url": "",
                }))
            })
            .collect()
    }

    fn user_json(&self, u: &User, with_courses: bool) -> Value {
        let mut v = json!({
            "id": u.id.to_string(), "login": u.login,
            "first_name": u.first_name, "last_name": u.last_name, "email": u.email,
            "restrict_email": "0", "user_type": "Learner-Type",
            "timezone": "(GMT +00:00) UTC", "language": "en",
            "status": if u.active { "active" } else { "inactive" },
            "deactivation_date": "", "level": "1", "points": "0",
            "created_on": date(&u.created), "last_updated": date(&u.created),
            "last_updated_timestamp": ts(&u.created),
            "avatar": "", "bio": "",
        });
        if with_courses {
            let extra = json!({
                "courses": self.user_courses_json(u.id),
                "branches": [], "groups": [], "certifications": [], "badges": [],
            });
            v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        }
        v
    }

    fn course_json(c: &Course) -> Value {
        json!({
            "id": c.id, "name": c.name, "code": c.code, "category_id": "1",
            "description": c.description, "price": "&#36;0.00", "status": "active",
            "creation_date": date(&c.created), "last_update_on": date(&c.created),
            "creator_id": "1", "hide_from_catalog": "0", "time_limit": "0",
            "level": null, "shared": "0", "shared_url": "", "avatar": "", "big_avatar": "",
            "certification": null, "certification_duration": null,
        })
    }

    // ---- API operations. Each validates fully before mutating anything. ----

    pub fn signup(&mut self, form: &BTreeMap<String, String>) -> ApiResult {
        let field = |k: &str| form.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
        let (Some(first), Some(last), Some(email), Some(login), Some(password)) =
            (field("first_name"), field("last_name"), field("email"), field("login"), field("password"))
        else {
            return Err(ApiError::invalid(StatusCode::BAD_REQUEST, "A required parameter is missing"));
        };
        let email_ok = email.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && d.contains('.') && !d.starts_with('.') && !email.contains(char::is_whitespace)
        });
        if !email_ok {
            return Err(ApiError::invalid(StatusCode::BAD_REQUEST, "Invalid email address"));
        }
        if login.contains(char::is_whitespace) {
            return Err(ApiError::invalid(StatusCode::BAD_REQUEST, "Invalid login"));
        }
        if password.chars().count() < 8 {
            return Err(ApiError::invalid(
                StatusCode::BAD_REQUEST,
                "The password must be at least 8 characters long",
            ));
        }
        if self.users.values().any(|u| u.email.eq_ignore_ascii_case(email)) {
            return Err(ApiError::invalid(
                StatusCode::BAD_REQUEST,
                "A user with the same email address already exists",
            ));
        }
        if self.users.values().any(|u| u.login.eq_ignore_ascii_case(login)) {
            return Err(ApiError::invalid(
                StatusCode::BAD_REQUEST,
                "A user with the same login already exists",
            ));
        }
        let id = self.next_user_id;
        self.next_user_id += 1;
        let user = User {
            id,
            login: login.into(),
            email: email.into(),
            first_name: first.into(),
            last_name: last.into(),
            active: true,
            created: Utc::now(),
        };
        tracing::info!(user_id = id, "user signed up");
        let body = self.user_json(&user, true);
        self.users.insert(id, user);
        Ok(body)
    }

    pub fn list_users(&self) -> ApiResult {
        Ok(Value::Array(self.users.values().map(|u| self.user_json(u, false)).collect()))
    }

    pub fn find_user(&self, args: &BTreeMap<String, String>) -> ApiResult {
        let user = if let Some(id) = args.get("id") {
            self.user_by_id_arg(id)?
        } else if let Some(email) = args.get("email") {
            self.users.values().find(|u| u.email.eq_ignore_ascii_case(email)).ok_or_else(ApiError::no_user)?
        } else if let Some(login) = args.get("username") {
            self.users.values().find(|u| u.login.eq_ignore_ascii_case(login)).ok_or_else(ApiError::no_user)?
        } else {
            return Err(ApiError::bad_args());
        };
        Ok(self.user_json(user, true))
    }

    fn user_and_course(&self, args: &BTreeMap<String, String>) -> Result<(u64, String), ApiError> {
        let (Some(uid), Some(cid)) = (args.get("user_id"), args.get("course_id")) else {
            return Err(ApiError::bad_args());
        };
        let user = self.user_by_id_arg(uid)?.id;
        let course = self.course(cid)?.id.clone();
        Ok((user, course))
    }

    pub fn enroll(&mut self, form: &BTreeMap<String, String>) -> ApiResult {
        let (uid, cid) = self.user_and_course(form)?;
        let role = form.get("role").map(String::as_str).unwrap_or("learner");
        if !matches!(role, "learner" | "instructor") {
            return Err(ApiError::invalid(StatusCode::BAD_REQUEST, "Invalid role"));
        }
        if self.enrollments.contains_key(&(uid, cid.clone())) {
            return Err(ApiError::invalid(
                StatusCode::BAD_REQUEST,
                "The requested user is already enrolled in this course",
            ));
        }
        tracing::info!(user_id = uid, course_id = %cid, "user enrolled");
        self.enrollments.insert((uid, cid.clone()), Enrollment { role: role.into(), enrolled: Utc::now() });
        Ok(json!([{ "user_id": uid.to_string(), "course_id": cid, "role": role }]))
    }

    pub fn unenroll(&mut self, args: &BTreeMap<String, String>) -> ApiResult {
        let (uid, cid) = self.user_and_course(args)?;
        if self.enrollments.remove(&(uid, cid.clone())).is_none() {
            return Err(ApiError::invalid(
                StatusCode::BAD_REQUEST,
                "The requested user is not enrolled in this course",
            ));
        }
        tracing::info!(user_id = uid, course_id = %cid, "user removed from course");
        let name = &self.course(&cid)?.name;
        Ok(json!({ "user_id": uid.to_string(), "course_id": cid, "course_name": name }))
    }

    pub fn list_courses(&self) -> ApiResult {
        Ok(Value::Array(self.courses.iter().map(Self::course_json).collect()))
    }

    pub fn get_course(&self, args: &BTreeMap<String, String>) -> ApiResult {
        let course = self.course(args.get("id").ok_or_else(ApiError::bad_args)?)?;
        let users: Vec<Value> = self
            .enrollments
            .iter()
            .filter(|((_, c), _)| *c == course.id)
            .filter_map(|((u, _), e)| {
                let u = self.users.get(u)?;
                Some(json!({
                    "id": u.id.to_string(), "name": format!("{} {}", u.first_name, u.last_name),
                    "role": e.role, "enrolled_on": date(&e.enrolled), "enrolled_on_timestamp": ts(&e.enrolled),
                    "completed_on": "", "completed_on_timestamp": "", "completion_percentage": "0",
                    "expired_on": "", "expired_on_timestamp": "", "total_time": "",
                }))
            })
            .collect();
        let mut v = Self::course_json(course);
        let extra = json!({ "users": users, "units": [], "rules": [], "prerequisites": [] });
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        Ok(v)
    }

    pub fn status_in_course(&self, args: &BTreeMap<String, String>) -> ApiResult {
        let (uid, cid) = self.user_and_course(args)?;
        let e = self.enrollments.get(&(uid, cid)).ok_or_else(|| {
            ApiError::invalid(StatusCode::BAD_REQUEST, "The requested user is not enrolled in this course")
        })?;
        Ok(json!({
            "role": e.role, "enrolled_on": date(&e.enrolled), "enrolled_on_timestamp": ts(&e.enrolled),
            "completion_status": "not_attempted", "completion_percentage": "0",
            "completed_on": "", "completed_on_timestamp": "",
            "expired_on": "", "expired_on_timestamp": "",
            "total_time": "", "total_time_seconds": "0", "units": [],
        }))
    }

    pub fn set_status(&mut self, args: &BTreeMap<String, String>) -> ApiResult {
        let uid = self.user_by_id_arg(args.get("user_id").ok_or_else(ApiError::bad_args)?)?.id;
        let active = match args.get("status").map(String::as_str) {
            Some("active") => true,
            Some("inactive") => false,
            _ => return Err(ApiError::bad_args()),
        };
        self.users.get_mut(&uid).expect("checked above").active = active;
        Ok(json!({ "user_id": uid.to_string(), "status": if active { "active" } else { "inactive" } }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn rate_window_allows_limit_then_refuses_until_oldest_expires() {
        let t0 = Instant::now();
        let mut w = RateWindow::new(3, Duration::from_secs(5));
        assert_eq!(w.try_acquire(t0), Ok(2));
        assert_eq!(w.try_acquire(t0 + Duration::from_secs(1)), Ok(1));
        assert_eq!(w.try_acquire(t0 + Duration::from_secs(2)), Ok(0));
        // Full: the next slot frees when the first call leaves the window.
        assert_eq!(w.try_acquire(t0 + Duration::from_secs(3)), Err(t0 + Duration::from_secs(5)));
        assert_eq!(w.remaining(t0 + Duration::from_secs(3)), 0);
        // Refused calls take no slot: exactly one frees at t0+5.
        assert_eq!(w.try_acquire(t0 + Duration::from_secs(5)), Ok(0));
        assert_eq!(w.try_acquire(t0 + Duration::from_millis(5500)), Err(t0 + Duration::from_secs(6)));
        // Everything expired.
        assert_eq!(w.remaining(t0 + Duration::from_secs(11)), 3);
    }

    #[test]
    fn rate_window_is_sliding_not_fixed() {
        // A fixed window would allow 2 calls at t=4.9 and 2 more at t=5.1.
        let t0 = Instant::now();
        let mut w = RateWindow::new(2, Duration::from_secs(5));
        assert!(w.try_acquire(t0 + Duration::from_millis(4900)).is_ok());
        assert!(w.try_acquire(t0 + Duration::from_millis(4950)).is_ok());
        assert!(w.try_acquire(t0 + Duration::from_millis(5100)).is_err());
        assert_eq!(w.reset_at(t0), t0 + Duration::from_millis(9900));
    }

    #[test]
    fn empty_window_resets_a_full_window_from_now() {
        let t0 = Instant::now();
        let w = RateWindow::new(5, Duration::from_secs(5));
        assert_eq!(w.reset_at(t0), t0 + Duration::from_secs(5));
    }

    #[test]
    fn peak_tracker_counts_max_calls_in_any_second() {
        let t0 = Instant::now();
        let mut p = PeakTracker::default();
        for ms in [0, 100, 200, 1150, 1200, 1250, 1300, 3000] {
            p.record(t0 + Duration::from_millis(ms));
        }
        // 0..200 is 3 calls; 1150..1300 is 4 (200 is exactly 1s before 1200, so out).
        assert_eq!(p.max, 4);
    }

    #[test]
    fn args_are_split_before_decoding() {
        let a = parse_args("email:ana%2Bx%40example.com,id:3").unwrap();
        assert_eq!(a["email"], "ana+x@example.com");
        assert_eq!(a["id"], "3");
        let a = parse_args("username:a%2Cb%3Ac").unwrap();
        assert_eq!(a["username"], "a,b:c");
        assert!(parse_args("garbage").is_err());
    }

    #[test]
    fn failed_operations_change_nothing() {
        let mut db = Db::default();
        let ok = form(&[
            ("first_name", "Ana"),
            ("last_name", "Silva"),
            ("email", "ana@example.com"),
            ("login", "ana"),
            ("password", "S3cret-pass"),
        ]);
        db.signup(&ok).unwrap();
        let dup = db.signup(&ok).unwrap_err();
        assert_eq!(dup.message, "A user with the same email address already exists");
        assert_eq!(db.users().count(), 1);
        let bad = db.enroll(&form(&[("user_id", "1"), ("course_id", "999")])).unwrap_err();
        assert_eq!(
            (bad.status, bad.message.as_str()),
            (StatusCode::NOT_FOUND, "The requested course does not exist")
        );
        assert_eq!(db.enrollments().count(), 0);
        db.enroll(&form(&[("user_id", "1"), ("course_id", "101")])).unwrap();
        let again = db.enroll(&form(&[("user_id", "1"), ("course_id", "101")])).unwrap_err();
        assert_eq!(again.message, "The requested user is already enrolled in this course");
        assert_eq!(db.enrollments().count(), 1);
    }

    #[test]
    fn add_course_picks_next_numeric_id() {
        let mut db = Db::default();
        assert_eq!(db.add_course(None, "Rust".into(), None).unwrap().id, "105");
        assert!(db.add_course(Some("101".into()), "Dup".into(), None).is_err());
        assert!(db.add_course(Some("x1".into()), "Bad".into(), None).is_err());
    }
}
