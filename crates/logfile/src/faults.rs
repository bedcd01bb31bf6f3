//! Faults of the log files, counted by operation (`log_file_errors_total{operation}`)
//! and reported as an ERROR line at most once a minute per operation: the report goes
//! through the logger, and so to the file that may be failing; a report per failure
//! would feed itself.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What failed: the `operation` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Creating or opening the active file (or its directory).
    Open,
    /// Appending lines (they are lost; the count says how many writes failed).
    Write,
    /// Renaming the active file to its rotated name.
    Rotate,
    /// Gzipping a rotated file (it stays, plain).
    Compress,
    /// Deleting a file past retention.
    Remove,
}

impl Operation {
    pub const ALL: [Operation; 5] = [
        Self::Open,
        Self::Write,
        Self::Rotate,
        Self::Compress,
        Self::Remove,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Write => "write",
            Self::Rotate => "rotate",
            Self::Compress => "compress",
            Self::Remove => "remove",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

const REPORT_EVERY: Duration = Duration::from_secs(60);

/// The process's log file fault counters.
#[derive(Debug, Default)]
pub struct FileFaults {
    counts: [AtomicU64; 5],
    reported: Mutex<[Option<Instant>; 5]>,
}

impl FileFaults {
    pub fn global() -> &'static FileFaults {
        static FAULTS: std::sync::OnceLock<FileFaults> = std::sync::OnceLock::new();
        FAULTS.get_or_init(FileFaults::default)
    }

    pub fn count(&self, operation: Operation) -> u64 {
        self.counts[operation.index()].load(Ordering::Relaxed)
    }

    /// Counts a fault, and reports it unless one of its kind was reported this minute.
    pub fn fault(&self, operation: Operation, path: &std::path::Path, error: &std::io::Error) {
        self.counts[operation.index()].fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut reported = self.reported.lock().unwrap_or_else(|p| p.into_inner());
        let last = &mut reported[operation.index()];
        if last.is_some_and(|t| now.duration_since(t) < REPORT_EVERY) {
            return;
        }
        *last = Some(now);
        drop(reported);
        tracing::error!(
            target: "vigil::logfile",
            operation = operation.as_str(),
            path = %path.display(),
            error = %error,
            "log_file_error"
        );
    }
}
