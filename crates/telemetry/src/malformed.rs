//! A service's answer to a request hyper could not parse (`vigil_listener` puts it in
//! place of hyper's empty 400, 414 or 431): the error shape every vigil answer has,
//! with a fresh request id in the body and in `X-Request-ID`, and an access line, so
//! that a client and an operator see it as any other bad request. It is not counted in
//! `http_requests_total`: no method or route was read, and the connection it closes is
//! counted in `http_connections_closed_total{reason="error"}`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::StatusCode;
use vigil_listener::MalformedAnswer;

use crate::context::{self, RequestContext, RequestId, TraceContext};
use crate::error::{ErrorBody, ErrorDetail, empty_object};

/// The answer of one service (`service` names it in the access line).
#[derive(Debug)]
pub struct Malformed {
    service: &'static str,
}

impl Malformed {
    pub fn new(service: &'static str) -> Arc<Self> {
        Arc::new(Self { service })
    }
}

/// The error code and message for the status hyper chose.
fn code(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::URI_TOO_LONG => ("uri_too_long", "the request's URI is too long"),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
            "headers_too_large",
            "the request's head is too large (too many or too long header fields)",
        ),
        _ => (
            "malformed_request",
            "the request is not HTTP/1.1: its request line or a header field does not parse",
        ),
    }
}

impl MalformedAnswer for Malformed {
    fn answer(&self, status: StatusCode, peer: SocketAddr) -> Bytes {
        let (code, message) = code(status);
        let ctx = Arc::new(RequestContext::new(
            RequestId::generate(),
            TraceContext::from_headers(&http::HeaderMap::new()),
            self.service,
        ));
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message: message.to_owned(),
                details: empty_object(),
            },
            request_id: ctx.request_id.to_string(),
        };
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let head = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\nx-request-id: {}\r\n\
             content-length: {}\r\nconnection: close\r\ndate: {}\r\n\r\n",
            status.as_str(),
            status.canonical_reason().unwrap_or_default(),
            ctx.request_id,
            body.len(),
            httpdate::fmt_http_date(SystemTime::now()),
        );
        let response_bytes = body.len();
        context::sync_scope(ctx, || {
            tracing::info!(
                target: "vigil::access",
                route = "unmatched",
                status = status.as_u16(),
                duration_ms = 0.0,
                request_bytes = 0u64,
                response_bytes,
                client_ip = %peer.ip(),
                user = "anonymous",
                error_code = code,
                "request_completed"
            );
        });
        let mut out = head.into_bytes();
        out.extend_from_slice(&body);
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_the_error_shape_with_a_request_id_in_head_and_body() {
        let peer: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        for (status, code) in [
            (StatusCode::BAD_REQUEST, "malformed_request"),
            (StatusCode::URI_TOO_LONG, "uri_too_long"),
            (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
            ),
        ] {
            let bytes = Malformed::new("inference").answer(status, peer);
            let text = std::str::from_utf8(&bytes).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(
                head.starts_with(&format!("HTTP/1.1 {} ", status.as_u16())),
                "{head}"
            );
            let id = head
                .lines()
                .find_map(|l| l.strip_prefix("x-request-id: "))
                .unwrap();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(length, body.len());
            let parsed: ErrorBody = serde_json::from_str(body).unwrap();
            assert_eq!(parsed.error.code, code);
            assert_eq!(parsed.request_id, id);
            assert_eq!(parsed.error.details, serde_json::json!({}));
        }
    }
}
