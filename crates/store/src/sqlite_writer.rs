//! SQLite's prediction writer: one connection of its own that only inserts prediction
//! records, with one prepared statement bound straight from the records, inside an
//! `IMMEDIATE` transaction per call.
//!
//! Why not sqlx here, as everywhere else: under `vigil up` at full load the sqlx
//! insert (a statement of a thousand rows built per batch, fifteen boxed arguments a
//! row, a hand-off to sqlx's worker thread and back) cost about 10 µs a record across
//! three threads, 8 of them on sqlx's worker; with this writer the forwarder's thread
//! spends 4.5-6 µs a record in all, decoding and validation included (side by side
//! under the same load; docs/BENCHMARKS.md, "Where `up`'s extra time goes"). It is
//! synchronous, so `vigil up`'s forwarder, which has a thread of its own, stores on
//! that thread, and an async caller hands it to a blocking thread. Every other query
//! stays on sqlx; both open the same file, and SQLite's lock (with the same busy
//! timeout) orders writers.

use std::path::Path;

use parking_lot::Mutex;
use rusqlite::{Connection, TransactionBehavior};
use vigil_records::Record;

use crate::{SQLITE_BUSY_TIMEOUT, StoreError};

const INSERT: &str = "INSERT INTO predictions (prediction_id, model, model_version, ts_ms, label, \
     confidence, is_defect, latency_ms, request_id, trace_id, status, error_type, features, value, \
     received_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
     ON CONFLICT (prediction_id) DO NOTHING";

/// Rows inserted between two offers of the CPU (see [`SqliteWriter::insert`]).
const ROWS_PER_YIELD: usize = 32;

/// The connection that inserts prediction records; `None` once the store is closed.
#[derive(Debug)]
pub struct SqliteWriter {
    conn: Mutex<Option<Connection>>,
    /// Async callers' turns: the connection writes one batch at a time anyway.
    turns: tokio::sync::Semaphore,
}

impl SqliteWriter {
    /// Opens `path` (already created and migrated) with the pool's settings.
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(SQLITE_BUSY_TIMEOUT)?;
        // The same settings as the pool's connections (see `Store::sqlite`); the
        // journal mode and the page size are the file's, set when the pool created it.
        // The checkpoint threshold counts pages: a file from before 16 KiB pages has
        // four times as many to the same size of log.
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA cache_size = -32768;")?;
        let page: u32 = conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
        conn.pragma_update(
            None,
            "wal_autocheckpoint",
            crate::SQLITE_CHECKPOINT_BYTES / page.max(512),
        )?;
        Ok(Self {
            conn: Mutex::new(Some(conn)),
            turns: tokio::sync::Semaphore::new(1),
        })
    }

    /// Waits for an async caller's turn to write (see [`crate::Store::insert`]).
    pub(crate) async fn turn(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        // The semaphore is never closed.
        self.turns.acquire().await.ok()
    }

    /// Inserts `records` in one transaction, all or nothing; says per record whether it
    /// was new (`false`: its `prediction_id` was already stored and is left as it was).
    /// Newness comes from each row's change count, so `received_ms` is only the clock
    /// here (PostgreSQL's insert makes it unique per call to tell its rows apart).
    ///
    /// Every [`ROWS_PER_YIELD`] rows (about 70 µs of work here) the thread offers the
    /// CPU to any thread ready to run (`sched_yield`): this runs in the background of
    /// a process that answers requests, and a request thread woken on this core
    /// should not wait behind a 2,000-row batch. Under EEVDF a yield only moves this
    /// thread's deadline back, so it keeps its fair share when the CPU is contended,
    /// and costs a system call when nothing else is waiting. Side by side under
    /// `vigil up`'s bench load it gave an unprivileged process the throughput the
    /// forwarder's idle priority gives one that may use it (docs/BENCHMARKS.md).
    pub(crate) fn insert(
        &self,
        records: &[Record],
        received_ms: i64,
    ) -> Result<Vec<bool>, StoreError> {
        let mut conn = self.conn.lock();
        let conn = conn.as_mut().ok_or(StoreError::Closed)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut new = Vec::with_capacity(records.len());
        {
            let mut insert = tx.prepare_cached(INSERT)?;
            for (i, r) in records.iter().enumerate() {
                if i % ROWS_PER_YIELD == ROWS_PER_YIELD - 1 {
                    std::thread::yield_now();
                }
                // Bound one by one rather than through `params!`: each call is typed, so
                // no slice of trait objects is built and dispatched per row (the writer
                // alone ~9 % less a row; docs/BENCHMARKS.md, "Typed binds"). Every
                // parameter is bound for every row: SQLite keeps the last row's values.
                insert.raw_bind_parameter(1, &r.prediction_id)?;
                insert.raw_bind_parameter(2, &r.model)?;
                insert.raw_bind_parameter(3, &r.model_version)?;
                insert.raw_bind_parameter(4, r.ts_ms)?;
                insert.raw_bind_parameter(5, &r.label)?;
                insert.raw_bind_parameter(6, r.confidence)?;
                insert.raw_bind_parameter(7, i32::from(r.is_defect))?;
                insert.raw_bind_parameter(8, r.latency_ms)?;
                insert.raw_bind_parameter(9, &r.request_id)?;
                insert.raw_bind_parameter(10, &r.trace_id)?;
                insert.raw_bind_parameter(11, r.status.as_str())?;
                insert.raw_bind_parameter(12, &r.error_type)?;
                insert.raw_bind_parameter(13, &r.features)?;
                insert.raw_bind_parameter(14, r.value)?;
                insert.raw_bind_parameter(15, received_ms)?;
                let stored = insert.raw_execute()?;
                new.push(stored == 1);
            }
        }
        tx.commit()?;
        Ok(new)
    }

    /// Closes the connection; later inserts fail with [`StoreError::Closed`].
    pub(crate) fn close(&self) {
        self.conn.lock().take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writer lets the same size of log grow before it checkpoints, whatever the
    /// file's page size (a file from before 16 KiB pages keeps its 4 KiB ones).
    #[test]
    fn the_checkpoint_threshold_is_the_same_log_size_at_any_page_size() {
        let dir = crate::testing::TempDir::new("sqlite-writer");
        for page in [4096u32, crate::SQLITE_PAGE_SIZE] {
            let path = dir.0.join(format!("{page}.db"));
            crate::testing::sqlite_with_page_size(&path, page);
            let writer = SqliteWriter::open(&path).unwrap();
            let conn = writer.conn.lock();
            let pages: u32 = conn
                .as_ref()
                .unwrap()
                .query_row("PRAGMA wal_autocheckpoint", [], |row| row.get(0))
                .unwrap();
            assert_eq!(
                pages * page,
                crate::SQLITE_CHECKPOINT_BYTES,
                "{page}-byte pages"
            );
        }
    }
}
