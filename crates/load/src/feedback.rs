//! Ground truth for the answers `vigil load` gets (`--feedback RATIO`): for a share of
//! the rows answered, a label goes to the collector's `POST /feedback`, after a chosen
//! delay, in batches. The generator invents its rows from the training distribution,
//! so it has no labelled data to draw the truth from; it takes the served answer as
//! the truth and makes a chosen share of the labels wrong (`--label-noise P`): another
//! class picked at random, or for a regressor the value off by half its size. The
//! measured accuracy is then 1 − P by construction, which is what a decay drill needs.

use std::collections::VecDeque;
use std::time::Duration;

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::address::BaseUrl;
use crate::config::REQUEST_TIMEOUT;
use crate::failure::why;

/// Most labels in one `POST /feedback` (the collector takes up to 10,000).
const BATCH: usize = 1000;
/// How often due labels are sent.
const TICK: Duration = Duration::from_millis(100);

/// The collector beside `target` under `vigil up`: the same host, the next port
/// (`http://127.0.0.1:8000` → `http://127.0.0.1:8001`); `None` when `target` is not
/// such a URL.
pub fn collector_beside(target: &str) -> Option<String> {
    let mut url = reqwest::Url::parse(target).ok()?;
    let port = url.port_or_known_default()?.checked_add(1)?;
    url.set_port(Some(port)).ok()?;
    Some(url.as_str().trim_end_matches('/').to_owned())
}

/// Where and how labels go.
#[derive(Debug, Clone)]
pub struct FeedbackConfig {
    /// Base URL of the collector, e.g. `http://127.0.0.1:8001`.
    pub collector: String,
    /// Share of answered rows that get a label, 0–1.
    pub ratio: f64,
    /// Share of those labels that are wrong, 0–1.
    pub label_noise: f64,
    /// How long after the answer its label is sent.
    pub delay: Duration,
}

/// What happened to the labels.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct FeedbackReport {
    /// Labels sent.
    pub labels: u64,
    /// Of those, labels that contradict the answer.
    pub wrong: u64,
    /// As the collector counted them.
    pub accepted: u64,
    pub pending: u64,
    pub duplicates: u64,
    /// Labels whose request failed or was refused.
    pub failed: u64,
    /// Why the first failed request failed (its status and answer, or the transport
    /// error), when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Of `labels`, those sent before their delay was over because the run was
    /// interrupted (Ctrl-C or SIGTERM while the last labels waited).
    pub early: u64,
    /// Labels never sent, or sent without an answer, because the run ended first: a
    /// second Ctrl-C, or a collector that did not take them within the grace after
    /// an interrupt. Not part of `labels`.
    pub cut_off: u64,
}

/// Of a batch taken off the queue: how many are wrong, and how many go before their
/// delay is over.
#[derive(Debug, Default, Clone, Copy)]
struct Kinds {
    wrong: u64,
    early: u64,
}

/// Decides the labels of answers and sends them when due.
pub(crate) struct Labeller {
    config: FeedbackConfig,
    /// `config.collector`, checked.
    collector: BaseUrl,
    /// The model's classes (empty for a regressor).
    classes: Vec<String>,
    rng: Mutex<StdRng>,
    /// Labels waiting: when due, the label, whether it is a wrong one.
    queue: Mutex<VecDeque<(Instant, Value, bool)>>,
    report: Mutex<FeedbackReport>,
    /// Set on an interrupt: what is queued goes now, due or not.
    hurry: std::sync::atomic::AtomicBool,
    /// Labels of the batch being sent (0 between batches): counted as cut off when
    /// the run ends before the collector answers.
    sending: Mutex<u64>,
}

