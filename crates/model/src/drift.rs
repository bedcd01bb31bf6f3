//! Data drift: the Population Stability Index of each feature, and of the predictions
//! (a classifier's class mix, a regressor's values in the card's bins), over a sliding
//! window of recent instances against the training reference in the model card. Also
//! kept per row, under the same lock: each feature bin's count since load (the
//! counters Prometheus sums across replicas into fleet-wide drift) and a classifier's
//! confidence over the window (the accuracy it expects of itself). PSI < 0.1 is usually read as stable, 0.1–0.25 as a
//! moderate shift and > 0.25 as a significant one.

use std::sync::Mutex;

use crate::card::{ModelCard, Task};
use crate::runtime::Output;

/// Below this many rows in the window, PSI is noise (a handful of rows always looks
/// drifted): it is reported as NaN, which Prometheus alerts and Grafana treat as "no
/// data" rather than as a shift.
pub const MIN_ROWS: usize = 100;

/// Shares below this are clamped so an empty bin gives a large but finite PSI term.
const EPSILON: f64 = 1e-4;

/// PSI of `actual` counts (out of `n`) against `expected` shares.
pub fn psi(actual: &[u32], n: u32, expected: &[f64]) -> f64 {
    if n == 0 {
        return 0.0;
    }
    actual
        .iter()
        .zip(expected)
        .map(|(&count, &e)| {
            let a = (f64::from(count) / f64::from(n)).max(EPSILON);
            let e = e.max(EPSILON);
            (a - e) * (a / e).ln()
        })
        .sum()
}

#[derive(Debug)]
struct FeatureBins {
    /// Index of the feature in the model's input row.
    column: usize,
    name: String,
    edges: Vec<f64>,
    expected: Vec<f64>,
    counts: Vec<u32>,
    /// Rows per bin since load.
    totals: Vec<u64>,
}

#[derive(Debug)]
struct Window {
    features: Vec<FeatureBins>,
    /// Rows per predicted class, or per bin of predicted value.
    prediction_counts: Vec<u32>,
    /// Ring of the last `capacity` rows: each row's bin per tracked feature, then its
    /// prediction's.
    ring: Vec<u16>,
    /// A classifier's top-class confidence of each row in the ring (empty for a
    /// regressor), and their sum.
    confidence: Vec<f32>,
    confidence_sum: f64,
    stride: usize,
    next: usize,
    len: usize,
    capacity: usize,
}

/// One model's drift state. Cheap to update (a binary search per feature per row under
/// a short lock); PSI is computed only when someone asks (a scrape).
#[derive(Debug)]
pub struct DriftMonitor {
    prediction_expected: Vec<f64>,
    /// A regressor's interior value bin edges (empty for a classifier).
    prediction_edges: Vec<f64>,
    /// The features with a reference, in snapshot order (fixed at load: no lock).
    names: Vec<String>,
    /// Their expected share per bin, in the same order.
    expected: Vec<Vec<f64>>,
    window: Mutex<Window>,
}

/// PSI values at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftSnapshot {
    /// Rows currently in the window.
    pub rows: usize,
    /// `(feature name, PSI)` for each feature with a reference.
    pub features: Vec<(String, f64)>,
    /// PSI of the predictions (class mix or value bins), if the card has a reference
    /// for them.
    pub prediction: Option<f64>,
    /// Rows per bin since load, per feature in the order of `features`.
    pub bin_totals: Vec<Vec<u64>>,
    /// A classifier's mean top-class confidence over the window: the accuracy a
    /// calibrated model expects on these rows. NaN below [`MIN_ROWS`]; `None` for a
    /// regressor.
    pub estimated_accuracy: Option<f64>,
}

impl DriftMonitor {
    pub fn new(card: &ModelCard, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let features: Vec<FeatureBins> = card
            .drift
            .features
            .iter()
            .filter_map(|r| {
                let column = card.features.iter().position(|f| f.name == r.name)?;
                Some(FeatureBins {
                    column,
                    name: r.name.clone(),
                    edges: r.edges.clone(),
                    expected: r.expected.clone(),
                    counts: vec![0; r.expected.len()],
                    totals: vec![0; r.expected.len()],
                })
            })
            .collect();
        let stride = features.len() + 1;
        let prediction_bins = match card.task {
            Task::Classification => card.labels.len(),
            Task::Regression => card.drift.prediction_edges.len() + 1,
        };
        Self {
            prediction_expected: card.drift.prediction_expected.clone(),
            prediction_edges: card.drift.prediction_edges.clone(),
            names: features.iter().map(|f| f.name.clone()).collect(),
            expected: features.iter().map(|f| f.expected.clone()).collect(),
            window: Mutex::new(Window {
                prediction_counts: vec![0; prediction_bins.max(1)],
                ring: vec![0; stride * capacity],
                confidence: match card.task {
                    Task::Classification => vec![0.0; capacity],
                    Task::Regression => Vec::new(),
                },
                confidence_sum: 0.0,
                stride,
                features,
                next: 0,
                len: 0,
                capacity,
            }),
        }
    }

