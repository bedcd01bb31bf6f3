//! The record's three forms: [`WireRecord`] (owned, as JSON senders write it),
//! [`RecordRef`] (borrowed, as the inference service builds and the binary encoding
//! reads it) and [`Record`] (validated, as stores keep it).

use serde::{Deserialize, Serialize};

use crate::Status;

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
    /// A regressor's predicted value (a classifier's record has `label` instead).
    #[serde(default)]
    pub value: Option<f64>,
}

/// A record borrowing its text from the sender: the inference service's handlers pack
/// it ([`crate::packed`]) without an owned [`WireRecord`] per prediction, and the
/// forwarder serializes it straight into a JSON body when a collector wants JSON.
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
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
            value: r.value,
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
            value: r.value,
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
            value: r.value,
        }
    }
}

/// One prediction as stored: a record that passed validation, its time as unix
/// milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub prediction_id: String,
    pub model: String,
    pub model_version: String,
    /// When the prediction was made, unix milliseconds.
    pub ts_ms: i64,
    pub label: Option<String>,
    pub confidence: Option<f64>,
    pub is_defect: bool,
    pub latency_ms: f64,
    pub request_id: String,
    pub trace_id: Option<String>,
    pub status: Status,
    pub error_type: Option<String>,
    /// The input features as JSON text, when the sender includes them.
    pub features: Option<String>,
    /// A regressor's predicted value.
    pub value: Option<f64>,
}

/// An RFC 3339 date-time as unix milliseconds; `None` when it does not parse, or when
/// in UTC it falls outside the years 0000-9999 that RFC 3339 can write (an offset
/// carries `9999-12-31T23:59:59-23:59` into the year 10000), so that every time taken
/// can be written back by [`rfc3339_ms`].
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    // Floored, as after 1970: `/` rounds toward zero, which took a time before 1970 up
    // (`1969-12-31T23:59:59.9995Z` became `1970-01-01T00:00:00.000Z`).
    let ms = i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000)).ok()?;
    let utc = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    (0..=9999).contains(&utc.year()).then_some(ms)
}

/// Unix milliseconds as RFC 3339 UTC, always with three fractional digits
/// (`2026-12-05T01:00:00.000Z`): the reference promises milliseconds, and `time`'s
/// well-known RFC 3339 writes as few digits as the value needs (`…:00Z`, `….5Z`),
/// which parsers expecting a fixed layout refuse. Empty outside the years 0000-9999.
pub fn rfc3339_ms(ms: i64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .filter(|t| (0..=9999).contains(&t.year()))
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only times RFC 3339 can write back in UTC are taken.
    #[test]
    fn times_are_taken_only_where_they_can_be_written_back() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(
            parse_rfc3339_ms("2026-12-04T19:24:09.770+01:00"),
            parse_rfc3339_ms("2026-12-04T18:24:09.770Z")
        );
        let last = parse_rfc3339_ms("9999-12-31T23:59:59Z").unwrap();
        assert_eq!(rfc3339_ms(last), "9999-12-31T23:59:59.000Z");
        // Sub-millisecond digits are cut, before 1970 as after.
        for (text, written) in [
            ("2026-12-05T07:00:00.9999999Z", "2026-12-05T07:00:00.999Z"),
            ("1969-12-31T23:59:59.9995Z", "1969-12-31T23:59:59.999Z"),
            ("1969-12-31T23:59:59.0001Z", "1969-12-31T23:59:59.000Z"),
        ] {
            assert_eq!(
                rfc3339_ms(parse_rfc3339_ms(text).unwrap()),
                written,
                "{text}"
            );
        }
        let first = parse_rfc3339_ms("0000-01-01T00:00:00Z").unwrap();
        assert_eq!(rfc3339_ms(first), "0000-01-01T00:00:00.000Z");
        // Always three fractional digits, as the reference promises.
        for (ms, text) in [
            (0, "1970-01-01T00:00:00.000Z"),
            (500, "1970-01-01T00:00:00.500Z"),
            (1_764_896_404_430, "2025-12-05T01:00:04.430Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
        ] {
            assert_eq!(rfc3339_ms(ms), text);
            assert_eq!(parse_rfc3339_ms(text), Some(ms));
        }
        for text in [
            "9999-12-31T23:59:59-23:59",
            "0000-01-01T00:00:00+23:59",
            "yesterday",
            "",
        ] {
            assert_eq!(parse_rfc3339_ms(text), None, "{text}");
        }
    }
}
