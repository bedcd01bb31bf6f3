//! JSON bodies of prediction records: one record object, or `{"records": [...]}`.

use serde::Deserialize;
use serde_json::value::RawValue;
use vigil_json_body::is_object;

use crate::validate::{Checked, check_count, check_records, validate};
use crate::{BodyError, Record, RecordRef, WireRecord};

/// `{"records": [...]}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch<'a> {
    #[serde(borrow)]
    records: Vec<&'a RawValue>,
}

/// Parses a JSON body into validated records, or every problem found.
pub fn parse_body(body: &[u8], max_records: usize) -> Result<Vec<Record>, BodyError> {
    let value: &RawValue =
        serde_json::from_slice(body).map_err(|e| BodyError::Json(e.to_string()))?;
    let object = is_object(value.get().as_bytes());
    let raws: Vec<&RawValue> = if object && looks_like_batch(value.get()) {
        serde_json::from_str::<Batch<'_>>(value.get())
            .map_err(|e| BodyError::Shape(e.to_string()))?
            .records
    } else if object {
        vec![value]
    } else {
        return Err(BodyError::Shape(
            "the body must be a record object or {\"records\": [...]}".into(),
        ));
    };
    check_count(raws.len(), max_records)?;
    check_records(raws.len(), |index, _| {
        // A struct would also take an array, field by field: a record is an object.
        if !is_object(raws[index].get().as_bytes()) {
            return Err("a record must be a JSON object".into());
        }
        let wire =
            serde_json::from_str::<WireRecord>(raws[index].get()).map_err(|e| e.to_string())?;
        Ok(Checked(validate(index, &RecordRef::from(&wire))))
    })
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
