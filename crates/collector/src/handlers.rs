//! The collector's handlers.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Query, Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, Uri, header};
use serde::{Deserialize, Serialize};
use serde_json::json;
use vigil_records::{BodyError, Record, WireRecord, packed, rfc3339_ms};
use vigil_store::{AlertEffect, Cursor, Filter, Incident, ModelStats};
use vigil_telemetry::body::{read_json, read_limited};

use crate::CollectorState;
use crate::error::CollectorError;

/// The `POST /log` encodings, as `Accept-Post` (W3C LDP) lists them.
pub const ACCEPT_POST: &str = "application/json, application/vnd.vigil.records";

/// Most rows one `GET /predictions` page returns.
pub const MAX_PAGE: u32 = 1000;

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn query<T: serde::de::DeserializeOwned>(uri: &Uri) -> Result<T, CollectorError> {
    Query::<T>::try_from_uri(uri)
        .map(|Query(q)| q)
        .map_err(|e| CollectorError::InvalidQuery(e.body_text()))
}

/// Answer of `POST /log`.
#[derive(Debug, Serialize, Deserialize)]
pub struct LogAccepted {
    pub accepted: u64,
    pub duplicates: u64,
}

/// `POST /log`: one record or `{"records": [...]}`, or a binary batch
/// ([`vigil_records::packed`]); stored once each, all or nothing.
pub async fn log(
    State(state): State<CollectorState>,
    req: Request,
) -> Result<Response, CollectorError> {
    let binary = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(packed::is_content_type);
    let (limit, max_records) = (state.config.body_limit, state.config.max_records);
    let parsed = if binary {
        packed::parse_body(&read_limited(req, limit).await?, max_records)
    } else {
        vigil_records::json::parse_body(&read_json(req, limit).await?, max_records)
    };
    let records = parsed.map_err(|e| match e {
        BodyError::Json(m) => CollectorError::MalformedJson(m),
        BodyError::Shape(m) => CollectorError::Invalid(m),
        BodyError::Version(m) => CollectorError::UnsupportedVersion(m),
        BodyError::Records(errors) => CollectorError::InvalidRecords(errors),
    })?;
    let inserted = state
        .ingest(&records)
        .await
        .map_err(CollectorError::Unavailable)?;
    Ok((
        StatusCode::ACCEPTED,
        // Tells senders (vigil's forwarder) they may switch to the binary encoding.
        [(header::HeaderName::from_static("accept-post"), ACCEPT_POST)],
        Json(LogAccepted {
            accepted: inserted.accepted,
            duplicates: inserted.duplicates,
        }),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictionsQuery {
    model: Option<String>,
    label: Option<String>,
    defect: Option<bool>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PredictionsPage {
    pub predictions: Vec<WireRecord>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn parse_time(field: &str, value: &str) -> Result<i64, CollectorError> {
    let t = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            CollectorError::InvalidQuery(format!("{field} must be an RFC 3339 date-time"))
        })?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

fn encode_cursor(r: &Record) -> String {
    format!("{}~{}", r.ts_ms, r.prediction_id)
}

fn decode_cursor(s: &str) -> Result<Cursor, CollectorError> {
    let (ts, id) = s
        .split_once('~')
        .ok_or_else(|| CollectorError::InvalidQuery("malformed cursor".into()))?;
    let ts_ms = ts
        .parse()
        .map_err(|_| CollectorError::InvalidQuery("malformed cursor".into()))?;
    Ok(Cursor {
        ts_ms,
        prediction_id: id.to_owned(),
    })
}

/// `GET /predictions`: newest first, filtered, paged by cursor.
pub async fn predictions(
    State(state): State<CollectorState>,
    uri: Uri,
) -> Result<Json<PredictionsPage>, CollectorError> {
    let q: PredictionsQuery = query(&uri)?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_PAGE {
        return Err(CollectorError::InvalidQuery(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let filter = Filter {
        model: q.model,
        label: q.label,
        defect: q.defect,
        since_ms: q
            .since
            .as_deref()
            .map(|s| parse_time("since", s))
            .transpose()?,
        until_ms: q
            .until
            .as_deref()
            .map(|s| parse_time("until", s))
            .transpose()?,
    };
    let cursor = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let rows = state
        .store
        .predictions(&filter, cursor.as_ref(), limit)
        .await
        .map_err(CollectorError::Unavailable)?;
    let next_cursor = (rows.len() == limit as usize)
        .then(|| rows.last().map(encode_cursor))
        .flatten();
    Ok(Json(PredictionsPage {
        predictions: rows.into_iter().map(WireRecord::from_stored).collect(),
        next_cursor,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsQuery {
    /// `30s`, `15m`, `1h`, `7d`; default 1h.
    window: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StatsBody {
    pub window_seconds: u64,
    pub since: String,
    pub until: String,
    pub models: Vec<serde_json::Value>,
}

fn parse_window(s: &str) -> Result<u64, CollectorError> {
    let bad = || CollectorError::InvalidQuery("window must look like 30s, 15m, 1h or 7d".into());
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(bad()),
    };
    if secs == 0 || secs > 366 * 86_400 {
        Err(bad())
    } else {
        Ok(secs)
    }
}

/// `GET /stats?window=1h`: per model count, defects, defect rate, mean confidence, label mix.
pub async fn stats(
    State(state): State<CollectorState>,
    uri: Uri,
) -> Result<Json<StatsBody>, CollectorError> {
    let q: StatsQuery = query(&uri)?;
    let window = parse_window(q.window.as_deref().unwrap_or("1h"))?;
    let until = now_ms();
    let since = until - (window as i64) * 1000;
    let stats: Vec<ModelStats> = state
        .store
        .stats(since, until + 1)
        .await
        .map_err(CollectorError::Unavailable)?;
    Ok(Json(StatsBody {
        window_seconds: window,
        since: rfc3339_ms(since),
        until: rfc3339_ms(until),
        models: stats
            .into_iter()
            .map(|s| serde_json::to_value(s).unwrap_or_default())
            .collect(),
    }))
}

/// Alertmanager's webhook payload, version 4 (the fields vigil reads).
#[derive(Debug, Deserialize)]
struct Webhook {
    version: String,
    #[serde(default)]
    alerts: Vec<WebhookAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookAlert {
    status: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    starts_at: Option<String>,
    ends_at: Option<String>,
    fingerprint: String,
}

/// `POST /alerts`: each alert, by fingerprint, opens or resolves an incident.
pub async fn alerts(
    State(state): State<CollectorState>,
    req: Request,
) -> Result<Response, CollectorError> {
    let bytes = read_json(req, state.config.body_limit).await?;
    let hook: Webhook = serde_json::from_slice(&bytes).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            CollectorError::MalformedJson(e.to_string())
        } else {
            CollectorError::Invalid(e.to_string())
        }
    })?;
    if hook.version != "4" {
        return Err(CollectorError::Invalid(format!(
            "webhook payload version {:?}, expected \"4\"",
            hook.version
        )));
    }
    for (i, a) in hook.alerts.iter().enumerate() {
        if a.fingerprint.is_empty()
            || a.fingerprint.len() > 128
            || !a.labels.contains_key("alertname")
        {
            return Err(CollectorError::Invalid(format!(
                "alert {i} needs a fingerprint and an alertname label"
            )));
        }
        if a.status != "firing" && a.status != "resolved" {
            return Err(CollectorError::Invalid(format!(
                "alert {i} has status {:?}",
                a.status
            )));
        }
    }
    let (mut opened, mut resolved) = (0u64, 0u64);
    for a in &hook.alerts {
        let alertname = a.labels.get("alertname").cloned().unwrap_or_default();
        let severity = a
            .labels
            .get("severity")
            .cloned()
            .unwrap_or_else(|| "none".into());
        if a.status == "firing" {
            let incident = Incident {
                id: uuid::Uuid::new_v4().to_string(),
                fingerprint: a.fingerprint.clone(),
                alertname: alertname.clone(),
                severity: severity.clone(),
                status: "open".into(),
                summary: a.annotations.get("summary").cloned(),
                labels: json!(a.labels),
                starts_at_ms: a
                    .starts_at
                    .as_deref()
                    .and_then(|s| parse_time("startsAt", s).ok())
                    .unwrap_or_else(now_ms),
                opened_ms: now_ms(),
                resolved_ms: None,
            };
            if state
                .store
                .alert_firing(&incident)
                .await
                .map_err(CollectorError::Unavailable)?
                == AlertEffect::Opened
            {
                opened += 1;
                let labels = crate::metrics::IncidentLabels {
                    alertname: state.collector.alertnames.admit(&alertname),
                    severity: state.collector.severities.admit(&severity),
                };
                state.collector.incidents.get_or_create(&labels).inc();
                tracing::warn!(target: "vigil::audit", alertname, severity, fingerprint = %a.fingerprint, "incident_opened");
            }
        } else {
            let at = a
                .ends_at
                .as_deref()
                .and_then(|s| parse_time("endsAt", s).ok())
                .unwrap_or_else(now_ms);
            if state
                .store
                .alert_resolved(&a.fingerprint, at)
                .await
                .map_err(CollectorError::Unavailable)?
                == AlertEffect::Resolved
            {
                resolved += 1;
                tracing::info!(target: "vigil::audit", alertname, fingerprint = %a.fingerprint, "incident_resolved");
            }
        }
    }
    if let Ok(open) = state.store.open_incidents().await {
        state.collector.incidents_open.set(open as i64);
    }
    Ok((
        StatusCode::OK,
        Json(json!({"opened": opened, "resolved": resolved, "alerts": hook.alerts.len()})),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IncidentsQuery {
    status: Option<String>,
    limit: Option<u32>,
}

/// `GET /incidents?status=open|resolved`.
pub async fn incidents(
    State(state): State<CollectorState>,
    uri: Uri,
) -> Result<Response, CollectorError> {
    let q: IncidentsQuery = query(&uri)?;
    if let Some(s) = q.status.as_deref()
        && s != "open"
        && s != "resolved"
    {
        return Err(CollectorError::InvalidQuery(
            "status must be open or resolved".into(),
        ));
    }
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let list = state
        .store
        .incidents(q.status.as_deref(), limit)
        .await
        .map_err(CollectorError::Unavailable)?;
    let list: Vec<_> = list.into_iter().map(incident_json).collect();
    Ok(Json(json!({ "incidents": list })).into_response())
}

/// An incident as `GET /incidents` shows it (the dashboard shows the same).
pub fn incident_json(i: Incident) -> serde_json::Value {
    json!({
        "id": i.id, "fingerprint": i.fingerprint, "alertname": i.alertname, "severity": i.severity,
        "status": i.status, "summary": i.summary, "labels": i.labels,
        "starts_at": rfc3339_ms(i.starts_at_ms), "opened_at": rfc3339_ms(i.opened_ms),
        "resolved_at": i.resolved_ms.map(rfc3339_ms),
    })
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
    vigil_telemetry::probes::ready_response(state.probe_database().await)
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
