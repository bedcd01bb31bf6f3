//! Where the dashboard's open incidents come from: `vigil up` reads its own
//! collector's store; `vigil serve --collector-url` asks that collector over HTTP.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use vigil_collector::CollectorState;
use vigil_server::dashboard::incidents::{IncidentSource, MAX_SHOWN};

/// A collector that does not answer within this long is reported as unreachable.
const TIMEOUT: Duration = Duration::from_secs(2);

type Answer<'a> = Pin<Box<dyn Future<Output = Result<Vec<serde_json::Value>, String>> + Send + 'a>>;

/// The collector in this process.
#[derive(Debug)]
pub(super) struct InProcess(pub CollectorState);

impl IncidentSource for InProcess {
    fn kind(&self) -> &'static str {
        "in_process"
    }

    fn open(&self) -> Answer<'_> {
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
}

/// A collector elsewhere, asked at `GET {url}/incidents?status=open`.
#[derive(Debug)]
pub(super) struct Remote {
    client: reqwest::Client,
    url: String,
}

impl Remote {
    pub fn new(collector_url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder().timeout(TIMEOUT).build()?,
            url: format!(
                "{}/incidents?status=open&limit={MAX_SHOWN}",
                collector_url.trim_end_matches('/')
            ),
        })
    }
}

#[derive(serde::Deserialize)]
struct IncidentList {
    incidents: Vec<serde_json::Value>,
}

impl IncidentSource for Remote {
    fn kind(&self) -> &'static str {
        "collector"
    }

    fn open(&self) -> Answer<'_> {
        Box::pin(async move {
            let response = self
                .client
                .get(&self.url)
                .send()
                .await
                .map_err(|e| format!("the collector did not answer: {e}"))?;
            if !response.status().is_success() {
                return Err(format!("the collector answered {}", response.status()));
            }
            let list: IncidentList = response
                .json()
                .await
                .map_err(|e| format!("the collector's answer was not an incident list: {e}"))?;
            Ok(list.incidents)
        })
    }
}
