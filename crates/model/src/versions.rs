//! Uploaded model versions, kept under the data dir so they survive a restart:
//!
//! ```text
//! <data_dir>/models/<name>/state.toml          active upload, the versions before it, unloaded?
//! <data_dir>/models/<name>/<version>/model.onnx
//! <data_dir>/models/<name>/<version>/model.toml
//! ```
//!
//! A version directory is written under a temporary name and renamed into place, and
//! `state.toml` is replaced by rename, so a crash leaves either the old state or the
//! new one. The versions a model had before any upload (bundled or from
//! `--models-dir`) are not copied here; `state.toml` names one only as the version that
//! served until an unload (older builds also named one active after a rollback to it).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::LoadError;
use crate::registry::LoadedModel;

/// Directory under the data dir.
pub const DIR_NAME: &str = "models";
const STATE_FILE: &str = "state.toml";

/// Whether `s` can name a model or a version on disk and in URLs: 1-64 of
/// `[A-Za-z0-9._-]`, not starting with a dot (no `..`, no hidden files).
pub fn is_safe_segment(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Whether `v` can name a kept version: a safe segment that is not one of the store's
/// own file names.
pub fn is_version_name(v: &str) -> bool {
    is_safe_segment(v) && v != STATE_FILE
}

/// The `source` of a version loaded from the store (an upload), where a models
/// directory's version names its directory.
pub const UPLOADED: &str = "uploaded";

/// One model's lifecycle state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelState {
    /// The uploaded version serving; none means the models directory's (or, while
    /// `unloaded`, the version that served until the unload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<String>,
    /// Versions that were active before, oldest first: rollback pops the last.
    #[serde(default)]
    pub history: Vec<String>,
    /// Unloaded by `DELETE /admin/models/{name}`: not loaded at start-up.
    #[serde(default)]
    pub unloaded: bool,
}

/// A version kept on disk.
#[derive(Debug, Clone)]
pub struct StoredVersion {
    pub version: String,
    pub saved_at: Option<SystemTime>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("model store {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("model store {path}: {message}")]
    State { path: PathBuf, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The uploaded versions of every model, under one directory.
#[derive(Debug, Clone)]
pub struct VersionStore {
    root: PathBuf,
}

impl VersionStore {
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self {
            root: data_dir.join(DIR_NAME),
        }
    }

    fn model_dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn version_dir(&self, name: &str, version: &str) -> PathBuf {
        self.model_dir(name).join(version)
    }

    /// Models with a state file, by name.
    pub fn names(&self) -> Result<Vec<String>, StoreError> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&self.root)(e)),
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().join(STATE_FILE).is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| is_safe_segment(n))
            .collect();
        names.sort();
        Ok(names)
    }

    pub fn state(&self, name: &str) -> Result<ModelState, StoreError> {
        let path = self.model_dir(name).join(STATE_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| StoreError::State {
                path,
                message: e.message().to_owned(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ModelState::default()),
            Err(e) => Err(io(&path)(e)),
        }
    }

    pub fn save_state(&self, name: &str, state: &ModelState) -> Result<(), StoreError> {
        let dir = self.model_dir(name);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = dir.join(STATE_FILE);
        let text = toml::to_string(state).map_err(|e| StoreError::State {
            path: path.clone(),
            message: e.to_string(),
        })?;
        // A leading dot: no version name can be it.
        let tmp = dir.join(".state.toml.tmp");
        write_synced(&tmp, text.as_bytes()).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))
    }

    pub fn has_version(&self, name: &str, version: &str) -> bool {
        self.version_dir(name, version).join("model.onnx").is_file()
    }

    /// Whether anything was ever kept for `version` of `name` (its directory exists,
    /// whole or not): what tells a lost upload from a version the store never held.
    pub fn ever_kept(&self, name: &str, version: &str) -> bool {
        std::fs::symlink_metadata(self.version_dir(name, version)).is_ok()
    }

    /// Keeps an uploaded version: both files land together or not at all.
    pub fn save_version(
        &self,
        name: &str,
        version: &str,
        onnx: &[u8],
        card: &str,
    ) -> Result<(), StoreError> {
        let final_dir = self.version_dir(name, version);
        let tmp = self.model_dir(name).join(format!(".upload-{version}"));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        write_synced(&tmp.join("model.onnx"), onnx).map_err(io(&tmp))?;
        write_synced(&tmp.join("model.toml"), card.as_bytes()).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &final_dir).map_err(io(&final_dir))
    }

    /// Every kept version of `name`, oldest first.
    pub fn versions(&self, name: &str) -> Result<Vec<StoredVersion>, StoreError> {
        let dir = self.model_dir(name);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&dir)(e)),
        };
        let mut out: Vec<StoredVersion> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().join("model.onnx").is_file())
            .filter_map(|e| {
                let version = e.file_name().into_string().ok()?;
                is_version_name(&version).then(|| StoredVersion {
                    saved_at: e.metadata().and_then(|m| m.modified()).ok(),
                    version,
                })
            })
            .collect();
        out.sort_by_key(|v| v.saved_at);
        Ok(out)
    }

    /// Removes a kept version (an upload whose state could not be saved).
    pub fn remove_version(&self, name: &str, version: &str) -> Result<(), StoreError> {
        let dir = self.version_dir(name, version);
        std::fs::remove_dir_all(&dir).map_err(io(&dir))
    }

    /// Loads a kept version.
    pub fn load(&self, name: &str, version: &str) -> Result<LoadedModel, LoadError> {
        let mut model = LoadedModel::from_dir(&self.version_dir(name, version))?;
        model.source = UPLOADED.into();
        Ok(model)
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundled;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "vigil-versions-{tag}-{}-{:?}",
            std::process::id(),
            SystemTime::now()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn keeps_versions_and_state_across_instances() {
        let dir = temp_dir("keep");
        let store = VersionStore::in_data_dir(&dir);
        assert!(store.names().unwrap().is_empty());
        assert_eq!(
            store.state("defect-detector").unwrap(),
            ModelState::default()
        );
        let (_, onnx, card) = bundled::MODELS[0];
        store
            .save_version("defect-detector", "2.0.0", onnx, card)
            .unwrap();
        let state = ModelState {
            active: Some("2.0.0".into()),
            history: vec!["1.0.0".into()],
            unloaded: false,
        };
        store.save_state("defect-detector", &state).unwrap();

        let again = VersionStore::in_data_dir(&dir);
        assert_eq!(again.names().unwrap(), ["defect-detector"]);
        assert_eq!(again.state("defect-detector").unwrap(), state);
        assert!(again.has_version("defect-detector", "2.0.0"));
        assert!(!again.has_version("defect-detector", "3.0.0"));
        let versions: Vec<String> = again
            .versions("defect-detector")
            .unwrap()
            .into_iter()
            .map(|v| v.version)
            .collect();
        assert_eq!(versions, ["2.0.0"]);
        let loaded = again.load("defect-detector", "2.0.0").unwrap();
        assert_eq!(loaded.source, UPLOADED);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn only_tame_segments_name_files() {
        for ok in ["digits", "v1.2.3", "a_b-c"] {
            assert!(is_safe_segment(ok), "{ok}");
        }
        for bad in ["", ".", "..", ".hidden", "a/b", "a b", "ä", &"x".repeat(65)] {
            assert!(!is_safe_segment(bad), "{bad}");
        }
    }
}
