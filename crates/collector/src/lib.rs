//! The prediction-logging service (docs/reference.md §5): `POST /log` stores every prediction record
//! exactly once, `GET /predictions` and `GET /stats` read them back, `POST /alerts`
//! turns Alertmanager webhooks into incidents, and `/health` and `/metrics` say
//! whether the database is there. The binary binds the socket; `app` is the router.

pub mod error;
pub mod handlers;
mod ingest;
pub mod metrics;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{get, post};
use vigil_store::Store;
use vigil_telemetry::{HttpMetrics, Metrics, TelemetryConfig, TelemetryLayer};

use crate::metrics::CollectorMetrics;

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
}

impl Default for CollectorConfig {
    fn default() -> Self {
        Self {
            body_limit: 16 * 1024 * 1024,
            max_records: 10_000,
            slow_write: Duration::from_secs(1),
            slow_request: Duration::from_millis(500),
            request_timeout: Some(Duration::from_secs(30)),
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
    pub started: Instant,
}

impl std::ops::Deref for CollectorState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl CollectorState {
    pub fn new(store: Store, config: CollectorConfig) -> Self {
        let mut registry = Metrics::base_registry("collector", env!("CARGO_PKG_VERSION"));
        let http = HttpMetrics::register(&mut registry);
        let collector = CollectorMetrics::register(&mut registry);
        Self(Arc::new(Inner {
            store,
            config,
            metrics: Metrics::new(registry),
            http,
            collector,
            started: Instant::now(),
        }))
    }

    /// Checks the database and records the answer in `logging_db_initialized`.
    pub async fn probe_database(&self) -> bool {
        let up = self.store.ping().await;
        self.collector.db_initialized.set(i64::from(up));
        if up && let Ok(open) = self.store.open_incidents().await {
            self.collector.incidents_open.set(open as i64);
        }
        up
    }

    /// Probes the database every `every` until the returned handle is dropped or
    /// aborted, so `logging_db_initialized` is current even when nobody calls `/health`.
    pub fn spawn_probe(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let state = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let was = state.collector.db_initialized.get();
                let up = state.probe_database().await;
                if was == 1 && !up {
                    tracing::error!(backend = state.store.backend(), "database_unreachable");
                } else if was == 0 && up {
                    tracing::info!(backend = state.store.backend(), "database_reachable");
                }
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
        .route("/health", get(handlers::health))
        .route("/health/live", get(vigil_telemetry::probes::live))
        .route("/health/ready", get(handlers::ready))
        .route("/metrics", get(handlers::metrics))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(telemetry)
        .with_state(state)
}
