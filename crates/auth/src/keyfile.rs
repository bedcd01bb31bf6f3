//! The data dir's key file (`keys.toml`): the keys `vigil keys create` made and the
//! admin key `vigil up` generates on first start. Hashes only. Written whole to a
//! temporary file and renamed over the old one, so a reader never sees half a file,
//! with mode 0600 since the names and roles are nobody else's business. Whoever
//! changes it (`vigil keys create` and `revoke`, `vigil up` making its admin key)
//! holds the lock file beside it from reading to renaming, so two at once cannot
//! lose each other's change; readers need no lock.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::KeyError;
use crate::keyring::{KeySpec, Keyring};

/// The file's name under the data dir.
pub const FILE_NAME: &str = "keys.toml";

/// The lock file's name under the data dir. A file of its own, not `keys.toml`: that
/// one is replaced by a rename, and a lock on the replaced file would lock nothing.
pub const LOCK_FILE_NAME: &str = "keys.toml.lock";

const HEADER: &str = "# vigil API keys: SHA-256 hashes only, never the keys. Managed by `vigil keys`\n\
# (create, list, revoke); a running vigil picks up changes within seconds.\n\n";

/// What the key file holds.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredKeys {
    /// Set when the last `predict` key is revoked: revoking a key must not open
    /// prediction to everyone (before, it did: prediction needed a key only while a
    /// `predict` key existed). Deleting the line opens prediction again. Written
    /// before `keys`: TOML puts plain values ahead of tables.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub predict_requires_key: bool,
    #[serde(default)]
    pub keys: Vec<KeySpec>,
}

impl StoredKeys {
    /// The keys a service accepts with these and the config file's, and whether
    /// prediction needs one.
    pub fn keyring(&self, config_keys: &[KeySpec]) -> Result<Keyring, KeyError> {
        Ok(Keyring::new(config_keys.iter().chain(&self.keys))?
            .requiring_predict_key(self.predict_requires_key))
    }
}

/// The right to change a key file, held until dropped (the OS releases it with the
/// file descriptor, so a process that dies holding it does not leave it held).
#[derive(Debug)]
pub struct KeyFileLock(#[allow(dead_code)] std::fs::File);

/// The key file of one data dir.
#[derive(Debug, Clone)]
pub struct KeyFile {
    path: PathBuf,
}

impl KeyFile {
    pub fn in_dir(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join(FILE_NAME),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for, and holds until dropped, the right to change the file: take it
    /// before [`KeyFile::load`] and keep it past [`KeyFile::save`].
    pub fn lock(&self) -> Result<KeyFileLock, KeyError> {
        let path = self.path.with_file_name(LOCK_FILE_NAME);
        let err = |source| KeyError::Write {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let file = open_private(&path, false).map_err(err)?;
        file.lock().map_err(err)?;
        Ok(KeyFileLock(file))
    }

    /// What the file holds; nothing when it does not exist.
    pub fn load(&self) -> Result<StoredKeys, KeyError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(StoredKeys::default());
            }
            Err(source) => {
                return Err(KeyError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        toml::from_str(&text).map_err(|e| KeyError::Parse {
            path: self.path.clone(),
            message: e.message().to_owned(),
        })
    }

    /// Replaces the file's contents.
    pub fn save(&self, stored: &StoredKeys) -> Result<(), KeyError> {
        let write_err = |source| KeyError::Write {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(write_err)?;
        }
        let body = toml::to_string(stored).map_err(|e| KeyError::Parse {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        // One temp file per process: two `vigil keys` at once must not write into the
        // same one (the last rename still wins; the file is never half-written).
        let tmp = self
            .path
            .with_extension(format!("toml.{}.tmp", std::process::id()));
        write_private(&tmp, format!("{HEADER}{body}").as_bytes()).map_err(write_err)?;
        std::fs::rename(&tmp, &self.path).map_err(write_err)
    }

    /// When the file last changed (none when absent), to notice edits cheaply.
    pub fn modified(&self) -> Option<std::time::SystemTime> {
        std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok()
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = open_private(path, true)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Opens `path` for writing, created with mode 0600 where the OS has modes.
fn open_private(path: &Path, truncate: bool) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(truncate);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyHash;
    use crate::role::Role;

    #[test]
    fn saves_and_loads_hashes_only_with_private_mode() {
        let dir = vigil_test_support::TempDir::new("keyfile");
        let file = KeyFile::in_dir(dir.path());
        assert_eq!(file.load().unwrap(), StoredKeys::default());
        assert!(file.modified().is_none());
        let spec = KeySpec {
            name: "ops".into(),
            role: Role::Admin,
            sha256: KeyHash::of(b"secret-key").to_hex(),
            created_at: Some("2026-12-01T00:00:00Z".into()),
        };
        let stored = StoredKeys {
            predict_requires_key: false,
            keys: vec![spec],
        };
        file.save(&stored).unwrap();
        assert_eq!(file.load().unwrap(), stored);
        let text = std::fs::read_to_string(file.path()).unwrap();
        assert!(!text.contains("secret-key"));
        assert!(!text.contains("predict_requires_key"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(file.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    /// The flag outlives the last `predict` key and gates prediction by itself.
    #[test]
    fn prediction_stays_gated_by_the_flag_alone() {
        let dir = vigil_test_support::TempDir::new("keyfile-gate");
        let file = KeyFile::in_dir(dir.path());
        let admin = KeySpec {
            name: "ops".into(),
            role: Role::Admin,
            sha256: KeyHash::of(b"k").to_hex(),
            created_at: None,
        };
        let mut stored = StoredKeys {
            predict_requires_key: true,
            keys: vec![admin],
        };
        file.save(&stored).unwrap();
        let text = std::fs::read_to_string(file.path()).unwrap();
        assert!(text.contains("predict_requires_key = true"), "{text}");
        let loaded = file.load().unwrap();
        assert_eq!(loaded, stored);
        assert!(loaded.keyring(&[]).unwrap().predict_gated());
        stored.predict_requires_key = false;
        assert!(!stored.keyring(&[]).unwrap().predict_gated());
    }

    #[test]
    fn a_damaged_file_is_an_error_that_names_it() {
        let dir = vigil_test_support::TempDir::new("keyfile-bad");
        let file = KeyFile::in_dir(dir.path());
        std::fs::write(file.path(), "[[keys]]\nname = 1\n").unwrap();
        let err = file.load().unwrap_err().to_string();
        assert!(err.contains("keys.toml"), "{err}");
    }
}
