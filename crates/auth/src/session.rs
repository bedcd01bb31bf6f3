//! Dashboard sessions. The dashboard signs in with an admin key once, through a form;
//! from then on the browser holds only a random session token in a cookie that scripts
//! cannot read (`HttpOnly`), that other sites cannot make it send (`SameSite=Strict`)
//! and that goes only to `/dashboard` (`Path`). The key itself is never stored by the
//! browser, never in a URL, never logged.
//!
//! The server keeps, per session, only the SHA-256 of its token, the hash of the key
//! that opened it and two times. A session ends when it is signed out, when it was
//! idle too long, when it grew too old, or when its key is revoked or loses its admin
//! role (checked on every use against the keyring in force). The store is bounded:
//! past [`SessionLimits::max_sessions`] the least recently used session is closed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use cookie::{Cookie, SameSite};
use http::{HeaderMap, HeaderValue, header};
use parking_lot::Mutex;

use crate::error::KeyError;
use crate::key::KeyHash;
use crate::keyring::{KeyEntry, Keyring};
use crate::role::Role;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "vigil_session";
/// The only path the cookie is sent to.
pub const SESSION_PATH: &str = "/dashboard";

/// How long sessions live and how many there can be.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// A session unused this long ends (an open dashboard polls every few seconds, so
    /// only a closed one goes idle).
    pub idle: Duration,
    /// No session outlives this, however busy.
    pub absolute: Duration,
    pub max_sessions: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(30 * 60),
            absolute: Duration::from_secs(12 * 3600),
            max_sessions: 64,
        }
    }
}

/// Why a session token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRefusal {
    /// Not a token this process issued (forged, or from before a restart).
    Unknown,
    /// Idle too long, or older than the absolute lifetime.
    Expired,
    /// Its key was revoked or is no longer an admin key.
    Revoked,
}

impl SessionRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

#[derive(Debug)]
struct Session {
    key: KeyHash,
    created: Instant,
    seen: Instant,
}

/// The open sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    limits: SessionLimits,
    open: Mutex<HashMap<KeyHash, Session>>,
}

impl Sessions {
    pub fn new(limits: SessionLimits) -> Self {
        Self {
            limits,
            open: Mutex::new(HashMap::new()),
        }
    }

    pub fn limits(&self) -> SessionLimits {
        self.limits
    }

    /// Opens a session for an admin key; the token to put in the cookie.
    pub fn open(&self, key: &KeyEntry) -> Result<String, KeyError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let now = Instant::now();
        let mut open = self.open.lock();
        self.expire(&mut open, now);
        if open.len() >= self.limits.max_sessions
            && let Some(oldest) = open.iter().min_by_key(|(_, s)| s.seen).map(|(t, _)| *t)
        {
            open.remove(&oldest);
        }
        open.insert(
            KeyHash::of(token.as_bytes()),
            Session {
                key: key.hash(),
                created: now,
                seen: now,
            },
        );
        Ok(token)
    }

    /// The name of the admin key behind `token`, if its session is still good.
    pub fn check(&self, token: &[u8], keyring: &Keyring) -> Result<Arc<str>, SessionRefusal> {
        self.check_at(token, keyring, Instant::now())
    }

    fn check_at(
        &self,
        token: &[u8],
        keyring: &Keyring,
        now: Instant,
    ) -> Result<Arc<str>, SessionRefusal> {
        // Looked up by the token's hash: how long the lookup takes says nothing about
        // the tokens held.
        let id = KeyHash::of(token);
        let mut open = self.open.lock();
        let session = open.get_mut(&id).ok_or(SessionRefusal::Unknown)?;
        if self.is_expired(session, now) {
            open.remove(&id);
            return Err(SessionRefusal::Expired);
        }
        match keyring.by_hash(&session.key) {
            Some(entry) if entry.role == Role::Admin => {
                session.seen = now;
                Ok(entry.name.clone())
            }
            _ => {
                open.remove(&id);
                Err(SessionRefusal::Revoked)
            }
        }
    }

    /// Ends the session of `token`, if there is one.
    pub fn close(&self, token: &[u8]) {
        self.open.lock().remove(&KeyHash::of(token));
    }

    pub fn len(&self) -> usize {
        self.open.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn is_expired(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.seen) > self.limits.idle
            || now.duration_since(s.created) > self.limits.absolute
    }

    fn expire(&self, open: &mut HashMap<KeyHash, Session>, now: Instant) {
        open.retain(|_, s| !self.is_expired(s, now));
    }
}

/// The session token a request carries in its cookies, if any.
pub fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| Cookie::parse(pair.trim()).ok())
        .find(|c| c.name() == SESSION_COOKIE)
        .map(|c| c.value_raw().unwrap_or_default())
        .filter(|v| !v.is_empty())
}

/// `Set-Cookie` for a new session; `secure` when the request came over HTTPS (see
/// [`crate::scheme`]).
pub fn session_cookie(token: &str, limits: SessionLimits, secure: bool) -> HeaderValue {
    cookie_header(
        Cookie::build((SESSION_COOKIE, token)).max_age(cookie::time::Duration::seconds(
            limits.absolute.as_secs() as i64,
        )),
        secure,
    )
}