impl Labeller {
    pub fn new(
        config: FeedbackConfig,
        collector: BaseUrl,
        classes: Vec<String>,
        seed: u64,
    ) -> Self {
        Self {
            config,
            collector,
            classes,
            // A stream of its own: the requests stay what they are without feedback.
            rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0x005e_edfb)),
            queue: Mutex::default(),
            report: Mutex::default(),
            hurry: std::sync::atomic::AtomicBool::new(false),
            sending: Mutex::new(0),
        }
    }

    /// Sends every queued label at once instead of when its delay is over (the run was
    /// interrupted: nobody should wait out a long `--feedback-delay` after Ctrl-C).
    pub fn hurry(&self) {
        self.hurry.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Queues labels for the rows of one answered `POST /predict`.
    pub fn observe(&self, answer: &str) {
        let Ok(answer) = serde_json::from_str::<Value>(answer) else {
            return;
        };
        let (Some(id), Some(rows)) = (
            answer["prediction_id"].as_str(),
            answer["predictions"].as_array(),
        ) else {
            return;
        };
        let due = Instant::now() + self.config.delay;
        let single = rows.len() == 1;
        let mut rng = self.rng.lock();
        let mut labels = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            if rng.random::<f64>() >= self.config.ratio {
                continue;
            }
            let wrong = rng.random::<f64>() < self.config.label_noise;
            // A batch's rows are stored as `{prediction_id}-{row}`.
            let prediction_id = if single {
                id.to_owned()
            } else {
                format!("{id}-{i}")
            };
            let truth = if let Some(said) = row["label"].as_str() {
                let label = if wrong && self.classes.len() > 1 {
                    let others: Vec<&String> = self.classes.iter().filter(|c| *c != said).collect();
                    others[rng.random_range(0..others.len())].clone()
                } else {
                    said.to_owned()
                };
                json!({"prediction_id": prediction_id, "label": label})
            } else if let Some(value) = row["value"].as_f64() {
                let value = if wrong { value * 1.5 + 1.0 } else { value };
                json!({"prediction_id": prediction_id, "value": value})
            } else {
                continue;
            };
            labels.push((due, truth, wrong));
        }
        drop(rng);
        // `wrong` and `early` are counted once sent, with `labels`: they are shares of
        // what was sent, and a label cut off at the end is neither.
        self.queue.lock().extend(labels);
    }

    /// Sends due labels until `finished` is set and the queue is empty (the last
    /// labels wait out their delay).
    pub async fn run(&self, client: reqwest::Client, finished: &std::sync::atomic::AtomicBool) {
        let url = self.collector.join("/feedback");
        loop {
            let now = Instant::now();
            let hurry = self.hurry.load(std::sync::atomic::Ordering::Acquire);
            let (batch, kinds) = {
                let mut queue = self.queue.lock();
                let due = queue
                    .iter()
                    .take(BATCH)
                    .take_while(|(at, _, _)| hurry || *at <= now)
                    .count();
                let mut kinds = Kinds::default();
                let batch: Vec<Value> = queue
                    .drain(..due)
                    .map(|(at, l, wrong)| {
                        kinds.early += u64::from(at > now);
                        kinds.wrong += u64::from(wrong);
                        l
                    })
                    .collect();
                (batch, kinds)
            };
            if batch.is_empty() {
                if finished.load(std::sync::atomic::Ordering::Acquire)
                    && self.queue.lock().is_empty()
                {
                    return;
                }
                tokio::time::sleep(TICK).await;
                continue;
            }
            self.send(&client, &url, batch, kinds).await;
        }
    }

    async fn send(&self, client: &reqwest::Client, url: &str, batch: Vec<Value>, kinds: Kinds) {
        let n = batch.len() as u64;
        *self.sending.lock() = n;
        let answer = client
            .post(url)
            .json(&json!({ "feedback": batch }))
            .send()
            .await;
        // Messages name the collector without its user information.
        let url = self.collector.shown_join("/feedback");
        let counts = match answer {
            Ok(r) if r.status().as_u16() == 202 => r
                .json::<Value>()
                .await
                .map_err(|e| format!("{url}: 202 with an answer that is not JSON: {e}")),
            Ok(r) => {
                let status = r.status().as_u16();
                let text: String = r
                    .text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect();
                Err(format!("{url}: {status} {text}"))
            }
            Err(e) => Err(format!("{url}: {}", why(&e, REQUEST_TIMEOUT))),
        };
        let mut report = self.report.lock();
        // No await from here to the counts below: an abort cannot land between them,
        // so a cut-off never counts this batch twice or not at all.
        *self.sending.lock() = 0;
        report.labels += n;
        report.wrong += kinds.wrong;
        report.early += kinds.early;
        match counts {
            Ok(c) => {
                let count = |k: &str| c[k].as_u64().unwrap_or(0);
                report.accepted += count("accepted");
                report.pending += count("pending");
                report.duplicates += count("duplicates");
            }
            Err(why) => {
                report.failed += n;
                report.failure.get_or_insert(why);
            }
        }
    }

    pub fn report(&self) -> FeedbackReport {
        self.report.lock().clone()
    }

    /// Counts what is still queued or being sent as cut off; called once [`Self::run`]
    /// has been stopped for good (its task aborted and awaited).
    pub fn cut_off(&self) {
        let mut report = self.report.lock();
        let mut sending = self.sending.lock();
        let mut queue = self.queue.lock();
        report.cut_off += std::mem::take(&mut *sending) + queue.len() as u64;
        queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labeller(ratio: f64, label_noise: f64) -> Labeller {
        Labeller::new(
            FeedbackConfig {
                collector: String::new(),
                ratio,
                label_noise,
                delay: Duration::ZERO,
            },
            BaseUrl::parse("http://127.0.0.1:8001").unwrap(),
            vec!["ok".into(), "defect".into()],
            7,
        )
    }

    fn queued(l: &Labeller) -> Vec<Value> {
        l.queue.lock().iter().map(|(_, v, _)| v.clone()).collect()
    }

    fn queued_wrong(l: &Labeller) -> u64 {
        l.queue.lock().iter().filter(|(_, _, wrong)| *wrong).count() as u64
    }

    #[test]
    fn the_collector_beside_a_target_is_on_the_next_port() {
        assert_eq!(
            collector_beside("http://127.0.0.1:8000").as_deref(),
            Some("http://127.0.0.1:8001")
        );
        assert_eq!(
            collector_beside("http://vigil.example/").as_deref(),
            Some("http://vigil.example:81")
        );
        assert_eq!(collector_beside("http://[::1]:65535"), None);
        assert_eq!(collector_beside("not a url"), None);
    }

    #[test]
    fn every_row_of_a_batch_gets_its_own_id_and_noise_flips_the_class() {
        let l = labeller(1.0, 1.0);
        l.observe(
            r#"{"prediction_id": "p", "predictions": [{"label": "ok"}, {"label": "defect"}]}"#,
        );
        assert_eq!(
            queued(&l),
            vec![
                json!({"prediction_id": "p-0", "label": "defect"}),
                json!({"prediction_id": "p-1", "label": "ok"})
            ]
        );
        assert_eq!(queued_wrong(&l), 2);
        // Counted once sent, with `labels`.
        assert_eq!(l.report().wrong, 0);
    }

    #[test]
    fn the_ratio_and_the_noise_are_shares() {
        let l = labeller(0.5, 0.3);
        for _ in 0..10_000 {
            l.observe(r#"{"prediction_id": "p", "predictions": [{"label": "ok"}]}"#);
        }
        let labels = queued(&l);
        let share = labels.len() as f64 / 10_000.0;
        let wrong = labels.iter().filter(|v| v["label"] == "defect").count() as f64;
        assert!((share - 0.5).abs() < 0.03, "{share}");
        assert!((wrong / labels.len() as f64 - 0.3).abs() < 0.03);
        assert_eq!(queued_wrong(&l), wrong as u64);
    }

    #[test]
    fn a_regressors_wrong_value_is_off_and_errors_are_not_labelled() {
        let l = labeller(1.0, 1.0);
        l.observe(r#"{"prediction_id": "r", "predictions": [{"value": 2.0}]}"#);
        l.observe(r#"{"error": {"code": "overloaded"}}"#);
        assert_eq!(
            queued(&l),
            vec![json!({"prediction_id": "r", "value": 4.0})]
        );
    }
}
