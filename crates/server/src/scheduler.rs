//! Inference scheduling: a fixed pool of inference threads (one per slot, off the async
//! executor), a bounded queue in front of them, and an immediate "overloaded" when the
//! queue is full. Queue time and compute time are measured apart, as Triton reports
//! them.
//!
//! A worker that picks up a job also takes the other queued jobs for the same model
//! and runs them as one tract batch (dynamic batching, as Triton's batcher does).
//! Under load this turns one thread hand-off per request into one per batch, which
//! on a small machine is most of the cost of running a tiny model off-thread.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::oneshot;
use vigil_model::{Batch, LoadedModel, ModelError, Output};

use crate::error::ApiError;

/// What a scheduled prediction produced and how long each phase took.
#[derive(Debug)]
pub struct Scheduled {
    pub predictions: Vec<Output>,
    /// From enqueueing to a worker picking the job up.
    pub queue: Duration,
    /// Model compute time of the (possibly merged) batch the job ran in.
    pub compute: Duration,
}

type Reply = oneshot::Sender<Result<Scheduled, ModelError>>;

struct PredictJob {
    model: Arc<LoadedModel>,
    values: Vec<f32>,
    rows: usize,
    enqueued: Instant,
    depth: Gauge,
    reply: Reply,
}

enum Job {
    Predict(PredictJob),
    /// Keeps a worker busy until the sender is dropped (tests).
    #[cfg(feature = "test-util")]
    Hold {
        release: std::sync::mpsc::Receiver<()>,
        started: std::sync::mpsc::Sender<()>,
    },
}

struct Queue {
    jobs: VecDeque<Job>,
    /// Workers parked waiting for work.
    idle: usize,
    shutdown: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    work: Condvar,
    max_queue: usize,
    /// Most rows a merged batch may hold.
    max_rows: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock()
    }
}

/// Stops the workers when the last [`Scheduler`] clone goes away.
struct Owner(Arc<Shared>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.lock().shutdown = true;
        self.0.work.notify_all();
    }
}

/// Shared by all models: slots are CPU cores, not per-model resources.
#[derive(Clone)]
pub struct Scheduler {
    shared: Arc<Shared>,
    _owner: Arc<Owner>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("max_queue", &self.shared.max_queue)
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// `concurrency` inference threads; at most `max_queue` jobs wait beyond the idle
    /// workers; merged batches hold at most `max_rows` rows.
    pub fn new(concurrency: usize, max_queue: usize, max_rows: usize) -> Self {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                idle: 0,
                shutdown: false,
            }),
            work: Condvar::new(),
            max_queue,
            max_rows: max_rows.max(1),
        });
        for i in 0..concurrency.max(1) {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("vigil-infer-{i}"))
                .spawn(move || {
                    vigil_telemetry::threads::prefer_batch_scheduling();
                    worker(&shared)
                })
                .expect("spawn inference thread");
        }
        Self {
            _owner: Arc::new(Owner(shared.clone())),
            shared,
        }
    }

    /// Jobs waiting for a worker right now.
    pub fn waiting(&self) -> usize {
        self.shared.lock().jobs.len()
    }

    /// Runs `batch` on `model` on an inference thread.
    pub async fn run(
        &self,
        model: Arc<LoadedModel>,
        batch: Batch,
        depth: &Gauge,
    ) -> Result<Scheduled, ApiError> {
        let (reply, answer) = oneshot::channel();
        // Everything but the push itself happens outside the lock: the inference
        // threads take the same lock for every batch, and on a small machine a waiter
        // that finds it held spins, then yields its CPU (`sched_yield`).
        let job = Job::Predict(PredictJob {
            model,
            values: batch.values,
            rows: batch.rows,
            enqueued: Instant::now(),
            depth: depth.clone(),
            reply,
        });
        let wake = {
            let mut q = self.shared.lock();
            if q.jobs.len() >= self.shared.max_queue + q.idle {
                return Err(ApiError::Overloaded);
            }
            depth.inc();
            q.jobs.push_back(job);
            // Waking a parked thread is a syscall and a context switch: wake one only
            // when this is the first waiting job. A worker that finds more work
            // behind its batch wakes the next one (see `worker`).
            q.idle > 0 && q.jobs.len() == 1
        };
        // After the unlock, so the woken thread does not wait for this one to let go
        // of the lock. No wake-up is lost: a worker counted in `idle` went to sleep
        // on the condvar before it released the lock this thread then took.
        if wake {
            self.shared.work.notify_one();
        }
        match answer.await {
            Ok(Ok(scheduled)) => Ok(scheduled),
            Ok(Err(e)) => Err(ApiError::Model(e)),
            Err(_) => Err(ApiError::Internal("inference worker stopped".into())),
        }
    }

    /// Takes one inference thread away until the returned sender is dropped (tests use
    /// it to make the service look busy). Returns once the thread is held.
    #[cfg(feature = "test-util")]
    pub fn occupy(&self) -> std::sync::mpsc::Sender<()> {
        let (hold, release) = std::sync::mpsc::channel();
        let (started, is_started) = std::sync::mpsc::channel();
        {
            let mut q = self.shared.lock();
            q.jobs.push_front(Job::Hold { release, started });
            self.shared.work.notify_one();
        }
        is_started.recv().expect("a worker picks up the hold");
        hold
    }
}