/// `Set-Cookie` that makes the browser forget the session (with the same attributes,
/// or a browser keeps a `Secure` cookie it was told to drop without them).
pub fn clearing_cookie(secure: bool) -> HeaderValue {
    cookie_header(
        Cookie::build((SESSION_COOKIE, "")).max_age(cookie::time::Duration::ZERO),
        secure,
    )
}

fn cookie_header(builder: cookie::CookieBuilder<'_>, secure: bool) -> HeaderValue {
    let cookie = builder
        .path(SESSION_PATH)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .build();
    // Tokens are base64url: always a valid header value.
    HeaderValue::from_str(&cookie.to_string()).expect("cookie header is ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::KeySpec;

    fn keyring(role: Role) -> (Keyring, String) {
        let (key, spec) = KeySpec::generate("ops", role, None).unwrap();
        (Keyring::new([&spec]).unwrap(), key)
    }

    fn entry<'k>(keyring: &'k Keyring, key: &str) -> &'k KeyEntry {
        keyring.authenticate(key.as_bytes()).unwrap()
    }

    #[test]
    fn a_session_names_its_key_until_it_is_closed() {
        let (keys, key) = keyring(Role::Admin);
        let sessions = Sessions::default();
        let token = sessions.open(entry(&keys, &key)).unwrap();
        assert_ne!(token, key);
        assert_eq!(&*sessions.check(token.as_bytes(), &keys).unwrap(), "ops");
        assert_eq!(
            sessions.check(b"forged", &keys),
            Err(SessionRefusal::Unknown)
        );
        sessions.close(token.as_bytes());
        assert_eq!(
            sessions.check(token.as_bytes(), &keys),
            Err(SessionRefusal::Unknown)
        );
    }

    #[test]
    fn idle_and_old_sessions_expire() {
        let (keys, key) = keyring(Role::Admin);
        let limits = SessionLimits {
            idle: Duration::from_secs(60),
            absolute: Duration::from_secs(300),
            max_sessions: 8,
        };
        let sessions = Sessions::new(limits);
        let t0 = Instant::now();
        let idle = sessions.open(entry(&keys, &key)).unwrap();
        let busy = sessions.open(entry(&keys, &key)).unwrap();
        // Used every 50 s, `busy` stays; `idle` is not used and goes after 60 s.
        for step in 1..=5u64 {
            let at = t0 + Duration::from_secs(50 * step);
            assert!(sessions.check_at(busy.as_bytes(), &keys, at).is_ok());
        }
        let at = t0 + Duration::from_secs(260);
        assert_eq!(
            sessions.check_at(idle.as_bytes(), &keys, at),
            Err(SessionRefusal::Expired)
        );
        let at = t0 + Duration::from_secs(301);
        assert_eq!(
            sessions.check_at(busy.as_bytes(), &keys, at),
            Err(SessionRefusal::Expired)
        );
        assert!(sessions.is_empty());
    }

    #[test]
    fn a_revoked_key_ends_its_sessions() {
        let (keys, key) = keyring(Role::Admin);
        let sessions = Sessions::default();
        let token = sessions.open(entry(&keys, &key)).unwrap();
        let (other, _) = keyring(Role::Admin);
        assert_eq!(
            sessions.check(token.as_bytes(), &other),
            Err(SessionRefusal::Revoked)
        );
        assert_eq!(
            sessions.check(token.as_bytes(), &keys),
            Err(SessionRefusal::Unknown)
        );
    }

    #[test]
    fn the_store_is_bounded() {
        let (keys, key) = keyring(Role::Admin);
        let sessions = Sessions::new(SessionLimits {
            max_sessions: 3,
            ..SessionLimits::default()
        });
        let first = sessions.open(entry(&keys, &key)).unwrap();
        for _ in 0..5 {
            sessions.open(entry(&keys, &key)).unwrap();
        }
        assert_eq!(sessions.len(), 3);
        assert!(sessions.check(first.as_bytes(), &keys).is_err());
    }

    #[test]
    fn cookies_are_http_only_strict_and_scoped() {
        let set = session_cookie("abc", SessionLimits::default(), false);
        let set = set.to_str().unwrap();
        for part in [
            "vigil_session=abc",
            "HttpOnly",
            "SameSite=Strict",
            "Path=/dashboard",
            "Max-Age=43200",
        ] {
            assert!(set.contains(part), "{set}");
        }
        assert!(!set.contains("Secure"), "{set}");
        assert!(
            clearing_cookie(false)
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
        );
        let secure = session_cookie("abc", SessionLimits::default(), true);
        assert!(secure.to_str().unwrap().contains("; Secure"), "{secure:?}");
        let cleared = clearing_cookie(true);
        let cleared = cleared.to_str().unwrap();
        assert!(
            cleared.contains("; Secure") && cleared.contains("Max-Age=0"),
            "{cleared}"
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; vigil_session=tok; b=2"),
        );
        assert_eq!(session_token(&headers), Some("tok"));
        headers.insert(header::COOKIE, HeaderValue::from_static("vigil_session="));
        assert_eq!(session_token(&headers), None);
    }
}
