//! Request extraction with the vigil error contract: content type (415), size (413,
//! refused from Content-Length before reading, and cut off while reading chunked
//! bodies), JSON syntax (400) and JSON shape (422). axum's own extractors answer in
//! plain text, so handlers use these instead.

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use bytes::Bytes;
use http::request::Parts;
use serde::de::DeserializeOwned;
use vigil_telemetry::body::{BodyRejection, read_json};

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON request body, checked for type and size but not yet parsed, so handlers can
/// parse it borrowing from the bytes. Never logged here: `log_payloads` is for
/// prediction bodies only (the prediction handlers log them), and other bodies carry
/// secrets in shapes redaction cannot know (a sign-in's key).
#[derive(Debug)]
pub struct JsonBytes(pub Bytes);

impl FromRequest<AppState> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = read_json(req, state.limits.body_limit)
            .await
            .map_err(|r| match r {
                BodyRejection::UnsupportedMediaType { got } => {
                    ApiError::UnsupportedMediaType { got }
                }
                BodyRejection::PayloadTooLarge { limit } => ApiError::PayloadTooLarge { limit },
                BodyRejection::UnsupportedEncoding { got } => ApiError::UnsupportedEncoding { got },
                BodyRejection::Read => ApiError::BodyRead,
            })?;
        Ok(Self(bytes))
    }
}

/// Most bytes of a body one `request_payload` line carries. A body may be megabytes
/// (the body limit is configurable); a line that size overflows the log buffer, is
/// refused by log pipelines (Loki's default line limit is 256 KB) and was skipped by
/// `vigil logs` itself (1 MiB a line). Escaped as a JSON string, 64 KiB stays well
/// under all three.
pub const MAX_LOGGED_PAYLOAD: usize = 64 * 1024;

/// Logs a request body with secrets redacted (only when `log_payloads` is on); a body
/// longer than [`MAX_LOGGED_PAYLOAD`] is cut there and says so.
pub(crate) fn log_payload(bytes: &[u8]) {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(mut v) => {
            vigil_telemetry::redact::redact_json(&mut v);
            let text = v.to_string();
            if text.len() <= MAX_LOGGED_PAYLOAD {
                tracing::info!(target: "vigil::payload", payload = %text, "request_payload");
            } else {
                let cut = text.floor_char_boundary(MAX_LOGGED_PAYLOAD);
                tracing::info!(
                    target: "vigil::payload",
                    payload = &text[..cut],
                    payload_bytes = text.len(),
                    payload_truncated = true,
                    "request_payload"
                );
            }
        }
        Err(_) => {
            tracing::info!(target: "vigil::payload", payload_bytes = bytes.len(), "request_payload_unparsable")
        }
    }
}

/// Maps the error a parse of `bytes` stopped at to the contract: broken syntax is 400
/// (even where a field error came first), valid JSON of the wrong shape is 422, and
/// told it must be an object when it is not one.
pub fn json_error(bytes: &[u8], e: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let e = vigil_json_body::syntax_first(bytes, e);
    if vigil_json_body::not_an_object(bytes, &e) {
        return ApiError::InvalidBody(vigil_json_body::NOT_AN_OBJECT.into());
    }
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::MalformedJson(e.to_string()),
        Category::Data => ApiError::InvalidBody(e.to_string()),
    }
}

/// Parses a whole body into `T` with the contract's errors; JSON that is not an object
/// is the wrong shape, even where `T` would take it.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let parsed = serde_json::from_slice(bytes).map_err(|e| json_error(bytes, e))?;
    object_or_refused(bytes)?;
    Ok(parsed)
}

/// 422 `invalid_body` unless the (parsed) body is a JSON object.
pub fn object_or_refused(bytes: &[u8]) -> Result<(), ApiError> {
    if vigil_json_body::is_object(bytes) {
        Ok(())
    } else {
        Err(ApiError::InvalidBody(vigil_json_body::NOT_AN_OBJECT.into()))
    }
}

/// A `{name}` path segment, with a JSON 400 instead of axum's plain-text rejection.
#[derive(Debug)]
pub struct PathName(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathName {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(name)| Self(name))
            .map_err(|e| ApiError::InvalidPath(e.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_are_400_and_shape_errors_422() {
        let syntax = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        assert_eq!(
            json_error(b"{", syntax).status(),
            http::StatusCode::BAD_REQUEST
        );
        let shape = serde_json::from_str::<Vec<u8>>("{}").unwrap_err();
        assert_eq!(
            json_error(b"{}", shape).status(),
            http::StatusCode::UNPROCESSABLE_ENTITY
        );
        // The shape error a typed parse meets first does not hide broken syntax.
        let first = serde_json::from_str::<Vec<u8>>("{,").unwrap_err();
        assert_eq!(
            json_error(b"{,", first).status(),
            http::StatusCode::BAD_REQUEST
        );
    }
}
