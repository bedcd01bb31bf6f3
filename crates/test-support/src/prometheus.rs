//! Reading a Prometheus text exposition in tests.

use std::time::Duration;

/// How long a test waits for a readiness signal (a log line, a metric value) before
/// it fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The value of one series (name and labels exactly as exposed) in a text exposition.
pub fn sample(text: &str, series: &str) -> f64 {
    try_sample(text, series).unwrap_or_else(|| panic!("no series {series} in\n{text}"))
}

/// The value of one series, if the exposition has it.
pub fn try_sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .map(|v| v.parse().unwrap())
}

/// Every series of an exposition (name and labels), minus the `process_*` ones that
/// move on their own: what a test compares to prove that bad input added none.
pub fn series(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("process_"))
        .map(|l| l.rsplit_once(' ').map_or(l, |(name, _)| name).to_owned())
        .collect()
}

/// Checks every histogram in a scrape: cumulative buckets never decrease, and the
/// `+Inf` bucket equals `_count`.
pub fn histogram_invariants(text: &str) {
    use std::collections::HashMap;
    let mut buckets: HashMap<String, Vec<(f64, f64)>> = HashMap::new();
    let mut counts: HashMap<String, f64> = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let value: f64 = value.parse().unwrap();
        let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
        let labels = labels.trim_end_matches('}');
        if let Some(base) = name.strip_suffix("_bucket") {
            let mut le = None;
            let rest: Vec<&str> = labels
                .split(',')
                .filter(|kv| match kv.strip_prefix("le=") {
                    Some(v) => {
                        le = Some(v.trim_matches('"').to_owned());
                        false
                    }
                    None => true,
                })
                .collect();
            let le = le.unwrap();
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            buckets
                .entry(format!("{base}{{{}}}", rest.join(",")))
                .or_default()
                .push((bound, value));
        } else if let Some(base) = name.strip_suffix("_count") {
            counts.insert(format!("{base}{{{labels}}}"), value);
        }
    }
    assert!(!buckets.is_empty());
    for (key, mut b) in buckets {
        b.sort_by(|x, y| x.0.total_cmp(&y.0));
        assert!(
            b.windows(2).all(|w| w[0].1 <= w[1].1),
            "buckets decrease in {key}: {b:?}"
        );
        let inf = b.last().unwrap();
        assert_eq!(inf.0, f64::INFINITY, "{key} has no +Inf bucket");
        assert_eq!(Some(&inf.1), counts.get(&key), "+Inf != _count for {key}");
    }
}
