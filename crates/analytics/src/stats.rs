//! What one slot (or a merged window) knows about one route and method, and about one
//! caller.

use sketches_ddsketch::{Config, DDSketch};

/// Requests counted by outcome.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub count: u64,
    /// 5xx answers (the service failed).
    pub errors: u64,
    /// 4xx answers (the caller's request was refused).
    pub client_errors: u64,
}

impl Counts {
    pub fn add(&mut self, status: u16) {
        self.count += 1;
        match status {
            500.. => self.errors += 1,
            400..=499 => self.client_errors += 1,
            _ => {}
        }
    }

    pub fn merge(&mut self, other: &Counts) {
        self.count += other.count;
        self.errors += other.errors;
        self.client_errors += other.client_errors;
    }
}

/// Counts and latency distribution of one route and method, in milliseconds.
#[derive(Clone)]
pub struct RouteStats {
    pub counts: Counts,
    pub sum_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub sketch: DDSketch,
}

impl Default for RouteStats {
    fn default() -> Self {
        Self {
            counts: Counts::default(),
            sum_ms: 0.0,
            min_ms: f64::INFINITY,
            max_ms: 0.0,
            sketch: DDSketch::new(Config::defaults()),
        }
    }
}

/// The sketch has no `Debug`; its count says enough.
impl std::fmt::Debug for RouteStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteStats")
            .field("counts", &self.counts)
            .field("min_ms", &self.min_ms)
            .field("max_ms", &self.max_ms)
            .field("sketch_count", &self.sketch.count())
            .finish()
    }
}

impl RouteStats {
    pub fn add(&mut self, status: u16, ms: f64) {
        self.counts.add(status);
        self.sum_ms += ms;
        self.min_ms = self.min_ms.min(ms);
        self.max_ms = self.max_ms.max(ms);
        self.sketch.add(ms);
    }

    pub fn merge(&mut self, other: &RouteStats) {
        self.counts.merge(&other.counts);
        self.sum_ms += other.sum_ms;
        self.min_ms = self.min_ms.min(other.min_ms);
        self.max_ms = self.max_ms.max(other.max_ms);
        // Same configuration on both sides, so merging cannot fail.
        let _ = self.sketch.merge(&other.sketch);
    }

    /// The `q` quantile in milliseconds (0 when empty).
    pub fn quantile(&self, q: f64) -> f64 {
        self.sketch.quantile(q).ok().flatten().unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_stay_within_the_sketch_accuracy() {
        let mut stats = RouteStats::default();
        for i in 1..=1000 {
            stats.add(200, f64::from(i));
        }
        let p99 = stats.quantile(0.99);
        assert!((p99 - 990.0).abs() / 990.0 < 0.02, "{p99}");
        let p50 = stats.quantile(0.5);
        assert!((p50 - 500.0).abs() / 500.0 < 0.02, "{p50}");
        assert_eq!(stats.min_ms, 1.0);
        assert_eq!(stats.max_ms, 1000.0);
        let mut merged = RouteStats::default();
        merged.merge(&stats);
        merged.merge(&stats);
        assert_eq!(merged.counts.count, 2000);
        assert!((merged.quantile(0.99) - p99).abs() < 1e-9);
    }

    #[test]
    fn statuses_split_into_errors_and_client_errors() {
        let mut c = Counts::default();
        for s in [200, 201, 404, 422, 500, 503] {
            c.add(s);
        }
        assert_eq!((c.count, c.errors, c.client_errors), (6, 2, 2));
    }
}
