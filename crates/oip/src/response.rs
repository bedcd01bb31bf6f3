//! Laying out an infer answer: a JSON header with each output's name, datatype and
//! shape, and its data either inline (`data`, flat, row-major) or, for outputs asked
//! for in binary, after the JSON in output order with `parameters.binary_data_size`.

use serde::Serialize;
use serde::ser::SerializeSeq;

use crate::DataType;

/// One output tensor to answer.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputTensor {
    pub name: &'static str,
    pub shape: Vec<usize>,
    pub data: OutputData,
    /// Answer it in binary, after the JSON.
    pub binary: bool,
}

/// An output's elements, row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputData {
    Fp32(Vec<f32>),
    Bytes(Vec<String>),
}

impl OutputData {
    pub fn datatype(&self) -> DataType {
        match self {
            Self::Fp32(_) => DataType::Fp32,
            Self::Bytes(_) => DataType::Bytes,
        }
    }

    /// The binary form: little-endian FP32s, or each string as a little-endian `u32`
    /// length and its bytes.
    fn write_binary(&self, out: &mut Vec<u8>) {
        match self {
            Self::Fp32(values) => {
                for v in values {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            Self::Bytes(items) => {
                for s in items {
                    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
                    out.extend_from_slice(&len.to_le_bytes());
                    out.extend_from_slice(s.as_bytes());
                }
            }
        }
    }

    fn binary_size(&self) -> usize {
        match self {
            Self::Fp32(values) => values.len() * 4,
            Self::Bytes(items) => items.iter().map(|s| 4 + s.len()).sum(),
        }
    }
}

/// An encoded answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub body: Vec<u8>,
    /// The JSON header's length, when binary data follows it: the value of the
    /// `Inference-Header-Content-Length` response header.
    pub json_length: Option<usize>,
}

#[derive(Serialize)]
struct Header<'a> {
    model_name: &'a str,
    model_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<&'a serde_json::Value>,
    outputs: Vec<OutputHeader<'a>>,
}

#[derive(Serialize)]
struct OutputHeader<'a> {
    name: &'a str,
    datatype: &'static str,
    shape: &'a [usize],
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<BinarySize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a OutputData>,
}

#[derive(Serialize)]
struct BinarySize {
    binary_data_size: usize,
}

impl Serialize for OutputData {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Fp32(values) => {
                let mut seq = serializer.serialize_seq(Some(values.len()))?;
                for v in values {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Self::Bytes(items) => items.serialize(serializer),
        }
    }
}

/// Encodes an answer of `model_name` (`model_version`) to the request `id`, with
/// optional response `parameters`.
pub fn encode(
    model_name: &str,
    model_version: &str,
    id: Option<&str>,
    parameters: Option<&serde_json::Value>,
    outputs: &[OutputTensor],
) -> Encoded {
    let header = Header {
        model_name,
        model_version,
        id,
        parameters,
        outputs: outputs
            .iter()
            .map(|o| OutputHeader {
                name: o.name,
                datatype: o.data.datatype().as_str(),
                shape: &o.shape,
                parameters: o.binary.then(|| BinarySize {
                    binary_data_size: o.data.binary_size(),
                }),
                data: (!o.binary).then_some(&o.data),
            })
            .collect(),
    };
    let mut body = serde_json::to_vec(&header).expect("an answer always serializes");
    let json_length = outputs.iter().any(|o| o.binary).then_some(body.len());
    for o in outputs.iter().filter(|o| o.binary) {
        o.data.write_binary(&mut body);
    }
    Encoded { body, json_length }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs(binary: bool) -> Vec<OutputTensor> {
        vec![
            OutputTensor {
                name: "probabilities",
                shape: vec![1, 2],
                data: OutputData::Fp32(vec![0.5, 1.5]),
                binary,
            },
            OutputTensor {
                name: "label",
                shape: vec![2],
                data: OutputData::Bytes(vec!["hi".into(), "x".into()]),
                binary,
            },
        ]
    }

    #[test]
    fn json_answers_carry_data_inline_and_no_header_length() {
        let e = encode("m", "1", Some("req-7"), None, &outputs(false));
        assert_eq!(e.json_length, None);
        let v: serde_json::Value = serde_json::from_slice(&e.body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"model_name": "m", "model_version": "1", "id": "req-7", "outputs": [
                {"name": "probabilities", "datatype": "FP32", "shape": [1, 2], "data": [0.5, 1.5]},
                {"name": "label", "datatype": "BYTES", "shape": [2], "data": ["hi", "x"]}]})
        );
    }

    /// The layout tritonclient's `InferResult` reads (checked against it byte for byte).
    #[test]
    fn binary_answers_follow_the_json_in_output_order() {
        let params = serde_json::json!({"prediction_id": "p"});
        let e = encode("m", "1", None, Some(&params), &outputs(true));
        let n = e.json_length.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&e.body[..n]).unwrap();
        assert_eq!(v["outputs"][0]["parameters"]["binary_data_size"], 8);
        assert_eq!(v["outputs"][1]["parameters"]["binary_data_size"], 11);
        assert!(v["outputs"][0].get("data").is_none());
        assert_eq!(v["parameters"]["prediction_id"], "p");
        assert_eq!(
            &e.body[n..],
            [
                0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0xc0, 0x3f, // 0.5, 1.5
                0x02, 0x00, 0x00, 0x00, b'h', b'i', 0x01, 0x00, 0x00, 0x00, b'x'
            ]
        );
    }
}
