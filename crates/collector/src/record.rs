//! The wire format of a prediction record (SPEC §5) and its validation. A batch is
//! checked record by record; any bad record rejects the whole batch, with the index,
//! field and reason of each problem, so a sender can fix and resend without guessing.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use vigil_store::{Record, Status};

/// Longest id (prediction, request, trace) accepted.
pub const MAX_ID_LEN: usize = 128;

/// What is wrong with one record of a batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordError {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    pub reason: String,
}

/// A record as senders write it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WireRecord {
    pub prediction_id: String,
    pub model: String,
    pub model_version: String,
    /// RFC 3339.
    pub timestamp: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub confidence: Option<f64>,
    #[serde(default)]
    pub is_defect: bool,
    pub latency_ms: f64,
    pub request_id: String,
    #[serde(default)]
    pub trace_id: Option<String>,
    pub status: Status,
    #[serde(default)]
    pub error_type: Option<String>,
    #[serde(default)]
    pub features: Option<Vec<f64>>,
}

/// A record borrowing its text from the sender: the inference service's forwarder
/// serializes it straight into the `POST /log` body, without an owned [`WireRecord`]
/// per prediction.
/// Same wire format; absent optional fields are left out (the collector defaults them).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RecordRef<'a> {
    pub prediction_id: &'a str,
    pub model: &'a str,
    pub model_version: &'a str,
    /// RFC 3339.
    pub timestamp: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    pub is_defect: bool,
    pub latency_ms: f64,
    pub request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<&'a str>,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<&'a [f64]>,
}

impl<'a> From<&'a WireRecord> for RecordRef<'a> {
    fn from(r: &'a WireRecord) -> Self {
        Self {
            prediction_id: &r.prediction_id,
            model: &r.model,
            model_version: &r.model_version,
            timestamp: &r.timestamp,
            label: r.label.as_deref(),
            confidence: r.confidence,
            is_defect: r.is_defect,
            latency_ms: r.latency_ms,
            request_id: &r.request_id,
            trace_id: r.trace_id.as_deref(),
            status: r.status,
            error_type: r.error_type.as_deref(),
            features: r.features.as_deref(),
        }
    }
}

impl WireRecord {
    /// The stored form of a stored record, for `GET /predictions`.
    pub fn from_stored(r: Record) -> Self {
        Self {
            prediction_id: r.prediction_id,
            model: r.model,
            model_version: r.model_version,
            timestamp: rfc3339_ms(r.ts_ms),
            label: r.label,
            confidence: r.confidence,
            is_defect: r.is_defect,
            latency_ms: r.latency_ms,
            request_id: r.request_id,
            trace_id: r.trace_id,
            status: r.status,
            error_type: r.error_type,
            features: r.features.and_then(|f| serde_json::from_str(&f).ok()),
        }
    }
}

/// `{"records": [...]}` or a single record object.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch<'a> {
    #[serde(borrow)]
    records: Vec<&'a RawValue>,
}

/// Parses a `POST /log` body into records, or every problem found.
pub fn parse_body(body: &[u8], max_records: usize) -> Result<Vec<Record>, BodyError> {
    let value: &RawValue =
        serde_json::from_slice(body).map_err(|e| BodyError::Json(e.to_string()))?;
    let raws: Vec<&RawValue> =
        if value.get().trim_start().starts_with('{') && looks_like_batch(value.get()) {
            serde_json::from_str::<Batch<'_>>(value.get())
                .map_err(|e| BodyError::Shape(e.to_string()))?
                .records
        } else if value.get().trim_start().starts_with('{') {
            vec![value]
        } else {
            return Err(BodyError::Shape(
                "the body must be a record object or {\"records\": [...]}".into(),
            ));
        };
    if raws.is_empty() {
        return Err(BodyError::Shape("`records` is empty".into()));
    }
    if raws.len() > max_records {
        return Err(BodyError::Shape(format!(
            "{} records, the limit is {max_records}",
            raws.len()
        )));
    }
    let mut records = Vec::with_capacity(raws.len());
    let mut errors = Vec::new();
    let mut seen = std::collections::HashSet::with_capacity(raws.len());
    for (index, raw) in raws.iter().enumerate() {
        match serde_json::from_str::<WireRecord>(raw.get()) {
            Ok(wire) => match validate(index, wire) {
                Ok(record) => {
                    if !seen.insert(record.prediction_id.clone()) {
                        errors.push(RecordError {
                            index,
                            field: Some("prediction_id"),
                            reason: "repeated within this batch".into(),
                        });
                    }
                    records.push(record);
                }
                Err(e) => errors.push(e),
            },
            Err(e) => errors.push(RecordError {
                index,
                field: None,
                reason: e.to_string(),
            }),
        }
    }
    if errors.is_empty() {
        Ok(records)
    } else {
        Err(BodyError::Records(errors))
    }
}

