//! Health: `/health` (detailed, 200 or 503), `/health/live` and `/health/ready`
//! (Kubernetes probes: live = the process answers, ready = models loaded and not
//! shutting down).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::state::AppState;

/// One component's health.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Check {
    /// `pass`, `warn` or `fail`; only `fail` makes the service unhealthy.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `healthy` or `unhealthy`.
    pub status: String,
    pub checks: BTreeMap<String, Check>,
    pub uptime_seconds: f64,
    pub version: String,
}

pub use vigil_telemetry::probes::Probe;

/// Overall health with per-component checks.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn health(State(state): State<AppState>) -> Response {
    let mut checks = BTreeMap::new();
    let loaded = state.models.load().len();
    checks.insert(
        "models".to_owned(),
        Check {
            status: if loaded > 0 { "pass" } else { "fail" }.into(),
            detail: Some(format!("{loaded} loaded")),
        },
    );
    // A full queue sheds load with 503s on its own; it is reported, not a failure of
    // the service (which would only make orchestrators restart a busy pod).
    let waiting = state.scheduler.waiting();
    let saturated = state.limits.max_queue > 0 && waiting >= state.limits.max_queue;
    checks.insert(
        "inference_queue".to_owned(),
        Check {
            status: if saturated { "warn" } else { "pass" }.into(),
            detail: Some(format!("{waiting} waiting of {}", state.limits.max_queue)),
        },
    );
    let healthy = checks.values().all(|c| c.status != "fail");
    state.model_metrics.health.set(i64::from(healthy));
    let body = Health {
        status: if healthy { "healthy" } else { "unhealthy" }.into(),
        checks,
        uptime_seconds: (state.started.elapsed().as_secs_f64() * 1e3).round() / 1e3,
        version: crate::VERSION.into(),
    };
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// Liveness: the process is up and answering.
#[utoipa::path(get, path = "/health/live", tag = "health", responses((status = 200, body = Probe)))]
pub async fn live() -> axum::Json<Probe> {
    vigil_telemetry::probes::live().await
}

/// Readiness: models are loaded and the service is not draining.
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses((status = 200, body = Probe), (status = 503, body = Probe)))]
pub async fn ready(State(state): State<AppState>) -> Response {
    vigil_telemetry::probes::ready_response(state.is_ready() && !state.models.load().is_empty())
}
