//! Open incidents for the dashboard, as the collector source last answered them.

use serde::Serialize;
use utoipa::ToSchema;

use super::source::CollectorSource;

/// Most open incidents shown.
pub const MAX_SHOWN: u32 = 20;

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
    pub async fn read(source: &dyn CollectorSource) -> Self {
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
