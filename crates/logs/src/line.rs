//! One log line: parsed into a JSON object with its timestamp, or the kind of
//! malformation that made it unusable.

use std::fmt;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Lines longer than this are skipped whole (and never held in memory whole).
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// A log level, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    /// The level as vigil writes it (`"WARN"`), case-insensitively.
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.to_ascii_uppercase().as_str() {
            "TRACE" => Level::Trace,
            "DEBUG" => Level::Debug,
            "INFO" => Level::Info,
            "WARN" | "WARNING" => Level::Warn,
            "ERROR" => Level::Error,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

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

/// A well-formed log line.
#[derive(Debug, Clone)]
pub struct LogLine {
    /// The line as read, without its line ending.
    pub raw: String,
    pub fields: Map<String, Value>,
    pub timestamp: OffsetDateTime,
}

impl LogLine {
    /// Parses one line (without its line ending).
    pub fn parse(bytes: &[u8]) -> Result<LogLine, Malformed> {
        if bytes.len() > MAX_LINE_BYTES {
            return Err(Malformed::TooLong);
        }
        let raw = std::str::from_utf8(bytes).map_err(|_| Malformed::InvalidUtf8)?;
        let value: Value = serde_json::from_str(raw).map_err(|e| {
            if e.is_eof() {
                Malformed::Truncated
            } else {
                Malformed::NotJson
            }
        })?;
        let Value::Object(fields) = value else {
            return Err(Malformed::NotObject);
        };
        let timestamp = fields
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
            .ok_or(Malformed::NoTimestamp)?;
        Ok(LogLine {
            raw: raw.to_owned(),
            fields,
            timestamp,
        })
    }

    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }

    /// A numeric field, also when written as a string of digits.
    pub fn num_field(&self, key: &str) -> Option<f64> {
        match self.fields.get(key)? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    pub fn level(&self) -> Option<Level> {
        self.str_field("level").and_then(Level::parse)
    }

    pub fn status(&self) -> Option<u16> {
        self.num_field("status")
            .filter(|s| (0.0..1000.0).contains(s))
            .map(|s| s as u16)
    }

    /// A top-level field as text: strings as they are, anything else as JSON.
    pub fn field_text(&self, key: &str) -> Option<String> {
        self.fields.get(key).map(value_text)
    }

    /// The minute of the line, `2026-12-01T21:05Z` (UTC).
    pub fn minute(&self) -> String {
        let t = self.timestamp.to_offset(time::UtcOffset::UTC);
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        )
    }
}

/// A JSON value as text: strings unquoted, anything else as compact JSON.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(LogLine::parse(b"hello").unwrap_err(), Malformed::NotJson);
        assert_eq!(
            LogLine::parse(b"{\"a\":").unwrap_err(),
            Malformed::Truncated
        );
        assert_eq!(LogLine::parse(b"[1,2]").unwrap_err(), Malformed::NotObject);
        assert_eq!(
            LogLine::parse(b"{\"a\":\"\xff\"}").unwrap_err(),
            Malformed::InvalidUtf8
        );
        assert_eq!(
            LogLine::parse(b"{\"a\":1}").unwrap_err(),
            Malformed::NoTimestamp
        );
        let ok = LogLine::parse(br#"{"timestamp":"2026-12-01T21:05:47.123456Z","level":"WARN"}"#)
            .unwrap();
        assert_eq!(ok.level(), Some(Level::Warn));
        assert_eq!(ok.minute(), "2026-12-01T21:05Z");
    }

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
