//! The management API: one axum `Router`, served in Lambda by `functions/api` (HTTP API events) and by
//! `axum::serve` in the local runner and tests. Every route is under `/v1`, takes the tenant
//! from the API key, and answers errors as `application/problem+json`.

pub mod auth;
pub mod catalogue;
pub mod deliveries;
pub mod events;
pub mod filter_test;
pub mod keys;
pub mod problem;
pub mod stats;
pub mod subscriptions;
pub mod validate;

use crate::deps::Deps;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use problem::ApiError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const DEFAULT_PAGE: usize = 20;
pub const MAX_PAGE: usize = 100;

/// The OpenAPI 3.1 document of this API (kept true by a test that checks every route).
pub const OPENAPI: &str = include_str!("../../data/openapi.json");

/// Every route: (method, path). The router below serves exactly these; a test checks both
/// against the OpenAPI document.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/openapi.json"),
    ("GET", "/v1/event-types"),
    ("POST", "/v1/events"),
    ("GET", "/v1/events/{id}"),
    ("GET", "/v1/subscriptions"),
    ("POST", "/v1/subscriptions"),
    ("GET", "/v1/subscriptions/{id}"),
    ("PATCH", "/v1/subscriptions/{id}"),
    ("DELETE", "/v1/subscriptions/{id}"),
    ("POST", "/v1/subscriptions/{id}/restore"),
    ("POST", "/v1/subscriptions/{id}/rotate-secret"),
    ("POST", "/v1/subscriptions/{id}/test"),
    ("POST", "/v1/subscriptions/{id}/filter/test"),
    ("POST", "/v1/subscriptions/{id}/recover"),
    ("GET", "/v1/subscriptions/{id}/deliveries"),
    ("GET", "/v1/subscriptions/{id}/stats"),
    ("GET", "/v1/deliveries/{id}"),
    ("GET", "/v1/deliveries/{id}/attempts"),
    ("POST", "/v1/deliveries/{id}/redeliver"),
    ("GET", "/v1/api-keys"),
    ("POST", "/v1/api-keys"),
    ("DELETE", "/v1/api-keys/{id}"),
];

pub fn router(deps: Arc<Deps>) -> Router {
    Router::new()
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/event-types", get(events::event_types))
        .route("/v1/events", post(events::publish))
        .route("/v1/events/{id}", get(events::get))
        .route("/v1/subscriptions", get(subscriptions::list).post(subscriptions::create))
        .route(
            "/v1/subscriptions/{id}",
            get(subscriptions::get).patch(subscriptions::update).delete(subscriptions::delete),
        )
        .route("/v1/subscriptions/{id}/restore", post(subscriptions::restore))
        .route("/v1/subscriptions/{id}/rotate-secret", post(subscriptions::rotate_secret))
        .route("/v1/subscriptions/{id}/test", post(deliveries::test))
        .route("/v1/subscriptions/{id}/filter/test", post(filter_test::test_filter))
        .route("/v1/subscriptions/{id}/recover", post(deliveries::recover))
        .route("/v1/subscriptions/{id}/deliveries", get(deliveries::list))
        .route("/v1/subscriptions/{id}/stats", get(stats::stats))
        .route("/v1/deliveries/{id}", get(deliveries::get))
        .route("/v1/deliveries/{id}/attempts", get(deliveries::attempts))
        .route("/v1/deliveries/{id}/redeliver", post(deliveries::redeliver))
        .route("/v1/api-keys", get(keys::list).post(keys::create))
        .route("/v1/api-keys/{id}", axum::routing::delete(keys::revoke))
        .merge(crate::console::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(deps)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("route")
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed(method.to_string())
}

async fn openapi() -> impl IntoResponse {
    ([(CONTENT_TYPE, HeaderValue::from_static("application/json"))], OPENAPI)
}

/// A page of results; pass `next_cursor` as `cursor` for the next page (`null` on the last).
#[derive(Debug, Serialize, Deserialize)]
pub struct ListOut<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

pub fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid("limit", format!("must be between 1 and {MAX_PAGE}"))),
    }
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
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|_| ApiError::TooLarge(MAX_BODY_BYTES))?;
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

/// An optional JSON body: none (an empty body), or one as [`JsonBody`] reads it.
pub struct MaybeJsonBody<T>(pub Option<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for MaybeJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| ApiError::TooLarge(MAX_BODY_BYTES))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        JsonBody::from_request(req, state).await.map(|JsonBody(t)| Self(Some(t)))
    }
}

/// The `{id}` path segment. A segment that is not even valid UTF-8 names no object: 404 as
/// problem+json (not axum's plain-text 400).
pub struct IdPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<String>::from_request_parts(parts, state).await.map(|p| IdPath(p.0)).map_err(|_| ApiError::NotFound("object"))
    }
}

/// Query parameters whose rejections are problem+json naming the parameter.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(QueryParams).map_err(|e| {
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
mod tests;
