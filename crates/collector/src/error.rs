//! The collector's errors, in the same JSON shape as the inference service's.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;
use vigil_telemetry::ErrorInfo;
use vigil_telemetry::body::BodyRejection;
use vigil_telemetry::error::error_response;

use vigil_records::RecordError;

#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    #[error("unsupported content type")]
    UnsupportedMediaType { got: Option<String> },
    #[error("Content-Encoding {0:?} is not supported: send the body uncompressed")]
    UnsupportedEncoding(String),
    /// A binary batch of a version (or format) this collector does not read: a 415,
    /// so vigil's forwarder resends it as JSON.
    #[error("{0}")]
    UnsupportedVersion(String),
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("cannot read the request body")]
    BodyRead,
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("invalid query parameter: {0}")]
    InvalidQuery(String),
    /// A path parameter that does not decode (not UTF-8 once percent-decoded).
    #[error("invalid path: {0}")]
    InvalidPath(String),
    #[error("{} invalid record(s); nothing was stored", .0.len())]
    InvalidRecords(Vec<RecordError>),
    #[error("no route for this path")]
    NotFound,
    #[error("no such model: this collector has no card for it")]
    UnknownModel(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the database is unavailable")]
    Unavailable(#[source] vigil_store::StoreError),
}

impl From<BodyRejection> for CollectorError {
    fn from(r: BodyRejection) -> Self {
        match r {
            BodyRejection::UnsupportedMediaType { got } => Self::UnsupportedMediaType { got },
            BodyRejection::PayloadTooLarge { limit } => Self::PayloadTooLarge { limit },
            BodyRejection::UnsupportedEncoding { got } => Self::UnsupportedEncoding(got),
            BodyRejection::Read => Self::BodyRead,
        }
    }
}

impl CollectorError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MalformedJson(_)
            | Self::BodyRead
            | Self::InvalidQuery(_)
            | Self::InvalidPath(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType { .. }
            | Self::UnsupportedVersion(_)
            | Self::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Invalid(_) | Self::InvalidRecords(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotFound | Self::UnknownModel(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson(_) => "malformed_json",
            Self::UnsupportedMediaType { .. }
            | Self::UnsupportedVersion(_)
            | Self::UnsupportedEncoding(_) => "unsupported_media_type",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::BodyRead => "body_read_error",
            Self::Invalid(_) => "invalid_body",
            Self::InvalidQuery(_) => "invalid_query",
            Self::InvalidPath(_) => "invalid_path",
            Self::InvalidRecords(_) => "invalid_records",
            Self::NotFound => "not_found",
            Self::UnknownModel(_) => "model_not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Unavailable(_) => "database_unavailable",
        }
    }
}

impl IntoResponse for CollectorError {
    fn into_response(self) -> Response {
        let details = match &self {
            Self::InvalidRecords(errors) => json!({ "errors": errors }),
            Self::PayloadTooLarge { limit } => json!({ "limit_bytes": limit }),
            // The same details as the inference service's for the same codes.
            Self::UnsupportedMediaType { got } => json!({ "content_type": got }),
            Self::UnsupportedEncoding(got) => json!({ "content_encoding": got }),
            Self::UnknownModel(model) => json!({ "model": model }),
            _ => serde_json::Value::Null,
        };
        // A database outage is the only 5xx: its cause goes to the log, not the body.
        let message = match &self {
            Self::Unavailable(_) => "the database is unavailable; retry later".to_owned(),
            other => other.to_string(),
        };
        let mut response = error_response(self.status(), self.code(), message, details);
        if let Self::Unavailable(cause) = &self {
            response.extensions_mut().insert(ErrorInfo {
                code: self.code(),
                cause: Some(cause.to_string()),
            });
        }
        response
    }
}
