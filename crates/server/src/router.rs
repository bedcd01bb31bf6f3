//! The router and the server loop. `app` builds the whole service for a state (tests
//! call it with `oneshot`); `serve` runs it on a listener the caller bound, until the
//! caller's shutdown future completes, then drains in-flight requests.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use vigil_telemetry::{TelemetryConfig, TelemetryLayer};

use crate::handlers::{health, meta, models, predict};
use crate::state::AppState;

/// Telemetry settings of the inference service.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    pub slow_request: Duration,
    pub request_timeout: Option<Duration>,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            slow_request: Duration::from_millis(500),
            request_timeout: Some(Duration::from_secs(30)),
        }
    }
}

/// The inference service's routes with telemetry on every one, including the JSON
/// 404 fallback and 405 answers.
pub fn app(state: AppState, config: RouterConfig) -> Router {
    let telemetry = TelemetryLayer::new(
        TelemetryConfig {
            service: "inference",
            slow_request: config.slow_request,
            request_timeout: config.request_timeout,
        },
        state.http.clone(),
    );
    routes().layer(telemetry).with_state(state)
}

/// The routes alone, without telemetry (benchmarks measure what the layer costs).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/predict", post(predict::predict))
        .route("/models", get(models::list))
        .route("/models/{name}", get(models::get))
        .route("/models/{name}/predict", post(predict::predict_model))
        .route("/health", get(health::health))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(meta::metrics))
        .route("/openapi.json", get(meta::openapi))
        .fallback(meta::not_found)
        .method_not_allowed_fallback(meta::method_not_allowed)
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and
/// waits for in-flight requests to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
