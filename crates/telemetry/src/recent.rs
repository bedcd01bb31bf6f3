//! The last warnings and errors this process logged, kept in memory for the admin
//! view (`GET /admin/events`, the dashboard): the same JSON lines that went to the
//! log (escaped and redacted the same way), at most [`KEEP`] of them, oldest dropped.

use std::collections::VecDeque;
use std::sync::OnceLock;

use parking_lot::Mutex;

/// How many lines are kept.
pub const KEEP: usize = 50;

/// A bounded ring of log lines.
#[derive(Debug)]
pub struct RecentEvents {
    lines: Mutex<VecDeque<String>>,
    keep: usize,
}

impl RecentEvents {
    pub fn new(keep: usize) -> Self {
        Self {
            lines: Mutex::new(VecDeque::with_capacity(keep)),
            keep,
        }
    }

    /// The process-wide ring the logger fills.
    pub fn global() -> &'static RecentEvents {
        static RING: OnceLock<RecentEvents> = OnceLock::new();
        RING.get_or_init(|| RecentEvents::new(KEEP))
    }

    /// Keeps `line` (a JSON object, with or without its newline).
    pub fn push(&self, line: &str) {
        let line = line.trim_end();
        let mut lines = self.lines.lock();
        if lines.len() == self.keep {
            lines.pop_front();
        }
        lines.push_back(line.to_owned());
    }

    /// The kept lines, newest first.
    pub fn newest_first(&self) -> Vec<String> {
        self.lines.lock().iter().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_lines_only() {
        let ring = RecentEvents::new(3);
        for i in 0..5 {
            ring.push(&format!("{{\"n\":{i}}}\n"));
        }
        assert_eq!(ring.newest_first(), ["{\"n\":4}", "{\"n\":3}", "{\"n\":2}"]);
    }
}
