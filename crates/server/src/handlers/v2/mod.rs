//! The Open Inference Protocol (KServe v2) REST routes, so that clients of Triton,
//! KServe, MLServer and Seldon (`tritonclient`, KServe's SDK, `perf_analyzer`) talk to
//! vigil: health, server and model metadata, and infer in JSON or with the binary
//! tensor data extension. The wire format is `vigil_oip`'s; a prediction takes the
//! same path as `/predict`.

mod error;
pub mod infer;
pub mod metadata;
mod schema;
mod tensors;

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use bytes::Bytes;
use http::HeaderValue;
use http::request::Parts;
use serde::Deserialize;
use vigil_telemetry::body::{BodyRejection, read_limited};

pub use error::{V2Error, is_v2, protocol_answer, protocol_errors};

use crate::error::ApiError;
use crate::state::AppState;

/// An infer body of any content type (`tritonclient` sends none), within the body
/// limit, with its `Inference-Header-Content-Length`.
#[derive(Debug)]
pub struct InferBody {
    pub bytes: Bytes,
    pub header_length: Option<HeaderValue>,
}

impl FromRequest<AppState> for InferBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let header_length = req.headers().get(vigil_oip::HEADER_LENGTH).cloned();
        let bytes = read_limited(req, state.limits.body_limit)
            .await
            .map_err(|r| match r {
                BodyRejection::PayloadTooLarge { limit } => ApiError::PayloadTooLarge { limit },
                BodyRejection::UnsupportedMediaType { got } => {
                    ApiError::UnsupportedMediaType { got }
                }
                // The protocol's errors are 400s: the same text as the other routes'.
                BodyRejection::UnsupportedEncoding { got } => {
                    ApiError::InvalidBody(ApiError::UnsupportedEncoding { got }.to_string())
                }
                BodyRejection::Read => ApiError::BodyRead,
            })?;
        if state.limits.log_payloads {
            // The JSON header only: binary tensor data is no text to log.
            let json_length = header_length
                .as_ref()
                .and_then(|v| v.to_str().ok()?.trim().parse::<usize>().ok())
                .unwrap_or(bytes.len())
                .min(bytes.len());
            crate::extract::log_payload(&bytes[..json_length]);
        }
        Ok(Self {
            bytes,
            header_length,
        })
    }
}

/// The `{name}` and `{version}` of a versioned route, with a JSON 400 instead of
/// axum's plain-text rejection.
#[derive(Debug, Deserialize)]
pub struct NameVersion {
    pub name: String,
    pub version: String,
}

impl<S: Send + Sync> FromRequestParts<S> for NameVersion {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<NameVersion>::from_request_parts(parts, state)
            .await
            .map(|Path(p)| p)
            .map_err(|e| ApiError::InvalidPath(e.body_text()))
    }
}
