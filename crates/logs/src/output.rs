//! Printing matching lines: raw (as read), pretty (one readable line, coloured on a
//! terminal) or normalised JSON; and the escaping that keeps control characters from
//! ever reaching a terminal.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};

use serde_json::Value;

use crate::level::Level;
use crate::line::LogLine;
use crate::scan::value_text;

/// How matching lines are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Raw,
    Pretty,
    Json,
}

/// Fields the pretty form shows in fixed places, not as `key=value`.
const PRETTY_FIXED: [&str; 5] = ["timestamp", "level", "service", "message", "target"];

/// True for characters that must not reach a terminal: C0 (but tab), DEL and C1.
fn is_dangerous(c: char) -> bool {
    c.is_control() && c != '\t'
}

/// `s` with every control character but tab written as a visible escape, `\u{1b}`.
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_dangerous) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_dangerous(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Compact JSON where DEL and C1 characters (which JSON allows raw) are `\u00XX` too,
/// so the text is still valid JSON and safe on a terminal.
pub fn safe_json(v: &Value) -> String {
    let s = v.to_string();
    if !s.chars().any(is_dangerous) {
        return s;
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_dangerous(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes one line in the chosen format.
pub struct Printer {
    pub format: Format,
    /// Stdout is a terminal: escape raw lines and colour the pretty form.
    pub tty: bool,
}

impl Printer {
    pub fn print(&self, line: &LogLine, out: &mut dyn Write) -> io::Result<()> {
        match self.format {
            Format::Raw if self.tty => writeln!(out, "{}", escape_controls(line.raw())),
            Format::Raw => writeln!(out, "{}", line.raw()),
            Format::Json => writeln!(out, "{}", safe_json(&Value::Object(line.to_map()))),
            Format::Pretty => writeln!(out, "{}", self.pretty(line)),
        }
    }

    /// `TIME LEVEL service message key=value ...`; values with spaces, quotes or
    /// nothing in them are quoted.
    pub fn pretty(&self, line: &LogLine) -> String {
        let text = |key: &str| line.field_text(key).unwrap_or_default();
        let level = text("level");
        let (on, off) = match (self.tty, Level::parse(&level)) {
            (true, Some(Level::Error)) => ("\x1b[31m", "\x1b[0m"),
            (true, Some(Level::Warn)) => ("\x1b[33m", "\x1b[0m"),
            (true, Some(Level::Info)) => ("\x1b[32m", "\x1b[0m"),
            (true, Some(_)) => ("\x1b[2m", "\x1b[0m"),
            _ => ("", ""),
        };
        let mut out = format!(
            "{} {on}{:<5}{off} {} {}",
            escape_controls(&text("timestamp")),
            escape_controls(&level),
            escape_controls(&text("service")),
            escape_controls(&text("message")),
        );
        let (dim, undim) = if self.tty {
            ("\x1b[2m", "\x1b[0m")
        } else {
            ("", "")
        };
        // The event's own fields in the line's order, the request's ids last, as vigil
        // writes them; a key written twice is shown once, with its last value.
        let ids = ["request_id", "trace_id"];
        let shown = |key: &str| line.raw_field(key);
        let fields = line
            .fields()
            .filter(|(k, v)| {
                !PRETTY_FIXED.contains(k)
                    && !ids.contains(k)
                    && shown(k).is_some_and(|l| std::ptr::eq(l, *v))
            })
            .chain(ids.iter().filter_map(|k| Some((*k, line.raw_field(k)?))));
        for (key, value) in fields {
            let v = value_text(value);
            // A string that could be misread (empty, or holding a space, quote or `=`)
            // is shown quoted; an array or object is shown as the JSON it is
            // (`request_ids=["a","b"]`), which its brackets already delimit.
            let structured = value.trim_start().starts_with(['[', '{']);
            let v = if !structured && (v.is_empty() || v.contains([' ', '"', '='])) {
                Cow::Owned(Value::String(v.into_owned()).to_string())
            } else {
                v
            };
            let _ = write!(
                out,
                " {dim}{}={undim}{}",
                escape_controls(key),
                escape_controls(&v)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_shows_arrays_as_json_and_quotes_strings_that_need_it() {
        let line = LogLine::parse(
            br#"{"timestamp":"2026-12-05T10:00:00Z","level":"INFO","service":"collector","message":"records_stored","request_ids":["a b","c"],"kept":{"x":1},"note":"two words","path":"/x"}"#,
        )
        .unwrap();
        let printer = Printer {
            format: Format::Pretty,
            tty: false,
        };
        let shown = printer.pretty(&line);
        assert!(
            shown.ends_with(r#"request_ids=["a b","c"] kept={"x":1} note="two words" path=/x"#),
            "{shown}"
        );
    }

    #[test]
    fn escapes_c0_c1_and_del_but_not_tab() {
        assert_eq!(escape_controls("a\tb"), "a\tb");
        assert_eq!(escape_controls("\x1b[31mred"), "\\u{1b}[31mred");
        assert_eq!(
            escape_controls("x\u{9b}y\u{7f}\n"),
            "x\\u{9b}y\\u{7f}\\u{a}"
        );
        assert_eq!(
            safe_json(&Value::String("\u{9b}\x1b".into())),
            "\"\\u009b\\u001b\""
        );
    }
}
