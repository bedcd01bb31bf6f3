//! Reading a prediction request: the body's JSON, the model it names, and its rows as
//! a batch. Feature values are read as raw JSON tokens, so a string, `null`, `1e400`
//! or Python's `NaN` is reported at its exact position with a 422 instead of a
//! generic parse error.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;
use vigil_model::input::{BatchBuilder, Cell};
use vigil_model::{Batch, InputError, InputErrorReason, LoadedModel};

use crate::catalog::Served;

use crate::error::ApiError;
use crate::extract::{JsonBytes, json_error, log_payload, object_or_refused};
use crate::state::AppState;

/// A prediction request: one row in `features`, or several in `instances`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictRequest<'a> {
    /// One instance: the model's features, in order.
    #[serde(borrow, default)]
    #[schema(value_type = Option<Vec<f64>>)]
    pub features: Option<Vec<&'a RawValue>>,
    /// Several instances, each a list of features.
    #[serde(borrow, default)]
    #[schema(value_type = Option<Vec<Vec<f64>>>)]
    pub instances: Option<Vec<&'a RawValue>>,
    /// Model name (`POST /predict` only); the default model otherwise.
    #[serde(default)]
    pub model: Option<String>,
}

/// Python's `json.dumps` writes `NaN` and `Infinity`, which are not JSON. On a syntax
/// error the body is re-read with those tokens replaced by this string, so the client
/// learns which feature was non-finite instead of "malformed JSON".
const NON_FINITE_MARK: &[u8] = b"\"\\u0000non-finite\"";

/// [`NON_FINITE_MARK`] as the string it decodes to.
const NON_FINITE_TEXT: &str = "\u{0}non-finite";

/// A request refused before it ran, with the model it named when that one is loaded
/// (the `model` label of its validation error).
pub struct Refused {
    pub model: Option<Arc<Served>>,
    pub error: ApiError,
}

impl From<ApiError> for Refused {
    fn from(error: ApiError) -> Self {
        Self { model: None, error }
    }
}

/// The model to run and the rows to run it on. `path_model` is the name in the path
/// (`/models/{name}/predict`), which the body may repeat but not contradict.
pub fn parse(
    state: &AppState,
    path_model: Option<&str>,
    body: Result<JsonBytes, ApiError>,
) -> Result<(Arc<Served>, Batch), Refused> {
    if state.limits.log_payloads
        && let Ok(JsonBytes(bytes)) = &body
    {
        log_payload(bytes);
    }
    // One snapshot: the model and its metric handles stay together for the request.
    let catalog = state.models.load();
    let named = match path_model {
        Some(name) => Some(
            catalog
                .get(name)
                .cloned()
                .ok_or_else(|| ApiError::UnknownModel(name.to_owned()))?,
        ),
        None => None,
    };
    let refused = |error: ApiError| Refused {
        model: named.clone(),
        error,
    };
    let JsonBytes(bytes) = body.map_err(refused)?;
    let lenient;
    let (request, marked): (PredictRequest<'_>, bool) = match serde_json::from_slice(&bytes) {
        Ok(r) => (r, false),
        // A bare `NaN` is a feature only inside an object; elsewhere it is broken JSON,
        // and marking it would let an array pass for the request by position.
        Err(e) if !vigil_json_body::is_object(&bytes) => {
            return Err(refused(json_error(&bytes, e)));
        }
        Err(e) => match mark_non_finite(&bytes) {
            Some(marked) => {
                lenient = marked;
                let r = serde_json::from_slice(&lenient)
                    .map_err(|again| refused(lenient_error(&bytes, e, &lenient, again)))?;
                (r, true)
            }
            None => return Err(refused(json_error(&bytes, e))),
        },
    };
    object_or_refused(&bytes).map_err(refused)?;
    // The mark stands for a bare `NaN` or `Infinity` among the features; anywhere
    // else it was one too, and a number is not a model's name.
    if marked && request.model.as_deref() == Some(NON_FINITE_TEXT) {
        return Err(refused(ApiError::InvalidBody(
            "`model` must be a string, not a number".into(),
        )));
    }
    let model = match (named.clone(), &request.model) {
        (Some(path), Some(body)) if &path.card.name != body => {
            return Err(refused(ApiError::InvalidBody(format!(
                "the body names model {body:?} but the path names {:?}",
                path.card.name
            ))));
        }
        (Some(path), _) => path,
        (None, Some(name)) => catalog
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::UnknownModel(name.clone()))?,
        (None, None) => catalog.default_model().clone(),
    };
    let batch = rows(state, &model, request, marked).map_err(|error| Refused {
        model: Some(model.clone()),
        error,
    })?;
    Ok((model, batch))
}

