//! The router. `app` builds the whole service for a state (tests call it with
//! `oneshot`); `vigil_listener::serve` runs it on a listener the caller bound.

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};
use vigil_auth::Role;
use vigil_telemetry::{TelemetryConfig, TelemetryLayer};

use crate::handlers::{admin, analytics, dashboard, events, health, meta, models, predict, v2};
use crate::state::AppState;

/// Telemetry settings of the inference service.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    pub slow_request: Duration,
    pub request_timeout: Option<Duration>,
    /// Feed `/admin/performance` and `/admin/usage` (off only to measure their cost).
    pub analytics: bool,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            slow_request: Duration::from_millis(500),
            request_timeout: Some(Duration::from_secs(30)),
            analytics: true,
        }
    }
}

/// The inference service's routes with telemetry on every one, including the JSON
/// 404 fallback and 405 answers.
pub fn app(state: AppState, config: RouterConfig) -> Router {
    let telemetry_config = TelemetryConfig {
        service: "inference",
        slow_request: config.slow_request,
        request_timeout: config.request_timeout,
    };
    state.dashboard.set_analytics(config.analytics);
    let telemetry = if config.analytics {
        TelemetryLayer::with_observer(
            telemetry_config,
            state.http.clone(),
            state.analytics.clone(),
        )
    } else {
        TelemetryLayer::new(telemetry_config, state.http.clone())
    };
    // The protocol's error shape wraps only the protocol's routes, inside telemetry,
    // whose own answers (timeout, panic) are written in that shape too: the access line
    // and `http_response_size_bytes` then see what is sent. `Router::layer` wraps each
    // route apart: on vigil's own routes the rewrite would cost every request a layer
    // (a boxed future and a service clone) only to pass the answer through.
    let protocol = protocol_routes(&state)
        .layer(axum::middleware::from_fn(v2::protocol_errors))
        .layer(telemetry.answering_errors_with(v2::protocol_answer));
    own_routes(&state)
        .layer(telemetry)
        .merge(protocol)
        .with_state(state)
}

/// The routes alone, without telemetry (benchmarks measure what the layer costs). The
/// auth guard sits inside telemetry, so refused requests are logged and counted too.
pub fn routes(state: &AppState) -> Router<AppState> {
    own_routes(state).merge(protocol_routes(state))
}

/// The Open Inference Protocol's routes (`/v2…`). Unknown paths under `/v2` reach
/// [`own_routes`]' fallback, which answers them in the protocol's shape.
fn protocol_routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/v2/models/{name}/infer", post(v2::infer::infer))
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(v2::infer::infer_version),
        )
        .route_layer(state.auth.require(Role::Predict))
        .route("/v2", get(v2::metadata::server))
        .route("/v2/", get(v2::metadata::server))
        .route("/v2/health/live", get(v2::metadata::live))
        .route("/v2/health/ready", get(v2::metadata::ready))
        .route("/v2/models/{name}", get(v2::metadata::model))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(v2::metadata::model_version),
        )
        .route("/v2/models/{name}/ready", get(v2::metadata::ready_model))
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(v2::metadata::ready_model_version),
        )
        .method_not_allowed_fallback(meta::method_not_allowed)
}

/// Everything but the protocol's routes, with the JSON 404 fallback.
fn own_routes(state: &AppState) -> Router<AppState> {
    let auth = &state.auth;
    // Unknown paths under /admin are refused before they are found missing, so the
    // admin surface cannot be mapped without a key.
    let admin = Router::new()
        .route("/models/{name}", post(admin::upload).delete(admin::unload))
        .route("/models/{name}/versions", get(admin::versions))
        .route("/models/{name}/rollback", post(admin::rollback))
        .route("/performance", get(analytics::performance))
        .route("/usage", get(analytics::usage))
        .route("/events", get(events::events))
        // Uploads carry whole models; the prediction body limit is far too small.
        .layer(DefaultBodyLimit::max(state.limits.upload_limit))
        .fallback(meta::not_found)
        // Set here, under the guard: the outer router's 405 handler would otherwise
        // replace these routes' default one without the guard around it.
        .method_not_allowed_fallback(meta::method_not_allowed)
        .layer(auth.require(Role::Admin));
    Router::new()
        .route("/predict", post(predict::predict))
        .route("/models/{name}/predict", post(predict::predict_model))
        .route_layer(auth.require(Role::Predict))
        .nest("/admin", admin)
        // `/admin/` (trailing slash) is no route of the nested router: refused too.
        .route(
            "/admin/",
            any(meta::not_found).layer(auth.require(Role::Admin)),
        )
        .route("/", get(dashboard::root))
        .route("/dashboard", get(dashboard::page))
        .route("/dashboard/assets/{file}", get(dashboard::asset))
        .route(
            "/dashboard/session",
            get(dashboard::session)
                .post(dashboard::sign_in)
                .delete(dashboard::sign_out),
        )
        .route("/dashboard/api/overview", get(dashboard::overview))
        .route("/models", get(models::list))
        .route("/models/{name}", get(models::get))
        .route("/health", get(health::health))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(meta::metrics))
        .route("/openapi.json", get(meta::openapi))
        .fallback(meta::not_found)
        .method_not_allowed_fallback(meta::method_not_allowed)
}
