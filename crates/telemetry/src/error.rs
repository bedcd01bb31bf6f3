//! The one error shape every vigil endpoint answers with:
//! `{"error": {"code", "message", "details"}, "request_id"}`. Lives here so the
//! middleware's own answers (panics, timeouts) match the handlers' byte for byte.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};

use crate::context;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable code, e.g. `malformed_json`.
    pub code: String,
    /// For humans; never contains internals.
    pub message: String,
    /// More about the error; `{}` when there is nothing to add.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object, required = true)]
    pub details: serde_json::Value,
}

pub(crate) fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
    pub request_id: String,
}

/// Attached to error responses so the middleware can log what went wrong once, with
/// the cause chain that the body must not show.
#[derive(Debug, Clone)]
pub struct ErrorInfo {
    pub code: &'static str,
    /// The full error chain, for the log only.
    pub cause: Option<String>,
}

/// Builds an error response in the vigil shape for the current request.
pub fn error_response(
    status: StatusCode,
    code: &'static str,
    message: impl Into<String>,
    details: serde_json::Value,
) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.to_owned(),
            message: message.into(),
            details: if details.is_null() {
                empty_object()
            } else {
                details
            },
        },
        request_id: context::current_request_id(),
    };
    let mut response = (status, Json(body)).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
        .extensions_mut()
        .insert(ErrorInfo { code, cause: None });
    response
}
