//! The quality window the collector's gauges describe: per model, one [`Tally`] per
//! sixtieth of the window, keyed by label time. A label adds to its slot; a scrape
//! adds up the slots still inside the window. Nothing here touches the database, so a
//! scrape costs at most 60 merges per model, however many labels there are; a
//! restarted collector refills the window from the `feedback` table once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use vigil_store::Graded;

use super::Tally;

/// Slots per window.
const SLOTS: i64 = 60;

/// Per-model tallies by slot of label time.
#[derive(Debug)]
pub struct QualityWindow {
    window_ms: i64,
    slot_ms: i64,
    models: Mutex<HashMap<String, BTreeMap<i64, Tally>>>,
}

impl QualityWindow {
    pub fn new(window: Duration) -> Self {
        let window_ms = (window.as_millis() as i64).max(SLOTS);
        Self {
            window_ms,
            slot_ms: window_ms / SLOTS,
            models: Mutex::default(),
        }
    }

    pub fn window(&self) -> Duration {
        Duration::from_millis(self.window_ms as u64)
    }

    /// The length of one slot: label time `t` is in slot `t / slot_ms`.
    pub fn slot_ms(&self) -> i64 {
        self.slot_ms
    }

    /// Replaces the whole window (a restarted collector's refill from the database).
    pub fn replace(&self, models: HashMap<String, BTreeMap<i64, Tally>>) {
        *self.models.lock().unwrap_or_else(|p| p.into_inner()) = models;
    }

    /// The oldest label time still inside the window at `now_ms`: the start of the
    /// oldest slot kept, so the window covers between 59 and 60 slots' worth.
    pub fn since(&self, now_ms: i64) -> i64 {
        (now_ms.div_euclid(self.slot_ms) - SLOTS + 1) * self.slot_ms
    }

    /// Adds `g` under `model` (the series name it is counted under) if its label time
    /// is inside the window; a label from the future counts as now.
    pub fn add(&self, model: &str, g: &Graded, now_ms: i64) {
        let at = g.label_ms.min(now_ms);
        if at < self.since(now_ms) {
            return;
        }
        let oldest = self.since(now_ms).div_euclid(self.slot_ms);
        let mut models = self.models.lock().unwrap_or_else(|p| p.into_inner());
        let slots = models.entry(model.to_owned()).or_default();
        // Slots that left the window go here too, not only at a scrape: a collector
        // nobody scrapes keeps at most a window's worth.
        if slots
            .first_key_value()
            .is_some_and(|(first, _)| *first < oldest)
        {
            slots.retain(|slot, _| *slot >= oldest);
        }
        slots.entry(at.div_euclid(self.slot_ms)).or_default().add(g);
    }

    /// Each model's tally over the window now.
    pub fn tallies_now(&self) -> BTreeMap<String, Tally> {
        self.tallies(crate::handlers::now_ms())
    }

    /// Each model's tally over the window at `now_ms`, by model name; slots that left
    /// the window are dropped, and models with none left go too.
    pub fn tallies(&self, now_ms: i64) -> BTreeMap<String, Tally> {
        let oldest = self.since(now_ms).div_euclid(self.slot_ms);
        let mut models = self.models.lock().unwrap_or_else(|p| p.into_inner());
        models.retain(|_, slots| {
            slots.retain(|slot, _| *slot >= oldest);
            !slots.is_empty()
        });
        models
            .iter()
            .map(|(model, slots)| {
                let mut total = Tally::default();
                for t in slots.values() {
                    total.merge(t);
                }
                (model.clone(), total)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use vigil_store::Truth;

    use super::*;

    fn label(at: i64, right: bool) -> Graded {
        Graded {
            prediction_id: String::new(),
            model: "m".into(),
            truth: Truth::Label("a".into()),
            predicted_label: Some(if right { "a" } else { "b" }.into()),
            predicted_value: None,
            confidence: Some(0.9),
            predicted_ms: at,
            label_ms: at,
        }
    }

    #[test]
    fn labels_count_while_inside_the_window_then_leave() {
        let w = QualityWindow::new(Duration::from_secs(3600));
        let now = 10 * 3_600_000;
        w.add("m", &label(now - 10_000, true), now);
        w.add("m", &label(now - 30 * 60_000, false), now);
        // Older than the window: not counted at all.
        w.add("m", &label(now - 2 * 3_600_000, false), now);
        let t = &w.tallies(now)["m"];
        assert_eq!((t.labels(), t.accuracy()), (2, Some(0.5)));
        // 40 minutes on, the half-hour-old wrong label has left the window.
        let later = now + 40 * 60_000;
        assert_eq!(w.tallies(later)["m"].accuracy(), Some(1.0));
        // Two hours on, nothing is left and the model goes.
        assert!(w.tallies(now + 2 * 3_600_000).is_empty());
    }
}
