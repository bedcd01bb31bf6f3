//! Requests hyper cannot parse. hyper answers them itself, before any service sees
//! them: an empty 400 (a request line or a header that is not HTTP/1.1), 414 (a URI
//! over its limit) or 431 (a head over its limit), with no request id and no log line,
//! then closes the connection. vigil's contract is a JSON error with a request id for
//! every bad request, so the socket wrapper ([`crate::io`]) recognises that answer on
//! its way out and writes the service's own ([`MalformedAnswer`]) in its place.
//!
//! How it is recognised: hyper writes it while the connection waits for a request head
//! (no request has gone to the service since the last response was produced), its
//! status is 4xx, and its head has no `x-request-id`, which every answer of a vigil
//! service carries.

use std::net::SocketAddr;

use bytes::Bytes;
use http::StatusCode;

/// What a service answers in place of hyper's own answer to a request it could not
/// parse: the whole HTTP/1.1 response, as the bytes to write. The connection closes
/// after it, as it would after hyper's.
pub trait MalformedAnswer: Send + Sync + std::fmt::Debug + 'static {
    fn answer(&self, status: StatusCode, peer: SocketAddr) -> Bytes;
}

/// The status of hyper's own answer to an unparsable request, when `head` (the first
/// bytes hyper writes) is one.
pub(crate) fn hyper_answer(head: &[u8]) -> Option<StatusCode> {
    if !head.starts_with(b"HTTP/1.1 4") {
        return None;
    }
    let end = head.windows(4).position(|w| w == b"\r\n\r\n")?;
    let stamped = head[..end]
        .split(|&b| b == b'\n')
        .any(|line| line.len() > 13 && line[..13].eq_ignore_ascii_case(b"x-request-id:"));
    if stamped {
        return None;
    }
    StatusCode::from_bytes(head.get(9..12)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unstamped_4xx_head_is_hypers_own_answer() {
        let hyper = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: Fri, 04 Dec 2026 19:00:00 GMT\r\n\r\n";
        assert_eq!(hyper_answer(hyper), Some(StatusCode::BAD_REQUEST));
        let long = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(
            hyper_answer(long),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        assert_eq!(
            hyper_answer(b"HTTP/1.1 414 URI Too Long\r\n\r\n"),
            Some(StatusCode::URI_TOO_LONG)
        );
        // A service's answer: stamped with its request id.
        let ours = b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\nX-Request-ID: r-1\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(hyper_answer(ours), None);
        for other in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 503 Service Unavailable\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
            b"{\"error\": 1}",
            b"",
        ] {
            assert_eq!(
                hyper_answer(other),
                None,
                "{:?}",
                String::from_utf8_lossy(other)
            );
        }
    }
}
