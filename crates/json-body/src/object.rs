//! Structs read from JSON objects only: [`is_object`] for a body's top level,
//! [`Object`], [`objects`] and [`optional`] for the structs inside one. serde's
//! derived structs take a JSON array as well as an object and fill their fields by
//! position; these refuse the array with serde's own error (`invalid type:
//! sequence, expected an object`).

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// Whether a JSON text's top-level value is an object. A body that parsed must
/// still pass this, or it is refused as the wrong shape.
pub fn is_object(json: &[u8]) -> bool {
    json.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// What a body that is well-formed JSON but not an object is told.
pub const NOT_AN_OBJECT: &str = "the body must be a JSON object";

/// Whether `error`, a typed parse's error on `json` after
/// [`syntax_first`](crate::syntax_first), comes from a body that is not a JSON object
/// at all. Its client is then told [`NOT_AN_OBJECT`], not serde's message, which
/// names the struct it expected (`expected struct PredictRequest`) or an element of
/// an array it was reading field by field (`[1, 2]`: `invalid type: integer 1,
/// expected a sequence`).
pub fn not_an_object(json: &[u8], error: &serde_json::Error) -> bool {
    error.is_data() && !is_object(json)
}

/// A `T` read only from a JSON object (or any format's map), never from an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(MapOnly(PhantomData)).map(Object)
    }
}

/// Hands a map to `T`'s own deserializer; anything else is refused by serde's default
/// `visit_*` methods, which name what came and what was expected.
struct MapOnly<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for MapOnly<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map))
    }
}

/// `#[serde(deserialize_with = "vigil_json_body::objects")]` on a `Vec` of structs.
pub fn objects<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let list = Vec::<Object<T>>::deserialize(d)?;
    Ok(list.into_iter().map(|o| o.0).collect())
}

/// `#[serde(default, deserialize_with = "vigil_json_body::optional")]` on an
/// `Option` of a struct (`null` is `None`).
pub fn optional<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Object<T>>::deserialize(d)?.map(|o| o.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Request {
        features: Vec<f64>,
    }

    #[test]
    fn a_well_formed_body_other_than_an_object_is_told_so() {
        for text in [r#""x""#, "[1, 2]", "[true]", "7", "null", "[]", " [1]"] {
            let e = serde_json::from_str::<Request>(text).unwrap_err();
            assert!(not_an_object(text.as_bytes(), &e), "{text}: {e}");
        }
        // An object of the wrong shape keeps serde's message, which names the field.
        let text = r#"{"features": "x"}"#;
        let e = serde_json::from_str::<Request>(text).unwrap_err();
        assert!(!not_an_object(text.as_bytes(), &e), "{e}");
        // Broken JSON is broken before it is anything else.
        let text = "[1, 2";
        let e = serde_json::from_str::<Request>(text).unwrap_err();
        assert!(!not_an_object(
            text.as_bytes(),
            &crate::syntax_first(text.as_bytes(), e)
        ));
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Alert {
        status: String,
        #[serde(default)]
        fingerprint: Option<String>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Hook {
        #[serde(default, deserialize_with = "objects")]
        alerts: Vec<Alert>,
        #[serde(default, deserialize_with = "optional")]
        first: Option<Alert>,
    }

    fn alert(status: &str) -> Alert {
        Alert {
            status: status.into(),
            fingerprint: None,
        }
    }

    #[test]
    fn only_an_object_is_an_object() {
        assert!(is_object(b"{}"));
        assert!(is_object(b" \r\n\t{\"a\": 1}"));
        assert!(!is_object(b"[\"key\"]"));
        assert!(!is_object(b"\"key\""));
        assert!(!is_object(b"1"));
        assert!(!is_object(b""));
    }

    #[test]
    fn structs_inside_are_read_from_objects() {
        let hook: Hook = serde_json::from_str(
            r#"{"alerts": [{"status": "firing"}], "first": {"status": "resolved"}}"#,
        )
        .unwrap();
        assert_eq!(hook.alerts, vec![alert("firing")]);
        assert_eq!(hook.first, Some(alert("resolved")));
        let hook: Hook = serde_json::from_str(r#"{"first": null}"#).unwrap();
        assert_eq!(
            hook,
            Hook {
                alerts: vec![],
                first: None
            }
        );
        let Object(a): Object<Alert> = serde_json::from_str(r#"{"status": "firing"}"#).unwrap();
        assert_eq!(a, alert("firing"));
    }

    #[test]
    fn an_array_in_place_of_a_struct_is_refused() {
        // What a derived struct alone takes, by position.
        assert_eq!(
            serde_json::from_str::<Alert>(r#"["firing"]"#).unwrap(),
            alert("firing")
        );
        for text in [
            r#"{"alerts": [["firing"]]}"#,
            r#"{"first": ["firing"]}"#,
            r#"{"alerts": [{"status": "firing"}, ["resolved", "f"]]}"#,
        ] {
            let e = serde_json::from_str::<Hook>(text).unwrap_err();
            assert!(e.is_data(), "{text}: {e}");
            assert!(e.to_string().contains("expected an object"), "{text}: {e}");
        }
        let e = serde_json::from_str::<Object<Alert>>(r#"["firing"]"#).unwrap_err();
        assert!(e.to_string().contains("expected an object"), "{e}");
        // The struct's own rules still apply inside.
        let e =
            serde_json::from_str::<Hook>(r#"{"first": {"status": "x", "bogus": 1}}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `bogus`"), "{e}");
        let e = serde_json::from_str::<Hook>(r#"{"first": 3}"#).unwrap_err();
        assert!(e.to_string().contains("expected an object"), "{e}");
    }
}
