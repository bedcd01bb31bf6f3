//! Ground-truth metrics of the collector (docs/reference.md §4): counters and the lag
//! histogram, updated as labels are stored, and the quality gauges, computed at scrape
//! time from the [`QualityWindow`] and the known cards. Model names pass through the
//! collector's bounded label values; class names come from the cards (which bound
//! them), so a label cannot add a series.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use vigil_telemetry::scrape::family;

use super::QualityWindow;
use crate::cards::Cards;
use crate::metrics::{BoundedValues, ModelLabel};

/// Prediction-to-label lag buckets, in seconds: a second to thirty days.
const LAG_BUCKETS: [f64; 12] = [
    1.0,
    10.0,
    60.0,
    300.0,
    900.0,
    3600.0,
    14_400.0,
    43_200.0,
    86_400.0,
    259_200.0,
    604_800.0,
    2_592_000.0,
];

/// How a stored label graded its prediction: `scored` is a regressor's (its error goes
/// to the MAE and RMSE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum FeedbackOutcome {
    correct,
    incorrect,
    scored,
}

/// Why a pending label was dropped without being joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum PendingDrop {
    /// Its prediction did not arrive within the pending TTL.
    expired,
    /// Too many labels waited; the oldest went.
    evicted,
    /// Its prediction arrived, but the label did not fit the model (not one of its
    /// classes, or the prediction had failed).
    rejected,
}

impl PendingDrop {
    /// Every reason: each series exists from start, at 0, so that a rate over it sees
    /// the first drop and a refused label adds no series.
    pub const ALL: [Self; 3] = [Self::expired, Self::evicted, Self::rejected];
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub model: String,
    pub outcome: FeedbackOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct DropLabels {
    pub reason: PendingDrop,
}

type LagFamily = Family<ModelLabel, Histogram, fn() -> Histogram>;

/// The label-time metrics.
#[derive(Debug)]
pub struct FeedbackMetrics {
    pub feedback: Family<OutcomeLabels, Counter>,
    pub lag: LagFamily,
    pub pending: Gauge,
    pub pending_dropped: Family<DropLabels, Counter>,
}

impl FeedbackMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            feedback: Family::default(),
            lag: Family::new_with_constructor(|| Histogram::new(LAG_BUCKETS)),
            pending: Gauge::default(),
            pending_dropped: Family::default(),
        };
        for reason in PendingDrop::ALL {
            let _made = m.pending_dropped.get_or_create(&DropLabels { reason });
        }
        registry.register(
            "model_feedback",
            "Ground-truth labels joined with their prediction, by model and outcome",
            m.feedback.clone(),
        );
        registry.register(
            "model_feedback_lag_seconds",
            "Time from a prediction to its ground-truth label",
            m.lag.clone(),
        );
        registry.register(
            "feedback_pending_labels",
            "Labels waiting for their prediction's record",
            m.pending.clone(),
        );
        registry.register(
            "feedback_pending_dropped",
            "Pending labels dropped without being joined, by reason",
            m.pending_dropped.clone(),
        );
        m
    }

    pub fn dropped(&self, reason: PendingDrop, n: u64) {
        if n > 0 {
            self.pending_dropped
                .get_or_create(&DropLabels { reason })
                .inc_by(n);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ClassLabels {
    model: String,
    class: String,
}

/// The quality gauges, over the collector's quality window.
#[derive(Debug)]
pub struct QualityCollector {
    pub window: Arc<QualityWindow>,
    pub cards: Arc<Cards>,
    pub models: Arc<BoundedValues>,
}

fn gauges<'a>(
    series: impl IntoIterator<Item = (&'a str, Option<f64>)> + 'a,
) -> impl Iterator<Item = (ModelLabel, ConstGauge<f64>)> + 'a {
    series.into_iter().filter_map(|(model, v)| {
        v.map(|v| {
            (
                ModelLabel {
                    model: model.to_owned(),
                },
                ConstGauge::new(v),
            )
        })
    })
}

impl Collector for QualityCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let tallies = self.window.tallies_now();
        let cards = self.cards.all();
        let gauge = MetricType::Gauge;
        let figure = |f: fn(&super::Tally) -> Option<f64>| {
            tallies.iter().map(move |(model, t)| (model.as_str(), f(t)))
        };
        family(
            &mut encoder,
            "model_accuracy",
            "Share of ground-truth labels the model predicted, over the quality window",
            gauges(figure(|t| t.accuracy())),
            gauge,
        )?;
        family(
            &mut encoder,
            "model_quality_labels",
            "Ground-truth labels in the quality window",
            gauges(figure(|t| Some(t.labels() as f64))),
            gauge,
        )?;
        family(
            &mut encoder,
            "model_calibration_error",
            "Expected calibration error over 10 confidence bins, over the quality window",
            gauges(figure(|t| t.calibration_error())),
            gauge,
        )?;
        family(
            &mut encoder,
            "model_mean_absolute_error",
            "A regressor's mean absolute error against ground truth, over the quality window",
            gauges(figure(|t| t.mae())),
            gauge,
        )?;
        family(
            &mut encoder,
            "model_root_mean_squared_error",
            "A regressor's root mean squared error against ground truth, over the quality window",
            gauges(figure(|t| t.rmse())),
            gauge,
        )?;
        // Per class: the card's classes only, so every series is one the card named.
        let per_class: Vec<(String, Vec<super::ClassQuality>)> = tallies
            .iter()
            .filter(|(_, t)| t.class_labels() > 0)
            .filter_map(|(model, t)| {
                let card = cards.iter().find(|c| &c.model == model)?;
                Some((model.clone(), t.per_class(&card.labels)))
            })
            .collect();
        let class_series = |pick: fn(&super::ClassQuality) -> Option<f64>| {
            per_class.iter().flat_map(move |(model, classes)| {
                classes.iter().filter_map(move |c| {
                    pick(c).map(|v| {
                        (
                            ClassLabels {
                                model: model.clone(),
                                class: c.class.clone(),
                            },
                            ConstGauge::new(v),
                        )
                    })
                })
            })
        };
        family(
            &mut encoder,
            "model_class_precision",
            "Per-class precision against ground truth, over the quality window",
            class_series(|c| c.precision),
            gauge,
        )?;
        family(
            &mut encoder,
            "model_class_recall",
            "Per-class recall against ground truth, over the quality window",
            class_series(|c| c.recall),
            gauge,
        )?;
        // The cards' baselines, which ModelAccuracyDrop compares with: for models
        // that already have series (stored records or labels). Announcements are
        // unauthenticated, so a card alone must not take one of the bounded places.
        let admitted: Vec<_> = cards
            .iter()
            .filter_map(|c| Some((self.models.known(&c.model)?, c.baseline.unwrap_or_default())))
            .collect();
        family(
            &mut encoder,
            "model_baseline_accuracy",
            "The accuracy the model card states for the model (its [baseline])",
            gauges(admitted.iter().map(|(m, b)| (m.as_str(), b.accuracy))),
            gauge,
        )?;
        family(
            &mut encoder,
            "model_baseline_mean_absolute_error",
            "The MAE the model card states for a regressor (its [baseline])",
            gauges(admitted.iter().map(|(m, b)| (m.as_str(), b.mae))),
            gauge,
        )?;
        Ok(())
    }
}
