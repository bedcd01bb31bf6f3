//! What a run is asked to do ([`LoadConfig`]), the checks that refuse what it cannot
//! do, and how it fails ([`LoadError`]).
//!
//! The settings are checked here, before any traffic, so a bad `--rate` or
//! `--collector` is a usage error at once (exit 64 in `vigil load`) instead of a
//! panic in the tick arithmetic or a failure found only after the whole run. The
//! run's fixed time bounds live here too: the grace after a stop and the request
//! timeout.

use std::time::Duration;

use crate::address::{BaseUrl, UrlFault};
use crate::feedback::FeedbackConfig;

/// What `vigil load` gives the requests in flight once it stops sending (a stop
/// signal or the end of `--duration`), and the labels still to send after an
/// interrupt. A healthy service answers in milliseconds, so only a stuck or
/// overwhelmed one runs into it; it is short because a person waits at Ctrl-C and
/// `--duration` should bound the run, instead of the 30 s request timeout.
pub const GRACE: Duration = Duration::from_secs(2);

/// A request without an answer after this long is given up as no answer.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Slowest and fastest `--rate`, in requests a second.
const MIN_RATE: f64 = 0.001;
const MAX_RATE: f64 = 1_000_000.0;
/// Most rows a request (the server's own cap is lower by default) and most requests
/// in flight.
const MAX_BATCH: usize = 100_000;
const MAX_CONCURRENCY: usize = 10_000;

/// What to send, where and how fast.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Base URL of the inference service, e.g. `http://127.0.0.1:8000`.
    pub target: String,
    /// Model to address by name; the server's default model through `/predict` if `None`.
    pub model: Option<String>,
    /// Requests per second.
    pub rate: f64,
    /// Stop after this long …
    pub duration: Option<Duration>,
    /// … or after this many requests, whichever comes first.
    pub requests: Option<u64>,
    /// Requests in flight at most; the rate drops (and the report says so) beyond it.
    pub concurrency: usize,
    /// Share of invalid requests, 0–1.
    pub invalid: f64,
    /// Share of drifted requests, 0–1.
    pub drifted: f64,
    /// Rows per request.
    pub batch: usize,
    pub seed: u64,
    /// Labels for a share of the answers, sent to a collector.
    pub feedback: Option<FeedbackConfig>,
    /// Sent as `Authorization: Bearer` with every prediction (not to the collector):
    /// a service with a `predict` key answers 401 without one.
    pub api_key: Option<String>,
    /// How long requests in flight get after a stop or the end of `duration`, and
    /// labels after a stop, before they are cut off ([`GRACE`] in `vigil load`).
    pub grace: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("invalid load settings: {0}")]
    Config(String),
    /// `--target` or `--collector` is not a base URL requests can be sent under.
    #[error("invalid load settings: {option} {fault}")]
    Url {
        option: &'static str,
        fault: UrlFault,
    },
    #[error("cannot read the model schema from {url}: {reason}")]
    Schema { url: String, reason: String },
}

impl LoadError {
    /// Whether the settings are at fault (a usage error), not the target.
    pub fn is_usage(&self) -> bool {
        matches!(self, LoadError::Config(_) | LoadError::Url { .. })
    }
}

/// Checks `text`, the value of `option` (`--target` or `--collector`), as a base URL.
pub fn check_url(option: &'static str, text: &str) -> Result<BaseUrl, LoadError> {
    BaseUrl::parse(text).map_err(|fault| LoadError::Url { option, fault })
}

/// Refuses settings the run cannot keep: bounds that keep its arithmetic whole (a
/// tick period of at least 1 µs and at most ~17 minutes, batches and permits a
/// client can hold) and shares that are shares.
pub(crate) fn check_settings(config: &LoadConfig) -> Result<(), LoadError> {
    if !(MIN_RATE..=MAX_RATE).contains(&config.rate) {
        return Err(LoadError::Config(format!(
            "--rate must be between {MIN_RATE} and {MAX_RATE} requests a second"
        )));
    }
    if !(1..=MAX_BATCH).contains(&config.batch) {
        return Err(LoadError::Config(format!(
            "--batch must be between 1 and {MAX_BATCH}"
        )));
    }
    if !(1..=MAX_CONCURRENCY).contains(&config.concurrency) {
        return Err(LoadError::Config(format!(
            "--concurrency must be between 1 and {MAX_CONCURRENCY}"
        )));
    }
    let shares_ok = |s: f64| (0.0..=1.0).contains(&s);
    if !shares_ok(config.invalid)
        || !shares_ok(config.drifted)
        || config.invalid + config.drifted > 1.0
    {
        return Err(LoadError::Config(
            "--invalid and --drifted are shares between 0 and 1 that add up to at most 1".into(),
        ));
    }
    if let Some(f) = &config.feedback
        && !(shares_ok(f.ratio) && shares_ok(f.label_noise))
    {
        return Err(LoadError::Config(
            "--feedback and --label-noise are shares between 0 and 1".into(),
        ));
    }
    Ok(())
}
