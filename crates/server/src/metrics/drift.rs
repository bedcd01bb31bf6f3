//! The drift families, computed at scrape time from each served model's drift monitor:
//! this process's PSI gauges over its recent window (`model_feature_drift_psi`,
//! `model_prediction_drift_psi`), the per-bin counters and reference shares that
//! Prometheus sums across replicas into fleet-wide drift (`model_feature_bin_total`,
//! `model_feature_reference_ratio`), and `model_estimated_accuracy`.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

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
        let template = ConstGauge::new(0.0f64);
        {
            let mut family = encoder.encode_descriptor(
                "model_feature_drift_psi",
                "Population Stability Index of each feature over the recent window vs training data",
                None,
                template.metric_type(),
            )?;
            for (model, snap) in &snapshots {
                for (feature, psi) in &snap.features {
                    let labels = ModelFeature {
                        model: (*model).to_owned(),
                        feature: feature.clone(),
                    };
                    ConstGauge::new(*psi).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "model_prediction_drift_psi",
                "Population Stability Index of the predictions (class mix, or a regressor's value bins) over the recent window vs training data",
                None,
                template.metric_type(),
            )?;
            for (model, snap) in &snapshots {
                if let Some(psi) = snap.prediction {
                    ConstGauge::new(psi).encode(family.encode_family(&ModelOnly {
                        model: (*model).to_owned(),
                    })?)?;
                }
            }
        }
        let bins = |model: &str, feature: &str, bin: usize| ModelFeatureBin {
            model: model.to_owned(),
            feature: feature.to_owned(),
            bin: itoa::Buffer::new().format(bin).to_owned(),
        };
        {
            let mut family = encoder.encode_descriptor(
                "model_feature_bin",
                "Instances per feature and drift reference bin since the model version loaded; summed across replicas for fleet-wide drift",
                None,
                ConstCounter::new(0u64).metric_type(),
            )?;
            for (model, snap) in &snapshots {
                for ((feature, _), totals) in snap.features.iter().zip(&snap.bin_totals) {
                    for (bin, total) in totals.iter().enumerate() {
                        ConstCounter::new(*total)
                            .encode(family.encode_family(&bins(model, feature, bin))?)?;
                    }
                }
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "model_feature_reference_ratio",
                "Expected share of instances in each feature bin, from the model card's training reference",
                None,
                template.metric_type(),
            )?;
            for (served, (model, snap)) in catalog.iter().zip(&snapshots) {
                for ((feature, _), expected) in snap.features.iter().zip(served.drift.references())
                {
                    for (bin, share) in expected.iter().enumerate() {
                        ConstGauge::new(*share)
                            .encode(family.encode_family(&bins(model, feature, bin))?)?;
                    }
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            "model_estimated_accuracy",
            "Accuracy a calibrated classifier expects without labels: mean top-class confidence over the recent window",
            None,
            template.metric_type(),
        )?;
        for (model, snap) in &snapshots {
            if let Some(estimate) = snap.estimated_accuracy {
                ConstGauge::new(estimate).encode(family.encode_family(&ModelOnly {
                    model: (*model).to_owned(),
                })?)?;
            }
        }
        Ok(())
    }
}
