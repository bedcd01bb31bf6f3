//! The data dir's key file (`keys.toml`): the keys `vigil keys create` made and the
//! admin key `vigil up` generates on first start. Hashes only. Written whole to a
//! temporary file and renamed over the old one, so a reader never sees half a file,
//! with mode 0600 since the names and roles are nobody else's business.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::KeyError;
use crate::keyring::KeySpec;

/// The file's name under the data dir.
pub const FILE_NAME: &str = "keys.toml";

const HEADER: &str = "# vigil API keys: SHA-256 hashes only, never the keys. Managed by `vigil keys`\n\
# (create, list, revoke); a running vigil picks up changes within seconds.\n\n";

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Contents {
    #[serde(default)]
    keys: Vec<KeySpec>,
}

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

    /// The keys in the file; none when it does not exist.
    pub fn load(&self) -> Result<Vec<KeySpec>, KeyError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(KeyError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let contents: Contents = toml::from_str(&text).map_err(|e| KeyError::Parse {
            path: self.path.clone(),
            message: e.message().to_owned(),
        })?;
        Ok(contents.keys)
    }

    /// Replaces the file's keys.
    pub fn save(&self, keys: &[KeySpec]) -> Result<(), KeyError> {
        let write_err = |source| KeyError::Write {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(write_err)?;
        }
        let body = toml::to_string(&Contents {
            keys: keys.to_vec(),
        })
        .map_err(|e| KeyError::Parse {
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

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
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
        assert!(file.load().unwrap().is_empty());
        assert!(file.modified().is_none());
        let spec = KeySpec {
            name: "ops".into(),
            role: Role::Admin,
            sha256: KeyHash::of(b"secret-key").to_hex(),
            created_at: Some("2026-12-01T00:00:00Z".into()),
        };
        file.save(std::slice::from_ref(&spec)).unwrap();
        assert_eq!(file.load().unwrap(), vec![spec]);
        let text = std::fs::read_to_string(file.path()).unwrap();
        assert!(!text.contains("secret-key"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(file.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
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
