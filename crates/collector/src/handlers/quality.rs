//! `GET /quality?model=&window=`: ground-truth quality per model over a window of
//! label time (default 1h), from the database: accuracy, per-class precision, recall
//! and F1, the confusion matrix, expected calibration error, label coverage and lag,
//! and for a regressor MAE, RMSE and absolute-error quantiles.

use axum::Json;
use axum::extract::State;
use http::Uri;
use serde::{Deserialize, Serialize};
use vigil_records::{BaselineSummary, Task, rfc3339_ms};
use vigil_store::Ranked;

use super::{now_ms, parse_window, query};
use crate::CollectorState;
use crate::error::CollectorError;
use crate::quality::{ClassQuality, Confusion, Tally};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QualityQuery {
    model: Option<String>,
    window: Option<String>,
}

/// Nearest-rank quantiles, by name (`p50`, `p95`, …).
pub type Quantiles = std::collections::BTreeMap<String, f64>;

/// Labelled predictions among those made in the window.
#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    pub labelled: u64,
    pub predicted: u64,
    pub ratio: Option<f64>,
}

/// One model's quality over the window.
#[derive(Debug, Clone, Serialize)]
pub struct ModelQuality {
    pub model: String,
    pub version: String,
    pub task: Task,
    /// Labels in the window (by label time).
    pub labels: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<ClassQuality>,
    /// Rows are true classes, columns predicted ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confusion: Option<Confusion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration_error: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mae: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rmse: Option<f64>,
    #[serde(skip_serializing_if = "Quantiles::is_empty")]
    pub abs_error: Quantiles,
    pub coverage: Coverage,
    /// Seconds from prediction to label.
    pub lag_seconds: Quantiles,
}

#[derive(Debug, Serialize)]
pub struct QualityBody {
    pub window_seconds: u64,
    pub since: String,
    pub until: String,
    pub models: Vec<ModelQuality>,
}

fn quantiles(ranked: &[Ranked], scale: f64) -> Quantiles {
    ranked
        .iter()
        .map(|r| {
            let name = format!("p{}", (r.quantile.as_f64() * 100.0).round());
            (name, r.value * scale)
        })
        .collect()
}

/// `GET /quality`.
pub async fn quality(
    State(state): State<CollectorState>,
    uri: Uri,
) -> Result<Json<QualityBody>, CollectorError> {
    let q: QualityQuery = query(&uri)?;
    let window = parse_window(q.window.as_deref().unwrap_or("1h"))?;
    let until = now_ms();
    let since = until - (window as i64) * 1000;
    let cards = match &q.model {
        Some(m) => vec![
            state
                .cards
                .get(m)
                .ok_or_else(|| CollectorError::UnknownModel(m.clone()))?,
        ],
        None => state.cards.all(),
    };
    let predicted = state
        .store
        .predicted(q.model.as_deref(), since, until + 1)
        .await
        .map_err(CollectorError::Unavailable)?;
    let mut models = Vec::with_capacity(cards.len());
    for card in cards {
        let predicted = predicted.get(&card.model).copied().unwrap_or(0);
        let rows = state
            .store
            .quality(&card.model, since, until + 1)
            .await
            .map_err(CollectorError::Unavailable)?;
        let tally = Tally::from_rows(&rows.confusion, rows.errors.as_ref());
        let classifier = card.task == Task::Classification;
        let classes = tally.classes(&card.labels);
        models.push(ModelQuality {
            labels: tally.labels(),
            accuracy: tally.accuracy(),
            classes: if classifier {
                tally.per_class(&classes)
            } else {
                Vec::new()
            },
            confusion: classifier.then(|| tally.confusion(&classes)),
            calibration_error: tally.calibration_error(),
            mae: tally.mae(),
            rmse: tally.rmse(),
            abs_error: quantiles(&rows.abs_error, 1.0),
            coverage: Coverage {
                labelled: rows.labelled,
                predicted,
                ratio: (predicted > 0).then(|| rows.labelled as f64 / predicted as f64),
            },
            lag_seconds: quantiles(&rows.lag_ms, 1e-3),
            model: card.model,
            version: card.version,
            task: card.task,
            baseline: card.baseline,
        });
    }
    Ok(Json(QualityBody {
        window_seconds: window,
        since: rfc3339_ms(since),
        until: rfc3339_ms(until),
        models,
    }))
}