    /// The bin of one prediction: its class, or the value's bin between the edges.
    fn prediction_bin(&self, output: &Output) -> usize {
        match output {
            Output::Class(p) => p.class_index,
            Output::Value(v) => self
                .prediction_edges
                .partition_point(|e| *e <= f64::from(*v)),
        }
    }

    /// Records rows (row-major, `features` wide) and what the model answered for them.
    pub fn observe(&self, values: &[f32], width: usize, outputs: &[Output]) {
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        for (row, output) in values.chunks_exact(width).zip(outputs) {
            let class = self.prediction_bin(output);
            let slot = w.next * w.stride;
            if w.len == w.capacity {
                // Evict the oldest row's contribution before overwriting it.
                for f in 0..w.features.len() {
                    let old = w.ring[slot + f] as usize;
                    w.features[f].counts[old] -= 1;
                }
                let old_class = w.ring[slot + w.stride - 1] as usize;
                w.prediction_counts[old_class] -= 1;
                if let Some(old) = w.confidence.get(w.next).copied() {
                    w.confidence_sum -= f64::from(old);
                }
            } else {
                w.len += 1;
            }
            for f in 0..w.features.len() {
                let bins = &mut w.features[f];
                let v = f64::from(row[bins.column]);
                let bin = bins.edges.partition_point(|e| *e <= v);
                bins.counts[bin] += 1;
                bins.totals[bin] += 1;
                w.ring[slot + f] = bin as u16;
            }
            let class = class.min(w.prediction_counts.len() - 1);
            w.prediction_counts[class] += 1;
            let last = slot + w.stride - 1;
            w.ring[last] = class as u16;
            if let (Output::Class(p), Some(_)) = (output, w.confidence.get(w.next)) {
                let next = w.next;
                w.confidence[next] = p.confidence;
                w.confidence_sum += f64::from(p.confidence);
            }
            w.next = (w.next + 1) % w.capacity;
        }
    }

    /// The features drift is measured on, in the order of [`DriftSnapshot::features`].
    pub fn feature_names(&self) -> &[String] {
        &self.names
    }

    /// Each of those features' expected share per bin (the card's reference).
    pub fn references(&self) -> &[Vec<f64>] {
        &self.expected
    }

