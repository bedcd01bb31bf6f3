//! What every vigil service answers the same way: `GET /metrics` (text 0.0.4, or
//! OpenMetrics when the `Accept` header asks for it) and the Kubernetes probes.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};

use crate::Metrics;

/// A probe's answer.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Probe {
    /// `alive`, `ready` or `not_ready`.
    pub status: String,
}

/// `GET /metrics` of a service's registry.
pub fn metrics_response(metrics: &Metrics, headers: &HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let (body, content_type) = metrics.render(accept);
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

/// `GET /health/live`: the process is up and answering.
pub async fn live() -> Json<Probe> {
    Json(Probe {
        status: "alive".into(),
    })
}

/// `GET /health/ready`: 200 `ready`, or 503 `not_ready` (with `Retry-After`, as every
/// 503 of vigil's).
pub fn ready_response(ready: bool) -> Response {
    if ready {
        (
            StatusCode::OK,
            Json(Probe {
                status: "ready".into(),
            }),
        )
            .into_response()
    } else {
        let mut response = (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Probe {
                status: "not_ready".into(),
            }),
        )
            .into_response();
        crate::error::retry_after(&mut response);
        response
    }
}
