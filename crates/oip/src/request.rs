//! Reading an infer request: the framing (JSON header, then binary input data), the
//! header's fields, and each input's elements as numbers (see `tensor`).

use serde::Deserialize;
use serde_json::{Map, Value};
use vigil_json_body::Object;

use crate::error::ErrorKind;
use crate::{DataType, RequestError, tensor};

/// An infer request, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct InferRequest {
    /// The caller's `id`, echoed in the answer.
    pub id: Option<String>,
    pub inputs: Vec<InputTensor>,
    /// The outputs asked for, in the order to answer them; `None` (absent or an empty
    /// list): every output.
    pub outputs: Option<Vec<RequestedOutput>>,
    /// The request's `binary_data_output`: answer every output in binary, unless an
    /// output asked for says otherwise (already applied to [`Self::outputs`]).
    pub binary_data_output: bool,
}

/// One input tensor, its elements row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct InputTensor {
    pub name: String,
    pub datatype: DataType,
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
}

/// An output the request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedOutput {
    pub name: String,
    /// Answer this output in binary: its `parameters.binary_data`, or the request's
    /// `binary_data_output` when it has none.
    pub binary: bool,
}

/// `{"id", "parameters", "inputs", "outputs"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    #[serde(deserialize_with = "vigil_json_body::objects")]
    inputs: Vec<InputHeader>,
    #[serde(default)]
    outputs: Option<Vec<Object<OutputHeader>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputHeader {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
    #[serde(default)]
    data: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputHeader {
    name: String,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
}

/// Reads a boolean parameter; absent is `false`.
fn flag(
    parameters: Option<&Map<String, Value>>,
    key: &str,
    owner: &str,
) -> Result<Option<bool>, RequestError> {
    match parameters.and_then(|p| p.get(key)) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(RequestError::body(format!(
            "{owner}'s parameter `{key}` must be true or false, not {other}"
        ))),
    }
}

