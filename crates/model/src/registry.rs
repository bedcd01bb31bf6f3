//! The set of loaded models: from a directory of `<name>/model.{onnx,toml}` folders or
//! from the bundled copies, each with its card, runtime, drift monitor and load time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::bundled;
use crate::card::{ModelCard, Task};
use crate::cost::BatchCost;
use crate::drift::DriftMonitor;
use crate::error::LoadError;
use crate::runtime::OnnxModel;

/// Rows kept in each model's drift window.
pub const DRIFT_WINDOW: usize = 1000;

/// A model ready to serve.
#[derive(Debug)]
pub struct LoadedModel {
    pub card: ModelCard,
    pub runtime: OnnxModel,
    pub drift: DriftMonitor,
    /// What its batches have recently cost (the scheduler's estimate).
    pub cost: BatchCost,
    /// How long parsing and optimising took.
    pub load_duration: Duration,
    pub loaded_at: SystemTime,
    /// Where it came from: a directory path or `bundled`.
    pub source: String,
}

impl LoadedModel {
    /// Builds a model from its ONNX bytes and card text.
    pub fn from_parts(onnx: &[u8], card_text: &str, source: String) -> Result<Self, LoadError> {
        let started = Instant::now();
        let card_error = |source_err| LoadError::Card {
            path: PathBuf::from(&source).join("model.toml"),
            source: source_err,
        };
        let card = ModelCard::from_toml(card_text).map_err(card_error)?;
        let runtime = match card.task {
            Task::Classification => OnnxModel::load(onnx, card.features.len(), card.labels.len()),
            Task::Regression => OnnxModel::load_regressor(onnx, card.features.len()),
        }
        .map_err(|message| LoadError::Onnx {
            model: card.name.clone(),
            message,
        })?;
        let drift = DriftMonitor::new(&card, DRIFT_WINDOW);
        Ok(Self {
            card,
            runtime,
            drift,
            cost: BatchCost::default(),
            load_duration: started.elapsed(),
            loaded_at: SystemTime::now(),
            source,
        })
    }

    /// This model serving again after another version did (a rollback to a version
    /// kept in memory): the card and the compiled plan shared, the drift state started
    /// anew, as loading it from its files would. Reusing the object itself brought back
    /// its old drift window and made `model_feature_bin_total` jump by every row it had
    /// counted before, where a new version's counters start from 0.
    pub fn restarted(&self) -> Self {
        Self {
            card: self.card.clone(),
            runtime: self.runtime.clone(),
            drift: DriftMonitor::new(&self.card, DRIFT_WINDOW),
            // The same plan costs the same.
            cost: self.cost.clone(),
            load_duration: self.load_duration,
            loaded_at: SystemTime::now(),
            source: self.source.clone(),
        }
    }

