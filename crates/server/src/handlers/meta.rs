//! `/metrics`, `/openapi.json`, and the JSON answers for unknown routes (404) and
//! methods (405).

use std::time::SystemTime;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use utoipa::OpenApi;

use crate::error::ApiError;
use crate::state::AppState;

/// Prometheus metrics: text 0.0.4, or OpenMetrics (with exemplars) when asked.
#[utoipa::path(get, path = "/metrics", tag = "observability",
    responses((status = 200, description = "Prometheus text format 0.0.4 or OpenMetrics 1.0", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    vigil_telemetry::probes::metrics_response(&state.metrics, &headers)
}

/// This API as an OpenAPI 3 document.
#[utoipa::path(get, path = "/openapi.json", tag = "observability", responses((status = 200, description = "OpenAPI document")))]
pub async fn openapi() -> Response {
    axum::Json(crate::openapi::ApiDoc::openapi()).into_response()
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

pub fn rfc3339(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}
