//! Why FeatureDrift waits for a minimum sample: PSI over a small sample drifts by
//! chance. This simulates windows of instances drawn from exactly the training
//! distribution of every defect-detector feature (its card's reference shares),
//! computes PSI as the `model_feature:model_feature_psi:1h` recording rule does
//! (shares floored at 0.0001), and counts false alarms at the threshold and minimum
//! FeatureDrift uses (read from alert_rules.yml, so the two cannot disagree).

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use vigil_stack::{deploy, repo_root, yaml};

const WINDOWS_PER_FEATURE: usize = 20_000;
const FLOOR: f64 = 0.0001;

/// FeatureDrift's PSI threshold and minimum instances, from its expression.
fn gate() -> (f64, usize) {
    let rules = yaml(&deploy("prometheus/alert_rules.yml"));
    let expr = rules["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap())
        .find(|r| r["alert"].as_str() == Some("FeatureDrift"))
        .and_then(|r| r["expr"].as_str())
        .expect("FeatureDrift")
        .to_owned();
    let number_after = |op: &str| {
        let at = expr
            .find(op)
            .unwrap_or_else(|| panic!("no `{op}` in {expr}"))
            + op.len();
        expr[at..]
            .trim_start()
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .next()
            .unwrap()
            .to_owned()
    };
    (
        number_after(":1h >").parse().unwrap(),
        number_after(">=").parse().unwrap(),
    )
}

/// The defect detector's reference shares per feature.
fn references() -> Vec<(String, Vec<f64>)> {
    let text =
        std::fs::read_to_string(repo_root().join("models/defect-detector/model.toml")).unwrap();
    let card: toml::Value = toml::from_str(&text).unwrap();
    card["drift"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let expected = f["expected"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_float().unwrap())
                .collect();
            (f["name"].as_str().unwrap().to_owned(), expected)
        })
        .collect()
}

/// PSI of `counts` (out of their sum) against `expected`, as the recording rule has it.
fn psi(counts: &[usize], expected: &[f64]) -> f64 {
    let n = counts.iter().sum::<usize>() as f64;
    counts
        .iter()
        .zip(expected)
        .map(|(&c, &e)| {
            let a = (c as f64 / n).max(FLOOR);
            let e = e.max(FLOOR);
            (a - e) * (a.ln() - e.ln())
        })
        .sum()
}

/// Share of windows of `n` instances drawn from the reference that cross `threshold`.
fn false_alarms(n: usize, threshold: f64, rng: &mut StdRng) -> (usize, usize) {
    let mut alarms = 0;
    let mut windows = 0;
    for (_, expected) in references() {
        let cumulative: Vec<f64> = expected
            .iter()
            .scan(0.0, |sum, e| {
                *sum += e;
                Some(*sum)
            })
            .collect();
        let total = *cumulative.last().unwrap();
        let mut counts = vec![0; expected.len()];
        for _ in 0..WINDOWS_PER_FEATURE {
            counts.iter_mut().for_each(|c| *c = 0);
            for _ in 0..n {
                let u = rng.random::<f64>() * total;
                let bin = cumulative
                    .partition_point(|c| *c <= u)
                    .min(counts.len() - 1);
                counts[bin] += 1;
            }
            windows += 1;
            alarms += usize::from(psi(&counts, &expected) > threshold);
        }
    }
    (alarms, windows)
}

#[test]
fn the_minimum_sample_keeps_false_alarms_away_and_is_needed() {
    let (threshold, minimum) = gate();
    assert_eq!((threshold, minimum), (0.25, 500));
    let mut rng = StdRng::seed_from_u64(7);
    let (alarms, windows) = false_alarms(minimum, threshold, &mut rng);
    eprintln!("{minimum} instances: {alarms} false alarms in {windows} windows");
    assert_eq!(
        alarms, 0,
        "{minimum} instances: {alarms} of {windows} windows cross {threshold}"
    );
    // A tenth of the minimum is where chance alone crosses the threshold.
    let (alarms, windows) = false_alarms(minimum / 10, threshold, &mut rng);
    let rate = alarms as f64 / windows as f64;
    eprintln!(
        "{} instances: {alarms} false alarms in {windows} windows ({rate:.4})",
        minimum / 10
    );
    assert!(
        rate > 0.01,
        "{} instances: false-alarm rate {rate}",
        minimum / 10
    );
}
