//! Where the dashboard's open incidents and measured quality come from: `vigil up`
//! reads its own collector (store and quality window); `vigil serve --collector-url`
//! asks that collector over HTTP (`/incidents`, `/quality`).

use std::time::Duration;

use serde::de::DeserializeOwned;
use vigil_collector::CollectorState;
use vigil_server::dashboard::incidents::MAX_SHOWN;
use vigil_server::dashboard::quality::MeasuredQuality;
use vigil_server::dashboard::source::{Answer, CollectorSource};

/// A collector that does not answer within this long is reported as unreachable.
const TIMEOUT: Duration = Duration::from_secs(2);
/// A bigger answer than this is refused: twenty incidents, or the quality of a few
/// dozen models, take a few kilobytes.
const MAX_BYTES: usize = 1024 * 1024;

/// The collector in this process.
#[derive(Debug)]
pub(super) struct InProcess(pub CollectorState);

impl CollectorSource for InProcess {
    fn kind(&self) -> &'static str {
        "in_process"
    }

    fn open(&self) -> Answer<'_, Vec<serde_json::Value>> {
        Box::pin(async move {
            let open = self
                .0
                .store
                .incidents(Some("open"), MAX_SHOWN)
                .await
                .map_err(|e| format!("the database did not answer: {e}"))?;
            Ok(open
                .into_iter()
                .map(vigil_collector::handlers::incident_json)
                .collect())
        })
    }

    /// From the quality window the collector's gauges describe: no database read.
    fn quality(&self) -> Answer<'_, Vec<MeasuredQuality>> {
        Box::pin(async move {
            let cards = self.0.cards.all();
            Ok(self
                .0
                .quality
                .tallies_now()
                .into_iter()
                .map(|(model, tally)| MeasuredQuality {
                    baseline_accuracy: cards
                        .iter()
                        .find(|c| c.model == model)
                        .and_then(|c| c.baseline)
                        .and_then(|b| b.accuracy),
                    labels: tally.labels(),
                    accuracy: tally.accuracy(),
                    mae: tally.mae(),
                    model,
                })
                .collect())
        })
    }
}

/// A collector elsewhere, asked at `GET {url}/incidents?status=open` and
/// `GET {url}/quality`.
#[derive(Debug)]
pub(super) struct Remote {
    client: reqwest::Client,
    base: String,
}

impl Remote {
    pub fn new(collector_url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder().timeout(TIMEOUT).build()?,
            base: collector_url.trim_end_matches('/').to_owned(),
        })
    }

    /// `GET {base}{path}` as JSON of type `T`, at most [`MAX_BYTES`].
    async fn get<T: DeserializeOwned>(&self, path: &str, what: &str) -> Result<T, String> {
        let mut response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| format!("the collector did not answer: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("the collector answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("the collector's answer broke off: {e}"))?
        {
            if body.len() + chunk.len() > MAX_BYTES {
                return Err(format!("the collector's answer is over {MAX_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body)
            .map_err(|e| format!("the collector's answer was not {what}: {e}"))
    }
}

#[derive(serde::Deserialize)]
struct IncidentList {
    incidents: Vec<serde_json::Value>,
}

#[derive(serde::Deserialize)]
struct QualityList {
    models: Vec<RemoteQuality>,
}

/// The fields of a `GET /quality` model the dashboard shows.
#[derive(serde::Deserialize)]
struct RemoteQuality {
    model: String,
    labels: u64,
    accuracy: Option<f64>,
    baseline: Option<RemoteBaseline>,
    mae: Option<f64>,
}

#[derive(serde::Deserialize)]
struct RemoteBaseline {
    accuracy: Option<f64>,
}

impl CollectorSource for Remote {
    fn kind(&self) -> &'static str {
        "collector"
    }

    fn open(&self) -> Answer<'_, Vec<serde_json::Value>> {
        Box::pin(async move {
            let path = format!("/incidents?status=open&limit={MAX_SHOWN}");
            let mut list: IncidentList = self.get(&path, "an incident list").await?;
            list.incidents.truncate(MAX_SHOWN as usize);
            Ok(list.incidents)
        })
    }

    fn quality(&self) -> Answer<'_, Vec<MeasuredQuality>> {
        Box::pin(async move {
            let list: QualityList = self.get("/quality?window=1h", "a quality report").await?;
            Ok(list
                .models
                .into_iter()
                .map(|m| MeasuredQuality {
                    model: m.model,
                    labels: m.labels,
                    accuracy: m.accuracy,
                    baseline_accuracy: m.baseline.and_then(|b| b.accuracy),
                    mae: m.mae,
                })
                .collect())
        })
    }
}
