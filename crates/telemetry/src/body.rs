//! Reading a request body at the HTTP edge, the same way in every service: for JSON
//! bodies the content type must be JSON (415 otherwise); for any body a declared
//! length over the limit is refused before reading, and a chunked body is cut off as
//! soon as it crosses the limit (413), so an oversized upload is never buffered whole;
//! a compressed body (a `Content-Encoding` other than `identity`) is refused (415).

use axum::extract::Request;
use bytes::Bytes;
use http::header;
use http_body_util::{BodyExt, LengthLimitError, Limited};

/// Why a body was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyRejection {
    /// Not `application/json` or `application/*+json` (the header as sent, cut short).
    UnsupportedMediaType {
        got: Option<String>,
    },
    PayloadTooLarge {
        limit: usize,
    },
    /// A `Content-Encoding` other than `identity` (as sent, cut short): bodies are read
    /// as they come, so a compressed one would be parsed as garbage.
    UnsupportedEncoding {
        got: String,
    },
    /// The client broke off or sent a malformed chunk.
    Read,
}

/// Whether a `Content-Type` names JSON.
pub fn is_json(content_type: &str) -> bool {
    let media = content_type.split(';').next().unwrap_or("").trim();
    let Some((kind, sub)) = media.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (sub.eq_ignore_ascii_case("json") || sub.to_ascii_lowercase().ends_with("+json"))
}

/// Reads a JSON body of at most `limit` bytes.
pub async fn read_json(req: Request, limit: usize) -> Result<Bytes, BodyRejection> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    if !content_type.as_deref().is_some_and(is_json) {
        return Err(BodyRejection::UnsupportedMediaType {
            got: content_type.map(|c| c.chars().take(100).collect()),
        });
    }
    read_limited(req, limit).await
}

/// Reads a body of any media type (the caller has checked it), at most `limit`
/// bytes: a larger declared `Content-Length` is refused before reading.
pub async fn read_limited(req: Request, limit: usize) -> Result<Bytes, BodyRejection> {
    if let Some(got) = unsupported_encoding(req.headers()) {
        return Err(BodyRejection::UnsupportedEncoding { got });
    }
    if declared_over(req.headers(), limit) {
        return Err(BodyRejection::PayloadTooLarge { limit });
    }
    let body = Limited::new(req.into_body(), limit)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<LengthLimitError>().is_some() {
                BodyRejection::PayloadTooLarge { limit }
            } else {
                BodyRejection::Read
            }
        })?;
    Ok(body.to_bytes())
}

/// The request's `Content-Encoding` (as sent, cut short) when it is not `identity`:
/// bodies are read as they come, so a compressed one would be read as garbage.
/// Every `Content-Encoding` header counts: a second one (`identity`, then `gzip`)
/// applies as much as the first.
pub fn unsupported_encoding(headers: &http::HeaderMap) -> Option<String> {
    let coding = headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .map(|v| v.as_bytes().trim_ascii())
        .find(|c| !c.is_empty() && !c.eq_ignore_ascii_case(b"identity"))?;
    Some(String::from_utf8_lossy(coding).chars().take(100).collect())
}

/// Whether the request's `Content-Length` declares more than `limit` bytes: such a
/// body is refused before a byte of it is read (a client that declares 300 MB and
/// then stalls is answered at once, not when the request times out).
pub fn declared_over(headers: &http::HeaderMap, limit: usize) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > limit as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_content_encoding_header_but_identity_is_unsupported() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(unsupported_encoding(&headers), None);
        headers.append(header::CONTENT_ENCODING, "identity".parse().unwrap());
        assert_eq!(unsupported_encoding(&headers), None);
        headers.append(header::CONTENT_ENCODING, "gzip".parse().unwrap());
        assert_eq!(unsupported_encoding(&headers).as_deref(), Some("gzip"));
        let mut one = http::HeaderMap::new();
        one.insert(header::CONTENT_ENCODING, "identity, gzip".parse().unwrap());
        assert_eq!(
            unsupported_encoding(&one).as_deref(),
            Some("identity, gzip")
        );
    }

    #[test]
    fn json_media_types() {
        assert!(is_json("application/json"));
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("Application/JSON"));
        assert!(is_json("application/vnd.api+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
        assert!(!is_json("json"));
    }
}
