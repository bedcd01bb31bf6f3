//! The worker's share of the CPU. Storing records can wait for CPU the request path
//! does not want: while the worker keeps up it runs at idle priority, so it never
//! takes a core from a handler (under load a small machine has idle moments between
//! requests, and the records are stored in them). A record older than
//! `catch_up_after` means the worker is starved: a watchdog thread (a fair share,
//! `SCHED_BATCH` at nice 0, like the worker's own default) raises it until it has
//! caught up, so records are never left behind, whatever else wants the CPU.
//!
//! A lowered worker must not hold a lock the request path waits for: it takes the
//! queue's lock only at a fair share ([`Priority::fair`]), since a thread preempted at
//! idle priority may wait long for the CPU again. SQLite's write lock, which other
//! writers (feedback, cards) wait for up to the busy timeout, it does hold while
//! lowered: so the watchdog also raises the worker when one of its rounds has lasted
//! `catch_up_after`, whatever the queue holds, and never waits long for the queue's
//! lock itself.
//!
//! Where the process may not raise a thread it lowered (no `CAP_SYS_NICE`), the
//! worker stays at a fair share throughout
//! ([`vigil_telemetry::threads::Background::current`] is `None`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use vigil_telemetry::threads::Background;

use crate::queue::Queue;

#[derive(Debug)]
pub(crate) struct Priority {
    worker: Background,
    /// The worker is at idle priority.
    lowered: AtomicBool,
    /// The worker has stopped or is unwinding: the watchdog must not touch its thread
    /// again (a thread's handle means nothing once it has exited).
    stopped: AtomicBool,
    /// Held by the watchdog while it raises the worker, and by the worker while it
    /// sets `stopped`: after `stop` returns the watchdog never acts again.
    acting: Mutex<()>,
    /// When the worker's current round began, in milliseconds after `epoch` plus one;
    /// 0 between rounds.
    round: AtomicU64,
    epoch: Instant,
    /// A record or a round that waited this long means the worker is starved.
    catch_up_after: Duration,
}

impl Priority {
    /// Called on the worker's thread, which is at a fair share: starts the watchdog
    /// (before any lowering: a thread inherits its creator's policy).
    pub(crate) fn start(queue: &Arc<Queue>, catch_up_after: Duration) -> Option<Arc<Self>> {
        let worker = Background::current()?;
        let priority = Arc::new(Self {
            worker,
            lowered: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            acting: Mutex::new(()),
            round: AtomicU64::new(0),
            epoch: Instant::now(),
            // A watchdog that looked every 0 ms would spin.
            catch_up_after: catch_up_after.max(Duration::from_millis(40)),
        });
        let (watch, queue) = (priority.clone(), Arc::downgrade(queue));
        std::thread::Builder::new()
            .name("vigil-fwd-watch".into())
            .spawn(move || watch.watch(&queue))
            .ok()?;
        Some(priority)
    }

    /// The worker woke up for a round of work.
    pub(crate) fn begin(&self) {
        let now = self.epoch.elapsed().as_millis() as u64 + 1;
        self.round.store(now, Ordering::Relaxed);
    }

    /// The worker, after a round: at idle priority again once nothing in memory is
    /// older than `fresh` (it has caught up).
    pub(crate) fn settle(&self, queue: &Queue, fresh: Duration) {
        self.round.store(0, Ordering::Relaxed);
        // Not lowered means at a fair share (only the worker lowers itself), so the
        // queue's lock may be taken here.
        if self.lowered.load(Ordering::Relaxed) {
            return;
        }
        // Lowered first, then marked: a watchdog that looks in between finds the
        // worker not lowered and looks again next time, instead of marking a raise
        // that the lowering then undoes.
        if queue.oldest().is_none_or(|age| age < fresh) && self.worker.lower() {
            self.lowered.store(true, Ordering::Relaxed);
        }
    }

    /// Runs `f` (which takes the queue's lock) at a fair share, and lowers the worker
    /// again afterwards if it was lowered.
    pub(crate) fn fair<T>(&self, f: impl FnOnce() -> T) -> T {
        if !self.lowered.swap(false, Ordering::Relaxed) {
            return f();
        }
        if !self.worker.raise() {
            self.lowered.store(true, Ordering::Relaxed);
            return f();
        }
        let out = f();
        if self.worker.lower() {
            self.lowered.store(true, Ordering::Relaxed);
        }
        out
    }

