//! vigil's binary batch encoding of prediction records, the `POST /log` body
//! `application/vnd.vigil.records`: the four bytes `VGL1` (format and version), then
//! each record prefixed with its length in bytes (`u32`, little-endian). A record is
//! its fields back to back in the order of [`RecordRef`]: strings as a `u32` length
//! and UTF-8 bytes (`u32::MAX` for an absent one), `confidence` as a presence byte and
//! an `f64`, `is_defect` as a byte, `latency_ms` as an `f64`, `status` as a byte
//! (0 success, 1 error), `features` as a `u32` count (`u32::MAX` for none) and that
//! many `f64`s, then a regressor's `value` as an `f64` only when there is one (a
//! record ending after `features` has none); numbers are little-endian.
//!
//! `value` came after the first readers: as a trailer written only when present, a
//! classifier's records are byte for byte what those readers take.
//!
//! Why it exists: the inference service's handlers append a record in this form with
//! a few `memcpy`s, and its forwarder sends the filled buffer as it is, so a
//! prediction costs no JSON escaping or float formatting on the serving machine and
//! the collector no JSON parsing. JSON stays the collector's public format;
//! the forwarder switches to this one only after the collector has advertised it in
//! `Accept-Post`, so it never sends it to a collector that cannot read it. The
//! collector checks every record of a binary batch exactly as it checks JSON ones.

use crate::validate::{Checked, check_count, check_records, validate};
use crate::{BodyError, Record, RecordRef, Status};

/// The media type of a binary batch.
pub const CONTENT_TYPE: &str = "application/vnd.vigil.records";

/// The first bytes of a binary batch: the format and its version.
pub const MAGIC: &[u8; 4] = b"VGL1";

/// Marks an absent optional string, float or list.
const NONE: u32 = u32::MAX;

/// A packed record that does not decode: a damaged or hostile body (or, in the
/// process that wrote it, a bug in this module).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("packed prediction record is damaged at byte {0}")]
pub struct Damaged(pub usize);

/// Whether `content_type` (a `Content-Type` header value, parameters allowed) names
/// the binary batch encoding.
pub fn is_content_type(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(CONTENT_TYPE))
}

