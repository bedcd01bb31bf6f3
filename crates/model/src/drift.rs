//! Data drift: the Population Stability Index of each feature, and of the predicted
//! class mix, over a sliding window of recent instances against the training
//! reference in the model card. PSI < 0.1 is usually read as stable, 0.1–0.25 as a
//! moderate shift and > 0.25 as a significant one.

use std::sync::Mutex;

use crate::card::ModelCard;

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
}

#[derive(Debug)]
struct Window {
    features: Vec<FeatureBins>,
    class_counts: Vec<u32>,
    /// Ring of the last `capacity` rows: each row's bin per tracked feature, then its class.
    ring: Vec<u16>,
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
    /// The features with a reference, in snapshot order (fixed at load: no lock).
    names: Vec<String>,
    window: Mutex<Window>,
}

/// PSI values at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftSnapshot {
    /// Rows currently in the window.
    pub rows: usize,
    /// `(feature name, PSI)` for each feature with a reference.
    pub features: Vec<(String, f64)>,
    /// PSI of the predicted class mix, if the card has a reference for it.
    pub prediction: Option<f64>,
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
                })
            })
            .collect();
        let stride = features.len() + 1;
        Self {
            prediction_expected: card.drift.prediction_expected.clone(),
            names: features.iter().map(|f| f.name.clone()).collect(),
            window: Mutex::new(Window {
                class_counts: vec![0; card.labels.len()],
                ring: vec![0; stride * capacity],
                stride,
                features,
                next: 0,
                len: 0,
                capacity,
            }),
        }
    }

    /// Records rows (row-major, `features` wide) and their predicted classes.
    pub fn observe(&self, values: &[f32], width: usize, classes: &[usize]) {
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        for (row, &class) in values.chunks_exact(width).zip(classes) {
            let slot = w.next * w.stride;
            if w.len == w.capacity {
                // Evict the oldest row's contribution before overwriting it.
                for f in 0..w.features.len() {
                    let old = w.ring[slot + f] as usize;
                    w.features[f].counts[old] -= 1;
                }
                let old_class = w.ring[slot + w.stride - 1] as usize;
                w.class_counts[old_class] -= 1;
            } else {
                w.len += 1;
            }
            for f in 0..w.features.len() {
                let bins = &mut w.features[f];
                let v = f64::from(row[bins.column]);
                let bin = bins.edges.partition_point(|e| *e <= v);
                bins.counts[bin] += 1;
                w.ring[slot + f] = bin as u16;
            }
            let class = class.min(w.class_counts.len() - 1);
            w.class_counts[class] += 1;
            let last = slot + w.stride - 1;
            w.ring[last] = class as u16;
            w.next = (w.next + 1) % w.capacity;
        }
    }

    /// The features drift is measured on, in the order of [`DriftSnapshot::features`].
    pub fn feature_names(&self) -> &[String] {
        &self.names
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
                .then(|| value(&w.class_counts, &self.prediction_expected)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundled::MODELS;

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
        monitor.observe(&[120.0, 250.0, 2.5, 45.0, 1500.0, 12.0], 6, &[1]);
        assert!(
            monitor.snapshot().features[0].1.is_nan(),
            "one row is not a distribution"
        );
        let hot = [120.0, 250.0, 2.5, 45.0, 1500.0, 12.0];
        for _ in 0..100 {
            monitor.observe(&hot, 6, &[1]);
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
            monitor.observe(&row, 6, &[0]);
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