/// Whether an object body is a batch: it has a top-level `records` key.
fn looks_like_batch(text: &str) -> bool {
    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(borrow, default)]
        records: Option<&'a RawValue>,
    }
    serde_json::from_str::<Probe<'_>>(text).is_ok_and(|p| p.records.is_some())
}

/// Why a body was refused.
#[derive(Debug)]
pub enum BodyError {
    /// Not JSON at all.
    Json(String),
    /// JSON of the wrong overall shape.
    Shape(String),
    /// Some records are invalid.
    Records(Vec<RecordError>),
}

fn validate(index: usize, w: WireRecord) -> Result<Record, RecordError> {
    let bad = |field: &'static str, reason: &str| RecordError {
        index,
        field: Some(field),
        reason: reason.into(),
    };
    let id_ok = |s: &str| {
        !s.is_empty() && s.len() <= MAX_ID_LEN && s.bytes().all(|b| (0x21..0x7f).contains(&b))
    };
    if !id_ok(&w.prediction_id) {
        return Err(bad(
            "prediction_id",
            "must be 1-128 printable ASCII characters without spaces",
        ));
    }
    if !id_ok(&w.request_id) {
        return Err(bad(
            "request_id",
            "must be 1-128 printable ASCII characters without spaces",
        ));
    }
    if let Some(t) = &w.trace_id
        && (t.len() != 32 || !t.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(bad("trace_id", "must be 32 hex characters"));
    }
    for (field, value) in [("model", &w.model), ("model_version", &w.model_version)] {
        if value.is_empty() || value.len() > 64 || value.chars().any(char::is_control) {
            return Err(bad(field, "must be 1-64 printable characters"));
        }
    }
    let ts =
        time::OffsetDateTime::parse(&w.timestamp, &time::format_description::well_known::Rfc3339)
            .map_err(|_| bad("timestamp", "must be an RFC 3339 date-time"))?;
    let ts_ms = i64::try_from(ts.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| bad("timestamp", "out of range"))?;
    if let Some(c) = w.confidence
        && !(0.0..=1.0).contains(&c)
    {
        return Err(bad("confidence", "must be between 0 and 1"));
    }
    if !w.latency_ms.is_finite() || w.latency_ms < 0.0 {
        return Err(bad("latency_ms", "must be a non-negative number"));
    }
    if let Some(l) = &w.label
        && (l.len() > 128 || l.chars().any(char::is_control))
    {
        return Err(bad("label", "must be at most 128 printable characters"));
    }
    match (w.status, &w.error_type) {
        (Status::Error, None) => return Err(bad("error_type", "is required when status is error")),
        (Status::Success, Some(_)) => {
            return Err(bad("error_type", "is only allowed when status is error"));
        }
        (_, Some(e)) if e.is_empty() || e.len() > 64 || e.chars().any(char::is_control) => {
            return Err(bad("error_type", "must be 1-64 printable characters"));
        }
        _ => {}
    }
    if let Some(f) = &w.features
        && f.len() > 4096
    {
        return Err(bad("features", "at most 4096 values"));
    }
    Ok(Record {
        prediction_id: w.prediction_id,
        model: w.model,
        model_version: w.model_version,
        ts_ms,
        label: w.label,
        confidence: w.confidence,
        is_defect: w.is_defect,
        latency_ms: w.latency_ms,
        request_id: w.request_id,
        trace_id: w.trace_id,
        status: w.status,
        error_type: w.error_type,
        features: w
            .features
            .map(|f| serde_json::to_string(&f).unwrap_or_default()),
    })
}

