//! The prediction-record forwarder: every prediction becomes a record that reaches
//! storage exactly once, off the request path.
//!
//! A handler calls [`Forwarder::submit`]: the record is packed into the filling
//! [batch](batch) in memory; [`Forwarder::persist`] then writes it to that batch's
//! [spool](spool) segment on disk before the prediction is answered, so an answered
//! prediction survives a crash. Handlers that finish together share one write. The
//! [queue](queue) is bounded in memory; beyond it whole batches wait on disk only. A
//! [worker](worker) on a thread of its own hands full batches to a [`Delivery`]
//! ([delivery]: HTTP to a remote collector, or the collector in the same process),
//! with retry and backoff, parks what cannot be delivered, and replays it later. The
//! prediction id is the idempotency key, so delivering a batch again after a lost
//! answer or a restart never stores a record twice. [metrics] are the same on every
//! delivery path.

mod batch;
mod config;
pub mod delivery;
mod held;
mod metrics;
mod priority;
mod queue;
mod spool;
#[cfg(test)]
mod testing;
mod worker;

use std::sync::Arc;

pub use batch::Batch;
pub use config::ForwarderConfig;
pub use delivery::{Delivered, Delivery, HttpDelivery};
pub use held::HeldRecords;
pub use metrics::{ForwarderMetrics, Outcome};
pub use queue::Ticket;
use vigil_records::RecordRef;

use crate::priority::{Priority, StopOnExit};
use crate::queue::Queue;
use crate::spool::Spool;
use crate::worker::Worker;

/// The handle handlers use. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct Forwarder {
    queue: Arc<Queue>,
}

/// The running worker.
#[derive(Debug)]
pub struct ForwarderTask {
    done: tokio::sync::oneshot::Receiver<u64>,
    stop: tokio::sync::oneshot::Sender<()>,
    held: HeldRecords,
}

impl ForwarderTask {
    /// Stops taking new batches and resolves once every queued one is delivered or
    /// parked on disk; returns how many records went out this way.
    /// Records held in memory because the spool could not take them (a full disk):
    /// what a shutdown that stops waiting for [`ForwarderTask::finish`] leaves behind.
    pub fn held(&self) -> HeldRecords {
        self.held.clone()
    }

    pub async fn finish(self) -> u64 {
        let _ = self.stop.send(());
        self.done.await.unwrap_or(0)
    }
}

impl Forwarder {
    /// Opens the spool (parking what an earlier run left there) and starts the worker
    /// on a thread of its own with a single-threaded runtime, so its timers, I/O and
    /// wake-ups never share the request workers' event loop (on a small machine,
    /// sharing it cost more than the records themselves).
    pub fn start<D: Delivery>(
        config: ForwarderConfig,
        metrics: ForwarderMetrics,
        delivery: D,
    ) -> std::io::Result<(Self, ForwarderTask)> {
        let (spool, segments) =
            Spool::open(&config.spool_dir, config.max_spool_records, metrics.clone())?;
        let queue = Arc::new(Queue::new(
            config.queue_capacity,
            config.batch_size,
            segments,
            metrics.clone(),
        ));
        let stranded = held::Held::default();
        let held = stranded.count();
        let worker = Worker {
            config,
            delivery,
            metrics,
            spool,
            down: false,
            stranded,
        };
        let catch_up_after = worker.config.catch_up_after;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let (finished, done) = tokio::sync::oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let shared = queue.clone();
        std::thread::Builder::new()
            .name("vigil-forwarder".into())
            .spawn(move || {
                // Delivering a batch takes a fraction of a millisecond: under
                // SCHED_BATCH it runs beside the request workers instead of preempting
                // one of them when it wakes; and while it keeps up, at idle priority
                // (see `priority`).
                vigil_telemetry::threads::prefer_batch_scheduling();
                let priority = Priority::start(&shared, catch_up_after);
                let _stop = StopOnExit(priority.clone());
                let flushed = runtime.block_on(worker.run(shared, stopped, priority));
                let _ = finished.send(flushed);
            })?;
        Ok((Self { queue }, ForwarderTask { done, stop, held }))
    }

    /// Queues a record in memory; never waits for delivery and never refuses a
    /// record. It is on disk once the ticket is [persisted](Forwarder::persist).
    pub fn submit(&self, record: &RecordRef<'_>) -> Ticket {
        self.queue.push(record)
    }

    /// Returns once the ticket's record is in its spool segment: answer the prediction
    /// after this. It first yields to the runtime, so the handlers that are ready now
    /// push their records too, and the first of them to come back writes them all in
    /// one `write(2)`; the others find theirs written. Under load one write carries
    /// several records instead of one each (docs/BENCHMARKS.md).
    ///
    /// Dropped before it completes (the request timeout drops the handler), it writes
    /// the record on the way out, so the timeout's answer still comes after it. A write
    /// that fails (a full disk) is logged as `spool_write_failed`; the record then
    /// reaches storage from memory only.
    pub async fn persist(&self, ticket: Ticket) {
        self.queue.persist(ticket).await;
    }

    /// [`Forwarder::persist`] without the wait for company, for a caller that cannot
    /// wait (a handler being dropped).
    pub fn persist_now(&self, ticket: Ticket) {
        self.queue.write(ticket);
    }
}
