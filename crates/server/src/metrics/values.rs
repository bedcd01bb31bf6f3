//! `prediction_value{model}`, the one family whose buckets differ per model (each
//! regressor's card value bins): kept by model and encoded by a collector of its own.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::histogram::Histogram;

use super::ModelOnly;

/// `prediction_value{model}`: each regressor's histogram, with its card's value bin
/// edges as buckets (a family shares one bucket layout; these differ by model).
#[derive(Debug, Clone, Default)]
pub(super) struct ValueHistograms {
    /// Each model's histogram and the bucket edges it was made with.
    by_model: Arc<RwLock<BTreeMap<String, Bucketed>>>,
}

type Bucketed = (Vec<f64>, Histogram);

impl ValueHistograms {
    /// `model`'s histogram: the existing one when its buckets are `edges` (a new
    /// version with the same bins continues the series), else a new one.
    pub(super) fn get_or_create(&self, model: &str, edges: &[f64]) -> Histogram {
        let mut map = self.by_model.write().unwrap_or_else(|p| p.into_inner());
        if let Some((kept, h)) = map.get(model)
            && kept.as_slice() == edges
        {
            return h.clone();
        }
        let h = Histogram::new(edges.iter().copied());
        map.insert(model.to_owned(), (edges.to_vec(), h.clone()));
        h
    }
}

impl ValueHistograms {
    /// Drops `model`'s histogram (it no longer serves a regressor).
    pub(super) fn remove(&self, model: &str) {
        let mut map = self.by_model.write().unwrap_or_else(|p| p.into_inner());
        map.remove(model);
    }
}

impl Collector for ValueHistograms {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let map = self.by_model.read().unwrap_or_else(|p| p.into_inner());
        if map.is_empty() {
            return Ok(());
        }
        let mut family = encoder.encode_descriptor(
            "prediction_value",
            "Value predicted by a regression model, in the bins of its card's reference",
            None,
            prometheus_client::metrics::MetricType::Histogram,
        )?;
        for (model, (_, histogram)) in map.iter() {
            let labels = ModelOnly {
                model: model.clone(),
            };
            histogram.encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
