//! The model lifecycle: upload a version, roll back, unload, list versions. Every
//! action is checked completely before anything changes (the card parses and names
//! this model, the ONNX loads in tract with the card's features and labels, a probe
//! batch answers probabilities), then kept under the data dir and put in force with one
//! catalog swap: requests in flight finish on the version they started with, new ones
//! get the new one, and none fails. Actions run one at a time.

mod error;
mod pending;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use utoipa::ToSchema;
use vigil_model::versions::{UPLOADED, is_safe_segment, is_version_name};
use vigil_model::{LoadedModel, ModelCard, ModelRegistry, ModelState, VersionStore};
use vigil_telemetry::context::carry_scope;

pub use error::LifecycleError;
use pending::PendingSave;

use crate::catalog::Models;
use crate::metrics::ModelMetrics;

/// What an upload put in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct Uploaded {
    pub model: String,
    pub version: String,
    /// The version it replaced; `null` for a new model or an unloaded one.
    pub previous_version: Option<String>,
    /// Time to load and optimise the model, in milliseconds.
    pub load_ms: f64,
    /// Rows of the probe batch the model answered with probabilities.
    pub probe_rows: usize,
}

/// A version change (rollback) or an unload.
#[derive(Debug, Serialize, ToSchema)]
pub struct Changed {
    pub model: String,
    /// The version serving before.
    pub from_version: String,
    /// The version serving now; `null` after an unload.
    pub to_version: Option<String>,
}

/// One version a model has.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VersionInfo {
    pub version: String,
    /// `bundled`, a models directory, or `uploaded`.
    pub source: String,
    pub active: bool,
    /// When it was uploaded (RFC 3339); `null` for the start-up version.
    pub saved_at: Option<String>,
}

/// Every version kept for a model.
#[derive(Debug, Serialize, ToSchema)]
pub struct Versions {
    pub model: String,
    /// The version serving; `null` when the model is unloaded.
    pub active: Option<String>,
    pub versions: Vec<VersionInfo>,
    /// Versions that served before the active one, oldest first: rollback goes to the
    /// last.
    pub history: Vec<String>,
}

/// The versions from the models directory (or bundled), by name: what the service
/// started with, updated by a rescan.
type Base = BTreeMap<String, Arc<LoadedModel>>;

/// What a rescan of the models directory changed.
#[derive(Debug, Default, Serialize)]
pub struct Rescanned {
    /// Each model whose serving version the rescan changed, with the versions.
    pub swaps: Vec<Swap>,
    /// Models now serving a new version from the directory, or newly added.
    pub loaded: Vec<String>,
    /// Models gone from the directory, no longer served.
    pub unloaded: Vec<String>,
    /// Models whose uploaded version keeps serving (the directory's is kept for
    /// rollback), or that could not be unloaded (default or last).
    pub kept: Vec<String>,
}

/// One model's change of serving version by a rescan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Swap {
    pub model: String,
    /// What served before (none: a model new to the directory).
    pub from_version: Option<String>,
    /// What serves now (none: unloaded, gone from the directory).
    pub to_version: Option<String>,
}

/// Model versions kept under the data dir, and the directory's versions to fall back on.
#[derive(Debug)]
pub struct Lifecycle {
    store: VersionStore,
    /// One action at a time: the store, the base and the catalog change together.
    base: tokio::sync::Mutex<Base>,
    /// The runtime this was made on (vigil's shared one): loads, saves and the undo of
    /// an abandoned save run there, not on the request's connection thread, whose
    /// runtime stops with its listener while the process still shuts down.
    runtime: tokio::runtime::Handle,
}

