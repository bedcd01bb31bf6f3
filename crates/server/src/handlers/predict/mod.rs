//! `POST /predict` and `POST /models/{name}/predict`: parse the request
//! ([`parse`]), predict and record the outcome ([`crate::outcome`]), answer.

mod parse;

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use vigil_model::Output;

use crate::error::ApiError;
use crate::extract::{JsonBytes, PathName};
use crate::outcome;
use crate::state::AppState;

pub use parse::PredictRequest;

/// One instance's prediction: a classifier's class or a regressor's value.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Prediction<'a> {
    Class(ClassPrediction<'a>),
    Value(ValuePrediction),
}

/// A classification model's answer for one instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClassPrediction<'a> {
    pub label: &'a str,
    pub class_index: usize,
    /// Probability of the predicted class.
    pub confidence: f32,
    /// One probability per label, in the model's label order.
    pub probabilities: Vec<f32>,
}

/// A regression model's answer for one instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValuePrediction {
    pub value: f32,
}

impl<'a> Prediction<'a> {
    fn new(output: Output, labels: &'a [String]) -> Self {
        match output {
            Output::Class(p) => Self::Class(ClassPrediction {
                label: labels.get(p.class_index).map_or("", String::as_str),
                class_index: p.class_index,
                confidence: p.confidence,
                probabilities: p.probabilities,
            }),
            Output::Value(value) => Self::Value(ValuePrediction { value }),
        }
    }
}

// It borrows the model's name, version and labels from its card and is serialized
// before the handler returns, so an answer copies none of them. (A `//` comment: the
// `///` one below is the OpenAPI document's description.)
/// The answer to a prediction request.
#[derive(Debug, Serialize, ToSchema)]
pub struct PredictResponse<'a> {
    pub prediction_id: String,
    pub request_id: String,
    pub model: &'a str,
    pub model_version: &'a str,
    pub predictions: Vec<Prediction<'a>>,
    /// Time spent in the server on this prediction, in milliseconds.
    pub latency_ms: f64,
    /// RFC 3339 UTC.
    pub created_at: String,
}

/// Predicts with the default model or the one named in the body.
#[utoipa::path(post, path = "/predict", tag = "inference", request_body = PredictRequest,
    security((), ("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = PredictResponse), (status = 400, body = vigil_telemetry::ErrorBody),
        (status = 401, body = vigil_telemetry::ErrorBody),
        (status = 404, body = vigil_telemetry::ErrorBody), (status = 408, body = vigil_telemetry::ErrorBody),
        (status = 413, body = vigil_telemetry::ErrorBody),
        (status = 415, body = vigil_telemetry::ErrorBody), (status = 422, body = vigil_telemetry::ErrorBody),
        (status = 503, body = vigil_telemetry::ErrorBody)))]
pub async fn predict(
    State(state): State<AppState>,
    body: Result<JsonBytes, ApiError>,
) -> Result<Response, ApiError> {
    run(&state, None, body).await
}

/// Predicts with the model named in the path.
#[utoipa::path(post, path = "/models/{name}/predict", tag = "inference", request_body = PredictRequest,
    params(("name" = String, Path, description = "Model name")),
    security((), ("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = PredictResponse), (status = 400, body = vigil_telemetry::ErrorBody),
        (status = 401, body = vigil_telemetry::ErrorBody),
        (status = 404, body = vigil_telemetry::ErrorBody), (status = 408, body = vigil_telemetry::ErrorBody),
        (status = 413, body = vigil_telemetry::ErrorBody),
        (status = 415, body = vigil_telemetry::ErrorBody), (status = 422, body = vigil_telemetry::ErrorBody),
        (status = 503, body = vigil_telemetry::ErrorBody)))]
pub async fn predict_model(
    State(state): State<AppState>,
    name: Result<PathName, ApiError>,
    body: Result<JsonBytes, ApiError>,
) -> Result<Response, ApiError> {
    let name = name?.0;
    run(&state, Some(&name), body).await
}

async fn run(
    state: &AppState,
    path_model: Option<&str>,
    body: Result<JsonBytes, ApiError>,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let (model, batch) = parse::parse(state, path_model, body).map_err(|refused| {
        outcome::rejected(state, refused.model.as_deref(), &refused.error);
        refused.error
    })?;
    let done = outcome::predict(state, &model, batch, started).await?;
    let labels = &model.card.labels;
    Ok(Json(PredictResponse {
        prediction_id: done.prediction_id,
        request_id: done.request_id,
        model: &model.card.name,
        model_version: &model.card.version,
        predictions: done
            .predictions
            .into_iter()
            .map(|p| Prediction::new(p, labels))
            .collect(),
        latency_ms: done.latency_ms,
        created_at: done.created_at,
    })
    .into_response())
}
