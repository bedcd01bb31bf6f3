//! Why a model lifecycle action was refused or failed, with its status and stable
//! code. Every refusal leaves the serving version untouched.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;
use vigil_telemetry::ErrorInfo;
use vigil_telemetry::error::error_response;

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("model name {0:?} must be 1-64 characters of [A-Za-z0-9._-], not starting with '.'")]
    BadName(String),
    #[error("the upload must be multipart/form-data with parts `onnx` and `card`")]
    NotMultipart,
    #[error("Content-Encoding {got:?} is not supported: send the upload uncompressed")]
    UnsupportedEncoding { got: String },
    #[error("the multipart body is malformed: {0}")]
    Multipart(String),
    #[error("the upload is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the upload has no `{0}` part")]
    MissingPart(&'static str),
    #[error("unexpected part {0:?}: the upload takes `onnx` and `card` only")]
    UnexpectedPart(String),
    #[error("the model card is not usable: {0}")]
    InvalidCard(String),
    #[error("the card names model {card:?} but the path names {path:?}")]
    NameMismatch { card: String, path: String },
    #[error(
        "version {0:?} cannot name a kept version: it must be 1-64 characters of [A-Za-z0-9._-], not starting with '.', and not `state.toml` (the store's own file)"
    )]
    BadVersion(String),
    #[error("the ONNX model is not usable: {0}")]
    InvalidModel(String),
    #[error("{0}")]
    NotProbabilities(String),
    #[error("model {model:?} already has a version {version:?}; give the new one another version")]
    VersionExists { model: String, version: String },
    #[error("model {0:?} is not serving here (unknown, or unloaded: an upload serves it again)")]
    UnknownModel(String),
    #[error("model {0:?} has no previous version to roll back to")]
    NoPreviousVersion(String),
    #[error(
        "version {version:?} of model {model:?} can no longer be loaded; it was dropped from the rollback history"
    )]
    VersionUnavailable { model: String, version: String },
    #[error("model {model:?} cannot be unloaded: {why}")]
    CannotUnload { model: String, why: &'static str },
    #[error("this service keeps no model versions (it has no data dir)")]
    NoStore,
    #[error("cannot keep the model version: {0}")]
    Store(String),
}

impl LifecycleError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotMultipart | Self::UnsupportedEncoding { .. } => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Self::Multipart(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnknownModel(_) => StatusCode::NOT_FOUND,
            Self::VersionExists { .. }
            | Self::NoPreviousVersion(_)
            | Self::VersionUnavailable { .. }
            | Self::CannotUnload { .. } => StatusCode::CONFLICT,
            Self::NoStore => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadName(_) => "invalid_model_name",
            Self::NotMultipart | Self::UnsupportedEncoding { .. } => "unsupported_media_type",
            Self::Multipart(_) => "malformed_multipart",
            Self::TooLarge { .. } => "payload_too_large",
            Self::MissingPart(_) => "missing_part",
            Self::UnexpectedPart(_) => "unexpected_part",
            Self::InvalidCard(_) | Self::NameMismatch { .. } | Self::BadVersion(_) => {
                "invalid_card"
            }
            Self::InvalidModel(_) => "invalid_model",
            Self::NotProbabilities(_) => "invalid_model_output",
            Self::VersionExists { .. } => "version_exists",
            Self::UnknownModel(_) => "model_not_found",
            Self::NoPreviousVersion(_) => "no_previous_version",
            Self::VersionUnavailable { .. } => "version_unavailable",
            Self::CannotUnload { .. } => "cannot_unload",
            Self::NoStore => "model_store_unavailable",
            Self::Store(_) => "internal",
        }
    }

    fn details(&self) -> serde_json::Value {
        match self {
            Self::TooLarge { limit } => json!({"limit_bytes": limit}),
            Self::UnsupportedEncoding { got } => json!({"content_encoding": got}),
            Self::MissingPart(part) => json!({"part": part}),
            Self::VersionExists { model, version }
            | Self::VersionUnavailable { model, version } => {
                json!({"model": model, "version": version})
            }
            Self::UnknownModel(model)
            | Self::NoPreviousVersion(model)
            | Self::CannotUnload { model, .. } => json!({"model": model}),
            _ => serde_json::Value::Null,
        }
    }
}

impl IntoResponse for LifecycleError {
    fn into_response(self) -> Response {
        let server_fault = self.status().is_server_error() && !matches!(self, Self::NoStore);
        let message = if server_fault {
            // The cause (a path, an I/O error) goes to the log only.
            "internal server error".to_owned()
        } else {
            self.to_string()
        };
        let mut response = error_response(self.status(), self.code(), message, self.details());
        if server_fault {
            response.extensions_mut().insert(ErrorInfo {
                code: self.code(),
                cause: Some(self.to_string()),
            });
        }
        response
    }
}