    pub fn snapshot(&self) -> DriftSnapshot {
        let w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        let n = w.len as u32;
        let value = |counts: &[u32], expected: &[f64]| {
            if w.len < MIN_ROWS {
                f64::NAN
            } else {
                psi(counts, n, expected)
            }
        };
        DriftSnapshot {
            rows: w.len,
            features: w
                .features
                .iter()
                .map(|f| (f.name.clone(), value(&f.counts, &f.expected)))
                .collect(),
            prediction: (!self.prediction_expected.is_empty())
                .then(|| value(&w.prediction_counts, &self.prediction_expected)),
            bin_totals: w.features.iter().map(|f| f.totals.clone()).collect(),
            estimated_accuracy: (!w.confidence.is_empty()).then(|| {
                if w.len < MIN_ROWS {
                    f64::NAN
                } else {
                    // Clamped: float error in the running sum must not leave [0, 1].
                    (w.confidence_sum / w.len as f64).clamp(0.0, 1.0)
                }
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundled::MODELS;
    use crate::runtime::RowPrediction;

    fn class(class_index: usize) -> Output {
        Output::Class(RowPrediction {
            class_index,
            confidence: 1.0,
            probabilities: vec![],
        })
    }

    #[test]
    fn bin_totals_count_since_load_and_confidence_follows_the_window() {
        let card = ModelCard::from_toml(MODELS[0].2).unwrap();
        let monitor = DriftMonitor::new(&card, 100);
        let row = [70.0, 250.0, 2.5, 45.0, 1500.0, 12.0];
        let sure = |confidence: f32| {
            Output::Class(RowPrediction {
                class_index: 0,
                confidence,
                probabilities: vec![],
            })
        };
        for _ in 0..99 {
            monitor.observe(&row, 6, &[sure(0.75)]);
        }
        let early = monitor.snapshot();
        assert!(
            early.estimated_accuracy.unwrap().is_nan(),
            "99 rows are too few"
        );
        monitor.observe(&row, 6, &[sure(0.75)]);
        assert_eq!(monitor.snapshot().estimated_accuracy, Some(0.75));
        // A full window of less sure answers replaces the old ones entirely.
        for _ in 0..100 {
            monitor.observe(&row, 6, &[sure(0.5)]);
        }
        let later = monitor.snapshot();
        assert!((later.estimated_accuracy.unwrap() - 0.5).abs() < 1e-9);
        // The totals keep every row since load, in the bin each value fell in.
        let temp = card
            .drift
            .features
            .iter()
            .position(|f| f.name == "temperature_c")
            .unwrap();
        let bin = card.drift.features[temp]
            .edges
            .partition_point(|e| *e <= 70.0);
        let totals = &later.bin_totals[temp];
        assert_eq!(totals.iter().sum::<u64>(), 200);
        assert_eq!(totals[bin], 200);
        assert_eq!(
            monitor.references()[temp],
            card.drift.features[temp].expected
        );
    }

    #[test]
    fn a_regressors_values_drift_against_its_value_bins() {
        let card = ModelCard::from_toml(
            "name = \"r\"\nversion = \"1\"\ntask = \"regression\"\n\
             [[features]]\nname = \"a\"\n\
             [drift]\nprediction_edges = [10.0, 20.0]\nprediction_expected = [0.25, 0.5, 0.25]\n",
        )
        .unwrap();
        let monitor = DriftMonitor::new(&card, 200);
        // Values spread as the reference expects: no drift.
        for i in 0..200 {
            let v = [5.0, 12.0, 15.0, 25.0][i % 4];
            monitor.observe(&[0.0], 1, &[Output::Value(v)]);
        }
        let steady = monitor.snapshot().prediction.unwrap();
        assert!(steady.abs() < 1e-9, "{steady}");
        // Every value above the top edge: a large shift. An edge value falls in the bin
        // above it, as features' do.
        for _ in 0..200 {
            monitor.observe(&[0.0], 1, &[Output::Value(20.0)]);
        }
        let shifted = monitor.snapshot();
        assert!(shifted.prediction.unwrap() > 1.0, "{shifted:?}");
        assert_eq!(
            shifted.estimated_accuracy, None,
            "a regressor has no confidence"
        );
    }

    #[test]
    fn psi_is_zero_for_identical_and_large_for_disjoint() {
        assert!(psi(&[50, 50], 100, &[0.5, 0.5]).abs() < 1e-12);
        assert!(psi(&[100, 0], 100, &[0.0, 1.0]) > 5.0);
        assert_eq!(psi(&[0, 0], 0, &[0.5, 0.5]), 0.0);
    }

    #[test]
    fn shifted_inputs_drift_and_the_window_forgets() {
        let card = ModelCard::from_toml(MODELS[0].2).unwrap();
        let monitor = DriftMonitor::new(&card, 100);
        monitor.observe(&[120.0, 250.0, 2.5, 45.0, 1500.0, 12.0], 6, &[class(1)]);
        assert!(
            monitor.snapshot().features[0].1.is_nan(),
            "one row is not a distribution"
        );
        let hot = [120.0, 250.0, 2.5, 45.0, 1500.0, 12.0];
        for _ in 0..100 {
            monitor.observe(&hot, 6, &[class(1)]);
        }
        let drifted = monitor.snapshot();
        let temp = drifted
            .features
            .iter()
            .find(|(n, _)| n == "temperature_c")
            .unwrap()
            .1;
        assert!(temp > 1.0, "temperature PSI {temp}");
        assert!(drifted.prediction.unwrap() > 1.0);
        // A full window spread over the reference bins replaces the old rows entirely.
        let edges = &card.drift.features[0].edges;
        for i in 0..100 {
            let bin = i % (edges.len() + 1);
            // Mid-bin values, so f32 rounding cannot push one across an edge.
            let t = match bin {
                0 => edges[0] - 1.0,
                b if b == edges.len() => edges[b - 1] + 1.0,
                b => (edges[b - 1] + edges[b]) / 2.0,
            };
            let row = [t as f32, 250.0, 2.5, 45.0, 1500.0, 12.0];
            monitor.observe(&row, 6, &[class(0)]);
        }
        let after = monitor.snapshot();
        assert_eq!(after.rows, 100);
        let temp_after = after
            .features
            .iter()
            .find(|(n, _)| n == "temperature_c")
            .unwrap()
            .1;
        assert!(
            temp_after < 0.05,
            "temperature PSI after recovery {temp_after}"
        );
    }
}
