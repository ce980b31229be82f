use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// TalentLMS sends ids and numbers as JSON strings; accept plain numbers too.
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        S(String),
        N(serde_json::Number),
    }
    Ok(match Raw::deserialize(d)? {
        Raw::S(s) => s,
        Raw::N(n) => n.to_string(),
    })
}

fn u64_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let s = string_or_number(d)?;
    s.trim().parse().map_err(|_| serde::de::Error::custom(format!("expected a number, got {s:?}")))
}

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                string_or_number(d).map(Self)
            }
        }
    };
}

id_type!(
    /// A TalentLMS user id ("34").
    UserId
);
id_type!(
    /// A TalentLMS course id ("12").
    CourseId
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub login: String,
    pub email: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    /// "active" or "inactive".
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub user_type: Option<String>,
    /// Only present when the user is fetched one at a time.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub courses: Vec<UserCourse>,
}

impl User {
    pub fn is_enrolled_in(&self, course: &CourseId) -> bool {
        self.courses.iter().any(|c| &c.id == course)
    }
}

fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// A course in a user's `courses` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCourse {
    pub id: CourseId,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub enrolled_on: Option<String>,
    #[serde(default)]
    pub completed_on: Option<String>,
    #[serde(default)]
    pub completion_percentage: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Course {
    pub id: CourseId,
    pub name: String,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// One user of a course, as `courses/id:{id}` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourseUser {
    pub id: UserId,
    /// `learner` or `instructor`.
    #[serde(default)]
    pub role: String,
}

/// A course with its users (`courses/id:{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CourseDetail {
    pub id: CourseId,
    #[serde(default)]
    pub users: Vec<CourseUser>,
}

/// Input of `usersignup`. Debug hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct NewUser {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub login: String,
    pub password: String,
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("first_name", &self.first_name)
            .field("last_name", &self.last_name)
            .field("email", &self.email)
            .field("login", &self.login)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnrollOutcome {
    Enrolled,
    AlreadyEnrolled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnenrollOutcome {
    Removed,
    NotEnrolled,
}

/// Answer of `ratelimit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    #[serde(deserialize_with = "u64_lenient")]
    pub limit: u64,
    #[serde(deserialize_with = "u64_lenient")]
    pub remaining: u64,
    /// Epoch seconds.
    #[serde(deserialize_with = "u64_lenient")]
    pub reset: u64,
    #[serde(default)]
    pub formatted_reset: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_numbers_accept_strings_or_numbers() {
        let u: User = serde_json::from_str(
            r#"{"id":"34","login":"ana","email":"a@x.io","first_name":"Ana","last_name":"S","status":"active",
                "courses":[{"id":12,"name":"Rust","role":"learner"}]}"#,
        )
        .unwrap();
        assert_eq!(u.id, UserId::from("34"));
        assert!(u.is_enrolled_in(&CourseId::from("12")));
        let u: User =
            serde_json::from_str(r#"{"id":7,"login":"b","email":"b@x.io","courses":null}"#).unwrap();
        assert_eq!((u.id.as_str(), u.courses.len()), ("7", 0));
        let r: RateLimit =
            serde_json::from_str(r#"{"limit":"200","remaining":199,"reset":"1700000000"}"#).unwrap();
        assert_eq!((r.limit, r.remaining, r.reset), (200, 199, 1_700_000_000));
        assert_eq!(serde_json::to_string(&CourseId::from("12")).unwrap(), r#""12""#);
    }
}
