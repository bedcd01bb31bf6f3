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

/// Longest `message` an error body carries, in bytes. Messages quote what the request
/// sent (a model name, a header's value, an unknown field), and a request may send up
/// to its limits (a 408 KiB head, the body limit): a quote that long helps nobody,
/// and it made `/v2`'s rewritten answers outgrow their buffer.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// `message` cut to at most [`MAX_MESSAGE_BYTES`] on a character boundary, `…`
/// marking the cut (within the bound).
pub fn bounded_message(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES - '…'.len_utf8();
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

/// `Retry-After: 1` on a 503 or 429: every such answer of vigil's says when to ask
/// again, so a client backs off instead of retrying at once.
pub fn retry_after(response: &mut Response) {
    let status = response.status();
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
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
            message: bounded_message(message.into()),
            details: if details.is_null() {
                empty_object()
            } else {
                bounded_strings(details)
            },
        },
        request_id: context::current_request_id(),
    };
    let mut response = (status, Json(body)).into_response();
    retry_after(&mut response);
    response
        .extensions_mut()
        .insert(ErrorInfo { code, cause: None });
    response
}

/// Every string in `details` bounded as a message is: details quote the request too
/// (a model name from a body, a content type).
fn bounded_strings(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(bounded_message(s)),
        Value::Array(items) => Value::Array(items.into_iter().map(bounded_strings).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k, bounded_strings(v)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        assert_eq!(bounded_message("short".into()), "short");
        let exact = "a".repeat(MAX_MESSAGE_BYTES);
        assert_eq!(bounded_message(exact.clone()), exact);
        // A two-byte character straddling the limit goes whole.
        let long = format!(
            "{}é{}",
            "a".repeat(MAX_MESSAGE_BYTES - 1),
            "b".repeat(70_000)
        );
        let cut = bounded_message(long);
        assert_eq!(cut, format!("{}…", "a".repeat(MAX_MESSAGE_BYTES - 3)));
        assert_eq!(cut.len(), MAX_MESSAGE_BYTES);
        // A three-byte character straddling the cut goes whole.
        let snowmen = "☃".repeat(400);
        let cut = bounded_message(snowmen);
        assert!(cut.len() <= MAX_MESSAGE_BYTES, "{}", cut.len());
        assert_eq!(cut, format!("{}…", "☃".repeat(340)));
    }

    #[test]
    fn strings_in_details_are_bounded_too() {
        let long = "m".repeat(5000);
        let details = serde_json::json!({"model": long, "errors": [{"field": long}], "n": 3});
        let bounded = bounded_strings(details);
        assert_eq!(bounded["model"].as_str().unwrap().len(), MAX_MESSAGE_BYTES);
        assert_eq!(bounded["errors"][0]["field"], bounded["model"]);
        assert_eq!(bounded["n"], 3);
    }
}
