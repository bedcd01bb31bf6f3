//! What a collector needs to know about a served model to grade ground truth: its
//! task, its label set (a true label outside it is refused) and the quality measured
//! when it was built (which `ModelAccuracyDrop` compares with). The inference service
//! announces each card it serves to the collector (`PUT /models/{name}`, or in process
//! under `vigil up`) at start and whenever its catalog changes.

use serde::{Deserialize, Serialize};

/// Most labels a card may announce: each becomes a `class` label value of the
/// collector's per-class quality gauges.
pub const MAX_LABELS: usize = 1000;
/// Longest model name, version or label, in bytes.
pub const MAX_NAME_LEN: usize = 128;

/// What the model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Classification,
    Regression,
}

impl Task {
    /// As the card writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Classification => "classification",
            Task::Regression => "regression",
        }
    }
}

impl std::str::FromStr for Task {
    type Err = String;

    fn from_str(s: &str) -> Result<Task, String> {
        [Task::Classification, Task::Regression]
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a task: classification or regression"))
    }
}

/// Quality measured on labelled data when the model was built.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineSummary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mae: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rmse: Option<f64>,
}

/// A served model as the collector knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardSummary {
    pub model: String,
    pub version: String,
    pub task: Task,
    /// A classifier's labels, in the model's order; empty for a regressor.
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "vigil_json_body::optional"
    )]
    pub baseline: Option<BaselineSummary>,
}

fn tame(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > MAX_NAME_LEN || value.chars().any(char::is_control) {
        return Err(format!(
            "{what} must be 1 to {MAX_NAME_LEN} bytes without control characters"
        ));
    }
    Ok(())
}

impl CardSummary {
    /// Whether `label` is one of a classifier's labels.
    pub fn has_label(&self, label: &str) -> bool {
        self.labels.iter().any(|l| l == label)
    }

    /// The rules a collector applies before it keeps a card.
    pub fn validate(&self) -> Result<(), String> {
        tame("model", &self.model)?;
        tame("version", &self.version)?;
        match self.task {
            Task::Classification if self.labels.len() < 2 || self.labels.len() > MAX_LABELS => {
                return Err(format!(
                    "a classifier announces 2 to {MAX_LABELS} labels, not {}",
                    self.labels.len()
                ));
            }
            Task::Regression if !self.labels.is_empty() => {
                return Err("a regressor has no labels".into());
            }
            _ => {}
        }
        let mut seen = std::collections::HashSet::new();
        for l in &self.labels {
            tame("each label", l)?;
            if !seen.insert(l.as_str()) {
                return Err(format!("label {l:?} is announced twice"));
            }
        }
        if let Some(b) = &self.baseline {
            if b.accuracy.is_some_and(|a| !(0.0..=1.0).contains(&a)) {
                return Err("baseline.accuracy must be between 0 and 1".into());
            }
            if [b.mae, b.rmse]
                .into_iter()
                .flatten()
                .any(|e| !e.is_finite() || e < 0.0)
            {
                return Err("baseline.mae and rmse must be finite and >= 0".into());
            }
            // The quality alerts compare ground truth with the measure of the task:
            // a baseline of the other kind would never be compared with anything.
            let fits = match self.task {
                Task::Classification => b.accuracy.is_some() && b.mae.is_none() && b.rmse.is_none(),
                Task::Regression => b.accuracy.is_none() && b.mae.is_some() && b.rmse.is_some(),
            };
            if !fits {
                return Err(match self.task {
                    Task::Classification => "a classifier's baseline is {\"accuracy\"}",
                    Task::Regression => "a regressor's baseline is {\"mae\", \"rmse\"}",
                }
                .into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card() -> CardSummary {
        CardSummary {
            model: "m".into(),
            version: "1".into(),
            task: Task::Classification,
            labels: vec!["a".into(), "b".into()],
            baseline: Some(BaselineSummary {
                accuracy: Some(0.9),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn a_sound_card_passes_and_round_trips() {
        let c = card();
        c.validate().unwrap();
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<CardSummary>(&text).unwrap(), c);
        assert!(c.has_label("a") && !c.has_label("c"));
    }

    #[test]
    fn bad_cards_are_refused() {
        type Change = Box<dyn Fn(&mut CardSummary)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|c| c.model = String::new()), "model must be"),
            (
                Box::new(|c| c.labels = vec!["a".into()]),
                "2 to 1000 labels",
            ),
            (
                Box::new(|c| c.labels = vec!["a".into(), "a".into()]),
                "twice",
            ),
            (Box::new(|c| c.labels[1] = "b\n".into()), "control"),
            (Box::new(|c| c.task = Task::Regression), "no labels"),
            (
                Box::new(|c| c.baseline.as_mut().unwrap().accuracy = Some(1.5)),
                "between 0 and 1",
            ),
            (
                Box::new(|c| c.baseline.as_mut().unwrap().mae = Some(f64::NAN)),
                "finite",
            ),
            // A baseline of the other task's kind.
            (
                Box::new(|c| {
                    c.baseline = Some(BaselineSummary {
                        mae: Some(1.0),
                        rmse: Some(2.0),
                        ..Default::default()
                    })
                }),
                "a classifier's baseline",
            ),
            (
                Box::new(|c| c.baseline.as_mut().unwrap().rmse = Some(2.0)),
                "a classifier's baseline",
            ),
            (
                Box::new(|c| c.baseline = Some(BaselineSummary::default())),
                "a classifier's baseline",
            ),
            (
                Box::new(|c| {
                    c.task = Task::Regression;
                    c.labels.clear();
                }),
                "a regressor's baseline",
            ),
        ];
        for (change, want) in cases {
            let mut c = card();
            change(&mut c);
            let err = c.validate().unwrap_err();
            assert!(err.contains(want), "{err} lacks {want}");
        }
    }
}
