//! What a model's batches have recently cost to compute: the estimate the server's
//! scheduler uses to decide whether a batch is cheap enough to run on the connection
//! thread that received it, rather than handing it to an inference thread.
//!
//! Exponentially weighted means of a batch's compute time and of its rows, with the
//! same weights. A batch's cost is a fixed part (a run of the plan) plus a part a row,
//! both non-negative, so the two means are a point on that line, and from it alone
//! [`BatchCost::estimate`] gives a bound that holds whatever the two parts are: a
//! batch of no more rows than the mean costs no more than the mean, and a larger one
//! no more than the mean scaled by its rows. A mean of a row alone would not do: big
//! merged batches spread the fixed part thin and would make one row look cheap.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Weight of the newest batch: 1/8, enough to follow a change in a few dozen batches
/// without one preempted batch moving the estimate far.
const NEWEST_SHARE: u64 = 8;

/// Rows are kept in 1/256ths, so that a mean between 1 and 2 rows is not rounded away.
const ROW_UNIT: u64 = 256;

/// The two means; 0 until the first batch is measured.
#[derive(Debug, Default)]
pub struct BatchCost {
    nanos: AtomicU64,
    rows: AtomicU64,
}

impl BatchCost {
    /// Adds a batch of `rows` rows that took `compute`.
    pub fn observe(&self, compute: Duration, rows: usize) {
        if rows == 0 {
            return;
        }
        let nanos = u64::try_from(compute.as_nanos()).unwrap_or(u64::MAX).max(1);
        let rows = (rows as u64).saturating_mul(ROW_UNIT);
        // Batches of one model run on several threads at once: a lost update between a
        // load and a store drops one sample from the means (or mixes two samples'
        // halves), which a mean of many shrugs off; no compare-and-swap on the hot path.
        ewma(&self.nanos, nanos);
        ewma(&self.rows, rows);
    }

    /// A bound on what a batch of `rows` rows costs, or `None` before any batch was
    /// measured.
    pub fn estimate(&self, rows: usize) -> Option<Duration> {
        let (nanos, mean_rows) = (
            self.nanos.load(Ordering::Relaxed),
            self.rows.load(Ordering::Relaxed),
        );
        if nanos == 0 || mean_rows == 0 {
            return None;
        }
        let rows = (rows as u128) * u128::from(ROW_UNIT);
        let scaled = u128::from(nanos) * rows / u128::from(mean_rows);
        let bound = scaled.max(u128::from(nanos));
        Some(Duration::from_nanos(
            u64::try_from(bound).unwrap_or(u64::MAX),
        ))
    }
}

fn ewma(mean: &AtomicU64, sample: u64) {
    let old = mean.load(Ordering::Relaxed);
    let new = if old == 0 {
        sample
    } else {
        old - old / NEWEST_SHARE + sample / NEWEST_SHARE
    };
    mean.store(new.max(1), Ordering::Relaxed);
}

impl Clone for BatchCost {
    fn clone(&self) -> Self {
        Self {
            nanos: AtomicU64::new(self.nanos.load(Ordering::Relaxed)),
            rows: AtomicU64::new(self.rows.load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Duration = Duration::from_micros(1);

    #[test]
    fn unmeasured_until_the_first_batch() {
        let cost = BatchCost::default();
        assert_eq!(cost.estimate(1), None);
        cost.observe(US * 5, 0);
        assert_eq!(
            cost.estimate(1),
            None,
            "an empty batch is not a measurement"
        );
        cost.observe(US * 8, 4);
        assert_eq!(cost.estimate(4), Some(US * 8));
    }

    #[test]
    fn fewer_rows_than_the_mean_cost_the_mean_and_more_cost_it_scaled() {
        let cost = BatchCost::default();
        cost.observe(US * 8, 4);
        assert_eq!(cost.estimate(1), Some(US * 8));
        assert_eq!(cost.estimate(8), Some(US * 16));
    }

    #[test]
    fn big_merged_batches_do_not_make_one_row_look_cheap() {
        // 300 µs a run plus 0.5 µs a row, seen only in batches of 256 rows.
        let cost = BatchCost::default();
        for _ in 0..50 {
            cost.observe(US * 428, 256);
        }
        let one = cost.estimate(1).unwrap();
        assert!(one >= US * 300, "{one:?}");
    }

    #[test]
    fn the_bound_holds_for_a_mix_of_batch_sizes() {
        // The true cost: 5 µs a run plus 0.35 µs a row.
        let truth = |rows: u32| US * 5 + Duration::from_nanos(350) * rows;
        let cost = BatchCost::default();
        for i in 0..200u32 {
            let rows = [1, 3, 8, 32][i as usize % 4];
            cost.observe(truth(rows), rows as usize);
        }
        for rows in [1, 2, 5, 16, 64, 1000] {
            let estimate = cost.estimate(rows as usize).unwrap();
            // Integer means round down by a few nanoseconds.
            assert!(estimate + US / 10 >= truth(rows), "{rows}: {estimate:?}");
        }
    }

    #[test]
    fn one_slow_batch_moves_the_estimate_an_eighth_of_the_way() {
        let cost = BatchCost::default();
        cost.observe(US * 2, 1);
        cost.observe(US * 1002, 1);
        assert_eq!(
            cost.estimate(1),
            Some(Duration::from_nanos(2000 - 250 + 125_250))
        );
        for _ in 0..100 {
            cost.observe(US * 2, 1);
        }
        let settled = cost.estimate(1).unwrap();
        assert!(settled < US * 3, "{settled:?}");
    }
}
