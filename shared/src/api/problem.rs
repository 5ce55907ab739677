//! The API's one error type, mapped to HTTP in one place: 4xx as `application/problem+json`
//! naming the field at fault; 5xx logged with context and answered with a generic body.

use crate::ports::PortError;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{detail}")]
    Invalid { field: String, detail: String },
    #[error("missing or unknown API key")]
    Unauthorized,
    #[error("this API key lacks the scope {0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("the subscription was changed since the version in If-Match: read it again, then retry")]
    PreconditionFailed,
    #[error("method {0} is not allowed on this route")]
    MethodNotAllowed(String),
    #[error("the body must be application/json")]
    UnsupportedMediaType,
    #[error("the body must be at most {0} bytes")]
    TooLarge(usize),
    #[error("internal error")]
    Internal(#[from] PortError),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), detail: detail.into() }
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, title, field) = match &self {
            ApiError::Invalid { field, .. } => (StatusCode::BAD_REQUEST, "invalid-request", "Invalid request", Some(field.as_str())),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized", None),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden", None),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found", None),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict", None),
            ApiError::PreconditionFailed => (StatusCode::PRECONDITION_FAILED, "precondition-failed", "Precondition failed", Some("If-Match")),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed", None),
            ApiError::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", "Unsupported media type", Some("content-type")),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too-large", "Payload too large", Some("body")),
            ApiError::Internal(e) => {
                tracing::error!(error = %e, source = ?std::error::Error::source(e), "internal error serving request");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error", None)
            }
        };
        let body = Problem { kind: &format!("/problems/{kind}"), title, status: status.as_u16(), detail: self.to_string(), field };
        let mut resp = (status, serde_json::to_string(&body).unwrap_or_default()).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/problem+json"));
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
