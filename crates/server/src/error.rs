//! `ApiError`: every way a request can fail, mapped to a status and the error body
//! (docs/reference.md §2). Internals (error chains, model paths) go to the log via [`ErrorInfo`], never
//! into the body.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;
use vigil_model::{InputError, ModelError};
use vigil_telemetry::ErrorInfo;
use vigil_telemetry::error::error_response;

use crate::labels::ValidationReason;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("unsupported content type")]
    UnsupportedMediaType { got: Option<String> },
    #[error("Content-Encoding {got:?} is not supported: send the body uncompressed")]
    UnsupportedEncoding { got: String },
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("cannot read the request body")]
    BodyRead,
    #[error("invalid request body: {0}")]
    InvalidBody(String),
    #[error(transparent)]
    InvalidInput(#[from] InputError),
    #[error("model {0:?} is not loaded")]
    UnknownModel(String),
    /// A `/v2` path naming a version of a loaded model other than the one it serves.
    #[error("model {model:?} version {version:?} is not loaded (version {served:?} is served)")]
    UnknownVersion {
        model: String,
        version: String,
        served: String,
    },
    #[error("invalid path parameter: {0}")]
    InvalidPath(String),
    #[error("no route for this path")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the inference queue is full")]
    Overloaded,
    #[error("the service is not ready")]
    NotReady,
    #[error("model failure: {0}")]
    Model(#[from] ModelError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MalformedJson(_) | Self::BodyRead | Self::InvalidPath(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::UnsupportedMediaType { .. } | Self::UnsupportedEncoding { .. } => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::InvalidBody(_) | Self::InvalidInput(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::UnknownModel(_) | Self::UnknownVersion { .. } | Self::NotFound => {
                StatusCode::NOT_FOUND
            }
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Overloaded | Self::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            Self::Model(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable `error.code`.
    pub fn code(&self) -> &'static str {
        if let Some(reason) = self.validation_reason() {
            return reason.as_str();
        }
        match self {
            Self::InvalidPath(_) => "invalid_path",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Overloaded => "overloaded",
            Self::NotReady => "not_ready",
            Self::Model(_) => "model_error",
            Self::Internal(_) => "internal",
            // Validation errors are answered above.
            _ => "invalid_request",
        }
    }

    /// The `reason` label of `input_validation_errors_total`, for client mistakes.
    pub fn validation_reason(&self) -> Option<ValidationReason> {
        Some(match self {
            Self::MalformedJson(_) => ValidationReason::MalformedJson,
            Self::UnsupportedMediaType { .. } | Self::UnsupportedEncoding { .. } => {
                ValidationReason::UnsupportedMediaType
            }
            Self::PayloadTooLarge { .. } => ValidationReason::PayloadTooLarge,
            Self::BodyRead => ValidationReason::BodyRead,
            Self::InvalidBody(_) => ValidationReason::InvalidBody,
            Self::InvalidInput(e) => ValidationReason::Input(e.reason),
            Self::UnknownModel(_) | Self::UnknownVersion { .. } => ValidationReason::ModelNotFound,
            _ => return None,
        })
    }

    /// The message a client sees: the cause for its own mistakes, a fixed text for
    /// faults (their chain goes to the log only).
    pub fn message(&self) -> String {
        self.message_and_details().0
    }

    fn message_and_details(&self) -> (String, serde_json::Value) {
        match self {
            Self::InvalidInput(e) => (
                e.message.clone(),
                json!({"reason": e.reason.as_str(), "instance": e.instance, "feature": e.feature}),
            ),
            Self::UnsupportedMediaType { got } => (
                "the request body must be JSON (Content-Type: application/json)".into(),
                json!({"content_type": got}),
            ),
            Self::UnsupportedEncoding { got } => {
                (self.to_string(), json!({"content_encoding": got}))
            }
            Self::PayloadTooLarge { limit } => (self.to_string(), json!({"limit_bytes": limit})),
            Self::UnknownModel(name) => (self.to_string(), json!({"model": name})),
            Self::UnknownVersion { model, version, .. } => (
                self.to_string(),
                json!({"model": model, "version": version}),
            ),
            // Faults: a fixed message; the chain goes to the log only.
            Self::Model(_) => (
                "the model failed to produce a valid prediction".into(),
                serde_json::Value::Null,
            ),
            Self::Internal(_) => ("internal server error".into(), serde_json::Value::Null),
            _ => (self.to_string(), serde_json::Value::Null),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (message, details) = self.message_and_details();
        let mut response = error_response(self.status(), self.code(), message, details);
        if self.status().is_server_error() {
            response.extensions_mut().insert(ErrorInfo {
                code: self.code(),
                cause: Some(self.to_string()),
            });
        }
        response
    }
}
