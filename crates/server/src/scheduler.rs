//! Inference scheduling: a fixed number of inference slots (one blocking thread each),
//! a bounded wait for a slot, and an immediate "overloaded" when the wait line is full.
//! Queue time and compute time are measured apart, as Triton reports them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::Semaphore;
use vigil_model::{Batch, LoadedModel, ModelError, RowPrediction};

use crate::error::ApiError;

/// What a scheduled prediction produced and how long each phase took.
#[derive(Debug)]
pub struct Scheduled {
    pub predictions: Vec<RowPrediction>,
    pub queue: Duration,
    pub compute: Duration,
}

/// Shared by all models: slots are CPU cores, not per-model resources.
#[derive(Debug, Clone)]
pub struct Scheduler {
    slots: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_queue: usize,
}

/// Undoes the queue accounting however the wait ends (granted, or the client left).
struct Waiting<'a> {
    waiting: &'a AtomicUsize,
    depth: &'a Gauge,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        self.depth.dec();
    }
}

impl Scheduler {
    /// `concurrency` inference slots; at most `max_queue` requests wait for one.
    pub fn new(concurrency: usize, max_queue: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_queue,
        }
    }

    /// Takes an inference slot away (tests use it to make the service look busy).
    #[cfg(feature = "test-util")]
    pub fn occupy(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }

    /// Requests waiting for a slot right now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Runs `batch` on `model` off the async threads.
    pub async fn run(
        &self,
        model: Arc<LoadedModel>,
        batch: Batch,
        depth: &Gauge,
    ) -> Result<Scheduled, ApiError> {
        let enqueued = Instant::now();
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_queue {
                    self.waiting.fetch_sub(1, Ordering::AcqRel);
                    return Err(ApiError::Overloaded);
                }
                depth.inc();
                let _waiting = Waiting {
                    waiting: &self.waiting,
                    depth,
                };
                self.slots
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| ApiError::Internal("inference slots closed".into()))?
            }
        };
        let queue = enqueued.elapsed();
        let joined = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let started = Instant::now();
            let result = model.runtime.predict(&batch.values, batch.rows);
            let compute = started.elapsed();
            if let Ok(predictions) = &result {
                // Drift bookkeeping takes a short lock: keep it off the async threads too.
                let classes: Vec<usize> = predictions.iter().map(|p| p.class_index).collect();
                model
                    .drift
                    .observe(&batch.values, model.runtime.features(), &classes);
            }
            (result, compute)
        })
        .await;
        match joined {
            Ok((Ok(predictions), compute)) => Ok(Scheduled {
                predictions,
                queue,
                compute,
            }),
            Ok((Err(e), _)) => Err(ApiError::Model(e)),
            // A panic inside the runtime: a model fault, not a process fault.
            Err(e) => Err(ApiError::Model(ModelError::Inference(format!(
                "inference task failed: {e}"
            )))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_model::ModelRegistry;

    #[tokio::test]
    async fn a_full_queue_is_overloaded_not_unbounded() {
        let registry = ModelRegistry::bundled().unwrap();
        let model = registry.default_model().clone();
        let scheduler = Scheduler::new(1, 0);
        let depth = Gauge::default();
        // Hold the only slot, so the next request would have to wait, and the queue is 0.
        let _slot = scheduler.slots.clone().try_acquire_owned().unwrap();
        let batch = Batch {
            values: vec![70.0, 250.0, 2.5, 45.0, 1500.0, 12.0],
            rows: 1,
        };
        let err = scheduler.run(model, batch, &depth).await.unwrap_err();
        assert!(matches!(err, ApiError::Overloaded), "{err}");
        assert_eq!(scheduler.waiting(), 0);
        assert_eq!(depth.get(), 0);
    }

    #[tokio::test]
    async fn waiting_requests_are_counted_and_uncounted_when_abandoned() {
        let registry = ModelRegistry::bundled().unwrap();
        let model = registry.default_model().clone();
        let scheduler = Scheduler::new(1, 4);
        let depth = Gauge::default();
        let slot = scheduler.slots.clone().try_acquire_owned().unwrap();
        let batch = Batch {
            values: vec![70.0, 250.0, 2.5, 45.0, 1500.0, 12.0],
            rows: 1,
        };
        let fut = scheduler.run(model.clone(), batch.clone(), &depth);
        // Poll once: it must be parked waiting for the slot.
        let mut fut = Box::pin(fut);
        assert!(futures_util::poll!(&mut fut).is_pending());
        assert_eq!(scheduler.waiting(), 1);
        assert_eq!(depth.get(), 1);
        drop(fut);
        assert_eq!(scheduler.waiting(), 0);
        assert_eq!(depth.get(), 0);
        drop(slot);
        let done = scheduler.run(model, batch, &depth).await.unwrap();
        assert_eq!(done.predictions.len(), 1);
    }
}