impl Lifecycle {
    /// Made on the runtime its loads and saves are to run on (vigil's shared one);
    /// panics outside a runtime.
    pub fn new(store: VersionStore, base: &ModelRegistry) -> Self {
        Self {
            store,
            base: tokio::sync::Mutex::new(
                base.iter()
                    .map(|m| (m.card.name.clone(), m.clone()))
                    .collect(),
            ),
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// Runs `work` on a blocking thread of [`Self::runtime`], in the caller's request
    /// scope.
    fn blocking<R: Send + 'static>(
        &self,
        work: impl FnOnce() -> R + Send + 'static,
    ) -> tokio::task::JoinHandle<R> {
        self.runtime.spawn_blocking(carry_scope(work))
    }

    /// The start-up models with what the store says: uploaded versions in force,
    /// unloaded models left out. A stored version that no longer loads is logged and
    /// the start-up version serves instead.
    pub fn overlay(&self, mut registry: ModelRegistry) -> ModelRegistry {
        let base = self.base.try_lock().map(|b| b.clone()).unwrap_or_default();
        let names = match self.store.names() {
            Ok(names) => names,
            Err(e) => {
                tracing::error!(target: "vigil::lifecycle", error = %e, "model_store_unreadable");
                return registry;
            }
        };
        for name in names {
            let state = match self.store.state(&name) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(target: "vigil::lifecycle", model = %name, error = %e, "model_state_unreadable");
                    continue;
                }
            };
            if state.unloaded {
                match registry.without(&name) {
                    Some(next) => registry = next,
                    None if registry.get(&name).is_some() => tracing::warn!(
                        target: "vigil::lifecycle", model = %name,
                        reason = "the default or the last model",
                        "unloaded_model_kept"
                    ),
                    None => {}
                }
                continue;
            }
            let Some(active) = state.active else { continue };
            if base.get(&name).is_some_and(|m| m.card.version == active) {
                continue;
            }
            if !self.store.ever_kept(&name, &active) {
                // Not an upload: a directory's version that older builds wrote here at
                // a rollback, since changed by a rescan. The directory's serves; a
                // lost upload (its directory there, its files not) is an error below.
                tracing::info!(
                    target: "vigil::lifecycle", model = %name, version = %active,
                    "stored_active_not_an_upload"
                );
                continue;
            }
            match self.store.load(&name, &active) {
                Ok(model) => {
                    tracing::info!(
                        target: "vigil::lifecycle", model = %name, version = %active,
                        load_ms = (model.load_duration.as_secs_f64() * 1e6).round() / 1e3,
                        "model_loaded"
                    );
                    registry = registry.with_model(Arc::new(model));
                }
                Err(e) => tracing::error!(
                    target: "vigil::lifecycle", model = %name, version = %active, error = %e,
                    "stored_model_version_failed"
                ),
            }
        }
        registry
    }

    /// Checks an uploaded version completely, keeps it and puts it in force.
    pub async fn upload(
        &self,
        models: &Models,
        metrics: &ModelMetrics,
        name: &str,
        onnx: bytes::Bytes,
        card_text: String,
    ) -> Result<Uploaded, LifecycleError> {
        check_name(name)?;
        let card = ModelCard::from_toml(&card_text)
            .map_err(|e| LifecycleError::InvalidCard(e.to_string()))?;
        if card.name != name {
            return Err(LifecycleError::NameMismatch {
                card: card.name,
                path: name.to_owned(),
            });
        }
        if !is_version_name(&card.version) {
            return Err(LifecycleError::BadVersion(card.version));
        }
        let base = self.base.lock().await;
        if self.store.has_version(name, &card.version)
            || base
                .get(name)
                .is_some_and(|m| m.card.version == card.version)
        {
            return Err(LifecycleError::VersionExists {
                model: name.to_owned(),
                version: card.version,
            });
        }
        // tract's load and optimisation are CPU work: off the async threads, in the
        // request's scope (a panic tract raises there is logged with its ids).
        let (model, probe_rows, onnx, card_text) = self
            .blocking(move || {
                let model = LoadedModel::from_parts(&onnx, &card_text, UPLOADED.into())
                    .map_err(|e| LifecycleError::InvalidModel(e.to_string()))?;
                let report = vigil_model::probe(&model)
                    .map_err(|e| LifecycleError::NotProbabilities(e.to_string()))?;
                Ok::<_, LifecycleError>((model, report.rows, onnx, card_text))
            })
            .await
            .map_err(|e| LifecycleError::Store(format!("model load task: {e}")))??;
        let version = model.card.version.clone();
        let previous = models.load().get(name).map(|s| s.card.version.clone());
        // Up to max_upload_bytes written and synced: off the async threads. Abandoned
        // (the request dropped while it runs), the save is undone once it has run.
        let (store, n, v) = (self.store.clone(), name.to_owned(), version.clone());
        let saving = self.blocking(move || store.save_version(&n, &v, &onnx, &card_text));
        PendingSave::new(
            saving,
            self.store.clone(),
            name,
            &version,
            self.runtime.clone(),
        )
        .finish()
        .await
        .map_err(|e| LifecycleError::Store(format!("model save task: {e}")))?
        .map_err(|e| LifecycleError::Store(e.to_string()))?;
        let saved = self.state(name).and_then(|mut state| {
            // The version serving until now or, for a model unloaded on purpose, the
            // one that served until the unload: a rollback returns to it either way.
            let before = previous.clone().or_else(|| {
                state
                    .unloaded
                    .then(|| {
                        // `active` names an upload; one the store never held (older
                        // builds wrote the directory's version there at a rollback)
                        // is the directory's, whatever a rescan made that since.
                        let base = base.get(name).map(|m| m.card.version.clone());
                        let active = state.active.clone();
                        active.filter(|v| self.store.ever_kept(name, v)).or(base)
                    })
                    .flatten()
            });
            if let Some(before) = before {
                state.history.push(before);
            }
            state.active = Some(version.clone());
            state.unloaded = false;
            self.save_state(name, &state)
        });
        if let Err(e) = saved {
            // Not in force and not in the state: keep no files a retry would trip on.
            let _ = self.store.remove_version(name, &version);
            return Err(e);
        }
        let load_ms = (model.load_duration.as_secs_f64() * 1e6).round() / 1e3;
        models.replace(models.load().with_model(Arc::new(model), metrics));
        Ok(Uploaded {
            model: name.to_owned(),
            version,
            previous_version: previous,
            load_ms,
            probe_rows,
        })
    }

    /// Back to the version that served before the active one.
    pub async fn rollback(
        &self,
        models: &Models,
        metrics: &ModelMetrics,
        name: &str,
    ) -> Result<Changed, LifecycleError> {
        check_name(name)?;
        let base = self.base.lock().await;
        let current = models
            .load()
            .get(name)
            .map(|s| s.card.version.clone())
            .ok_or_else(|| LifecycleError::UnknownModel(name.to_owned()))?;
        let mut state = self.state(name)?;
        let target = state
            .history
            .pop()
            .ok_or_else(|| LifecycleError::NoPreviousVersion(name.to_owned()))?;
        let model = match base.get(name) {
            Some(base) if base.card.version == target => Arc::new(base.restarted()),
            _ => {
                let store = self.store.clone();
                let (n, v) = (name.to_owned(), target.clone());
                let loaded = self
                    .blocking(move || store.load(&n, &v))
                    .await
                    .map_err(|e| LifecycleError::Store(format!("model load task: {e}")))?;
                match loaded {
                    Ok(model) => Arc::new(model),
                    Err(e) => {
                        // Gone (a version that came from the models directory before a
                        // rescan, or files removed by hand): drop it from the history so
                        // the next rollback can go further back, and say so.
                        tracing::warn!(target: "vigil::lifecycle", model = %name, version = %target, error = %e, "rollback_target_unavailable");
                        self.save_state(name, &state)?;
                        return Err(LifecycleError::VersionUnavailable {
                            model: name.to_owned(),
                            version: target,
                        });
                    }
                }
            }
        };
        // The start-up version is the directory's, not a stored upload: `active` names
        // uploads only, so a later rescan that changes the directory's version is not
        // overruled at the next start by a version the store never held.
        let uploaded = model.source == UPLOADED;
        state.active = uploaded.then(|| target.clone());
        self.save_state(name, &state)?;
        models.replace(models.load().with_model(model, metrics));
        Ok(Changed {
            model: name.to_owned(),
            from_version: current,
            to_version: Some(target),
        })
    }

    /// Stops serving `name` (not the default model, not the last one); kept unloaded
    /// across restarts until a new version is uploaded.
    pub async fn unload(&self, models: &Models, name: &str) -> Result<Changed, LifecycleError> {
        check_name(name)?;
        let _one_at_a_time = self.base.lock().await;
        let catalog = models.load_full();
        let current = catalog
            .get(name)
            .map(|s| s.card.version.clone())
            .ok_or_else(|| LifecycleError::UnknownModel(name.to_owned()))?;
        let next = catalog.without(name).ok_or(LifecycleError::CannotUnload {
            model: name.to_owned(),
            why: if catalog.len() == 1 {
                "it is the last model"
            } else {
                "it is the default model (`/predict` without a model uses it)"
            },
        })?;
        let mut state = self.state(name)?;
        state.unloaded = true;
        self.save_state(name, &state)?;
        models.replace(next);
        Ok(Changed {
            model: name.to_owned(),
            from_version: current,
            to_version: None,
        })
    }

    /// Every version kept for `name`: the start-up one and the uploads.
    pub async fn versions(&self, models: &Models, name: &str) -> Result<Versions, LifecycleError> {
        check_name(name)?;
        let base = self.base.lock().await;
        let active = models.load().get(name).map(|s| s.card.version.clone());
        let stored = self
            .store
            .versions(name)
            .map_err(|e| LifecycleError::Store(e.to_string()))?;
        let base = base.get(name);
        if active.is_none() && base.is_none() && stored.is_empty() {
            return Err(LifecycleError::UnknownModel(name.to_owned()));
        }
        let is_active = |v: &str| active.as_deref() == Some(v);
        let mut versions: Vec<VersionInfo> = base
            .iter()
            .map(|m| VersionInfo {
                version: m.card.version.clone(),
                source: m.source.clone(),
                active: is_active(&m.card.version),
                saved_at: None,
            })
            .collect();
        versions.extend(stored.into_iter().map(|v| VersionInfo {
            active: is_active(&v.version),
            saved_at: v.saved_at.map(crate::handlers::meta::rfc3339),
            version: v.version,
            source: UPLOADED.into(),
        }));
        Ok(Versions {
            model: name.to_owned(),
            active,
            versions,
            history: self.state(name)?.history,
        })
    }

    /// Takes in the models directory as it is now (loaded and probed by the caller):
    /// a changed or new model serves its new version, unless an uploaded version is
    /// serving (that one stays; the directory's is kept for rollback); a model gone
    /// from the directory is unloaded unless it is the default or the last one.
    pub async fn rescan(
        &self,
        models: &Models,
        metrics: &ModelMetrics,
        fresh: ModelRegistry,
    ) -> Result<Rescanned, LifecycleError> {
        let mut base = self.base.lock().await;
        // Every check first: a failure here changes nothing at all. A directory version
        // named as an upload of the same model would make one version name two models
        // (in the list of versions, a rollback's target, every stored record), as an
        // upload of an existing version would: refused the same way.
        for m in fresh.iter() {
            let (name, version) = (&m.card.name, &m.card.version);
            let known = base.get(name).is_some_and(|b| &b.card.version == version);
            if !known && self.store.has_version(name, version) {
                return Err(LifecycleError::VersionExists {
                    model: name.clone(),
                    version: version.clone(),
                });
            }
        }
        let unloaded = fresh
            .iter()
            .map(|m| Ok((m.card.name.clone(), self.state(&m.card.name)?.unloaded)))
            .collect::<Result<BTreeMap<String, bool>, LifecycleError>>()?;
        let mut next_base = base.clone();
        let mut report = Rescanned::default();
        // Written once the rescan is in force: a history that names a version the
        // base does not hold yet would lose the one it replaced at a rollback.
        let mut histories = Vec::new();
        let mut catalog = (*models.load_full()).clone();
        for model in fresh.iter() {
            let name = &model.card.name;
            let serving = catalog.get(name).map(|s| s.model.clone());
            let uploaded_serving = serving.as_ref().is_some_and(|s| s.source == UPLOADED);
            let before = next_base.insert(name.clone(), model.clone());
            if uploaded_serving
                && let Some(state) =
                    self.keep_for_rollback(name, before.as_deref(), &model.card.version)?
            {
                histories.push((name.clone(), state));
            }
            if uploaded_serving || unloaded[name] {
                report.kept.push(name.clone());
            } else if serving
                .as_ref()
                .is_none_or(|s| s.card.version != model.card.version)
            {
                catalog = catalog.with_model(model.clone(), metrics);
                report.loaded.push(name.clone());
                report.swaps.push(Swap {
                    model: name.clone(),
                    from_version: serving.map(|s| s.card.version.clone()),
                    to_version: Some(model.card.version.clone()),
                });
            }
        }
        let gone: Vec<String> = next_base
            .keys()
            .filter(|n| fresh.get(n).is_none())
            .cloned()
            .collect();
        for name in gone {
            let from_dir = catalog.get(&name).is_some_and(|s| s.source != UPLOADED);
            if !from_dir {
                next_base.remove(&name);
                continue;
            }
            match catalog.without(&name) {
                Some(next) => {
                    next_base.remove(&name);
                    report.swaps.push(Swap {
                        model: name.clone(),
                        from_version: catalog.get(&name).map(|s| s.card.version.clone()),
                        to_version: None,
                    });
                    catalog = next;
                    report.unloaded.push(name);
                }
                // Still serving (the default or the last model): its version stays
                // listed as what serves, not an empty list beside an active version.
                None => report.kept.push(name),
            }
        }
        *base = next_base;
        models.replace(catalog);
        for (name, state) in histories {
            if let Err(e) = self.save_state(&name, &state) {
                tracing::warn!(target: "vigil::lifecycle", model = %name, error = %e, "model_history_not_saved");
            }
        }
        Ok(report)
    }

    /// A rescan brought the directory's `version` of a model an uploaded version
    /// serves: it takes the place of the directory's version before (`before`) in the
    /// history, or joins it as the oldest, so a rollback reaches it. The version it
    /// replaced is no longer in the directory and could not be loaded. Returns the
    /// state to write, `None` when its history is right already.
    fn keep_for_rollback(
        &self,
        name: &str,
        before: Option<&LoadedModel>,
        version: &str,
    ) -> Result<Option<ModelState>, LifecycleError> {
        let mut state = self.state(name)?;
        let old = before.map(|m| m.card.version.as_str());
        if old == Some(version) && state.history.iter().any(|v| v == version) {
            return Ok(None);
        }
        let at = state.history.iter().position(|v| Some(v.as_str()) == old);
        state
            .history
            .retain(|v| v != version && Some(v.as_str()) != old);
        let at = at.map_or(0, |i| i.min(state.history.len()));
        state.history.insert(at, version.to_owned());
        Ok(Some(state))
    }

    fn state(&self, name: &str) -> Result<ModelState, LifecycleError> {
        self.store
            .state(name)
            .map_err(|e| LifecycleError::Store(e.to_string()))
    }

    fn save_state(&self, name: &str, state: &ModelState) -> Result<(), LifecycleError> {
        self.store
            .save_state(name, state)
            .map_err(|e| LifecycleError::Store(e.to_string()))
    }
}

fn check_name(name: &str) -> Result<(), LifecycleError> {
    if is_safe_segment(name) {
        Ok(())
    } else {
        Err(LifecycleError::BadName(name.chars().take(100).collect()))
    }
}
