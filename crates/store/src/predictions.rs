//! Prediction records: stored at most once per `prediction_id`, and read back newest
//! first through filters and a cursor.

use futures_util::TryStreamExt;
use serde::Serialize;
use sqlx::{QueryBuilder, Row};

use crate::{INSERT_CHUNK, Record, Status, Store, StoreError};

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

impl Inserted {
    fn of(new: Vec<bool>) -> Self {
        let accepted = new.iter().filter(|n| **n).count() as u64;
        Self {
            accepted,
            duplicates: new.len() as u64 - accepted,
            new,
        }
    }
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

impl Store {
    /// Stores records, each at most once: a `prediction_id` already present is counted
    /// as a duplicate and left as it was. All-or-nothing per call.
    ///
    /// On SQLite the write runs on a blocking thread ([`Store::insert_here`] runs it on
    /// the caller's). On PostgreSQL most batches hold only new records: then the
    /// insert's row count says so, and no row comes back. Only a chunk with duplicates
    /// asks which of its records this call stored: those carrying this call's
    /// `received_ms`, which is unique per call in this process.
    pub async fn insert(
        &self,
        records: &[Record],
        received_ms: i64,
    ) -> Result<Inserted, StoreError> {
        if records.is_empty() {
            return Ok(Inserted::default());
        }
        let new = match self {
            Self::Sqlite { writer, .. } => {
                // One write at a time takes a blocking thread (and a copy of its
                // records); the others wait here without holding one.
                let _turn = writer.turn().await;
                let (writer, records) = (writer.clone(), records.to_vec());
                tokio::task::spawn_blocking(move || writer.insert(&records, received_ms))
                    .await
                    .map_err(|e| StoreError::Interrupted(e.to_string()))??
            }
            Self::Postgres(pool) => {
                insert_postgres(pool, records, unique_stamp(received_ms)).await?
            }
        };
        Ok(Inserted::of(new))
    }

    /// [`Store::insert`] on the calling thread, for a caller with a thread of its own
    /// that may block (`vigil up`'s forwarder): `None` when the backend cannot write
    /// synchronously (PostgreSQL).
    pub fn insert_here(
        &self,
        records: &[Record],
        received_ms: i64,
    ) -> Option<Result<Inserted, StoreError>> {
        match self {
            Self::Sqlite { writer, .. } => {
                Some(writer.insert(records, received_ms).map(Inserted::of))
            }
            Self::Postgres(_) => None,
        }
    }

    /// Records matching `filter`, newest first, after `cursor`, within `size`.
    ///
    /// Rows are read one at a time and the page ends once it holds `size.bytes` of
    /// record text (at least one record): features of thousands of values make a
    /// record ~100 KB, and 1,000 of them held at once (then once more as the JSON
    /// answer) took a collector's memory by the hundreds of megabytes a request.
    pub async fn predictions(
        &self,
        filter: &Filter,
        cursor: Option<&Cursor>,
        size: PageSize,
    ) -> Result<Page, StoreError> {
        let page = with_pool!(self, pool => {
            let mut q = QueryBuilder::new(
                "SELECT prediction_id, model, model_version, ts_ms, label, confidence, is_defect, latency_ms, \
                 request_id, trace_id, status, error_type, features, value FROM predictions WHERE 1=1",
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
            q.push(" ORDER BY ts_ms DESC, prediction_id DESC LIMIT ").push_bind(i64::from(size.rows));
            let mut rows = q.build().fetch(pool);
            let mut page = Page::default();
            let mut bytes = 0;
            while let Some(row) = rows.try_next().await? {
                let status: String = row.try_get("status")?;
                let record = Record {
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
                    value: row.try_get("value")?,
                };
                bytes += text_len(&record);
                page.records.push(record);
                if bytes >= size.bytes {
                    // Dropping the stream ends the query: on SQLite the statement is
                    // reset and the rest never read; PostgreSQL still sends the rows
                    // up to the LIMIT, and sqlx discards them before the connection
                    // is used again. Either way they are never held here.
                    page.full = true;
                    break;
                }
            }
            page.full |= page.records.len() == size.rows as usize;
            page
        });
        Ok(page)
    }
}

/// The bounds of one page of [`Store::predictions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize {
    /// Most records.
    pub rows: u32,
    /// The page ends with the record that takes its text to this many bytes.
    pub bytes: usize,
}

impl PageSize {
    /// At most `rows` records, however large.
    pub fn rows(rows: u32) -> Self {
        Self {
            rows,
            bytes: usize::MAX,
        }
    }
}

/// One page of [`Store::predictions`].
#[derive(Debug, Default)]
pub struct Page {
    pub records: Vec<Record>,
    /// The page ended at one of its bounds, not at the last matching record, so more
    /// may follow (the next page may also be empty).
    pub full: bool,
}

/// About what a record weighs as text: its strings, and a fixed share for the rest
/// (numbers, field names in the JSON it becomes).
fn text_len(r: &Record) -> usize {
    const FIXED: usize = 256;
    let optional = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    FIXED
        + r.prediction_id.len()
        + r.model.len()
        + r.model_version.len()
        + r.request_id.len()
        + optional(&r.label)
        + optional(&r.trace_id)
        + optional(&r.error_type)
        + optional(&r.features)
}

/// PostgreSQL's insert: [`INSERT_CHUNK`] rows a statement, in one transaction; says per
/// record whether it was new.
async fn insert_postgres(
    pool: &sqlx::PgPool,
    records: &[Record],
    stamp: i64,
) -> Result<Vec<bool>, StoreError> {
    let mut tx = pool.begin().await?;
    let mut new = Vec::with_capacity(records.len());
    for chunk in records.chunks(INSERT_CHUNK) {
        let mut q = QueryBuilder::new(
            "INSERT INTO predictions (prediction_id, model, model_version, ts_ms, label, confidence, \
             is_defect, latency_ms, request_id, trace_id, status, error_type, features, value, received_ms) ",
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
                .push_bind(r.value)
                .push_bind(stamp);
        });
        q.push(" ON CONFLICT (prediction_id) DO NOTHING");
        let stored = q.build().execute(&mut *tx).await?.rows_affected();
        if stored == chunk.len() as u64 {
            new.extend(std::iter::repeat_n(true, chunk.len()));
            continue;
        }
        let mut ours =
            QueryBuilder::new("SELECT prediction_id FROM predictions WHERE received_ms = ");
        ours.push_bind(stamp).push(" AND prediction_id IN (");
        let mut ids = ours.separated(", ");
        for r in chunk {
            ids.push_bind(r.prediction_id.as_str());
        }
        ours.push(")");
        let ours = returned_ids!(ours, &mut *tx);
        new.extend(chunk.iter().map(|r| ours.contains(&r.prediction_id)));
    }
    tx.commit().await?;
    Ok(new)
}
