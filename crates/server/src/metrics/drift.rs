//! The drift families, computed at scrape time from each served model's drift monitor:
//! this process's PSI gauges over its recent window (`model_feature_drift_psi`,
//! `model_prediction_drift_psi`), the per-bin counters and reference shares that
//! Prometheus sums across replicas into fleet-wide drift (`model_feature_bin_total`,
//! `model_feature_reference_ratio`), and `model_estimated_accuracy`.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use vigil_telemetry::scrape::family;

use super::{ModelFeature, ModelOnly};
use crate::catalog::Models;

/// `model`, `feature` and the 0-based `bin` index (bounded by the card's bins).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ModelFeatureBin {
    model: String,
    feature: String,
    bin: String,
}

/// Encodes the drift families at scrape time.
#[derive(Debug)]
pub(super) struct DriftCollector {
    pub(super) models: Models,
}

impl Collector for DriftCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let catalog = self.models.load();
        let snapshots: Vec<_> = catalog
            .iter()
            .map(|m| (m.card.name.as_str(), m.drift.snapshot()))
            .collect();
        let gauge = ConstGauge::new(0.0f64).metric_type();
        let model_only = |model: &str| ModelOnly {
            model: model.to_owned(),
        };
        let bins = |model: &str, feature: &str, bin: usize| ModelFeatureBin {
            model: model.to_owned(),
            feature: feature.to_owned(),
            bin: itoa::Buffer::new().format(bin).to_owned(),
        };
        family(
            &mut encoder,
            "model_feature_drift_psi",
            "Population Stability Index of each feature over the recent window vs training data",
            snapshots.iter().flat_map(|(model, snap)| {
                snap.features.iter().map(|(feature, psi)| {
                    let labels = ModelFeature {
                        model: (*model).to_owned(),
                        feature: feature.clone(),
                    };
                    (labels, ConstGauge::new(*psi))
                })
            }),
            gauge,
        )?;
        family(
            &mut encoder,
            "model_prediction_drift_psi",
            "Population Stability Index of the predictions (class mix, or a regressor's value bins) over the recent window vs training data",
            snapshots.iter().filter_map(|(model, snap)| {
                Some((model_only(model), ConstGauge::new(snap.prediction?)))
            }),
            gauge,
        )?;
        family(
            &mut encoder,
            "model_feature_bin",
            "Instances per feature and drift reference bin since the model version loaded; summed across replicas for fleet-wide drift",
            snapshots.iter().flat_map(|(model, snap)| {
                snap.features.iter().zip(&snap.bin_totals).flat_map(
                    move |((feature, _), totals)| {
                        totals.iter().enumerate().map(move |(bin, total)| {
                            (bins(model, feature, bin), ConstCounter::new(*total))
                        })
                    },
                )
            }),
            ConstCounter::new(0u64).metric_type(),
        )?;
        family(
            &mut encoder,
            "model_feature_reference_ratio",
            "Expected share of instances in each feature bin, from the model card's training reference",
            catalog
                .iter()
                .zip(&snapshots)
                .flat_map(|(served, (model, snap))| {
                    snap.features
                        .iter()
                        .zip(served.drift.references())
                        .flat_map(move |((feature, _), expected)| {
                            expected.iter().enumerate().map(move |(bin, share)| {
                                (bins(model, feature, bin), ConstGauge::new(*share))
                            })
                        })
                }),
            gauge,
        )?;
        family(
            &mut encoder,
            "model_estimated_accuracy",
            "Accuracy a calibrated classifier expects without labels: mean top-class confidence over the recent window",
            snapshots.iter().filter_map(|(model, snap)| {
                Some((model_only(model), ConstGauge::new(snap.estimated_accuracy?)))
            }),
            gauge,
        )
    }
}
