//! Keeping secrets out of logs: names that look like credentials, and query strings.

/// The value written in place of a secret.
pub const REDACTED: &str = "[REDACTED]";

/// Whether a field, header or parameter name is likely to hold a secret.
pub fn is_sensitive(name: &str) -> bool {
    // Called for every query parameter and on each log callsite's field names
    // (`field_secrets`): dispatch on each byte's lowercase form and compare only the
    // needles that can start there, instead of sliding all eleven needles over the name.
    let b = name.as_bytes();
    (0..b.len()).any(|i| {
        let rest = &b[i..];
        let starts = |n: &[u8]| rest.len() >= n.len() && rest[..n.len()].eq_ignore_ascii_case(n);
        match b[i] | 0x20 {
            b'p' => starts(b"password") || starts(b"passwd"),
            b't' => starts(b"token"),
            b's' => starts(b"secret") || starts(b"signature"),
            b'a' => {
                starts(b"api_key")
                    || starts(b"apikey")
                    || starts(b"api-key")
                    || starts(b"authorization")
            }
            b'c' => starts(b"cookie") || starts(b"credential"),
            _ => false,
        }
    })
}

/// The query string with the values of sensitive parameters replaced. Pairs are
/// split at `&` and at `;` (which some servers and proxies take as a separator too),
/// so `x=1;api_key=…` is redacted as well.
pub fn redact_query(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    for piece in query.split_inclusive(['&', ';']) {
        let (pair, separator) = match piece.strip_suffix(['&', ';']) {
            Some(pair) => (pair, &piece[pair.len()..]),
            None => (piece, ""),
        };
        match pair.split_once('=') {
            Some((name, _)) if is_sensitive_parameter(&percent_decode_lossy(name)) => {
                out.push_str(name);
                out.push('=');
                out.push_str(REDACTED);
            }
            Some(_) => out.push_str(pair),
            // No `=` but an encoded one (`password%3Ds3cret`): a server would read one
            // name, a person the secret; the whole pair goes.
            None => match percent_decode_lossy(pair).split_once('=') {
                Some((name, _)) if is_sensitive_parameter(name) => out.push_str(REDACTED),
                _ => out.push_str(pair),
            },
        }
        out.push_str(separator);
    }
    out
}

/// A query parameter whose value is a secret: a sensitive name, or exactly one of the
/// short names APIs take keys and sessions under (`?key=…`, `?auth=…`, `?session=…`,
/// `?sid=…`, `?sig=…`). Not these inside a name: log field names such as
/// `predict_keys` or `session` go through [`is_sensitive`] and are counts or states,
/// not secrets.
fn is_sensitive_parameter(name: &str) -> bool {
    [
        "key",
        "auth",
        "session",
        "session_id",
        "sessionid",
        "sid",
        "sig",
    ]
    .iter()
    .any(|short| name.eq_ignore_ascii_case(short))
        || is_sensitive(name)
}