/// The request's rows, checked against the model's card.
fn rows(
    state: &AppState,
    model: &LoadedModel,
    request: PredictRequest<'_>,
    marked: bool,
) -> Result<Batch, ApiError> {
    let rows: Vec<&RawValue> = match (request.features, request.instances) {
        (Some(features), None) => {
            let mut builder = BatchBuilder::new(&model.card, 1, state.limits.max_batch)?;
            builder.push_row(features.iter().map(|raw| cell(raw, marked)))?;
            return Ok(builder.finish());
        }
        (None, Some(instances)) => instances,
        (Some(_), Some(_)) => {
            return Err(ApiError::InvalidBody(
                "give either `features` or `instances`, not both".into(),
            ));
        }
        (None, None) => {
            return Err(ApiError::InvalidBody(
                "the body needs `features` (one instance) or `instances`".into(),
            ));
        }
    };
    let mut builder = BatchBuilder::new(&model.card, rows.len(), state.limits.max_batch)?;
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<&RawValue> = serde_json::from_str(row.get()).map_err(|_| {
            InputError::new(
                InputErrorReason::InvalidType,
                format!("instance {i} is not a list of features"),
            )
            .at(i, None)
        })?;
        builder.push_row(cells.iter().map(|raw| cell(raw, marked)))?;
    }
    Ok(builder.finish())
}

/// Classifies one raw JSON token; `marked`: the body was re-read with
/// [`NON_FINITE_MARK`]s, so one is a non-finite number (else it is a string the client
/// sent).
fn cell(raw: &RawValue, marked: bool) -> Cell {
    let text = raw.get().trim();
    match text.as_bytes().first() {
        Some(b'-' | b'0'..=b'9') => text.parse::<f64>().map_or(Cell::NotANumber, Cell::Number),
        _ if marked && text.as_bytes() == NON_FINITE_MARK => Cell::NonFinite,
        _ => Cell::NotANumber,
    }
}

/// Why a body with bare `NaN`/`Infinity` tokens is refused, given the error of the
/// strict parse (`strict`, on `bytes`) and of the parse with the tokens marked
/// (`again`, on `marked`). Broken syntax elsewhere is the strict parse's 400; a wrong
/// shape (an unknown field, a wrong type) is the 422 it would be without the tokens,
/// not a syntax error at the first `NaN`. Its message has no position, which counts
/// bytes of the marked text, and calls a mark what it stands for.
fn lenient_error(
    bytes: &[u8],
    strict: serde_json::Error,
    marked: &[u8],
    again: serde_json::Error,
) -> ApiError {
    let again = vigil_json_body::syntax_first(marked, again);
    if !again.is_data() {
        return json_error(bytes, strict);
    }
    let message = again.to_string();
    let message = match message.rfind(" at line ") {
        Some(at) => &message[..at],
        None => &message,
    };
    ApiError::InvalidBody(message.replace(
        &format!("string {NON_FINITE_TEXT:?}"),
        "a bare NaN or Infinity",
    ))
}

/// Replaces bare `NaN`, `Infinity` and `-Infinity` tokens outside strings with
/// [`NON_FINITE_MARK`]; `None` when there were none.
fn mark_non_finite(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() + 32);
    let (mut in_string, mut escaped, mut changed) = (false, false, false);
    let mut i = 0;
    'scan: while i < text.len() {
        let b = text[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else {
            for token in [
                &b"-Infinity"[..],
                b"+Infinity",
                b"Infinity",
                b"NaN",
                b"-NaN",
            ] {
                if text[i..].starts_with(token) {
                    out.extend_from_slice(NON_FINITE_MARK);
                    i += token.len();
                    changed = true;
                    continue 'scan;
                }
            }
        }
        out.push(b);
        i += 1;
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_classify_tokens() {
        let parse = |s: &str| cell(serde_json::from_str::<&RawValue>(s).unwrap(), false);
        assert_eq!(parse("1.5"), Cell::Number(1.5));
        assert_eq!(parse("-2e3"), Cell::Number(-2000.0));
        assert_eq!(parse("1e400"), Cell::Number(f64::INFINITY));
        assert_eq!(parse("\"1\""), Cell::NotANumber);
        assert_eq!(parse("null"), Cell::NotANumber);
        assert_eq!(parse("true"), Cell::NotANumber);
        assert_eq!(parse("[1]"), Cell::NotANumber);
        // The mark sent as a string by the client is a string.
        assert_eq!(parse("\"\\u0000non-finite\""), Cell::NotANumber);
    }

    #[test]
    fn non_finite_tokens_are_marked_outside_strings_only() {
        let marked =
            mark_non_finite(br#"{"features": [1, NaN, -Infinity], "model": "NaN"}"#).unwrap();
        let text = String::from_utf8(marked).unwrap();
        assert_eq!(text.matches("non-finite").count(), 2, "{text}");
        assert!(text.contains(r#""model": "NaN""#), "{text}");
        assert!(mark_non_finite(br#"{"features": [1, 2]}"#).is_none());
        let marked = mark_non_finite(br#"{"features": [NaN]}"#).unwrap();
        let req: PredictRequest<'_> = serde_json::from_slice(&marked).unwrap();
        assert_eq!(cell(req.features.unwrap()[0], true), Cell::NonFinite);
    }
}
