//! The inference service's model metrics (docs/reference.md §4). Every series a request can touch
//! is created at start-up for the loaded models and the closed reason/error sets, and
//! its handle kept, so the hot path does no label lookups and bad input can never add
//! a series. The drift families are computed at scrape time from the drift monitors
//! ([`drift`]); `prediction_value` is kept by model ([`values`]).

mod drift;
mod retired;
mod values;

use drift::DriftCollector;
use retired::Retired;
use values::ValueHistograms;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use vigil_model::{LoadedModel, Task};
use vigil_records::Status;
use vigil_telemetry::metrics::{LATENCY_BUCKETS, TraceExemplar};

use crate::catalog::{Models, Served};
use crate::labels::{ErrorType, ValidationReason};

/// The `model` label used when a request failed before a loaded model was known.
pub const UNKNOWN_MODEL: &str = "unknown";

const BATCH_BUCKETS: [f64; 11] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];
const CONFIDENCE_BUCKETS: [f64; 10] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
const LOAD_BUCKETS: [f64; 8] = [0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ModelVersionStatus {
    model: String,
    version: String,
    status: &'static str,
}
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ModelVersion {
    model: String,
    version: String,
}
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct ModelOnly {
    model: String,
}
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ModelClass {
    model: String,
    class: String,
}
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ModelErrorType {
    model: String,
    error_type: &'static str,
}
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ModelReason {
    model: String,
    reason: &'static str,
}
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(super) struct ModelFeature {
    model: String,
    feature: String,
}

type HistFn = fn() -> Histogram;
type ExemplarHist = HistogramWithExemplars<TraceExemplar>;

/// Pre-resolved handles for one model.
#[derive(Debug, Clone)]
pub struct ModelHandles {
    pub success: Counter,
    pub error: Counter,
    pub latency: ExemplarHist,
    pub queue: Histogram,
    pub queue_depth: Gauge,
    pub batch_size: Histogram,
    /// A classifier's `prediction_confidence` (none for a regressor).
    pub confidence: Option<Histogram>,
    /// A regressor's `prediction_value` (none for a classifier).
    pub value: Option<Histogram>,
    /// Indexed by class index.
    pub by_class: Vec<Counter>,
    errors: HashMap<ErrorType, Counter>,
    validation: HashMap<ValidationReason, Counter>,
    pub loaded: Gauge,
    pub tally: Tally,
}

/// Sums the dashboard reads for its means (prometheus-client exposes a histogram's sum
/// only to tests). Not exported: the histograms are. Atomic adds, no lock.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Requests that got an inference slot and ran.
    pub requests: Counter,
    pub queue_seconds: Counter<f64, AtomicU64>,
    pub compute_seconds: Counter<f64, AtomicU64>,
    /// Confidence of every successful prediction, summed (their count is `success`).
    pub confidence_sum: Counter<f64, AtomicU64>,
    /// A regressor's predicted values, summed (a gauge: values may be negative).
    pub value_sum: Gauge<f64, AtomicU64>,
}

impl ModelHandles {
    /// `prediction_errors_total` of this model for `error_type` (every type has one).
    pub fn error(&self, error_type: ErrorType) -> Option<&Counter> {
        self.errors.get(&error_type)
    }

    pub fn validation(&self, reason: ValidationReason) -> Option<&Counter> {
        self.validation.get(&reason)
    }
}

/// All model metrics of the inference service. The families are kept so a model
/// version loaded later (upload, rollback, rescan) gets its series the same way, and
/// the series of versions replaced before the last one can be removed ([`retired`]).
#[derive(Debug, Clone)]
pub struct ModelMetrics {
    predictions: Family<ModelVersionStatus, Counter>,
    latency: Family<ModelVersion, ExemplarHist, fn() -> ExemplarHist>,
    queue: Family<ModelOnly, Histogram, HistFn>,
    depth: Family<ModelOnly, Gauge>,
    batch: Family<ModelOnly, Histogram, HistFn>,
    confidence: Family<ModelOnly, Histogram, HistFn>,
    values: ValueHistograms,
    by_class: Family<ModelClass, Counter>,
    errors: Family<ModelErrorType, Counter>,
    validation: Family<ModelReason, Counter>,
    loaded: Family<ModelVersion, Gauge>,
    load_time: Family<ModelOnly, Histogram, HistFn>,
    unknown: Arc<HashMap<ValidationReason, Counter>>,
    retired: Arc<Retired>,
    /// `app_health_status`.
    pub health: Gauge,
}

