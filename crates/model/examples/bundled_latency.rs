//! Time a call of each bundled model takes on vigil's runtime, at batch sizes the
//! scheduler makes (one request, a few merged, a full batch): the best of `ROUNDS`
//! rounds of `CALLS` calls each. tract's cost a run is mostly per operator, so this is
//! where a change to how the plan is built shows (docs/BENCHMARKS.md).
//!
//!   cargo run --release -p vigil-model --example bundled_latency

use std::time::Instant;

use vigil_model::{ModelCard, OnnxModel};

const ROUNDS: usize = 7;
const CALLS: usize = 20_000;

fn main() {
    for (name, onnx, card) in vigil_model::bundled::MODELS {
        let card = ModelCard::from_toml(card).unwrap();
        let features = card.features.len();
        let model = OnnxModel::load(onnx, features, card.labels.len()).unwrap();
        for rows in [1, 5, 32] {
            let values: Vec<f32> = (0..rows * features).map(|i| (i % 7) as f32).collect();
            let best = (0..ROUNDS)
                .map(|_| {
                    let start = Instant::now();
                    for _ in 0..CALLS {
                        std::hint::black_box(model.infer(&values, rows).unwrap());
                    }
                    start.elapsed().as_secs_f64() / CALLS as f64
                })
                .fold(f64::MAX, f64::min);
            println!("{name} rows {rows}: {:.2} us a call", best * 1e6);
        }
    }
}
