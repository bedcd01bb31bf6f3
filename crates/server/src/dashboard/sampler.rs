//! Taking a sample: the model counters now, minus what they were at the last sample.
//! Counters are read from the metric handles every request already updates, so the
//! dashboard adds nothing to the prediction path. A model whose served version changed
//! since the last sample (upload, rollback, rescan) starts a new baseline: that one
//! interval shows no traffic for it rather than a wrong difference.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::catalog::{Catalog, Served};
use crate::dashboard::history::{ModelPoint, Sample};

/// The counters of one served model version at one moment.
#[derive(Debug, Clone)]
struct Raw {
    /// Which `Served` they were read from (a swap makes a new one).
    served: usize,
    predictions: u64,
    errors: u64,
    requests: u64,
    queue_s: f64,
    compute_s: f64,
    confidence_sum: f64,
    classes: Vec<u64>,
}

impl Raw {
    fn read(served: &Arc<Served>) -> Self {
        let h = &served.handles;
        Self {
            served: Arc::as_ptr(served) as usize,
            predictions: h.success.get(),
            errors: h.error.get(),
            requests: h.tally.requests.get(),
            queue_s: h.tally.queue_seconds.get(),
            compute_s: h.tally.compute_seconds.get(),
            confidence_sum: h.tally.confidence_sum.get(),
            classes: h.by_class.iter().map(|c| c.get()).collect(),
        }
    }
}

/// Remembers the last reading of every model.
#[derive(Debug, Default)]
pub struct Sampler {
    last: HashMap<String, Raw>,
    last_at: Option<SystemTime>,
}

fn mean(sum: f64, n: u64) -> Option<f64> {
    (n > 0).then(|| sum / n as f64)
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

impl Sampler {
    /// A sample of every model in `catalog`, as of `now`.
    pub fn sample(&mut self, catalog: &Catalog, now: SystemTime) -> Sample {
        let interval = self
            .last_at
            .and_then(|t| now.duration_since(t).ok())
            .unwrap_or(Duration::ZERO)
            .as_secs_f64();
        let mut last = HashMap::with_capacity(catalog.len());
        let models = catalog
            .iter()
            .map(|served| {
                let raw = Raw::read(served);
                let before = self
                    .last
                    .remove(&served.card.name)
                    .filter(|b| b.served == raw.served);
                let point = point(served, &raw, before.as_ref(), interval);
                last.insert(served.card.name.clone(), raw);
                point
            })
            .collect();
        self.last = last;
        self.last_at = Some(now);
        Sample {
            t_ms: now
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            models,
        }
    }
}

/// The interval's numbers (no traffic without a baseline) and the drift now.
fn point(served: &Served, now: &Raw, before: Option<&Raw>, interval: f64) -> ModelPoint {
    let card = &served.card;
    let zero = Raw {
        classes: vec![0; now.classes.len()],
        ..now.clone()
    };
    let before = before.unwrap_or(&zero);
    let predictions = now.predictions.saturating_sub(before.predictions);
    let requests = now.requests.saturating_sub(before.requests);
    let classes: Vec<u64> = now
        .classes
        .iter()
        .zip(&before.classes)
        .map(|(n, b)| n.saturating_sub(*b))
        .collect();
    let classified: u64 = classes.iter().sum();
    let defects: u64 = classes
        .iter()
        .enumerate()
        .filter(|(i, _)| card.is_defect(*i))
        .map(|(_, n)| n)
        .sum();
    let drift = served.drift.snapshot();
    ModelPoint {
        model: card.name.clone(),
        version: card.version.clone(),
        predictions,
        errors: now.errors.saturating_sub(before.errors),
        rate_per_s: if interval > 0.0 {
            predictions as f64 / interval
        } else {
            0.0
        },
        queue_ms: mean((now.queue_s - before.queue_s) * 1e3, requests),
        compute_ms: mean((now.compute_s - before.compute_s) * 1e3, requests),
        confidence: mean(now.confidence_sum - before.confidence_sum, predictions),
        defect_rate: (!card.defect_labels.is_empty())
            .then(|| mean(defects as f64, classified))
            .flatten(),
        classes,
        drift: drift.features.iter().map(|(_, psi)| finite(*psi)).collect(),
        prediction_psi: drift.prediction.and_then(finite),
    }
}
