//! `/metrics` rendering cost with 10,000 series (counters and histograms across
//! routes and statuses), in both formats.
//!
//!     cargo bench -p vigil-telemetry --bench render

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use vigil_telemetry::Metrics;
use vigil_telemetry::metrics::LATENCY_BUCKETS;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Labels {
    route: String,
    status: u16,
}

fn registry(series: usize) -> Metrics {
    let mut registry = Metrics::base_registry("bench", "0");
    let counters: Family<Labels, Counter> = Family::default();
    // A histogram renders 17 sample lines (14 buckets, +Inf, sum, count).
    let histograms: Family<Labels, Histogram, fn() -> Histogram> =
        Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS));
    let n_hist = series / 2 / 17;
    for i in 0..series / 2 {
        counters
            .get_or_create(&Labels {
                route: format!("/route/{i}"),
                status: 200,
            })
            .inc_by(i as u64);
    }
    for i in 0..n_hist {
        histograms
            .get_or_create(&Labels {
                route: format!("/route/{i}"),
                status: 200,
            })
            .observe(i as f64 / 1e4);
    }
    registry.register("bench_requests", "Requests", counters);
    registry.register("bench_latency_seconds", "Latency", histograms);
    Metrics::new(registry)
}

fn bench(c: &mut Criterion) {
    let metrics = registry(10_000);
    let lines = metrics
        .render_text()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .count();
    assert!(lines >= 9_900, "{lines} series rendered");
    c.bench_function("render/text_0.0.4/10k_series", |b| {
        b.iter(|| black_box(metrics.render_text()))
    });
    c.bench_function("render/openmetrics/10k_series", |b| {
        b.iter(|| black_box(metrics.render_openmetrics()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
