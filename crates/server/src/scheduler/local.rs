//! Cheap batches run on the connection thread that received them.
//!
//! Handing a job to an inference thread and its answer back costs both threads a
//! wake-up (a futex, an eventfd write, two task switches) and moves the job's memory
//! between cores. For a model whose batch computes in a few microseconds that
//! hand-off costs more than the model: on a 2 vCPU VM, side by side, the connection
//! threads running such batches themselves cost `serve` 1-7 % less CPU a request,
//! and answered 8-11 % more requests a second in the VM's slower phases
//! (docs/BENCHMARKS.md, "Cheap batches on the connection thread").
//!
//! A connection thread runs a single-threaded runtime (`vigil-listener`), so the
//! requests it reads in one turn of its event loop queue their jobs here, and a task
//! spawned behind them runs the lot as batches once they have all queued: batching
//! as the inference threads do it, without a hand-off. While it runs, the thread's
//! other connections wait, so only a model whose recent batches cost little a row
//! runs here, and only as many rows as fit in [`BUDGET`]; the rest, an unmeasured or
//! expensive model and every job on a multi-threaded runtime (where blocking a worker
//! stalls the tasks it holds), go to the inference threads as before.
//!
//! A turn's jobs belong to the turn, which its runner task holds, not to the thread:
//! whichever thread ends up running or dropping the runner answers them or hands them
//! to the inference threads. (One case waits longer than it should: two
//! single-threaded runtimes alive on one thread, the second predicting while the
//! first is not driven. The second's jobs join the first's open turn and wait until
//! the first runs or is dropped. vigil does not do that; a runtime's identity, which
//! would tell the two apart, is not in tokio's stable API.)

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::runtime::{Handle, RuntimeFlavor};
use vigil_model::LoadedModel;

use super::batch::{PredictJob, RanOn, run_jobs, take_batch};
use super::pool::Pool;

/// Most compute one turn's batches may take on a connection thread: what its other
/// connections may wait. About two loopback round trips, and tens of one-row runs of
/// a small model.
pub(super) const BUDGET: Duration = Duration::from_micros(100);

/// The jobs queued in one turn of a connection thread's event loop.
#[derive(Default)]
struct Turn {
    jobs: VecDeque<PredictJob>,
    /// Each model in the turn with its rows so far: a turn's compute is estimated a
    /// model at a time, as its jobs will be merged.
    rows: Vec<(Arc<LoadedModel>, usize)>,
    /// Its runner took the jobs: later ones start a new turn.
    closed: bool,
}

impl Turn {
    /// Takes `job` if the turn's estimated compute with it stays within the budget.
    fn admit(&mut self, job: PredictJob) -> Result<(), PredictJob> {
        let mut total = Duration::ZERO;
        let mut mine = None;
        for (i, (model, rows)) in self.rows.iter().enumerate() {
            let rows = if Arc::ptr_eq(model, &job.model) {
                mine = Some(i);
                rows + job.rows
            } else {
                *rows
            };
            total = total.saturating_add(estimate(model, rows));
        }
        if mine.is_none() {
            total = total.saturating_add(estimate(&job.model, job.rows));
        }
        if total > BUDGET {
            return Err(job);
        }
        match mine {
            Some(i) => self.rows[i].1 += job.rows,
            None => self.rows.push((job.model.clone(), job.rows)),
        }
        self.jobs.push_back(job);
        Ok(())
    }

    /// The jobs, for the runner; the turn takes no more.
    fn close(&mut self) -> VecDeque<PredictJob> {
        self.closed = true;
        // The models too: a closed turn may stay referenced until the thread's next
        // job, and must not keep an unloaded model alive until then.
        self.rows.clear();
        std::mem::take(&mut self.jobs)
    }
}

/// A bound on `rows` rows of `model`; an unmeasured model counts as over any budget.
fn estimate(model: &LoadedModel, rows: usize) -> Duration {
    model.cost.estimate(rows).unwrap_or(Duration::MAX)
}

thread_local! {
    /// The turn this thread is filling, until its runner takes it.
    static FILLING: RefCell<Option<Arc<Mutex<Turn>>>> = const { RefCell::new(None) };
}

/// Queues `job` on this thread when it may run here; gives it back when it may not.
pub(super) fn offer(job: PredictJob, pool: &Arc<Pool>) -> Result<(), PredictJob> {
    if !on_single_threaded_runtime() {
        return Err(job);
    }
    let started = FILLING.with(|filling| {
        let mut filling = filling.borrow_mut();
        if let Some(turn) = filling.as_ref() {
            let mut turn = turn.lock();
            if !turn.closed {
                return turn.admit(job).map(|()| None);
            }
        }
        let mut turn = Turn::default();
        turn.admit(job)?;
        let turn = Arc::new(Mutex::new(turn));
        *filling = Some(turn.clone());
        Ok(Some(turn))
    })?;
    if let Some(turn) = started {
        // Spawned now, it is polled after the tasks this turn already woke: the other
        // requests read in this turn queue their jobs first.
        tokio::spawn(
            Runner {
                turn,
                pool: pool.clone(),
                jobs: VecDeque::new(),
            }
            .run(),
        );
    }
    Ok(())
}

fn on_single_threaded_runtime() -> bool {
    Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::CurrentThread)
}

/// Runs a turn's jobs once it is polled.
struct Runner {
    turn: Arc<Mutex<Turn>>,
    pool: Arc<Pool>,
    /// The turn's jobs not run yet.
    jobs: VecDeque<PredictJob>,
}

impl Runner {
    async fn run(mut self) {
        self.jobs = self.turn.lock().close();
        while let Some(first) = self.jobs.pop_front() {
            let batch = take_batch(&mut self.jobs, first, self.pool.max_rows());
            run_jobs(batch, RanOn::ConnectionThread);
        }
    }
}

impl Drop for Runner {
    /// Dropped before it ran (its runtime stopped first) or stopped by a panic in a
    /// batch: the jobs left go to the inference threads, so none waits for a runner
    /// that will never come.
    fn drop(&mut self) {
        let mut left = std::mem::take(&mut self.jobs);
        left.extend(self.turn.lock().close());
        if !left.is_empty() {
            self.pool.hand_over(left);
        }
    }
}
