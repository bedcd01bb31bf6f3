//! What can be wrong with keys and key files, with the fix in the message.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key name {0:?} must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' or '-'")]
    BadName(String),
    #[error("key {name:?}: sha256 must be 64 hex digits (the output of `vigil keys create`)")]
    BadHash { name: String },
    #[error("two keys are named {0:?}; names identify callers and must be unique")]
    DuplicateName(String),
    #[error("two keys ({0:?} and {1:?}) have the same hash; one key cannot have two names")]
    DuplicateHash(String, String),
    #[error("no key named {0:?}")]
    NotFound(String),
    #[error("cannot read key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("cannot write key file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the system's random source failed: {0}")]
    Random(String),
}
