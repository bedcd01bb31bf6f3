//! The model zoo (scripts/zoo.py): common scikit-learn pipelines exported with
//! skl2onnx's default options, run by vigil's runtime on held-out rows and compared
//! with what onnxruntime answered for the same rows. `scripts/zoo` makes the zoo in a
//! venv of its own (pinned scikit-learn, skl2onnx, onnxruntime) the first time.
//! Regressors run through the runtime's value head (`OnnxModel::load_regressor`).

use serde_json::Value;
use vigil_model::OnnxModel;

/// Probabilities: onnxruntime's within this, absolutely.
const PROBABILITY_TOLERANCE: f32 = 1e-5;
/// Regression values (hundreds, for the diabetes targets): within this relative to
/// the value, which is what f32 resolves there.
const VALUE_TOLERANCE: f32 = 1e-5;

struct Case {
    name: String,
    onnx: Vec<u8>,
    expected: Value,
}

fn cases() -> Vec<Case> {
    let dir = vigil_test_support::zoo();
    let mut cases: Vec<Case> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("expected.json").exists())
        .map(|e| {
            let path = e.path();
            Case {
                name: e.file_name().to_string_lossy().into_owned(),
                onnx: std::fs::read(path.join("model.onnx")).unwrap(),
                expected: serde_json::from_slice(
                    &std::fs::read(path.join("expected.json")).unwrap(),
                )
                .unwrap(),
            }
        })
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(cases.len() >= 13, "the zoo has {} models", cases.len());
    cases
}

fn rows(expected: &Value) -> (Vec<f32>, usize, usize) {
    let rows = expected["rows"].as_array().unwrap();
    let features = rows[0].as_array().unwrap().len();
    let flat = rows
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter())
        .map(|v| v.as_f64().map_or(f32::NAN, |f| f as f32))
        .collect();
    (flat, rows.len(), features)
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn every_zoo_model_answers_what_onnxruntime_answers() {
    let mut failures = Vec::new();
    for case in cases() {
        let (values, n, features) = rows(&case.expected);
        let task = case.expected["task"].as_str().unwrap();
        let result = std::panic::catch_unwind(|| match task {
            "classification" => {
                let want: Vec<Vec<f32>> = case.expected["probabilities"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(floats)
                    .collect();
                let classes = want[0].len();
                let model = OnnxModel::load(&case.onnx, features, classes)
                    .unwrap_or_else(|e| panic!("load: {e}"));
                let got = model.predict(&values, n).unwrap();
                // A row alone answers as in the batch (the probe refuses a model
                // whose rows interact; none of these may look like one).
                let alone = model.predict(&values[..features], 1).unwrap();
                for (a, b) in alone[0].probabilities.iter().zip(&got[0].probabilities) {
                    assert!(
                        (a - b).abs() <= PROBABILITY_TOLERANCE,
                        "row 0 alone: {a} against {b}"
                    );
                }
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    for (a, b) in g.probabilities.iter().zip(w) {
                        assert!(
                            (a - b).abs() <= PROBABILITY_TOLERANCE,
                            "row {i}: {:?} against onnxruntime's {w:?}",
                            g.probabilities
                        );
                    }
                }
            }
            _ => {
                let want = floats(&case.expected["values"]);
                let model = OnnxModel::load_regressor(&case.onnx, features)
                    .unwrap_or_else(|e| panic!("load: {e}"));
                let got = model.predict_values(&values, n).unwrap();
                assert_eq!(got.len(), want.len());
                let alone = model.predict_values(&values[..features], 1).unwrap();
                assert!(
                    (alone[0] - got[0]).abs() <= VALUE_TOLERANCE * got[0].abs().max(1.0),
                    "row 0 alone: {} against {}",
                    alone[0],
                    got[0]
                );
                for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (a - b).abs() <= VALUE_TOLERANCE * b.abs().max(1.0),
                        "row {i}: {a} against onnxruntime's {b}"
                    );
                }
            }
        });
        if let Err(e) = result {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{}: {msg}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
