//! Errors of the `/v2` routes in the protocol's own shape, `{"error": "<message>"}`,
//! which `tritonclient` and other Open Inference Protocol clients read (vigil adds the
//! `request_id` beside it). Bad requests are 400, as the protocol has them, where
//! vigil's own routes answer 422; unknown models and versions 404. Answers other
//! layers give before a `/v2` route runs are rewritten the same way
//! ([`protocol_errors`]).

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use vigil_telemetry::ErrorInfo;

use crate::error::ApiError;

/// A `/v2` route's failure: one of vigil's errors, answered the protocol's way.
#[derive(Debug)]
pub struct V2Error(pub ApiError);

impl From<ApiError> for V2Error {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl V2Error {
    pub fn status(&self) -> StatusCode {
        match self.0.status() {
            StatusCode::UNPROCESSABLE_ENTITY | StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                StatusCode::BAD_REQUEST
            }
            other => other,
        }
    }
}

impl IntoResponse for V2Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let info = ErrorInfo {
            code: self.0.code(),
            cause: status.is_server_error().then(|| self.0.to_string()),
        };
        answer(status, self.0.message(), info)
    }
}

/// The protocol's error answer: `{"error": "<message>", "request_id"}`, `Retry-After`
/// on a 503 as every 503 of vigil's, and `info` for the access line.
fn answer(status: StatusCode, message: String, info: ErrorInfo) -> Response {
    let body = serde_json::json!({
        "error": vigil_telemetry::error::bounded_message(message),
        "request_id": vigil_telemetry::context::current_request_id(),
    });
    let mut response = (status, axum::Json(body)).into_response();
    vigil_telemetry::error::retry_after(&mut response);
    response.extensions_mut().insert(info);
    response
}

/// Whether a path is under `/v2`, where unknown routes and methods answer in the
/// protocol's shape.
pub fn is_v2(path: &str) -> bool {
    path == "/v2" || path.starts_with("/v2/")
}

/// Largest error body rewritten; vigil's are a few hundred bytes.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The telemetry layer's own answers on the `/v2` routes (503 `timeout`, 408, 500 from
/// a panic) in the protocol's shape: the layer writes them with this, so its access
/// line and response-size histogram count the bytes sent.
pub fn protocol_answer(status: StatusCode, code: &'static str, message: String) -> Response {
    answer(status, message, ErrorInfo { code, cause: None })
}

/// Answers given inside a `/v2` route's telemetry in vigil's shape (401/403 from the
/// key guard, anything else not written for the protocol), rewritten into the
/// protocol's: `{"error": "<message>", "request_id": ".."}`. The router puts it around
/// the `/v2` routes only, inside their telemetry layer (which writes its own answers
/// with [`protocol_answer`]), so what is logged and measured is what is sent.
pub async fn protocol_errors(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(req).await;
    if !(response.status().is_client_error() || response.status().is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        // Not one of vigil's error bodies (their messages are bounded): the status,
        // headers and request id stay, the message is the status's own.
        let message = parts.status.canonical_reason().unwrap_or("error");
        let request_id = vigil_telemetry::context::current_request_id();
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let body = serde_json::json!({"error": message, "request_id": request_id});
        return Response::from_parts(parts, axum::body::Body::from(body.to_string()));
    };
    let rewritten = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| {
            let message = v.get("error")?.get("message")?.as_str()?.to_owned();
            Some(serde_json::json!({"error": message, "request_id": v.get("request_id")}))
        });
    match rewritten {
        Some(body) => {
            let body = axum::body::Body::from(body.to_string());
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, body)
        }
        // Already the protocol's shape (or not JSON): as it was.
        None => Response::from_parts(parts, axum::body::Body::from(bytes)),
    }
}
