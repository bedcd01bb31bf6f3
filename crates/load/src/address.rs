//! The two addresses `vigil load` talks to, `--target` and `--collector`, checked
//! before any traffic: request paths are appended to them as text (`{base}/models`),
//! so a URL that does not parse, has no host, or holds a query or a fragment would
//! send every request somewhere else (`http://` + `/models` is host `models`;
//! `…?x=1` + `/models` is a query). They may carry a password (`http://u:p@host`),
//! so what is shown of them — in messages and the report — has it masked.

use reqwest::Url;

/// What is shown in place of a URL's user information (as the services do in their
/// log lines).
const MASK: &str = "[REDACTED]";

/// A checked base URL: http, a host, no query, no fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// Without its trailing `/`, so `{base}{path}` is the request's URL.
    base: String,
    /// The same with its user information masked, for messages and the report.
    shown: String,
}

/// Why a `--target` or `--collector` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlFault {
    /// The reason is the URL parser's (`relative URL without a base`, `empty host`).
    #[error("is not a URL ({0}); write it as http://host:port")]
    Unparsable(String),
    /// Another scheme (`ftp://`, or `localhost:8000`, whose scheme reads `localhost`).
    #[error("must start with http:// (write it as http://host:port)")]
    Scheme,
    /// `https://`: the HTTP client is built without TLS, so every request would fail
    /// at connect time; better said once, before the run.
    #[error(
        "is https://, but vigil load speaks plain HTTP only (no TLS in this build): use http://, or a TLS-terminating proxy"
    )]
    Https,
    #[error("has no host")]
    NoHost,
    #[error("must not hold a query (`?…`): request paths are appended to it")]
    Query,
    #[error("must not hold a fragment (`#…`): request paths are appended to it")]
    Fragment,
}

impl BaseUrl {
    /// Checks `text` as a base URL. The fault never quotes the URL: it may carry a
    /// password, and the person who typed it has it in front of them.
    pub fn parse(text: &str) -> Result<Self, UrlFault> {
        let url = Url::parse(text).map_err(|e| UrlFault::Unparsable(e.to_string()))?;
        match url.scheme() {
            "http" => {}
            "https" => return Err(UrlFault::Https),
            _ => return Err(UrlFault::Scheme),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(UrlFault::NoHost);
        }
        if url.query().is_some() {
            return Err(UrlFault::Query);
        }
        if url.fragment().is_some() {
            return Err(UrlFault::Fragment);
        }
        let base = url.as_str().trim_end_matches('/').to_owned();
        let shown = if url.username().is_empty() && url.password().is_none() {
            base.clone()
        } else {
            let mut bare = url.clone();
            // Neither fails on an http URL with a host (checked above).
            let _ = bare.set_username("");
            let _ = bare.set_password(None);
            let bare = bare.as_str().trim_end_matches('/');
            let (scheme, rest) = bare.split_once("://").unwrap_or(("http", bare));
            format!("{scheme}://{MASK}@{rest}")
        };
        Ok(Self { base, shown })
    }

    /// The URL of `path` (which starts with `/`) under this base.
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The base as it may be shown: user information masked.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// [`Self::join`], as it may be shown.
    pub fn shown_join(&self, path: &str) -> String {
        format!("{}{path}", self.shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_url_is_http_with_a_host_and_nothing_after_its_path() {
        for (text, fault) in [
            (
                "127.0.0.1:18100",
                UrlFault::Unparsable("relative URL without a base".into()),
            ),
            ("http://", UrlFault::Unparsable("empty host".into())),
            ("http://:8000", UrlFault::Unparsable("empty host".into())),
            (
                "http://127.0.0.1:99999",
                UrlFault::Unparsable("invalid port number".into()),
            ),
            ("ftp://127.0.0.1:8000", UrlFault::Scheme),
            ("localhost:8000", UrlFault::Scheme),
            ("https://127.0.0.1:8000", UrlFault::Https),
            ("http://127.0.0.1:8000/?x=1", UrlFault::Query),
            ("http://127.0.0.1:8000?", UrlFault::Query),
            ("http://127.0.0.1:8000/#frag", UrlFault::Fragment),
        ] {
            assert_eq!(BaseUrl::parse(text), Err(fault), "{text}");
        }
        let url = BaseUrl::parse("http://127.0.0.1:8000/").unwrap();
        assert_eq!(url.join("/models"), "http://127.0.0.1:8000/models");
        assert_eq!(url.shown(), "http://127.0.0.1:8000");
        // A path prefix (a service behind a proxy) stays.
        let url = BaseUrl::parse("http://proxy.example/vigil/").unwrap();
        assert_eq!(url.join("/predict"), "http://proxy.example/vigil/predict");
    }

    #[test]
    fn user_information_is_kept_for_requests_and_masked_when_shown() {
        let url = BaseUrl::parse("http://user:s3cret@127.0.0.1:8001/").unwrap();
        assert_eq!(
            url.join("/feedback"),
            "http://user:s3cret@127.0.0.1:8001/feedback"
        );
        assert_eq!(url.shown(), "http://[REDACTED]@127.0.0.1:8001");
        assert_eq!(
            url.shown_join("/feedback"),
            "http://[REDACTED]@127.0.0.1:8001/feedback"
        );
        let url = BaseUrl::parse("http://s3cret@host").unwrap();
        assert_eq!(url.shown(), "http://[REDACTED]@host");
        // No fault quotes the URL it refuses.
        let fault = BaseUrl::parse("http://u:s3cret@host/?token=s3cret").unwrap_err();
        assert!(!fault.to_string().contains("s3cret"), "{fault}");
    }
}
