//! A key and its hash. Keys are 32 random bytes (256 bits) in URL-safe base64 after a
//! `vgl_` prefix (so secret scanners and people can tell what it is); only their
//! SHA-256 is ever stored. A key with that much entropy needs no salt or slow hash:
//! nobody can guess it, and its hash reveals nothing.

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::KeyError;

/// What every generated key starts with.
pub const PREFIX: &str = "vgl_";

/// A fresh random key.
pub fn generate_key() -> Result<String, KeyError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
    let mut key = String::with_capacity(PREFIX.len() + 43);
    key.push_str(PREFIX);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(bytes, &mut key);
    Ok(key)
}

/// The SHA-256 of a key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash([u8; 32]);

impl KeyHash {
    pub fn of(key: &[u8]) -> Self {
        Self(Sha256::digest(key).into())
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Some(Self(out))
    }

    pub fn to_hex(&self) -> String {
        use std::fmt::Write;
        self.0.iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// Equality that takes the same time wherever the first difference is.
    pub fn ct_eq(&self, other: &KeyHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

/// Hashes are not secrets, but they are not for logs either.
impl std::fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyHash(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_prefixed_and_url_safe() {
        let a = generate_key().unwrap();
        let b = generate_key().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX));
        assert_eq!(a.len(), PREFIX.len() + 43);
        assert!(
            a[PREFIX.len()..]
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }

    #[test]
    fn hashes_round_trip_through_hex() {
        // SHA-256("abc"), the FIPS 180-2 test vector.
        let h = KeyHash::of(b"abc");
        assert_eq!(
            h.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(KeyHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(KeyHash::from_hex(&h.to_hex().to_uppercase()), Some(h));
        assert!(KeyHash::from_hex("abc").is_none());
        assert!(KeyHash::from_hex(&"g".repeat(64)).is_none());
        assert!(h.ct_eq(&KeyHash::of(b"abc")));
        assert!(!h.ct_eq(&KeyHash::of(b"abd")));
        assert_eq!(format!("{h:?}"), "KeyHash(..)");
    }
}
