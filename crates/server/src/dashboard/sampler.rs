//! Taking a sample: the model counters now, minus what they were at the last sample.
//! Counters are read from the metric handles every request already updates, so the
//! dashboard adds nothing to the prediction path. A model whose served version changed
//! since the last sample (upload, rollback, rescan) starts a new baseline: that one
//! interval shows no traffic for it rather than a wrong difference.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use vigil_model::Task;

use crate::catalog::{Catalog, Served};
use crate::dashboard::history::{ModelPoint, Sample};

/// The counters of one served model version at one moment.
#[derive(Debug, Clone)]
struct Raw {
    /// Which `Served` they were read from (a swap makes a new one). Held weakly: the
    /// allocation cannot be reused by a later `Served` while we compare against it.
    served: Weak<Served>,
    predictions: u64,
    errors: u64,
    requests: u64,
    queue_s: f64,
    compute_s: f64,
    confidence_sum: f64,
    value_sum: f64,
    classes: Vec<u64>,
}

impl Raw {
    fn read(served: &Arc<Served>) -> Self {
        let h = &served.handles;
        Self {
            served: Arc::downgrade(served),
            predictions: h.success.get(),
            errors: h.error.get(),
            requests: h.tally.requests.get(),
            queue_s: h.tally.queue_seconds.get(),
            compute_s: h.tally.compute_seconds.get(),
            confidence_sum: h.tally.confidence_sum.get(),
            value_sum: h.tally.value_sum.get(),
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
                    .filter(|b| b.served.ptr_eq(&raw.served));
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
    // No baseline: every difference is zero (the class counters outlive versions, so
    // anything else would show a lifetime's mix as this interval's).
    let before = before.unwrap_or(now);
    // Counters only grow; floors keep rounding in the f64 sums from going negative.
    let grew = |now: f64, before: f64| (now - before).max(0.0);
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
    let errors = now.errors.saturating_sub(before.errors);
    let per_second = |n: u64| {
        if interval > 0.0 {
            n as f64 / interval
        } else {
            0.0
        }
    };
    ModelPoint {
        model: card.name.clone(),
        version: card.version.clone(),
        predictions,
        errors,
        rate_per_s: per_second(predictions),
        errors_per_s: per_second(errors),
        queue_ms: mean(grew(now.queue_s, before.queue_s) * 1e3, requests),
        compute_ms: mean(grew(now.compute_s, before.compute_s) * 1e3, requests),
        confidence: (card.task == Task::Classification)
            .then(|| mean(grew(now.confidence_sum, before.confidence_sum), predictions))
            .flatten(),
        // Not floored like the sums above: values may be negative.
        value: (card.task == Task::Regression)
            .then(|| mean(now.value_sum - before.value_sum, predictions))
            .flatten(),
        defect_rate: (!card.defect_labels.is_empty())
            .then(|| mean(defects as f64, classified))
            .flatten(),
        classes,
        drift: drift.features.iter().map(|(_, psi)| finite(*psi)).collect(),
        prediction_psi: drift.prediction.and_then(finite),
        estimated_accuracy: drift.estimated_accuracy.and_then(finite),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::metrics::ModelMetrics;
    use prometheus_client::registry::Registry;
    use vigil_model::ModelRegistry;

    fn point<'a>(sample: &'a Sample, name: &str) -> &'a ModelPoint {
        sample.models.iter().find(|m| m.model == name).unwrap()
    }

    #[test]
    fn an_interval_counts_what_happened_in_it_and_a_new_version_starts_from_zero() {
        let metrics = ModelMetrics::register(&mut Registry::default());
        let registry = ModelRegistry::bundled().unwrap();
        let catalog = Catalog::new(registry.clone(), &metrics);
        let detector = catalog.get("defect-detector").unwrap().clone();
        let t0 = SystemTime::now();
        let mut sampler = Sampler::default();
        // Traffic before the first sample is not in any interval.
        detector.handles.by_class[1].inc_by(7);
        detector.handles.success.inc_by(7);
        let first = sampler.sample(&catalog, t0);
        let p = point(&first, "defect-detector");
        assert_eq!((p.predictions, p.classes.clone()), (0, vec![0, 0]));
        assert_eq!(p.defect_rate, None);

        for _ in 0..2 {
            detector.handles.tally.requests.inc();
            detector.handles.tally.queue_seconds.inc_by(0.002);
            detector.handles.tally.compute_seconds.inc_by(0.004);
        }
        detector.handles.success.inc_by(10);
        detector.handles.tally.confidence_sum.inc_by(9.0);
        detector.handles.by_class[0].inc_by(6);
        detector.handles.by_class[1].inc_by(4);
        detector.handles.error.inc_by(1);
        let second = sampler.sample(&catalog, t0 + Duration::from_secs(5));
        let p = point(&second, "defect-detector");
        assert_eq!(p.predictions, 10);
        assert_eq!(p.errors, 1);
        assert!((p.rate_per_s - 2.0).abs() < 1e-9);
        assert!((p.errors_per_s - 0.2).abs() < 1e-9);
        assert!((p.queue_ms.unwrap() - 2.0).abs() < 1e-9);
        assert!((p.compute_ms.unwrap() - 4.0).abs() < 1e-9);
        assert!((p.confidence.unwrap() - 0.9).abs() < 1e-9);
        assert_eq!(p.classes, [6, 4]);
        assert!((p.defect_rate.unwrap() - 0.4).abs() < 1e-9);
        // No estimate until the drift window holds 100 rows; then its mean confidence.
        assert_eq!(p.estimated_accuracy, None);
        let sure = vigil_model::Output::Class(vigil_model::RowPrediction {
            class_index: 0,
            confidence: 0.8,
            probabilities: vec![0.8, 0.2],
        });
        let row = [70.0, 250.0, 2.5, 45.0, 1500.0, 12.0];
        for _ in 0..100 {
            detector.drift.observe(&row, 6, std::slice::from_ref(&sure));
        }
        let p = point(
            &sampler.sample(&catalog, t0 + Duration::from_secs(6)),
            "defect-detector",
        )
        .clone();
        assert!((p.estimated_accuracy.unwrap() - 0.8).abs() < 1e-6);

        // A new version (its class counters are the model's, still at 13 and 11): a
        // baseline, not the lifetime.
        let swapped = catalog.with_model(detector.model.clone(), &metrics);
        let third = sampler.sample(&swapped, t0 + Duration::from_secs(10));
        let p = point(&third, "defect-detector");
        assert_eq!((p.predictions, p.classes.clone()), (0, vec![0, 0]));
        assert_eq!((p.queue_ms, p.defect_rate), (None, None));
        // The other model was not swapped: its baseline held.
        assert_eq!(point(&third, "digits").predictions, 0);
    }
}
