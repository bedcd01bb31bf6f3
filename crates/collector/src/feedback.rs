//! Ground truth in: grading each label against its prediction and its model's card,
//! keeping labels that came before their prediction until it does (bounded, expiring,
//! counted), and feeding every stored label to the quality metrics. One lock orders
//! the checks and writes of `POST /feedback` against the join that runs after each
//! ingest, so a label and its prediction arriving together are always joined.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vigil_records::{RecordError, Status, Task};
use vigil_store::{Graded, Label, Predicted, StoreError, Truth};

use crate::CollectorState;
use crate::error::CollectorError;
use crate::handlers::now_ms;
use crate::quality::{FeedbackOutcome, PendingDrop, Tally};

/// Limits of ground-truth intake.
#[derive(Debug, Clone)]
pub struct FeedbackConfig {
    /// The window of the quality gauges (label time).
    pub quality_window: Duration,
    /// Most labels waiting for their prediction; past it, the oldest go.
    pub pending_max: u64,
    /// How long a label waits for its prediction.
    pub pending_ttl: Duration,
}

impl Default for FeedbackConfig {
    fn default() -> Self {
        Self {
            quality_window: Duration::from_secs(3600),
            pending_max: 100_000,
            pending_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// The serialising lock, the count of waiting labels and of `POST /feedback`s in
/// progress: with both at 0 an ingest has nothing to join and skips the lock.
#[derive(Debug, Default)]
pub struct FeedbackState {
    lock: tokio::sync::Mutex<()>,
    pending: AtomicU64,
    /// Raised before a submission looks anything up, lowered when it is done: an
    /// ingest that stores a record while a submission may be deciding that the
    /// record's label waits sees it, and joins after it.
    submitting: AtomicU64,
    /// Whether [`CollectorState::load_feedback`] has succeeded (it is retried until it does).
    loaded: std::sync::atomic::AtomicBool,
}

/// Answer of `POST /feedback`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackAccepted {
    /// Labels stored: joined with their prediction, or waiting for it.
    pub accepted: u64,
    /// Of those, labels waiting for their prediction's record.
    pub pending: u64,
    /// Labels for predictions that already had one (the first label stands).
    pub duplicates: u64,
}

/// Why `label` cannot grade `p` under `card`'s rules, if it cannot.
fn ungradable(
    state: &CollectorState,
    label: &Label,
    p: &Predicted,
) -> Option<(&'static str, String)> {
    if Status::parse(&p.status) != Some(Status::Success) {
        return Some((
            "prediction_id",
            "the prediction failed; there is no answer to grade".into(),
        ));
    }
    // The classes of the version that answered: a later one may have others.
    let Some(card) = state.cards.for_version(&p.model, &p.model_version) else {
        return Some((
            "prediction_id",
            format!(
                "model {:?} has not announced its card to this collector, so its labels are unknown",
                p.model
            ),
        ));
    };
    match (&label.truth, card.task) {
        (Truth::Label(l), Task::Classification) if !card.has_label(l) => Some((
            "label",
            format!("{l:?} is not a label of model {:?}", p.model),
        )),
        (Truth::Value(_), Task::Classification) => Some((
            "value",
            format!("model {:?} is a classifier: send a label", p.model),
        )),
        (Truth::Label(_), Task::Regression) => Some((
            "label",
            format!("model {:?} is a regressor: send a value", p.model),
        )),
        // A record from elsewhere than an inference service may lack its answer: a
        // label for it would be counted and never graded.
        (_, Task::Classification) if p.label.is_none() => Some((
            "prediction_id",
            "the prediction's record has no label, so there is no answer to grade".into(),
        )),
        (_, Task::Regression) if p.value.is_none() => Some((
            "prediction_id",
            "the prediction's record has no value, so there is no answer to grade".into(),
        )),
        _ => None,
    }
}

/// Counts a submission in progress while it lives.
struct Submitting<'a>(&'a AtomicU64);

impl<'a> Submitting<'a> {
    fn enter(count: &'a AtomicU64) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for Submitting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl CollectorState {
    /// Stores `labels` (each already well-formed): joined with their prediction where
    /// it is stored, pending otherwise. A label that cannot belong to its model fails
    /// the whole batch, which then stores nothing. Run it to the end (the handler
    /// spawns it): the counts and the window follow the rows it commits.
    pub async fn submit_feedback(
        &self,
        labels: Vec<Label>,
    ) -> Result<FeedbackAccepted, CollectorError> {
        let _submitting = Submitting::enter(&self.feedback.submitting);
        let _order = self.feedback.lock.lock().await;
        let ids: Vec<&str> = labels.iter().map(|l| l.prediction_id.as_str()).collect();
        let (predicted, labelled) = self
            .store
            .feedback_lookup(&ids)
            .await
            .map_err(CollectorError::Unavailable)?;
        let predicted: HashMap<&str, &Predicted> = predicted
            .iter()
            .map(|p| (p.prediction_id.as_str(), p))
            .collect();
        let mut seen = HashSet::new();
        let (mut graded, mut pending, mut errors) = (Vec::new(), Vec::new(), Vec::new());
        let mut duplicates = 0u64;
        for (index, label) in labels.iter().enumerate() {
            let id = label.prediction_id.as_str();
            if labelled.contains(id) || !seen.insert(id) {
                duplicates += 1;
                continue;
            }
            let refusal = match predicted.get(id) {
                Some(p) => ungradable(self, label, p).or_else(|| {
                    graded.push(Graded::new(label.clone(), p));
                    None
                }),
                None => {
                    let truth = label.truth.label();
                    if self.cards.anyone_accepts(truth) {
                        pending.push(label.clone());
                        None
                    } else {
                        Some(match truth {
                            Some(l) => {
                                ("label", format!("{l:?} is not a label of any known model"))
                            }
                            None => ("value", "no known model is a regressor".to_owned()),
                        })
                    }
                }
            };
            if let Some((field, reason)) = refusal {
                errors.push(RecordError {
                    index,
                    field: Some(field),
                    reason,
                });
            }
        }
        if !errors.is_empty() {
            return Err(CollectorError::InvalidRecords(errors));
        }
        let now = now_ms();
        let stored = self
            .store
            .insert_feedback(&graded, &pending, &[], now)
            .await
            .map_err(CollectorError::Unavailable)?;
        let new_graded = self.count_graded(&graded, &stored.graded, now);
        let new_pending = stored.pending.iter().filter(|n| **n).count() as u64;
        duplicates += (graded.len() as u64 - new_graded) + (pending.len() as u64 - new_pending);
        if new_pending > 0 {
            let waiting = self
                .feedback
                .pending
                .fetch_add(new_pending, Ordering::SeqCst)
                + new_pending;
            self.feedback_metrics.pending.set(waiting as i64);
            if waiting > self.config.feedback.pending_max {
                self.evict_pending(waiting - self.config.feedback.pending_max)
                    .await;
            }
        }
        tracing::info!(
            target: "vigil_collector::feedback",
            labels = labels.len(),
            joined = new_graded,
            pending = new_pending,
            duplicates,
            "feedback_stored"
        );
        Ok(FeedbackAccepted {
            accepted: new_graded + new_pending,
            pending: new_pending,
            duplicates,
        })
    }

    /// Counts the newly stored of `graded` into the metrics and the quality window;
    /// how many were new.
    fn count_graded(&self, graded: &[Graded], new: &[bool], now: i64) -> u64 {
        let mut n = 0;
        for (g, _) in graded.iter().zip(new).filter(|(_, new)| **new) {
            n += 1;
            let model = self.collector.models.admit(&g.model);
            let outcome = match &g.truth {
                Truth::Value(_) => FeedbackOutcome::scored,
                Truth::Label(t) if Some(t) == g.predicted_label.as_ref() => {
                    FeedbackOutcome::correct
                }
                Truth::Label(_) => FeedbackOutcome::incorrect,
            };
            self.feedback_metrics
                .feedback
                .get_or_create(&crate::quality::OutcomeLabels {
                    model: model.clone(),
                    outcome,
                })
                .inc();
            let lag = (g.label_ms - g.predicted_ms).max(0) as f64 / 1e3;
            self.feedback_metrics
                .lag
                .get_or_create(&crate::metrics::ModelLabel {
                    model: model.clone(),
                })
                .observe(lag);
            self.quality.add(&model, g, now);
        }
        n
    }

    /// Whether records just stored may have labels waiting: some label is pending, or
    /// a submission is deciding. Read after the records' commit.
    pub(crate) fn may_join(&self) -> bool {
        self.feedback.pending.load(Ordering::SeqCst) > 0
            || self.feedback.submitting.load(Ordering::SeqCst) > 0
    }

    /// After records are stored: joins the labels that were waiting for `ids`. A
    /// label that does not fit its model is dropped and counted. Failures are logged;
    /// the labels stay pending and are joined at the next start.
    pub(crate) async fn join_pending(&self, ids: Vec<String>) {
        let _order = self.feedback.lock.lock().await;
        if self.feedback.pending.load(Ordering::SeqCst) == 0 {
            return;
        }
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        if let Err(e) = self.join(&ids).await {
            tracing::error!(target: "vigil_collector::feedback", error = %e, "pending_join_failed");
        }
    }

    /// Joins the pending labels of those of `ids` whose predictions are stored
    /// (under the lock).
    async fn join(&self, ids: &[&str]) -> Result<(), StoreError> {
        let waiting = self.store.pending_for(ids).await?;
        if waiting.is_empty() {
            return Ok(());
        }
        let waiting_ids: Vec<&str> = waiting.iter().map(|l| l.prediction_id.as_str()).collect();
        let (predicted, _) = self.store.feedback_lookup(&waiting_ids).await?;
        let by_id: HashMap<&str, &Predicted> = predicted
            .iter()
            .map(|p| (p.prediction_id.as_str(), p))
            .collect();
        let mut joined = Vec::new();
        let mut graded = Vec::new();
        let mut rejected = 0;
        for label in &waiting {
            // Not stored after all (the id was only asked about): it keeps waiting.
            let Some(p) = by_id.get(label.prediction_id.as_str()) else {
                continue;
            };
            joined.push(label.prediction_id.as_str());
            match ungradable(self, label, p) {
                None => graded.push(Graded::new(label.clone(), p)),
                Some((_, reason)) => {
                    rejected += 1;
                    tracing::warn!(
                        target: "vigil_collector::feedback",
                        prediction_id = %label.prediction_id,
                        reason,
                        "pending_label_rejected"
                    );
                }
            }
        }
        let now = now_ms();
        let stored = self
            .store
            .insert_feedback(&graded, &[], &joined, now)
            .await?;
        let new = self.count_graded(&graded, &stored.graded, now);
        self.feedback_metrics
            .dropped(PendingDrop::rejected, rejected);
        self.forget_pending(joined.len() as u64);
        tracing::info!(target: "vigil_collector::feedback", joined = new, rejected, "pending_labels_joined");
        Ok(())
    }

    fn forget_pending(&self, n: u64) {
        let left = self
            .feedback
            .pending
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |p| {
                Some(p.saturating_sub(n))
            })
            .map_or(0, |p| p.saturating_sub(n));
        self.feedback_metrics.pending.set(left as i64);
    }

