//! One well-formed log line: its text, where each top-level field sits in it, and
//! its timestamp. The lines of one block share one text and one field table, so a
//! block of thousands of lines costs a few allocations, not two per line, and the
//! thread that parsed it frees little of what the printing thread drops.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::level::Level;
use crate::malformed::Malformed;
use crate::scan::{Field, Key, Span, raw_str, scan_object, value_text};

/// Lines longer than this are skipped whole (and never held in memory whole).
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// The text and field table the lines of one block share.
#[derive(Debug, Default)]
struct Store {
    text: String,
    fields: Vec<Field>,
}

impl Store {
    fn slice(&self, (s, e): Span) -> &str {
        &self.text[s as usize..e as usize]
    }

    fn key<'a>(&'a self, field: &'a Field) -> &'a str {
        match &field.key {
            Key::At(span) => self.slice(*span),
            Key::Unescaped(k) => k,
        }
    }
}

/// A well-formed log line. Values are read from its text only when a filter or the
/// output asks for them; the text was checked as JSON when the line was parsed.
#[derive(Debug, Clone)]
pub struct LogLine {
    store: Arc<Store>,
    /// The line in the store's text.
    raw: Span,
    /// The line's fields in the store's field table.
    fields: Span,
    pub timestamp: OffsetDateTime,
}

/// A parsed line waiting for its store to be shared.
type Parsed = Result<(Span, Span, OffsetDateTime), Malformed>;

/// Parses the lines of one block into one store.
#[derive(Debug, Default)]
pub struct LinesBuilder {
    store: Store,
    lines: Vec<Parsed>,
}

impl LinesBuilder {
    /// A builder for about `bytes` of text.
    pub fn with_capacity(bytes: usize) -> LinesBuilder {
        LinesBuilder {
            store: Store {
                text: String::with_capacity(bytes),
                fields: Vec::with_capacity(bytes / 24),
            },
            lines: Vec::with_capacity(bytes / 256),
        }
    }

    /// Counts a line that was dropped before parsing.
    pub fn push_malformed(&mut self, kind: Malformed) {
        self.lines.push(Err(kind));
    }

    /// Parses one line (without its line ending).
    pub fn push(&mut self, bytes: &[u8]) {
        let parsed = self.parse(bytes);
        self.lines.push(parsed);
    }

    fn parse(&mut self, bytes: &[u8]) -> Parsed {
        if bytes.len() > MAX_LINE_BYTES {
            return Err(Malformed::TooLong);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| Malformed::InvalidUtf8)?;
        let store = &mut self.store;
        let start = store.text.len();
        let first = store.fields.len();
        scan_object(text, start as u32, &mut store.fields)?;
        store.text.push_str(text);
        let fields = (first as u32, store.fields.len() as u32);
        let timestamp = store.fields[first..]
            .iter()
            .rev()
            .find(|f| store.key(f) == "timestamp")
            .and_then(|f| raw_str(store.slice(f.value)))
            .and_then(|s| OffsetDateTime::parse(&s, &Rfc3339).ok());
        let Some(timestamp) = timestamp else {
            store.text.truncate(start);
            store.fields.truncate(first);
            return Err(Malformed::NoTimestamp);
        };
        Ok(((start as u32, store.text.len() as u32), fields, timestamp))
    }

    /// The lines in the order they were pushed.
    pub fn finish(self) -> Vec<Result<LogLine, Malformed>> {
        let store = Arc::new(self.store);
        self.lines
            .into_iter()
            .map(|parsed| {
                parsed.map(|(raw, fields, timestamp)| LogLine {
                    store: Arc::clone(&store),
                    raw,
                    fields,
                    timestamp,
                })
            })
            .collect()
    }
}

impl LogLine {
    /// Parses one line (without its line ending).
    pub fn parse(bytes: &[u8]) -> Result<LogLine, Malformed> {
        let mut b = LinesBuilder::with_capacity(bytes.len());
        b.push(bytes);
        b.finish().pop().expect("one line was pushed")
    }

    /// The line as read, without its line ending.
    pub fn raw(&self) -> &str {
        self.store.slice(self.raw)
    }

    /// The line with a store of its own, for holding on to it without holding the
    /// rest of its block.
    pub fn detached(&self) -> LogLine {
        let shift = |(s, e): Span| (s - self.raw.0, e - self.raw.0);
        let fields = self.own_fields().iter().map(|f| Field {
            key: match &f.key {
                Key::At(span) => Key::At(shift(*span)),
                Key::Unescaped(k) => Key::Unescaped(k.clone()),
            },
            value: shift(f.value),
        });
        let store = Store {
            text: self.raw().to_owned(),
            fields: fields.collect(),
        };
        LogLine {
            raw: (0, store.text.len() as u32),
            fields: (0, store.fields.len() as u32),
            store: Arc::new(store),
            timestamp: self.timestamp,
        }
    }

    fn own_fields(&self) -> &[Field] {
        &self.store.fields[self.fields.0 as usize..self.fields.1 as usize]
    }

    /// The fields in the order the line has them, with each value as raw JSON text.
    /// A key written twice appears twice; lookups take the last, as JSON parsers do.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.own_fields()
            .iter()
            .map(|f| (self.store.key(f), self.store.slice(f.value)))
    }

    /// The raw JSON text of a top-level field's value (the last one, if written twice).
    pub fn raw_field(&self, key: &str) -> Option<&str> {
        self.own_fields()
            .iter()
            .rev()
            .find(|f| self.store.key(f) == key)
            .map(|f| self.store.slice(f.value))
    }

    /// All fields as a JSON object (keys sorted), for the JSON output.
    pub fn to_map(&self) -> Map<String, Value> {
        self.fields()
            .map(|(k, v)| {
                let v = serde_json::from_str(v).expect("a value checked when the line was parsed");
                (k.to_owned(), v)
            })
            .collect()
    }

    /// A string field's text, borrowed unless it has escapes.
    pub fn str_field(&self, key: &str) -> Option<Cow<'_, str>> {
        raw_str(self.raw_field(key)?)
    }

    /// A numeric field, also when written as a string of digits.
    pub fn num_field(&self, key: &str) -> Option<f64> {
        let raw = self.raw_field(key)?;
        match raw_str(raw) {
            Some(s) => s.parse().ok(),
            None => raw.parse().ok(),
        }
    }

    pub fn level(&self) -> Option<Level> {
        self.str_field("level").and_then(|l| Level::parse(&l))
    }

    pub fn status(&self) -> Option<u16> {
        self.num_field("status")
            .filter(|s| (0.0..1000.0).contains(s))
            .map(|s| s as u16)
    }

    /// A top-level field as text: strings as they are, anything else as JSON.
    pub fn field_text(&self, key: &str) -> Option<Cow<'_, str>> {
        self.raw_field(key).map(value_text)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        use crate::level::Level;
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
}
