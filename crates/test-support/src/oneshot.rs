//! Driving an axum router in process with `oneshot` (no socket): requests, the reply
//! with its body parsed, and the check every error answer must pass.

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// A response with its body read.
pub struct Reply {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Value,
    pub text: String,
    /// The body's bytes (a binary answer's too).
    pub raw: Vec<u8>,
}

pub async fn send(app: &Router, req: Request<Body>) -> Reply {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
        text,
        raw: bytes.to_vec(),
    }
}

pub fn post(uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.into())
        .unwrap()
}

/// An empty-bodied request with any method, including ones HTTP does not define.
pub fn with_method(method: &str, uri: impl AsRef<str>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri.as_ref())
        .body(Body::empty())
        .unwrap()
}

pub fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

/// Asserts vigil's error shape (docs/reference.md §2: `details` always an object), that
/// the body's request id is the header's, and returns the error code.
pub fn assert_error(reply: &Reply, status: StatusCode) -> String {
    assert_eq!(reply.status, status, "{}", reply.text);
    let rid = reply
        .headers
        .get("x-request-id")
        .expect("x-request-id header")
        .to_str()
        .unwrap();
    assert_eq!(reply.body["request_id"], rid, "{}", reply.text);
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        reply.text
    );
    assert!(reply.body["error"]["details"].is_object(), "{}", reply.text);
    reply.body["error"]["code"]
        .as_str()
        .expect("error.code")
        .to_owned()
}
