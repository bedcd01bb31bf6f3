//! The forwarder's worker: takes sealed batches from the queue and delivers them, with
//! retry and backoff; parks in the spool what cannot be delivered now and replays it,
//! oldest first, once deliveries succeed again. A batch's segment file is deleted only
//! once the batch is stored or refused.

use std::sync::Arc;
use std::time::Duration;

use crate::batch::Batch;
use crate::config::ForwarderConfig;
use crate::delivery::{Delivered, Delivery};
use crate::held::Held;
use crate::metrics::ForwarderMetrics;
use crate::priority::Priority;
use crate::queue::Queue;
use crate::spool::Spool;

pub(crate) struct Worker<D> {
    pub(crate) config: ForwarderConfig,
    pub(crate) delivery: D,
    pub(crate) metrics: ForwarderMetrics,
    pub(crate) spool: Spool,
    /// The last attempt failed: new batches are parked straight away until a replay
    /// succeeds.
    pub(crate) down: bool,
    /// Undelivered batches the spool could not take (a full disk): held in memory,
    /// oldest first, up to the queue's capacity, and tried again with the replays.
    /// Dropped only by that bound or at shutdown, counted.
    pub(crate) stranded: Held,
}

/// Runs `f` at a fair share of the CPU when the worker may be at idle priority.
fn fair<T>(priority: &Option<Arc<Priority>>, f: impl FnOnce() -> T) -> T {
    match priority {
        Some(p) => p.fair(f),
        None => f(),
    }
}

impl<D: Delivery> Worker<D> {
    /// Runs until `stop`, then delivers (or parks) everything queued once and returns
    /// how many records it took in that last round.
    pub(crate) async fn run(
        mut self,
        queue: Arc<Queue>,
        mut stop: tokio::sync::oneshot::Receiver<()>,
        priority: Option<Arc<Priority>>,
    ) -> u64 {
        let mut replay = tokio::time::interval(self.config.backoff.max(Duration::from_millis(50)));
        replay.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A partial batch goes out at least this often, however slow the traffic.
        let mut flush = tokio::time::interval(self.config.flush_interval);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stopping = false;
        loop {
            let mut partial = false;
            tokio::select! {
                () = queue.full_batch.notified() => {}
                _ = flush.tick() => partial = true,
                _ = replay.tick(), if self.spool.records() > 0 || !self.stranded.is_empty() => {}
                _ = &mut stop, if !stopping => stopping = true,
            }
            if let Some(p) = &priority {
                if stopping {
                    p.stop();
                } else {
                    p.begin();
                }
            }
            // Down at shutdown, queued batches would go to the spool untried: one
            // replay first, so a collector back since the last one (replays are ~100 ms
            // apart) gives them the one try each that shutdown promises.
            if stopping && self.down && self.spool.records() > 0 {
                self.replay_one().await;
            }
            // Handlers still running during shutdown can add records until the last
            // take; the server has drained by the time `finish` is called.
            let mut n = 0;
            loop {
                // The queue's lock is the handlers' too: taken at a fair share.
                let (parked, batch) = fair(&priority, || {
                    (queue.take_parked(), queue.next_batch(partial || stopping))
                });
                // One partial batch a tick: what arrives while it is delivered waits
                // for the next tick (or a full batch). Taking it at once would chase
                // the handlers under load, a small batch after each delivery, each
                // with a transaction, a spool file and a wake-up of its own.
                partial = false;
                self.park_all(parked);
                let Some(batch) = batch else {
                    break;
                };
                n += batch.len() as u64;
                self.deliver(batch, !stopping).await;
            }
            let parked = fair(&priority, || queue.take_parked());
            self.park_all(parked);
            if stopping {
                self.give_up_stranded();
                return n;
            }
            if self.spool.records() > 0 {
                self.replay_one().await;
            }
            if !self.stranded.is_empty() {
                self.retry_stranded().await;
            }
            if let Some(p) = &priority {
                p.settle(&queue, self.config.flush_interval);
            }
        }
    }

    /// Takes over the batches handlers moved out of a full queue.
    fn park_all(&mut self, parked: Vec<(u64, u64)>) {
        for (seq, n) in parked {
            self.spool.adopt(seq, n);
        }
    }

