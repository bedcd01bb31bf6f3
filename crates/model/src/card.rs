//! The model card: `model.toml` beside `model.onnx`. It names the model, its ordered
//! features (with optional physical ranges), its labels, which labels count as defects,
//! and the drift reference computed from the training data.

use serde::{Deserialize, Serialize};

use crate::error::CardError;

pub use vigil_records::Task;

/// One input feature, in the order the model expects it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    pub name: String,
    /// Smallest physically meaningful value; smaller inputs are rejected as out of range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest physically meaningful value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// Reference distribution of one feature: interior bin edges and the training share of
/// each of the `edges.len() + 1` bins `(-inf, e0), [e0, e1), …, [e_last, inf)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureReference {
    pub name: String,
    pub edges: Vec<f64>,
    pub expected: Vec<f64>,
}

/// Drift reference from the training data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftReference {
    /// A classifier: the expected share of each label among the model's predictions on
    /// training data. A regressor: the expected share of each bin of predicted values
    /// (`prediction_edges.len() + 1` bins).
    #[serde(default)]
    pub prediction_expected: Vec<f64>,
    /// A regressor's interior bin edges for its predicted values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prediction_edges: Vec<f64>,
    #[serde(default)]
    pub features: Vec<FeatureReference>,
}

/// The model's quality measured on labelled data when its card was written (`vigil
/// models init --label-column`): what quality alerts compare live accuracy against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// Share of rows whose predicted label was the true one (classification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    /// Mean absolute error (regression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mae: Option<f64>,
    /// Root mean squared error (regression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rmse: Option<f64>,
    /// How many labelled rows it was measured on.
    pub rows: u64,
    /// Where the rows came from, for people (e.g. the CSV's file name).
    #[serde(default)]
    pub data: String,
}

impl std::fmt::Display for Baseline {
    /// The figures, as people read them: `accuracy 0.96` or `MAE 2.5, RMSE 3.5`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.accuracy, self.mae, self.rmse) {
            (Some(a), ..) => write!(f, "accuracy {a}"),
            (None, Some(mae), Some(rmse)) => write!(f, "MAE {mae}, RMSE {rmse}"),
            _ => write!(f, "no figures"),
        }
    }
}

/// A parsed and checked `model.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCard {
    pub name: String,
    pub version: String,
    pub task: Task,
    #[serde(default)]
    pub description: String,
    /// A classifier's labels, in its class order; none for a regressor (whose card
    /// then has no `labels` key, as the reference describes it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub defect_labels: Vec<String>,
    pub features: Vec<Feature>,
    #[serde(default)]
    pub drift: DriftReference,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Baseline>,
}

/// Most labels a classifier may have: each is a `predictions_by_class` series on every
/// replica, and the collector takes no card with more (ImageNet's 1,000 classes fit).
pub use vigil_records::card::MAX_LABELS;
/// Most interior edges of one set of drift bins (a feature's reference, a regressor's
/// value bins): each bin is a series, twice over for a feature. `vigil models init`
/// writes deciles (9 edges).
pub const MAX_EDGES: usize = 100;
/// Most drift bins of all the features' references together: each is two series
/// (`model_feature_bin_total`, `model_feature_reference_ratio`) on every replica, so a
/// card cannot make a scrape grow without bound (64 pixel features at 10 bins are 640).
pub const MAX_DRIFT_BINS: usize = 10_000;

/// Model names become URL segments and metric label values: keep them tame.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// Feature names and labels become Prometheus label values: printable, unquoted, short.
fn tame_label(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.chars().all(|c| !c.is_control() && c != '"' && c != '\\')
}

/// Checks reference bins: finite, strictly increasing interior `edges` and one share
/// per bin (`edges.len() + 1`), each >= 0, summing to 1 (± 0.01).
fn bins(what: &str, edges: &[f64], expected: &[f64]) -> Result<(), String> {
    if edges.len() > MAX_EDGES {
        return Err(format!("{what}: at most {MAX_EDGES} edges"));
    }
    if expected.len() != edges.len() + 1 {
        return Err(format!("{what}: expected needs edges + 1 shares"));
    }
    if edges.windows(2).any(|w| w[0] >= w[1]) || edges.iter().any(|e| !e.is_finite()) {
        return Err(format!("{what}: edges must be finite and increasing"));
    }
    shares(what, expected)
}