/// Parses a request body. `header_length` is the `Inference-Header-Content-Length`
/// header's value, if the request has one: the JSON header's size in bytes, binary
/// input data following it. Inputs of more than `max_elements` elements are refused
/// before anything is allocated for them.
pub fn parse(
    body: &[u8],
    header_length: Option<&[u8]>,
    max_elements: usize,
) -> Result<InferRequest, RequestError> {
    let (json, mut binary) = match header_length {
        None => (body, None),
        Some(text) => {
            let length = std::str::from_utf8(text)
                .ok()
                .and_then(|t| t.trim().parse::<usize>().ok())
                .ok_or_else(|| {
                    RequestError::body(format!(
                        "Inference-Header-Content-Length must be a byte count, not {:?}",
                        String::from_utf8_lossy(text)
                    ))
                })?;
            if length > body.len() {
                return Err(RequestError::body(format!(
                    "Inference-Header-Content-Length is {length}, but the body has only {} bytes",
                    body.len()
                )));
            }
            let (json, rest) = body.split_at(length);
            (json, Some(rest))
        }
    };
    let Object(header): Object<Header> = serde_json::from_slice(json).map_err(|e| {
        use serde_json::error::Category;
        let e = vigil_json_body::syntax_first(json, e);
        RequestError {
            kind: match e.classify() {
                Category::Syntax | Category::Eof | Category::Io => ErrorKind::MalformedJson,
                Category::Data => ErrorKind::InvalidBody,
            },
            message: format!("the request's JSON: {e}"),
        }
    })?;
    let mut inputs = Vec::with_capacity(header.inputs.len());
    for input in header.inputs {
        inputs.push(read_input(input, &mut binary, max_elements)?);
    }
    if let Some(rest) = binary
        && !rest.is_empty()
    {
        return Err(RequestError::body(format!(
            "{} bytes follow the inputs' binary data; each binary input's \
             `binary_data_size` must count exactly its bytes",
            rest.len()
        )));
    }
    let binary_data_output = flag(
        header.parameters.as_ref(),
        "binary_data_output",
        "the request",
    )?
    .unwrap_or(false);
    // An empty list asks for no output in particular: every output, as when it is
    // absent (Triton requests all of a model's outputs when none is named).
    let outputs = header
        .outputs
        .filter(|outputs| !outputs.is_empty())
        .map(|outputs| {
            outputs
                .into_iter()
                .map(|Object(o)| {
                    if o.parameters
                        .as_ref()
                        .is_some_and(|p| p.contains_key("classification"))
                    {
                        return Err(RequestError::body(format!(
                            "output `{}` asks for the classification extension, which vigil \
                             does not offer: ask for `label` and `probabilities`",
                            o.name
                        )));
                    }
                    let owner = format!("output `{}`", o.name);
                    Ok(RequestedOutput {
                        // An output's own `binary_data` overrides the request's
                        // `binary_data_output`, as the binary data extension has it.
                        binary: flag(o.parameters.as_ref(), "binary_data", &owner)?
                            .unwrap_or(binary_data_output),
                        name: o.name,
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    Ok(InferRequest {
        binary_data_output,
        id: header.id,
        inputs,
        outputs,
    })
}

/// One input: its shape checked, its data taken from JSON or from the binary part.
fn read_input(
    input: InputHeader,
    binary: &mut Option<&[u8]>,
    max_elements: usize,
) -> Result<InputTensor, RequestError> {
    let name = input.name;
    let datatype = DataType::parse(&input.datatype).ok_or_else(|| {
        RequestError::datatype(format!(
            "input `{name}` has datatype {:?}, which the protocol does not define",
            input.datatype
        ))
    })?;
    let shape = input
        .shape
        .iter()
        .map(|&dim| usize::try_from(dim))
        .collect::<Result<Vec<usize>, _>>()
        .map_err(|_| {
            RequestError::body(format!(
                "input `{name}` has a negative dimension in its shape {:?}",
                input.shape
            ))
        })?;
    // A zero anywhere makes the tensor empty, however large the other dimensions.
    let elements = if shape.contains(&0) {
        0
    } else {
        shape
            .iter()
            .try_fold(1usize, |n, &dim| {
                n.checked_mul(dim).filter(|n| *n <= max_elements)
            })
            .ok_or_else(|| RequestError {
                kind: ErrorKind::TooManyElements,
                message: format!(
                    "input `{name}` has shape {:?}: more than {max_elements} elements",
                    input.shape
                ),
            })?
    };
    let size = match input
        .parameters
        .as_ref()
        .and_then(|p| p.get("binary_data_size"))
    {
        None => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            RequestError::body(format!(
                "input `{name}`'s `binary_data_size` must be a byte count, not {v}"
            ))
        })?),
    };
    let mut values = Vec::new();
    match (size, &input.data) {
        (Some(_), Some(_)) => {
            return Err(RequestError::body(format!(
                "input `{name}` has both `data` and `binary_data_size`: give one"
            )));
        }
        (None, None) => {
            return Err(RequestError::body(format!(
                "input `{name}` has neither `data` nor `binary_data_size`"
            )));
        }
        (None, Some(data)) => {
            tensor::check_numeric(&name, datatype)?;
            // Counted before decoding, so a huge array is refused, not flattened.
            let count = count(data, max_elements + 1);
            if count != elements {
                let has = if count > max_elements {
                    format!("more than {max_elements}")
                } else {
                    count.to_string()
                };
                return Err(RequestError::body(format!(
                    "input `{name}` has {has} values; its shape {shape:?} needs {elements}"
                )));
            }
            tensor::from_json(&name, datatype, data, &mut values)?;
        }
        (Some(size), None) => {
            let Some(rest) = binary.as_mut() else {
                return Err(RequestError::body(format!(
                    "input `{name}` is binary (`binary_data_size`), but the request has no \
                     Inference-Header-Content-Length header saying where its JSON ends"
                )));
            };
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            if size > rest.len() {
                return Err(RequestError::body(format!(
                    "input `{name}` declares {size} bytes of binary data; only {} follow",
                    rest.len()
                )));
            }
            let (bytes, after) = rest.split_at(size);
            *rest = after;
            tensor::from_binary(&name, datatype, bytes, elements, &mut values)?;
        }
    }
    Ok(InputTensor {
        name,
        datatype,
        shape,
        values,
    })
}

/// Leaves in a (possibly nested) array, counting no further than `cap`.
fn count(data: &Value, cap: usize) -> usize {
    match data {
        Value::Array(items) => {
            let mut n = 0usize;
            for item in items {
                n += count(item, cap - n.min(cap));
                if n >= cap {
                    return cap;
                }
            }
            n
        }
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp32(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// A body as tritonclient frames it: JSON, then the binary data.
    fn framed(json: &str, binary: &[u8]) -> (Vec<u8>, String) {
        let mut body = json.as_bytes().to_vec();
        body.extend_from_slice(binary);
        (body, json.len().to_string())
    }

    fn parse_framed(json: &str, binary: &[u8]) -> Result<InferRequest, RequestError> {
        let (body, length) = framed(json, binary);
        parse(&body, Some(length.as_bytes()), 1000)
    }

    #[test]
    fn tritonclients_default_binary_request_decodes() {
        let json = r#"{"inputs":[{"name":"input","shape":[2,3],"datatype":"FP32","parameters":{"binary_data_size":24}}],"parameters":{"binary_data_output":true}}"#;
        let r = parse_framed(json, &fp32(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.5])).unwrap();
        assert_eq!(r.inputs[0].shape, [2, 3]);
        assert_eq!(r.inputs[0].values, [1.0, 2.0, 3.0, 4.0, 5.0, 6.5]);
        assert!(r.binary_data_output);
        assert_eq!((r.id, r.outputs), (None, None));
    }

    #[test]
    fn json_requests_with_id_and_outputs_decode() {
        let json = r#"{"id":"req-7","inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[[1,2]]}],
            "outputs":[{"name":"label","parameters":{"binary_data":false}},{"name":"probabilities","parameters":{"binary_data":true}}],
            "parameters":{"sequence_id":0,"priority":1}}"#;
        let r = parse(json.as_bytes(), None, 1000).unwrap();
        assert_eq!(r.id.as_deref(), Some("req-7"));
        assert_eq!(r.inputs[0].values, [1.0, 2.0]);
        let outputs = r.outputs.unwrap();
        assert_eq!(
            outputs,
            [
                RequestedOutput {
                    name: "label".into(),
                    binary: false
                },
                RequestedOutput {
                    name: "probabilities".into(),
                    binary: true
                }
            ]
        );
        assert!(!r.binary_data_output);
    }

    #[test]
    fn binary_data_output_is_the_default_of_each_output_asked_for() {
        let json = r#"{"inputs":[{"name":"input","shape":[1,1],"datatype":"FP32","data":[1]}],
            "parameters":{"binary_data_output":true},
            "outputs":[{"name":"label"},{"name":"probabilities","parameters":{"binary_data":false}}]}"#;
        let r = parse(json.as_bytes(), None, 1000).unwrap();
        let binary: Vec<(&str, bool)> = r
            .outputs
            .as_ref()
            .unwrap()
            .iter()
            .map(|o| (o.name.as_str(), o.binary))
            .collect();
        assert_eq!(binary, [("label", true), ("probabilities", false)]);
        let none = r#"{"inputs":[{"name":"input","shape":[1,1],"datatype":"FP32","data":[1]}],"outputs":[]}"#;
        assert_eq!(parse(none.as_bytes(), None, 1000).unwrap().outputs, None);
    }

    #[test]
    fn hostile_framing_and_shapes_are_refused_with_reasons() {
        let input = |shape: &str, rest: &str| {
            format!(r#"{{"inputs":[{{"name":"input","shape":{shape},"datatype":"FP32",{rest}}}]}}"#)
        };
        let bin = |size: usize| format!(r#""parameters":{{"binary_data_size":{size}}}"#);
        let cases: Vec<(Vec<u8>, Option<String>, &str)> = vec![
            // The header says more bytes than the body has.
            (
                input("[1,2]", &bin(8)).into_bytes(),
                Some("5000".into()),
                "only",
            ),
            (b"{}".to_vec(), Some("-1".into()), "byte count"),
            (b"{}".to_vec(), Some("x".into()), "byte count"),
            (
                input("[-1,2]", r#""data":[1,2]"#).into_bytes(),
                None,
                "negative",
            ),
            (
                input("[4294967296,4294967296]", r#""data":[1]"#).into_bytes(),
                None,
                "more than 1000 elements",
            ),
            (
                input("[9223372036854775807,9223372036854775807]", r#""data":[1]"#).into_bytes(),
                None,
                "more than 1000",
            ),
            // A zero makes it empty, not too large: the count is what is wrong.
            (
                input("[9223372036854775807,0]", r#""data":[1]"#).into_bytes(),
                None,
                "has 1 value",
            ),
            (
                input("[1,3]", r#""data":[1,2]"#).into_bytes(),
                None,
                "has 2 values",
            ),
            (
                input("[1,2]", r#""data":[1,2,3]"#).into_bytes(),
                None,
                "has 3 values",
            ),
            (
                input(
                    "[1,2]",
                    &format!(r#""data":[{}]"#, vec!["1"; 5000].join(",")),
                )
                .into_bytes(),
                None,
                "more than 1000 values",
            ),
            (
                input("[1,2]", "\"x\":1").into_bytes(),
                None,
                "unknown field",
            ),
            (
                input(
                    "[1,2]",
                    r#""data":[1,2],"parameters":{"binary_data_size":8}"#,
                )
                .into_bytes(),
                None,
                "both",
            ),
            (
                input("[1,2]", r#""parameters":{}"#).into_bytes(),
                None,
                "neither",
            ),
            (
                input("[1,2]", &bin(8)).into_bytes(),
                None,
                "no Inference-Header-Content-Length",
            ),
            (
                input("[1,2]", r#""parameters":{"binary_data_size":-8}"#).into_bytes(),
                None,
                "byte count",
            ),
            (br#"{"inputs": [}"#.to_vec(), None, "JSON"),
            // Each of the header's objects given as an array, which a derived struct
            // would fill by position.
            (
                br#"[null, null, [{"name":"x","shape":[1],"datatype":"FP64","data":[1]}]]"#
                    .to_vec(),
                None,
                "expected an object",
            ),
            (
                br#"{"inputs":[["x",[1],"FP64",null,[1]]]}"#.to_vec(),
                None,
                "expected an object",
            ),
            (
                br#"{"inputs":[],"outputs":[["label"]]}"#.to_vec(),
                None,
                "expected an object",
            ),
            (
                br#"{"inputs":[],"outputs":[{"name":"label","parameters":{"classification":2}}]}"#
                    .to_vec(),
                None,
                "classification",
            ),
            (
                br#"{"inputs":[],"parameters":{"binary_data_output":"yes"}}"#.to_vec(),
                None,
                "true or false",
            ),
            (
                input("[1,2]", r#""datatype":"FLOAT""#)
                    .replace(r#""datatype":"FP32","#, "")
                    .into_bytes(),
                None,
                "does not define",
            ),
        ];
        for (body, length, needle) in cases {
            let err = parse(&body, length.as_deref().map(str::as_bytes), 1000).unwrap_err();
            assert!(
                err.message.contains(needle),
                "{err} should say {needle:?}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        // Binary data short of, or beyond, what the inputs declare.
        let json = input("[1,2]", &bin(8));
        let err = parse_framed(&json, &fp32(&[1.0])).unwrap_err();
        assert!(err.message.contains("only 4 follow"), "{err}");
        let err = parse_framed(&json, &fp32(&[1.0, 2.0, 3.0])).unwrap_err();
        assert!(err.message.contains("4 bytes follow"), "{err}");
        let err = parse_framed(&input("[1,3]", &bin(8)), &fp32(&[1.0, 2.0])).unwrap_err();
        assert!(err.message.contains("need 12"), "{err}");
        // The whole body may be the JSON header.
        let json = input("[1,2]", r#""data":[1,2]"#);
        assert!(
            parse(
                json.as_bytes(),
                Some(json.len().to_string().as_bytes()),
                1000
            )
            .is_ok()
        );
    }

    #[test]
    fn malformed_json_is_told_apart_from_a_wrong_shape() {
        let err = parse(b"{\"inputs\": [", None, 10).unwrap_err();
        assert_eq!(err.kind, ErrorKind::MalformedJson);
        let err = parse(b"{\"inputs\": 3}", None, 10).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidBody);
    }
}
