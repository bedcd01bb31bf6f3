//! `POST /v2/models/{name}[/versions/{version}]/infer`: the Open Inference Protocol's
//! infer, on the same path as `/predict`. The request's one input tensor becomes a
//! batch through the same input validation (feature count, ranges, finiteness, batch
//! size), runs through [`crate::outcome::predict`] (the same metrics, record and
//! logs), and the answer carries the outputs asked for, in JSON or binary as asked.

use std::time::Instant;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};
use vigil_model::input::{BatchBuilder, Cell};
use vigil_model::{Batch, InputError, InputErrorReason, Output as Prediction};
use vigil_oip::error::ErrorKind;
use vigil_oip::{InferRequest, OutputData, OutputTensor, RequestError};

use super::metadata::{check_version, served};
use super::tensors::{INPUT, Output};
use super::{InferBody, NameVersion, V2Error};
use crate::catalog::Served;
use crate::error::ApiError;
use crate::extract::PathName;
use crate::outcome;
use crate::state::AppState;

/// Runs the model named in the path on the request's input tensor.
#[utoipa::path(post, path = "/v2/models/{name}/infer", tag = "open inference protocol",
    params(("name" = String, Path, description = "Model name")),
    request_body(content = super::schema::InferRequestDoc, description = "JSON, or with the binary tensor data extension: `Inference-Header-Content-Length` bytes of JSON, then each binary input's raw little-endian bytes in input order"),
    security((), ("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = super::schema::InferResponseDoc, description = "JSON; with binary outputs `application/octet-stream`: `Inference-Header-Content-Length` bytes of JSON, then each binary output's bytes in output order"),
        (status = 400, description = "`{\"error\": \"...\"}`"), (status = 404, description = "`{\"error\": \"...\"}`"),
        (status = 413, description = "`{\"error\": \"...\"}`"), (status = 503, description = "`{\"error\": \"...\"}`")))]
pub async fn infer(
    State(state): State<AppState>,
    name: Result<PathName, ApiError>,
    body: Result<InferBody, ApiError>,
) -> Result<Response, V2Error> {
    let started = Instant::now();
    run(&state, name.map(|n| (n.0, None)), body, started).await
}

/// Runs the model version named in the path (the one served).
#[utoipa::path(post, path = "/v2/models/{name}/versions/{version}/infer", tag = "open inference protocol",
    params(("name" = String, Path, description = "Model name"), ("version" = String, Path, description = "Model version")),
    request_body(content = super::schema::InferRequestDoc, description = "as for `/v2/models/{name}/infer`"),
    security((), ("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = super::schema::InferResponseDoc),
        (status = 400, description = "`{\"error\": \"...\"}`"), (status = 404, description = "`{\"error\": \"...\"}`"),
        (status = 413, description = "`{\"error\": \"...\"}`"), (status = 503, description = "`{\"error\": \"...\"}`")))]
pub async fn infer_version(
    State(state): State<AppState>,
    path: Result<NameVersion, ApiError>,
    body: Result<InferBody, ApiError>,
) -> Result<Response, V2Error> {
    let started = Instant::now();
    run(
        &state,
        path.map(|p| (p.name, Some(p.version))),
        body,
        started,
    )
    .await
}

async fn run(
    state: &AppState,
    path: Result<(String, Option<String>), ApiError>,
    body: Result<InferBody, ApiError>,
    started: Instant,
) -> Result<Response, V2Error> {
    let (name, version) = path.map_err(|e| refuse(state, None, e))?;
    let served = served(state, &name, None).map_err(|e| refuse(state, None, e))?;
    if let Some(version) = version {
        // A known model's wrong version counts against the model.
        check_version(&served, &version).map_err(|e| refuse(state, Some(&served), e))?;
    }
    let (request, batch) =
        read(state, &served, body).map_err(|e| refuse(state, Some(&served), e))?;
    let outputs = requested(&served, &request).map_err(|e| refuse(state, Some(&served), e))?;
    let done = outcome::predict(state, &served, batch, started).await?;
    let card = &served.card;
    let rows = done.predictions.len();
    let tensors: Vec<OutputTensor> = outputs
        .into_iter()
        .map(|(output, binary)| OutputTensor {
            name: output.as_str(),
            shape: match output {
                Output::Probabilities => vec![rows, card.labels.len()],
                Output::Label | Output::Value => vec![rows],
            },
            data: data(output, &done.predictions, &card.labels),
            binary,
        })
        .collect();
    let parameters = serde_json::json!({"prediction_id": done.prediction_id});
    let encoded = vigil_oip::response::encode(
        &card.name,
        &card.version,
        request.id.as_deref(),
        Some(&parameters),
        &tensors,
    );
    let mut response = encoded.body.into_response();
    let headers = response.headers_mut();
    match encoded.json_length {
        Some(n) => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            headers.insert(vigil_oip::HEADER_LENGTH, HeaderValue::from(n));
        }
        None => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
    }
    Ok(response)
}