    /// Delivers a batch (with retries unless deliveries are known to fail, or we are
    /// shutting down), else parks it in the spool.
    async fn deliver(&mut self, mut batch: Batch, may_retry: bool) {
        // Down, deliveries wait for a replay to succeed; with nothing parked to replay
        // (the spool could not be written) the next batch is the probe.
        if !self.down || self.spool.records() == 0 {
            let tries = if may_retry {
                self.config.attempts.max(1)
            } else {
                1
            };
            let mut delay = self.config.backoff;
            let mut attempt = 1;
            let mut pruned = false;
            while attempt <= tries {
                let n = batch.len() as u64;
                match self.delivery.deliver(&batch).await {
                    Delivered::Stored => {
                        self.metrics.sent.inc_by(n);
                        self.spool.delete(batch.seq);
                        self.down = false;
                        return;
                    }
                    // One bad record must not cost its neighbours: the batch goes again
                    // without the records named (once; they are counted).
                    Delivered::Rejected { why, records: bad }
                        if !pruned && !bad.is_empty() && bad.iter().all(|&i| i < batch.len()) =>
                    {
                        let kept = batch.without(&bad);
                        let refused = n - kept.len() as u64;
                        tracing::error!(target: "vigil::forwarder", records = refused, resent = kept.len(), reason = %why, "prediction_records_rejected");
                        self.metrics.dropped.inc_by(refused);
                        pruned = true;
                        if kept.is_empty() {
                            self.spool.delete(batch.seq);
                            return;
                        }
                        batch = kept;
                    }
                    Delivered::Rejected { why, .. } => {
                        tracing::error!(target: "vigil::forwarder", records = n, reason = %why, "prediction_records_rejected");
                        self.metrics.dropped.inc_by(n);
                        self.spool.delete(batch.seq);
                        return;
                    }
                    Delivered::Failed(why) if attempt < tries => {
                        tracing::warn!(target: "vigil::forwarder", records = n, attempt, reason = %why, "prediction_log_retry");
                        self.metrics.retried.inc_by(n);
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(self.config.max_backoff);
                        attempt += 1;
                    }
                    Delivered::Failed(why) => {
                        tracing::warn!(target: "vigil::forwarder", records = n, reason = %why, "collector_unreachable");
                        self.down = true;
                        break;
                    }
                }
            }
        }
        self.park(batch);
    }

    /// The batch waits in the spool. Its segment holds it unless a write failed or
    /// records were pruned: then the segment is written again from memory.
    fn park(&mut self, mut batch: Batch) {
        let n = batch.len() as u64;
        if !batch.durable {
            match self.spool.segments().rewrite(batch.seq, &batch) {
                Ok(()) => batch.durable = true,
                Err(e) => {
                    tracing::error!(target: "vigil::forwarder", records = n, error = %e, "spool_write_failed");
                    self.spool.segments().delete(batch.seq);
                    self.strand(batch);
                    return;
                }
            }
        }
        self.metrics.spooled.inc_by(n);
        self.spool.park(batch.seq, n);
    }

    /// Holds a batch neither delivered nor written to the spool in memory; beyond the
    /// queue's capacity the oldest held ones are lost, counted.
    fn strand(&mut self, batch: Batch) {
        self.stranded.push_back(batch);
        while self.stranded.len() > self.config.queue_capacity.max(1) as u64 {
            let Some(oldest) = self.stranded.pop_front() else {
                break;
            };
            if self.stranded.is_empty() {
                // The newest batch alone is over the bound: kept.
                self.stranded.push_front(oldest);
                break;
            }
            self.lose(&oldest, "held in memory beyond the queue's capacity");
        }
    }

    /// The oldest batch held in memory: to the spool if it takes it now (it then
    /// waits there like the others), else one try; a failure keeps it first in line.
    async fn retry_stranded(&mut self) {
        let Some(batch) = self.stranded.pop_front() else {
            return;
        };
        let n = batch.len() as u64;
        if self.spool.segments().rewrite(batch.seq, &batch).is_ok() {
            self.metrics.spooled.inc_by(n);
            self.spool.park(batch.seq, n);
            return;
        }
        match self.delivery.deliver(&batch).await {
            Delivered::Stored => {
                self.metrics.sent.inc_by(n);
                self.down = false;
            }
            // As everywhere: the named records go (counted), the rest is held again.
            Delivered::Rejected { why, records: bad } => {
                let kept = (!bad.is_empty() && bad.iter().all(|&i| i < batch.len()))
                    .then(|| batch.without(&bad))
                    .filter(|kept| !kept.is_empty());
                let refused = n - kept.as_ref().map_or(0, |k| k.len() as u64);
                tracing::error!(target: "vigil::forwarder", records = refused, reason = %why, "prediction_records_rejected");
                self.metrics.dropped.inc_by(refused);
                if let Some(kept) = kept {
                    self.stranded.push_front(kept);
                }
            }
            Delivered::Failed(_) => {
                self.metrics.retried.inc_by(n);
                self.stranded.push_front(batch);
            }
        }
    }

