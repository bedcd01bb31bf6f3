//! The model cards this collector knows, kept in memory beside the `model_cards` and
//! `model_card_versions` tables: feedback is checked against them on every label, so
//! they are read without touching the database. Loaded at start; each announcement
//! replaces its model's current card and adds its version's.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::RwLock;

use vigil_records::{CardSummary, Task};

/// Most distinct models a collector keeps cards for: announcements are unauthenticated
/// like `POST /log`, and each card's labels may become series.
pub const MAX_CARDS: usize = 256;
/// Versions per model kept in memory for grading; a label for a prediction of an
/// older version is checked against the model's current card.
pub const MAX_VERSIONS: usize = 16;

#[derive(Debug, Default)]
pub struct Cards {
    current: RwLock<BTreeMap<String, CardSummary>>,
    /// Per model, the last [`MAX_VERSIONS`] versions' cards, newest last.
    versions: RwLock<HashMap<String, VecDeque<CardSummary>>>,
}

/// Why an announced card was not kept.
#[derive(Debug, thiserror::Error)]
pub enum CardRefused {
    #[error("{0}")]
    Invalid(String),
    #[error("this collector already knows {MAX_CARDS} models")]
    Full,
}

impl Cards {
    pub fn get(&self, model: &str) -> Option<CardSummary> {
        self.read().get(model).cloned()
    }

    pub fn all(&self) -> Vec<CardSummary> {
        self.read().values().cloned().collect()
    }

    /// Checks `card` and whether there is room for it, without keeping it.
    pub fn admit(&self, card: &CardSummary) -> Result<(), CardRefused> {
        card.validate().map_err(CardRefused::Invalid)?;
        let cards = self.read();
        if !cards.contains_key(&card.model) && cards.len() >= MAX_CARDS {
            return Err(CardRefused::Full);
        }
        Ok(())
    }

    /// The card of `model` at `version`, or its current one when that version is not
    /// known (any more).
    pub fn for_version(&self, model: &str, version: &str) -> Option<CardSummary> {
        let versions = self.versions.read().unwrap_or_else(|p| p.into_inner());
        versions
            .get(model)
            .and_then(|v| v.iter().find(|c| c.version == version).cloned())
            .or_else(|| self.get(model))
    }

    /// Keeps `card` (already admitted and stored) as its model's current one.
    pub fn put(&self, card: CardSummary) {
        self.put_version(card.clone());
        let mut cards = self.current.write().unwrap_or_else(|p| p.into_inner());
        cards.insert(card.model.clone(), card);
    }

    /// Keeps `card` as its version's only (an older announcement read back at start).
    pub fn put_version(&self, card: CardSummary) {
        let mut versions = self.versions.write().unwrap_or_else(|p| p.into_inner());
        let kept = versions.entry(card.model.clone()).or_default();
        kept.retain(|c| c.version != card.version);
        kept.push_back(card);
        if kept.len() > MAX_VERSIONS {
            kept.pop_front();
        }
    }

    /// Whether a label whose prediction has not arrived could belong to a known model:
    /// `Some(label)` is one some classifier names, `None` (a value) needs a regressor.
    /// Any version kept counts: the label may be for an older prediction.
    pub fn anyone_accepts(&self, label: Option<&str>) -> bool {
        let versions = self.versions.read().unwrap_or_else(|p| p.into_inner());
        versions.values().flatten().any(|c| match label {
            Some(l) => c.has_label(l),
            None => c.task == Task::Regression,
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, CardSummary>> {
        self.current.read().unwrap_or_else(|p| p.into_inner())
    }
}