    /// The worker is done or unwinding (and, shutting down, its last round must not
    /// wait for idle CPU): raised, and the watchdog leaves its thread alone from now.
    pub(crate) fn stop(&self) {
        if self.lowered.swap(false, Ordering::Relaxed) {
            self.worker.raise();
        }
        let _acting = self.acting.lock();
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// Four times per `catch_up_after`, raises a lowered worker that is behind.
    fn watch(&self, queue: &Weak<Queue>) {
        loop {
            std::thread::sleep(self.catch_up_after / 4);
            let Some(queue) = queue.upgrade() else { return };
            let _acting = self.acting.lock();
            if self.stopped.load(Ordering::Relaxed) {
                return;
            }
            if self.lowered.load(Ordering::Relaxed)
                && let Some(waited) = self.behind(&queue)
                && self.lowered.swap(false, Ordering::Relaxed)
            {
                tracing::debug!(target: "vigil::forwarder", waited_ms = waited.as_millis() as u64, "forwarder_raised");
                if !self.worker.raise() {
                    self.lowered.store(true, Ordering::Relaxed);
                }
            }
        }
    }

    /// How long the worker has been behind: a round running, or a record waiting, for
    /// `catch_up_after` or more. The queue's lock is waited for a millisecond at most
    /// (handlers hold it for microseconds); held longer, only the round counts.
    fn behind(&self, queue: &Queue) -> Option<Duration> {
        let round = match self.round.load(Ordering::Relaxed) {
            0 => None,
            began => Some(Duration::from_millis(
                (self.epoch.elapsed().as_millis() as u64 + 1).saturating_sub(began),
            )),
        };
        let oldest = queue.try_oldest(Duration::from_millis(1)).ok().flatten();
        round
            .into_iter()
            .chain(oldest)
            .max()
            .filter(|waited| *waited >= self.catch_up_after)
    }
}

/// Stops the watchdog when the worker's thread ends, by return or by panic.
pub(crate) struct StopOnExit(pub(crate) Option<Arc<Priority>>);

impl Drop for StopOnExit {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            p.stop();
        }
    }
}

#[cfg(test)]
mod tests {

    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadSchedulePolicy, thread_schedule_policy,
    };
    use vigil_records::RecordRef;

    use super::*;
    use crate::testing::{dir, metrics, queue_in, record};

    fn policy() -> NormalThreadSchedulePolicy {
        match thread_schedule_policy().unwrap() {
            ThreadSchedulePolicy::Normal(p) => p,
            other => panic!("{other:?}"),
        }
    }

    /// Waits for the watchdog to raise the calling thread (it sends no signal: the
    /// thread's policy is the only trace).
    fn raised_within(limit: Duration) {
        vigil_test_support::eventually_blocking(limit, || {
            if policy() == NormalThreadSchedulePolicy::Batch {
                Ok(())
            } else {
                Err("never raised".to_string())
            }
        })
    }

    #[test]
    fn the_worker_idles_while_it_keeps_up_and_is_raised_once_a_record_or_a_round_waits_too_long() {
        let dir = dir();
        let queue = Arc::new(queue_in(&dir, 100, 10, &metrics()));
        let (pushed, wait) = std::sync::mpsc::channel::<()>();
        let (settled, is_settled) = std::sync::mpsc::channel::<()>();
        let shared = queue.clone();
        // The test's thread plays the worker; the tests run as root, which may raise
        // a thread again.
        let worker = std::thread::spawn(move || {
            let queue = shared;
            let p = Priority::start(&queue, Duration::from_millis(100)).unwrap();
            let fresh = Duration::from_millis(200);
            // Nothing queued: caught up, so idle.
            p.settle(&queue, fresh);
            assert_eq!(policy(), NormalThreadSchedulePolicy::Idle);
            settled.send(()).unwrap();
            wait.recv().unwrap();
            // A record waits and nobody takes it: the watchdog raises the worker.
            raised_within(Duration::from_secs(10));
            // Still behind (the record is older than `fresh` now): it stays raised.
            std::thread::sleep(fresh);
            p.settle(&queue, fresh);
            assert_eq!(policy(), NormalThreadSchedulePolicy::Batch);
            // Caught up: idle again.
            let _ = queue.next_batch(true).unwrap();
            p.settle(&queue, fresh);
            assert_eq!(policy(), NormalThreadSchedulePolicy::Idle);
            // The queue's lock is taken at a fair share, then back to idle.
            assert_eq!(p.fair(policy), NormalThreadSchedulePolicy::Batch);
            assert_eq!(policy(), NormalThreadSchedulePolicy::Idle);
            // A round that goes on (a starved worker may hold the queue's lock or
            // SQLite's) gets it raised with nothing queued.
            p.begin();
            raised_within(Duration::from_secs(10));
            p.settle(&queue, fresh);
            assert_eq!(policy(), NormalThreadSchedulePolicy::Idle);
            // Stopping raises it for the last round.
            p.stop();
            assert_eq!(policy(), NormalThreadSchedulePolicy::Batch);
        });
        is_settled.recv().unwrap();
        queue.write(queue.push(&RecordRef::from(&record("p0"))));
        pushed.send(()).unwrap();
        worker.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
