//! Records waiting in memory to be delivered. A handler appends its record, packed, to
//! the filling batch (and its segment file) under a short lock; the handler that fills
//! it to `batch_size` seals it and wakes the worker, which is the only wake-up (a
//! wake-up per prediction cost more than the prediction). Sealed batches are exactly
//! `batch_size` records: no re-splitting, copying or extra small deliveries when
//! records arrive between the wake-up and the worker.
//!
//! The bound is on memory only. A record is never refused: when the queue holds more
//! than its capacity, the newest sealed batches leave memory and are parked in the
//! spool, where their segment files already hold them, for the worker to replay.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use vigil_records::RecordRef;

use crate::batch::{Batch, Filling, FreeList};
use crate::metrics::ForwarderMetrics;
use crate::spool::Segments;

#[derive(Debug)]
pub(crate) struct Queue {
    pending: Mutex<Pending>,
    /// A batch was sealed.
    pub(crate) full_batch: tokio::sync::Notify,
    capacity: usize,
    pub(crate) batch_size: usize,
    segments: Arc<Segments>,
    free: Arc<FreeList>,
    metrics: ForwarderMetrics,
}

#[derive(Debug)]
struct Pending {
    filling: Filling,
    /// Full batches, oldest first.
    sealed: VecDeque<Batch>,
    /// Records in `filling` and `sealed`.
    records: usize,
    /// Batches that left memory for the spool (segment, records), for the worker to
    /// take over.
    parked: Vec<(u64, u64)>,
}

impl Queue {
    pub(crate) fn new(
        capacity: usize,
        batch_size: usize,
        segments: Arc<Segments>,
        metrics: ForwarderMetrics,
    ) -> Self {
        let batch_size = batch_size.max(1);
        let (seq, journal) = segments.create();
        Self {
            pending: Mutex::new(Pending {
                filling: Filling::new(Vec::new(), batch_size, seq, journal),
                sealed: VecDeque::new(),
                records: 0,
                parked: Vec::new(),
            }),
            full_batch: tokio::sync::Notify::new(),
            capacity: capacity.max(1),
            batch_size,
            segments,
            free: Arc::new(FreeList::default()),
            metrics,
        }
    }

    /// Queues a record (in memory and on disk); never waits for delivery.
    pub(crate) fn push(&self, record: &RecordRef<'_>) {
        let mut pending = self.pending.lock();
        pending.filling.push(record);
        pending.records += 1;
        let full = pending.filling.len >= self.batch_size;
        if full {
            self.seal(&mut pending);
            if pending.records > self.capacity {
                self.spill(&mut pending);
            }
        }
        drop(pending);
        if full {
            self.full_batch.notify_one();
        }
    }

    /// Moves the filling batch to the sealed ones and starts the next in a new segment
    /// (and a recycled buffer when there is one).
    fn seal(&self, pending: &mut Pending) {
        let (seq, journal) = self.segments.create();
        let next = Filling::new(self.free.take(), self.batch_size, seq, journal);
        let full = std::mem::replace(&mut pending.filling, next);
        pending.sealed.push_back(full.seal(&self.free));
    }

    /// Over capacity: the newest sealed batches leave memory for the spool. Their
    /// segments hold them; one whose segment could not be written is lost, counted.
    fn spill(&self, pending: &mut Pending) {
        while pending.records > self.capacity {
            let Some(newest) = pending.sealed.pop_back() else {
                break;
            };
            let n = newest.len();
            pending.records -= n;
            if newest.durable {
                pending.parked.push((newest.seq, n as u64));
                self.metrics.spooled.inc_by(n as u64);
            } else {
                self.segments.delete(newest.seq);
                self.metrics.dropped.inc_by(n as u64);
                tracing::error!(target: "vigil::forwarder", records = n, "prediction_records_lost");
            }
        }
    }

    /// The oldest sealed batch, or with `partial` the filling one if it has records.
    pub(crate) fn next_batch(&self, partial: bool) -> Option<Batch> {
        let mut pending = self.pending.lock();
        if pending.sealed.is_empty() && partial && pending.filling.len > 0 {
            self.seal(&mut pending);
        }
        let batch = pending.sealed.pop_front()?;
        pending.records -= batch.len();
        Some(batch)
    }

    /// Batches that handlers parked in the spool since the last call.
    pub(crate) fn take_parked(&self) -> Vec<(u64, u64)> {
        std::mem::take(&mut self.pending.lock().parked)
    }

    #[cfg(test)]
    pub(crate) fn records(&self) -> usize {
        self.pending.lock().records
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::Spool;
    use crate::testing::{dir, ids, metrics, record};

    #[test]
    fn batches_are_exactly_batch_size_and_a_full_queue_parks_instead_of_dropping() {
        let dir = dir();
        let m = metrics();
        let (_, segments) = Spool::open(&dir, 100, m.clone()).unwrap();
        let queue = Queue::new(4, 3, segments, m.clone());
        for i in 0..10 {
            queue.push(&RecordRef::from(&record(&format!("p{i}"))));
        }
        // Ten records, room for four in memory: of three sealed batches the two newest
        // went to the spool (their segments hold them); nothing was dropped.
        assert_eq!(m.dropped.get(), 0);
        assert_eq!(m.spooled.get(), 6);
        assert_eq!(queue.take_parked(), [(1, 3), (2, 3)]);
        assert_eq!(queue.records(), 4);
        let first = queue.next_batch(false).unwrap();
        assert_eq!(ids(&first), ["p0", "p1", "p2"]);
        // The partial batch goes only when asked for (a flush tick or shutdown).
        assert!(queue.next_batch(false).is_none());
        let partial = queue.next_batch(true).unwrap();
        assert_eq!(ids(&partial), ["p9"]);
        assert!(queue.next_batch(true).is_none());
        // Every record is on disk, in the segment of its batch, as the batch's bytes.
        let (mut spool, _) = Spool::open(&dir, 100, metrics()).unwrap();
        assert_eq!(spool.records(), 10);
        let mut on_disk = Vec::new();
        while let Some(b) = spool.oldest() {
            on_disk.extend(ids(&b));
            spool.delete(b.seq);
        }
        assert_eq!(
            on_disk,
            (0..10).map(|i| format!("p{i}")).collect::<Vec<_>>()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn buffers_of_delivered_batches_are_filled_again() {
        let dir = dir();
        let (_, segments) = Spool::open(&dir, 100, metrics()).unwrap();
        let queue = Queue::new(100, 2, segments, metrics());
        for i in 0..2 {
            queue.push(&RecordRef::from(&record(&format!("p{i}"))));
        }
        let sealed = queue.next_batch(false).unwrap();
        let capacity = sealed.body().len();
        assert!(queue.free.0.lock().is_empty());
        drop(sealed);
        assert_eq!(queue.free.0.lock().len(), 1);
        assert!(queue.free.0.lock()[0].capacity() >= capacity);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
