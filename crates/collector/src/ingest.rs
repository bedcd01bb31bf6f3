//! Storing validated records: the one way records reach the database, whether they
//! came over `POST /log` or, in `vigil up`, straight from the inference service's
//! forwarder in the same process. Both count the same `logging_*` metrics and warn
//! about the same slow writes.

use std::collections::BTreeMap;
use std::time::Instant;

use vigil_records::Record;
use vigil_store::{Inserted, StoreError};
use vigil_telemetry::logging::JsonList;

use crate::CollectorState;
use crate::handlers::now_ms;
use crate::stored_lines;

impl CollectorState {
    /// Stores `records` (already validated), each at most once, all or nothing, and
    /// counts what was new.
    pub async fn ingest(&self, records: &[Record]) -> Result<Inserted, StoreError> {
        let started = Instant::now();
        let result = self.store.insert(records, now_ms()).await;
        self.account(records, result, started).await
    }

    /// [`CollectorState::ingest`] with the database write on the calling thread
    /// ([`vigil_store::Store::insert_here`]), for a caller with a thread of its own that
    /// may block: `vigil up`'s forwarder. `None` on PostgreSQL, whose connections belong
    /// to the services' runtime: there, call `ingest` on that runtime.
    pub async fn ingest_here(&self, records: &[Record]) -> Option<Result<Inserted, StoreError>> {
        let started = Instant::now();
        let result = self.store.insert_here(records, now_ms())?;
        Some(self.account(records, result, started).await)
    }

    /// What follows a write, however it ran: the `logging_*` metrics, the join of
    /// labels that waited for these records, and the `records_stored` lines.
    async fn account(
        &self,
        records: &[Record],
        result: Result<Inserted, StoreError>,
        started: Instant,
    ) -> Result<Inserted, StoreError> {
        let took = started.elapsed();
        self.collector.db_write.observe(took.as_secs_f64());
        let inserted = result.inspect_err(|_| {
            self.set_writable(false);
            self.collector.db_initialized.set(0);
            self.warn_if_slow(records.len(), took);
        })?;
        // Only a commit that wrote a row shows writes work: one of duplicates alone
        // writes nothing, and commits on a full disk too.
        if inserted.accepted > 0 {
            self.set_writable(true);
            self.collector.db_initialized.set(1);
        }
        if inserted.duplicates > 0 {
            self.collector.duplicates.inc_by(inserted.duplicates);
        }
        self.count_stored(records, &inserted.new);
        if self.may_join() {
            // Labels that came before these records (or retried ones: duplicates too,
            // in case an earlier join was cut off). Spawned, so a caller that gives
            // up (a timed-out request) cannot cut the join off after the commit.
            let state = self.clone();
            let ids = records.iter().map(|r| r.prediction_id.clone()).collect();
            let _ = self
                .runtime
                .spawn(vigil_telemetry::context::in_current_scope(async move {
                    state.join_pending(ids).await
                }))
                .await;
        }
        // Each stored record's request id, so `vigil logs --request-id` finds where
        // the collector took that prediction: a line per batch, not per record, or a
        // few when the ids would make the line too long to ship (see stored_lines).
        let duration_ms = millis(took);
        let parts = stored_lines::parts(records, &inserted.new);
        let count = parts.len();
        for (i, part) in parts.into_iter().enumerate() {
            tracing::info!(
                target: "vigil_collector::ingest",
                service = "collector",
                records = part.records,
                new = part.new,
                duplicates = part.duplicates(),
                duration_ms,
                part = i + 1,
                parts = count,
                request_ids = ?JsonList(part.request_ids),
                "records_stored"
            );
        }
        self.warn_if_slow(records.len(), took);
        Ok(inserted)
    }

    /// Warns about a write over the threshold: after `records_stored`, so `vigil logs
    /// --request-id` finds it through the batch's request id.
    fn warn_if_slow(&self, records: usize, took: std::time::Duration) {
        if took > self.config.slow_write {
            tracing::warn!(
                target: "vigil_collector::ingest",
                records,
                duration_ms = millis(took),
                backend = self.store.backend(),
                "slow_db_write"
            );
        }
    }

    /// Counts the newly stored records per model (duplicates were counted apart).
    fn count_stored(&self, records: &[Record], new: &[bool]) {
        let mut per_model: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for (r, _) in records.iter().zip(new).filter(|(_, new)| **new) {
            let entry = per_model.entry(&r.model).or_default();
            entry.0 += 1;
            entry.1 += u64::from(r.is_defect);
        }
        for (model, (n, defects)) in per_model {
            let label = crate::metrics::ModelLabel {
                model: self.collector.models.admit(model),
            };
            self.collector.predictions.get_or_create(&label).inc_by(n);
            // Made (at 0) with the model's first record, not its first defect:
            // `increase()` cannot see the step of a series that appears at 1, so
            // HighDefectRate would miss the first defects of every model.
            self.collector.defects.get_or_create(&label).inc_by(defects);
        }
    }
}

/// A write's duration in milliseconds to the microsecond, like the access line's: a
/// batch in process takes well under one, which whole milliseconds wrote as 0.
fn millis(took: std::time::Duration) -> f64 {
    (took.as_secs_f64() * 1e6).round() / 1e3
}
