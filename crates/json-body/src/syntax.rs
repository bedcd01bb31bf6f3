//! Syntax before shape: which error a body that did not parse is refused for.

use serde::de::IgnoredAny;

/// The error to report for `json`, given the one a typed parse of it stopped at. A
/// parse into a struct stops at the first problem, so `{"x": 1,,}` fails on the
/// unknown field `x` (a shape error) before it reaches the broken syntax; when the
/// first error is about shape, the text is read once more for syntax alone, and its
/// syntax error wins. Only failed parses pay for the second read.
pub fn syntax_first(json: &[u8], error: serde_json::Error) -> serde_json::Error {
    if !error.is_data() {
        return error;
    }
    match serde_json::from_slice::<IgnoredAny>(json) {
        Err(syntax) => syntax,
        Ok(_) => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        features: Vec<f64>,
    }

    fn first(text: &str) -> serde_json::Error {
        let e = serde_json::from_str::<Body>(text).unwrap_err();
        syntax_first(text.as_bytes(), e)
    }

    #[test]
    fn broken_json_is_reported_as_broken_even_after_a_field_error() {
        // What a typed parse alone reports for each: a shape error.
        assert!(
            serde_json::from_str::<Body>(r#"{"x":1,,,}"#)
                .unwrap_err()
                .is_data()
        );
        for text in [
            r#"{"x":1,,,}"#,
            r#"{"features":[1,2],"x":1"#,
            r#"{"features":"a","x":[}"#,
        ] {
            let e = first(text);
            assert!(e.is_syntax() || e.is_eof(), "{text}: {e}");
        }
        // Well-formed JSON of the wrong shape keeps its own error.
        for (text, says) in [
            (r#"{"x":1}"#, "unknown field `x`"),
            (r#"{"features":"a"}"#, "invalid type"),
        ] {
            let e = first(text);
            assert!(e.is_data() && e.to_string().contains(says), "{text}: {e}");
        }
        // Syntax errors are left as they are.
        assert!(first("{").is_eof());
    }
}
