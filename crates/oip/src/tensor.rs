//! An input tensor's elements as numbers. vigil's models compute in FP32, so FP32
//! arrives as it is; FP64 and the integer types are converted only where the value is
//! exactly an FP32 (so the model never answers for a number other than the one sent);
//! `BOOL`, `BYTES`, `FP16` and `BF16` are refused.

use serde_json::Value;

use crate::{DataType, RequestError};

/// Whether a model taking FP32 can be sent this datatype.
pub(crate) fn check_numeric(input: &str, datatype: DataType) -> Result<(), RequestError> {
    match datatype {
        DataType::Bool | DataType::Bytes | DataType::Fp16 | DataType::Bf16 => {
            Err(RequestError::datatype(format!(
                "input `{input}` is {datatype}: vigil's models take FP32 (FP64 and integer \
                 tensors are converted where each value is exactly an FP32)"
            )))
        }
        _ => Ok(()),
    }
}

/// `value` as the FP32 it exactly is, or `None`. Non-finite values pass as they are:
/// whether they are acceptable is the model's input validation's call.
fn exact_f64(value: f64) -> Option<f64> {
    if !value.is_finite() {
        return Some(value);
    }
    let narrowed = value as f32;
    (f64::from(narrowed) == value).then_some(value)
}

fn exact_int(value: i128) -> Option<f64> {
    let narrowed = value as f32;
    (narrowed.is_finite() && narrowed as i128 == value).then_some(f64::from(narrowed))
}

fn inexact(
    input: &str,
    datatype: DataType,
    index: usize,
    value: &dyn std::fmt::Display,
) -> RequestError {
    RequestError::datatype(format!(
        "element {index} of input `{input}` ({datatype} {value}) is not exactly an FP32 value; \
         send FP32, the model's datatype"
    ))
}

/// Decodes `bytes` (little-endian, row-major) of `elements` elements of `datatype`.
pub(crate) fn from_binary(
    input: &str,
    datatype: DataType,
    bytes: &[u8],
    elements: usize,
    out: &mut Vec<f64>,
) -> Result<(), RequestError> {
    check_numeric(input, datatype)?;
    let size = datatype.size().expect("numeric types have a size");
    if bytes.len() != elements * size {
        return Err(RequestError::body(format!(
            "input `{input}` has {} bytes of data; its shape and {datatype} need {}",
            bytes.len(),
            elements * size
        )));
    }
    out.reserve(elements);
    for (index, chunk) in bytes.chunks_exact(size).enumerate() {
        let value = match datatype {
            DataType::Fp32 => f64::from(f32::from_le_bytes(chunk.try_into().expect("4 bytes"))),
            DataType::Fp64 => {
                let v = f64::from_le_bytes(chunk.try_into().expect("8 bytes"));
                exact_f64(v).ok_or_else(|| inexact(input, datatype, index, &v))?
            }
            _ => {
                let v = int_le(datatype, chunk);
                exact_int(v).ok_or_else(|| inexact(input, datatype, index, &v))?
            }
        };
        out.push(value);
    }
    Ok(())
}

/// The smallest and largest value of an integer datatype (JSON data can name any
/// integer; binary data cannot leave the range).
fn int_bounds(datatype: DataType) -> (i128, i128) {
    match datatype {
        DataType::Uint8 => (0, u8::MAX.into()),
        DataType::Uint16 => (0, u16::MAX.into()),
        DataType::Uint32 => (0, u32::MAX.into()),
        DataType::Uint64 => (0, u64::MAX.into()),
        DataType::Int8 => (i8::MIN.into(), i8::MAX.into()),
        DataType::Int16 => (i16::MIN.into(), i16::MAX.into()),
        DataType::Int32 => (i32::MIN.into(), i32::MAX.into()),
        DataType::Int64 => (i64::MIN.into(), i64::MAX.into()),
        _ => unreachable!("not an integer type"),
    }
}

/// A little-endian integer element.
fn int_le(datatype: DataType, b: &[u8]) -> i128 {
    match datatype {
        DataType::Uint8 => i128::from(b[0]),
        DataType::Int8 => i128::from(b[0] as i8),
        DataType::Uint16 => i128::from(u16::from_le_bytes([b[0], b[1]])),
        DataType::Int16 => i128::from(i16::from_le_bytes([b[0], b[1]])),
        DataType::Uint32 => i128::from(u32::from_le_bytes(b.try_into().expect("4 bytes"))),
        DataType::Int32 => i128::from(i32::from_le_bytes(b.try_into().expect("4 bytes"))),
        DataType::Uint64 => i128::from(u64::from_le_bytes(b.try_into().expect("8 bytes"))),
        DataType::Int64 => i128::from(i64::from_le_bytes(b.try_into().expect("8 bytes"))),
        _ => unreachable!("not an integer type"),
    }
}

/// Decodes JSON `data`: a flat or nested (row-major) array of numbers.
pub(crate) fn from_json(
    input: &str,
    datatype: DataType,
    data: &Value,
    out: &mut Vec<f64>,
) -> Result<(), RequestError> {
    check_numeric(input, datatype)?;
    let start = out.len();
    flatten(input, datatype, data, start, out)
}

