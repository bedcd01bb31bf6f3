//! `/admin/performance` and `/admin/usage`: request analytics over a sliding window
//! (`?window=`, 10s to 1h, default 5m), per route and per caller. Admin key required
//! (the guard in front of `/admin`).

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use vigil_analytics::{Performance, Usage, parse_window};
use vigil_telemetry::error_response;

use crate::state::AppState;

/// Most rows of each `/admin/usage` list.
const MAX_TOP: usize = 100;

/// `/admin/performance`'s query. An unknown parameter is refused, as on the
/// dashboard's and the collector's reads: a misspelt `windw=1h` must not quietly
/// answer for the default window.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct WindowQuery {
    /// How far back: `30s`, `5m`, `1h` (10s to 1h; default 5m).
    pub window: Option<String>,
}

/// `/admin/usage`'s query: a window and the length of its lists.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// How far back: `30s`, `5m`, `1h` (10s to 1h; default 5m).
    pub window: Option<String>,
    /// Rows per list, 1 to 100; default 10.
    pub top: Option<usize>,
}

/// A refused query: its code and message (a 422).
struct Invalid(&'static str, String);

impl IntoResponse for Invalid {
    fn into_response(self) -> Response {
        error_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            self.0,
            self.1,
            serde_json::Value::Null,
        )
    }
}

type QueryResult<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

/// The query asked for, or a 422 `invalid_query`.
fn parsed<T>(query: QueryResult<T>) -> Result<T, Invalid> {
    query
        .map(|Query(q)| q)
        .map_err(|e| Invalid("invalid_query", e.body_text()))
}

/// The window asked for (default 5m), or a 422 `invalid_window`.
fn window(asked: Option<&str>) -> Result<std::time::Duration, Invalid> {
    parse_window(asked).map_err(|e| Invalid("invalid_window", e.to_string()))
}

/// The window and list length asked for, or what is wrong with the query.
fn usage_query(query: QueryResult<UsageQuery>) -> Result<(std::time::Duration, usize), Invalid> {
    let q = parsed(query)?;
    let window = window(q.window.as_deref())?;
    let top = q.top.unwrap_or(10);
    if !(1..=MAX_TOP).contains(&top) {
        return Err(Invalid(
            "invalid_query",
            format!("top must be between 1 and {MAX_TOP}"),
        ));
    }
    Ok((window, top))
}

/// Per route over the window: count, errors, error rate, min, avg, max, p50, p95, p99.
#[utoipa::path(get, path = "/admin/performance", tag = "admin", params(WindowQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = Performance), (status = 401, body = vigil_telemetry::ErrorBody),
        (status = 403, body = vigil_telemetry::ErrorBody), (status = 422, body = vigil_telemetry::ErrorBody)))]
pub async fn performance(
    State(state): State<AppState>,
    query: QueryResult<WindowQuery>,
) -> Response {
    match parsed(query).and_then(|q| window(q.window.as_deref())) {
        Ok(window) => Json(state.analytics.performance(window)).into_response(),
        Err(refused) => refused.into_response(),
    }
}

/// The busiest routes and callers (API key names, `anonymous`) over the window.
#[utoipa::path(get, path = "/admin/usage", tag = "admin", params(UsageQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = Usage), (status = 401, body = vigil_telemetry::ErrorBody),
        (status = 403, body = vigil_telemetry::ErrorBody), (status = 422, body = vigil_telemetry::ErrorBody)))]
pub async fn usage(State(state): State<AppState>, query: QueryResult<UsageQuery>) -> Response {
    match usage_query(query) {
        Ok((window, top)) => Json(state.analytics.usage(window, top)).into_response(),
        Err(refused) => refused.into_response(),
    }
}
