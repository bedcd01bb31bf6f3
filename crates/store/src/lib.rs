//! Storage for the collector: prediction records (idempotent on `prediction_id`) and
//! incidents opened and resolved by Alertmanager, on SQLite (the default: one WAL file
//! under the data dir) or PostgreSQL. One schema and one migration set serve both, and
//! every query is written once: the `with_pool!` macro instantiates it per backend.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row};
pub use vigil_records::{Record, Status};

/// Most records written by one INSERT statement (13 binds each stays well under
/// SQLite's 32,766 bind limit).
pub const INSERT_CHUNK: usize = 1000;
/// Longest a health check waits for the database.
pub const PING_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a SQLite writer waits for the lock before failing.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

#[cfg(feature = "test-util")]
pub mod testing;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid database url: {0}")]
    Url(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// What an insert did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Inserted {
    pub accepted: u64,
    /// Records whose `prediction_id` was already stored (not stored again).
    pub duplicates: u64,
    /// Which of the given records were new (same order as the input).
    #[serde(skip)]
    pub new: Vec<bool>,
}

/// Filters of `GET /predictions`.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub model: Option<String>,
    pub label: Option<String>,
    pub defect: Option<bool>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
}

/// Position after the last row of a page (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub ts_ms: i64,
    pub prediction_id: String,
}

/// Per-model figures over a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelStats {
    pub model: String,
    pub count: u64,
    pub errors: u64,
    pub defects: u64,
    pub defect_rate: f64,
    pub mean_confidence: Option<f64>,
    /// Successful predictions per label.
    pub labels: std::collections::BTreeMap<String, u64>,
}

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

/// `received_ms` for an insert: `now_ms`, or one past the last stamp this process
/// handed out, so no two inserts of this process share one and an insert can tell
/// its own rows from duplicates stored earlier.
fn unique_stamp(now_ms: i64) -> i64 {
    static LAST: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(i64::MIN);
    let mut last = LAST.load(std::sync::atomic::Ordering::Relaxed);
    loop {
        let next = now_ms.max(last.saturating_add(1));
        match LAST.compare_exchange_weak(
            last,
            next,
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
        ) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// A connection pool to one of the two backends.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool, so each query is written
/// once and compiled for both backends.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            Store::Sqlite($pool) => $body,
            Store::Postgres($pool) => $body,
        }
    };
}

impl Store {
    /// SQLite database file `vigil.db` under `data_dir` (created if missing).
    pub async fn sqlite(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::Url(format!("{}: {e}", data_dir.display())))?;
        let options = SqliteConnectOptions::new()
            .filename(data_dir.join("vigil.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            // Rows of a query cross from SQLite's thread in one go instead of waking
            // the async side every 50 rows (sqlx's default).
            .row_buffer_size(INSERT_CHUNK + 1)
            // The pages inserts touch (the ends of the table and its indexes) stay in
            // SQLite's own cache instead of being read back from the OS per statement.
            .pragma("cache_size", "-32768")
            // Checkpoint the WAL less often: the same hot pages are copied back once
            // per 40 MB of log instead of once per 4 MB.
            .pragma("wal_autocheckpoint", "10000");
        // WAL allows one writer at a time; readers never block it. A small pool keeps
        // writers queueing in the pool rather than spinning on the lock.
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        let store = Self::Sqlite(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// PostgreSQL at `url` (`postgres://…`). The pool connects lazily and reconnects by
    /// itself, so a database that is down at start or later is an error per call, not
    /// a dead collector.
    pub async fn postgres(url: &str) -> Result<Self, StoreError> {
        let options =
            PgConnectOptions::from_str(url).map_err(|e| StoreError::Url(e.to_string()))?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options);
        let store = Self::Postgres(pool);
        store.migrate().await?;
        Ok(store)
    }

    /// Chooses the backend from a URL: `postgres://`/`postgresql://`, else SQLite
    /// under `data_dir`.
    pub async fn open(database_url: Option<&str>, data_dir: &Path) -> Result<Self, StoreError> {
        match database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Self::postgres(url).await
            }
            Some(url) => Err(StoreError::Url(format!(
                "{url:?}: only postgres:// URLs are supported (SQLite is the default)"
            ))),
            None => Self::sqlite(data_dir).await,
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// Applies pending migrations (idempotent).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        with_pool!(self, pool => MIGRATOR.run(pool).await?);
        Ok(())
    }

    /// Whether the database answers right now.
    /// Answers within [`PING_TIMEOUT`], so health probes never hang on a dead database.
    pub async fn ping(&self) -> bool {
        let ping =
            async { with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.is_ok()) };
        tokio::time::timeout(PING_TIMEOUT, ping)
            .await
            .unwrap_or(false)
    }

