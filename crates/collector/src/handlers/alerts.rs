//! Alertmanager in, incidents out: `POST /alerts` opens and resolves incidents by
//! fingerprint, `GET /incidents` lists them.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, Uri};
use serde::Deserialize;
use serde_json::json;
use vigil_records::rfc3339_ms;
use vigil_store::{AlertEffect, Incident};

use super::json_body;
use super::read::MAX_PAGE;
use super::{now_ms, parse_time, query};
use crate::CollectorState;
use crate::error::CollectorError;

/// Alertmanager's webhook payload, version 4 (the fields vigil reads).
#[derive(Debug, Deserialize)]
struct Webhook {
    version: String,
    #[serde(default, deserialize_with = "vigil_json_body::objects")]
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
    let hook: Webhook = json_body(req, state.config.body_limit).await?;
    if hook.version != "4" {
        return Err(CollectorError::Invalid(format!(
            "webhook payload version {:?}, expected \"4\"",
            hook.version
        )));
    }
    // Every alert is checked before any is stored: a refused notification changes
    // nothing, and Alertmanager's retry of a fixed one starts from the same state.
    for (i, a) in hook.alerts.iter().enumerate() {
        if a.fingerprint.is_empty()
            || a.fingerprint.len() > 128
            || a.labels.get("alertname").is_none_or(String::is_empty)
        {
            return Err(CollectorError::Invalid(format!(
                "alert {i} needs a fingerprint and an alertname label"
            )));
        }
        // Text columns cannot hold NUL (PostgreSQL refuses it): refused here, as the
        // client's error, not met as a database error.
        let mut text = [&a.labels, &a.annotations]
            .into_iter()
            .flat_map(|m| m.iter().flat_map(|(k, v)| [k, v]))
            .chain([&a.fingerprint]);
        if text.any(|s| s.contains('\0')) {
            return Err(CollectorError::Invalid(format!(
                "alert {i} holds a NUL character"
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
