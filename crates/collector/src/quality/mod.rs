//! Ground-truth quality: the counts ([`Tally`]), the window the collector's gauges
//! cover ([`QualityWindow`]), and the metrics ([`FeedbackMetrics`], and the gauges
//! computed at scrape time by [`QualityCollector`]).

mod metrics;
mod tally;
mod window;

pub use metrics::{FeedbackMetrics, FeedbackOutcome, OutcomeLabels, PendingDrop, QualityCollector};
pub use tally::{ClassQuality, Confusion, Tally};
pub use window::QualityWindow;
