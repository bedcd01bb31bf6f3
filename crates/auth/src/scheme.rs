//! Whether a request reached vigil over HTTPS, as the proxy in front of it says. vigil
//! itself speaks plain HTTP; in production a load balancer or an ingress ends TLS and
//! tells the service with `Forwarded: proto=https` (RFC 7239) or the older
//! `X-Forwarded-Proto: https`. The session cookie is then marked `Secure`, so a browser
//! never sends it over a plain connection to the same host.
//!
//! The headers are trusted without knowing the proxy: a client that claims HTTPS over
//! a plain connection only gets a cookie its browser will not send back, so the claim
//! can make its own sign-in fail and nothing else. Only the first hop counts (each
//! proxy appends its own), which is the client's side of the first proxy. Parsed here
//! (two lines of each header's grammar) rather than with a crate: only `proto` of the
//! first element is read.

use http::HeaderMap;

/// Whether the first proxy in front received the request over HTTPS: the `proto` of
/// `Forwarded`'s first element, or, when that has none, `X-Forwarded-Proto`'s first
/// value. Empty list elements are skipped (RFC 9110's list rule).
pub fn forwarded_https(headers: &HeaderMap) -> bool {
    let first = |name| {
        headers
            .get_all(name)
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
            .find(|element| !element.is_empty())
    };
    // `Forwarded: for=192.0.2.1;proto=https;host=x, for=…`: the first element's pairs,
    // each `name=value` with the value maybe quoted.
    let proto = first(http::header::FORWARDED).and_then(|element| {
        element.split(|&b| b == b';').find_map(|pair| {
            let mut parts = pair.splitn(2, |&b| b == b'=');
            let name = parts.next().unwrap_or_default().trim_ascii();
            let value = parts.next().unwrap_or_default().trim_ascii();
            name.eq_ignore_ascii_case(b"proto").then(|| {
                value
                    .strip_prefix(b"\"")
                    .and_then(|v| v.strip_suffix(b"\""))
                    .unwrap_or(value)
            })
        })
    });
    proto
        .or_else(|| first(http::header::HeaderName::from_static("x-forwarded-proto")))
        .is_some_and(|proto| proto.eq_ignore_ascii_case(b"https"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn forwarded_proto_of_the_first_element() {
        assert!(forwarded_https(&with(&[("forwarded", "proto=https")])));
        assert!(forwarded_https(&with(&[(
            "forwarded",
            "for=192.0.2.60; Proto=\"HTTPS\";by=203.0.113.43, for=10.0.0.1;proto=http"
        )])));
        assert!(!forwarded_https(&with(&[(
            "forwarded",
            "for=10.0.0.1;proto=http, for=192.0.2.60;proto=https"
        )])));
        assert!(!forwarded_https(&with(&[("forwarded", "for=192.0.2.60")])));
        assert!(!forwarded_https(&with(&[("forwarded", "proto=httpsx")])));
    }

    #[test]
    fn x_forwarded_proto_first_value() {
        assert!(forwarded_https(&with(&[("x-forwarded-proto", "https")])));
        assert!(forwarded_https(&with(&[(
            "x-forwarded-proto",
            " HTTPS , http"
        )])));
        assert!(!forwarded_https(&with(&[(
            "x-forwarded-proto",
            "http, https"
        )])));
        assert!(!forwarded_https(&HeaderMap::new()));
    }

    #[test]
    fn empty_elements_and_a_forwarded_without_proto() {
        assert!(forwarded_https(&with(&[("forwarded", " , proto=https")])));
        assert!(forwarded_https(&with(&[
            ("forwarded", ""),
            ("forwarded", "proto=https")
        ])));
        assert!(forwarded_https(&with(&[("x-forwarded-proto", ", https")])));
        // A proxy that writes `Forwarded` without `proto` and says it the older way.
        assert!(forwarded_https(&with(&[
            ("forwarded", "for=192.0.2.60"),
            ("x-forwarded-proto", "https")
        ])));
    }

    #[test]
    fn forwarded_wins_over_the_older_header() {
        // A proxy that speaks RFC 7239 is the one to believe when both are present.
        assert!(!forwarded_https(&with(&[
            ("forwarded", "proto=http"),
            ("x-forwarded-proto", "https")
        ])));
    }
}