/// `text` with the user information of every URL in it (`scheme://user:password@`)
/// replaced: a collector or database URL may carry credentials, and both are quoted in
/// log lines and error messages.
pub fn redact_url_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The authority ends at the first `/`, `?`, `#`, quote or space; userinfo is
        // what comes before its last `@`.
        let end = tail
            .find(['/', '?', '#', '"', '\'', ' ', '\n'])
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(userinfo) => {
                out.push_str(REDACTED);
                rest = &tail[userinfo..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// `url`, one whole URL (a configured collector or database URL), with its user
/// information replaced. Unlike [`redact_url_userinfo`], which finds URLs in free text
/// and so ends one at a space or a quote, the authority here ends only at `/`, `?` or
/// `#`: a password with a space or a quote in it is still inside it.
pub fn redact_url(url: &str) -> String {
    let Some(at) = url.find("://") else {
        return url.to_owned();
    };
    let (head, tail) = url.split_at(at + 3);
    let end = tail.find(['/', '?', '#']).unwrap_or(tail.len());
    match tail[..end].rfind('@') {
        Some(userinfo) => format!("{head}{REDACTED}{}", &tail[userinfo..]),
        None => url.to_owned(),
    }
}

/// Replaces the values of sensitive keys anywhere in a JSON document (for `log_payloads`).
pub fn redact_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if is_sensitive(k) {
                    *v = serde_json::Value::String(REDACTED.into());
                } else {
                    redact_json(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_json),
        _ => {}
    }
}

/// Enough percent-decoding to see `api%5Fkey` as `api_key`.
fn percent_decode_lossy(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push(h * 16 + l);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_names_anywhere_in_any_case() {
        let sensitive = [
            "password",
            "user_password",
            "PASSWD",
            "x-auth-token",
            "Token",
            "client_secret",
            "api_key",
            "APIKEY",
            "X-Api-Key",
            "authorization",
            "Proxy-Authorization",
            "set-cookie",
            "COOKIE",
            "passwordx",
        ];
        for name in sensitive {
            assert!(is_sensitive(name), "{name}");
        }
        let harmless = [
            "",
            "p",
            "pass",
            "passw",
            "tok",
            "toke",
            "secre",
            "api",
            "api key",
            "cooki",
            "method",
            "route",
            "status",
            "duration_ms",
            "client_ip",
            "apartment",
            "authoriz",
            "user",
            "request_id",
        ];
        for name in harmless {
            assert!(!is_sensitive(name), "{name}");
        }
    }

    #[test]
    fn redacts_sensitive_query_parameters() {
        assert_eq!(
            redact_query("a=1&token=abc&b=2"),
            "a=1&token=[REDACTED]&b=2"
        );
        assert_eq!(redact_query("API%5FKEY=s3cret"), "API%5FKEY=[REDACTED]");
        assert_eq!(redact_query("access_token=x"), "access_token=[REDACTED]");
        assert_eq!(redact_query("plain"), "plain");
        assert_eq!(
            redact_query("a=1&password%3Ds3cret&KEY%3Dabc&x%3D1"),
            "a=1&[REDACTED]&[REDACTED]&x%3D1"
        );
        assert_eq!(
            redact_query("x=1;api_key=s3cret&y=2;"),
            "x=1;api_key=[REDACTED]&y=2;"
        );
        assert_eq!(redact_query("a=1&&b"), "a=1&&b");
        assert_eq!(
            redact_query("KEY=s3cret&monkey=1"),
            "KEY=[REDACTED]&monkey=1"
        );
        // Sessions, short auth names, signed URLs' credentials and signatures.
        assert_eq!(
            redact_query(
                "auth=a&session=b&SID=c&sig=d&X-Amz-Credential=e&X-Amz-Signature=g&sessionId=h&sessions=2&author=f"
            ),
            "auth=[REDACTED]&session=[REDACTED]&SID=[REDACTED]&sig=[REDACTED]&X-Amz-Credential=[REDACTED]&X-Amz-Signature=[REDACTED]&sessionId=[REDACTED]&sessions=2&author=f"
        );
    }

    #[test]
    fn redacts_the_userinfo_of_a_whole_url_whatever_its_password_holds() {
        for url in [
            "http://svc:Tr0ub4dor'Z@127.0.0.1:18301",
            "http://bob:se cret@127.0.0.1:18301/x?y=1",
            "http://svc:p@ss word\"x@127.0.0.1:18301",
        ] {
            let r = redact_url(url);
            assert!(
                r.starts_with("http://[REDACTED]@127.0.0.1:18301"),
                "{url}: {r}"
            );
        }
        assert_eq!(redact_url("http://127.0.0.1:8001"), "http://127.0.0.1:8001");
        assert_eq!(
            redact_url("http://127.0.0.1:8001/a@b"),
            "http://127.0.0.1:8001/a@b"
        );
    }

    #[test]
    fn redacts_the_userinfo_of_urls_in_text() {
        assert_eq!(
            redact_url_userinfo("invalid collector url \"http://u:hunter2@host:1/x\": bad"),
            "invalid collector url \"http://[REDACTED]@host:1/x\": bad"
        );
        assert_eq!(
            redact_url_userinfo("postgres://a:b@h/db and https://c@d"),
            "postgres://[REDACTED]@h/db and https://[REDACTED]@d"
        );
        // A password holding `@` goes whole; URLs without userinfo are left as they are.
        assert_eq!(
            redact_url_userinfo("http://u:p@ss@h"),
            "http://[REDACTED]@h"
        );
        assert_eq!(
            redact_url_userinfo("http://h/a@b and plain"),
            "http://h/a@b and plain"
        );
    }

    #[test]
    fn redacts_nested_json_keys() {
        let mut v = serde_json::json!({"user": {"Password": "hunter2", "name": "a"}, "list": [{"client_secret": 1}]});
        redact_json(&mut v);
        assert_eq!(v["user"]["Password"], REDACTED);
        assert_eq!(v["user"]["name"], "a");
        assert_eq!(v["list"][0]["client_secret"], REDACTED);
    }
}
