//! The inference threads: a fixed pool (one per slot, off the async executor), a
//! bounded queue in front of them, and an immediate "overloaded" when it is full.
//!
//! A thread that picks up a job also takes the other queued jobs for the same model
//! and runs them as one tract batch (dynamic batching, as Triton's batcher does).
//! Under load this turns one thread hand-off per request into one per batch.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::batch::{PredictJob, RanOn, run_jobs, take_batch};

/// Keeps an inference thread busy until the sender is dropped (tests).
#[cfg(feature = "test-util")]
pub(super) struct Hold {
    pub release: std::sync::mpsc::Receiver<()>,
    pub started: std::sync::mpsc::Sender<()>,
}

struct Queue {
    jobs: VecDeque<PredictJob>,
    #[cfg(feature = "test-util")]
    holds: VecDeque<Hold>,
    /// Threads parked waiting for work.
    idle: usize,
    shutdown: bool,
}

/// The queue was full.
#[derive(Debug)]
pub(super) struct Full;

pub(super) struct Pool {
    queue: Mutex<Queue>,
    work: Condvar,
    max_queue: usize,
    /// Most rows a merged batch may hold.
    max_rows: usize,
    /// Holds taken and not yet released (tests).
    #[cfg(feature = "test-util")]
    held: std::sync::atomic::AtomicUsize,
}

impl Pool {
    /// Starts `threads` inference threads; at most `max_queue` jobs wait beyond the
    /// idle threads; merged batches hold at most `max_rows` rows.
    pub fn start(threads: usize, max_queue: usize, max_rows: usize) -> Arc<Self> {
        let pool = Arc::new(Self {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                #[cfg(feature = "test-util")]
                holds: VecDeque::new(),
                idle: 0,
                shutdown: false,
            }),
            work: Condvar::new(),
            max_queue,
            max_rows: max_rows.max(1),
            #[cfg(feature = "test-util")]
            held: std::sync::atomic::AtomicUsize::new(0),
        });
        for i in 0..threads.max(1) {
            let pool = pool.clone();
            std::thread::Builder::new()
                .name(format!("vigil-infer-{i}"))
                .spawn(move || {
                    vigil_telemetry::threads::prefer_batch_scheduling();
                    pool.serve()
                })
                .expect("spawn inference thread");
        }
        pool
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock()
    }

    pub fn max_queue(&self) -> usize {
        self.max_queue
    }

    pub fn max_rows(&self) -> usize {
        self.max_rows
    }

    /// Jobs waiting for a thread right now.
    pub fn waiting(&self) -> usize {
        self.lock().jobs.len()
    }

    /// Queues `job`, unless as many jobs wait as the queue holds beyond the idle
    /// threads.
    pub fn push(&self, mut job: PredictJob) -> Result<(), Full> {
        let wake = {
            let mut q = self.lock();
            if q.jobs.len() >= self.max_queue + q.idle {
                return Err(Full);
            }
            job.queued.enter();
            q.jobs.push_back(job);
            // Waking a parked thread is a syscall and a context switch: wake one only
            // when this is the first waiting job. A thread that finds more work behind
            // its batch wakes the next one (see `serve`).
            q.idle > 0 && q.jobs.len() == 1
        };
        // After the unlock, so the woken thread does not wait for this one to let go
        // of the lock. No wake-up is lost: a thread counted in `idle` went to sleep
        // on the condvar before it released the lock this thread then took.
        if wake {
            self.work.notify_one();
        }
        Ok(())
    }

    /// Queues jobs admitted to a connection thread that could not run them there
    /// (its runner was dropped), past the bound: they were admitted already.
    pub fn hand_over(&self, jobs: impl IntoIterator<Item = PredictJob>) {
        let mut q = self.lock();
        for mut job in jobs {
            job.queued.enter();
            q.jobs.push_back(job);
        }
        drop(q);
        self.work.notify_all();
    }

    /// Whether a test holds a thread now.
    #[cfg(feature = "test-util")]
    pub fn held(&self) -> bool {
        self.held.load(std::sync::atomic::Ordering::SeqCst) > 0
    }

    /// Takes one thread away until `hold.release` is dropped.
    #[cfg(feature = "test-util")]
    pub fn hold(&self, hold: Hold) {
        self.held.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.lock().holds.push_back(hold);
        self.work.notify_one();
    }

    /// Stops the threads once the queue they are on is empty.
    pub fn shut_down(&self) {
        self.lock().shutdown = true;
        self.work.notify_all();
    }

    /// One inference thread: take work, merge what can be merged, run, answer.
    fn serve(&self) {
        loop {
            let (work, wake) = {
                let mut q = self.lock();
                loop {
                    #[cfg(feature = "test-util")]
                    if let Some(hold) = q.holds.pop_front() {
                        break (Work::Hold(hold), false);
                    }
                    if let Some(first) = q.jobs.pop_front() {
                        let batch = take_batch(&mut q.jobs, first, self.max_rows);
                        break (Work::Batch(batch), !q.jobs.is_empty() && q.idle > 0);
                    }
                    if q.shutdown {
                        return;
                    }
                    q.idle += 1;
                    self.work.wait(&mut q);
                    q.idle -= 1;
                }
            };
            // Outside the lock, as in `push`.
            if wake {
                self.work.notify_one();
            }
            match work {
                Work::Batch(jobs) => run_jobs(jobs, RanOn::InferenceThread),
                #[cfg(feature = "test-util")]
                Work::Hold(hold) => {
                    let _ = hold.started.send(());
                    let _ = hold.release.recv();
                    self.held.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        }
    }
}

enum Work {
    Batch(Vec<PredictJob>),
    #[cfg(feature = "test-util")]
    Hold(Hold),
}
