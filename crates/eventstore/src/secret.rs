//! Keys of 32 secret bytes that come from configuration and are never stored in the database:
//! the master key ([`crate::MasterKey`]) and the anchor key ([`crate::anchor::AnchorKey`]). A
//! key's id, derived from its bytes under its kind's own label, is stored wherever the key was
//! used, and is all a key shows of itself.

use std::fmt;
use std::marker::PhantomData;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A kind of key: what it is called, and the label its id is derived under.
pub trait KeyKind {
    /// What it is called in a sentence (`the master key must be 32 bytes`); in one word, its
    /// type's name, shown with the id in place of the key (`MasterKey(1a2b...)`).
    const NAME: &'static str;
    /// Hashed with the key's bytes to make its id.
    const ID_LABEL: &'static [u8];
    /// Said after a key of the wrong length: how to make one.
    const HINT: &'static str = "";
}

/// A key of kind `K`: 32 secret bytes, zeroed when dropped, and a short public id.
pub struct SecretKey<K> {
    key: Zeroizing<[u8; 32]>,
    id: String,
    kind: PhantomData<K>,
}

impl<K> Clone for SecretKey<K> {
    fn clone(&self) -> Self {
        SecretKey {
            key: self.key.clone(),
            id: self.id.clone(),
            kind: PhantomData,
        }
    }
}

impl<K: KeyKind> fmt::Debug for SecretKey<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for word in K::NAME.split(' ') {
            let mut letters = word.chars();
            if let Some(first) = letters.next() {
                write!(f, "{}{}", first.to_ascii_uppercase(), letters.as_str())?;
            }
        }
        write!(f, "({})", self.id)
    }
}

impl<K: KeyKind> SecretKey<K> {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let digest = Sha256::digest([K::ID_LABEL, &bytes].concat());
        SecretKey {
            id: hex::encode(&digest[..8]),
            key: Zeroizing::new(bytes),
            kind: PhantomData,
        }
    }

    /// A fresh random key.
    ///
    /// # Errors
    /// When the operating system has no randomness to give.
    pub fn generate() -> Result<Self, String> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut_slice()).map_err(|e| e.to_string())?;
        Ok(Self::from_bytes(*bytes))
    }

    /// Parses a key written as 64 hexadecimal digits or as standard base64 of 32 bytes
    /// (surrounding whitespace ignored).
    ///
    /// # Errors
    /// A sentence saying what is wrong (never the key itself).
    pub fn parse(text: &str) -> Result<Self, String> {
        let name = K::NAME;
        let text = text.trim();
        let bytes = Zeroizing::new(
            if text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()) {
                hex::decode(text).map_err(|_| format!("the {name} is not valid hexadecimal"))?
            } else {
                STANDARD
                    .decode(text)
                    .map_err(|_| format!("the {name} is neither 64 hex digits nor base64"))?
            },
        );
        let array: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            format!(
                "the {name} must be 32 bytes, not {}{}",
                bytes.len(),
                K::HINT
            )
        })?;
        Ok(Self::from_bytes(array))
    }

    /// The key as base64, for writing a generated key to its file.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.key.as_slice())
    }

    /// A short public identifier of the key (not secret): which key signed or wrapped what is
    /// stored.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The secret bytes.
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.key
    }
}

#[cfg(test)]
mod tests {
    use crate::MasterKey;
    use crate::anchor::AnchorKey;

    #[test]
    fn a_key_shows_only_its_kind_and_id() {
        let master = MasterKey::from_bytes([1; 32]);
        assert_eq!(format!("{master:?}"), format!("MasterKey({})", master.id()));
        let anchor = AnchorKey::from_bytes([1; 32]);
        assert_eq!(format!("{anchor:?}"), format!("AnchorKey({})", anchor.id()));
        assert_ne!(master.id(), anchor.id(), "each kind derives its id apart");
    }
}
