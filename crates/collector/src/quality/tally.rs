//! The counts ground-truth quality is computed from, for one model over some span of
//! label time: a confusion count per (true class, predicted class), ten confidence
//! bins, and a regressor's error sums. Tallies merge by addition, so the quality
//! window keeps one per minute and adds them up at scrape time, and `GET /quality`
//! builds one from the database's grouped rows: the figures are computed by this one
//! piece of code either way.

use std::collections::BTreeMap;

use serde::Serialize;
use vigil_store::{CALIBRATION_BINS, ConfusionRow, ErrorSums, Graded, Truth, calibration_bin};

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Bin {
    n: u64,
    /// Sum of the predictions' top-class confidences.
    confidence: f64,
    correct: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Errors {
    n: u64,
    abs: f64,
    sq: f64,
}

/// Mergeable quality counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    confusion: BTreeMap<(String, String), u64>,
    bins: [Bin; CALIBRATION_BINS],
    errors: Errors,
}

/// Precision, recall and F1 of one class; `None` where the denominator is 0.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassQuality {
    pub class: String,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    /// Labels whose true class this is.
    pub support: u64,
}

/// Rows are true classes, columns predicted ones, both in `classes` order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Confusion {
    pub classes: Vec<String>,
    pub matrix: Vec<Vec<u64>>,
}

impl Tally {
    /// Adds one graded label.
    pub fn add(&mut self, g: &Graded) {
        match (&g.truth, &g.predicted_label, g.predicted_value) {
            (Truth::Label(truth), Some(predicted), _) => {
                self.add_cell(
                    truth,
                    predicted,
                    g.confidence.map(calibration_bin),
                    1,
                    g.confidence.unwrap_or(0.0),
                );
            }
            (Truth::Value(truth), _, Some(predicted)) => {
                let e = predicted - truth;
                self.errors.n += 1;
                self.errors.abs += e.abs();
                self.errors.sq += e * e;
            }
            // An ungradable pair (refused before it is stored).
            _ => {}
        }
    }

    /// Adds `n` labels of one (true, predicted, confidence bin) cell whose
    /// confidences sum to `confidence`.
    pub fn add_cell(
        &mut self,
        truth: &str,
        predicted: &str,
        bin: Option<usize>,
        n: u64,
        confidence: f64,
    ) {
        *self
            .confusion
            .entry((truth.to_owned(), predicted.to_owned()))
            .or_default() += n;
        if let Some(b) = bin.and_then(|b| self.bins.get_mut(b)) {
            b.n += n;
            b.confidence += confidence;
            b.correct += if truth == predicted { n } else { 0 };
        }
    }

    /// A tally of the database's grouped rows.
    pub fn from_rows(cells: &[ConfusionRow], errors: Option<&ErrorSums>) -> Self {
        let mut t = Tally::default();
        for c in cells {
            t.add_row(c);
        }
        if let Some(e) = errors {
            t.add_errors(e);
        }
        t
    }

    /// Adds one grouped row of the database.
    pub fn add_row(&mut self, c: &ConfusionRow) {
        let bin = c.bin.and_then(|b| usize::try_from(b).ok());
        self.add_cell(&c.truth, &c.predicted, bin, c.n as u64, c.confidence);
    }

    /// Adds a regressor's grouped error sums.
    pub fn add_errors(&mut self, e: &ErrorSums) {
        self.errors.n += e.n as u64;
        self.errors.abs += e.abs_sum;
        self.errors.sq += e.sq_sum;
    }

    pub fn merge(&mut self, other: &Tally) {
        for (k, n) in &other.confusion {
            *self.confusion.entry(k.clone()).or_default() += n;
        }
        for (mine, theirs) in self.bins.iter_mut().zip(&other.bins) {
            mine.n += theirs.n;
            mine.confidence += theirs.confidence;
            mine.correct += theirs.correct;
        }
        self.errors.n += other.errors.n;
        self.errors.abs += other.errors.abs;
        self.errors.sq += other.errors.sq;
    }

    /// Classifier labels counted.
    pub fn class_labels(&self) -> u64 {
        self.confusion.values().sum()
    }

    /// Every graded label, a classifier's or a regressor's.
    pub fn labels(&self) -> u64 {
        self.class_labels() + self.errors.n
    }

    /// Share of classifier labels the model got right.
    pub fn accuracy(&self) -> Option<f64> {
        let n = self.class_labels();
        let correct: u64 = self
            .confusion
            .iter()
            .filter(|((t, p), _)| t == p)
            .map(|(_, n)| n)
            .sum();
        (n > 0).then(|| correct as f64 / n as f64)
    }

    /// The classes the labels name (as truth or prediction): those of `known` (a
    /// card's labels) in its order, then any other. A card of a thousand classes with
    /// labels for three gives three.
    pub fn classes(&self, known: &[String]) -> Vec<String> {
        let seen: std::collections::BTreeSet<&String> =
            self.confusion.keys().flat_map(|(t, p)| [t, p]).collect();
        let mut classes: Vec<String> = known.iter().filter(|c| seen.contains(c)).cloned().collect();
        for c in seen {
            if !classes.contains(c) {
                classes.push(c.clone());
            }
        }
        classes
    }

