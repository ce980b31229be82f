//! The one error body of every route (webhook, staff API, revenue dashboard):
//! `{"error":"<code>","message":"…"}` plus, where they apply, `reason` (the webhook's
//! name for the message, kept for Hotmart-facing clients), `field` (the one bad input),
//! `fields` (every bad input, with why) and `details` (e.g. `removed_courses`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

/// Every error body: a machine code, a human message, and what was wrong where.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code, e.g. `unauthorized`, `validation_failed`, `not_found`.
    error: String,
    message: String,
    /// The webhook's name for `message` (same text).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// The one invalid input (webhook payload path, dashboard query parameter).
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    /// Every invalid input with its reason (staff API 422s).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    fields: BTreeMap<String, String>,
    /// Anything else the caller needs to act, e.g. `{"removed_courses":[…]}` on a 409.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    details: Option<serde_json::Value>,
    /// On a server-side failure: quote it to whoever runs the service; the details are in
    /// their log under this id (never in the answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    // Boxed: handlers return it in every `Result`.
    body: Box<ErrorBody>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, error: &str, message: impl Into<String>) -> Self {
        let body = Box::new(ErrorBody {
            error: error.into(),
            message: message.into(),
            reason: None,
            field: None,
            fields: BTreeMap::new(),
            details: None,
            request_id: None,
        });
        Self { status, body }
    }

    /// A failure behind the API (store, warehouse, Temporal, TalentLMS): the client gets
    /// `public` and a request id; `detail` (SQL, hosts, paths) goes only to the log.
    pub fn internal(status: StatusCode, error: &str, public: &str, detail: &dyn std::fmt::Display) -> Self {
        let id = request_id();
        tracing::error!(request_id = %id, error = %detail, "{public}");
        let mut e = Self::new(status, error, format!("{public} (request id {id})"));
        e.body.request_id = Some(id);
        e
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 422 with a reason per field.
    pub fn invalid(fields: BTreeMap<String, String>) -> Self {
        let mut e =
            Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "some fields are invalid");
        e.body.fields = fields;
        e
    }

    /// 422 for one field, its reason as the message.
    pub fn invalid_field(field: &str, reason: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", reason).with_field(field)
    }

    pub fn with_field(mut self, field: &str) -> Self {
        self.body.field = Some(field.into());
        self
    }

    /// Webhook errors also carry the message as `reason`.
    pub fn with_reason(mut self) -> Self {
        self.body.reason = Some(self.body.message.clone());
        self
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.body.details = Some(details);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let id = self.body.request_id.clone();
        let mut res = (self.status, Json(self.body)).into_response();
        if let Some(v) = id.and_then(|id| axum::http::HeaderValue::from_str(&id).ok()) {
            res.headers_mut().insert("x-request-id", v);
        }
        res
    }
}

/// 16 random hex digits: enough to find one request in a day of logs.
pub fn request_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A backend (store, warehouse, journal) failed: 503, the caller may retry.
impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        Self::internal(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "a backend is unavailable; try again",
            &format!("{e:#}"),
        )
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        Self::new(r.status(), "invalid_body", r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::new(r.status(), "invalid_query", r.body_text())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        Self::new(r.status(), "invalid_body", r.body_text()).with_reason()
    }
}

/// `Json` whose rejection is an [`ApiError`].
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Ok(Self(Json::<T>::from_request(req, state).await?.0))
    }
}

/// `Query` whose rejection is an [`ApiError`].
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Ok(Self(axum::extract::Query::<T>::from_request_parts(parts, state).await?.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_backend_failure_answers_a_request_id_not_its_details() {
        let e = ApiError::from(anyhow::anyhow!("BigQuery error: SELECT key FROM `p.tollgate.revenue_facts`"));
        let res = e.into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let header = res.headers()["x-request-id"].to_str().unwrap().to_string();
        let body = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["request_id"], header.as_str());
        let text = body.to_string();
        assert!(!text.contains("SELECT") && !text.contains("BigQuery"), "{text}");
        assert!(body["message"].as_str().unwrap().contains(&header), "{body}");
    }
}
