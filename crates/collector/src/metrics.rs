//! The collector's own metrics (docs/reference.md §4). Model names and alert names arrive in
//! request bodies, so they pass through [`BoundedValues`]: the first few distinct
//! values get series of their own and everything after that is counted as `other`.
//! A client cannot grow the series count without bound.

use std::collections::HashSet;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Distinct model names (and alert names, severities) that get their own series.
pub const MAX_LABEL_VALUES: usize = 64;
/// The value every label past the limit (or not tame) is counted under.
pub const OVERFLOW: &str = "other";

const WRITE_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A closed-after-filling set of label values.
#[derive(Debug, Default)]
pub struct BoundedValues {
    seen: Mutex<HashSet<String>>,
}

impl BoundedValues {
    /// `value` if it already has a series, without taking a place for it.
    pub fn known(&self, value: &str) -> Option<String> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.contains(value).then(|| value.to_owned())
    }

    /// `value` itself if it already has a series or there is room for one, else `other`.
    pub fn admit(&self, value: &str) -> String {
        let tame = !value.is_empty()
            && value.len() <= 64
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !tame {
            return OVERFLOW.into();
        }
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains(value) || (seen.len() < MAX_LABEL_VALUES && seen.insert(value.to_owned()))
        {
            value.to_owned()
        } else {
            OVERFLOW.into()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ModelLabel {
    pub model: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct IncidentLabels {
    pub alertname: String,
    pub severity: String,
}

#[derive(Debug)]
pub struct CollectorMetrics {
    pub predictions: Family<ModelLabel, Counter>,
    pub defects: Family<ModelLabel, Counter>,
    pub db_initialized: Gauge,
    pub db_write: Histogram,
    pub duplicates: Counter,
    pub incidents: Family<IncidentLabels, Counter>,
    pub incidents_open: Gauge,
    pub models: std::sync::Arc<BoundedValues>,
    pub alertnames: BoundedValues,
    pub severities: BoundedValues,
}

impl CollectorMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            predictions: Family::default(),
            defects: Family::default(),
            db_initialized: Gauge::default(),
            db_write: Histogram::new(WRITE_BUCKETS),
            duplicates: Counter::default(),
            incidents: Family::default(),
            incidents_open: Gauge::default(),
            models: std::sync::Arc::default(),
            alertnames: BoundedValues::default(),
            severities: BoundedValues::default(),
        };
        registry.register(
            "logging_predictions",
            "Prediction records stored, by model",
            m.predictions.clone(),
        );
        registry.register(
            "logging_defects",
            "Stored prediction records flagged as defects, by model",
            m.defects.clone(),
        );
        registry.register(
            "logging_db_initialized",
            "1 while the database answers, 0 otherwise",
            m.db_initialized.clone(),
        );
        registry.register(
            "logging_db_write_duration_seconds",
            "Time to store one batch of records in seconds",
            m.db_write.clone(),
        );
        registry.register(
            "logging_duplicate_records",
            "Records received again and not stored twice",
            m.duplicates.clone(),
        );
        registry.register(
            "incidents",
            "Incidents opened from alerts, by alert name and severity",
            m.incidents.clone(),
        );
        registry.register(
            "incidents_open",
            "Incidents open right now",
            m.incidents_open.clone(),
        );
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_past_the_limit_or_untame_become_other() {
        let b = BoundedValues::default();
        for i in 0..MAX_LABEL_VALUES {
            assert_eq!(b.admit(&format!("m{i}")), format!("m{i}"));
        }
        assert_eq!(b.admit("m0"), "m0");
        assert_eq!(b.admit("one-too-many"), OVERFLOW);
        assert_eq!(BoundedValues::default().admit("bad\"name"), OVERFLOW);
        assert_eq!(BoundedValues::default().admit(""), OVERFLOW);
    }
}
