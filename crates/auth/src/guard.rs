//! The guard in front of protected routes: finds the key (`Authorization: Bearer` or
//! `X-API-Key`), checks it against the current keyring and the role the routes need,
//! and either names the caller and passes the request on, or answers 401/403 in
//! vigil's error shape. Failures are logged (never the key) and counted; every use of
//! an admin route, allowed or not, is an audit event.
//!
//! Hand-written as a tower service rather than `axum::middleware::from_fn` so the
//! prediction path pays no boxed future: a request with keys configured costs one
//! SHA-256 and a few comparisons, and no allocation.

use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use axum::body::Body;
use axum::extract::MatchedPath;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use pin_project_lite::pin_project;
use prometheus_client::registry::Registry;

use crate::audit::{AuditAction, AuditEvent, Outcome};
use crate::keyring::{KeyEntry, Keyring};
use crate::metrics::{AuthMetrics, FailureReason};
use crate::role::Role;
use crate::session::{SessionLimits, SessionRefusal, Sessions};

/// The header some clients use instead of `Authorization`.
pub const API_KEY_HEADER: &str = "x-api-key";

/// The keyring in force (swapped whole when keys change) and the auth metrics.
#[derive(Debug, Clone)]
pub struct Auth(pub(crate) Arc<Inner>);

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) keyring: ArcSwap<Keyring>,
    pub(crate) metrics: AuthMetrics,
    /// The dashboard's signed-in sessions.
    pub(crate) sessions: Sessions,
}

impl Auth {
    pub fn new(keyring: Keyring, registry: &mut Registry) -> Self {
        Self::with_sessions(keyring, SessionLimits::default(), registry)
    }

    /// As [`Auth::new`], with dashboard sessions that live as long as `limits` says.
    pub fn with_sessions(keyring: Keyring, limits: SessionLimits, registry: &mut Registry) -> Self {
        Self(Arc::new(Inner {
            keyring: ArcSwap::from_pointee(keyring),
            metrics: AuthMetrics::register(registry),
            sessions: Sessions::new(limits),
        }))
    }

    /// Puts new keys in force for every request that starts from now on.
    pub fn replace(&self, keyring: Keyring) {
        self.0.keyring.store(Arc::new(keyring));
    }

    pub fn keyring(&self) -> Arc<Keyring> {
        self.0.keyring.load_full()
    }

    /// A layer that lets through only requests whose key grants `role`. For
    /// [`Role::Predict`] the routes stay open while no `predict` key exists.
    pub fn require(&self, role: Role) -> Require {
        Require {
            auth: self.clone(),
            role,
        }
    }

    /// Logs and counts an audit event for the current request.
    pub fn audit(&self, event: AuditEvent<'_>) {
        self.0.metrics.audit(event.action);
        event.log(None, None);
    }

    pub(crate) fn audit_request(&self, event: AuditEvent<'_>, method: &str, route: &str) {
        self.0.metrics.audit(event.action);
        event.log(Some(method), Some(route));
    }

    /// The decision for a request needing `needed`: the caller, or why not.
    fn check<'k>(
        &self,
        keyring: &'k Keyring,
        headers: &HeaderMap,
        needed: Role,
    ) -> Result<Option<&'k KeyEntry>, Denied> {
        let presented = presented_key(headers);
        if needed == Role::Predict && !keyring.predict_gated() {
            // Open: a known key still names the caller (for usage and access lines).
            return Ok(presented.and_then(|k| keyring.authenticate(k)));
        }
        let key = presented.ok_or(Denied::Missing)?;
        let entry = keyring.authenticate(key).ok_or(Denied::Invalid)?;
        if entry.role.grants(needed) {
            Ok(Some(entry))
        } else {
            Err(Denied::Forbidden(entry.role, entry.name.clone()))
        }
    }
}

/// Names the current request's caller (the access line's `user`).
pub(crate) fn set_user(name: &Arc<str>) {
    vigil_telemetry::context::with_current(|c| {
        if let Some(c) = c {
            let _ = c.user.set(name.clone());
        }
    });
}

/// The key a request carries, if any.
pub(crate) fn presented_key(headers: &HeaderMap) -> Option<&[u8]> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.as_bytes();
        if value.len() > 7 && value[..7].eq_ignore_ascii_case(b"bearer ") {
            let key = value[7..].trim_ascii();
            return (!key.is_empty()).then_some(key);
        }
    }
    headers
        .get(API_KEY_HEADER)
        .map(|v| v.as_bytes().trim_ascii())
        .filter(|k| !k.is_empty())
}

