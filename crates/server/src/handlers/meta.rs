//! `/metrics`, `/openapi.json`, and the JSON answers for unknown routes (404) and
//! methods (405).

use std::sync::OnceLock;
use std::time::SystemTime;

use bytes::Bytes;

use axum::extract::{OriginalUri, State};
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
    // Built and serialized once: the document is fixed for the build, and building it
    // per request held up the other connections of the request's connection thread.
    static DOCUMENT: OnceLock<Bytes> = OnceLock::new();
    let body = DOCUMENT
        .get_or_init(|| {
            serde_json::to_vec(&crate::openapi::ApiDoc::openapi())
                .expect("the OpenAPI document serializes")
                .into()
        })
        .clone();
    ([(http::header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// 404 for an unknown route; under `/v2` in the protocol's error shape.
pub async fn not_found(uri: OriginalUri) -> Response {
    answer(&uri, ApiError::NotFound)
}

/// 405 for a known route and another method; under `/v2` in the protocol's shape.
pub async fn method_not_allowed(uri: OriginalUri) -> Response {
    answer(&uri, ApiError::MethodNotAllowed)
}

fn answer(uri: &OriginalUri, error: ApiError) -> Response {
    if crate::handlers::v2::is_v2(uri.path()) {
        crate::handlers::v2::V2Error(error).into_response()
    } else {
        error.into_response()
    }
}

pub fn rfc3339(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}
