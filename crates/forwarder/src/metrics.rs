//! `prediction_log_records_total{outcome}` and `prediction_log_spool_records`: the same
//! series whichever way records are delivered.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// What happened to records: the closed set behind the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Delivered: stored (or already stored) by the collector.
    Sent,
    /// Left memory to wait in the disk spool (undeliverable, or the queue was full).
    Spooled,
    /// Sent again after a failed try.
    Retried,
    /// Lost, and counted: refused as invalid, pushed out of a full spool, or never
    /// written to disk when they had to leave memory.
    Dropped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Spooled => "spooled",
            Self::Retried => "retried",
            Self::Dropped => "dropped",
        }
    }
}

impl EncodeLabelValue for Outcome {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: Outcome,
}

/// The forwarder's metrics; cheap to clone.
#[derive(Debug, Clone)]
pub struct ForwarderMetrics {
    pub(crate) sent: Counter,
    pub(crate) spooled: Counter,
    pub(crate) retried: Counter,
    pub(crate) dropped: Counter,
    pub(crate) spool: Gauge,
}

impl ForwarderMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let family: Family<OutcomeLabel, Counter> = Family::default();
        let get = |outcome| family.get_or_create(&OutcomeLabel { outcome }).clone();
        let m = Self {
            sent: get(Outcome::Sent),
            spooled: get(Outcome::Spooled),
            retried: get(Outcome::Retried),
            dropped: get(Outcome::Dropped),
            spool: Gauge::default(),
        };
        registry.register(
            "prediction_log_records",
            "Prediction records by what happened to them: sent, spooled, retried, dropped",
            family,
        );
        registry.register(
            "prediction_log_spool_records",
            "Prediction records waiting in the disk spool",
            m.spool.clone(),
        );
        m
    }

    /// Records counted under `outcome` so far.
    pub fn count(&self, outcome: Outcome) -> u64 {
        match outcome {
            Outcome::Sent => self.sent.get(),
            Outcome::Spooled => self.spooled.get(),
            Outcome::Retried => self.retried.get(),
            Outcome::Dropped => self.dropped.get(),
        }
    }
}
