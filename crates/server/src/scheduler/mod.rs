//! Inference scheduling: where a prediction's batch runs and how long it waited.
//! Queue time and compute time are measured apart, as Triton reports them.
//!
//! A job goes to one of two places. The inference threads (`pool`) take any model,
//! batch queued jobs of one model together, and answer "overloaded" when their queue
//! is full. A model whose batches are cheap runs instead on the connection thread
//! that read the request (`local`), batched with the other requests that thread read
//! in the same turn, with no hand-off between threads. `batch` runs a batch, in
//! either place.

mod batch;
mod local;
mod pool;

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::oneshot;
use vigil_model::{Batch, LoadedModel};

use batch::{PredictJob, QueueCount};
pub use batch::{RanOn, Scheduled};
use pool::Pool;

use crate::error::ApiError;

/// Stops the inference threads when the last [`Scheduler`] clone goes away.
struct Owner(Arc<Pool>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.shut_down();
    }
}

/// Shared by all models: slots are CPU cores, not per-model resources.
#[derive(Clone)]
pub struct Scheduler {
    pool: Arc<Pool>,
    _owner: Arc<Owner>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("max_queue", &self.pool.max_queue())
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// `concurrency` inference threads; at most `max_queue` jobs wait beyond the idle
    /// threads; merged batches hold at most `max_rows` rows.
    pub fn new(concurrency: usize, max_queue: usize, max_rows: usize) -> Self {
        let pool = Pool::start(concurrency, max_queue, max_rows);
        Self {
            _owner: Arc::new(Owner(pool.clone())),
            pool,
        }
    }

    /// Jobs waiting for an inference thread right now.
    pub fn waiting(&self) -> usize {
        self.pool.waiting()
    }

    /// Runs `batch` on `model`, on this connection thread when the model is cheap
    /// enough, else on an inference thread.
    pub async fn run(
        &self,
        model: Arc<LoadedModel>,
        batch: Batch,
        depth: &Gauge,
    ) -> Result<Scheduled, ApiError> {
        let (reply, answer) = oneshot::channel();
        // Everything but the push itself happens outside the pool's lock: the
        // inference threads take the same lock for every batch, and on a small machine
        // a waiter that finds it held spins, then yields its CPU (`sched_yield`).
        let job = PredictJob {
            model,
            values: batch.values,
            rows: batch.rows,
            enqueued: Instant::now(),
            queued: QueueCount::new(depth),
            reply,
        };
        let offered = if self.all_to_the_pool() {
            Err(job)
        } else {
            local::offer(job, &self.pool)
        };
        if let Err(job) = offered {
            self.pool.push(job).map_err(|_| ApiError::Overloaded)?;
        }
        match answer.await {
            Ok(Ok(scheduled)) => Ok(scheduled),
            Ok(Err(e)) => Err(ApiError::Model(e)),
            Err(_) => Err(ApiError::Internal("inference worker stopped".into())),
        }
    }

    /// While a test holds an inference thread, jobs queue for the threads as they
    /// would for a busy service, whatever their model costs.
    fn all_to_the_pool(&self) -> bool {
        #[cfg(feature = "test-util")]
        {
            self.pool.held()
        }
        #[cfg(not(feature = "test-util"))]
        {
            false
        }
    }

