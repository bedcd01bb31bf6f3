//! The keys a service accepts: the config file's `[[keys]]` and the data dir's key
//! file, merged, with unique names and hashes. Looking a key up hashes it once and
//! compares it with every entry without stopping at a match, so the time taken says
//! nothing about which key, or how much of one, was right.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::KeyError;
use crate::key::KeyHash;
use crate::role::Role;

/// One key as written in the config file or the key file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// The caller's identity in access lines, usage stats and audit events.
    pub name: String,
    pub role: Role,
    /// SHA-256 of the key, 64 hex digits.
    pub sha256: String,
    /// RFC 3339, when `vigil keys create` made it (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

impl KeySpec {
    /// A fresh key for `name` with `role`: the key itself (to show once, never kept)
    /// and the spec holding only its hash.
    pub fn generate(
        name: &str,
        role: Role,
        created_at: Option<String>,
    ) -> Result<(String, KeySpec), KeyError> {
        let key = crate::key::generate_key()?;
        let spec = KeySpec {
            name: name.to_owned(),
            role,
            sha256: KeyHash::of(key.as_bytes()).to_hex(),
            created_at,
        };
        Ok((key, spec))
    }
}

/// A checked key.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    pub name: Arc<str>,
    pub role: Role,
    hash: KeyHash,
}

impl KeyEntry {
    /// The hash of this entry's key.
    pub fn hash(&self) -> KeyHash {
        self.hash
    }
}

/// Every key a service accepts.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    entries: Vec<KeyEntry>,
    predict_gated: bool,
}

/// Whether a name can be a caller identity: it appears in logs and metrics labels'
/// neighbourhood, so it is kept to a safe, short alphabet.
pub fn is_valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Keyring {
    /// Checks and merges key specs; names and hashes must be unique across all of them.
    pub fn new<'a>(specs: impl IntoIterator<Item = &'a KeySpec>) -> Result<Self, KeyError> {
        let mut entries: Vec<KeyEntry> = Vec::new();
        for spec in specs {
            if !is_valid_name(&spec.name) {
                return Err(KeyError::BadName(spec.name.clone()));
            }
            let hash = KeyHash::from_hex(&spec.sha256).ok_or_else(|| KeyError::BadHash {
                name: spec.name.clone(),
            })?;
            if entries.iter().any(|e| *e.name == *spec.name) {
                return Err(KeyError::DuplicateName(spec.name.clone()));
            }
            if let Some(other) = entries.iter().find(|e| e.hash == hash) {
                return Err(KeyError::DuplicateHash(
                    other.name.to_string(),
                    spec.name.clone(),
                ));
            }
            entries.push(KeyEntry {
                name: spec.name.as_str().into(),
                role: spec.role,
                hash,
            });
        }
        let predict_gated = entries.iter().any(|e| e.role == Role::Predict);
        Ok(Self {
            entries,
            predict_gated,
        })
    }

    /// The entry whose key this is, if any; constant time in the key's content.
    pub fn authenticate(&self, presented: &[u8]) -> Option<&KeyEntry> {
        let hash = KeyHash::of(presented);
        let mut found = None;
        for entry in &self.entries {
            if entry.hash.ct_eq(&hash) {
                found = Some(entry);
            }
        }
        found
    }

    /// The entry with this key hash (sessions remember the hash, never the key).
    pub fn by_hash(&self, hash: &KeyHash) -> Option<&KeyEntry> {
        self.entries.iter().find(|e| e.hash.ct_eq(hash))
    }

    /// Prediction needs a key even without a `predict` key among these (the key
    /// file's `predict_requires_key`: one was there and was revoked).
    pub fn requiring_predict_key(mut self, required: bool) -> Self {
        self.predict_gated |= required;
        self
    }

    /// Prediction endpoints need a key once any `predict` key exists (or existed,
    /// see [`Keyring::requiring_predict_key`]).
    pub fn predict_gated(&self) -> bool {
        self.predict_gated
    }

    pub fn has_admin(&self) -> bool {
        self.entries.iter().any(|e| e.role == Role::Admin)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &KeyEntry> {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn spec(name: &str, role: Role, key: &str) -> KeySpec {
        KeySpec {
            name: name.into(),
            role,
            sha256: KeyHash::of(key.as_bytes()).to_hex(),
            created_at: None,
        }
    }

    #[test]
    fn finds_the_key_and_nothing_else() {
        let ring = Keyring::new(&[
            spec("ops", Role::Admin, "key-one"),
            spec("ci", Role::Predict, "key-two"),
        ])
        .unwrap();
        assert_eq!(&*ring.authenticate(b"key-one").unwrap().name, "ops");
        assert_eq!(ring.authenticate(b"key-two").unwrap().role, Role::Predict);
        assert!(ring.authenticate(b"key-three").is_none());
        assert!(ring.authenticate(b"").is_none());
        assert!(ring.predict_gated());
        assert!(ring.has_admin());
    }

    #[test]
    fn predict_is_open_without_predict_keys() {
        let ring = Keyring::new(&[spec("ops", Role::Admin, "k")]).unwrap();
        assert!(!ring.predict_gated());
        assert!(!Keyring::default().predict_gated());
        assert!(!Keyring::default().has_admin());
    }

    #[test]
    fn refuses_bad_names_hashes_and_duplicates() {
        let bad_name = spec("no spaces", Role::Admin, "k");
        assert!(matches!(
            Keyring::new(&[bad_name]),
            Err(KeyError::BadName(_))
        ));
        let mut bad_hash = spec("a", Role::Admin, "k");
        bad_hash.sha256 = "abc".into();
        assert!(matches!(
            Keyring::new(&[bad_hash]),
            Err(KeyError::BadHash { .. })
        ));
        assert!(matches!(
            Keyring::new(&[spec("a", Role::Admin, "k1"), spec("a", Role::Predict, "k2")]),
            Err(KeyError::DuplicateName(_))
        ));
        assert!(matches!(
            Keyring::new(&[spec("a", Role::Admin, "k"), spec("b", Role::Predict, "k")]),
            Err(KeyError::DuplicateHash(..))
        ));
    }
}
