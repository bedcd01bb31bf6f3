//! Incidents: a firing alert opens one per fingerprint, its resolution closes it.

use serde::Serialize;
use sqlx::{QueryBuilder, Row};

use crate::{Store, StoreError};

/// An incident: one firing alert (by fingerprint) until it resolves.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    pub id: String,
    pub fingerprint: String,
    pub alertname: String,
    pub severity: String,
    pub status: String,
    pub summary: Option<String>,
    /// The alert's labels as a JSON object.
    pub labels: serde_json::Value,
    pub starts_at_ms: i64,
    pub opened_ms: i64,
    pub resolved_ms: Option<i64>,
}

/// What an alert did to the incidents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertEffect {
    Opened,
    AlreadyOpen,
    Resolved,
    NothingOpen,
}

impl Store {
    /// A firing alert opens an incident for its fingerprint unless one is open.
    pub async fn alert_firing(&self, incident: &Incident) -> Result<AlertEffect, StoreError> {
        // One statement: the unique index on open incidents (migration 0006) makes a
        // second one for the fingerprint a no-op, also when two notifications of the
        // alert race (a check first and an insert after let both in on PostgreSQL).
        let inserted = with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO incidents (id, fingerprint, alertname, severity, status, summary, labels, \
                 starts_at_ms, opened_ms, resolved_ms) VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $8, NULL) \
                 ON CONFLICT (fingerprint) WHERE status = 'open' DO NOTHING",
            )
            .bind(incident.id.clone())
            .bind(incident.fingerprint.clone())
            .bind(incident.alertname.clone())
            .bind(incident.severity.clone())
            .bind(incident.summary.clone())
            .bind(incident.labels.to_string())
            .bind(incident.starts_at_ms)
            .bind(incident.opened_ms)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(if inserted > 0 {
            AlertEffect::Opened
        } else {
            AlertEffect::AlreadyOpen
        })
    }

    /// A resolved alert closes its fingerprint's open incident, if there is one.
    pub async fn alert_resolved(
        &self,
        fingerprint: &str,
        resolved_ms: i64,
    ) -> Result<AlertEffect, StoreError> {
        let changed = with_pool!(self, pool => {
            sqlx::query("UPDATE incidents SET status = 'resolved', resolved_ms = $1 WHERE fingerprint = $2 AND status = 'open'")
                .bind(resolved_ms)
                .bind(fingerprint.to_owned())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(if changed > 0 {
            AlertEffect::Resolved
        } else {
            AlertEffect::NothingOpen
        })
    }

    /// Incidents, newest first, optionally only `open` or `resolved` ones.
    pub async fn incidents(
        &self,
        status: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Incident>, StoreError> {
        let rows = with_pool!(self, pool => {
            let mut q = QueryBuilder::new(
                "SELECT id, fingerprint, alertname, severity, status, summary, labels, starts_at_ms, opened_ms, \
                 resolved_ms FROM incidents WHERE 1=1",
            );
            if let Some(s) = status {
                q.push(" AND status = ").push_bind(s.to_owned());
            }
            q.push(" ORDER BY opened_ms DESC, id DESC LIMIT ").push_bind(i64::from(limit));
            q.build()
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| {
                    let labels: String = row.try_get("labels")?;
                    Ok(Incident {
                        id: row.try_get("id")?,
                        fingerprint: row.try_get("fingerprint")?,
                        alertname: row.try_get("alertname")?,
                        severity: row.try_get("severity")?,
                        status: row.try_get("status")?,
                        summary: row.try_get("summary")?,
                        labels: serde_json::from_str(&labels).unwrap_or(serde_json::Value::Null),
                        starts_at_ms: row.try_get("starts_at_ms")?,
                        opened_ms: row.try_get("opened_ms")?,
                        resolved_ms: row.try_get("resolved_ms")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(rows)
    }

    /// Open incidents right now.
    pub async fn open_incidents(&self) -> Result<u64, StoreError> {
        let n: i64 = with_pool!(self, pool => {
            sqlx::query("SELECT COUNT(*) AS n FROM incidents WHERE status = 'open'").fetch_one(pool).await?.try_get("n")?
        });
        Ok(n as u64)
    }
}
