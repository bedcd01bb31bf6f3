//! The ONNX runtime: tract, pure Rust. A model is optimised once at load time with a
//! symbolic batch dimension, then runs batches of any size. Calls are synchronous and
//! CPU-bound: the server runs them on blocking threads, never on the async executor.

use std::sync::Arc;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::DimLike;

use crate::error::ModelError;

/// How far a probability may stray outside [0, 1] and still be one: float error in
/// ensembles (onnxruntime and tract both answer 1.0000001 for some tree ensembles).
/// Within it a value is clamped, so an answer and its record never hold a
/// probability or confidence above 1 or below 0 (the collector refuses such a
/// record); beyond it the model is not answering probabilities.
pub const PROBABILITY_SLACK: f32 = 1e-4;

/// One row's prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct RowPrediction {
    pub class_index: usize,
    pub confidence: f32,
    pub probabilities: Vec<f32>,
}

/// One row's answer, whichever kind of model gave it.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A classifier's class and probabilities.
    Class(RowPrediction),
    /// A regressor's value.
    Value(f32),
}

/// What the output vigil reads holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// A classifier's `[N, classes]` probabilities.
    Probabilities { classes: usize },
    /// A regressor's value per row: `[N, 1]` or `[N]`.
    Value,
}

/// An optimised, runnable ONNX model taking `[N, features]` f32 and producing
/// `[N, classes]` probabilities (a classifier) or a value per row (a regressor).
#[derive(Debug, Clone)]
pub struct OnnxModel {
    /// A plan computing the one output vigil reads (skl2onnx also emits a
    /// classifier's `label`).
    plan: Arc<TypedRunnableModel>,
    features: usize,
    head: Head,
}

/// A panic's message, when it has one.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message")
}

impl OnnxModel {
    /// Loads and optimises a classifier from ONNX bytes.
    pub fn load(bytes: &[u8], features: usize, classes: usize) -> Result<Self, String> {
        Self::load_with(bytes, features, Head::Probabilities { classes })
    }

    /// Loads and optimises a regressor from ONNX bytes.
    pub fn load_regressor(bytes: &[u8], features: usize) -> Result<Self, String> {
        Self::load_with(bytes, features, Head::Value)
    }

    /// Loads under `catch_unwind`: tract asserts on some malformed graphs (a STRING
    /// tensor in `raw_data`, a `ConstantOfShape` of 2^31) instead of returning an
    /// error, and a model is input like any other: refused, not a crash (an upload
    /// answered 500, `vigil models check` exited 101).
    fn load_with(bytes: &[u8], features: usize, head: Head) -> Result<Self, String> {
        std::panic::catch_unwind(|| Self::load_unguarded(bytes, features, head)).unwrap_or_else(
            |panic| {
                Err(format!(
                    "the runtime failed on this graph ({})",
                    panic_text(&*panic)
                ))
            },
        )
    }

