//! Who may do what: API keys with a role, stored only as SHA-256 hashes (in the config
//! file or the data dir's key file), checked in constant time by a tower guard that
//! answers 401 or 403 in vigil's error shape, and audit events for every admin action.
//!
//! The guard runs inside the telemetry layer, so a refused request still has its
//! request id, access line and HTTP metrics; on success it names the caller (the key's
//! name) for the access line's `user` field.

pub mod audit;
pub mod error;
pub mod guard;
pub mod key;
pub mod keyfile;
pub mod keyring;
pub mod metrics;
pub mod role;
pub mod scheme;
pub mod session;
pub mod signin;

pub use audit::{AuditAction, AuditEvent, Outcome};
pub use error::KeyError;
pub use guard::{Auth, Require};
pub use key::{KeyHash, generate_key};
pub use keyfile::{KeyFile, KeyFileLock, StoredKeys};
pub use keyring::{KeyEntry, KeySpec, Keyring};
pub use metrics::{AuthMetrics, FailureReason};
pub use role::Role;
pub use session::{SessionLimits, SessionRefusal, Sessions};
