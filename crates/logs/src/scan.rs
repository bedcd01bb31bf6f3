//! Finding where each top-level field of a JSON object sits in its text, checking
//! the whole text as JSON but building nothing from it.
//!
//! Why not parse into a `serde_json::Map`: building owned keys and values for every
//! line cost two thirds of a filter run's time (`bench/logs.sh`: 381k lines/s with a
//! map). With spans, a field's value is read from the text only when a filter or the
//! output asks for it.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::malformed::Malformed;

/// A span of text, as byte offsets (lines are capped far below 4 GiB).
pub type Span = (u32, u32);

/// Where one top-level field's key sits, or the unescaped key when it had escapes
/// in it (vigil never writes such keys).
#[derive(Debug, Clone)]
pub enum Key {
    At(Span),
    Unescaped(Box<str>),
}

/// One top-level field: its key and the span of its raw JSON value.
#[derive(Debug, Clone)]
pub struct Field {
    pub key: Key,
    pub value: Span,
}

/// Scans `text` as one JSON object, pushing its fields onto `out` with spans shifted
/// by `offset` (where `text` will sit in the text the spans index).
pub fn scan_object(text: &str, offset: u32, out: &mut Vec<Field>) -> Result<(), Malformed> {
    let start = out.len();
    let mut de = serde_json::Deserializer::from_str(text);
    let result = de
        .deserialize_map(Fields {
            base: text,
            offset,
            out,
        })
        .and_then(|()| de.end());
    result.map_err(|e| {
        out.truncate(start);
        classify(text, &e)
    })
}

/// A map key, borrowed from the text unless it has escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// Pushes the top-level fields of an object as spans.
struct Fields<'de, 'o> {
    base: &'de str,
    offset: u32,
    out: &'o mut Vec<Field>,
}

impl Fields<'_, '_> {
    fn span(&self, part: &str) -> Span {
        // `part` is a slice of `base` (serde_json borrows raw values, and keys without
        // escapes, from its input), so its offset is the pointer difference.
        let start = (part.as_ptr() as usize - self.base.as_ptr() as usize) as u32 + self.offset;
        (start, start + part.len() as u32)
    }
}

impl<'de> Visitor<'de> for Fields<'de, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value: &'de RawValue = map.next_value()?;
            let key = match key {
                Cow::Borrowed(k) => Key::At(self.span(k)),
                Cow::Owned(k) => Key::Unescaped(k.into_boxed_str()),
            };
            let value = self.span(value.get());
            self.out.push(Field { key, value });
        }
        Ok(())
    }
}

/// Why a text that failed to scan as an object failed. A well-formed value that is
/// not an object (`[1,2]`) is told apart by checking it again as any value: only such
/// rare lines pay for that.
fn classify(text: &str, e: &serde_json::Error) -> Malformed {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => Malformed::Truncated,
        Category::Data => match serde_json::from_str::<de::IgnoredAny>(text) {
            Ok(_) => Malformed::NotObject,
            Err(e) if e.is_eof() => Malformed::Truncated,
            Err(_) => Malformed::NotJson,
        },
        Category::Syntax | Category::Io => Malformed::NotJson,
    }
}

/// The text of a raw JSON string value, borrowed when it has no escapes; `None` for
/// any other kind of value.
pub fn raw_str(raw: &str) -> Option<Cow<'_, str>> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(raw).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// A raw JSON value as text: strings unquoted, anything else as compact JSON.
pub fn value_text(raw: &str) -> Cow<'_, str> {
    if let Some(s) = raw_str(raw) {
        return s;
    }
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    if matches!(raw, "true" | "false" | "null")
        || (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
    {
        return Cow::Borrowed(raw);
    }
    // Objects, arrays and other numbers: compact and normalised, as serde_json
    // writes them.
    serde_json::from_str::<serde_json::Value>(raw)
        .map_or(Cow::Borrowed(raw), |v| Cow::Owned(v.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Result<Vec<(String, String)>, Malformed> {
        let mut out = Vec::new();
        scan_object(text, 0, &mut out)?;
        Ok(out
            .iter()
            .map(|f| {
                let key = match &f.key {
                    Key::At((s, e)) => text[*s as usize..*e as usize].to_owned(),
                    Key::Unescaped(k) => k.to_string(),
                };
                (key, text[f.value.0 as usize..f.value.1 as usize].to_owned())
            })
            .collect())
    }

    #[test]
    fn spans_cover_keys_and_raw_values() {
        assert_eq!(
            keys(r#"{"a":1, "b" : {"c":[1,2]},"d\u0065":"x\"y"}"#).unwrap(),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), r#"{"c":[1,2]}"#.into()),
                ("de".into(), r#""x\"y""#.into()),
            ]
        );
    }

    #[test]
    fn malformed_kinds() {
        assert_eq!(keys("hello").unwrap_err(), Malformed::NotJson);
        assert_eq!(keys(r#"{"a":"#).unwrap_err(), Malformed::Truncated);
        assert_eq!(keys("[1,2]").unwrap_err(), Malformed::NotObject);
        assert_eq!(keys("[1,").unwrap_err(), Malformed::Truncated);
        assert_eq!(keys(r#"{"a":1} x"#).unwrap_err(), Malformed::NotJson);
    }

    #[test]
    fn values_as_text() {
        assert_eq!(value_text(r#""a\"b""#), "a\"b");
        assert_eq!(value_text("-12"), "-12");
        assert_eq!(value_text("1.50"), "1.5");
        assert_eq!(value_text(r#"{ "a" : 1 }"#), r#"{"a":1}"#);
    }
}