    /// Loads `dir/model.onnx` and `dir/model.toml`.
    pub fn from_dir(dir: &Path) -> Result<Self, LoadError> {
        let onnx = read_bounded(&dir.join("model.onnx"), MAX_ONNX_BYTES)?;
        let card = read_bounded(&dir.join("model.toml"), MAX_CARD_BYTES)?;
        let card = String::from_utf8(card).map_err(|e| LoadError::Io {
            path: dir.join("model.toml"),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        Self::from_parts(&onnx, &card, dir.display().to_string())
    }
}

/// The most a `model.onnx` may hold: protobuf's own limit on a message (2 GiB), which
/// an ONNX file without external data cannot pass anyway.
pub const MAX_ONNX_BYTES: u64 = 2 << 30;
/// The most a `model.toml` may hold: cards are a few kilobytes (labels, features, the
/// drift reference's bins).
pub const MAX_CARD_BYTES: u64 = 16 << 20;

/// Reads a model's file: a regular file (a FIFO blocked the read for good, a link to
/// `/dev/zero` read until memory ran out), at most `max` bytes.
pub fn read_model_file(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let refuse = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, why);
    // Asked what it is by path first (a device is not even opened), then opened and
    // asked again: a file swapped for a FIFO in between would block the open, which
    // O_NONBLOCK lets return (a regular file's reads ignore it).
    if !std::fs::metadata(path)?.is_file() {
        return Err(refuse("not a regular file".into()));
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(refuse("not a regular file".into()));
    }
    if meta.len() > max {
        return Err(refuse(format!(
            "{} bytes, over the {max} a model file may hold",
            meta.len()
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // Bounded again while reading: the file may grow after the check.
    (&mut file).take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(refuse(format!(
            "over the {max} bytes a model file may hold"
        )));
    }
    Ok(bytes)
}

fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, LoadError> {
    read_model_file(path, max).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })
}

/// All loaded models by name, and which one answers `/predict` without a `model`.
#[derive(Debug, Clone)]
pub struct ModelRegistry {
    models: BTreeMap<String, Arc<LoadedModel>>,
    default: String,
}

impl ModelRegistry {
    /// The models compiled into the binary.
    pub fn bundled() -> Result<Self, LoadError> {
        let models = bundled::MODELS
            .iter()
            .map(|(_, onnx, card)| LoadedModel::from_parts(onnx, card, "bundled".into()))
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_models(models, Some(bundled::DEFAULT_MODEL), Path::new("bundled"))
    }

    /// Every sub-directory of `dir` holding a `model.toml`.
    pub fn from_dir(dir: &Path, default: Option<&str>) -> Result<Self, LoadError> {
        let entries = std::fs::read_dir(dir).map_err(|source| LoadError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join("model.toml").is_file())
            .collect();
        dirs.sort();
        let models = dirs
            .iter()
            .map(|d| LoadedModel::from_dir(d))
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_models(models, default, dir)
    }

    /// Assembles a registry; the default is `default` if given, else the first by name.
    pub fn from_models(
        models: Vec<LoadedModel>,
        default: Option<&str>,
        origin: &Path,
    ) -> Result<Self, LoadError> {
        let mut map = BTreeMap::new();
        for m in models {
            let name = m.card.name.clone();
            if map.insert(name.clone(), Arc::new(m)).is_some() {
                return Err(LoadError::Duplicate(name));
            }
        }
        let default = match default {
            Some(d) if map.contains_key(d) => d.to_owned(),
            Some(d) => {
                return Err(LoadError::UnknownDefault {
                    name: d.to_owned(),
                    origin: origin.to_owned(),
                });
            }
            None => map
                .keys()
                .next()
                .cloned()
                .ok_or_else(|| LoadError::Empty(origin.to_owned()))?,
        };
        Ok(Self {
            models: map,
            default,
        })
    }

    /// The same models with another default; `name` must be loaded.
    pub fn with_default(mut self, name: &str) -> Self {
        if self.models.contains_key(name) {
            self.default = name.to_owned();
        }
        self
    }

    /// The same models with `model` added, or in place of the one with its name (a new
    /// version). The registry is a snapshot: callers swap whole registries.
    pub fn with_model(&self, model: Arc<LoadedModel>) -> Self {
        let mut next = self.clone();
        next.models.insert(model.card.name.clone(), model);
        next
    }

    /// The same models without `name`; `None` when it is the default or the last one
    /// (a service always has a model to answer `/predict`).
    pub fn without(&self, name: &str) -> Option<Self> {
        if name == self.default || !self.models.contains_key(name) {
            return None;
        }
        let mut next = self.clone();
        next.models.remove(name);
        Some(next)
    }

    pub fn get(&self, name: &str) -> Option<&Arc<LoadedModel>> {
        self.models.get(name)
    }

    pub fn default_model(&self) -> &Arc<LoadedModel> {
        &self.models[&self.default]
    }

    pub fn default_name(&self) -> &str {
        &self.default
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<LoadedModel>> {
        self.models.values()
    }

    pub fn len(&self) -> usize {
        self.models.len()
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_models_load_with_defect_detector_as_default() {
        let reg = ModelRegistry::bundled().unwrap();
        assert_eq!(reg.len(), 2);
        assert_eq!(reg.default_name(), "defect-detector");
        assert_eq!(reg.get("digits").unwrap().card.features.len(), 64);
    }

    #[test]
    fn loads_a_models_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
        let reg = ModelRegistry::from_dir(&dir, Some("digits")).unwrap();
        assert_eq!(reg.default_name(), "digits");
        let err = ModelRegistry::from_dir(&dir, Some("nope")).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn a_regression_card_needs_a_model_with_one_value_per_row() {
        let card = "name = \"r\"\nversion = \"1\"\ntask = \"regression\"\n\
                    [[features]]\nname = \"a\"\n[[features]]\nname = \"b\"\n\
                    [[features]]\nname = \"c\"\n[[features]]\nname = \"d\"\n\
                    [[features]]\nname = \"e\"\n[[features]]\nname = \"f\"\n";
        // The defect detector answers two probabilities per row, not a value.
        let err = LoadedModel::from_parts(bundled::MODELS[0].1, card, "test".into()).unwrap_err();
        assert!(err.to_string().contains("[N, 1]"), "{err}");
    }

    #[test]
    fn missing_directory_is_a_clear_error() {
        let err = ModelRegistry::from_dir(Path::new("/definitely/not/here"), None).unwrap_err();
        assert!(err.to_string().contains("/definitely/not/here"), "{err}");
    }
}
