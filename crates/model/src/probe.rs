//! The probe: before a model serves (at start-up, on upload, in a rescan), it runs a
//! small batch built from its own card and must answer: a classifier probabilities
//! (finite, each in [0, 1], summing to 1 per row), a regressor finite values; one row
//! per row of the batch, and for the first rows the same answer alone as in the batch.
//! This catches a model exporting logits or scores, a card whose features or labels do
//! not fit the ONNX, an output of a fixed number of rows, and a graph whose rows
//! interact (the scheduler runs concurrent requests as one batch, so such a model
//! would answer one caller from another's rows), before any caller sees it.

use crate::card::ModelCard;
use crate::error::ModelError;
use crate::registry::LoadedModel;
use crate::runtime::Output;

/// Most rows a probe batch holds.
const MAX_ROWS: usize = 64;
/// The fewest: an output of one row whatever the batch is told apart from a real one.
const MIN_ROWS: usize = 2;
/// Rows also run alone, to compare with their answers in the batch.
const ALONE: usize = 4;
/// How far a row's answer alone may differ from its answer in a batch (float kernels
/// may sum in another order for another batch size; rows that interact differ by far
/// more).
const ALONE_SLACK: f32 = 1e-3;
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
    #[error(
        "the model's rows are not independent: row {row} of the probe batch {detail} (a model must answer each row from that row alone: requests are batched together)"
    )]
    RowsInteract { row: usize, detail: String },
}

/// Rows from the card: each feature cycles through its drift reference's bin edges
/// and the midpoints between them (or the middle of its min/max and each bound, or 0
/// and 1), clamped to the feature's min/max. Row-major, `rows * features` long.
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
                // Rows must differ for the probe to see rows that interact: the
                // middle, then each bound (or a step off the one bound, or 0 and 1).
                values.extend(match (f.min, f.max) {
                    (Some(lo), Some(hi)) => vec![(lo + hi) / 2.0, lo, hi],
                    (Some(lo), None) => vec![lo, lo + 1.0],
                    (None, Some(hi)) => vec![hi, hi - 1.0],
                    (None, None) => vec![0.0, 1.0],
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
        .clamp(MIN_ROWS, MAX_ROWS);
    let mut values = Vec::with_capacity(rows * columns.len());
    for r in 0..rows {
        // Each column starts its cycle one further along, so that no two features
        // move in lockstep (rows of equal features can hide rows that interact).
        for (j, column) in columns.iter().enumerate() {
            values.push(column[(r + j) % column.len()] as f32);
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
    if outputs.len() != rows {
        return Err(ProbeError::Model(ModelError::Inference(format!(
            "{} answers for a batch of {rows} rows",
            outputs.len()
        ))));
    }
    let features = model.card.features.len();
    for row in 0..rows.min(ALONE) {
        let alone = model
            .runtime
            .infer(&values[row * features..(row + 1) * features], 1)?;
        if let Some(detail) = differs(&outputs[row], alone.first()) {
            return Err(ProbeError::RowsInteract { row, detail });
        }
    }
    Ok(ProbeReport { rows, outputs })
}

/// How `alone` differs from `in_batch` beyond [`ALONE_SLACK`], if it does.
fn differs(in_batch: &Output, alone: Option<&Output>) -> Option<String> {
    let close = |a: f32, b: f32| (a - b).abs() <= ALONE_SLACK * a.abs().max(b.abs()).max(1.0);
    match (in_batch, alone) {
        (Output::Class(b), Some(Output::Class(a))) => {
            let same = a.probabilities.len() == b.probabilities.len()
                && a.probabilities
                    .iter()
                    .zip(&b.probabilities)
                    .all(|(x, y)| close(*x, *y));
            (!same).then(|| {
                format!(
                    "has probabilities {:?} in the batch and {:?} alone",
                    b.probabilities, a.probabilities
                )
            })
        }
        (Output::Value(b), Some(Output::Value(a))) => {
            (!close(*a, *b)).then(|| format!("is {b} in the batch and {a} alone"))
        }
        (_, got) => Some(format!("gets {got:?} alone")),
    }
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
