//! What a card learns from training data: each feature's accepted range (the training
//! range with a margin), its drift reference (decile edges and the share of training
//! rows in each bin) and the expected mix of predicted labels.

use vigil_model::card::{Feature, FeatureReference};

use crate::data::TrainingData;

/// Fewest rows a reference is computed from: ten per decile bin.
pub const MIN_ROWS: usize = 100;

/// The share of a feature's training range added below its minimum and above its
/// maximum: production values outside what training saw are still served (and show
/// as drift); values far outside (a broken sensor, a unit mix-up) are refused as
/// `out_of_range`. Half the range, because held-out rows go further than one would
/// guess: a wine in the zoo's test split has flavanoids 34 % of the training range
/// above the training maximum. The margin stops at 0 for a feature never negative.
pub const RANGE_MARGIN: f64 = 0.5;

/// Significant digits kept in the numbers a card is written with.
const DIGITS: i32 = 6;

/// Rounds to [`DIGITS`] significant digits, outwards: down for a minimum (`up`
/// false), up for a maximum. Float noise below a billionth is not "outside".
fn round(v: f64, up: bool) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    // Through decimal text, so the card shows `2.7`, not `2.7000000000000002`.
    let decimal = |x: f64| -> f64 {
        format!("{:.*e}", (DIGITS - 1) as usize, x)
            .parse()
            .unwrap_or(x)
    };
    let unit = 10f64.powi(v.abs().log10().floor() as i32 - (DIGITS - 1));
    let r = decimal(v);
    let slack = v.abs() * 1e-9;
    if up && r < v - slack {
        decimal(r + unit)
    } else if !up && r > v + slack {
        decimal(r - unit)
    } else {
        r
    }
}

/// The card's features: names from the CSV header, ranges from the data.
pub fn features(data: &TrainingData) -> Vec<Feature> {
    data.features
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let column = data.column(j);
            let lo = column.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = column.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let (min, max) = if column.is_empty() {
                (None, None)
            } else {
                let span = hi - lo;
                let margin = if span > 0.0 { span } else { lo.abs().max(1.0) } * RANGE_MARGIN;
                // A feature never negative in training (a count, a size) stays so.
                let min = if lo >= 0.0 {
                    (lo - margin).max(0.0)
                } else {
                    lo - margin
                };
                (Some(round(min, false)), Some(round(hi + margin, true)))
            };
            Feature {
                name: name.clone(),
                min,
                max,
            }
        })
        .collect()
}

/// Decile edges of each feature and the share of training rows in each of its bins
/// (see [`deciles`]).
pub fn drift_references(data: &TrainingData) -> Vec<FeatureReference> {
    data.features
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let (edges, expected) = deciles(data.column(j));
            FeatureReference {
                name: name.clone(),
                edges,
                expected,
            }
        })
        .collect()
}

/// A regressor's value bins: the deciles of what it predicted on the training data.
pub fn value_bins(values: &[f64]) -> (Vec<f64>, Vec<f64>) {
    deciles(values.to_vec())
}

/// Decile edges of `column` and the share of its values in each of the bins
/// `(-inf, e0), [e0, e1), …, [e_last, inf)`. Tied values give fewer edges; a
/// constant column has none (one bin holding everything).
fn deciles(mut column: Vec<f64>) -> (Vec<f64>, Vec<f64>) {
    column.sort_by(f64::total_cmp);
    let n = column.len();
    let mut edges: Vec<f64> = Vec::with_capacity(9);
    if n > 0 {
        for k in 1..10 {
            let e = column[(k * n / 10).min(n - 1)];
            if e > column[0] && edges.last().is_none_or(|last| e > *last) {
                edges.push(e);
            }
        }
    }
    let mut expected = Vec::with_capacity(edges.len() + 1);
    let mut below = 0;
    for e in &edges {
        let upto = column.partition_point(|v| v < e);
        expected.push(share(upto - below, n));
        below = upto;
    }
    expected.push(share(n - below, n));
    (edges, expected)
}

fn share(count: usize, n: usize) -> f64 {
    if n == 0 {
        return 0.0;
    }
    (count as f64 / n as f64 * 1e6).round() / 1e6
}

/// The share of each label among the predicted classes.
pub fn prediction_mix(classes: &[usize], labels: usize) -> Vec<f64> {
    let mut counts = vec![0usize; labels];
    for &c in classes {
        counts[c] += 1;
    }
    counts.iter().map(|&c| share(c, classes.len())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(columns: &[Vec<f32>]) -> TrainingData {
        let rows = columns[0].len();
        let values = (0..rows)
            .flat_map(|i| columns.iter().map(move |c| c[i]))
            .collect();
        TrainingData {
            path: "t.csv".into(),
            features: (0..columns.len()).map(|j| format!("f{j}")).collect(),
            values,
            rows,
            targets: None,
        }
    }

    #[test]
    fn deciles_split_a_uniform_feature_in_tenths() {
        let d = data(&[(0..1000).map(|i| i as f32).collect()]);
        let r = &drift_references(&d)[0];
        assert_eq!(
            r.edges,
            [
                100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0, 900.0
            ]
        );
        assert!(
            r.expected.iter().all(|s| (s - 0.1).abs() < 1e-9),
            "{:?}",
            r.expected
        );
    }

    #[test]
    fn ties_and_constants_give_fewer_bins_that_still_sum_to_one() {
        let mut skewed: Vec<f32> = vec![0.0; 700];
        skewed.extend((1..=300).map(|i| i as f32));
        let d = data(&[skewed, vec![5.0; 1000], vec![f32::NAN; 1000]]);
        let refs = drift_references(&d);
        for r in &refs {
            assert_eq!(r.expected.len(), r.edges.len() + 1);
            assert!((r.expected.iter().sum::<f64>() - 1.0).abs() < 1e-5 || r.name == "f2");
            assert!(r.edges.windows(2).all(|w| w[0] < w[1]));
        }
        assert!(refs[0].edges.len() < 9);
        assert_eq!(refs[0].expected[0], 0.7);
        assert!(refs[1].edges.is_empty());
    }

    #[test]
    fn ranges_have_a_margin_and_round_outwards() {
        let d = data(&[vec![0.123_456_79, 10.0], vec![3.0, 3.0], vec![-1.0, 1.0]]);
        let f = features(&d);
        assert_eq!(
            f[0].min,
            Some(0.0),
            "never negative in training: not below 0"
        );
        assert!(f[0].max.unwrap() >= 14.9);
        assert_eq!((f[1].min, f[1].max), (Some(1.5), Some(4.5)));
        assert_eq!((f[2].min, f[2].max), (Some(-2.0), Some(2.0)));
    }

    #[test]
    fn mix_counts_each_label() {
        assert_eq!(prediction_mix(&[0, 1, 1, 1], 3), [0.25, 0.75, 0.0]);
    }
}
