//! What the dashboard reads from the collector: open incidents and measured model
//! quality. The inference service cannot depend on the collector, so the binary hands
//! in a source: the collector in the same process under `vigil up`, or
//! `--collector-url` over HTTP under `vigil serve`. The sampler asks it every few
//! seconds and the dashboard shows the last answer (or why there is none), never
//! waiting on the collector itself.

use std::future::Future;
use std::pin::Pin;

use super::quality::MeasuredQuality;

/// An answer of the collector, or why there is none.
pub type Answer<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// Where the collector's views come from.
pub trait CollectorSource: Send + Sync + std::fmt::Debug + 'static {
    /// `in_process` or `collector`: shown on the dashboard.
    fn kind(&self) -> &'static str;

    /// The open incidents, newest first, as the collector's `GET /incidents` shows
    /// them.
    fn open(&self) -> Answer<'_, Vec<serde_json::Value>>;

    /// Each model's quality from ground truth over the last hour.
    fn quality(&self) -> Answer<'_, Vec<MeasuredQuality>>;
}