/// Unix milliseconds as RFC 3339 UTC.
pub fn rfc3339_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good(id: &str) -> serde_json::Value {
        json!({
            "prediction_id": id, "model": "defect-detector", "model_version": "1.0.0",
            "timestamp": "2026-11-22T21:00:00.123Z", "label": "ok", "confidence": 0.9,
            "is_defect": false, "latency_ms": 1.2, "request_id": "r1",
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "status": "success"
        })
    }

    /// What the inference service sends (borrowed, nulls left out) reads back as the
    /// same record, for a success and an error record.
    #[test]
    fn borrowed_records_are_the_same_wire_format() {
        let success: WireRecord = serde_json::from_value(good("p1")).unwrap();
        let mut error = success.clone();
        error.status = Status::Error;
        error.error_type = Some("timeout".into());
        error.label = None;
        error.confidence = None;
        error.trace_id = None;
        error.features = Some(vec![1.5, -2.0]);
        for record in [success, error] {
            let text = serde_json::to_string(&RecordRef::from(&record)).unwrap();
            assert!(!text.contains("null"), "{text}");
            let back: WireRecord = serde_json::from_str(&text).unwrap();
            assert_eq!(back, record);
            assert_eq!(parse_body(text.as_bytes(), 10).unwrap().len(), 1);
        }
    }

    #[test]
    fn single_records_and_batches_parse() {
        let one = parse_body(good("p1").to_string().as_bytes(), 10).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].ts_ms, 1_795_381_200_123);
        let batch = parse_body(
            json!({"records": [good("a"), good("b")]})
                .to_string()
                .as_bytes(),
            10,
        )
        .unwrap();
        assert_eq!(batch.len(), 2);
        assert_eq!(rfc3339_ms(one[0].ts_ms), "2026-11-22T21:00:00.123Z");
    }

    #[test]
    fn every_bad_record_is_reported_with_index_and_field() {
        let mut no_error_type = good("c");
        no_error_type["status"] = json!("error");
        let mut bad_conf = good("d");
        bad_conf["confidence"] = json!(1.5);
        let mut bad_ts = good("e");
        bad_ts["timestamp"] = json!("yesterday");
        let body = json!({"records": [good("a"), no_error_type, bad_conf, bad_ts, {"nope": 1}, good("a")]});
        let Err(BodyError::Records(errors)) = parse_body(body.to_string().as_bytes(), 10) else {
            panic!()
        };
        let got: Vec<_> = errors.iter().map(|e| (e.index, e.field)).collect();
        assert_eq!(
            got,
            [
                (1, Some("error_type")),
                (2, Some("confidence")),
                (3, Some("timestamp")),
                (4, None),
                (5, Some("prediction_id"))
            ]
        );
    }

    #[test]
    fn shapes_and_limits() {
        assert!(matches!(parse_body(b"[1,2]", 10), Err(BodyError::Shape(_))));
        assert!(matches!(
            parse_body(b"{\"records\": []}", 10),
            Err(BodyError::Shape(_))
        ));
        assert!(matches!(parse_body(b"{", 10), Err(BodyError::Json(_))));
        let three = json!({"records": [good("a"), good("b"), good("c")]}).to_string();
        assert!(matches!(
            parse_body(three.as_bytes(), 2),
            Err(BodyError::Shape(_))
        ));
    }
}
