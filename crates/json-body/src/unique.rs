//! A JSON value whose objects name each key once. `serde_json::Value` keeps the last
//! of repeated keys, so `{"label": "ok", "label": "defect"}` would read as `defect`
//! where a derived struct refuses it as a duplicate field: a body read as a `Value`
//! is read as [`Unique`] instead, so every endpoint refuses what the others refuse.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A [`Value`] read with every repeated key of an object refused (a data error, as
/// serde's `duplicate field` is).
#[derive(Debug, Clone, PartialEq)]
pub struct Unique(pub Value);

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueVisitor).map(Unique)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // JSON text has no NaN or infinity; serde_json refuses an overflowing number
        // before it gets here.
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(Unique(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
            }
            let Unique(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_what_value_reads() {
        let text = r#"{"a": [1, -2, 2.5, "x", null, true, {"b": {}}], "c": 18446744073709551615}"#;
        let Unique(v) = serde_json::from_str(text).unwrap();
        assert_eq!(v, serde_json::from_str::<Value>(text).unwrap());
        assert_eq!(v["c"], json!(u64::MAX));
    }

    #[test]
    fn a_repeated_key_at_any_depth_is_a_data_error() {
        for text in [
            r#"{"label": "ok", "label": "defect"}"#,
            r#"{"feedback": [{"prediction_id": "a", "prediction_id": "b"}]}"#,
            r#"[{"x": {"y": 1, "y": 1}}]"#,
        ] {
            let e = serde_json::from_str::<Unique>(text).unwrap_err();
            assert!(e.is_data(), "{text}: {e}");
            assert!(
                e.to_string().starts_with("duplicate field `"),
                "{text}: {e}"
            );
        }
        // The same key in two objects is no repeat.
        assert!(serde_json::from_str::<Unique>(r#"[{"a": 1}, {"a": 2}]"#).is_ok());
    }
}
