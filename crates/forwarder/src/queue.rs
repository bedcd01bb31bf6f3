//! Records waiting in memory to be delivered. A handler appends its record, packed, to
//! the filling batch under a short lock, and has it written to the batch's segment file
//! before it answers ([`Queue::write`]: one append for every record pushed since the
//! last); the handler that fills the batch to `batch_size` seals it (writing what is
//! left) and wakes the worker, which is the only wake-up (a wake-up per prediction cost
//! more than the prediction). Sealed batches are exactly `batch_size` records: no
//! re-splitting, copying or extra small deliveries when records arrive between the
//! wake-up and the worker.
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

/// Where a pushed record ends: in which segment, at which byte.
#[derive(Debug, Clone, Copy)]
#[must_use = "a record is written to its segment once a ticket is written (or its batch sealed)"]
pub struct Ticket {
    seq: u64,
    end: usize,
    /// Its push sealed the batch, which wrote it.
    sealed: bool,
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

impl Pending {
    fn oldest(&self) -> Option<std::time::Duration> {
        let since = match self.sealed.front() {
            Some(batch) => batch.since,
            None => self.filling.since.filter(|_| self.filling.len > 0),
        };
        since.map(|t| t.elapsed())
    }
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

    /// Queues a record in memory; never waits for delivery. The returned ticket says
    /// where it ends, for [`Queue::write`] (sealing a batch writes it too).
    pub(crate) fn push(&self, record: &RecordRef<'_>) -> Ticket {
        let mut pending = self.pending.lock();
        let end = pending.filling.push(record);
        let seq = pending.filling.seq;
        pending.records += 1;
        let sealed = pending.filling.len >= self.batch_size;
        if sealed {
            self.seal(&mut pending);
            if pending.records > self.capacity {
                self.spill(&mut pending);
            }
        }
        drop(pending);
        if sealed {
            self.full_batch.notify_one();
        }
        Ticket { seq, end, sealed }
    }

    /// Makes sure the ticket's record is in its segment file: if it is not yet, writes
    /// every record pushed so far, its own and whoever's came after, in one append.
    pub(crate) fn write(&self, ticket: Ticket) {
        if ticket.sealed {
            return;
        }
        let mut pending = self.pending.lock();
        // An older segment was written whole when its batch was sealed.
        if pending.filling.seq == ticket.seq && pending.filling.written() < ticket.end {
            pending.filling.write();
        }
    }

    /// Returns once the ticket's record is in its segment file, after one yield to the
    /// runtime (see [`crate::Forwarder::persist`]). The write happens when the returned
    /// future completes or is dropped, whichever comes first: a handler the request
    /// timeout drops mid-way still has its record written before the timeout answers.
    pub(crate) async fn persist(&self, ticket: Ticket) {
        struct WriteOnDrop<'a>(&'a Queue, Ticket);
        impl Drop for WriteOnDrop<'_> {
            fn drop(&mut self) {
                self.0.write(self.1);
            }
        }
        let _written = WriteOnDrop(self, ticket);
        tokio::task::yield_now().await;
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
                // Waiting on disk from now on, whenever the worker takes it over.
                self.metrics.spool.inc_by(n as i64);
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
            // Sealing writes the batch's last records to its segment.
            self.seal(&mut pending);
        }
        let batch = pending.sealed.pop_front()?;
        pending.records -= batch.len();
        Some(batch)
    }

    /// How long the oldest record in memory has waited; `None` when there is none.
    pub(crate) fn oldest(&self) -> Option<std::time::Duration> {
        self.pending.lock().oldest()
    }

    /// [`Queue::oldest`], or `Err` if the lock is not free within `wait`: the watchdog
    /// must not wait long for a lock.
    pub(crate) fn try_oldest(
        &self,
        wait: std::time::Duration,
    ) -> Result<Option<std::time::Duration>, ()> {
        self.pending
            .try_lock_for(wait)
            .map(|p| p.oldest())
            .ok_or(())
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
    use crate::testing::{dir, ids, metrics, queue_in, record};

    #[test]
    fn batches_are_exactly_batch_size_and_a_full_queue_parks_instead_of_dropping() {
        let dir = dir();
        let m = metrics();
        let queue = queue_in(&dir, 4, 3, &m);
        for i in 0..10 {
            queue.write(queue.push(&RecordRef::from(&record(&format!("p{i}")))));
        }
        // Ten records, room for four in memory: of three sealed batches the two newest
        // went to the spool (their segments hold them); nothing was dropped.
        assert_eq!(m.dropped.get(), 0);
        assert_eq!(m.spooled.get(), 6);
        // Counted as waiting on disk at once, not when the worker (maybe busy with a
        // 10 s post) takes them over: it did not count them again.
        assert_eq!(m.spool.get(), 6);
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
        let queue = queue_in(&dir, 100, 2, &metrics());
        for i in 0..2 {
            queue.write(queue.push(&RecordRef::from(&record(&format!("p{i}")))));
        }
        let sealed = queue.next_batch(false).unwrap();
        let capacity = sealed.body().len();
        assert!(queue.free.0.lock().is_empty());
        drop(sealed);
        assert_eq!(queue.free.0.lock().len(), 1);
        assert!(queue.free.0.lock()[0].capacity() >= capacity);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Bytes in the spool's first segment file (the queue's filling batch's).
    fn first_segment_size(dir: &std::path::Path) -> u64 {
        std::fs::metadata(dir.join(format!("{:020}.vgl", 0)))
            .unwrap()
            .len()
    }

    #[test]
    fn a_ticket_writes_every_record_pushed_so_far_in_one_append_and_sealing_writes_the_rest() {
        let dir = dir();
        let queue = queue_in(&dir, 100, 4, &metrics());
        let size = || first_segment_size(&dir);
        let header = size();
        let tickets: Vec<Ticket> = (0..3)
            .map(|i| queue.push(&RecordRef::from(&record(&format!("p{i}")))))
            .collect();
        // Pushed is in memory only.
        assert_eq!(size(), header);
        // The first ticket written takes the records pushed after it along.
        queue.write(tickets[0]);
        let three = size();
        assert!(three > header);
        for t in &tickets {
            queue.write(*t);
        }
        assert_eq!(size(), three, "written tickets write nothing again");
        // The fourth record fills the batch: sealing it writes it, its ticket says so.
        let fourth = queue.push(&RecordRef::from(&record("p3")));
        assert!(fourth.sealed);
        assert!(size() > three);
        let (mut spool, _) = Spool::open(&dir, 100, metrics()).unwrap();
        assert_eq!(ids(&spool.oldest().unwrap()), ["p0", "p1", "p2", "p3"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_persist_dropped_before_it_ran_still_writes_its_record() {
        use std::future::Future;
        use std::task::{Context, Poll, Waker};
        let dir = dir();
        let queue = queue_in(&dir, 100, 4, &metrics());
        let size = || first_segment_size(&dir);
        let header = size();
        let ticket = queue.push(&RecordRef::from(&record("p0")));
        let mut persist = Box::pin(queue.persist(ticket));
        // Its first poll yields: nothing written yet.
        let mut cx = Context::from_waker(Waker::noop());
        assert!(matches!(persist.as_mut().poll(&mut cx), Poll::Pending));
        assert_eq!(size(), header);
        // Dropped there (as the request timeout drops a handler): written on the way out.
        drop(persist);
        assert!(size() > header);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