    /// At shutdown, the batches held in memory go to the spool if it takes them now;
    /// the others are lost, counted.
    fn give_up_stranded(&mut self) {
        while let Some(batch) = self.stranded.pop_front() {
            match self.spool.segments().rewrite(batch.seq, &batch) {
                Ok(()) => {
                    self.metrics.spooled.inc_by(batch.len() as u64);
                    self.spool.park(batch.seq, batch.len() as u64);
                }
                Err(_) => self.lose(&batch, "the spool cannot be written at shutdown"),
            }
        }
    }

    fn lose(&self, batch: &Batch, why: &str) {
        let n = batch.len() as u64;
        tracing::error!(target: "vigil::forwarder", records = n, reason = why, "prediction_records_lost");
        self.metrics.dropped.inc_by(n);
    }

    /// Tries the oldest parked batch once; success deletes it and marks deliveries
    /// as working again.
    async fn replay_one(&mut self) {
        let Some(batch) = self.spool.oldest() else {
            return;
        };
        let n = batch.len() as u64;
        match self.delivery.deliver(&batch).await {
            Delivered::Stored => {
                self.metrics.sent.inc_by(n);
                self.spool.delete(batch.seq);
                if self.down {
                    tracing::info!(target: "vigil::forwarder", spooled = self.spool.records(), "collector_reachable");
                }
                self.down = false;
            }
            // The named records leave the segment (counted); the rest stay for the
            // next replay. A refusal that names none drops the segment.
            Delivered::Rejected { why, records: bad } => {
                let kept = (!bad.is_empty() && bad.iter().all(|&i| i < batch.len()))
                    .then(|| batch.without(&bad))
                    .filter(|kept| !kept.is_empty());
                let refused = match kept.map(|k| (k.len(), self.spool.replace(&k))) {
                    Some((kept, Ok(()))) => n - kept as u64,
                    Some((_, Err(e))) => {
                        tracing::error!(target: "vigil::forwarder", records = n, error = %e, "spool_write_failed");
                        self.spool.delete(batch.seq);
                        n
                    }
                    None => {
                        self.spool.delete(batch.seq);
                        n
                    }
                };
                tracing::error!(target: "vigil::forwarder", records = refused, reason = %why, "prediction_records_rejected");
                self.metrics.dropped.inc_by(refused);
            }
            // Each failed replay is a retry of its records, and the first failure of
            // an outage is logged here too: one that begins with batches already
            // spooled (a restart while the collector answers 500) went unseen.
            Delivered::Failed(why) => {
                self.metrics.retried.inc_by(n);
                if !self.down {
                    tracing::warn!(target: "vigil::forwarder", records = n, reason = %why, "collector_unreachable");
                }
                self.down = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, OnceLock, mpsc};
    use std::time::{Duration, Instant};

    use vigil_records::RecordRef;

    use vigil_test_support::until;

    use crate::testing::{dir, ids, metrics, record};

    /// How long a test waits for a state the worker reaches on its own.
    const PATIENCE: Duration = Duration::from_secs(30);
    use crate::{Batch, Delivered, Delivery, Forwarder, ForwarderConfig};

    /// Takes every batch as stored; tells the test when each came and what it held, and
    /// while it delivers the first, submits `arriving` as handlers would meanwhile.
    struct Arrivals {
        forwarder: Arc<OnceLock<Forwarder>>,
        arriving: Vec<&'static str>,
        seen: mpsc::Sender<(Instant, Vec<String>)>,
    }

    impl Delivery for Arrivals {
        async fn deliver(&mut self, batch: &Batch) -> Delivered {
            for id in std::mem::take(&mut self.arriving) {
                let forwarder = self.forwarder.get().expect("set before the first record");
                forwarder.persist_now(forwarder.submit(&RecordRef::from(&record(id))));
            }
            let _ = self.seen.send((Instant::now(), ids(batch)));
            Delivered::Stored
        }
    }

    /// Fails the first `failures` deliveries, then stores.
    struct FailsFirst {
        failures: usize,
    }

    impl Delivery for FailsFirst {
        async fn deliver(&mut self, _: &Batch) -> Delivered {
            if self.failures == 0 {
                return Delivered::Stored;
            }
            self.failures -= 1;
            Delivered::Failed("status 500".into())
        }
    }

    /// A replay of a spooled batch that fails is a retry of its records, counted as the
    /// in-line retries are: records found in the spool at start and refused twice count
    /// twice, then go.
    #[tokio::test]
    async fn failed_replays_of_spooled_batches_count_as_retries() {
        let spool = dir();
        let mut config = ForwarderConfig::new(spool.clone());
        config.batch_size = 3;
        // Left in the spool by a collector that refuses every try.
        let first = metrics();
        let (handle, task) = Forwarder::start(
            config.clone(),
            first.clone(),
            FailsFirst {
                failures: usize::MAX,
            },
        )
        .unwrap();
        for id in ["a", "b", "c"] {
            handle.persist_now(handle.submit(&RecordRef::from(&record(id))));
        }
        until(PATIENCE, "never spooled", || {
            first.count(crate::Outcome::Spooled) >= 3
        })
        .await;
        task.finish().await;
        let m = metrics();
        let (_handle, task) =
            Forwarder::start(config, m.clone(), FailsFirst { failures: 2 }).unwrap();
        until(PATIENCE, "never stored", || {
            m.count(crate::Outcome::Sent) >= 3
        })
        .await;
        assert_eq!(m.count(crate::Outcome::Retried), 6);
        task.finish().await;
        let _ = std::fs::remove_dir_all(&spool);
    }

    /// Fails while `broken`, then stores.
    struct Switch {
        broken: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Delivery for Switch {
        async fn deliver(&mut self, _: &Batch) -> Delivered {
            if self.broken.load(std::sync::atomic::Ordering::SeqCst) {
                Delivered::Failed("status 500".into())
            } else {
                Delivered::Stored
            }
        }
    }

    /// A collector back after the last replay: at shutdown the queued batch still gets
    /// its one try (it went to the spool untried while deliveries were down).
    #[tokio::test]
    async fn a_shutdown_while_deliveries_are_down_tries_them_once_more() {
        let spool = dir();
        let mut config = ForwarderConfig::new(spool.clone());
        config.batch_size = 2;
        config.attempts = 1;
        // No replay nor flush tick of its own before the shutdown.
        config.backoff = Duration::from_secs(3600);
        config.flush_interval = Duration::from_secs(3600);
        let broken = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let m = metrics();
        let (handle, task) = Forwarder::start(
            config,
            m.clone(),
            Switch {
                broken: broken.clone(),
            },
        )
        .unwrap();
        for id in ["a", "b"] {
            handle.persist_now(handle.submit(&RecordRef::from(&record(id))));
        }
        // The batch failed, then its two replays (at once, and the replay timer's
        // first tick): down, and nothing more until an hour from now.
        until(PATIENCE, "never replayed", || {
            m.count(crate::Outcome::Retried) >= 4
        })
        .await;
        broken.store(false, std::sync::atomic::Ordering::SeqCst);
        handle.persist_now(handle.submit(&RecordRef::from(&record("c"))));
        assert_eq!(task.finish().await, 1);
        assert_eq!(m.count(crate::Outcome::Sent), 3);
        assert_eq!(m.spool.get(), 0);
        let left = std::fs::read_dir(&spool)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "vgl")
            })
            .count();
        // The segment of the filling batch that shutdown found empty.
        assert!(left <= 1, "{left} segments left");
        let _ = std::fs::remove_dir_all(&spool);
    }

