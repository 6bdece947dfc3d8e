//! [`ApiError`]: every way an admin request can fail, and how it looks on the wire.
//!
//! Every error body is `{"error": "message"}`. Client errors (4xx) say what is wrong and, for
//! input, name the field first (`daily_token_limit: must be …`). Server errors (5xx) answer
//! with a generic message and are logged once, here, with their cause.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use quota_engine::EngineError;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error answer.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for people; input errors start with the field name.
    #[schema(example = "daily_token_limit: must be a non-negative integer or null")]
    pub error: String,
}

/// What a handler, extractor or middleware of the admin API can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not JSON at all.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no admin password, or a wrong one.
    #[error("missing or wrong admin password: send Authorization: Bearer <ADMIN_PASSWORD>")]
    Unauthorized,
    /// 404: no such key, or no such endpoint.
    #[error("{0}")]
    NotFound(String),
    /// 405: the path exists, the method does not.
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    /// 413: the body is larger than the admin API accepts.
    #[error("request body too large")]
    PayloadTooLarge,
    /// 422: well-formed JSON with a wrong value; the message names the field.
    #[error("{0}")]
    Unprocessable(String),
    /// 409: the change conflicts with what is stored (a name taken, a team with keys).
    #[error("{0}")]
    Conflict(String),
    /// 429: too many failed logins from this address.
    #[error("too many failed login attempts from this address; retry in {retry_after} s")]
    Throttled { retry_after: u64 },
    /// 502: no upstream answered. The details go to the log, not to the client.
    #[error("no Ollama upstream answered")]
    BadGateway,
    /// 500: anything else (database down, corrupt row…). Logged, answered generically.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BadGateway => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A 422 naming `field`.
    pub fn invalid(field: &str, what: impl std::fmt::Display) -> ApiError {
        ApiError::Unprocessable(format!("{field}: {what}"))
    }

    pub fn key_not_found(id: impl std::fmt::Display) -> ApiError {
        ApiError::NotFound(format!("no API key with id {id}"))
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        match e {
            // The engine's input messages already start with the field name.
            EngineError::Invalid(message) => ApiError::Unprocessable(message),
            EngineError::KeyNotFound(id) => ApiError::key_not_found(id),
            EngineError::TeamNotFound(id) => ApiError::NotFound(format!("no team with id {id}")),
            EngineError::Conflict(message) => ApiError::Conflict(message),
            other => ApiError::Internal(Box::new(other)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Internal(cause) = &self {
            tracing::error!(error = %cause, "admin API request failed");
        }
        let body = ErrorBody {
            error: self.to_string(),
        };
        let mut response = (status, Json(body)).into_response();
        match self {
            ApiError::Throttled { retry_after } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            }
            ApiError::Unauthorized => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

/// Result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
