//! `GET /dashboard/api/overview`: everything the page draws, in one answer. The first
//! poll asks for the whole history; later ones pass `since` (the last sample's time)
//! and get only the samples after it, so an open page moves a few kilobytes per poll.

use std::time::Duration;

use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;
use vigil_analytics::{RoutePerformance, Timeline};

use crate::dashboard::history::{self, Sample, Shared};
use crate::dashboard::incidents::Incidents;
use crate::dashboard::quality::Quality;
use crate::lifecycle::VersionInfo;
use crate::state::AppState;

/// A served model as it is now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelStatus {
    pub name: String,
    pub version: String,
    /// `loaded`: every model listed here is serving.
    pub status: &'static str,
    pub default: bool,
    #[schema(value_type = String)]
    pub task: vigil_model::Task,
    pub loaded_at: String,
    pub labels: Vec<String>,
    pub defect_labels: Vec<String>,
    /// The features drift is measured on, in the order of a sample's `drift`.
    pub drift_features: Vec<String>,
    /// Every version kept for the model (empty until the first sample, or when no
    /// data dir keeps versions).
    pub versions: Vec<VersionInfo>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Overview {
    pub generated_at: String,
    pub version: &'static str,
    pub uptime_seconds: f64,
    pub ready: bool,
    pub default_model: String,
    /// Seconds between samples.
    pub sample_seconds: u64,
    /// Whether request analytics are on (`--analytics`); without them `http` is empty.
    pub analytics: bool,
    /// Requests over all routes, per 10-second slot, for the last 15 minutes.
    pub http: Timeline,
    /// The window of `routes`, in seconds.
    pub window_seconds: u64,
    /// Per route over the window, busiest first.
    pub routes: Vec<RoutePerformance>,
    pub models: Vec<ModelStatus>,
    /// Model samples after `since`, oldest first.
    #[schema(value_type = Vec<Sample>)]
    pub samples: Vec<Shared>,
    /// The last warnings and errors (log lines), newest first.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Box<RawValue>>,
    pub incidents: Incidents,
    /// Accuracy measured from ground truth over the last hour (the estimate from
    /// confidences is in each model's samples).
    pub quality: Quality,
}

impl Overview {
    pub fn build(state: &AppState, window: Duration, since_ms: u64) -> Self {
        let catalog = state.models.load();
        let cached = state.dashboard.cached();
        let analytics = state.dashboard.analytics();
        let models = catalog
            .iter()
            .map(|s| {
                let card = &s.card;
                ModelStatus {
                    name: card.name.clone(),
                    version: card.version.clone(),
                    status: "loaded",
                    default: card.name == catalog.default_name(),
                    task: card.task,
                    loaded_at: crate::handlers::meta::rfc3339(s.loaded_at),
                    labels: card.labels.clone(),
                    defect_labels: card.defect_labels.clone(),
                    drift_features: s.drift.feature_names().to_vec(),
                    versions: cached.versions.get(&card.name).cloned().unwrap_or_default(),
                }
            })
            .collect();
        Self {
            generated_at: crate::handlers::meta::now_rfc3339(),
            version: crate::VERSION,
            uptime_seconds: (state.started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            ready: state.is_ready(),
            default_model: catalog.default_name().to_owned(),
            sample_seconds: history::EVERY.as_secs(),
            analytics,
            http: if analytics {
                state.analytics.timeline(history::SPAN)
            } else {
                Timeline::empty()
            },
            window_seconds: window.as_secs(),
            routes: if analytics {
                state.analytics.performance(window).routes
            } else {
                Vec::new()
            },
            models,
            samples: state.dashboard.history.since(since_ms),
            events: crate::handlers::events::recent(),
            incidents: cached.incidents.clone(),
            quality: cached.quality.clone(),
        }
    }
}
