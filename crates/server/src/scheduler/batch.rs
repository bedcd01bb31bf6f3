//! A batch: queued jobs of one model merged into one tract run, and each job answered
//! with its own rows. The inference threads and the connection threads run batches
//! the same way; only where they run differs.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::oneshot;
use vigil_model::{LoadedModel, ModelError, Output};

/// Where a batch ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RanOn {
    /// One of the scheduler's inference threads.
    InferenceThread,
    /// The connection thread that received the request, which ran it between reading
    /// requests because the model's batches are cheap (see `local`).
    ConnectionThread,
}

/// What a scheduled prediction produced and how long each phase took.
#[derive(Debug)]
pub struct Scheduled {
    pub predictions: Vec<Output>,
    /// From enqueueing to the batch starting.
    pub queue: Duration,
    /// Model compute time of the (possibly merged) batch the job ran in.
    pub compute: Duration,
    pub ran_on: RanOn,
}

pub(super) type Reply = oneshot::Sender<Result<Scheduled, ModelError>>;

pub(super) struct PredictJob {
    pub model: Arc<LoadedModel>,
    pub values: Vec<f32>,
    pub rows: usize,
    pub enqueued: Instant,
    pub queued: QueueCount,
    pub reply: Reply,
}

/// A job's place in `inference_queue_depth`, which counts the jobs waiting for an
/// inference thread (the queue that can fill and refuse): counted when the job enters
/// that queue, and uncounted exactly once, when it leaves it for a batch or is dropped
/// on any path (a caller gone, a thread or a process stopping).
pub(super) struct QueueCount {
    depth: Gauge,
    counted: bool,
}

impl QueueCount {
    pub fn new(depth: &Gauge) -> Self {
        Self {
            depth: depth.clone(),
            counted: false,
        }
    }

    pub fn enter(&mut self) {
        if !std::mem::replace(&mut self.counted, true) {
            self.depth.inc();
        }
    }

    pub fn leave(&mut self) {
        if std::mem::take(&mut self.counted) {
            self.depth.dec();
        }
    }
}

impl Drop for QueueCount {
    fn drop(&mut self) {
        self.leave();
    }
}

/// `first` plus every job in `queue` for the same model that fits in `max_rows`, in
/// order. Jobs whose caller has gone away are dropped here instead of being computed.
pub(super) fn take_batch(
    queue: &mut VecDeque<PredictJob>,
    first: PredictJob,
    max_rows: usize,
) -> Vec<PredictJob> {
    let mut rows = first.rows;
    let mut batch = vec![first];
    let mut i = 0;
    while i < queue.len() {
        let job = &queue[i];
        let take = job.reply.is_closed()
            || (Arc::ptr_eq(&job.model, &batch[0].model) && rows + job.rows <= max_rows);
        if !take {
            i += 1;
            continue;
        }
        if let Some(job) = queue.remove(i) {
            // A closed job is dropped here, and leaves the count with it.
            if !job.reply.is_closed() {
                rows += job.rows;
                batch.push(job);
            }
        }
    }
    batch
}

/// Runs jobs of one model as one batch and answers each with its own rows.
pub(super) fn run_jobs(mut jobs: Vec<PredictJob>, ran_on: RanOn) {
    let picked = Instant::now();
    for job in &mut jobs {
        job.queued.leave();
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
            model.cost.observe(compute, rows);
            // Drift bookkeeping takes a short lock; it runs where the batch ran.
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
                    ran_on,
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
                    ran_on,
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
