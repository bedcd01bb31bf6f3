//! A run's live view: once a second, what the last second did, for the progress line
//! `vigil load` keeps on a terminal.

use std::time::Duration;

/// The run so far, and the last interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub elapsed: Duration,
    pub sent: u64,
    /// Answers (or transport failures) received so far.
    pub done: u64,
    /// Answers per second over the last interval.
    pub rate: f64,
    /// p99 latency of the last interval's answers, in milliseconds.
    pub p99_ms: f64,
    /// Answers so far that broke the API contract.
    pub unexpected: u64,
    /// Requests so far that got no answer.
    pub transport_errors: u64,
}

impl Progress {
    /// One line, no newline: `12s  sent 6000  500.0 req/s  p99 3.21 ms  unexpected 0  no answer 0`.
    pub fn line(&self) -> String {
        format!(
            "{:>4}s  sent {}  {:.1} req/s  p99 {:.2} ms  unexpected {}  no answer {}",
            self.elapsed.as_secs(),
            self.sent,
            self.rate,
            self.p99_ms,
            self.unexpected,
            self.transport_errors
        )
    }
}

/// The p99 of `latencies_us` (unsorted), in milliseconds; 0 when empty.
pub(crate) fn p99_ms(latencies_us: &[u32]) -> f64 {
    if latencies_us.is_empty() {
        return 0.0;
    }
    let mut sorted = latencies_us.to_vec();
    sorted.sort_unstable();
    let i = ((0.99 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    f64::from(sorted[i]) / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_rate_errors_p99_and_elapsed() {
        let p = Progress {
            elapsed: Duration::from_millis(12_400),
            sent: 6000,
            done: 5990,
            rate: 499.96,
            p99_ms: 3.2149,
            unexpected: 2,
            transport_errors: 1,
        };
        assert_eq!(
            p.line(),
            "  12s  sent 6000  500.0 req/s  p99 3.21 ms  unexpected 2  no answer 1"
        );
    }

    #[test]
    fn p99_of_an_interval() {
        assert_eq!(p99_ms(&[]), 0.0);
        let lat: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(p99_ms(&lat), 99.0);
    }
}
