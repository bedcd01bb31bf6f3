//! Errors of the `/v2` routes in the protocol's own shape, `{"error": "<message>"}`,
//! which `tritonclient` and other Open Inference Protocol clients read (vigil adds the
//! `request_id` beside it). Bad requests are 400, as the protocol has them, where
//! vigil's own routes answer 422; unknown models and versions 404.

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
        let body = serde_json::json!({
            "error": self.0.message(),
            "request_id": vigil_telemetry::context::current_request_id(),
        });
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response.extensions_mut().insert(ErrorInfo {
            code: self.0.code(),
            cause: status.is_server_error().then(|| self.0.to_string()),
        });
        response
    }
}

/// Whether a path is under `/v2`, where unknown routes and methods answer in the
/// protocol's shape.
pub fn is_v2(path: &str) -> bool {
    path == "/v2" || path.starts_with("/v2/")
}
