//! The model cards this collector knows, kept in memory beside the `model_cards`
//! table: feedback is checked against them on every label, so they are read without
//! touching the database. Loaded at start; replaced by each announcement.

use std::collections::BTreeMap;
use std::sync::RwLock;

use vigil_records::{CardSummary, Task};

/// Most distinct models a collector keeps cards for: announcements are unauthenticated
/// like `POST /log`, and each card's labels may become series.
pub const MAX_CARDS: usize = 256;

#[derive(Debug, Default)]
pub struct Cards(RwLock<BTreeMap<String, CardSummary>>);

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

    /// Keeps `card` (already admitted and stored).
    pub fn put(&self, card: CardSummary) {
        let mut cards = self.0.write().unwrap_or_else(|p| p.into_inner());
        cards.insert(card.model.clone(), card);
    }

    /// Whether a label whose prediction has not arrived could belong to a known model:
    /// `Some(label)` is one some classifier names, `None` (a value) needs a regressor.
    pub fn anyone_accepts(&self, label: Option<&str>) -> bool {
        self.read().values().any(|c| match label {
            Some(l) => c.has_label(l),
            None => c.task == Task::Regression,
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, CardSummary>> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }
}