    /// Takes one inference thread away until the returned sender is dropped (tests use
    /// it to make the service look busy; until then no job runs on a connection
    /// thread). Returns once the thread is held.
    #[cfg(feature = "test-util")]
    pub fn occupy(&self) -> std::sync::mpsc::Sender<()> {
        let (hold, release) = std::sync::mpsc::channel();
        let (started, is_started) = std::sync::mpsc::channel();
        self.pool.hold(pool::Hold { release, started });
        is_started.recv().expect("a thread picks up the hold");
        hold
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use vigil_model::{ModelRegistry, Output};

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
                assert_eq!(class_of(p), usize::from(row == &HOT));
            }
        }
        assert_eq!(depth.get(), 0);
        assert_eq!(scheduler.waiting(), 0);
    }

    fn class_of(output: &Output) -> usize {
        let Output::Class(p) = output else {
            panic!("a classifier answered {output:?}")
        };
        p.class_index
    }

    /// Makes `model` measured as cheap, whatever its cold first run cost.
    fn seed_cheap(model: &LoadedModel) {
        for _ in 0..128 {
            model.cost.observe(Duration::from_micros(5), 1);
        }
    }

    /// A bundled model measured as cheap, as after its first requests.
    fn measured(registry: &ModelRegistry, name: &str) -> Arc<LoadedModel> {
        let model = registry.get(name).unwrap().clone();
        seed_cheap(&model);
        model
    }

    #[tokio::test]
    async fn an_unmeasured_model_runs_on_an_inference_thread_until_measured_cheap() {
        let registry = ModelRegistry::bundled().unwrap();
        let model = registry.default_model().clone();
        let scheduler = Scheduler::new(1, 64, 1024);
        let depth = Gauge::default();
        let first = scheduler.run(model.clone(), batch(&[ROW]), &depth).await;
        assert_eq!(first.unwrap().ran_on, RanOn::InferenceThread);
        assert!(model.cost.estimate(1).is_some(), "the first batch measured");
        // A cold first run can cost more than the budget; the runs after it bring the
        // estimate down to what the model costs, a few microseconds.
        let mut placements = Vec::new();
        for i in 0..200 {
            let row = if i % 2 == 0 { HOT } else { ROW };
            let done = scheduler.run(model.clone(), batch(&[row]), &depth).await;
            let done = done.unwrap();
            assert_eq!(class_of(&done.predictions[0]), usize::from(row == HOT));
            placements.push(done.ran_on);
        }
        // Not every run after: one preempted run can lift the estimate for a while.
        assert!(
            placements.contains(&RanOn::ConnectionThread),
            "a one-row batch of the default model is cheap: {placements:?}"
        );
        assert_eq!(depth.get(), 0);
    }

    #[tokio::test]
    async fn one_turns_jobs_run_here_as_one_batch_a_model_each_with_its_own_rows() {
        let registry = ModelRegistry::bundled().unwrap();
        let defects = measured(&registry, "defect-detector");
        let digits = measured(&registry, "digits");
        let scheduler = Scheduler::new(1, 64, 1024);
        let depth = Gauge::default();
        let rows: Vec<[f32; 6]> = (0..8).map(|i| if i % 3 == 0 { HOT } else { ROW }).collect();
        let defect_runs = rows
            .iter()
            .map(|row| scheduler.run(defects.clone(), batch(&[*row]), &depth));
        let digit_runs = (0..4).map(|_| {
            let zero = Batch {
                values: vec![0.0; 64],
                rows: 1,
            };
            scheduler.run(digits.clone(), zero, &depth)
        });
        let mut all = std::pin::pin!(futures_util::future::join(
            futures_util::future::join_all(defect_runs),
            futures_util::future::join_all(digit_runs),
        ));
        // All queued on this thread, none run yet: not waiting for an inference thread.
        assert!(futures_util::poll!(all.as_mut()).is_pending());
        assert_eq!(depth.get(), 0);
        assert_eq!(scheduler.waiting(), 0);
        let (defect_done, digit_done) = all.await;
        for (row, done) in rows.iter().zip(defect_done) {
            let done = done.unwrap();
            assert_eq!(done.ran_on, RanOn::ConnectionThread);
            assert_eq!(class_of(&done.predictions[0]), usize::from(row == &HOT));
        }
        let computes: Vec<_> = digit_done
            .into_iter()
            .map(|done| {
                let done = done.unwrap();
                assert_eq!(done.ran_on, RanOn::ConnectionThread);
                assert_eq!(done.predictions.len(), 1);
                done.compute
            })
            .collect();
        // One batch: the four jobs report the same run.
        assert!(computes.iter().all(|c| *c == computes[0]), "{computes:?}");
        assert_eq!(depth.get(), 0);
        assert_eq!(scheduler.waiting(), 0);
    }

    #[tokio::test]
    async fn what_exceeds_the_budget_goes_to_the_inference_threads() {
        let registry = ModelRegistry::bundled().unwrap();
        let model = registry.default_model().clone();
        // Two thirds of the budget a row: the first job fits, the second would not.
        model.cost.observe(local::BUDGET * 2 / 3, 1);
        let scheduler = Scheduler::new(1, 64, 1024);
        let depth = Gauge::default();
        let (a, b) = futures_util::future::join(
            scheduler.run(model.clone(), batch(&[ROW]), &depth),
            scheduler.run(model.clone(), batch(&[ROW]), &depth),
        )
        .await;
        assert_eq!(a.unwrap().ran_on, RanOn::ConnectionThread);
        assert_eq!(b.unwrap().ran_on, RanOn::InferenceThread);
        // A model costlier than the budget a row never runs here.
        model.cost.observe(local::BUDGET * 100, 1);
        let c = scheduler.run(model.clone(), batch(&[ROW]), &depth).await;
        assert_eq!(c.unwrap().ran_on, RanOn::InferenceThread);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_a_multi_threaded_runtime_every_batch_goes_to_the_inference_threads() {
        let registry = ModelRegistry::bundled().unwrap();
        let model = measured(&registry, "defect-detector");
        let scheduler = Scheduler::new(1, 64, 1024);
        let done = scheduler.run(model, batch(&[ROW]), &Gauge::default()).await;
        assert_eq!(done.unwrap().ran_on, RanOn::InferenceThread);
    }

    #[test]
    fn jobs_whose_runner_never_ran_are_answered_by_the_inference_threads() {
        let registry = ModelRegistry::bundled().unwrap();
        let model = measured(&registry, "defect-detector");
        let scheduler = Scheduler::new(1, 64, 1024);
        let depth = Gauge::default();
        let mut pending = Box::pin(scheduler.run(model.clone(), batch(&[HOT]), &depth));
        let first = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        first.block_on(async {
            // Queued here, its runner spawned but not yet polled.
            assert!(futures_util::poll!(pending.as_mut()).is_pending());
        });
        // The runtime goes, and the runner task with it.
        drop(first);
        let second = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let answered =
            second.block_on(async { tokio::time::timeout(Duration::from_secs(10), pending).await });
        let done = answered.expect("no job is left behind").unwrap();
        assert_eq!(done.ran_on, RanOn::InferenceThread);
        assert_eq!(class_of(&done.predictions[0]), 1);
        // And the thread is ready for the next turn (its cold run on the inference
        // thread may have made the model look costly for a while).
        seed_cheap(&model);
        let next = second.block_on(scheduler.run(model, batch(&[ROW]), &depth));
        assert_eq!(next.unwrap().ran_on, RanOn::ConnectionThread);
        assert_eq!(depth.get(), 0);
    }

    #[tokio::test]
    async fn a_job_offered_from_another_thread_is_run_by_its_turns_runner() {
        // A blocking thread drives a prediction through this runtime's handle: the job
        // joins a turn on that thread, and the runner, spawned on this runtime, runs on
        // this thread. The runner must take its own turn, not this thread's.
        let registry = ModelRegistry::bundled().unwrap();
        let model = measured(&registry, "defect-detector");
        let scheduler = Scheduler::new(1, 64, 1024);
        let handle = tokio::runtime::Handle::current();
        let (scheduler2, model2) = (scheduler.clone(), model.clone());
        let elsewhere = tokio::task::spawn_blocking(move || {
            let depth = Gauge::default();
            let done = handle.block_on(scheduler2.run(model2, batch(&[HOT]), &depth));
            (done, depth.get())
        });
        let (done, depth) = tokio::time::timeout(Duration::from_secs(10), elsewhere)
            .await
            .expect("the job is answered")
            .unwrap();
        let done = done.unwrap();
        assert_eq!(done.ran_on, RanOn::ConnectionThread);
        assert_eq!(class_of(&done.predictions[0]), 1);
        assert_eq!(depth, 0);
    }

    /// tract panics on some rows of a broken model (the hostile fixture `gather_oob`, a
    /// `Gather` past its end): in a batch merged with a good job, on either place a
    /// batch runs, the bad job gets a model error and the good one its answer.
    #[tokio::test]
    async fn a_runtime_panic_costs_only_its_own_job_in_either_place() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../model/tests/hostile/gather_oob");
        let model = Arc::new(LoadedModel::from_dir(&dir).unwrap());
        let scheduler = Scheduler::new(1, 64, 1024);
        let depth = Gauge::default();
        let one = |x0: f32| Batch {
            values: vec![x0, 0.0],
            rows: 1,
        };
        for place in [RanOn::InferenceThread, RanOn::ConnectionThread] {
            // Unmeasured, the model's jobs go to the inference threads; measured cheap,
            // one turn's jobs run here as one batch.
            if place == RanOn::ConnectionThread {
                seed_cheap(&model);
            }
            let (bad, good) = futures_util::future::join(
                scheduler.run(model.clone(), one(5.0), &depth),
                scheduler.run(model.clone(), one(1.0), &depth),
            )
            .await;
            match bad {
                Err(ApiError::Model(vigil_model::ModelError::Inference(message))) => {
                    assert!(message.contains("the runtime panicked"), "{message}");
                }
                other => panic!("{place:?}: {:?}", other.map(|done| done.ran_on)),
            }
            let good = good.unwrap();
            assert_eq!(good.ran_on, place);
            assert_eq!(class_of(&good.predictions[0]), 0);
        }
        assert_eq!(depth.get(), 0);
        assert_eq!(scheduler.waiting(), 0);
    }
}