    fn load_unguarded(bytes: &[u8], features: usize, head: Head) -> Result<Self, String> {
        let mut model = crate::onnx_ml::load(bytes)?;
        if model.inputs.len() != 1 {
            return Err(format!(
                "expected one input, the model has {}",
                model.inputs.len()
            ));
        }
        let batch = model.symbols.sym("N");
        model
            .set_input_fact(0, f32::fact(&[batch.to_dim(), features.to_dim()]).into())
            .map_err(|e| format!("input is not [N, {features}] f32: {e:#}"))?;
        let mut typed = crate::onnx_ml::into_typed(model)?;
        let output = match head {
            Head::Probabilities { classes } => pick_probabilities_output(&typed, classes)?,
            Head::Value => pick_value_output(&typed)?,
        };
        // Only that output is computed: the optimiser then drops what feeds nothing
        // else, such as a classifier's label path (ArgMax, ArrayFeatureExtractor,
        // Reshape, Cast), whose answer vigil derives from the probabilities itself.
        // tract's cost a run is mostly per operator, not per row: this cut a one-row
        // run of the default model by about a quarter (docs/BENCHMARKS.md).
        let outlet = typed.outputs[output];
        typed
            .select_output_outlets(&[outlet])
            .map_err(|e| format!("{e:#}"))?;
        let plan = typed
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| format!("{e:#}"))?;
        Ok(Self {
            plan,
            features,
            head,
        })
    }

    pub fn head(&self) -> Head {
        self.head
    }

    pub fn features(&self) -> usize {
        self.features
    }

    /// The classes a classifier tells apart; 0 for a regressor.
    pub fn classes(&self) -> usize {
        match self.head {
            Head::Probabilities { classes } => classes,
            Head::Value => 0,
        }
    }

    /// Runs the plan on `rows` instances laid out row-major in `values`, under
    /// `catch_unwind`: tract asserts instead of erring on some graphs at run time as at
    /// load, and every caller (the scheduler, the probe at start-up, upload and rescan,
    /// `vigil models init`) gets a model fault, not a dead thread or an exit 101.
    fn run(&self, values: &[f32], rows: usize) -> Result<TVec<TValue>, ModelError> {
        debug_assert_eq!(values.len(), rows * self.features);
        let input = Tensor::from_shape(&[rows, self.features], values)
            .map_err(|e| ModelError::Inference(format!("{e:#}")))?;
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.plan.run(tvec![input.into()])
        }))
        .map_err(|panic| {
            ModelError::Inference(format!("the runtime panicked ({})", panic_text(&*panic)))
        })?
        .map_err(|e| ModelError::Inference(format!("{e:#}")))
    }

    /// The answer for each of `rows` instances laid out row-major in `values`: classes
    /// from a classifier, values from a regressor.
    pub fn infer(&self, values: &[f32], rows: usize) -> Result<Vec<Output>, ModelError> {
        Ok(match self.head {
            Head::Probabilities { .. } => self
                .predict(values, rows)?
                .into_iter()
                .map(Output::Class)
                .collect(),
            Head::Value => self
                .predict_values(values, rows)?
                .into_iter()
                .map(Output::Value)
                .collect(),
        })
    }

    /// A regressor's value for each of `rows` instances laid out row-major in `values`.
    pub fn predict_values(&self, values: &[f32], rows: usize) -> Result<Vec<f32>, ModelError> {
        if self.head != Head::Value {
            return Err(ModelError::Inference(
                "a classifier answers probabilities, not values".into(),
            ));
        }
        let outputs = self.run(values, rows)?;
        let out = outputs[0]
            .to_plain_array_view::<f32>()
            .map_err(|e| ModelError::Inference(format!("{e:#}")))?;
        if out.len() != rows || !matches!(out.shape(), [r] | [r, 1] if *r == rows) {
            return Err(ModelError::OutputShape {
                got: out.shape().to_vec(),
                rows,
                classes: 1,
            });
        }
        let values: Vec<f32> = out.iter().copied().collect();
        if let Some(instance) = values.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::NonFiniteOutput { instance });
        }
        Ok(values)
    }

    /// A classifier's prediction for each of `rows` instances laid out row-major in
    /// `values` (`rows * features` long).
    pub fn predict(&self, values: &[f32], rows: usize) -> Result<Vec<RowPrediction>, ModelError> {
        let Head::Probabilities { classes } = self.head else {
            return Err(ModelError::Inference(
                "a regressor answers values, not classes".into(),
            ));
        };
        let outputs = self.run(values, rows)?;
        let probs = outputs[0]
            .to_plain_array_view::<f32>()
            .map_err(|e| ModelError::Inference(format!("{e:#}")))?;
        if probs.shape() != [rows, classes] {
            return Err(ModelError::OutputShape {
                got: probs.shape().to_vec(),
                rows,
                classes,
            });
        }
        let flat = probs
            .as_slice()
            .ok_or_else(|| ModelError::Inference("non-contiguous output".into()))?;
        flat.chunks_exact(classes)
            .enumerate()
            .map(|(instance, row)| {
                if row.iter().any(|p| !p.is_finite()) {
                    return Err(ModelError::NonFiniteOutput { instance });
                }
                if let Some(&value) = row
                    .iter()
                    .find(|p| !(-PROBABILITY_SLACK..=1.0 + PROBABILITY_SLACK).contains(*p))
                {
                    return Err(ModelError::NotAProbability { instance, value });
                }
                let probabilities: Vec<f32> = row.iter().map(|p| p.clamp(0.0, 1.0)).collect();
                let (class_index, confidence) = probabilities.iter().copied().enumerate().fold(
                    (0, f32::MIN),
                    |best, (i, p)| if p > best.1 { (i, p) } else { best },
                );
                Ok(RowPrediction {
                    class_index,
                    confidence,
                    probabilities,
                })
            })
            .collect()
    }
}