#[derive(Debug, Clone)]
pub(crate) enum Denied {
    Missing,
    Invalid,
    /// The key's role and name (ours, so the name may be logged: it says who tried).
    Forbidden(Role, Arc<str>),
    /// A dashboard session cookie that is no (longer a) session.
    Session(SessionRefusal),
}

impl Denied {
    pub(crate) fn reason(&self) -> FailureReason {
        match self {
            Self::Missing => FailureReason::Missing,
            Self::Invalid | Self::Session(_) => FailureReason::Invalid,
            Self::Forbidden(..) => FailureReason::Forbidden,
        }
    }

    pub(crate) fn response(&self, needed: Role) -> Response {
        let (status, code, message) = match self {
            Self::Missing => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this endpoint needs an API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`".to_owned(),
            ),
            Self::Invalid => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the API key is not valid".to_owned(),
            ),
            Self::Forbidden(role, _) => (
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "{} {role} key cannot use this endpoint; it needs {} {needed} key",
                    role.article(),
                    needed.article()
                ),
            ),
            Self::Session(refusal) => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                match refusal {
                    SessionRefusal::Unknown => "this dashboard session is not valid; sign in again",
                    SessionRefusal::Expired => "this dashboard session has expired; sign in again",
                    SessionRefusal::Revoked => "the key this dashboard session was opened with was revoked; sign in again",
                }
                .to_owned(),
            ),
        };
        let mut response = vigil_telemetry::error_response(
            status,
            code,
            message,
            serde_json::json!({"required_role": needed.as_str()}),
        );
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"vigil\""),
            );
        }
        response
    }
}

/// The layer [`Auth::require`] returns.
#[derive(Debug, Clone)]
pub struct Require {
    auth: Auth,
    role: Role,
}

impl<S> tower::Layer<S> for Require {
    type Service = RequireService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequireService {
            inner,
            auth: self.auth.clone(),
            role: self.role,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RequireService<S> {
    inner: S,
    auth: Auth,
    role: Role,
}

impl<S> tower::Service<Request<Body>> for RequireService<S>
where
    S: tower::Service<Request<Body>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = RequireFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let keyring = self.auth.0.keyring.load();
        let decision = self.auth.check(&keyring, request.headers(), self.role);
        // The template, or `unmatched`: never the raw path, which the client chooses
        // (and which axum has already stripped of a nesting prefix here).
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", MatchedPath::as_str);
        match decision {
            Ok(caller) => {
                if let Some(entry) = caller {
                    set_user(&entry.name);
                }
                if self.role == Role::Admin {
                    self.auth.audit_request(
                        AuditEvent::new(AuditAction::Access, Outcome::Success),
                        request.method().as_str(),
                        route,
                    );
                }
                RequireFuture::Inner {
                    future: self.inner.call(request),
                }
            }
            Err(denied) => RequireFuture::Denied {
                response: Some(self.auth.refuse(
                    &denied,
                    self.role,
                    request.method().as_str(),
                    route,
                )),
            },
        }
    }
}

impl Auth {
    /// Counts, logs and audits a refusal, and answers it.
    pub(crate) fn refuse(
        &self,
        denied: &Denied,
        needed: Role,
        method: &str,
        route: &str,
    ) -> Response {
        let reason = denied.reason();
        self.0.metrics.failure(reason);
        if let Denied::Forbidden(_, name) = denied {
            set_user(name);
        }
        let session = match denied {
            Denied::Session(refusal) => Some(refusal.as_str()),
            _ => None,
        };
        tracing::warn!(
            target: "vigil::auth",
            reason = reason.as_str(),
            session,
            required_role = needed.as_str(),
            method,
            route,
            "auth_failed"
        );
        if needed == Role::Admin {
            self.audit_request(
                AuditEvent::new(AuditAction::Denied, Outcome::Failure).reason(reason.as_str()),
                method,
                route,
            );
        }
        denied.response(needed)
    }
}

pin_project! {
    /// Either the protected service's answer or the refusal.
    #[project = RequireFutureProj]
    pub enum RequireFuture<F> {
        Inner { #[pin] future: F },
        Denied { response: Option<Response> },
    }
}

impl<F, E> Future for RequireFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            RequireFutureProj::Inner { future } => future.poll(cx),
            RequireFutureProj::Denied { response } => {
                Poll::Ready(Ok(response.take().expect("polled after completion")))
            }
        }
    }
}
