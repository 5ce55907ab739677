//! The web console: a small single-page app (static files in `shared/console/`, embedded in the
//! binary) served under `/console` by the management API function. It talks only to the public
//! `/v1` API with the user's API key, kept in sessionStorage.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// (path under /console, content type, body)
const ASSETS: &[(&str, &str, &str)] = &[
    ("", "text/html; charset=utf-8", include_str!("../console/index.html")),
    ("/", "text/html; charset=utf-8", include_str!("../console/index.html")),
    ("/app.js", "text/javascript; charset=utf-8", include_str!("../console/app.js")),
    ("/api.js", "text/javascript; charset=utf-8", include_str!("../console/api.js")),
    ("/dom.js", "text/javascript; charset=utf-8", include_str!("../console/dom.js")),
    ("/subscriptions.js", "text/javascript; charset=utf-8", include_str!("../console/subscriptions.js")),
    ("/editors.js", "text/javascript; charset=utf-8", include_str!("../console/editors.js")),
    ("/deliveries.js", "text/javascript; charset=utf-8", include_str!("../console/deliveries.js")),
    ("/catalogue.js", "text/javascript; charset=utf-8", include_str!("../console/catalogue.js")),
    ("/charts.js", "text/javascript; charset=utf-8", include_str!("../console/charts.js")),
    ("/app.css", "text/css; charset=utf-8", include_str!("../console/app.css")),
];

/// No inline script or style, nothing from elsewhere; the API is same-origin.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(path: &str) -> Response {
    match ASSETS.iter().find(|(p, _, _)| *p == path) {
        Some((_, ctype, body)) => {
            let mut resp = (StatusCode::OK, *body).into_response();
            let h = resp.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
            secure(h);
            resp
        }
        None => {
            let mut resp = (StatusCode::NOT_FOUND, "not found").into_response();
            secure(resp.headers_mut());
            resp
        }
    }
}

fn secure(h: &mut axum::http::HeaderMap) {
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    h.insert("permissions-policy", HeaderValue::from_static("camera=(), microphone=(), geolocation=()"));
}

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/console", get(|| async { asset("") }))
        .route("/console/", get(|| async { asset("/") }))
        .route("/console/{*path}", get(|axum::extract::Path(path): axum::extract::Path<String>| async move { asset(&format!("/{path}")) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_carries_the_security_headers() {
        for (path, ctype, _) in ASSETS {
            let resp = asset(path);
            assert_eq!(resp.status(), StatusCode::OK);
            assert_eq!(resp.headers()[header::CONTENT_TYPE], *ctype);
            assert_eq!(resp.headers()[header::CONTENT_SECURITY_POLICY], CSP);
            assert_eq!(resp.headers()[header::X_FRAME_OPTIONS], "DENY");
        }
        assert_eq!(asset("/../Cargo.toml").status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn the_page_has_no_inline_script() {
        let html = include_str!("../console/index.html");
        for tag in html.split("<script").skip(1) {
            assert!(tag.trim_start().starts_with("type=\"module\" src=") || tag.contains(" src="), "inline script: {tag}");
        }
        for attr in ["onclick=", "onload=", "onerror=", "onsubmit=", "<style", "javascript:"] {
            assert!(!html.contains(attr), "inline {attr} in index.html");
        }
    }
}
