//! What the telemetry layer adds per request, in-process (`oneshot`, no socket):
//! request id, trace context, metrics, the JSON access line (written to a sink through
//! the real non-blocking writer) — against the same routes with no layer.
//!
//!     cargo bench -p vigil-server --bench router

use std::hint::black_box;

use axum::Router;
use axum::body::Body;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use tower::ServiceExt;
use vigil_model::ModelRegistry;
use vigil_server::router::{RouterConfig, routes};
use vigil_server::{AppState, Limits, app};

const BODY: &str = r#"{"features": [70, 250, 2.5, 45, 1500, 12]}"#;

fn live() -> Request<Body> {
    Request::get("/health/live").body(Body::empty()).unwrap()
}

fn predict() -> Request<Body> {
    Request::post("/predict")
        .header("content-type", "application/json")
        .body(Body::from(BODY))
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let _log = vigil_telemetry::logging::init_with_writer(
        &vigil_telemetry::LogConfig::default(),
        Box::new(std::io::sink()),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let state = AppState::new(ModelRegistry::bundled().unwrap(), Limits::default());
    let full = app(state.clone(), RouterConfig::default());
    let bare: Router = routes(&state).with_state(state.clone());

    let mut group = c.benchmark_group("router");
    for (name, router) in [("bare", &bare), ("telemetry", &full)] {
        group.bench_function(format!("{name}/health_live"), |b| {
            b.to_async(&rt)
                .iter(|| async { black_box(router.clone().oneshot(live()).await.unwrap()) })
        });
        group.bench_function(format!("{name}/predict"), |b| {
            b.to_async(&rt)
                .iter(|| async { black_box(router.clone().oneshot(predict()).await.unwrap()) })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