    /// Stores records, each at most once: a `prediction_id` already present is counted
    /// as a duplicate and left as it was. All-or-nothing per call.
    ///
    /// Most batches hold only new records: then the insert's row count says so, and no
    /// row comes back (`RETURNING` cost SQLite's thread a row object per record). Only
    /// a chunk with duplicates asks which of its records this call stored: those
    /// carrying this call's `received_ms`, which is unique per call in this process.
    pub async fn insert(
        &self,
        records: &[Record],
        received_ms: i64,
    ) -> Result<Inserted, StoreError> {
        if records.is_empty() {
            return Ok(Inserted::default());
        }
        let stamp = unique_stamp(received_ms);
        let new = with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let mut new = Vec::with_capacity(records.len());
            for chunk in records.chunks(INSERT_CHUNK) {
                let mut q = QueryBuilder::new(
                    "INSERT INTO predictions (prediction_id, model, model_version, ts_ms, label, confidence, \
                     is_defect, latency_ms, request_id, trace_id, status, error_type, features, received_ms) ",
                );
                // Text is bound by reference: the records outlive the statement.
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(r.prediction_id.as_str())
                        .push_bind(r.model.as_str())
                        .push_bind(r.model_version.as_str())
                        .push_bind(r.ts_ms)
                        .push_bind(r.label.as_deref())
                        .push_bind(r.confidence)
                        .push_bind(i32::from(r.is_defect))
                        .push_bind(r.latency_ms)
                        .push_bind(r.request_id.as_str())
                        .push_bind(r.trace_id.as_deref())
                        .push_bind(r.status.as_str())
                        .push_bind(r.error_type.as_deref())
                        .push_bind(r.features.as_deref())
                        .push_bind(stamp);
                });
                q.push(" ON CONFLICT (prediction_id) DO NOTHING");
                let stored = q.build().execute(&mut *tx).await?.rows_affected();
                if stored == chunk.len() as u64 {
                    new.extend(std::iter::repeat_n(true, chunk.len()));
                    continue;
                }
                let mut ours = QueryBuilder::new("SELECT prediction_id FROM predictions WHERE received_ms = ");
                ours.push_bind(stamp).push(" AND prediction_id IN (");
                let mut ids = ours.separated(", ");
                for r in chunk {
                    ids.push_bind(r.prediction_id.as_str());
                }
                ours.push(")");
                let ours: std::collections::HashSet<String> = ours
                    .build()
                    .fetch_all(&mut *tx)
                    .await?
                    .into_iter()
                    .map(|row| row.try_get::<String, _>(0))
                    .collect::<Result<_, _>>()?;
                new.extend(chunk.iter().map(|r| ours.contains(&r.prediction_id)));
            }
            tx.commit().await?;
            new
        });
        let accepted = new.iter().filter(|n| **n).count() as u64;
        Ok(Inserted {
            accepted,
            duplicates: records.len() as u64 - accepted,
            new,
        })
    }

    /// Records matching `filter`, newest first, after `cursor`, at most `limit`.
    pub async fn predictions(
        &self,
        filter: &Filter,
        cursor: Option<&Cursor>,
        limit: u32,
    ) -> Result<Vec<Record>, StoreError> {
        let rows = with_pool!(self, pool => {
            let mut q = QueryBuilder::new(
                "SELECT prediction_id, model, model_version, ts_ms, label, confidence, is_defect, latency_ms, \
                 request_id, trace_id, status, error_type, features FROM predictions WHERE 1=1",
            );
            if let Some(m) = &filter.model {
                q.push(" AND model = ").push_bind(m.clone());
            }
            if let Some(l) = &filter.label {
                q.push(" AND label = ").push_bind(l.clone());
            }
            if let Some(d) = filter.defect {
                q.push(" AND is_defect = ").push_bind(i32::from(d));
            }
            if let Some(s) = filter.since_ms {
                q.push(" AND ts_ms >= ").push_bind(s);
            }
            if let Some(u) = filter.until_ms {
                q.push(" AND ts_ms < ").push_bind(u);
            }
            if let Some(c) = cursor {
                q.push(" AND (ts_ms < ").push_bind(c.ts_ms);
                q.push(" OR (ts_ms = ").push_bind(c.ts_ms);
                q.push(" AND prediction_id < ").push_bind(c.prediction_id.clone());
                q.push("))");
            }
            q.push(" ORDER BY ts_ms DESC, prediction_id DESC LIMIT ").push_bind(i64::from(limit));
            q.build()
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| {
                    let status: String = row.try_get("status")?;
                    Ok(Record {
                        prediction_id: row.try_get("prediction_id")?,
                        model: row.try_get("model")?,
                        model_version: row.try_get("model_version")?,
                        ts_ms: row.try_get("ts_ms")?,
                        label: row.try_get("label")?,
                        confidence: row.try_get("confidence")?,
                        is_defect: row.try_get::<i32, _>("is_defect")? != 0,
                        latency_ms: row.try_get("latency_ms")?,
                        request_id: row.try_get("request_id")?,
                        trace_id: row.try_get("trace_id")?,
                        status: Status::parse(&status).unwrap_or(Status::Error),
                        error_type: row.try_get("error_type")?,
                        features: row.try_get("features")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        Ok(rows)
    }

    /// Per-model count, errors, defects, mean confidence and label mix over
    /// `[since_ms, until_ms)`.
    pub async fn stats(&self, since_ms: i64, until_ms: i64) -> Result<Vec<ModelStats>, StoreError> {
        let (totals, labels) = with_pool!(self, pool => {
            let totals = sqlx::query(
                "SELECT model, COUNT(*) AS n, \
                 SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors, \
                 SUM(is_defect) AS defects, \
                 AVG(CASE WHEN status = 'success' THEN confidence END) AS mean_confidence \
                 FROM predictions WHERE ts_ms >= $1 AND ts_ms < $2 GROUP BY model ORDER BY model",
            )
            .bind(since_ms)
            .bind(until_ms)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|row| {
                Ok((
                    row.try_get::<String, _>("model")?,
                    row.try_get::<i64, _>("n")?,
                    row.try_get::<Option<i64>, _>("errors")?.unwrap_or(0),
                    row.try_get::<Option<i64>, _>("defects")?.unwrap_or(0),
                    row.try_get::<Option<f64>, _>("mean_confidence")?,
                ))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
            let labels = sqlx::query(
                "SELECT model, label, COUNT(*) AS n FROM predictions \
                 WHERE ts_ms >= $1 AND ts_ms < $2 AND status = 'success' AND label IS NOT NULL \
                 GROUP BY model, label",
            )
            .bind(since_ms)
            .bind(until_ms)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|row| Ok((row.try_get::<String, _>("model")?, row.try_get::<String, _>("label")?, row.try_get::<i64, _>("n")?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
            (totals, labels)
        });
        Ok(totals
            .into_iter()
            .map(|(model, n, errors, defects, mean_confidence)| {
                let labels = labels
                    .iter()
                    .filter(|(m, ..)| *m == model)
                    .map(|(_, label, n)| (label.clone(), *n as u64))
                    .collect();
                ModelStats {
                    count: n as u64,
                    errors: errors as u64,
                    defects: defects as u64,
                    defect_rate: if n > 0 {
                        defects as f64 / n as f64
                    } else {
                        0.0
                    },
                    mean_confidence,
                    labels,
                    model,
                }
            })
            .collect())
    }

    /// A firing alert opens an incident for its fingerprint unless one is open.
    pub async fn alert_firing(&self, incident: &Incident) -> Result<AlertEffect, StoreError> {
        let effect = with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let open = sqlx::query("SELECT id FROM incidents WHERE fingerprint = $1 AND status = 'open'")
                .bind(incident.fingerprint.clone())
                .fetch_optional(&mut *tx)
                .await?;
            let effect = if open.is_some() {
                AlertEffect::AlreadyOpen
            } else {
                sqlx::query(
                    "INSERT INTO incidents (id, fingerprint, alertname, severity, status, summary, labels, \
                     starts_at_ms, opened_ms, resolved_ms) VALUES ($1, $2, $3, $4, 'open', $5, $6, $7, $8, NULL)",
                )
                .bind(incident.id.clone())
                .bind(incident.fingerprint.clone())
                .bind(incident.alertname.clone())
                .bind(incident.severity.clone())
                .bind(incident.summary.clone())
                .bind(incident.labels.to_string())
                .bind(incident.starts_at_ms)
                .bind(incident.opened_ms)
                .execute(&mut *tx)
                .await?;
                AlertEffect::Opened
            };
            tx.commit().await?;
            effect
        });
        Ok(effect)
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

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await);
    }
}