/// Checks shares of a whole: each in [0, 1], summing to 1 (± 0.01). Written as
/// ranges that must contain the values, so NaN fails (a range contains no NaN): a NaN
/// share would be served as the reference ratio's NaN and make every PSI NaN.
fn shares(what: &str, expected: &[f64]) -> Result<(), String> {
    let total: f64 = expected.iter().sum();
    let whole = (0.99..=1.01).contains(&total);
    if !whole || !expected.iter().all(|e| (0.0..=1.0).contains(e)) {
        return Err(format!("{what}: shares must be >= 0 and sum to 1"));
    }
    Ok(())
}

impl ModelCard {
    /// What the collector needs to grade this model's ground truth.
    pub fn summary(&self) -> vigil_records::CardSummary {
        vigil_records::CardSummary {
            model: self.name.clone(),
            version: self.version.clone(),
            task: self.task,
            labels: match self.task {
                Task::Classification => self.labels.clone(),
                Task::Regression => Vec::new(),
            },
            baseline: self
                .baseline
                .as_ref()
                .map(|b| vigil_records::BaselineSummary {
                    accuracy: b.accuracy,
                    mae: b.mae,
                    rmse: b.rmse,
                }),
        }
    }

    pub fn from_toml(text: &str) -> Result<Self, CardError> {
        let card: ModelCard = toml::from_str(text)?;
        card.check()?;
        Ok(card)
    }

    /// Consistency checks a TOML schema cannot express.
    fn check(&self) -> Result<(), CardError> {
        let bad = |m: String| Err(CardError::Invalid(m));
        if !valid_name(&self.name) {
            return bad(format!(
                "name {:?} must be 1-64 chars of [A-Za-z0-9._-]",
                self.name
            ));
        }
        if self.version.is_empty()
            || self.version.len() > 64
            || self.version.chars().any(char::is_control)
        {
            return bad("version must be 1-64 printable chars".into());
        }
        match self.task {
            Task::Classification if self.labels.len() < 2 => {
                return bad("a classifier needs at least two labels".into());
            }
            Task::Classification if self.labels.len() > MAX_LABELS => {
                return bad(format!("a classifier has at most {MAX_LABELS} labels"));
            }
            Task::Classification if !self.drift.prediction_edges.is_empty() => {
                return bad("drift.prediction_edges are a regressor's value bins; a classifier's prediction mix is per label".into());
            }
            Task::Regression if !self.labels.is_empty() || !self.defect_labels.is_empty() => {
                return bad("a regressor has no labels or defect_labels".into());
            }
            _ => {}
        }
        if self.features.is_empty() {
            return bad("at least one feature is required".into());
        }
        let mut seen = std::collections::HashSet::new();
        for f in &self.features {
            if !seen.insert(f.name.as_str()) {
                return bad(format!("feature {:?} is listed twice", f.name));
            }
            if !tame_label(&f.name) {
                return bad(format!(
                    "feature name {:?} must be 1-128 printable chars without quotes or backslashes",
                    f.name
                ));
            }
            if f.min.is_some_and(|v| !v.is_finite()) || f.max.is_some_and(|v| !v.is_finite()) {
                return bad(format!("feature {:?}: min and max must be finite", f.name));
            }
            if let (Some(lo), Some(hi)) = (f.min, f.max)
                && lo > hi
            {
                return bad(format!("feature {:?}: min must be <= max", f.name));
            }
        }
        if let Some(l) = self.labels.iter().find(|l| !tame_label(l)) {
            return bad(format!(
                "label {l:?} must be 1-128 printable chars without quotes or backslashes"
            ));
        }
        let mut labels = std::collections::HashSet::new();
        if let Some(l) = self.labels.iter().find(|l| !labels.insert(l.as_str())) {
            // An answer's label would not say which class it was.
            return bad(format!("label {l:?} is listed twice"));
        }
        for d in &self.defect_labels {
            if !self.labels.contains(d) {
                return bad(format!("defect label {d:?} is not one of the labels"));
            }
        }
        let p = &self.drift.prediction_expected;
        match self.task {
            Task::Classification if !p.is_empty() && p.len() != self.labels.len() => {
                return bad("drift.prediction_expected needs one share per label".into());
            }
            Task::Classification if !p.is_empty() => {
                shares("drift.prediction_expected", p).map_err(CardError::Invalid)?;
            }
            Task::Regression if !p.is_empty() || !self.drift.prediction_edges.is_empty() => {
                bins("drift.prediction_edges", &self.drift.prediction_edges, p)
                    .map_err(CardError::Invalid)?;
            }
            _ => {}
        }
        let mut referenced = std::collections::HashSet::new();
        for r in &self.drift.features {
            if !seen.contains(r.name.as_str()) {
                return bad(format!("drift reference for unknown feature {:?}", r.name));
            }
            if !referenced.insert(r.name.as_str()) {
                // Two references would print the same drift series twice in a scrape.
                return bad(format!("drift reference for {:?} is listed twice", r.name));
            }
            bins(
                &format!("drift reference {:?}", r.name),
                &r.edges,
                &r.expected,
            )
            .map_err(CardError::Invalid)?;
        }
        let drift_bins: usize = self.drift.features.iter().map(|r| r.expected.len()).sum();
        if drift_bins > MAX_DRIFT_BINS {
            return bad(format!(
                "drift references have {drift_bins} bins in all; at most {MAX_DRIFT_BINS}"
            ));
        }
        if let Some(b) = &self.baseline {
            if b.rows == 0 {
                return bad("baseline.rows must be at least 1".into());
            }
            let error = |e: Option<f64>| e.is_some_and(|v| v.is_finite() && v >= 0.0);
            match self.task {
                Task::Classification => match b.accuracy {
                    _ if b.mae.is_some() || b.rmse.is_some() => {
                        return bad("baseline.mae and rmse are a regressor's".into());
                    }
                    Some(a) if (0.0..=1.0).contains(&a) => {}
                    Some(_) => return bad("baseline.accuracy must be between 0 and 1".into()),
                    None => return bad("a classifier's baseline needs its accuracy".into()),
                },
                Task::Regression if b.accuracy.is_some() => {
                    return bad(
                        "baseline.accuracy is a classifier's; a regressor's is mae and rmse".into(),
                    );
                }
                Task::Regression if !(error(b.mae) && error(b.rmse)) => {
                    return bad("a regressor's baseline needs mae and rmse, each >= 0".into());
                }
                Task::Regression => {}
            }
        }
        Ok(())
    }

