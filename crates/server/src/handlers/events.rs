//! `GET /admin/events`: the last warnings and errors the process logged (both services
//! under `vigil up`), newest first, as the log lines themselves, so each carries its
//! `request_id` and `trace_id` to look the request up. Admin key required.

use axum::Json;
use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;
use vigil_telemetry::recent::RecentEvents;

#[derive(Debug, Serialize, ToSchema)]
pub struct Events {
    /// Log lines (JSON objects, §6 of the reference), newest first, at most 50.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Box<RawValue>>,
}

/// The last warnings and errors.
#[utoipa::path(get, path = "/admin/events", tag = "admin",
    security(("bearer" = []), ("api_key" = [])),
    responses((status = 200, body = Events), (status = 401, body = vigil_telemetry::ErrorBody),
        (status = 403, body = vigil_telemetry::ErrorBody)))]
pub async fn events() -> Json<Events> {
    Json(Events { events: recent() })
}

/// The kept warning and error lines, newest first (the dashboard shows them too).
pub fn recent() -> Vec<Box<RawValue>> {
    RecentEvents::global()
        .newest_first()
        .into_iter()
        // Every kept line is a JSON object the logger wrote; skip one that is not.
        .filter_map(|line| RawValue::from_string(line).ok())
        .collect()
}
