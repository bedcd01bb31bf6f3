//! `POST /feedback`: ground truth, one label or `{"feedback": [...]}`. Each item is
//! `{"prediction_id", "label" | "value", "timestamp"?}`: a classifier's true class or
//! a regressor's true value, and when the truth became known (default: now). A batch
//! with any bad item is refused whole, each problem listed by index, as `POST /log`
//! does.

use axum::Json;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Map, Value};
use vigil_json_body::Unique;
use vigil_records::card::MAX_NAME_LEN;
use vigil_records::{RecordError, id};
use vigil_store::{Label, Truth};
use vigil_telemetry::context::in_current_scope;

use super::{json_body, now_ms, parse_time};
use crate::CollectorState;
use crate::error::CollectorError;

/// How far in the future a label's timestamp may be (clock skew between systems).
pub const MAX_FUTURE_MS: i64 = 5 * 60 * 1000;

/// One item, checked; or what is wrong with it.
fn parse_item(index: usize, item: &Value, now: i64) -> Result<Label, RecordError> {
    let bad = |field: &'static str, reason: &str| RecordError {
        index,
        field: Some(field),
        reason: reason.to_owned(),
    };
    let Some(item) = item.as_object() else {
        return Err(RecordError {
            index,
            field: None,
            reason: "each label is a JSON object".into(),
        });
    };
    if let Some(unknown) = item.keys().find(|k| {
        !matches!(
            k.as_str(),
            "prediction_id" | "label" | "value" | "timestamp"
        )
    }) {
        return Err(RecordError {
            index,
            field: None,
            reason: format!("unknown field {unknown:?}"),
        });
    }
    let prediction_id = match item.get("prediction_id") {
        Some(Value::String(s)) if id::is_prediction_id(s.as_bytes()) => s.clone(),
        Some(_) => {
            return Err(bad(
                "prediction_id",
                "must be a prediction id as /predict answered it",
            ));
        }
        None => return Err(bad("prediction_id", "is required")),
    };
    // A null is a field left out, as in a record: clients that serialise every field
    // of their label type send `"value": null` beside a label.
    let field = |name: &str| item.get(name).filter(|v| !v.is_null());
    let truth = match (field("label"), field("value")) {
        (Some(Value::String(l)), None)
            if !l.is_empty() && l.len() <= MAX_NAME_LEN && !l.chars().any(char::is_control) =>
        {
            Truth::Label(l.clone())
        }
        (Some(_), None) => {
            return Err(bad(
                "label",
                "must be a string of 1 to 128 bytes without control characters",
            ));
        }
        (None, Some(v)) => match v.as_f64() {
            Some(v) if vigil_records::is_value(v) => Truth::Value(v),
            _ => return Err(bad("value", vigil_records::VALUE_RULE)),
        },
        (Some(_), Some(_)) => return Err(bad("label", "send a label or a value, not both")),
        (None, None) => {
            return Err(bad("label", "is required (or value, for a regressor)"));
        }
    };
    let label_ms = match field("timestamp") {
        None => now,
        Some(Value::String(t)) => match parse_time("timestamp", t) {
            // Ahead of this clock by no more than the skew allowed: known now. Kept
            // as sent, it would count in the quality gauges at once (their window
            // takes it as now) but in `/quality` only once its time came.
            Ok(ms) if ms <= now + MAX_FUTURE_MS => ms.min(now),
            Ok(_) => return Err(bad("timestamp", "is more than 5 minutes in the future")),
            Err(_) => return Err(bad("timestamp", "must be an RFC 3339 date-time")),
        },
        Some(_) => return Err(bad("timestamp", "must be an RFC 3339 date-time")),
    };
    Ok(Label {
        prediction_id,
        truth,
        label_ms,
    })
}

/// The items of a body (an object: `json_body` refuses anything else):
/// `{"feedback": [...]}` or one item.
fn items(mut object: Map<String, Value>, max: usize) -> Result<Vec<Value>, CollectorError> {
    match object.remove("feedback") {
        None => Ok(vec![Value::Object(object)]),
        Some(Value::Array(items)) if object.is_empty() => {
            if items.is_empty() {
                Err(CollectorError::Invalid("feedback is empty".into()))
            } else if items.len() > max {
                Err(CollectorError::Invalid(format!(
                    "at most {max} labels per request, not {}",
                    items.len()
                )))
            } else {
                Ok(items)
            }
        }
        Some(_) => Err(CollectorError::Invalid(
            "feedback must be the body's only field, an array of labels".into(),
        )),
    }
}

/// `POST /feedback`: 202 with accepted, pending and duplicate counts.
pub async fn feedback(
    State(state): State<CollectorState>,
    req: Request,
) -> Result<Response, CollectorError> {
    // Read as `Unique`: a repeated key is refused (a `Value` would keep the last, so
    // `{"label": "ok", "label": "defect"}` was graded as `defect`).
    let Unique(body) = json_body(req, state.config.body_limit).await?;
    let Value::Object(object) = body else {
        return Err(CollectorError::Invalid(
            vigil_json_body::NOT_AN_OBJECT.into(),
        ));
    };
    let items = items(object, state.config.max_records)?;
    let now = now_ms();
    let mut labels = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match parse_item(index, item, now) {
            Ok(l) => labels.push(l),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(CollectorError::InvalidRecords(errors));
    }
    // Spawned: a client that hangs up cannot cut it off between the commit and the
    // counts (the counts, the pending tally and the window follow the rows).
    let submit = tokio::spawn({
        let state = state.clone();
        in_current_scope(async move { state.submit_feedback(labels).await })
    });
    let accepted = match submit.await {
        Ok(result) => result?,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
}
