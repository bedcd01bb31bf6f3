//! The dashboard's model-quality panel: accuracy measured from ground truth (the
//! collector's labels, last hour) beside the estimate from confidences, which is in
//! each model's samples (`estimated_accuracy`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::source::CollectorSource;

/// One model's measured quality over the last hour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MeasuredQuality {
    pub model: String,
    /// Labels in the window.
    pub labels: u64,
    /// A classifier's share of right answers; `null` without labels.
    pub accuracy: Option<f64>,
    /// The accuracy its model card states.
    pub baseline_accuracy: Option<f64>,
    /// A regressor's mean absolute error.
    pub mae: Option<f64>,
}

/// The last answer of the collector about quality.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Quality {
    /// `in_process`, `collector`, or `none` (no collector).
    pub source: &'static str,
    /// Models with labels in the last hour.
    pub models: Vec<MeasuredQuality>,
    /// Why the last read failed, if it did.
    pub error: Option<String>,
}

impl Quality {
    pub fn none() -> Self {
        Self {
            source: "none",
            models: Vec::new(),
            error: None,
        }
    }

    /// Asks `source` once.
    pub async fn read(source: &dyn CollectorSource) -> Self {
        match source.quality().await {
            Ok(mut models) => {
                models.retain(|m| m.labels > 0);
                Self {
                    source: source.kind(),
                    models,
                    error: None,
                }
            }
            Err(error) => Self {
                source: source.kind(),
                models: Vec::new(),
                error: Some(error),
            },
        }
    }
}
