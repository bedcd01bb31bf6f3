//! The prediction-logging service (docs/reference.md §5): `POST /log` stores every prediction record
//! exactly once, `GET /predictions` and `GET /stats` read them back, `POST /feedback`
//! joins ground truth with predictions and `GET /quality` grades the models by it,
//! `PUT /models/{name}` is where inference services announce their cards, `POST /alerts`
//! turns Alertmanager webhooks into incidents, and `/health` and `/metrics` say
//! whether the database is there. The binary binds the socket; `app` is the router.

pub mod cards;
pub mod error;
pub mod feedback;
pub mod handlers;
mod ingest;
pub mod metrics;
pub mod quality;
mod stored_lines;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{get, post, put};
use vigil_store::Store;
use vigil_telemetry::{HttpMetrics, Metrics, TelemetryConfig, TelemetryLayer};

use crate::cards::Cards;
use crate::feedback::{FeedbackConfig, FeedbackState};
use crate::metrics::CollectorMetrics;
use crate::quality::{FeedbackMetrics, QualityCollector, QualityWindow};

/// How often pending labels past their TTL are dropped.
const PENDING_EXPIRY_EVERY: Duration = Duration::from_secs(60);

/// Limits and thresholds of the collector.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    /// Largest `POST /log` or `POST /alerts` body, in bytes.
    pub body_limit: usize,
    /// Most records in one `POST /log`.
    pub max_records: usize,
    /// Database writes slower than this log a `slow_db_write` warning.
    pub slow_write: Duration,
    pub slow_request: Duration,
    pub request_timeout: Option<Duration>,
    pub feedback: FeedbackConfig,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        Self {
            body_limit: 16 * 1024 * 1024,
            max_records: 10_000,
            slow_write: Duration::from_secs(1),
            slow_request: Duration::from_millis(500),
            request_timeout: Some(Duration::from_secs(30)),
            feedback: FeedbackConfig::default(),
        }
    }
}

/// Shared by every handler.
#[derive(Debug, Clone)]
pub struct CollectorState(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    pub store: Store,
    pub config: CollectorConfig,
    pub metrics: Metrics,
    pub http: HttpMetrics,
    pub collector: CollectorMetrics,
    pub feedback_metrics: FeedbackMetrics,
    /// The cards inference services announced.
    pub cards: Arc<Cards>,
    /// Ground-truth quality over the quality window, for the gauges.
    pub quality: Arc<QualityWindow>,
    pub feedback: FeedbackState,
    pub started: Instant,
    /// Cleared on shutdown, so `/health/ready` answers 503 while the process drains.
    ready: AtomicBool,
    /// The last write (an ingest, or the probe's own) committed: a database that
    /// answers reads but takes no write is down (see [`CollectorState::probe_database`]).
    writable: AtomicBool,
    /// The runtime the collector was made on: work it spawns (the label join after an
    /// ingest) runs there, whichever thread ingested (`vigil up`'s forwarder has a
    /// runtime of its own; the pool's connections go back to the pool through tasks
    /// on the runtime that used them).
    pub runtime: tokio::runtime::Handle,
}

impl std::ops::Deref for CollectorState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl CollectorState {
    /// Call it within the runtime that is to serve the collector.
    pub fn new(store: Store, config: CollectorConfig) -> Self {
        let mut registry = Metrics::base_registry("collector", env!("CARGO_PKG_VERSION"));
        let http = HttpMetrics::register(&mut registry);
        let collector = CollectorMetrics::register(&mut registry);
        let feedback_metrics = FeedbackMetrics::register(&mut registry);
        let cards = Arc::new(Cards::default());
        let quality = Arc::new(QualityWindow::new(config.feedback.quality_window));
        registry.register_collector(Box::new(QualityCollector {
            window: quality.clone(),
            cards: cards.clone(),
            models: collector.models.clone(),
        }));
        Self(Arc::new(Inner {
            store,
            config,
            metrics: Metrics::new(registry),
            http,
            collector,
            feedback_metrics,
            cards,
            quality,
            feedback: FeedbackState::default(),
            started: Instant::now(),
            ready: AtomicBool::new(true),
            writable: AtomicBool::new(true),
            runtime: tokio::runtime::Handle::current(),
        }))
    }

    /// Whether the service still takes new work (cleared on shutdown).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Stops advertising readiness (on shutdown) so load balancers drain us first.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Checks the database and records the answer in `logging_db_initialized`: up when
    /// it answers and the last write committed. A read alone does not do: a locked file,
    /// a full disk or a read-only volume answers `SELECT 1` while nothing can be stored.
    /// Health checks read the write state rather than write themselves (the
    /// background probe writes every few seconds, [`CollectorState::spawn_probe`]).
    pub async fn probe_database(&self) -> bool {
        let up = self.writable.load(Ordering::Acquire) && self.store.ping().await;
        self.collector.db_initialized.set(i64::from(up));
        if up && let Ok(open) = self.store.open_incidents().await {
            self.collector.incidents_open.set(open as i64);
        }
        up
    }

    /// Whether a write committed now, or failed: the ingest says so after each
    /// write, the background probe after its own.
    pub(crate) fn set_writable(&self, writable: bool) {
        self.writable.store(writable, Ordering::Release);
    }

    /// Probes the database every `every` until the returned handle is dropped or
    /// aborted, with a write of its own (`Store::write_probe`), so
    /// `logging_db_initialized` is current even when nobody writes or calls `/health`;
    /// once a minute, also expires pending labels.
    pub fn spawn_probe(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let state = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_expiry = Instant::now();
            let mut was_up = true;
            loop {
                tick.tick().await;
                if let Err(e) = state.load_feedback().await {
                    tracing::warn!(error = %e, "feedback_load_failed");
                }
                if last_expiry.elapsed() >= PENDING_EXPIRY_EVERY {
                    last_expiry = Instant::now();
                    state.expire_pending().await;
                }
                let written = state.store.write_probe(handlers::now_ms()).await;
                state.set_writable(written.is_ok());
                let up = state.probe_database().await;
                // Compared with the probe's own last view, not the gauge: a failed
                // ingest sets the gauge to 0 first, and the outage went unlogged.
                if was_up && !up {
                    let error = written.err().map(|e| e.to_string());
                    tracing::error!(
                        backend = state.store.backend(),
                        error,
                        "database_unreachable"
                    );
                } else if !was_up && up {
                    tracing::info!(backend = state.store.backend(), "database_reachable");
                }
                was_up = up;
            }
        })
    }
}

/// The collector's routes with telemetry on every one.
pub fn app(state: CollectorState) -> Router {
    let telemetry = TelemetryLayer::new(
        TelemetryConfig {
            service: "collector",
            slow_request: state.config.slow_request,
            request_timeout: state.config.request_timeout,
        },
        state.http.clone(),
    );
    Router::new()
        .route("/log", post(handlers::log))
        .route("/predictions", get(handlers::predictions))
        .route("/stats", get(handlers::stats))
        .route("/alerts", post(handlers::alerts))
        .route("/incidents", get(handlers::incidents))
        .route("/feedback", post(handlers::feedback))
        .route("/quality", get(handlers::quality))
        .route("/models", get(handlers::cards))
        .route("/models/{name}", put(handlers::put_card))
        .route("/health", get(handlers::health))
        .route("/health/live", get(vigil_telemetry::probes::live))
        .route("/health/ready", get(handlers::ready))
        .route("/metrics", get(handlers::metrics))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(telemetry)
        .with_state(state)
}
