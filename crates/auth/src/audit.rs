//! Audit events: one log line per admin action (`message = "audit"`, target
//! `vigil::audit`) with the action, the caller's key name, the model and versions
//! involved and the outcome, counted in `audit_events_total{action}`. The caller comes
//! from the request context the guard filled in, so handlers cannot get it wrong.

/// What was done: the `action` label of `audit_events_total` and the line's `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// An admin key was used on `/admin/*` or `/dashboard`.
    Access,
    /// An admin endpoint was refused (no key, unknown key, or not an admin key).
    Denied,
    /// A model version was uploaded.
    Upload,
    /// A model went back to its previous version.
    Rollback,
    /// A model was unloaded.
    Delete,
    /// The models directory was rescanned (SIGHUP).
    Reload,
    /// The dashboard was signed in to with an admin key.
    SignIn,
    /// A dashboard session was signed out.
    SignOut,
}

impl AuditAction {
    pub const ALL: [AuditAction; 8] = [
        Self::Access,
        Self::Denied,
        Self::Upload,
        Self::Rollback,
        Self::Delete,
        Self::Reload,
        Self::SignIn,
        Self::SignOut,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Denied => "denied",
            Self::Upload => "upload",
            Self::Rollback => "rollback",
            Self::Delete => "delete",
            Self::Reload => "reload",
            Self::SignIn => "sign_in",
            Self::SignOut => "sign_out",
        }
    }
}

/// How the action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// One audit event; the fields that do not apply stay `None` and are left out.
#[derive(Debug, Clone, Copy)]
pub struct AuditEvent<'a> {
    pub action: AuditAction,
    pub outcome: Outcome,
    pub model: Option<&'a str>,
    pub from_version: Option<&'a str>,
    pub to_version: Option<&'a str>,
    /// Why it failed, for people (never a secret).
    pub reason: Option<&'a str>,
}

impl<'a> AuditEvent<'a> {
    pub fn new(action: AuditAction, outcome: Outcome) -> Self {
        Self {
            action,
            outcome,
            model: None,
            from_version: None,
            to_version: None,
            reason: None,
        }
    }

    pub fn model(mut self, model: &'a str) -> Self {
        self.model = Some(model);
        self
    }

    pub fn versions(mut self, from: Option<&'a str>, to: Option<&'a str>) -> Self {
        self.from_version = from;
        self.to_version = to;
        self
    }

    pub fn reason(mut self, reason: &'a str) -> Self {
        self.reason = Some(reason);
        self
    }

    /// Writes the line; the caller is the current request's key name (`anonymous`
    /// outside a request or before a key was accepted).
    pub(crate) fn log(&self, method: Option<&str>, route: Option<&str>) {
        let user =
            vigil_telemetry::context::with_current(|c| c.and_then(|c| c.user.get().cloned()));
        let user = user.as_deref().unwrap_or("anonymous");
        let level_warn = self.outcome == Outcome::Failure;
        macro_rules! emit {
            ($level:ident) => {
                tracing::$level!(
                    target: "vigil::audit",
                    action = self.action.as_str(),
                    user,
                    outcome = self.outcome.as_str(),
                    model = self.model,
                    from_version = self.from_version,
                    to_version = self.to_version,
                    reason = self.reason,
                    method,
                    route,
                    "audit"
                )
            };
        }
        if level_warn {
            emit!(warn);
        } else {
            emit!(info);
        }
    }
}
