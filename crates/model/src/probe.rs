//! The probe: before a model serves (at start-up, on upload, in a rescan), it runs a
//! small batch built from its own card and must answer: a classifier probabilities
//! (finite, each in [0, 1], summing to 1 per row), a regressor finite values. This catches a model exporting logits or scores, or a
//! card whose features or labels do not fit the ONNX, before any caller sees it.

use crate::card::ModelCard;
use crate::error::ModelError;
use crate::registry::LoadedModel;
use crate::runtime::Output;

/// Most rows a probe batch holds.
const MAX_ROWS: usize = 64;
/// How far a row's probabilities may sum away from 1.
const SUM_SLACK: f32 = 1e-3;

/// What the probe ran and what came out.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    pub rows: usize,
    pub outputs: Vec<Output>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("the probe batch failed to run: {0}")]
    Model(#[from] ModelError),
    #[error(
        "the model's outputs are not probabilities: row {row} has {detail} (export probabilities, e.g. a softmax or skl2onnx's probability output, not scores or logits)"
    )]
    NotProbabilities { row: usize, detail: String },
}

/// Rows from the card: each feature cycles through its drift reference's bin edges
/// and the midpoints between them (or the middle of its min/max, or 0), clamped to the
/// feature's min/max. Row-major, `rows * features` long.
pub fn probe_rows(card: &ModelCard) -> (Vec<f32>, usize) {
    let columns: Vec<Vec<f64>> = card
        .features
        .iter()
        .map(|f| {
            let edges = card
                .drift
                .features
                .iter()
                .find(|r| r.name == f.name)
                .map(|r| r.edges.as_slice())
                .unwrap_or_default();
            let mut values: Vec<f64> = edges.to_vec();
            values.extend(edges.windows(2).map(|w| (w[0] + w[1]) / 2.0));
            if values.is_empty() {
                values.push(match (f.min, f.max) {
                    (Some(lo), Some(hi)) => (lo + hi) / 2.0,
                    (Some(lo), None) => lo,
                    (None, Some(hi)) => hi,
                    (None, None) => 0.0,
                });
            }
            values
                .into_iter()
                .map(|v| v.clamp(f.min.unwrap_or(f64::MIN), f.max.unwrap_or(f64::MAX)))
                .collect()
        })
        .collect();
    let rows = columns
        .iter()
        .map(Vec::len)
        .max()
        .unwrap_or(1)
        .clamp(1, MAX_ROWS);
    let mut values = Vec::with_capacity(rows * columns.len());
    for r in 0..rows {
        for column in &columns {
            values.push(column[r % column.len()] as f32);
        }
    }
    (values, rows)
}

/// Runs the probe batch on `model` and checks every row: a probability vector from a
/// classifier; a regressor's values are checked finite by the runtime itself.
pub fn probe(model: &LoadedModel) -> Result<ProbeReport, ProbeError> {
    let (values, rows) = probe_rows(&model.card);
    // The runtime refuses a value further outside [0, 1] than float error explains
    // (and clamps one within it).
    let outputs = match model.runtime.infer(&values, rows) {
        Ok(outputs) => outputs,
        Err(ModelError::NotAProbability { instance, value }) => {
            return Err(ProbeError::NotProbabilities {
                row: instance,
                detail: format!("a value of {value} (outside [0, 1])"),
            });
        }
        Err(e) => return Err(e.into()),
    };
    for (row, out) in outputs.iter().enumerate() {
        let Output::Class(out) = out else { continue };
        let sum: f32 = out.probabilities.iter().sum();
        if (sum - 1.0).abs() > SUM_SLACK {
            return Err(ProbeError::NotProbabilities {
                row,
                detail: format!("values summing to {sum}, not 1"),
            });
        }
    }
    Ok(ProbeReport { rows, outputs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::ModelRegistry;

    #[test]
    fn bundled_models_pass_with_rows_from_their_references() {
        for m in ModelRegistry::bundled().unwrap().iter() {
            let report = probe(m).unwrap();
            assert!(report.rows > 1, "{}", m.card.name);
            assert_eq!(report.outputs.len(), report.rows);
        }
    }

    #[test]
    fn rows_stay_inside_the_features_ranges() {
        let registry = ModelRegistry::bundled().unwrap();
        let card = &registry.default_model().card;
        let (values, rows) = probe_rows(card);
        assert_eq!(values.len(), rows * card.features.len());
        for (i, v) in values.iter().enumerate() {
            let f = &card.features[i % card.features.len()];
            assert!(
                f.min.is_none_or(|lo| f64::from(*v) >= lo - 1e-3),
                "{}",
                f.name
            );
            assert!(
                f.max.is_none_or(|hi| f64::from(*v) <= hi + 1e-3),
                "{}",
                f.name
            );
        }
    }
}