fn flatten(
    input: &str,
    datatype: DataType,
    data: &Value,
    start: usize,
    out: &mut Vec<f64>,
) -> Result<(), RequestError> {
    let index = out.len() - start;
    match data {
        Value::Array(items) => {
            for item in items {
                flatten(input, datatype, item, start, out)?;
            }
            Ok(())
        }
        Value::Number(n) => {
            let value = match datatype {
                // JSON numbers are decimal: FP32 data is the nearest FP32, as for
                // `/predict` (the model's input validation narrows it).
                DataType::Fp32 => n.as_f64(),
                DataType::Fp64 => n
                    .as_f64()
                    .map(|v| exact_f64(v).ok_or_else(|| inexact(input, datatype, index, &v)))
                    .transpose()?,
                _ => match (n.as_i64(), n.as_u64()) {
                    (Some(v), _) => Some(i128::from(v)),
                    (None, Some(v)) => Some(i128::from(v)),
                    (None, None) => {
                        return Err(RequestError::datatype(format!(
                            "element {index} of input `{input}` ({n}) is not an integer, \
                             as {datatype} data must be"
                        )));
                    }
                }
                .map(|v| {
                    let (min, max) = int_bounds(datatype);
                    if !(min..=max).contains(&v) {
                        return Err(RequestError::datatype(format!(
                            "element {index} of input `{input}` ({v}) is out of range for \
                             {datatype} ({min} to {max})"
                        )));
                    }
                    exact_int(v).ok_or_else(|| inexact(input, datatype, index, &v))
                })
                .transpose()?,
            };
            out.push(value.unwrap_or(f64::NAN));
            Ok(())
        }
        other => Err(RequestError::datatype(format!(
            "element {index} of input `{input}` is {}, not a number",
            match other {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::String(_) => "a string",
                _ => "an object",
            }
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary(datatype: DataType, bytes: &[u8], elements: usize) -> Result<Vec<f64>, RequestError> {
        let mut out = Vec::new();
        from_binary("x", datatype, bytes, elements, &mut out).map(|()| out)
    }

    fn json(datatype: DataType, data: &str) -> Result<Vec<f64>, RequestError> {
        let mut out = Vec::new();
        from_json(
            "x",
            datatype,
            &serde_json::from_str(data).unwrap(),
            &mut out,
        )
        .map(|()| out)
    }

    #[test]
    fn fp32_arrives_as_is_and_other_numbers_only_when_exact() {
        let fp32: Vec<u8> = [1.5f32, -0.1]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(
            binary(DataType::Fp32, &fp32, 2).unwrap(),
            [1.5, f64::from(-0.1f32)]
        );
        let fp64: Vec<u8> = [2.5f64, 0.1].iter().flat_map(|v| v.to_le_bytes()).collect();
        let err = binary(DataType::Fp64, &fp64, 2).unwrap_err();
        assert!(
            err.message.contains("element 1") && err.message.contains("0.1"),
            "{err}"
        );
        assert_eq!(binary(DataType::Fp64, &fp64[..8], 1).unwrap(), [2.5]);
        let ints: Vec<u8> = [7i32, -16_777_216]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(
            binary(DataType::Int32, &ints, 2).unwrap(),
            [7.0, -16_777_216.0]
        );
        // 2^24 + 1 has no FP32.
        let big = 16_777_217i64.to_le_bytes();
        assert!(binary(DataType::Int64, &big, 1).is_err());
        assert_eq!(binary(DataType::Uint8, &[255], 1).unwrap(), [255.0]);
        assert_eq!(binary(DataType::Int8, &[255], 1).unwrap(), [-1.0]);
        // A non-finite FP32 or FP64 is passed on for the model's validation to refuse.
        let nan = f64::NAN.to_le_bytes();
        assert!(binary(DataType::Fp64, &nan, 1).unwrap()[0].is_nan());
    }

    #[test]
    fn sizes_must_match_and_unsupported_types_are_named() {
        let err = binary(DataType::Fp32, &[0; 7], 2).unwrap_err();
        assert!(
            err.message.contains("7 bytes") && err.message.contains("need 8"),
            "{err}"
        );
        for t in [
            DataType::Bytes,
            DataType::Bool,
            DataType::Fp16,
            DataType::Bf16,
        ] {
            let err = binary(t, &[0; 2], 1).unwrap_err();
            assert!(err.message.contains(t.as_str()), "{err}");
            assert!(json(t, "[1]").is_err());
        }
    }

    #[test]
    fn json_data_may_be_nested_and_must_be_numbers() {
        assert_eq!(
            json(DataType::Fp32, "[[1, 2], [3.5, 4]]").unwrap(),
            [1.0, 2.0, 3.5, 4.0]
        );
        assert_eq!(json(DataType::Fp32, "[0.1]").unwrap(), [0.1]);
        assert!(json(DataType::Fp64, "[0.1]").is_err());
        assert_eq!(json(DataType::Fp64, "[0.5]").unwrap(), [0.5]);
        assert_eq!(json(DataType::Int64, "[-3]").unwrap(), [-3.0]);
        assert_eq!(
            json(DataType::Int8, "[-128, 127]").unwrap(),
            [-128.0, 127.0]
        );
        for (datatype, data) in [
            (DataType::Int8, "[250]"),
            (DataType::Int8, "[-129]"),
            (DataType::Uint8, "[-1]"),
            (DataType::Uint16, "[65536]"),
            (DataType::Int32, "[2147483648]"),
        ] {
            let err = json(datatype, data).unwrap_err();
            assert!(
                err.message.contains("out of range"),
                "{datatype} {data}: {err}"
            );
        }
        let err = json(DataType::Int32, "[1, 2.5]").unwrap_err();
        assert!(
            err.message.contains("element 1") && err.message.contains("integer"),
            "{err}"
        );
        let err = json(DataType::Fp32, "[1, \"2\"]").unwrap_err();
        assert!(err.message.contains("a string"), "{err}");
        assert!(json(DataType::Fp32, "[[1], null]").is_err());
    }
}
