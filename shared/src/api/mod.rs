//! The management API: one axum `Router`, served by `lambda_http::run` in Lambda and by
//! `axum::serve` in the local runner and tests.

pub mod auth;
pub mod problem;
pub mod subscriptions;

use crate::deps::Deps;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use axum::Router;
use problem::ApiError;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn router(deps: Arc<Deps>) -> Router {
    Router::new()
        .route("/v1/subscriptions", get(subscriptions::list).post(subscriptions::create))
        .route("/v1/subscriptions/{id}", get(subscriptions::get))
        .fallback(|| async { ApiError::NotFound("route") })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(deps)
}

/// A JSON body whose rejections are problem+json naming the field at fault.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")));
        if !is_json {
            return Err(ApiError::invalid("content-type", "must be application/json"));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| ApiError::invalid("body", format!("must be at most {MAX_BODY_BYTES} bytes")))?;
        // serde would also read a struct from a JSON array, positionally: only objects are accepted.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::invalid("body", "must be a JSON object"));
        }
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(&mut de).map(JsonBody).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            ApiError::invalid(field_at_fault(&path, &inner), inner)
        })
    }
}

/// The field a deserialisation error is about: its path, or for a missing/unknown field (reported
/// on the enclosing object) that field's name under the path.
fn field_at_fault(path: &str, message: &str) -> String {
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|p| message.strip_prefix(p))
        .and_then(|rest| rest.split('`').next());
    match (path, named) {
        (".", Some(name)) => name.to_owned(),
        (".", None) => "body".to_owned(),
        // serde_path_to_error already puts an unknown field into the path.
        (path, Some(name)) if path == name || path.ends_with(&format!(".{name}")) => path.to_owned(),
        (path, Some(name)) => format!("{path}.{name}"),
        (path, None) => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::field_at_fault;

    #[test]
    fn names_the_field_at_fault() {
        assert_eq!(field_at_fault(".", "missing field `url` at line 1 column 2"), "url");
        assert_eq!(field_at_fault(".", "unknown field `color`, expected one of `url`"), "color");
        assert_eq!(field_at_fault("events[0]", "invalid type: integer `5`, expected a string"), "events[0]");
        assert_eq!(field_at_fault(".", "EOF while parsing a value"), "body");
        assert_eq!(field_at_fault("auth", "missing field `username`"), "auth.username");
        assert_eq!(field_at_fault("color", "unknown field `color`, expected `url`"), "color");
    }
}
