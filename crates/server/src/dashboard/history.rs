//! The dashboard's short memory: one sample of every served model every few seconds,
//! for the last 15 minutes, so a page opened now draws its charts at once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use utoipa::ToSchema;

/// How far back the history goes.
pub const SPAN: Duration = Duration::from_secs(15 * 60);
/// How often a sample is taken.
pub const EVERY: Duration = Duration::from_secs(5);
const CAPACITY: usize = (SPAN.as_secs() / EVERY.as_secs()) as usize;

/// One model over one sampling interval.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelPoint {
    pub model: String,
    pub version: String,
    /// Instances predicted in the interval.
    pub predictions: u64,
    /// Instances whose request failed in the interval.
    pub errors: u64,
    /// `predictions / interval`.
    pub rate_per_s: f64,
    /// `errors / interval`.
    pub errors_per_s: f64,
    /// Mean wait for an inference slot per request, ms (`null` without requests).
    pub queue_ms: Option<f64>,
    /// Mean model compute time per request, ms (`null` without requests).
    pub compute_ms: Option<f64>,
    /// Mean confidence of the interval's predictions (a classifier's).
    pub confidence: Option<f64>,
    /// Mean predicted value of the interval's predictions (a regressor's).
    pub value: Option<f64>,
    /// Share of the interval's predictions in a defect class.
    pub defect_rate: Option<f64>,
    /// Predictions per class index in the interval.
    pub classes: Vec<u64>,
    /// PSI per feature over the drift window at sample time (`null` until the window
    /// holds enough rows), in the order of the model's `drift_features`.
    pub drift: Vec<Option<f64>>,
    /// A classifier's mean top-class confidence over the drift window (the last 1,000
    /// predictions): `model_estimated_accuracy`; `null` below 100 rows.
    pub estimated_accuracy: Option<f64>,
    /// PSI of the predictions: the class mix, or a regressor's value bins.
    pub prediction_psi: Option<f64>,
}

/// Every served model at one moment.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub t_ms: u64,
    pub models: Vec<ModelPoint>,
}

/// A kept sample, shared by every answer that includes it.
#[derive(Debug, Clone)]
pub struct Shared(pub Arc<Sample>);

impl Serialize for Shared {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// The last [`SPAN`] of samples, oldest first.
#[derive(Debug, Default)]
pub struct History(Mutex<VecDeque<Arc<Sample>>>);

impl History {
    pub fn push(&self, sample: Sample) {
        let mut ring = self.0.lock();
        if ring.len() == CAPACITY {
            ring.pop_front();
        }
        ring.push_back(Arc::new(sample));
    }

    /// The samples taken after `since_ms` (all of them for 0), oldest first.
    pub fn since(&self, since_ms: u64) -> Vec<Shared> {
        let ring = self.0.lock();
        let first = ring.partition_point(|s| s.t_ms <= since_ms);
        ring.range(first..).map(|s| Shared(s.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_fifteen_minutes_and_answers_since() {
        let history = History::default();
        for i in 0..(CAPACITY as u64 + 10) {
            history.push(Sample {
                t_ms: 1000 * i,
                models: vec![],
            });
        }
        let all = history.since(0);
        assert_eq!(all.len(), CAPACITY);
        assert_eq!(all[0].0.t_ms, 10_000);
        let last = all.last().unwrap().0.t_ms;
        assert!(history.since(last).is_empty());
        assert_eq!(history.since(last - 1000).len(), 1);
    }
}
