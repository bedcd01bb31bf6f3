//! Signing in to the dashboard and admitting its data requests: an admin key, given
//! once through the sign-in form, opens a session (see [`crate::session`]); the data
//! routes then accept the session cookie, or an admin key sent as usual (for scripts
//! and benchmarks). Sign-in, sign-out and refusals are audit events; the polls of a
//! signed-in dashboard are not, or an open tab would write an audit line every few
//! seconds.

use axum::response::Response;
use http::{HeaderMap, HeaderValue};

use crate::audit::{AuditAction, AuditEvent, Outcome};
use crate::guard::{Auth, Denied, presented_key, set_user};
use crate::role::Role;
use crate::scheme::forwarded_https;
use crate::session::{Sessions, clearing_cookie, session_cookie, session_token};

impl Auth {
    pub fn sessions(&self) -> &Sessions {
        &self.0.sessions
    }

    /// Opens a session for `key` if it is an admin key: the `Set-Cookie` value
    /// (`Secure` when `headers` say a proxy received the request over HTTPS), or the
    /// refusal to answer with.
    pub fn sign_in(
        &self,
        key: &[u8],
        headers: &HeaderMap,
        method: &str,
        route: &str,
    ) -> Result<HeaderValue, Box<Response>> {
        let keyring = self.keyring();
        let key = key.trim_ascii();
        let denied = match keyring.authenticate(key) {
            None if key.is_empty() => Denied::Missing,
            None => Denied::Invalid,
            Some(entry) if entry.role != Role::Admin => {
                Denied::Forbidden(entry.role, entry.name.clone())
            }
            Some(entry) => {
                set_user(&entry.name);
                let token = self.0.sessions.open(entry).map_err(|e| {
                    tracing::error!(target: "vigil::auth", error = %e, "session_failed");
                    Box::new(vigil_telemetry::error_response(
                        http::StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "could not open a session",
                        serde_json::Value::Null,
                    ))
                })?;
                self.audit_request(
                    AuditEvent::new(AuditAction::SignIn, Outcome::Success),
                    method,
                    route,
                );
                return Ok(session_cookie(
                    &token,
                    self.0.sessions.limits(),
                    forwarded_https(headers),
                ));
            }
        };
        Err(Box::new(self.refuse(&denied, Role::Admin, method, route)))
    }

    /// Ends the request's session, if it has one: the `Set-Cookie` value that makes
    /// the browser forget it (sent whatever the cookie held).
    pub fn sign_out(&self, headers: &HeaderMap, method: &str, route: &str) -> HeaderValue {
        if let Some(token) = session_token(headers) {
            let keyring = self.keyring();
            if let Ok(name) = self.0.sessions.check(token.as_bytes(), &keyring) {
                set_user(&name);
                self.audit_request(
                    AuditEvent::new(AuditAction::SignOut, Outcome::Success),
                    method,
                    route,
                );
            }
            self.0.sessions.close(token.as_bytes());
        }
        clearing_cookie(forwarded_https(headers))
    }

    /// The key name behind the request's session, if it has a live one. Asking is not
    /// a failure: nothing is counted or logged (the page asks before it shows the form).
    pub fn session_user(&self, headers: &HeaderMap) -> Option<std::sync::Arc<str>> {
        let token = session_token(headers)?;
        self.0
            .sessions
            .check(token.as_bytes(), &self.keyring())
            .ok()
    }

    /// Lets a dashboard data request through if it carries a live session or an admin
    /// key; otherwise the 401/403 to answer with.
    pub fn admit_dashboard(
        &self,
        headers: &HeaderMap,
        method: &str,
        route: &str,
    ) -> Result<(), Box<Response>> {
        let keyring = self.keyring();
        let denied = if let Some(key) = presented_key(headers) {
            match keyring.authenticate(key) {
                Some(entry) if entry.role == Role::Admin => {
                    set_user(&entry.name);
                    self.audit_request(
                        AuditEvent::new(AuditAction::Access, Outcome::Success),
                        method,
                        route,
                    );
                    return Ok(());
                }
                Some(entry) => Denied::Forbidden(entry.role, entry.name.clone()),
                None => Denied::Invalid,
            }
        } else if let Some(token) = session_token(headers) {
            match self.0.sessions.check(token.as_bytes(), &keyring) {
                Ok(name) => {
                    set_user(&name);
                    return Ok(());
                }
                Err(refusal) => Denied::Session(refusal),
            }
        } else {
            Denied::Missing
        };
        Err(Box::new(self.refuse(&denied, Role::Admin, method, route)))
    }
}
