//! Announcing the served model cards to the collector, so it can check ground-truth
//! labels against each model's classes and compare quality with its baseline: at
//! start and after every catalog change (upload, rollback, unload, SIGHUP rescan).
//! `vigil up` hands them to its collector in process; `vigil serve --collector-url`
//! sends `PUT {url}/models/{name}`, retrying with backoff while the collector is away.

use std::collections::HashMap;
use std::time::Duration;

use vigil_collector::CollectorState;
use vigil_records::CardSummary;
use vigil_server::catalog::Models;

use super::LIFECYCLE;

/// Longest wait between two attempts at an unreachable collector.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const TIMEOUT: Duration = Duration::from_secs(5);

/// Where cards go.
pub(super) enum CardSink {
    InProcess(CollectorState),
    Remote {
        client: reqwest::Client,
        base: reqwest::Url,
    },
}

/// Whether to try again.
enum Failure {
    Retry(String),
    Refused(String),
}

impl CardSink {
    pub fn remote(collector_url: &str) -> anyhow::Result<Self> {
        Ok(Self::Remote {
            client: reqwest::Client::builder().timeout(TIMEOUT).build()?,
            base: reqwest::Url::parse(collector_url)?,
        })
    }

    async fn send(&self, card: &CardSummary) -> Result<(), Failure> {
        match self {
            CardSink::InProcess(state) => state.register_card(card.clone()).await.map_err(|e| {
                if e.status().is_server_error() {
                    Failure::Retry(e.to_string())
                } else {
                    Failure::Refused(e.to_string())
                }
            }),
            CardSink::Remote { client, base } => {
                let mut url = base.clone();
                url.path_segments_mut()
                    .map_err(|()| Failure::Refused("the collector url cannot have a path".into()))?
                    .pop_if_empty()
                    .extend(["models", card.model.as_str()]);
                let response = client
                    .put(url)
                    .json(card)
                    .send()
                    .await
                    .map_err(|e| Failure::Retry(e.to_string()))?;
                let status = response.status();
                if status.is_success() {
                    Ok(())
                } else if status.is_client_error() {
                    Err(Failure::Refused(format!("the collector answered {status}")))
                } else {
                    Err(Failure::Retry(format!("the collector answered {status}")))
                }
            }
        }
    }

    /// Sends `card` until it is taken or refused.
    async fn deliver(&self, card: &CardSummary) {
        let mut backoff = Duration::from_secs(1);
        loop {
            match self.send(card).await {
                Ok(()) => {
                    tracing::info!(target: LIFECYCLE, model = %card.model, version = %card.version, "model_card_announced");
                    return;
                }
                Err(Failure::Refused(error)) => {
                    tracing::error!(target: LIFECYCLE, model = %card.model, error, "model_card_refused");
                    return;
                }
                Err(Failure::Retry(error)) => {
                    tracing::warn!(target: LIFECYCLE, model = %card.model, error, retry_in_ms = backoff.as_millis() as u64, "model_card_announce_failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

/// Announces every served card now and after each change, until the process ends.
pub(super) fn spawn(models: Models, sink: CardSink) {
    tokio::spawn(async move {
        let mut changes = models.subscribe();
        let mut sent: HashMap<String, CardSummary> = HashMap::new();
        loop {
            changes.borrow_and_update();
            let cards: Vec<CardSummary> = models.load().iter().map(|m| m.card.summary()).collect();
            for card in cards {
                if sent.get(&card.model) != Some(&card) {
                    sink.deliver(&card).await;
                    sent.insert(card.model.clone(), card);
                }
            }
            if changes.changed().await.is_err() {
                return;
            }
        }
    });
}
