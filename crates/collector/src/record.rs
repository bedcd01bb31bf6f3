//! The wire format of a prediction record (SPEC §5) and its validation, for JSON
//! bodies and for vigil's binary batches ([`crate::packed`]). A batch is checked
//! record by record; any bad record rejects the whole batch, with the index,
//! field and reason of each problem, so a sender can fix and resend without guessing.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use vigil_store::{Record, Status};

use crate::packed;

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

/// A record borrowing its text from the sender: the inference service's handlers pack
/// it ([`crate::packed`]) and its forwarder serializes it straight into a JSON body,
/// without an owned [`WireRecord`] per prediction.
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

impl From<RecordRef<'_>> for WireRecord {
    fn from(r: RecordRef<'_>) -> Self {
        Self {
            prediction_id: r.prediction_id.to_owned(),
            model: r.model.to_owned(),
            model_version: r.model_version.to_owned(),
            timestamp: r.timestamp.to_owned(),
            label: r.label.map(str::to_owned),
            confidence: r.confidence,
            is_defect: r.is_defect,
            latency_ms: r.latency_ms,
            request_id: r.request_id.to_owned(),
            trace_id: r.trace_id.map(str::to_owned),
            status: r.status,
            error_type: r.error_type.map(str::to_owned),
            features: r.features.map(<[f64]>::to_vec),
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
    check_count(raws.len(), max_records)?;
    check_records(
        raws.iter()
            .map(|raw| serde_json::from_str::<WireRecord>(raw.get()).map_err(|e| e.to_string())),
    )
}

/// Parses a binary batch ([`crate::packed`]) into records, or every problem found.
/// Each record is checked exactly as a JSON one is; damage to the framing (a length
/// running past the end) refuses the whole body, since nothing after it can be
/// located. A body without this version's header is an unknown encoding (a 415, so a
/// sender can fall back to JSON), not a bad batch.
pub fn parse_binary_body(body: &[u8], max_records: usize) -> Result<Vec<Record>, BodyError> {
    let rest = body.strip_prefix(packed::MAGIC.as_slice()).ok_or_else(|| {
        BodyError::Version(format!(
            "this collector reads {} bodies that start with `VGL1`",
            packed::CONTENT_TYPE
        ))
    })?;
    // One frame past the limit is enough to refuse the batch.
    let framed: Vec<&[u8]> = packed::records(rest)
        .take(max_records.saturating_add(1))
        .collect::<Result<_, _>>()
        .map_err(|e| {
            BodyError::Shape(format!(
                "the record framing is damaged at byte {}",
                e.0 + packed::MAGIC.len()
            ))
        })?;
    check_count(framed.len(), max_records)?;
    let mut features = Vec::new();
    check_records(framed.iter().map(|bytes| {
        packed::read(bytes, &mut features)
            .map(WireRecord::from)
            .map_err(|e| e.to_string())
    }))
}

fn check_count(n: usize, max_records: usize) -> Result<(), BodyError> {
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
fn check_records(
    decoded: impl ExactSizeIterator<Item = Result<WireRecord, String>>,
) -> Result<Vec<Record>, BodyError> {
    let mut records = Vec::with_capacity(decoded.len());
    let mut errors = Vec::new();
    let mut seen = std::collections::HashSet::with_capacity(decoded.len());
    for (index, wire) in decoded.enumerate() {
        match wire {
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
            Err(reason) => errors.push(RecordError {
                index,
                field: None,
                reason,
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
    /// JSON of the wrong overall shape, or a binary batch whose framing is damaged.
    Shape(String),
    /// A binary batch that does not start with this version's header.
    Version(String),
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
    // The inference service keeps a caller's `X-Request-ID` with spaces in it: refusing
    // those here would refuse the whole batch their record travels in.
    if !vigil_telemetry::context::RequestId::is_acceptable(w.request_id.as_bytes()) {
        return Err(bad(
            "request_id",
            "must be 1-128 printable ASCII characters",
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
    if let Some(f) = &w.features {
        if f.len() > 4096 {
            return Err(bad("features", "at most 4096 values"));
        }
        // JSON cannot carry NaN or infinities; a binary batch can.
        if !f.iter().all(|v| v.is_finite()) {
            return Err(bad("features", "must be finite numbers"));
        }
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
        assert_eq!(
            fields(&refused(parse_body(body.to_string().as_bytes(), 10))),
            [
                (1, Some("error_type")),
                (2, Some("confidence")),
                (3, Some("timestamp")),
                (4, None),
                (5, Some("prediction_id"))
            ]
        );
    }

    /// The per-record errors of a refused batch.
    fn refused(parsed: Result<Vec<Record>, BodyError>) -> Vec<RecordError> {
        match parsed {
            Err(BodyError::Records(errors)) => errors,
            other => panic!("not refused record by record: {other:?}"),
        }
    }

    fn fields(errors: &[RecordError]) -> Vec<(usize, Option<&'static str>)> {
        errors.iter().map(|e| (e.index, e.field)).collect()
    }

    /// `request_id` takes what the inference service keeps from `X-Request-ID`.
    #[test]
    fn request_ids_follow_the_inference_services_rule() {
        let mut spaced = good("a");
        spaced["request_id"] = json!("order 42 / line 7");
        assert_eq!(
            parse_body(spaced.to_string().as_bytes(), 10).unwrap()[0].request_id,
            "order 42 / line 7"
        );
        for bad in [
            json!(""),
            json!("tab\there"),
            json!("é"),
            json!("x".repeat(129)),
        ] {
            let mut r = good("b");
            r["request_id"] = bad;
            let errors = refused(parse_body(r.to_string().as_bytes(), 10));
            assert_eq!(errors[0].field, Some("request_id"));
        }
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

    /// A binary batch of `records` as vigil's forwarder sends it.
    fn binary(records: &[WireRecord]) -> Vec<u8> {
        let mut body = packed::MAGIC.to_vec();
        for r in records {
            packed::write(&mut body, &RecordRef::from(r));
        }
        body
    }

    fn wire(value: serde_json::Value) -> WireRecord {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_binary_batch_stores_what_the_same_json_batch_stores() {
        let mut error = wire(good("b"));
        error.status = Status::Error;
        error.error_type = Some("timeout".into());
        error.label = None;
        error.confidence = None;
        error.features = Some(vec![1.5, -2.0]);
        let records = [wire(good("a")), error];
        let json = serde_json::to_vec(&json!({"records": records})).unwrap();
        assert_eq!(
            parse_binary_body(&binary(&records), 10).unwrap(),
            parse_body(&json, 10).unwrap()
        );
    }

    #[test]
    fn binary_records_are_checked_like_json_ones_and_damage_is_a_clear_error() {
        let mut bad_trace = wire(good("c"));
        bad_trace.trace_id = Some("not-hex".into());
        let mut nan = wire(good("d"));
        nan.features = Some(vec![f64::NAN]);
        let mut inf = wire(good("e"));
        inf.latency_ms = f64::INFINITY;
        let body = binary(&[wire(good("a")), bad_trace, nan, inf, wire(good("a"))]);
        assert_eq!(
            fields(&refused(parse_binary_body(&body, 10))),
            [
                (1, Some("trace_id")),
                (2, Some("features")),
                (3, Some("latency_ms")),
                (4, Some("prediction_id"))
            ]
        );
        // A record whose fields do not decode (a status byte of 7, invalid UTF-8) is
        // reported by index; the framing around it still holds.
        let mut body = binary(&[wire(good("a")), wire(good("b"))]);
        let mut one = Vec::new();
        packed::write(&mut one, &RecordRef::from(&wire(good("c"))));
        let status_at = one.len() - 4 - 4 - 1; // before error_type (absent) and features (absent)
        one[status_at] = 7;
        body.extend_from_slice(&one);
        let mut bad_utf8 = Vec::new();
        packed::write(&mut bad_utf8, &RecordRef::from(&wire(good("d"))));
        bad_utf8[8] = 0xff; // inside prediction_id
        body.extend_from_slice(&bad_utf8);
        let errors = refused(parse_binary_body(&body, 10));
        assert_eq!(fields(&errors), [(2, None), (3, None)]);
        assert!(errors[0].reason.contains("damaged"), "{}", errors[0].reason);
        // Framing, emptiness and the record limit refuse the whole body.
        let two = binary(&[wire(good("a")), wire(good("b"))]);
        for refused in [&two[..two.len() - 1], packed::MAGIC.as_slice()] {
            assert!(
                matches!(parse_binary_body(refused, 10), Err(BodyError::Shape(_))),
                "{refused:?}"
            );
        }
        // Without this version's header it is another encoding, not a bad batch.
        for other in [
            &two[1..],
            b"VGL2".as_slice(),
            b"".as_slice(),
            b"{\"records\": []}".as_slice(),
        ] {
            assert!(
                matches!(parse_binary_body(other, 10), Err(BodyError::Version(_))),
                "{other:?}"
            );
        }
        assert!(matches!(
            parse_binary_body(&two, 1),
            Err(BodyError::Shape(_))
        ));
        // A length prefix claiming 4 GiB is refused without reading (or allocating) it.
        let mut huge = packed::MAGIC.to_vec();
        huge.extend_from_slice(&(u32::MAX - 1).to_le_bytes());
        assert!(matches!(
            parse_binary_body(&huge, 10),
            Err(BodyError::Shape(_))
        ));
    }
}
