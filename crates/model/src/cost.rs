//! What a model's batches have recently cost to compute, a row: the estimate the
//! server's scheduler uses to decide whether a batch is cheap enough to run on the
//! connection thread that received it, rather than handing it to an inference thread.
//!
//! An exponentially weighted mean of each batch's compute time divided by its rows.
//! A batch's cost is a fixed part (a run of the plan) plus a part a row, so dividing
//! by the rows overestimates a large batch from small ones: the estimate errs on the
//! side of the inference threads, which is the safe side.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Weight of the newest batch: 1/8, enough to follow a change in a few dozen batches
/// without one preempted batch moving the estimate far.
const NEWEST_SHARE: u64 = 8;

/// Nanoseconds a row, recently; 0 until the first batch is measured.
#[derive(Debug, Default)]
pub struct RowCost(AtomicU64);

impl RowCost {
    /// Adds a batch of `rows` rows that took `compute`.
    pub fn observe(&self, compute: Duration, rows: usize) {
        if rows == 0 {
            return;
        }
        let per_row = u64::try_from(compute.as_nanos() / rows as u128)
            .unwrap_or(u64::MAX)
            .max(1);
        // Batches of one model run on several threads at once: a lost update between a
        // load and a store only drops one sample from the mean, so no compare-and-swap.
        let old = self.0.load(Ordering::Relaxed);
        let new = if old == 0 {
            per_row
        } else {
            old - old / NEWEST_SHARE + per_row / NEWEST_SHARE
        };
        self.0.store(new.max(1), Ordering::Relaxed);
    }

    /// What `rows` rows would cost, or `None` before any batch was measured.
    pub fn estimate(&self, rows: usize) -> Option<Duration> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            per_row => Some(Duration::from_nanos(per_row.saturating_mul(rows as u64))),
        }
    }
}

impl Clone for RowCost {
    fn clone(&self) -> Self {
        Self(AtomicU64::new(self.0.load(Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmeasured_until_the_first_batch_then_a_cost_a_row() {
        let cost = RowCost::default();
        assert_eq!(cost.estimate(1), None);
        cost.observe(Duration::from_micros(8), 4);
        assert_eq!(cost.estimate(1), Some(Duration::from_micros(2)));
        assert_eq!(cost.estimate(10), Some(Duration::from_micros(20)));
    }

    #[test]
    fn one_slow_batch_moves_the_estimate_an_eighth_of_the_way() {
        let cost = RowCost::default();
        cost.observe(Duration::from_micros(2), 1);
        cost.observe(Duration::from_micros(1002), 1);
        assert_eq!(
            cost.estimate(1),
            Some(Duration::from_nanos(2000 - 250 + 125_250))
        );
        for _ in 0..100 {
            cost.observe(Duration::from_micros(2), 1);
        }
        let settled = cost.estimate(1).unwrap();
        assert!(settled < Duration::from_micros(3), "{settled:?}");
    }

    #[test]
    fn an_empty_batch_is_not_a_measurement() {
        let cost = RowCost::default();
        cost.observe(Duration::from_micros(5), 0);
        assert_eq!(cost.estimate(1), None);
    }
}
