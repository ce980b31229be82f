//! The simulator's wire format and admin API, seen with a plain HTTP client.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tollgate_simulator::{SimConfig, SimHandle, spawn};

async fn start() -> (SimHandle, reqwest::Client) {
    (spawn(SimConfig::default()).await.unwrap(), reqwest::Client::new())
}

fn api(sim: &SimHandle, path: &str) -> String {
    format!("{}/api/v1/{path}", sim.base_url())
}

#[tokio::test]
async fn auth_errors_and_rate_headers_follow_talentlms() {
    let (sim, http) = start().await;
    let r = http.get(api(&sim, "courses")).basic_auth("nope", Some("")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key("x-ratelimit-remaining"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["message"], "Invalid API key provided");
    // The key must go with an empty password.
    let r = http.get(api(&sim, "courses")).basic_auth(sim.api_key(), Some("x")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let r = http.get(api(&sim, "courses")).basic_auth(sim.api_key(), Some("")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers().clone();
    assert_eq!(h["x-ratelimit-limit"], "200");
    assert_eq!(h["x-ratelimit-remaining"], "199");
    let reset: u64 = h["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(reset > now && reset <= now + 6, "reset {reset} now {now}");
    let courses: Value = r.json().await.unwrap();
    assert_eq!(courses[0]["id"], "101", "ids are strings");

    let r = http
        .get(api(&sim, "users/email:nobody%40example.com"))
        .basic_auth(sim.api_key(), Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": {"type": "invalid_request_error", "message": "The requested user does not exist"}})
    );

    let r = http.get(api(&sim, "nosuchthing")).basic_auth(sim.api_key(), Some("")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(sim.state().total_calls, 5);
}

#[tokio::test]
async fn signup_enroll_and_status_over_the_wire() {
    let (sim, http) = start().await;
    let key = sim.api_key().to_owned();
    let form = [
        ("first_name", "Ana"),
        ("last_name", "Silva"),
        ("email", "ana@example.com"),
        ("login", "ana"),
        ("password", "Str0ng!pass"),
    ];
    let user: Value = http
        .post(api(&sim, "usersignup"))
        .basic_auth(&key, Some(""))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(user["id"], "1");
    assert_eq!(user["courses"], json!([]));

    let enrolled: Value = http
        .post(api(&sim, "addusertocourse"))
        .basic_auth(&key, Some(""))
        .form(&[("user_id", "1"), ("course_id", "102"), ("role", "learner")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(enrolled, json!([{"user_id": "1", "course_id": "102", "role": "learner"}]));

    let status: Value = http
        .get(api(&sim, "getuserstatusincourse/course_id:102,user_id:1"))
        .basic_auth(&key, Some(""))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["completion_status"], "not_attempted");

    let r = http
        .get(api(&sim, "usersetstatus/user_id:1,status:inactive"))
        .basic_auth(&key, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(sim.users()[0].status, "inactive");

    let rl: Value = http
        .get(api(&sim, "ratelimit"))
        .basic_auth(&key, Some(""))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rl["limit"], "200");
    assert_eq!(rl["remaining"], "195");
}

#[tokio::test]
async fn admin_api_controls_faults_courses_and_reset() {
    let (sim, http) = start().await;
    let admin = |p: &str| format!("{}/_sim/{p}", sim.base_url());

    let r = http.post(admin("faults")).json(&json!({"error_rate": 1.5})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = http.post(admin("faults")).json(&json!({"eror_rate": 0.5})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "typos are refused");
    let r = http.post(admin("faults")).json(&json!({"error_rate": 1.0})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = http.get(api(&sim, "courses")).basic_auth(sim.api_key(), Some("")).send().await.unwrap();
    assert!(r.status().is_server_error());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "api_error");

    let c: Value = http
        .post(admin("courses"))
        .json(&json!({"name": "Sales Mastery"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(c, json!({"id": "105", "name": "Sales Mastery", "code": "C-105"}));
    let r =
        http.post(admin("rate-limit")).json(&json!({"limit": 10, "window_secs": 1})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let state: Value = http.get(admin("state")).send().await.unwrap().json().await.unwrap();
    assert_eq!(state["faults"]["error_rate"], 1.0);
    assert_eq!(state["rate_limit"], json!({"limit": 10, "window_secs": 1}));
    assert_eq!(state["courses"].as_array().unwrap().len(), 5);
    assert_eq!((state["total_calls"].as_u64(), state["injected_faults"].as_u64()), (Some(1), Some(1)));

    let state: Value = http.post(admin("reset")).send().await.unwrap().json().await.unwrap();
    assert_eq!(state["courses"].as_array().unwrap().len(), 4);
    assert_eq!(state["faults"]["error_rate"], 0.0);
    assert_eq!(state["rate_limit"]["limit"], 200);
    assert_eq!(state["total_calls"], 0);
}