/// One inference thread: take work, merge what can be merged, run, answer.
fn worker(shared: &Shared) {
    loop {
        let (jobs, wake) = {
            let mut q = shared.lock();
            loop {
                if let Some(first) = q.jobs.pop_front() {
                    let taken = take_batch(&mut q, first, shared.max_rows);
                    break (taken, !q.jobs.is_empty() && q.idle > 0);
                }
                if q.shutdown {
                    return;
                }
                q.idle += 1;
                shared.work.wait(&mut q);
                q.idle -= 1;
            }
        };
        // Outside the lock, as in `Scheduler::run`.
        if wake {
            shared.work.notify_one();
        }
        match jobs {
            Taken::Predict(jobs) => run_jobs(jobs),
            #[cfg(feature = "test-util")]
            Taken::Hold { release, started } => {
                let _ = started.send(());
                let _ = release.recv();
            }
        }
    }
}

enum Taken {
    Predict(Vec<PredictJob>),
    #[cfg(feature = "test-util")]
    Hold {
        release: std::sync::mpsc::Receiver<()>,
        started: std::sync::mpsc::Sender<()>,
    },
}

/// The first job plus every queued job for the same model that fits in `max_rows`.
/// Jobs whose caller has gone away are dropped here instead of being computed.
fn take_batch(q: &mut Queue, first: Job, max_rows: usize) -> Taken {
    // Without the test-util feature the match has a single arm.
    #[allow(clippy::infallible_destructuring_match)]
    let first = match first {
        Job::Predict(job) => job,
        #[cfg(feature = "test-util")]
        Job::Hold { release, started } => return Taken::Hold { release, started },
    };
    let mut rows = first.rows;
    let mut batch = vec![first];
    let mut i = 0;
    while i < q.jobs.len() {
        let take = match &q.jobs[i] {
            Job::Predict(job) => {
                job.reply.is_closed()
                    || (Arc::ptr_eq(&job.model, &batch[0].model) && rows + job.rows <= max_rows)
            }
            #[cfg(feature = "test-util")]
            Job::Hold { .. } => false,
        };
        if take {
            if let Some(Job::Predict(job)) = q.jobs.remove(i) {
                if job.reply.is_closed() {
                    job.depth.dec();
                } else {
                    rows += job.rows;
                    batch.push(job);
                }
            }
        } else {
            i += 1;
        }
    }
    Taken::Predict(batch)
}

