//! The rules every record meets before it is stored, whatever encoding it came in: a
//! batch is checked record by record, and any bad record refuses the whole batch with
//! the index, field and reason of each problem, so a sender can fix and resend (or
//! drop exactly the bad ones) without guessing.

use crate::{BodyError, Record, RecordError, RecordRef, id};

/// Most feature values one record may carry.
pub const MAX_FEATURES: usize = 4096;

/// Largest magnitude of a regressor's value, predicted (a record's `value`) or true (a
/// label's): a model answers f32, and within its range the quality sums stay finite
/// (an error between ±1e308 overflowed to inf, and the collector's MAE and RMSE with
/// it).
pub const MAX_VALUE: f64 = f32::MAX as f64;

/// Whether `v` can be a regressor's value: finite, and finite as an f32 (so
/// `3.4028235e38`, how f32::MAX is printed and a hair above [`MAX_VALUE`] as an f64,
/// is one: it rounds to f32::MAX).
pub fn is_value(v: f64) -> bool {
    v.is_finite() && (v as f32).is_finite()
}

/// Why a value is refused, for the error's reason.
pub const VALUE_RULE: &str = "must be a finite number within ±3.4e38 (a model's 32-bit range)";

/// Refuses an empty batch or one over `max_records`.
pub(crate) fn check_count(n: usize, max_records: usize) -> Result<(), BodyError> {
    if n == 0 {
        return Err(BodyError::Shape("`records` is empty".into()));
    }
    if n > max_records {
        return Err(BodyError::Shape(format!(
            "{n} records, the limit is {max_records}"
        )));
    }
    Ok(())
}

/// Validates decoded records in order: all of them, or the index and reason of every
/// one that is wrong (undecodable, invalid, or repeating an id of the same batch).
/// `decode` is called once per record, in order, with `(index, scratch)`.
pub(crate) fn check_records<F>(count: usize, mut decode: F) -> Result<Vec<Record>, BodyError>
where
    F: FnMut(usize, &mut Vec<f64>) -> Result<Checked, String>,
{
    let mut records = Vec::with_capacity(count);
    // Each valid record's index in the batch.
    let mut indexes = Vec::with_capacity(count);
    let mut errors = Vec::new();
    let mut features = Vec::new();
    for index in 0..count {
        match decode(index, &mut features) {
            Ok(Checked(Ok(record))) => {
                records.push(record);
                indexes.push(index);
            }
            Ok(Checked(Err(e))) => errors.push(e),
            Err(reason) => errors.push(RecordError {
                index,
                field: None,
                reason,
            }),
        }
    }
    // Repeated ids, found after decoding so the set borrows them instead of holding a
    // copy of each (an allocation per record). The first of equal ids stands; each
    // later one is an error.
    let mut seen = std::collections::HashSet::with_capacity(records.len());
    let before = errors.len();
    for (record, &index) in records.iter().zip(&indexes) {
        if !seen.insert(record.prediction_id.as_str()) {
            errors.push(RecordError {
                index,
                field: Some("prediction_id"),
                reason: "repeated within this batch".into(),
            });
        }
    }
    if errors.len() > before {
        // In batch order, as a sender reads them (stable: one error per index).
        errors.sort_by_key(|e| e.index);
    }
    if errors.is_empty() {
        Ok(records)
    } else {
        Err(BodyError::Records(errors))
    }
}

/// A decoded record after [`validate`].
pub(crate) struct Checked(pub Result<Record, RecordError>);

/// Checks one record against every rule and, if it passes, makes its stored form.
pub(crate) fn validate(index: usize, w: &RecordRef<'_>) -> Result<Record, RecordError> {
    let bad = |field: &'static str, reason: &str| RecordError {
        index,
        field: Some(field),
        reason: reason.into(),
    };
    if !id::is_prediction_id(w.prediction_id.as_bytes()) {
        return Err(bad(
            "prediction_id",
            "must be 1-128 printable ASCII characters without spaces",
        ));
    }
    // The inference service keeps a caller's `X-Request-ID` with spaces in it: refusing
    // those here would refuse the whole batch their record travels in.
    if !id::is_request_id(w.request_id.as_bytes()) {
        return Err(bad(
            "request_id",
            "must be 1-128 printable ASCII characters",
        ));
    }
    if let Some(t) = w.trace_id
        && !id::is_trace_id(t.as_bytes())
    {
        return Err(bad("trace_id", "must be 32 hex characters"));
    }
    for (field, value) in [("model", w.model), ("model_version", w.model_version)] {
        if value.is_empty() || value.len() > 64 || value.chars().any(char::is_control) {
            return Err(bad(field, "must be 1-64 printable characters"));
        }
    }
    let ts_ms = crate::parse_rfc3339_ms(w.timestamp).ok_or_else(|| {
        bad(
            "timestamp",
            "must be an RFC 3339 date-time in the years 0000-9999 (UTC)",
        )
    })?;
    if let Some(c) = w.confidence
        && !(0.0..=1.0).contains(&c)
    {
        return Err(bad("confidence", "must be between 0 and 1"));
    }
    if !w.latency_ms.is_finite() || w.latency_ms < 0.0 {
        return Err(bad("latency_ms", "must be a non-negative number"));
    }
    if let Some(l) = w.label
        && (l.len() > 128 || l.chars().any(char::is_control))
    {
        return Err(bad("label", "must be at most 128 printable characters"));
    }
    match (w.status, w.error_type) {
        (crate::Status::Error, None) => {
            return Err(bad("error_type", "is required when status is error"));
        }
        (crate::Status::Success, Some(_)) => {
            return Err(bad("error_type", "is only allowed when status is error"));
        }
        (_, Some(e)) if e.is_empty() || e.len() > 64 || e.chars().any(char::is_control) => {
            return Err(bad("error_type", "must be 1-64 printable characters"));
        }
        _ => {}
    }
    if let Some(f) = w.features {
        if f.len() > MAX_FEATURES {
            return Err(bad("features", "at most 4096 values"));
        }
        // JSON cannot carry NaN or infinities; a binary batch can.
        if !f.iter().all(|v| v.is_finite()) {
            return Err(bad("features", "must be finite numbers"));
        }
    }
    if let Some(v) = w.value
        && !is_value(v)
    {
        return Err(bad("value", VALUE_RULE));
    }
    Ok(Record {
        prediction_id: w.prediction_id.to_owned(),
        model: w.model.to_owned(),
        model_version: w.model_version.to_owned(),
        ts_ms,
        label: w.label.map(str::to_owned),
        confidence: w.confidence,
        is_defect: w.is_defect,
        latency_ms: w.latency_ms,
        request_id: w.request_id.to_owned(),
        trace_id: w.trace_id.map(str::to_owned),
        status: w.status,
        error_type: w.error_type.map(str::to_owned),
        features: w
            .features
            .map(|f| serde_json::to_string(f).unwrap_or_default()),
        value: w.value,
    })
}
