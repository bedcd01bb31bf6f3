//! The JSON shapes of an infer request and answer, for the OpenAPI document only
//! (`vigil_oip` reads and writes the wire format itself).

#![allow(dead_code)]

use utoipa::ToSchema;

/// An input tensor.
#[derive(ToSchema)]
pub struct InputTensorDoc {
    /// `input`.
    name: String,
    /// `[rows, features]`.
    shape: Vec<i64>,
    /// `FP32`; `FP64` and integer types are converted where each value is exactly an FP32.
    datatype: String,
    /// Row-major values, flat or nested (absent with `parameters.binary_data_size`).
    data: Option<Vec<f64>>,
    /// `binary_data_size`: the byte count of this input's data after the JSON.
    parameters: Option<serde_json::Value>,
}

/// An output asked for.
#[derive(ToSchema)]
pub struct RequestedOutputDoc {
    /// `probabilities` and `label` (a classifier), `value` (a regressor).
    name: String,
    /// `binary_data`: true to answer it in binary (default: the request's
    /// `binary_data_output`).
    parameters: Option<serde_json::Value>,
}

/// An infer request.
#[derive(ToSchema)]
pub struct InferRequestDoc {
    /// Echoed in the answer.
    id: Option<String>,
    /// `binary_data_output`: answer every output in binary, except those in `outputs`
    /// whose `binary_data` is false.
    parameters: Option<serde_json::Value>,
    inputs: Vec<InputTensorDoc>,
    /// The outputs to answer, in order; all of them when absent.
    outputs: Option<Vec<RequestedOutputDoc>>,
}

/// An output tensor.
#[derive(ToSchema)]
pub struct OutputTensorDoc {
    name: String,
    /// `FP32` or `BYTES`.
    datatype: String,
    shape: Vec<i64>,
    /// Row-major values (absent for a binary output).
    data: Option<Vec<serde_json::Value>>,
    /// `binary_data_size` of a binary output.
    parameters: Option<serde_json::Value>,
}

/// An infer answer.
#[derive(ToSchema)]
pub struct InferResponseDoc {
    model_name: String,
    model_version: String,
    /// The request's `id`, if it had one.
    id: Option<String>,
    /// `prediction_id`: the id the prediction records are stored under.
    parameters: serde_json::Value,
    outputs: Vec<OutputTensorDoc>,
}