/// Finds a regressor's value output: an f32 output of shape `[N, 1]` or `[N]`, the one
/// named like `variable` (skl2onnx) if several fit.
fn pick_value_output(model: &TypedModel) -> Result<usize, String> {
    let mut candidates = Vec::new();
    for (ix, outlet) in model.outputs.iter().enumerate() {
        let fact = model.outlet_fact(*outlet).map_err(|e| format!("{e:#}"))?;
        let shape = fact.shape.dims();
        let fits = fact.datum_type == f32::datum_type()
            && (shape.len() == 1 || (shape.len() == 2 && shape[1].to_usize().ok() == Some(1)));
        if fits {
            let label = model.outlet_label(*outlet).unwrap_or_default();
            if label.contains("variable") || label.contains("value") {
                return Ok(ix);
            }
            candidates.push(ix);
        }
    }
    match candidates.as_slice() {
        [one] => Ok(*one),
        [] => Err("no output of shape [N, 1] or [N] f32 (one value per row)".into()),
        _ => Err("several [N, 1] outputs and none is named variable".into()),
    }
}

/// Finds the `[N, classes]` f32 output: named `probabilities` if there is one (skl2onnx),
/// else the only f32 output with `classes` columns.
fn pick_probabilities_output(model: &TypedModel, classes: usize) -> Result<usize, String> {
    let mut candidates = Vec::new();
    for (ix, outlet) in model.outputs.iter().enumerate() {
        let fact = model.outlet_fact(*outlet).map_err(|e| format!("{e:#}"))?;
        let shape = fact.shape.dims();
        let fits = fact.datum_type == f32::datum_type()
            && shape.len() == 2
            && shape[1].to_usize().ok() == Some(classes);
        if fits {
            let name = &model.node(outlet.node).name;
            if name.contains("probabilities")
                || model
                    .outlet_label(*outlet)
                    .is_some_and(|l| l.contains("probabilities"))
            {
                return Ok(ix);
            }
            candidates.push(ix);
        }
    }
    match candidates.as_slice() {
        [one] => Ok(*one),
        [] => Err(format!(
            "no output of shape [N, {classes}] f32 (one column per label)"
        )),
        _ => Err("several [N, classes] outputs and none is named probabilities".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundled::MODELS;

    fn digits() -> OnnxModel {
        OnnxModel::load(MODELS[1].1, 64, 10).unwrap()
    }

    #[test]
    fn defect_detector_separates_normal_from_hot_and_shaking() {
        let model = OnnxModel::load(MODELS[0].1, 6, 2).unwrap();
        let rows = vec![
            70.0, 250.0, 2.5, 45.0, 1500.0, 12.0, 95.0, 250.0, 6.0, 70.0, 1500.0, 18.0,
        ];
        let out = model.predict(&rows, 2).unwrap();
        assert_eq!(out[0].class_index, 0, "{out:?}");
        assert_eq!(out[1].class_index, 1, "{out:?}");
        for row in &out {
            let total: f32 = row.probabilities.iter().sum();
            assert!((total - 1.0).abs() < 1e-4);
            assert_eq!(row.confidence, row.probabilities[row.class_index]);
        }
    }

    /// skl2onnx classifiers also output the label (ArgMax, ArrayFeatureExtractor,
    /// Reshape, Cast), which vigil derives from the probabilities itself.
    #[test]
    fn the_plan_computes_only_the_output_vigil_reads() {
        let model = OnnxModel::load(MODELS[0].1, 6, 2).unwrap();
        let graph = model.plan.model();
        assert_eq!(graph.output_outlets().unwrap().len(), 1);
        let label_path: Vec<&str> = graph
            .nodes()
            .iter()
            .map(|n| n.name.as_str())
            .filter(|name| name.starts_with("ArgMax") || name.starts_with("ArrayFeatureExtractor"))
            .collect();
        assert!(label_path.is_empty(), "{label_path:?}");
        let out = model
            .predict(&[70.0, 250.0, 2.5, 45.0, 1500.0, 12.0], 1)
            .unwrap();
        assert_eq!(out[0].probabilities.len(), 2);
    }

    #[test]
    fn batch_sizes_vary_on_one_optimised_plan() {
        let model = digits();
        for rows in [1, 3, 17] {
            let out = model.predict(&vec![8.0; rows * 64], rows).unwrap();
            assert_eq!(out.len(), rows);
            assert!(out.iter().all(|r| r.probabilities.len() == 10));
        }
    }

    #[test]
    fn wrong_class_count_is_a_load_error() {
        let err = OnnxModel::load(MODELS[1].1, 64, 3).unwrap_err();
        assert!(err.contains("[N, 3]"), "{err}");
    }

    #[test]
    fn a_classifier_is_not_a_regressor() {
        let model = digits();
        assert!(model.predict_values(&[8.0; 64], 1).is_err());
        assert_eq!(model.head(), Head::Probabilities { classes: 10 });
        // The digits model has no [N, 1] output to read as a value.
        let err = OnnxModel::load_regressor(MODELS[1].1, 64).unwrap_err();
        assert!(err.contains("[N, 1]"), "{err}");
    }

    #[test]
    fn garbage_bytes_are_a_load_error() {
        assert!(OnnxModel::load(b"not onnx at all", 6, 2).is_err());
    }

    /// A two-feature, two-label test fixture under `testdata/` (scripts/train_models.py).
    fn two_by_two(dir: &str) -> OnnxModel {
        let path = format!(
            "{}/../../testdata/{dir}/model.onnx",
            env!("CARGO_MANIFEST_DIR")
        );
        OnnxModel::load(&std::fs::read(path).unwrap(), 2, 2).unwrap()
    }

    /// The scores fixture answers `input * 5`: inputs pick the "probabilities".
    #[test]
    fn probabilities_off_by_float_error_are_clamped_and_scores_refused() {
        let model = two_by_two("uploads/scores-model");
        // 1.00001 and -0.00005: float error, clamped.
        let out = model.predict(&[0.200_002, -0.000_01], 1).unwrap();
        assert_eq!(out[0].probabilities, [1.0, 0.0]);
        assert_eq!((out[0].class_index, out[0].confidence), (0, 1.0));
        let out = model.predict(&[0.1, 0.1], 1).unwrap();
        assert_eq!(out[0].probabilities, [0.5, 0.5]);
        // 5.0 is a score: the second row is named.
        let err = model.predict(&[0.1, 0.1, 1.0, 0.0], 2).unwrap_err();
        assert!(
            matches!(err, ModelError::NotAProbability { instance: 1, value } if value == 5.0),
            "{err}"
        );
    }

    #[test]
    fn nan_output_is_reported_not_served() {
        let model = two_by_two("models/nan-model");
        let err = model.predict(&[1.0, 2.0], 1).unwrap_err();
        assert!(
            matches!(err, ModelError::NonFiniteOutput { instance: 0 }),
            "{err}"
        );
    }
}