    /// Fails while `broken`; then refuses the first record of the next batch once (a
    /// 422 naming it), then stores.
    struct BrokenThenPicky {
        broken: Arc<std::sync::atomic::AtomicBool>,
        refused_one: bool,
    }

    impl Delivery for BrokenThenPicky {
        async fn deliver(&mut self, _: &Batch) -> Delivered {
            if self.broken.load(std::sync::atomic::Ordering::SeqCst) {
                return Delivered::Failed("status 500".into());
            }
            if !self.refused_one {
                self.refused_one = true;
                return Delivered::Rejected {
                    why: "status 422".into(),
                    records: vec![0],
                };
            }
            Delivered::Stored
        }
    }

    /// A full disk and a collector down at once: a batch the spool cannot take is held
    /// in memory (counted for the shutdown) and delivered once the collector is back,
    /// less the record it refuses. It was dropped at once, logged as
    /// `spool_write_failed` ("the records stay in memory").
    #[tokio::test]
    async fn a_batch_the_spool_cannot_take_waits_in_memory_for_the_collector() {
        let root = dir();
        let spool = root.join("spool");
        let mut config = ForwarderConfig::new(spool.clone());
        config.batch_size = 3;
        config.attempts = 1;
        let broken = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let m = metrics();
        let delivery = BrokenThenPicky {
            broken: broken.clone(),
            refused_one: false,
        };
        let (handle, task) = Forwarder::start(config, m.clone(), delivery).unwrap();
        let held = task.held();
        // No segment can be created any more: the spool's directory is now a file.
        std::fs::remove_dir_all(&spool).unwrap();
        std::fs::write(&spool, b"not a directory").unwrap();
        // The first batch goes to the segment opened before (an unlinked file now: its
        // records cannot be read back, lost); the second has no segment at all.
        for id in ["a1", "a2", "a3", "b1", "b2", "b3"] {
            handle.persist_now(handle.submit(&RecordRef::from(&record(id))));
        }
        until(PATIENCE, "never tried again from memory", || {
            m.count(crate::Outcome::Retried) >= 3 && m.count(crate::Outcome::Dropped) >= 3
        })
        .await;
        assert_eq!(held.get(), 3);
        broken.store(false, std::sync::atomic::Ordering::SeqCst);
        until(PATIENCE, "never delivered", || {
            m.count(crate::Outcome::Sent) >= 2
        })
        .await;
        // The unreadable segment's three, and the one record refused: its two
        // neighbours were sent again without it.
        assert_eq!(m.count(crate::Outcome::Dropped), 4);
        assert_eq!(held.get(), 0);
        task.finish().await;
        let _ = std::fs::remove_dir_all(&root);
    }

