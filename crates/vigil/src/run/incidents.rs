//! Where the dashboard's open incidents come from: `vigil up` reads its own
//! collector's store; `vigil serve --collector-url` asks that collector over HTTP.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use vigil_collector::CollectorState;
use vigil_server::dashboard::incidents::{IncidentSource, MAX_SHOWN};

/// A collector that does not answer within this long is reported as unreachable.
const TIMEOUT: Duration = Duration::from_secs(2);
/// A bigger answer than this is refused: twenty incidents take a few kilobytes.
const MAX_BYTES: usize = 1024 * 1024;

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
            let mut response = self
                .client
                .get(&self.url)
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
            let mut list: IncidentList = serde_json::from_slice(&body)
                .map_err(|e| format!("the collector's answer was not an incident list: {e}"))?;
            list.incidents.truncate(MAX_SHOWN as usize);
            Ok(list.incidents)
        })
    }
}
