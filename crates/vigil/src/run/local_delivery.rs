//! `vigil up`'s delivery: the forwarder hands each batch straight to the collector in
//! the same process, with no loopback HTTP and no JSON. The batch is checked by the
//! collector's own rules (the ones `POST /log` applies) and stored through the same
//! ingest, so the `logging_*` metrics and the exactly-once guarantee are the same as
//! over HTTP. On SQLite the write runs right here, on the forwarder's own thread (no
//! hand-off to another thread and back); on PostgreSQL it runs on the services'
//! runtime, which owns the connections.

use vigil_collector::CollectorState;
use vigil_forwarder::{Batch, Delivered, Delivery};
use vigil_records::{BodyError, packed};

/// Records per batch in process. Each batch has costs of its own on both sides of the
/// queue: a spool file created when the one before fills (on a request worker, under
/// the queue's lock) and deleted once stored, a wake-up of the forwarder, a
/// transaction whose commit rewrites the last pages of the table and its indexes, and
/// its `records_stored` lines. Over HTTP a batch must also suit the collector's body
/// limits, so that path keeps [`ForwarderConfig::new`]'s 2,000; here nothing limits it
/// but memory (about 2 MB a batch). Side by side under `vigil up`'s bench load, 10,000
/// against 2,000 cost the forwarder's thread 0.915-0.953 a record (docs/BENCHMARKS.md,
/// "Bigger batches in process").
///
/// [`ForwarderConfig::new`]: vigil_forwarder::ForwarderConfig::new
pub const BATCH_SIZE: usize = 10_000;

/// Delivers to the collector of this process.
pub struct LocalDelivery {
    collector: CollectorState,
}

impl LocalDelivery {
    pub fn new(collector: CollectorState) -> Self {
        Self { collector }
    }
}

impl Delivery for LocalDelivery {
    async fn deliver(&mut self, batch: &Batch) -> Delivered {
        // Decoding and checking run here, on the forwarder's thread.
        let records = match packed::parse_body(batch.body(), batch.len().max(1)) {
            Ok(records) => records,
            Err(BodyError::Records(errors)) => {
                let why = errors
                    .first()
                    .map(|e| format!("record {}: {} {}", e.index, e.field.unwrap_or(""), e.reason))
                    .unwrap_or_default();
                return Delivered::Rejected {
                    why,
                    records: errors.iter().map(|e| e.index).collect(),
                };
            }
            Err(e) => {
                return Delivered::Rejected {
                    why: e.to_string(),
                    records: Vec::new(),
                };
            }
        };
        let stored = match self.collector.ingest_here(&records).await {
            Some(stored) => stored,
            // PostgreSQL's connections belong to the services' runtime: the write
            // runs there.
            None => {
                let collector = self.collector.clone();
                let task = self
                    .collector
                    .runtime
                    .spawn(async move { collector.ingest(&records).await });
                match task.await {
                    Ok(stored) => stored,
                    Err(e) => return Delivered::Failed(format!("the store task failed: {e}")),
                }
            }
        };
        match stored {
            Ok(_) => Delivered::Stored,
            Err(e) => Delivered::Failed(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use vigil_forwarder::{Forwarder, ForwarderConfig, ForwarderMetrics, Outcome};
    use vigil_records::{RecordRef, Status};
    use vigil_store::testing::TempDir;

    use super::*;

    fn record(id: &str, confidence: f64) -> RecordRef<'_> {
        RecordRef {
            prediction_id: id,
            model: "defect-detector",
            model_version: "1.0.0",
            timestamp: "2026-12-01T12:00:00Z",
            label: Some("ok"),
            confidence: Some(confidence),
            is_defect: false,
            latency_ms: 0.5,
            request_id: "r",
            trace_id: None,
            status: Status::Success,
            error_type: None,
            features: None,
            value: None,
        }
    }

    /// The collector's rules refuse a record in process as they do over HTTP; it is
    /// counted as dropped and its neighbours are stored.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_record_the_collector_refuses_costs_only_itself() {
        let dir = TempDir::new("local-delivery");
        let store = vigil_store::Store::sqlite(&dir.0.join("db")).await.unwrap();
        let collector = CollectorState::new(store, Default::default());
        let mut registry = vigil_telemetry::Metrics::base_registry("test", "0");
        let metrics = ForwarderMetrics::register(&mut registry);
        let delivery = LocalDelivery::new(collector.clone());
        let (forwarder, task) = Forwarder::start(
            ForwarderConfig::new(dir.0.join("spool")),
            metrics.clone(),
            delivery,
        )
        .unwrap();
        forwarder.persist(forwarder.submit(&record("a", 0.9))).await;
        forwarder.persist(forwarder.submit(&record("b", 1.5))).await;
        forwarder.persist(forwarder.submit(&record("c", 0.8))).await;
        // The last round delivers the three, unless the partial-batch timer (200 ms)
        // took them first on a slow machine: either way they went, which the
        // counts below check.
        let flushed = task.finish().await;
        assert!(flushed == 3 || flushed == 0, "{flushed}");
        assert_eq!(metrics.count(Outcome::Sent), 2);
        assert_eq!(metrics.count(Outcome::Dropped), 1);
        let stored: Vec<String> = collector
            .store
            .predictions(&Default::default(), None, vigil_store::PageSize::rows(10))
            .await
            .unwrap()
            .records
            .into_iter()
            .map(|r| r.prediction_id)
            .collect();
        assert_eq!(stored.len(), 2);
        assert!(stored.contains(&"a".to_owned()) && stored.contains(&"c".to_owned()));
        // No record is left in the spool (the segment opened for the next batch holds
        // only the format's header).
        for entry in std::fs::read_dir(dir.0.join("spool")).unwrap() {
            let len = entry.unwrap().metadata().unwrap().len();
            assert!(len <= packed::MAGIC.len() as u64, "{len} bytes left");
        }
    }
}
