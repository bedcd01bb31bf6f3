//! The dashboard's data endpoint at its heaviest: ten models, a full 15-minute
//! history (180 samples each), an hour of request analytics on several routes. Measures
//! what one poll costs the server, building the overview and writing its JSON: the
//! first poll of a page (every sample) and the polls after it (`since` = the last one).
//!
//!     cargo bench -p vigil-server --bench dashboard

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use vigil_model::{LoadedModel, ModelRegistry};
use vigil_server::dashboard::history::EVERY;
use vigil_server::dashboard::overview::Overview;
use vigil_server::dashboard::sampler::Sampler;
use vigil_server::{AppState, Limits};

/// Five renamed copies of each bundled model.
fn ten_models() -> ModelRegistry {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let mut models = Vec::new();
    for base in ["defect-detector", "digits"] {
        let dir = root.join(base);
        let onnx = std::fs::read(dir.join("model.onnx")).unwrap();
        let card = std::fs::read_to_string(dir.join("model.toml")).unwrap();
        for i in 0..5 {
            let renamed = card.replacen(
                &format!("name = \"{base}\""),
                &format!("name = \"{base}-{i}\""),
                1,
            );
            models.push(LoadedModel::from_parts(&onnx, &renamed, format!("bench {i}")).unwrap());
        }
    }
    ModelRegistry::from_models(models, None, &root).unwrap()
}

fn bench(c: &mut Criterion) {
    let state = AppState::new(ten_models(), Limits::default());
    let catalog = state.models.load_full();
    assert_eq!(catalog.len(), 10);
    // Traffic on every model between samples, so every number is there to write.
    let mut sampler = Sampler::default();
    let start = SystemTime::now() - Duration::from_secs(15 * 60);
    for i in 0..180u32 {
        for served in catalog.iter() {
            served.handles.success.inc_by(40);
            served.handles.tally.requests.inc_by(40);
            served.handles.tally.queue_seconds.inc_by(0.004);
            served.handles.tally.compute_seconds.inc_by(0.008);
            served.handles.tally.confidence_sum.inc_by(36.0);
            for class in &served.handles.by_class {
                class.inc_by(4);
            }
        }
        let sample = sampler.sample(&catalog, start + EVERY * i);
        state.dashboard.history.push(sample);
    }
    for route in [
        "/predict",
        "/models/{name}/predict",
        "/metrics",
        "/health/ready",
        "/models",
    ] {
        for ms in 0..2000u64 {
            state
                .analytics
                .record("POST", route, 200, Duration::from_micros(100 + ms), None);
        }
    }
    let window = Duration::from_secs(300);
    let full = serde_json::to_vec(&Overview::build(&state, window, 0)).unwrap();
    let last = state.dashboard.history.since(0).last().unwrap().0.t_ms;
    let update = serde_json::to_vec(&Overview::build(&state, window, last - 1)).unwrap();
    eprintln!(
        "overview JSON: first poll {} KiB, later polls {} KiB",
        full.len() / 1024,
        update.len() / 1024
    );

    c.bench_function("overview: first poll (10 models, full history)", |b| {
        b.iter(|| serde_json::to_vec(&Overview::build(&state, window, black_box(0))).unwrap())
    });
    c.bench_function("overview: later poll (last sample only)", |b| {
        b.iter(|| {
            serde_json::to_vec(&Overview::build(&state, window, black_box(last - 1))).unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
