//! The data behind `/dashboard`: a history of model samples taken every few seconds
//! (so the page shows the last 15 minutes the moment it opens), the model versions,
//! open incidents and measured quality read by the same background task (so the data endpoint never waits
//! on the disk or the collector), and the overview the page polls, which adds the
//! request timeline from the analytics ring, the recent warnings and errors, and the
//! models as they serve now.

pub mod history;
pub mod incidents;
pub mod overview;
pub mod quality;
pub mod sampler;
pub mod source;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use parking_lot::Mutex;

use crate::lifecycle::VersionInfo;
use crate::state::AppState;
use history::History;
use incidents::Incidents;
use quality::Quality;
use sampler::Sampler;
use source::CollectorSource;

/// What the background task last read, besides the samples.
#[derive(Debug, Clone)]
pub struct Cached {
    /// Every version kept per model (empty when no data dir manages versions).
    pub versions: HashMap<String, Vec<VersionInfo>>,
    pub incidents: Incidents,
    pub quality: Quality,
}

/// The dashboard's state, shared by the sampler task and the handlers.
#[derive(Debug)]
pub struct Dashboard {
    pub history: History,
    cached: Mutex<Arc<Cached>>,
    analytics: AtomicBool,
}

impl Default for Dashboard {
    fn default() -> Self {
        Self {
            history: History::default(),
            cached: Mutex::new(Arc::new(Cached {
                versions: HashMap::new(),
                incidents: Incidents::none(),
                quality: Quality::none(),
            })),
            analytics: AtomicBool::new(true),
        }
    }
}

impl Dashboard {
    pub fn cached(&self) -> Arc<Cached> {
        self.cached.lock().clone()
    }

    /// Whether the request analytics (the request charts' source) are on.
    pub fn analytics(&self) -> bool {
        self.analytics.load(Ordering::Relaxed)
    }

    pub fn set_analytics(&self, on: bool) {
        self.analytics.store(on, Ordering::Relaxed);
    }
}

/// Samples the models every [`history::EVERY`], and reads versions, incidents and
/// measured quality, until the runtime ends. The first sample is the baseline, taken
/// at once.
pub fn spawn_sampler(state: AppState, collector: Option<Arc<dyn CollectorSource>>) {
    tokio::spawn(async move {
        let mut sampler = Sampler::default();
        let mut tick = tokio::time::interval(history::EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            refresh(&state, &mut sampler, collector.as_deref()).await;
        }
    });
}

async fn refresh(state: &AppState, sampler: &mut Sampler, collector: Option<&dyn CollectorSource>) {
    let catalog = state.models.load_full();
    let sample = sampler.sample(&catalog, SystemTime::now());
    state.dashboard.history.push(sample);
    let mut versions = HashMap::new();
    if let Some(lifecycle) = state.lifecycle.get() {
        for served in catalog.iter() {
            if let Ok(v) = lifecycle.versions(&state.models, &served.card.name).await {
                versions.insert(served.card.name.clone(), v.versions);
            }
        }
    }
    let (incidents, quality) = match collector {
        Some(source) => (Incidents::read(source).await, Quality::read(source).await),
        None => (Incidents::none(), Quality::none()),
    };
    *state.dashboard.cached.lock() = Arc::new(Cached {
        versions,
        incidents,
        quality,
    });
}