    /// Waits for its first delivery to be let go; stores everything.
    struct Held {
        started: Option<mpsc::Sender<()>>,
        release: Arc<tokio::sync::Notify>,
    }

    impl Delivery for Held {
        async fn deliver(&mut self, _: &Batch) -> Delivered {
            if let Some(started) = self.started.take() {
                let _ = started.send(());
                self.release.notified().await;
            }
            Delivered::Stored
        }
    }

    /// Batches that handlers park (the queue is full) while the worker is held up in a
    /// post count in `prediction_log_spool_records` at once, not when the worker comes
    /// back (seconds later, with a collector that hangs), and once.
    #[tokio::test]
    async fn batches_parked_while_the_worker_is_held_up_count_in_the_spool_at_once() {
        let spool = dir();
        let mut config = ForwarderConfig::new(spool.clone());
        config.batch_size = 2;
        config.queue_capacity = 2;
        let m = metrics();
        let (started, held) = mpsc::channel();
        let release = Arc::new(tokio::sync::Notify::new());
        let delivery = Held {
            started: Some(started),
            release: release.clone(),
        };
        let (handle, task) = Forwarder::start(config, m.clone(), delivery).unwrap();
        let submit = |id: &str| handle.persist_now(handle.submit(&RecordRef::from(&record(id))));
        submit("a");
        submit("b");
        held.recv_timeout(Duration::from_secs(30)).unwrap();
        // Room for one batch in memory: of the next four, three leave it.
        for id in ["c", "d", "e", "f", "g", "h", "i", "j"] {
            submit(id);
        }
        assert_eq!(m.count(crate::Outcome::Spooled), 6);
        assert_eq!(m.spool.get(), 6);
        release.notify_one();
        until(PATIENCE, "never stored", || {
            m.count(crate::Outcome::Sent) >= 10
        })
        .await;
        assert_eq!(m.spool.get(), 0);
        task.finish().await;
        let _ = std::fs::remove_dir_all(&spool);
    }

    /// A tick takes one partial batch: records that arrive while it is delivered wait
    /// for the next tick, except those that fill a batch, which goes at once.
    #[tokio::test]
    async fn a_tick_takes_one_partial_batch_and_a_full_one_goes_at_once() {
        let tick = Duration::from_secs(1);
        let mut config = ForwarderConfig::new(dir());
        config.batch_size = 4;
        config.flush_interval = tick;
        // A worker starved at idle priority on a busy machine is raised within ~0.1 s,
        // so a late tick cannot eat up the gap asserted below.
        config.catch_up_after = Duration::from_millis(100);
        let forwarder = Arc::new(OnceLock::new());
        let (seen, deliveries) = mpsc::channel();
        let delivery = Arrivals {
            forwarder: forwarder.clone(),
            arriving: vec!["b", "c", "d", "e", "f", "g"],
            seen,
        };
        let (handle, task) = Forwarder::start(config, metrics(), delivery).unwrap();
        forwarder.set(handle.clone()).unwrap();
        handle.persist_now(handle.submit(&RecordRef::from(&record("a"))));

        let next = || deliveries.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(next().1, ["a"], "a tick's partial batch");
        let (full_at, full) = next();
        assert_eq!(full, ["b", "c", "d", "e"], "the batch they filled, at once");
        let (rest_at, rest) = next();
        assert_eq!(rest, ["f", "g"], "the next tick's partial");
        let gap = rest_at - full_at;
        assert!(gap >= tick / 2, "{gap:?} after the full batch");
        assert_eq!(task.finish().await, 0);
    }
}