    pub fn feature_names(&self) -> impl Iterator<Item = &str> {
        self.features.iter().map(|f| f.name.as_str())
    }

    /// Whether `label_index` is one of the card's defect labels.
    pub fn is_defect(&self, label_index: usize) -> bool {
        self.labels
            .get(label_index)
            .is_some_and(|l| self.defect_labels.contains(l))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARD: &str = r#"
name = "m"
version = "1"
task = "classification"
labels = ["ok", "defect"]
defect_labels = ["defect"]
[[features]]
name = "a"
min = 0.0
max = 1.0
[drift]
prediction_expected = [0.9, 0.1]
[[drift.features]]
name = "a"
edges = [0.5]
expected = [0.5, 0.5]
"#;

    #[test]
    fn parses_a_valid_card() {
        let card = ModelCard::from_toml(CARD).unwrap();
        assert_eq!(card.labels, ["ok", "defect"]);
        assert!(card.is_defect(1));
        assert!(!card.is_defect(0));
        assert!(!card.is_defect(7));
    }

    #[test]
    fn rejects_inconsistent_cards() {
        for (from, to, why) in [
            (
                "defect_labels = [\"defect\"]",
                "defect_labels = [\"broken\"]",
                "defect label",
            ),
            ("name = \"m\"", "name = \"m m\"", "name"),
            ("edges = [0.5]", "edges = [0.5, 0.2]", "edges"),
            ("expected = [0.5, 0.5]", "expected = [0.5, 0.1]", "sum to 1"),
            // NaN passes `< 0.0` and `> 0.01` alike: refused all the same.
            ("expected = [0.5, 0.5]", "expected = [nan, 1.0]", "sum to 1"),
            ("expected = [0.5, 0.5]", "expected = [1.5, -0.5]", ">= 0"),
            (
                "prediction_expected = [0.9, 0.1]",
                "prediction_expected = [nan, nan]",
                "sum to 1",
            ),
            (
                "prediction_expected = [0.9, 0.1]",
                "prediction_expected = [0.9, 0.9]",
                "sum to 1",
            ),
            (
                "prediction_expected = [0.9, 0.1]",
                "prediction_expected = [1.0]",
                "one share per label",
            ),
            (
                "task = \"classification\"",
                "task = \"regression\"",
                "no labels",
            ),
            (
                "[drift]",
                "[baseline]\naccuracy = 1.5\nrows = 10\n[drift]",
                "between 0 and 1",
            ),
            (
                "[drift]",
                "[baseline]\nrows = 10\n[drift]",
                "needs its accuracy",
            ),
        ] {
            let text = CARD.replace(from, to);
            let err = ModelCard::from_toml(&text).unwrap_err().to_string();
            assert!(err.contains(why), "{err} should mention {why}");
        }
    }

    #[test]
    fn a_baseline_round_trips() {
        let text = CARD.replace(
            "[drift]",
            "[baseline]\naccuracy = 0.95\nrows = 400\ndata = \"train.csv\"\n[drift]",
        );
        let card = ModelCard::from_toml(&text).unwrap();
        let b = card.baseline.as_ref().unwrap();
        assert_eq!((b.accuracy, b.rows), (Some(0.95), 400));
        let again = ModelCard::from_toml(&toml::to_string(&card).unwrap()).unwrap();
        assert_eq!(again, card);
    }

    const REGRESSOR: &str = r#"
name = "r"
version = "1"
task = "regression"
[[features]]
name = "a"
[drift]
prediction_edges = [10.0, 20.0]
prediction_expected = [0.3, 0.4, 0.3]
[baseline]
mae = 2.5
rmse = 3.5
rows = 200
"#;

    #[test]
    fn a_regressor_card_has_value_bins_and_error_baselines() {
        let card = ModelCard::from_toml(REGRESSOR).unwrap();
        assert_eq!(card.task, Task::Regression);
        assert!(card.labels.is_empty());
        let again = ModelCard::from_toml(&toml::to_string(&card).unwrap()).unwrap();
        assert_eq!(again, card);
        for (from, to, why) in [
            (
                "prediction_edges = [10.0, 20.0]",
                "prediction_edges = [20.0, 10.0]",
                "increasing",
            ),
            (
                "prediction_expected = [0.3, 0.4, 0.3]",
                "prediction_expected = [0.5, 0.5]",
                "edges + 1",
            ),
            ("rmse = 3.5", "accuracy = 0.9", "mae and rmse"),
            ("mae = 2.5", "mae = 2.5\naccuracy = 0.5", "classifier's"),
            (
                "task = \"regression\"",
                "task = \"regression\"\nlabels = [\"a\", \"b\"]",
                "no labels",
            ),
        ] {
            let err = ModelCard::from_toml(&REGRESSOR.replace(from, to))
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{err} should mention {why}");
        }
        let classifier_with_edges =
            CARD.replace("[drift]\n", "[drift]\nprediction_edges = [1.0]\n");
        let err = ModelCard::from_toml(&classifier_with_edges)
            .unwrap_err()
            .to_string();
        assert!(err.contains("prediction_edges"), "{err}");
    }

    /// A classifier with `labels` labels, `features` features and a drift reference of
    /// `edges` edges on each of the first `refs` features.
    fn sized(labels: usize, features: usize, refs: usize, edges: usize) -> String {
        let list = |n: usize, item: &dyn Fn(usize) -> String| {
            (0..n).map(item).collect::<Vec<_>>().join(", ")
        };
        let mut text = format!(
            "name = \"m\"\nversion = \"1\"\ntask = \"classification\"\nlabels = [{}]\n",
            list(labels, &|i| format!("\"c{i}\""))
        );
        for f in 0..features {
            text += &format!("[[features]]\nname = \"f{f}\"\n");
        }
        text += "[drift]\n";
        for f in 0..refs {
            text += &format!(
                "[[drift.features]]\nname = \"f{f}\"\nedges = [{}]\nexpected = [1.0{}]\n",
                list(edges, &|i| i.to_string()),
                ", 0.0".repeat(edges)
            );
        }
        text
    }

    #[test]
    fn bounds_what_becomes_metric_series() {
        // At each bound: accepted.
        for text in [
            sized(MAX_LABELS, 1, 0, 0),
            sized(2, 1, 1, MAX_EDGES),
            sized(2, 101, 100, 99),
        ] {
            ModelCard::from_toml(&text).unwrap();
        }
        // One past, or a label or reference twice: refused, saying why.
        let twice = sized(2, 1, 1, 1) + &sized(2, 1, 1, 1)[sized(2, 1, 0, 0).len()..];
        for (text, why) in [
            (sized(MAX_LABELS + 1, 1, 0, 0), "at most 1000 labels"),
            (sized(2, 1, 1, MAX_EDGES + 1), "at most 100 edges"),
            (sized(2, 101, 101, 99), "10100 bins in all"),
            (
                sized(3, 1, 0, 0).replace("\"c2\"", "\"c0\""),
                "\"c0\" is listed twice",
            ),
            (twice, "\"f0\" is listed twice"),
        ] {
            let err = ModelCard::from_toml(&text).unwrap_err().to_string();
            assert!(err.contains(why), "{err} should mention {why}");
        }
    }

    #[test]
    fn rejects_unknown_keys() {
        let err = ModelCard::from_toml(&format!("{CARD}\nbogus = 1")).unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn bundled_cards_are_valid() {
        for (name, _, toml) in crate::bundled::MODELS {
            let card = ModelCard::from_toml(toml).unwrap();
            assert_eq!(&card.name, name);
        }
    }
}
