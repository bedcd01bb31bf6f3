//! The protocol's health, server metadata and model metadata routes. Liveness and
//! readiness answer by status code (200, or 503 when not ready), which is all
//! `tritonclient` reads; the bodies are the protocol's.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::V2Error;
use super::tensors::{INPUT, Output};
use crate::catalog::Served;
use crate::error::ApiError;
use crate::extract::PathName;
use crate::state::AppState;

/// `GET /v2`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerMetadata {
    pub name: &'static str,
    pub version: &'static str,
    /// Protocol extensions offered: `binary_tensor_data`.
    pub extensions: Vec<&'static str>,
}

/// A tensor's name, datatype and shape (`-1` for the batch dimension).
#[derive(Debug, Serialize, ToSchema)]
pub struct TensorMetadata {
    pub name: &'static str,
    pub datatype: &'static str,
    pub shape: Vec<i64>,
}

/// `GET /v2/models/{name}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelMetadata {
    pub name: String,
    /// The version served (one at a time).
    pub versions: Vec<String>,
    pub platform: &'static str,
    pub inputs: Vec<TensorMetadata>,
    pub outputs: Vec<TensorMetadata>,
}

/// `GET /v2/models/{name}/ready`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelReady {
    pub name: String,
    pub ready: bool,
}

/// The server's name, version and protocol extensions.
#[utoipa::path(get, path = "/v2", tag = "open inference protocol",
    responses((status = 200, body = ServerMetadata)))]
pub async fn server() -> Json<ServerMetadata> {
    Json(ServerMetadata {
        name: "vigil",
        version: crate::VERSION,
        extensions: vec!["binary_tensor_data"],
    })
}

/// Liveness: 200 while the process serves.
#[utoipa::path(get, path = "/v2/health/live", tag = "open inference protocol",
    responses((status = 200, description = "`{\"live\": true}`")))]
pub async fn live() -> Json<serde_json::Value> {
    Json(serde_json::json!({"live": true}))
}

/// Readiness: 200 when the models are loaded and the service is not shutting down.
#[utoipa::path(get, path = "/v2/health/ready", tag = "open inference protocol",
    responses((status = 200, description = "`{\"ready\": true}`"), (status = 503, description = "`{\"ready\": false}`")))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let ready = state.is_ready();
    readiness(ready, serde_json::json!({"ready": ready}))
}

/// 200 with `body`, or 503 with it and `Retry-After: 1`, as every 503 of vigil's.
fn readiness(ready: bool, body: impl Serialize) -> Response {
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut response = (status, Json(body)).into_response();
    vigil_telemetry::error::retry_after(&mut response);
    response
}

/// The served model `name`, in the version given (if any).
pub(super) fn served(
    state: &AppState,
    name: &str,
    version: Option<&str>,
) -> Result<Arc<Served>, ApiError> {
    let served = state
        .models
        .load()
        .get(name)
        .cloned()
        .ok_or_else(|| ApiError::UnknownModel(name.to_owned()))?;
    match version {
        Some(v) => check_version(&served, v).map(|()| served),
        None => Ok(served),
    }
}

/// Refuses a version other than the one served.
pub(super) fn check_version(served: &Served, version: &str) -> Result<(), ApiError> {
    if version == served.card.version {
        Ok(())
    } else {
        Err(ApiError::UnknownVersion {
            model: served.card.name.clone(),
            version: version.to_owned(),
            served: served.card.version.clone(),
        })
    }
}

fn metadata(served: &Served) -> ModelMetadata {
    let card = &served.card;
    ModelMetadata {
        name: card.name.clone(),
        versions: vec![card.version.clone()],
        platform: "onnx_tract",
        inputs: vec![TensorMetadata {
            name: INPUT,
            datatype: "FP32",
            shape: vec![-1, card.features.len() as i64],
        }],
        outputs: Output::of(card.task)
            .iter()
            .map(|o| TensorMetadata {
                name: o.as_str(),
                datatype: o.datatype().as_str(),
                shape: o.shape(served),
            })
            .collect(),
    }
}

/// A model's input and output tensors.
#[utoipa::path(get, path = "/v2/models/{name}", tag = "open inference protocol",
    params(("name" = String, Path, description = "Model name")),
    responses((status = 200, body = ModelMetadata), (status = 404, description = "`{\"error\": \"...\"}`")))]
pub async fn model(
    State(state): State<AppState>,
    name: Result<PathName, ApiError>,
) -> Result<Json<ModelMetadata>, V2Error> {
    let served = served(&state, &name?.0, None)?;
    Ok(Json(metadata(&served)))
}

/// A model's tensors, for the version served.
#[utoipa::path(get, path = "/v2/models/{name}/versions/{version}", tag = "open inference protocol",
    params(("name" = String, Path, description = "Model name"), ("version" = String, Path, description = "Model version")),
    responses((status = 200, body = ModelMetadata), (status = 404, description = "`{\"error\": \"...\"}`")))]
pub async fn model_version(
    State(state): State<AppState>,
    path: Result<super::NameVersion, ApiError>,
) -> Result<Json<ModelMetadata>, V2Error> {
    let path = path?;
    let served = served(&state, &path.name, Some(&path.version))?;
    Ok(Json(metadata(&served)))
}

fn model_ready(state: &AppState, served: &Served) -> Response {
    let ready = state.is_ready();
    let body = ModelReady {
        name: served.card.name.clone(),
        ready,
    };
    readiness(ready, body)
}

/// Whether a model answers: 200 when it is loaded and the service ready.
#[utoipa::path(get, path = "/v2/models/{name}/ready", tag = "open inference protocol",
    params(("name" = String, Path, description = "Model name")),
    responses((status = 200, body = ModelReady), (status = 404, description = "`{\"error\": \"...\"}`"),
        (status = 503, body = ModelReady)))]
pub async fn ready_model(
    State(state): State<AppState>,
    name: Result<PathName, ApiError>,
) -> Result<Response, V2Error> {
    let served = served(&state, &name?.0, None)?;
    Ok(model_ready(&state, &served))
}

/// Whether a model version answers.
#[utoipa::path(get, path = "/v2/models/{name}/versions/{version}/ready", tag = "open inference protocol",
    params(("name" = String, Path, description = "Model name"), ("version" = String, Path, description = "Model version")),
    responses((status = 200, body = ModelReady), (status = 404, description = "`{\"error\": \"...\"}`"),
        (status = 503, body = ModelReady)))]
pub async fn ready_model_version(
    State(state): State<AppState>,
    path: Result<super::NameVersion, ApiError>,
) -> Result<Response, V2Error> {
    let path = path?;
    let served = served(&state, &path.name, Some(&path.version))?;
    Ok(model_ready(&state, &served))
}