impl ModelMetrics {
    /// Registers the model metric families; drift comes from [`register_drift`].
    ///
    /// [`register_drift`]: ModelMetrics::register_drift
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            predictions: Family::default(),
            latency: Family::new_with_constructor(|| {
                HistogramWithExemplars::new(LATENCY_BUCKETS.into_iter())
            }),
            queue: Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS)),
            depth: Family::default(),
            batch: Family::new_with_constructor(|| Histogram::new(BATCH_BUCKETS)),
            confidence: Family::new_with_constructor(|| Histogram::new(CONFIDENCE_BUCKETS)),
            values: ValueHistograms::default(),
            by_class: Family::default(),
            errors: Family::default(),
            validation: Family::default(),
            loaded: Family::default(),
            load_time: Family::new_with_constructor(|| Histogram::new(LOAD_BUCKETS)),
            unknown: Arc::new(HashMap::new()),
            retired: Arc::default(),
            health: Gauge::default(),
        };
        let unknown = ValidationReason::all()
            .map(|r| {
                (
                    r,
                    handle(
                        &metrics.validation,
                        &ModelReason {
                            model: UNKNOWN_MODEL.into(),
                            reason: r.as_str(),
                        },
                    ),
                )
            })
            .collect();
        let metrics = Self {
            unknown: Arc::new(unknown),
            ..metrics
        };
        let m = metrics.clone();
        registry.register(
            "predictions",
            "Predictions served, by model, version and outcome",
            m.predictions,
        );
        registry.register(
            "prediction_latency_seconds",
            "Model compute time per batch in seconds",
            m.latency,
        );
        registry.register(
            "prediction_queue_seconds",
            "Time waiting for an inference slot in seconds",
            m.queue,
        );
        registry.register(
            "inference_queue_depth",
            "Requests waiting for an inference slot",
            m.depth,
        );
        registry.register(
            "prediction_batch_size",
            "Instances per prediction request",
            m.batch,
        );
        registry.register(
            "prediction_confidence",
            "Confidence (top probability) of each prediction",
            m.confidence,
        );
        registry.register_collector(Box::new(m.values));
        registry.register(
            "predictions_by_class",
            "Predictions by predicted class",
            m.by_class,
        );
        registry.register(
            "prediction_errors",
            "Failed predictions by error type",
            m.errors,
        );
        registry.register(
            "input_validation_errors",
            "Rejected prediction requests by reason",
            m.validation,
        );
        registry.register(
            "model_loaded",
            "1 if the model version is loaded and serving",
            m.loaded,
        );
        registry.register(
            "model_load_time_seconds",
            "Time to load and optimise a model in seconds",
            m.load_time,
        );
        registry.register(
            "app_health_status",
            "1 when the service is healthy, 0 otherwise",
            m.health,
        );
        metrics
    }

    /// Drift gauges, computed at scrape time from whatever models serve then.
    pub fn register_drift(registry: &mut Registry, models: Models) {
        registry.register_collector(Box::new(DriftCollector { models }));
    }

    /// Makes every series of `model`'s version (so no request can add one later),
    /// marks it loaded and records its load time.
    pub fn serve(&self, model: Arc<LoadedModel>) -> Served {
        let name = model.card.name.clone();
        let version = model.card.version.clone();
        self.retired.revive(&name, &version);
        let mv = ModelVersion {
            model: name.clone(),
            version: version.clone(),
        };
        let mo = ModelOnly {
            model: name.clone(),
        };
        let status = |status| ModelVersionStatus {
            model: name.clone(),
            version: version.clone(),
            status,
        };
        let handles = ModelHandles {
            success: handle(&self.predictions, &status(Status::Success.as_str())),
            error: handle(&self.predictions, &status(Status::Error.as_str())),
            latency: handle(&self.latency, &mv),
            queue: handle(&self.queue, &mo),
            queue_depth: handle(&self.depth, &mo),
            batch_size: handle(&self.batch, &mo),
            confidence: (model.card.task == Task::Classification)
                .then(|| handle(&self.confidence, &mo)),
            value: (model.card.task == Task::Regression).then(|| {
                self.values
                    .get_or_create(&name, &model.card.drift.prediction_edges)
            }),
            by_class: model
                .card
                .labels
                .iter()
                .map(|class| {
                    handle(
                        &self.by_class,
                        &ModelClass {
                            model: name.clone(),
                            class: class.clone(),
                        },
                    )
                })
                .collect(),
            errors: ErrorType::ALL
                .into_iter()
                .map(|t| {
                    let labels = ModelErrorType {
                        model: name.clone(),
                        error_type: t.as_str(),
                    };
                    (t, handle(&self.errors, &labels))
                })
                .collect(),
            validation: ValidationReason::all()
                .map(|r| {
                    let labels = ModelReason {
                        model: name.clone(),
                        reason: r.as_str(),
                    };
                    (r, handle(&self.validation, &labels))
                })
                .collect(),
            loaded: handle(&self.loaded, &mv),
            tally: Tally::default(),
        };
        handles.loaded.set(1);
        handle(&self.load_time, &mo).observe(model.load_duration.as_secs_f64());
        Served { model, handles }
    }

    /// Marks `served`'s version as no longer serving (`model_loaded` 0) and removes the
    /// series of the model's versions replaced before it ([`retired`]).
    pub fn retire(&self, served: &Served) {
        served.handles.loaded.set(0);
        let model = &served.card.name;
        for version in self.retired.retire(model, &served.card.version) {
            let mv = ModelVersion {
                model: model.clone(),
                version,
            };
            for status in [Status::Success, Status::Error] {
                self.predictions.remove(&ModelVersionStatus {
                    model: mv.model.clone(),
                    version: mv.version.clone(),
                    status: status.as_str(),
                });
            }
            self.latency.remove(&mv);
            self.loaded.remove(&mv);
        }
    }

    /// Removes the series `old` made that what serves now (`now`, the model's version
    /// in the new catalog, if it still serves) does not have: its classes the new card
    /// lacks, the histogram of a task the model no longer has, and every model series
    /// when the model no longer serves (its version series are [`Self::retire`]'s).
    /// Without it each upload with other labels, each task switch and each unloaded
    /// model left series behind for as long as the process ran.
    pub fn forget(&self, old: &Served, now: Option<&Served>) {
        let name = &old.card.name;
        let mo = ModelOnly {
            model: name.clone(),
        };
        for class in &old.card.labels {
            if now.is_none_or(|n| !n.card.labels.contains(class)) {
                self.by_class.remove(&ModelClass {
                    model: name.clone(),
                    class: class.clone(),
                });
            }
        }
        let task = now.map(|n| n.card.task);
        match old.card.task {
            Task::Classification if task != Some(Task::Classification) => {
                self.confidence.remove(&mo);
            }
            Task::Regression if task != Some(Task::Regression) => self.values.remove(name),
            _ => {}
        }
        if now.is_some() {
            return;
        }
        for family in [&self.queue, &self.batch, &self.load_time] {
            family.remove(&mo);
        }
        self.depth.remove(&mo);
        for t in ErrorType::ALL {
            self.errors.remove(&ModelErrorType {
                model: name.clone(),
                error_type: t.as_str(),
            });
        }
        // A model named `unknown` shares these series with the requests for no
        // loaded model (`self.unknown`), which must keep them.
        if name == UNKNOWN_MODEL {
            return;
        }
        for r in ValidationReason::all() {
            self.validation.remove(&ModelReason {
                model: name.clone(),
                reason: r.as_str(),
            });
        }
    }

    /// Counts a rejected request against its model (or `unknown`).
    pub fn count_validation(&self, model: Option<&Served>, reason: ValidationReason) {
        let counter = match model {
            Some(served) => served.handles.validation(reason),
            None => self.unknown.get(&reason),
        };
        if let Some(c) = counter {
            c.inc();
        }
    }
}

/// Clones a series' handle out of its family. The family's read guard must be dropped
/// before the next `get_or_create` on the same family, or a missing series (which needs
/// the write lock) would deadlock; a function boundary guarantees that.
fn handle<L, M, C>(family: &Family<L, M, C>, labels: &L) -> M
where
    L: Clone + std::hash::Hash + Eq,
    M: Clone,
    C: prometheus_client::metrics::family::MetricConstructor<M>,
{
    family.get_or_create(labels).clone()
}