    async fn evict_pending(&self, n: u64) {
        match self.store.evict_pending(n).await {
            Ok(gone) => {
                self.feedback_metrics.dropped(PendingDrop::evicted, gone);
                self.forget_pending(gone);
                tracing::warn!(target: "vigil_collector::feedback", evicted = gone, "pending_labels_evicted");
            }
            Err(e) => {
                tracing::error!(target: "vigil_collector::feedback", error = %e, "pending_evict_failed")
            }
        }
    }

    /// Drops pending labels older than the TTL (counted), and sets the count of
    /// waiting labels from the table.
    pub async fn expire_pending(&self) {
        let _order = self.feedback.lock.lock().await;
        let before = now_ms() - self.config.feedback.pending_ttl.as_millis() as i64;
        match self.store.expire_pending(before).await {
            Ok(0) => {}
            Ok(gone) => {
                self.feedback_metrics.dropped(PendingDrop::expired, gone);
                tracing::warn!(target: "vigil_collector::feedback", expired = gone, "pending_labels_expired");
            }
            Err(e) => {
                tracing::error!(target: "vigil_collector::feedback", error = %e, "pending_expiry_failed");
                return;
            }
        }
        if let Ok(waiting) = self.store.pending_count().await {
            self.feedback.pending.store(waiting, Ordering::SeqCst);
            self.feedback_metrics.pending.set(waiting as i64);
        }
    }

