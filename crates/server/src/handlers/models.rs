//! `GET /models` and `GET /models/{name}`: what is served, its input schema and labels.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vigil_model::LoadedModel;

use crate::error::ApiError;
use crate::extract::PathName;
use crate::handlers::meta::rfc3339;
use crate::state::AppState;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FeatureInfo {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// The training distribution drift is measured against, when the card has one.
    /// Clients such as `vigil load` sample realistic inputs from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<ReferenceInfo>,
}

/// Interior bin edges and the training share of each of the `edges.len() + 1` bins
/// `(-inf, e0), [e0, e1), …, [e_last, inf)`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReferenceInfo {
    pub edges: Vec<f64>,
    pub expected: Vec<f64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DriftInfo {
    /// Rows in the current drift window.
    pub window_rows: usize,
    /// PSI per feature over the window; `null` while the window holds no data to
    /// compare.
    pub features: std::collections::BTreeMap<String, Option<f64>>,
    /// PSI of the predictions (class mix, or a regressor's value bins); `null`
    /// without data.
    pub prediction: Option<f64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelInfo {
    pub name: String,
    pub version: String,
    /// `loaded`.
    pub status: String,
    pub default: bool,
    /// `classification` or `regression`.
    pub task: String,
    pub description: String,
    /// Input schema: feature names in order, with physical ranges.
    pub features: Vec<FeatureInfo>,
    pub labels: Vec<String>,
    pub defect_labels: Vec<String>,
    pub loaded_at: String,
    pub load_time_ms: f64,
    pub drift: DriftInfo,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelList {
    pub default_model: String,
    pub models: Vec<ModelInfo>,
}

fn info(default_name: &str, m: &LoadedModel) -> ModelInfo {
    let snap = m.drift.snapshot();
    ModelInfo {
        name: m.card.name.clone(),
        version: m.card.version.clone(),
        status: "loaded".into(),
        default: m.card.name == default_name,
        task: m.card.task.as_str().into(),
        description: m.card.description.clone(),
        features: m
            .card
            .features
            .iter()
            .map(|f| FeatureInfo {
                name: f.name.clone(),
                min: f.min,
                max: f.max,
                reference: m
                    .card
                    .drift
                    .features
                    .iter()
                    .find(|r| r.name == f.name)
                    .map(|r| ReferenceInfo {
                        edges: r.edges.clone(),
                        expected: r.expected.clone(),
                    }),
            })
            .collect(),
        labels: m.card.labels.clone(),
        defect_labels: m.card.defect_labels.clone(),
        loaded_at: rfc3339(m.loaded_at),
        load_time_ms: (m.load_duration.as_secs_f64() * 1e6).round() / 1e3,
        drift: DriftInfo {
            window_rows: snap.rows,
            features: snap
                .features
                .into_iter()
                .map(|(feature, psi)| (feature, psi.is_finite().then_some(psi)))
                .collect(),
            prediction: snap.prediction.filter(|psi| psi.is_finite()),
        },
    }
}

/// Every loaded model.
#[utoipa::path(get, path = "/models", tag = "models", responses((status = 200, body = ModelList)))]
pub async fn list(State(state): State<AppState>) -> Json<ModelList> {
    let catalog = state.models.load();
    Json(ModelList {
        default_model: catalog.default_name().to_owned(),
        models: catalog
            .iter()
            .map(|m| info(catalog.default_name(), m))
            .collect(),
    })
}

/// One model.
#[utoipa::path(get, path = "/models/{name}", tag = "models", params(("name" = String, Path, description = "Model name")),
    responses((status = 200, body = ModelInfo), (status = 404, body = vigil_telemetry::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    name: Result<PathName, ApiError>,
) -> Result<Json<ModelInfo>, ApiError> {
    let name = name?.0;
    let catalog = state.models.load();
    let model = catalog.get(&name).ok_or(ApiError::UnknownModel(name))?;
    Ok(Json(info(catalog.default_name(), model)))
}
