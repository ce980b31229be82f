//! `/_sim`: admin JSON API for tests and the dev stack. Not authenticated, not counted,
//! never rate limited or faulted.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::{FaultConfig, RateLimitConfig, Sim, SimCourse};

pub(crate) fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/state", get(state))
        .route("/faults", get(faults).post(set_faults))
        .route("/courses", post(add_course))
        .route("/enrollments", post(edit_enrollment))
        .route("/rate-limit", post(set_rate_limit))
        .route("/reset", post(reset))
}

fn bad(message: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message.into() }))).into_response()
}

async fn state(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.snapshot()).into_response()
}

async fn faults(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.lock().faults.clone()).into_response()
}

/// Replaces the whole fault config; omitted fields become 0.
async fn set_faults(State(sim): State<Arc<Sim>>, body: Result<Json<FaultConfig>, JsonRejection>) -> Response {
    let Json(faults) = match body {
        Ok(b) => b,
        Err(e) => return bad(e.body_text()),
    };
    match sim.set_faults(faults.clone()) {
        Ok(()) => Json(faults).into_response(),
        Err(e) => bad(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCourse {
    id: Option<String>,
    name: String,
    code: Option<String>,
}

async fn add_course(State(sim): State<Arc<Sim>>, body: Result<Json<NewCourse>, JsonRejection>) -> Response {
    let Json(c) = match body {
        Ok(b) => b,
        Err(e) => return bad(e.body_text()),
    };
    match sim.lock().db.add_course(c.id, c.name, c.code) {
        Ok(c) => {
            (StatusCode::CREATED, Json(SimCourse { id: c.id, name: c.name, code: c.code })).into_response()
        }
        Err(e) => bad(e),
    }
}

/// A staff member's edit in TalentLMS: enrolls (`"enrolled": true`) or removes a user.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrollmentEdit {
    user_id: String,
    course_id: String,
    enrolled: bool,
}

async fn edit_enrollment(
    State(sim): State<Arc<Sim>>,
    body: Result<Json<EnrollmentEdit>, JsonRejection>,
) -> Response {
    let Json(e) = match body {
        Ok(b) => b,
        Err(e) => return bad(e.body_text()),
    };
    match sim.edit_enrollment(&e.user_id, &e.course_id, e.enrolled) {
        Ok(()) => Json(json!({"user_id": e.user_id, "course_id": e.course_id, "enrolled": e.enrolled}))
            .into_response(),
        Err(e) => bad(e),
    }
}

async fn set_rate_limit(
    State(sim): State<Arc<Sim>>,
    body: Result<Json<RateLimitConfig>, JsonRejection>,
) -> Response {
    let Json(rl) = match body {
        Ok(b) => b,
        Err(e) => return bad(e.body_text()),
    };
    match sim.set_rate_limit(rl.limit, Duration::from_secs(rl.window_secs)) {
        Ok(()) => Json(rl).into_response(),
        Err(e) => bad(e),
    }
}

async fn reset(State(sim): State<Arc<Sim>>) -> Response {
    sim.reset();
    tracing::info!("simulator reset");
    Json(sim.snapshot()).into_response()
}
