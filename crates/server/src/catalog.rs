//! The models being served, as one swappable snapshot: each model with the metric
//! handles of its version. A request takes the snapshot once and keeps what it found
//! (model and handles together) until it is answered, so a swap never changes a model
//! under a request in flight, and the next request sees the new version at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};
use vigil_model::{LoadedModel, ModelRegistry};

use crate::metrics::{ModelHandles, ModelMetrics};

/// A model version ready to serve, with its metric handles.
#[derive(Debug)]
pub struct Served {
    pub model: Arc<LoadedModel>,
    pub handles: ModelHandles,
}

impl std::ops::Deref for Served {
    type Target = LoadedModel;
    fn deref(&self) -> &LoadedModel {
        &self.model
    }
}

/// One consistent set of served models.
#[derive(Debug, Clone)]
pub struct Catalog {
    registry: ModelRegistry,
    served: BTreeMap<String, Arc<Served>>,
}

impl Catalog {
    /// Makes the handles of every model (which also marks each `model_loaded`).
    pub fn new(registry: ModelRegistry, metrics: &ModelMetrics) -> Self {
        let served = registry
            .iter()
            .map(|m| (m.card.name.clone(), Arc::new(metrics.serve(m.clone()))))
            .collect();
        Self { registry, served }
    }

    /// The same catalog with `model` added or replacing its namesake.
    pub fn with_model(&self, model: Arc<LoadedModel>, metrics: &ModelMetrics) -> Self {
        let mut next = self.clone();
        next.registry = self.registry.with_model(model.clone());
        next.served
            .insert(model.card.name.clone(), Arc::new(metrics.serve(model)));
        next
    }

    /// The same catalog without `name`; `None` for the default or last model.
    pub fn without(&self, name: &str) -> Option<Self> {
        let registry = self.registry.without(name)?;
        let mut served = self.served.clone();
        served.remove(name);
        Some(Self { registry, served })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Served>> {
        self.served.get(name)
    }

    pub fn default_model(&self) -> &Arc<Served> {
        &self.served[self.registry.default_name()]
    }

    pub fn default_name(&self) -> &str {
        self.registry.default_name()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Served>> {
        self.served.values()
    }

    pub fn len(&self) -> usize {
        self.served.len()
    }

    pub fn is_empty(&self) -> bool {
        self.served.is_empty()
    }

    pub fn registry(&self) -> &ModelRegistry {
        &self.registry
    }
}

/// The current catalog, swapped whole; each swap is announced to subscribers.
#[derive(Debug, Clone)]
pub struct Models(Arc<Swapped>);

#[derive(Debug)]
struct Swapped {
    current: ArcSwap<Catalog>,
    changes: tokio::sync::watch::Sender<u64>,
    /// Retires the versions a swap stops serving.
    metrics: ModelMetrics,
}

impl Models {
    pub fn new(catalog: Catalog, metrics: ModelMetrics) -> Self {
        Self(Arc::new(Swapped {
            current: ArcSwap::from_pointee(catalog),
            changes: tokio::sync::watch::Sender::new(0),
            metrics,
        }))
    }

    /// The current snapshot (cheap; no lock).
    pub fn load(&self) -> Guard<Arc<Catalog>> {
        self.0.current.load()
    }

    /// The current snapshot, owned (for code that holds it across an await).
    pub fn load_full(&self) -> Arc<Catalog> {
        self.0.current.load_full()
    }

    /// Changes each time the catalog is replaced (the cards announced to the
    /// collector follow it).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.changes.subscribe()
    }

    /// Puts `next` in force for every request that starts from now on, and retires
    /// the versions it no longer serves (not loaded; older replaced versions' series
    /// removed; the series only they had removed).
    pub fn replace(&self, next: Catalog) {
        let previous = self.0.current.swap(Arc::new(next));
        let current = self.0.current.load();
        for old in previous.iter() {
            let now = current.get(&old.card.name);
            // The same version still serving shares the series: leave it at 1.
            if now.is_none_or(|s| s.card.version != old.card.version) {
                self.0.metrics.retire(old);
                self.0.metrics.forget(old, now.map(|s| &**s));
            }
        }
        self.0.changes.send_modify(|n| *n += 1);
    }
}