    /// At start: the cards, the pending count, the quality window refilled from the
    /// labels stored in it, and pending labels whose prediction is already stored
    /// (a join that failed before a restart) joined.
    pub async fn load_feedback(&self) -> Result<(), StoreError> {
        // Under the lock, and the window replaced, not added to: a load retried after
        // labels were stored (the database was away at start) counts each once.
        let _order = self.feedback.lock.lock().await;
        if self.feedback.loaded.load(Ordering::SeqCst) {
            return Ok(());
        }
        for card in self.store.card_versions().await? {
            self.cards.put_version(card);
        }
        for card in self.store.cards().await? {
            self.cards.put(card);
        }
        let since = self.quality.since(now_ms());
        let (cells, errors) = self
            .store
            .window_rows(since, self.quality.slot_ms())
            .await?;
        // The window's models take their series' slots in the order their cards were
        // announced (then the card-less by name), as their records most likely came
        // before the restart: in the database's order, past the bound a regressor's
        // series moved to `other` with a restart, and ModelErrorRise went blind.
        let labelled: BTreeSet<&str> = cells
            .iter()
            .map(|c| c.model.as_str())
            .chain(errors.iter().map(|e| e.model.as_str()))
            .collect();
        let by_card = self.store.models_by_first_card().await?;
        let by_card = by_card
            .iter()
            .map(String::as_str)
            .filter(|m| labelled.contains(m));
        for model in by_card.chain(labelled.iter().copied()) {
            self.collector.models.admit(model);
        }
        let mut window: HashMap<String, BTreeMap<i64, Tally>> = HashMap::new();
        for c in &cells {
            let model = self.collector.models.admit(&c.model);
            window
                .entry(model)
                .or_default()
                .entry(c.slot)
                .or_default()
                .add_row(&c.cell);
        }
        for e in &errors {
            let model = self.collector.models.admit(&e.model);
            window
                .entry(model)
                .or_default()
                .entry(e.slot)
                .or_default()
                .add_errors(&e.errors);
        }
        self.quality.replace(window);
        let waiting = self.store.pending_count().await?;
        self.feedback.pending.store(waiting, Ordering::SeqCst);
        self.feedback_metrics.pending.set(waiting as i64);
        if waiting > 0 {
            let ids = self.store.pending_ids().await?;
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            self.join(&ids).await?;
        }
        self.feedback.loaded.store(true, Ordering::SeqCst);
        tracing::info!(
            target: "vigil_collector::feedback",
            cards = self.cards.all().len(),
            pending = waiting,
            "feedback_loaded"
        );
        Ok(())
    }
}
