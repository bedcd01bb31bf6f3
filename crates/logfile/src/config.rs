//! What the log files do: where they go, when they rotate, how many are kept.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// When the active file is rotated by time (UTC boundaries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    Hourly,
    Daily,
    /// Only by size.
    Never,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("log rotation must be hourly, daily or never, not {0:?}")]
pub struct RotationError(String);

impl std::str::FromStr for Rotation {
    type Err = RotationError;
    fn from_str(s: &str) -> Result<Self, RotationError> {
        match s {
            "hourly" => Ok(Self::Hourly),
            "daily" => Ok(Self::Daily),
            "never" => Ok(Self::Never),
            other => Err(RotationError(other.to_owned())),
        }
    }
}

impl Rotation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hourly => "hourly",
            Self::Daily => "daily",
            Self::Never => "never",
        }
    }

    /// Which period `t` falls in: lines of different periods never share a file.
    pub fn period(self, t: SystemTime) -> u64 {
        let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        match self {
            Self::Hourly => secs / 3600,
            Self::Daily => secs / 86_400,
            Self::Never => 0,
        }
    }
}

/// The log files' settings.
#[derive(Debug, Clone)]
pub struct FileConfig {
    pub dir: PathBuf,
    pub rotation: Rotation,
    /// Rotate before the active file would pass this size (a single longer line still
    /// gets a file of its own).
    pub max_bytes: Option<u64>,
    /// Rotated files kept (plain or gzipped); older ones are deleted.
    pub keep: usize,
}
