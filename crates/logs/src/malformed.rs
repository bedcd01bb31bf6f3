//! Why a line could not be used, and the count of such lines a run reports at its end.

use std::fmt;

/// Why a line was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Malformed {
    NotJson,
    Truncated,
    TooLong,
    InvalidUtf8,
    NotObject,
    /// A JSON object without a readable RFC 3339 `timestamp`: it cannot be merged.
    NoTimestamp,
}

impl Malformed {
    pub const ALL: [Malformed; 6] = [
        Malformed::NotJson,
        Malformed::Truncated,
        Malformed::TooLong,
        Malformed::InvalidUtf8,
        Malformed::NotObject,
        Malformed::NoTimestamp,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Malformed::NotJson => "not JSON",
            Malformed::Truncated => "truncated JSON",
            Malformed::TooLong => "over 1 MiB",
            Malformed::InvalidUtf8 => "invalid UTF-8",
            Malformed::NotObject => "not a JSON object",
            Malformed::NoTimestamp => "without timestamp",
        })
    }
}

/// Skipped lines, counted by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skipped {
    counts: [u64; 6],
}

impl Skipped {
    pub fn add(&mut self, kind: Malformed) {
        self.counts[kind.index()] += 1;
    }

    pub fn get(&self, kind: Malformed) -> u64 {
        self.counts[kind.index()]
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn merge(&mut self, other: &Skipped) {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a += b;
        }
    }
}

impl fmt::Display for Skipped {
    /// `skipped 3 lines: 2 not JSON, 1 invalid UTF-8`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.total();
        write!(
            f,
            "skipped {total} line{}",
            if total == 1 { "" } else { "s" }
        )?;
        let mut sep = ": ";
        for kind in Malformed::ALL {
            let n = self.get(kind);
            if n > 0 {
                write!(f, "{sep}{n} {kind}")?;
                sep = ", ";
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_summary() {
        let mut s = Skipped::default();
        s.add(Malformed::NotJson);
        s.add(Malformed::NotJson);
        s.add(Malformed::InvalidUtf8);
        assert_eq!(
            s.to_string(),
            "skipped 3 lines: 2 not JSON, 1 invalid UTF-8"
        );
    }
}