    /// Per-class precision, recall and F1 for `classes`.
    pub fn per_class(&self, classes: &[String]) -> Vec<ClassQuality> {
        classes
            .iter()
            .map(|c| {
                let (mut tp, mut predicted, mut actual) = (0u64, 0u64, 0u64);
                for ((t, p), n) in &self.confusion {
                    if t == c && p == c {
                        tp += n;
                    }
                    if p == c {
                        predicted += n;
                    }
                    if t == c {
                        actual += n;
                    }
                }
                let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
                // F1 from the counts, 2TP / (2TP + FP + FN), exact where 2PR/(P+R)
                // rounds.
                let f1 = ratio(2 * tp, predicted + actual);
                ClassQuality {
                    class: c.clone(),
                    precision: ratio(tp, predicted),
                    recall: ratio(tp, actual),
                    f1,
                    support: actual,
                }
            })
            .collect()
    }

    pub fn confusion(&self, classes: &[String]) -> Confusion {
        let matrix = classes
            .iter()
            .map(|t| {
                classes
                    .iter()
                    .map(|p| {
                        self.confusion
                            .get(&(t.clone(), p.clone()))
                            .copied()
                            .unwrap_or(0)
                    })
                    .collect()
            })
            .collect();
        Confusion {
            classes: classes.to_vec(),
            matrix,
        }
    }

    /// Expected calibration error over the ten bins: the label-weighted mean gap
    /// between each bin's accuracy and its mean confidence.
    pub fn calibration_error(&self) -> Option<f64> {
        let n: u64 = self.bins.iter().map(|b| b.n).sum();
        (n > 0).then(|| {
            self.bins
                .iter()
                .filter(|b| b.n > 0)
                .map(|b| (b.correct as f64 - b.confidence).abs() / n as f64)
                .sum()
        })
    }

    /// A regressor's mean absolute error.
    pub fn mae(&self) -> Option<f64> {
        (self.errors.n > 0).then(|| self.errors.abs / self.errors.n as f64)
    }

    /// A regressor's root mean squared error.
    pub fn rmse(&self) -> Option<f64> {
        (self.errors.n > 0).then(|| (self.errors.sq / self.errors.n as f64).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graded(truth: &str, predicted: &str, confidence: f64) -> Graded {
        Graded {
            prediction_id: String::new(),
            model: "m".into(),
            truth: Truth::Label(truth.into()),
            predicted_label: Some(predicted.into()),
            predicted_value: None,
            confidence: Some(confidence),
            predicted_ms: 0,
            label_ms: 0,
        }
    }

    #[test]
    fn figures_of_a_known_confusion() {
        let mut t = Tally::default();
        // 6 a→a, 2 a→b, 1 b→a, 1 b→b.
        for _ in 0..6 {
            t.add(&graded("a", "a", 0.95));
        }
        for _ in 0..2 {
            t.add(&graded("a", "b", 0.65));
        }
        t.add(&graded("b", "a", 0.95));
        t.add(&graded("b", "b", 0.65));
        assert_eq!(t.accuracy(), Some(0.7));
        let classes = t.classes(&["a".into(), "b".into()]);
        let q = t.per_class(&classes);
        assert_eq!(q[0].precision, Some(6.0 / 7.0));
        assert_eq!(q[0].recall, Some(6.0 / 8.0));
        assert_eq!(q[1].precision, Some(1.0 / 3.0));
        assert_eq!(q[1].recall, Some(0.5));
        assert_eq!(q[1].support, 2);
        assert_eq!(t.confusion(&classes).matrix, vec![vec![6, 2], vec![1, 1]]);
        // Bin 9: 7 labels, 6 right, confidence 0.95 each; bin 6: 3 labels, 1 right.
        let want = (6.0f64 - 7.0 * 0.95).abs() / 10.0 + (1.0f64 - 3.0 * 0.65).abs() / 10.0;
        assert!((t.calibration_error().unwrap() - want).abs() < 1e-12);
        // Merging is adding.
        let mut twice = t.clone();
        twice.merge(&t);
        assert_eq!(twice.accuracy(), Some(0.7));
        assert_eq!(twice.labels(), 20);
    }

    #[test]
    fn empty_tallies_have_no_figures_and_regressors_have_errors() {
        let t = Tally::default();
        assert_eq!(
            (t.accuracy(), t.calibration_error(), t.mae()),
            (None, None, None)
        );
        let mut r = Tally::default();
        for (truth, predicted) in [(1.0, 2.0), (3.0, 1.0)] {
            r.add(&Graded {
                truth: Truth::Value(truth),
                predicted_label: None,
                predicted_value: Some(predicted),
                ..graded("x", "x", 0.5)
            });
        }
        assert_eq!(r.mae(), Some(1.5));
        assert_eq!(r.rmse(), Some((5.0f64 / 2.0).sqrt()));
        assert_eq!(r.accuracy(), None);
        assert_eq!(r.labels(), 2);
    }
}
