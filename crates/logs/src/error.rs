//! The crate's one error type: every message names what was wrong and how to fix it.

use std::path::PathBuf;

/// Why `vigil logs` could not run. Malformed log lines are never an error: they are
/// counted in [`crate::Summary`] instead.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error("cannot read {path}: {source}; check that the file exists and is readable")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bad file pattern {pattern:?}: {reason}; quote it and use *, ? or [..] only")]
    BadGlob { pattern: String, reason: String },
    #[error("no file matches {pattern:?}; check the directory and the pattern")]
    NoMatch { pattern: String },
    #[error(
        "bad --since {value:?}: {reason}; give a duration back from now such as 15m or 2h, \
         or an RFC 3339 time such as 2026-12-01T21:00:00Z"
    )]
    BadSince { value: String, reason: String },
    #[error("bad --until {value:?}: {reason}; give an RFC 3339 time such as 2026-12-01T21:00:00Z")]
    BadUntil { value: String, reason: String },
    #[error("bad --where {value:?}: expected key=value, e.g. --where model=iris")]
    BadWhere { value: String },
    #[error("bad --status {value:?}: expected a status such as 500 or a class such as 5xx")]
    BadStatus { value: String },
    #[error(
        "--follow needs the last input to be a plain log file ({what} given); \
         put the current vigil.log last"
    )]
    FollowNeedsFile { what: String },
    #[error("cannot write the output: {0}")]
    Write(#[source] std::io::Error),
}