/// Counts a refused request (against its model when known) and answers it.
fn refuse(state: &AppState, model: Option<&Served>, error: ApiError) -> V2Error {
    outcome::rejected(state, model, &error);
    V2Error(error)
}

/// A codec refusal as the vigil error it is, so it is counted under the same reasons
/// as `/predict`'s.
fn request_error(e: RequestError) -> ApiError {
    match e.kind {
        ErrorKind::MalformedJson => ApiError::MalformedJson(e.message),
        ErrorKind::InvalidBody => ApiError::InvalidBody(e.message),
        ErrorKind::InvalidType => {
            ApiError::InvalidInput(InputError::new(InputErrorReason::InvalidType, e.message))
        }
        ErrorKind::TooManyElements => {
            ApiError::InvalidInput(InputError::new(InputErrorReason::BatchTooLarge, e.message))
        }
    }
}

/// The request, and its input tensor as a validated batch.
fn read(
    state: &AppState,
    served: &Served,
    body: Result<InferBody, ApiError>,
) -> Result<(InferRequest, Batch), ApiError> {
    let body = body?;
    let features = served.card.features.len();
    let max_elements = state.limits.max_batch.saturating_mul(features.max(1));
    let mut request = vigil_oip::request::parse(
        &body.bytes,
        body.header_length.as_ref().map(HeaderValue::as_bytes),
        max_elements,
    )
    .map_err(request_error)?;
    let input = match request.inputs.as_mut_slice() {
        [one] if one.name == INPUT => std::mem::take(&mut one.values),
        [one] => {
            return Err(ApiError::InvalidBody(format!(
                "the model's input is `{INPUT}`, not `{}`",
                one.name
            )));
        }
        many => {
            return Err(ApiError::InvalidBody(format!(
                "the model takes one input, `{INPUT}`; the request has {}",
                many.len()
            )));
        }
    };
    let shape = &request.inputs[0].shape;
    let [rows, width] = shape.as_slice() else {
        return Err(ApiError::InvalidBody(format!(
            "input `{INPUT}` has shape {shape:?}; it must be [rows, {features}]"
        )));
    };
    let mut builder = BatchBuilder::new(&served.card, *rows, state.limits.max_batch)?;
    if *width == 0 {
        builder.push_row(std::iter::empty())?;
    }
    for row in input.chunks_exact((*width).max(1)) {
        builder.push_row(row.iter().map(|&v| {
            if v.is_finite() {
                Cell::Number(v)
            } else {
                Cell::NonFinite
            }
        }))?;
    }
    Ok((request, builder.finish()))
}

/// The outputs to answer, each with whether it goes in binary: those asked for, in
/// their order (each binary as it says, or as the request's `binary_data_output`), or
/// every output of the model (binary if the request says `binary_data_output`).
fn requested(served: &Served, request: &InferRequest) -> Result<Vec<(Output, bool)>, ApiError> {
    let own = Output::of(served.card.task);
    match &request.outputs {
        None => Ok(own
            .iter()
            .map(|o| (*o, request.binary_data_output))
            .collect()),
        Some(asked) => asked
            .iter()
            .enumerate()
            .map(|(i, a)| {
                // Each output once: an answer holds a copy of an output per time it is
                // named, so a 1 MB request naming one 37,000 times was answered with
                // 836 MB built in memory.
                if asked[..i].iter().any(|b| b.name == a.name) {
                    return Err(ApiError::InvalidBody(format!(
                        "output `{}` is asked for more than once",
                        a.name
                    )));
                }
                own.iter()
                    .find(|o| o.as_str() == a.name)
                    .map(|o| (*o, a.binary))
                    .ok_or_else(|| {
                        let names: Vec<&str> = own.iter().map(|o| o.as_str()).collect();
                        ApiError::InvalidBody(format!(
                            "the model has no output `{}`; its outputs are {}",
                            a.name,
                            names.join(", ")
                        ))
                    })
            })
            .collect(),
    }
}

/// One output's elements from the predictions.
fn data(output: Output, predictions: &[Prediction], labels: &[String]) -> OutputData {
    match output {
        Output::Probabilities => OutputData::Fp32(
            predictions
                .iter()
                .flat_map(|p| match p {
                    Prediction::Class(c) => c.probabilities.as_slice(),
                    Prediction::Value(_) => &[],
                })
                .copied()
                .collect(),
        ),
        Output::Label => OutputData::Bytes(
            predictions
                .iter()
                .map(|p| match p {
                    Prediction::Class(c) => labels.get(c.class_index).cloned().unwrap_or_default(),
                    Prediction::Value(_) => String::new(),
                })
                .collect(),
        ),
        Output::Value => OutputData::Fp32(
            predictions
                .iter()
                .map(|p| match p {
                    Prediction::Value(v) => *v,
                    Prediction::Class(_) => f32::NAN,
                })
                .collect(),
        ),
    }
}
