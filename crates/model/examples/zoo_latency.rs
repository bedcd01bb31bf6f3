//! Single-row latency of every zoo model on vigil's runtime (tract with vigil's
//! ONNX-ML operators), for `bench/zoo.sh`, which runs onnxruntime on the same rows in
//! the same run. Prints one JSON object: model name → seconds per single-row call
//! (median of `ROUNDS` rounds of `CALLS` calls).
//!
//!   cargo run --release -p vigil-model --example zoo_latency -- target/zoo [MODEL]

use std::time::Instant;

use vigil_model::OnnxModel;

const ROUNDS: usize = 5;
const CALLS: usize = 2000;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let zoo = std::env::args()
        .nth(1)
        .expect("usage: zoo_latency ZOO_DIR [MODEL]");
    let only = std::env::args().nth(2);
    let mut dirs: Vec<_> = std::fs::read_dir(&zoo)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("expected.json").exists())
        .filter(|p| only.as_deref().is_none_or(|o| p.ends_with(o)))
        .collect();
    dirs.sort();
    let mut results = serde_json::Map::new();
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let expected: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
        let onnx = std::fs::read(dir.join("model.onnx")).unwrap();
        let row: Vec<f32> = expected["rows"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().map_or(f32::NAN, |f| f as f32))
            .collect();
        let features = row.len();
        // One call as vigil makes it: a [1, F] batch in, the outputs read out.
        let mut call: Box<dyn FnMut()> = if expected["task"] == "classification" {
            let classes = expected["probabilities"][0].as_array().unwrap().len();
            let model = OnnxModel::load(&onnx, features, classes).unwrap();
            let row = row.clone();
            Box::new(move || {
                std::hint::black_box(model.predict(&row, 1).unwrap());
            })
        } else {
            let model = OnnxModel::load_regressor(&onnx, features).unwrap();
            Box::new(move || {
                std::hint::black_box(model.predict_values(&row, 1).unwrap());
            })
        };
        for _ in 0..200 {
            call();
        }
        let rounds = (0..ROUNDS)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..CALLS {
                    call();
                }
                start.elapsed().as_secs_f64() / CALLS as f64
            })
            .collect();
        results.insert(name, median(rounds).into());
    }
    println!("{}", serde_json::Value::Object(results));
}