/// Runs jobs of one model as one batch and answers each with its own rows.
fn run_jobs(mut jobs: Vec<PredictJob>) {
    let picked = Instant::now();
    for job in &jobs {
        job.depth.dec();
    }
    jobs.retain(|j| !j.reply.is_closed());
    if jobs.is_empty() {
        return;
    }
    let model = jobs[0].model.clone();
    let (values, rows) = if jobs.len() == 1 {
        (std::mem::take(&mut jobs[0].values), jobs[0].rows)
    } else {
        let rows = jobs.iter().map(|j| j.rows).sum();
        let mut values = Vec::with_capacity(rows * model.runtime.features());
        for job in &jobs {
            values.extend_from_slice(&job.values);
        }
        (values, rows)
    };
    let started = Instant::now();
    let result = predict(&model, &values, rows);
    let compute = started.elapsed();
    match result {
        Ok(mut predictions) => {
            // Drift bookkeeping takes a short lock: keep it off the async threads too.
            model
                .drift
                .observe(&values, model.runtime.features(), &predictions);
            // Hand each job its rows, last job first so `split_off` stays cheap.
            for job in jobs.into_iter().rev() {
                let mine = predictions.split_off(predictions.len() - job.rows);
                let queue = picked.saturating_duration_since(job.enqueued);
                let _ = job.reply.send(Ok(Scheduled {
                    predictions: mine,
                    queue,
                    compute,
                }));
            }
        }
        Err(_) if jobs.len() > 1 => {
            // One bad job must not fail its batch mates: run each alone to attribute
            // the failure (a rare path; it costs the batch a second run).
            for mut job in jobs {
                let values = std::mem::take(&mut job.values);
                let started = Instant::now();
                let result = predict(&model, &values, job.rows);
                let compute = started.elapsed();
                if let Ok(predictions) = &result {
                    model
                        .drift
                        .observe(&values, model.runtime.features(), predictions);
                }
                let queue = picked.saturating_duration_since(job.enqueued);
                let _ = job.reply.send(result.map(|predictions| Scheduled {
                    predictions,
                    queue,
                    compute,
                }));
            }
        }
        Err(e) => {
            if let Some(job) = jobs.pop() {
                let _ = job.reply.send(Err(e));
            }
        }
    }
}

/// Runs the model; a panic inside the runtime comes back as a model fault (the runtime
/// catches it), not a dead thread.
fn predict(model: &LoadedModel, values: &[f32], rows: usize) -> Result<Vec<Output>, ModelError> {
    model.runtime.infer(values, rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_model::ModelRegistry;

    const ROW: [f32; 6] = [70.0, 250.0, 2.5, 45.0, 1500.0, 12.0];
    const HOT: [f32; 6] = [95.0, 250.0, 6.0, 70.0, 1500.0, 18.0];

    fn batch(rows: &[[f32; 6]]) -> Batch {
        Batch {
            values: rows.concat(),
            rows: rows.len(),
        }
    }

    #[tokio::test]
    async fn concurrent_jobs_each_get_their_own_rows() {
        let registry = ModelRegistry::bundled().unwrap();
        let model = registry.default_model().clone();
        let scheduler = Scheduler::new(1, 64, 1024);
        let depth = Gauge::default();
        let inputs: Vec<Vec<[f32; 6]>> = (0..32)
            .map(|i| {
                (0..=i % 3)
                    .map(|k| if (i + k) % 2 == 0 { ROW } else { HOT })
                    .collect()
            })
            .collect();
        let runs = inputs
            .iter()
            .map(|rows| scheduler.run(model.clone(), batch(rows), &depth));
        let results = futures_util::future::join_all(runs).await;
        for (rows, done) in inputs.iter().zip(results) {
            let done = done.unwrap();
            assert_eq!(done.predictions.len(), rows.len());
            for (row, p) in rows.iter().zip(&done.predictions) {
                let expected = if row == &ROW { 0 } else { 1 };
                let Output::Class(p) = p else {
                    panic!("a classifier answered {p:?}")
                };
                assert_eq!(p.class_index, expected);
            }
        }
        assert_eq!(depth.get(), 0);
        assert_eq!(scheduler.waiting(), 0);
    }
}