/// Appends `record` to `out`, prefixed with its length.
pub fn write(out: &mut Vec<u8>, record: &RecordRef<'_>) {
    let start = out.len();
    out.extend_from_slice(&0u32.to_le_bytes());
    put_str(out, Some(record.prediction_id));
    put_str(out, Some(record.model));
    put_str(out, Some(record.model_version));
    put_str(out, Some(record.timestamp));
    put_str(out, record.label);
    match record.confidence {
        Some(c) => {
            out.push(1);
            out.extend_from_slice(&c.to_le_bytes());
        }
        None => out.push(0),
    }
    out.push(u8::from(record.is_defect));
    out.extend_from_slice(&record.latency_ms.to_le_bytes());
    put_str(out, Some(record.request_id));
    put_str(out, record.trace_id);
    out.push(match record.status {
        Status::Success => 0,
        Status::Error => 1,
    });
    put_str(out, record.error_type);
    match record.features {
        Some(values) => {
            out.extend_from_slice(&len32(values.len()).to_le_bytes());
            for v in values {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        None => out.extend_from_slice(&NONE.to_le_bytes()),
    }
    if let Some(v) = record.value {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let len = len32(out.len() - start - 4);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

/// Appends a record as [`records`] yields it (without its length prefix), framed again.
pub fn write_framed(out: &mut Vec<u8>, record: &[u8]) {
    out.extend_from_slice(&len32(record.len()).to_le_bytes());
    out.extend_from_slice(record);
}

/// The packed records in `data`, in order.
pub fn records(data: &[u8]) -> impl Iterator<Item = Result<&[u8], Damaged>> {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at == data.len() {
            return None;
        }
        let Some(len) = data.get(at..at + 4) else {
            at = data.len();
            return Some(Err(Damaged(at)));
        };
        let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
        let start = at + 4;
        match data.get(start..start + len) {
            Some(record) => {
                at = start + len;
                Some(Ok(record))
            }
            None => {
                at = data.len();
                Some(Err(Damaged(start)))
            }
        }
    })
}

/// Reads one record written by [`write`] (without its length prefix). Features are
/// copied into `features`, since the packed bytes carry no alignment for `f64`s.
pub fn read<'a>(bytes: &'a [u8], features: &'a mut Vec<f64>) -> Result<RecordRef<'a>, Damaged> {
    let mut r = Reader { bytes, at: 0 };
    let prediction_id = r.str()?.ok_or(Damaged(r.at))?;
    let model = r.str()?.ok_or(Damaged(r.at))?;
    let model_version = r.str()?.ok_or(Damaged(r.at))?;
    let timestamp = r.str()?.ok_or(Damaged(r.at))?;
    let label = r.str()?;
    let confidence = match r.byte()? {
        0 => None,
        _ => Some(r.f64()?),
    };
    let is_defect = r.byte()? != 0;
    let latency_ms = r.f64()?;
    let request_id = r.str()?.ok_or(Damaged(r.at))?;
    let trace_id = r.str()?;
    let status = match r.byte()? {
        0 => Status::Success,
        1 => Status::Error,
        _ => return Err(Damaged(r.at)),
    };
    let error_type = r.str()?;
    features.clear();
    let has_features = match r.u32()? {
        NONE => false,
        n => {
            for _ in 0..n {
                features.push(r.f64()?);
            }
            true
        }
    };
    let value = match bytes.len() - r.at {
        0 => None,
        _ => Some(r.f64()?),
    };
    if r.at != bytes.len() {
        return Err(Damaged(r.at));
    }
    Ok(RecordRef {
        prediction_id,
        model,
        model_version,
        timestamp,
        label,
        confidence,
        is_defect,
        latency_ms,
        request_id,
        trace_id,
        status,
        error_type,
        features: has_features.then_some(features.as_slice()),
        value,
    })
}

/// Parses a binary batch into validated records, or every problem found. Each record
/// is checked exactly as a JSON one is; damage to the framing (a length running past
/// the end) refuses the whole body, since nothing after it can be located. A body
/// without this version's header is an unknown encoding (a 415, so a sender can fall
/// back to JSON), not a bad batch.
pub fn parse_body(body: &[u8], max_records: usize) -> Result<Vec<Record>, BodyError> {
    let rest = body.strip_prefix(MAGIC.as_slice()).ok_or_else(|| {
        BodyError::Version(format!(
            "this collector reads {CONTENT_TYPE} bodies that start with `VGL1`"
        ))
    })?;
    // One frame past the limit is enough to refuse the batch.
    let framed: Vec<&[u8]> = records(rest)
        .take(max_records.saturating_add(1))
        .collect::<Result<_, _>>()
        .map_err(|e| {
            BodyError::Shape(format!(
                "the record framing is damaged at byte {}",
                e.0 + MAGIC.len()
            ))
        })?;
    check_count(framed.len(), max_records)?;
    check_records(framed.len(), |index, features| {
        let record = read(framed[index], features).map_err(|e| e.to_string())?;
        Ok(Checked(validate(index, &record)))
    })
}

fn put_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            out.extend_from_slice(&len32(s.len()).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        None => out.extend_from_slice(&NONE.to_le_bytes()),
    }
}

/// Lengths in a record are far below 4 GiB (ids are capped at 128 bytes and requests
/// by the body limit); saturating keeps a length from ever reading as [`NONE`]'s twin.
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(NONE - 1)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Damaged> {
        let end = self.at.checked_add(n).ok_or(Damaged(self.at))?;
        let taken = self.bytes.get(self.at..end).ok_or(Damaged(self.at))?;
        self.at = end;
        Ok(taken)
    }

    fn byte(&mut self) -> Result<u8, Damaged> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, Damaged> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn f64(&mut self) -> Result<f64, Damaged> {
        Ok(f64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn str(&mut self) -> Result<Option<&'a str>, Damaged> {
        match self.u32()? {
            NONE => Ok(None),
            n => {
                let at = self.at;
                let bytes = self.take(n as usize)?;
                // Written from a `&str`: only damage (or a hostile sender) fails this.
                std::str::from_utf8(bytes)
                    .map(Some)
                    .map_err(|_| Damaged(at))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WireRecord;

    fn full() -> WireRecord {
        WireRecord {
            prediction_id: "0b6a9c1e-5d1f-4a55-9d2e-7c1c2b3a4d5e".into(),
            model: "defect-detector".into(),
            model_version: "1.0.0".into(),
            timestamp: "2026-11-23T03:00:00.123Z".into(),
            label: Some("défaut \"grave\"\n".into()),
            confidence: Some(0.987_654_321),
            is_defect: true,
            latency_ms: 1.25,
            request_id: "req-1".into(),
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
            status: Status::Success,
            error_type: None,
            features: Some(vec![0.5, -1.0e-300, f64::MAX]),
            value: None,
        }
    }

    fn sparse() -> WireRecord {
        WireRecord {
            label: None,
            confidence: None,
            is_defect: false,
            trace_id: None,
            status: Status::Error,
            error_type: Some("timeout".into()),
            features: None,
            ..full()
        }
    }

    #[test]
    fn records_read_back_exactly_and_serialize_as_the_wire_format() {
        let records = [
            full(),
            sparse(),
            WireRecord {
                features: Some(vec![]),
                ..full()
            },
            WireRecord {
                label: None,
                confidence: None,
                value: Some(-151.25),
                ..full()
            },
            WireRecord {
                value: Some(0.0),
                ..sparse()
            },
        ];
        let mut data = Vec::new();
        for r in &records {
            write(&mut data, &RecordRef::from(r));
        }
        let mut features = Vec::new();
        let mut read_back = Vec::new();
        for packed in records_in(&data) {
            let r = read(packed, &mut features).unwrap();
            // The JSON the collector receives is the one the record itself makes.
            let json = serde_json::to_vec(&r).unwrap();
            read_back.push(serde_json::from_slice::<WireRecord>(&json).unwrap());
        }
        assert_eq!(read_back, records);
    }

    fn records_in(data: &[u8]) -> Vec<&[u8]> {
        records(data).collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let mut data = Vec::new();
        write(&mut data, &RecordRef::from(&full()));
        let record = records_in(&data)[0];
        let mut features = Vec::new();
        // Every truncation, and trailing garbage, is refused.
        for cut in 0..record.len() {
            assert!(read(&record[..cut], &mut features).is_err(), "cut at {cut}");
        }
        // A byte past the end is damage; eight are a value.
        let mut longer = record.to_vec();
        longer.push(0);
        assert!(read(&longer, &mut features).is_err());
        longer.extend_from_slice(&[0; 7]);
        assert_eq!(read(&longer, &mut features).unwrap().value, Some(0.0));
        // A length prefix running past the end is reported once, then iteration ends.
        let mut framed = data.clone();
        framed.truncate(data.len() - 1);
        let all: Vec<_> = records(&framed).collect();
        assert_eq!(all.len(), 1);
        assert!(all[0].is_err());
        assert_eq!(records(&[]).count(), 0);
    }

    #[test]
    fn a_value_that_is_not_a_number_refuses_its_batch() {
        let mut body = MAGIC.to_vec();
        for (i, value) in [2.5, f64::NAN, f64::INFINITY].into_iter().enumerate() {
            let record = WireRecord {
                prediction_id: format!("p{i}"),
                label: None,
                value: Some(value),
                ..full()
            };
            write(&mut body, &RecordRef::from(&record));
        }
        let Err(BodyError::Records(errors)) = parse_body(&body, 10) else {
            panic!("accepted");
        };
        let bad: Vec<_> = errors.iter().map(|e| (e.index, e.field)).collect();
        assert_eq!(bad, [(1, Some("value")), (2, Some("value"))], "{errors:?}");
    }
}
