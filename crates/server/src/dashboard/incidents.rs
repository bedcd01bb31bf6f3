//! Open incidents for the dashboard, from the collector: read from its store in
//! process under `vigil up`, over HTTP from `--collector-url` under `vigil serve`.
//! The inference service cannot depend on the collector, so the binary hands in a
//! source; the sampler asks it every few seconds and the dashboard shows the last
//! answer (or why there is none), never waiting on the collector itself.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use utoipa::ToSchema;

/// Most open incidents shown.
pub const MAX_SHOWN: u32 = 20;

/// Where open incidents come from.
pub trait IncidentSource: Send + Sync + std::fmt::Debug + 'static {
    /// `in_process` or `collector`: shown on the dashboard.
    fn kind(&self) -> &'static str;

    /// The open incidents, newest first, as the collector's `GET /incidents` shows
    /// them; or why they could not be read.
    fn open(
        &self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<serde_json::Value>, String>> + Send + '_>>;
}

/// The last answer of the incident source.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Incidents {
    /// `in_process`, `collector`, or `none` (no collector: `vigil serve` without
    /// `--collector-url`).
    pub source: &'static str,
    /// Open incidents, newest first (as the collector's `GET /incidents`).
    #[schema(value_type = Vec<Object>)]
    pub open: Vec<serde_json::Value>,
    /// Why the last read failed, if it did.
    pub error: Option<String>,
}

impl Incidents {
    pub fn none() -> Self {
        Self {
            source: "none",
            open: Vec::new(),
            error: None,
        }
    }

    /// Asks `source` once.
    pub async fn read(source: &dyn IncidentSource) -> Self {
        match source.open().await {
            Ok(open) => Self {
                source: source.kind(),
                open,
                error: None,
            },
            Err(error) => Self {
                source: source.kind(),
                open: Vec::new(),
                error: Some(error),
            },
        }
    }
}
