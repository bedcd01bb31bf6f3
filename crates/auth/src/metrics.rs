//! `auth_failures_total{reason}` and `audit_events_total{action}`: every series is
//! created at start-up from the closed sets below, so a request can never add one.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::audit::AuditAction;

/// Why a request was refused: the `reason` label of `auth_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureReason {
    /// No key was sent.
    Missing,
    /// The key is not one of ours.
    Invalid,
    /// The key is ours but its role does not allow this endpoint.
    Forbidden,
}

impl FailureReason {
    pub const ALL: [FailureReason; 3] = [Self::Missing, Self::Invalid, Self::Forbidden];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Invalid => "invalid",
            Self::Forbidden => "forbidden",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ActionLabel {
    action: &'static str,
}

/// Pre-resolved counters, indexed by the enums' order.
#[derive(Debug, Clone)]
pub struct AuthMetrics {
    failures: Vec<Counter>,
    audit: Vec<Counter>,
}

impl AuthMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let failures = Family::<ReasonLabel, Counter>::default();
        let audit = Family::<ActionLabel, Counter>::default();
        registry.register(
            "auth_failures",
            "Requests refused for a missing, unknown or insufficient API key",
            failures.clone(),
        );
        registry.register(
            "audit_events",
            "Admin actions and admin access attempts, by action",
            audit.clone(),
        );
        Self {
            failures: FailureReason::ALL
                .iter()
                .map(|r| {
                    failures
                        .get_or_create(&ReasonLabel { reason: r.as_str() })
                        .clone()
                })
                .collect(),
            audit: AuditAction::ALL
                .iter()
                .map(|a| {
                    audit
                        .get_or_create(&ActionLabel { action: a.as_str() })
                        .clone()
                })
                .collect(),
        }
    }

    pub fn failure(&self, reason: FailureReason) {
        self.failures[reason as usize].inc();
    }

    pub fn audit(&self, action: AuditAction) {
        self.audit[action as usize].inc();
    }
}
