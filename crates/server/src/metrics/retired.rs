//! Which replaced versions of a model still have series. A version that an upload,
//! rollback, rescan or unload replaced keeps its per-version series (`model_loaded` at
//! 0, its `predictions_total` and `prediction_latency_seconds`) while it is the model's
//! last replaced one, the version a rollback returns to; an older one's are removed.
//! Without that, every upload left its ~20 series behind for as long as the process ran.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Replaced versions per model whose series are kept.
pub(super) const KEPT: usize = 1;

/// Each model's replaced versions with series, oldest first.
#[derive(Debug, Default)]
pub(super) struct Retired(Mutex<HashMap<String, VecDeque<String>>>);

impl Retired {
    /// Notes that `version` of `model` no longer serves; returns the versions whose
    /// series must go now (the oldest beyond [`KEPT`]).
    pub(super) fn retire(&self, model: &str, version: &str) -> Vec<String> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let list = map.entry(model.to_owned()).or_default();
        list.retain(|v| v != version);
        list.push_back(version.to_owned());
        let excess = list.len().saturating_sub(KEPT);
        list.drain(..excess).collect()
    }

    /// `version` of `model` serves again (a rollback): no longer a replaced one.
    pub(super) fn revive(&self, model: &str, version: &str) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = map.get_mut(model) {
            list.retain(|v| v != version);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_replaced_version_of_each_model() {
        let r = Retired::default();
        assert!(r.retire("m", "1").is_empty());
        assert_eq!(r.retire("m", "2"), ["1"]);
        assert!(r.retire("other", "1").is_empty(), "models apart");
        // Version 2 serves again, then 3 is replaced: 2 had nothing to give up.
        r.revive("m", "2");
        assert!(r.retire("m", "3").is_empty());
        // Replaced twice in a row: listed once.
        assert!(r.retire("m", "3").is_empty());
        assert_eq!(r.retire("m", "4"), ["3"]);
    }
}
