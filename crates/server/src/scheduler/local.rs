//! Cheap batches run on the connection thread that received them.
//!
//! Handing a job to an inference thread and its answer back costs both threads a
//! wake-up (a futex, an eventfd write, two task switches) and moves the job's memory
//! between cores. For a model whose batch computes in a few microseconds that
//! hand-off costs more than the model: on a 2 vCPU VM, side by side, the connection
//! threads running such batches themselves cost `serve` 2-7.5 % less CPU a request,
//! and answered up to 8 % more requests a second in the VM's slower phases
//! (docs/BENCHMARKS.md, "Cheap batches on the connection thread").
//!
//! A connection thread runs a single-threaded runtime (`vigil-listener`), so the
//! requests it reads in one turn of its event loop queue their jobs here, and a task
//! spawned behind them runs the lot as batches once they have all queued: batching
//! as the inference threads do it, without a hand-off. While it runs, the thread's
//! other connections wait, so only a model whose recent batches cost little a row
//! runs here, and only as many rows as fit in [`BUDGET`]; the rest, an unmeasured or
//! expensive model and every job on a multi-threaded runtime (where blocking a worker
//! stalls tasks it holds), go to the inference threads as before.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::{Handle, RuntimeFlavor};

use super::batch::{Placement, PredictJob, run_jobs, take_batch};
use super::pool::Pool;

/// Most compute one turn's batches may take on a connection thread: what its other
/// connections may wait. About two loopback round trips, and tens of one-row runs of
/// a small model.
pub(super) const BUDGET: Duration = Duration::from_micros(100);

#[derive(Default)]
struct Local {
    jobs: VecDeque<PredictJob>,
    /// Estimated compute of `jobs`.
    planned: Duration,
    /// A runner task is spawned and has not run yet.
    scheduled: bool,
}

thread_local! {
    static LOCAL: RefCell<Local> = RefCell::new(Local::default());
}

/// Queues `job` on this thread when it may run here; gives it back when it may not.
pub(super) fn offer(job: PredictJob, pool: &Arc<Pool>) -> Result<(), PredictJob> {
    if !on_single_threaded_runtime() {
        return Err(job);
    }
    let Some(cost) = job.model.cost.estimate(job.rows) else {
        // Never measured: the first batch runs on an inference thread, which
        // measures it.
        return Err(job);
    };
    let first = LOCAL.with(|local| {
        let mut local = local.borrow_mut();
        if local.planned + cost > BUDGET {
            return Err(job);
        }
        local.planned += cost;
        job.depth.inc();
        local.jobs.push_back(job);
        Ok(!std::mem::replace(&mut local.scheduled, true))
    })?;
    if first {
        // Spawned now, it is polled after the tasks this turn already woke: the other
        // requests read in this turn queue their jobs first. Outside the borrow: a
        // runtime that is shutting down drops the task at once, and its `Drop` takes
        // the queue.
        tokio::spawn(
            Runner {
                pool: pool.clone(),
                ran: false,
            }
            .run(),
        );
    }
    Ok(())
}

fn on_single_threaded_runtime() -> bool {
    Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::CurrentThread)
}

/// Runs this thread's queued jobs once it is polled. Dropped without running (its
/// runtime shut down first), it hands them to the inference threads, so no job waits
/// for a runner that will never come.
struct Runner {
    pool: Arc<Pool>,
    ran: bool,
}

impl Runner {
    async fn run(mut self) {
        self.ran = true;
        let mut jobs = take_all();
        while let Some(first) = jobs.pop_front() {
            let batch = take_batch(&mut jobs, first, self.pool.max_rows);
            run_jobs(batch, Placement::ConnectionThread);
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if !self.ran {
            self.pool.hand_over(take_all());
        }
    }
}

/// This thread's queued jobs, leaving it ready for the next turn's.
fn take_all() -> VecDeque<PredictJob> {
    // `try_with`: a runner dropped while its thread exits finds the queue gone, and
    // with it the jobs, whose callers then hear that no worker answered.
    LOCAL
        .try_with(|local| {
            let mut local = local.borrow_mut();
            local.scheduled = false;
            local.planned = Duration::ZERO;
            std::mem::take(&mut local.jobs)
        })
        .unwrap_or_default()
}
