//! Shared state of the inference service: models, limits, scheduler and metrics.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use vigil_model::ModelRegistry;
use vigil_telemetry::{HttpMetrics, Metrics};

use vigil_auth::{Auth, Keyring};

use crate::catalog::{Catalog, Models};
use crate::metrics::ModelMetrics;
use crate::scheduler::Scheduler;
use vigil_forwarder::{Forwarder, ForwarderMetrics};

/// Request limits. Defaults suit the bundled models on a small machine.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Most instances in one request.
    pub max_batch: usize,
    /// Inference slots (blocking threads running models at once).
    pub concurrency: usize,
    /// Requests allowed to wait for a slot before answering 503.
    pub max_queue: usize,
    /// Log request bodies (with secrets redacted).
    pub log_payloads: bool,
    /// Largest model upload (`POST /admin/models/{name}`), in bytes.
    pub upload_limit: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_limit: 1024 * 1024,
            max_batch: 1024,
            concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_queue: 256,
            log_payloads: false,
            upload_limit: 256 * 1024 * 1024,
        }
    }
}

/// Cloned into every handler; all fields are shared.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    /// The models serving now; swapped whole by the model lifecycle.
    pub models: Models,
    pub limits: Limits,
    pub scheduler: Scheduler,
    pub metrics: Metrics,
    pub http: HttpMetrics,
    pub model_metrics: ModelMetrics,
    pub forwarder_metrics: ForwarderMetrics,
    /// API keys in force, the guard's metrics and audit events.
    pub auth: Auth,
    /// Request analytics for `/admin/performance` and `/admin/usage`.
    pub analytics: Arc<vigil_analytics::Analytics>,
    /// The dashboard's history and cached status.
    pub dashboard: Arc<crate::dashboard::Dashboard>,
    /// Where prediction records go, when a collector is configured.
    pub forwarder: OnceLock<Forwarder>,
    /// Uploaded model versions under the data dir (the binary sets it).
    pub lifecycle: OnceLock<crate::lifecycle::Lifecycle>,
    pub started: Instant,
    ready: AtomicBool,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Registers every metric and marks the service ready (models are loaded by now).
    /// No keys: prediction is open, `/admin` answers 401 to everyone.
    pub fn new(models: ModelRegistry, limits: Limits) -> Self {
        Self::with_keys(models, limits, Keyring::default())
    }

    /// As [`AppState::new`], with API keys.
    pub fn with_keys(models: ModelRegistry, limits: Limits, keys: Keyring) -> Self {
        let mut registry = Metrics::base_registry("inference", crate::VERSION);
        let http = HttpMetrics::register(&mut registry);
        let model_metrics = ModelMetrics::register(&mut registry);
        let models = Models::new(Catalog::new(models, &model_metrics), model_metrics.clone());
        ModelMetrics::register_drift(&mut registry, models.clone());
        let forwarder_metrics = ForwarderMetrics::register(&mut registry);
        let auth = Auth::new(keys, &mut registry);
        model_metrics.health.set(1);
        let scheduler = Scheduler::new(limits.concurrency, limits.max_queue, limits.max_batch);
        Self(Arc::new(Inner {
            models,
            limits,
            scheduler,
            metrics: Metrics::new(registry),
            http,
            model_metrics,
            forwarder_metrics,
            auth,
            analytics: Arc::new(vigil_analytics::Analytics::new()),
            dashboard: Arc::default(),
            forwarder: OnceLock::new(),
            lifecycle: OnceLock::new(),
            started: Instant::now(),
            ready: AtomicBool::new(true),
        }))
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Stops advertising readiness (on shutdown) so load balancers drain us first.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }
}
