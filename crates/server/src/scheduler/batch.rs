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
pub enum Placement {
    /// On one of the scheduler's inference threads.
    InferenceThread,
    /// On the connection thread that received the request, which ran it between
    /// reading requests because the model's batches are cheap (see `local`).
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
    pub placement: Placement,
}

pub(super) type Reply = oneshot::Sender<Result<Scheduled, ModelError>>;

pub(super) struct PredictJob {
    pub model: Arc<LoadedModel>,
    pub values: Vec<f32>,
    pub rows: usize,
    pub enqueued: Instant,
    pub depth: Gauge,
    pub reply: Reply,
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
            if job.reply.is_closed() {
                job.depth.dec();
            } else {
                rows += job.rows;
                batch.push(job);
            }
        }
    }
    batch
}

/// Runs jobs of one model as one batch and answers each with its own rows.
pub(super) fn run_jobs(mut jobs: Vec<PredictJob>, placement: Placement) {
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
                    placement,
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
                    placement,
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
