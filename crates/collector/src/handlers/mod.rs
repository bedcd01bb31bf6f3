//! The collector's handlers, one file per concern; the helpers they share live here.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, Uri};
use serde_json::json;

use crate::CollectorState;
use crate::error::CollectorError;

mod alerts;
mod cards;
mod feedback;
mod log;
mod quality;
mod read;

pub use alerts::{alerts, incident_json, incidents};
pub use cards::{cards, put_card};
pub use feedback::{MAX_FUTURE_MS, feedback};
pub use log::{ACCEPT_POST, LogAccepted, log};
pub use quality::{Coverage, ModelQuality, QualityBody, quality};
pub use read::{MAX_PAGE, MAX_PAGE_BYTES, PredictionsPage, StatsBody, predictions, stats};

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A JSON body (at most `limit` bytes) as `T`: 400 when it is not JSON, 422 when it
/// is JSON of another shape (anything but an object, even where `T` would take it).
async fn json_body<T: serde::de::DeserializeOwned>(
    req: axum::extract::Request,
    limit: usize,
) -> Result<T, CollectorError> {
    let bytes = vigil_telemetry::body::read_json(req, limit).await?;
    let parsed = serde_json::from_slice(&bytes).map_err(|e| {
        let e = vigil_json_body::syntax_first(&bytes, e);
        if e.is_syntax() || e.is_eof() {
            CollectorError::MalformedJson(e.to_string())
        } else if vigil_json_body::not_an_object(&bytes, &e) {
            CollectorError::Invalid(vigil_json_body::NOT_AN_OBJECT.into())
        } else {
            CollectorError::Invalid(e.to_string())
        }
    })?;
    if !vigil_json_body::is_object(&bytes) {
        return Err(CollectorError::Invalid(
            vigil_json_body::NOT_AN_OBJECT.into(),
        ));
    }
    Ok(parsed)
}

fn query<T: serde::de::DeserializeOwned>(uri: &Uri) -> Result<T, CollectorError> {
    let bad =
        |e: axum::extract::rejection::QueryRejection| CollectorError::InvalidQuery(e.body_text());
    // No model, label or cursor holds a control character, and PostgreSQL cannot even
    // compare text with a NUL in it (an error, which would be a 5xx for bad input).
    // Decoding is lossy (invalid UTF-8 becomes U+FFFD), so `model=%ff` would be read
    // as a model named "\u{fffd}": refused as malformed instead, like a bad path.
    let raw = uri.query().unwrap_or_default();
    if percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .is_err()
    {
        return Err(CollectorError::InvalidQuery(
            "query parameters must be percent-encoded UTF-8".into(),
        ));
    }
    let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri).map_err(bad)?;
    if pairs
        .iter()
        .any(|(k, v)| k.contains(char::is_control) || v.contains(char::is_control))
    {
        return Err(CollectorError::InvalidQuery(
            "query parameters must not hold control characters".into(),
        ));
    }
    Query::<T>::try_from_uri(uri).map(|Query(q)| q).map_err(bad)
}

fn parse_time(field: &str, value: &str) -> Result<i64, CollectorError> {
    vigil_records::parse_rfc3339_ms(value).ok_or_else(|| {
        CollectorError::InvalidQuery(format!(
            "{field} must be an RFC 3339 date-time in the years 0000-9999 (UTC)"
        ))
    })
}

/// A `?window=` in whole seconds (rounded up), 1 s to 366 days: a duration as
/// humantime reads it (`30s`, `15m`, `1h 30m`, `7d`), as the inference service's
/// analytics windows are.
fn parse_window(s: &str) -> Result<u64, CollectorError> {
    let bad = || {
        CollectorError::InvalidQuery(
            "window must be a duration like 30s, 15m, 1h or 7d, from 1s to 366d".into(),
        )
    };
    let window = humantime::parse_duration(s.trim()).map_err(|_| bad())?;
    let secs = window.as_nanos().div_ceil(1_000_000_000);
    if secs == 0 || secs > 366 * 86_400 {
        Err(bad())
    } else {
        Ok(secs as u64)
    }
}

/// `/health`: 503 while the database does not answer.
pub async fn health(State(state): State<CollectorState>) -> Response {
    let up = state.probe_database().await;
    let body = json!({
        "status": if up { "healthy" } else { "unhealthy" },
        "checks": { "database": { "status": if up { "pass" } else { "fail" }, "backend": state.store.backend() } },
        "uptime_seconds": (state.started.elapsed().as_secs_f64() * 1e3).round() / 1e3,
        "version": env!("CARGO_PKG_VERSION"),
    });
    let status = if up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// Ready when the database answers: a collector that cannot store should not get traffic.
pub async fn ready(State(state): State<CollectorState>) -> Response {
    // A draining collector is not ready, whatever its database says.
    vigil_telemetry::probes::ready_response(state.is_ready() && state.probe_database().await)
}

pub async fn metrics(State(state): State<CollectorState>, headers: HeaderMap) -> Response {
    vigil_telemetry::probes::metrics_response(&state.metrics, &headers)
}

pub async fn not_found() -> CollectorError {
    CollectorError::NotFound
}

pub async fn method_not_allowed() -> CollectorError {
    CollectorError::MethodNotAllowed
}
