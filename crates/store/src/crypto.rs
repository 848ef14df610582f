//! Business tokens at rest: AES-256-GCM, bound to their tenant.
//!
//! Stored form (the value of `{prefix}token:{<waba_id>}`), standard base64 of:
//!
//! ```text
//! [version: 1 byte = 0x01][key id: 4 bytes][nonce: 12 bytes][ciphertext || 16-byte tag]
//! ```
//!
//! - A fresh random 96-bit nonce per write (from the OS RNG).
//! - Associated data = the WABA id, so a ciphertext copied under another tenant's key fails
//!   to decrypt instead of handing out the wrong customer's token.
//! - The key id is the first 4 bytes of SHA-256 of the key: it names the key a token was
//!   written with, so a later `tenants rekey` can tell old ciphertexts from new ones, and a
//!   wrong `WA_TOKEN_KEY` is reported as such instead of as tampering.
//!
//! Rotation: `WA_TOKEN_KEY` may list several keys, comma-separated. The first encrypts; every
//! one decrypts, chosen by the key id in front of the ciphertext. Deploy `new,old`, run
//! `tenants rekey` (which rewrites every token under `new`), then drop `old`: no token is
//! unreadable at any point.
//!
//! Plaintext only ever lives in [`SecretString`]s; nothing here logs.

use std::fmt;

use aes_gcm::{
    Aes256Gcm, KeyInit,
    aead::{Aead, Generate, Nonce, Payload},
};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::{Result, StoreError};

const VERSION: u8 = 1;
const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;

/// The AES-256 key that encrypts business tokens at rest (`WA_TOKEN_KEY`), with the older
/// keys still accepted for decryption during a rotation.
///
/// Cheap to clone. Its `Debug` output shows only key ids, never a key.
#[derive(Clone)]
pub struct TokenKey {
    cipher: Aes256Gcm,
    id: [u8; KEY_ID_LEN],
    previous: Vec<TokenKey>,
}

impl TokenKey {
    /// Decodes `WA_TOKEN_KEY`: one key, or several comma-separated (the first encrypts, all
    /// decrypt), each standard base64 of 32 bytes.
    ///
    /// # Errors
    ///
    /// [`StoreError::BadKey`] if the list is empty or any key is unusable (its position is
    /// named, never its value).
    pub fn from_base64_list(encoded: &str) -> Result<Self> {
        let mut keys = encoded
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .enumerate()
            .map(|(i, k)| {
                Self::from_base64(k).map_err(|e| match e {
                    StoreError::BadKey(m) => StoreError::BadKey(format!("key {}: {m}", i + 1)),
                    other => other,
                })
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter();
        let mut primary = keys
            .next()
            .ok_or_else(|| StoreError::BadKey("WA_TOKEN_KEY holds no key".into()))?;
        primary.previous = keys.collect();
        Ok(primary)
    }

    /// Whether `stored` was written under the encrypting (first) key: `tenants rekey` skips it.
    #[must_use]
    pub fn is_current(&self, stored: &str) -> bool {
        STANDARD
            .decode(stored)
            .is_ok_and(|raw| raw.get(1..=KEY_ID_LEN) == Some(&self.id[..]))
    }

    /// The ids of every key, the encrypting one first. Safe to log.
    #[must_use]
    pub fn ids(&self) -> Vec<String> {
        std::iter::once(self.id())
            .chain(self.previous.iter().map(TokenKey::id))
            .collect()
    }

    /// Decodes a key given as standard base64 of exactly 32 bytes (what
    /// `openssl rand -base64 32` prints). Surrounding whitespace, such as the newline at the
    /// end of a `WA_TOKEN_KEY_FILE`, is ignored.
    ///
    /// # Errors
    ///
    /// [`StoreError::BadKey`] if the text is not base64 or does not decode to 32 bytes. The
    /// message never repeats the key.
    pub fn from_base64(encoded: &str) -> Result<Self> {
        let bytes = STANDARD.decode(encoded.trim()).map_err(|e| {
            StoreError::BadKey(format!(
                "WA_TOKEN_KEY is not valid base64 ({e}); generate one with `openssl rand -base64 32`"
            ))
        })?;
        Self::from_bytes(&bytes)
    }

    /// Builds a key from its 32 raw bytes.
    ///
    /// # Errors
    ///
    /// [`StoreError::BadKey`] if `bytes` is not exactly 32 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let cipher = Aes256Gcm::new_from_slice(bytes).map_err(|_| {
            StoreError::BadKey(format!(
                "WA_TOKEN_KEY must decode to 32 bytes (AES-256), got {}; generate one with \
                 `openssl rand -base64 32`",
                bytes.len()
            ))
        })?;
        let digest = Sha256::digest(bytes);
        let mut id = [0; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        Ok(Self {
            cipher,
            id,
            previous: Vec::new(),
        })
    }

    /// The key id written in front of every ciphertext: lowercase hex of the first 4 bytes
    /// of SHA-256 of the key. Safe to log.
    #[must_use]
    pub fn id(&self) -> String {
        hex_lower(&self.id)
    }

    /// Encrypts `token` for tenant `waba_id`, returning the stored form.
    ///
    /// # Errors
    ///
    /// [`StoreError::Crypto`] if the cipher refuses the input (only for absurd lengths).
    pub fn seal(&self, waba_id: &str, token: &SecretString) -> Result<String> {
        let nonce = Nonce::<Aes256Gcm>::generate();
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: token.expose_secret().as_bytes(),
                    aad: waba_id.as_bytes(),
                },
            )
            .map_err(|_| StoreError::Crypto("encryption failed".into()))?;
        let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(STANDARD.encode(out))
    }

    /// Decrypts a stored form written by [`TokenKey::seal`] for the same `waba_id`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Crypto`] if the text is not a version-1 ciphertext, was written under
    /// another key, belongs to another tenant, or was altered.
    pub fn open(&self, waba_id: &str, stored: &str) -> Result<SecretString> {
        let raw = STANDARD
            .decode(stored)
            .map_err(|_| StoreError::Crypto("stored token is not base64".into()))?;
        if raw.len() < HEADER_LEN + TAG_LEN {
            return Err(StoreError::Crypto("stored token is too short".into()));
        }
        if raw[0] != VERSION {
            return Err(StoreError::Crypto(format!(
                "unknown token format version {}",
                raw[0]
            )));
        }
        let key_id = &raw[1..=KEY_ID_LEN];
        let Some(key) = std::iter::once(self)
            .chain(&self.previous)
            .find(|k| k.id == key_id)
        else {
            return Err(StoreError::Crypto(format!(
                "token was encrypted under key id {}, but WA_TOKEN_KEY has id(s) {}",
                hex_lower(key_id),
                self.ids().join(", ")
            )));
        };
        let nonce = Nonce::<Aes256Gcm>::try_from(&raw[1 + KEY_ID_LEN..HEADER_LEN])
            .map_err(|_| StoreError::Crypto("bad nonce".into()))?;
        let plain = key
            .cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: &raw[HEADER_LEN..],
                    aad: waba_id.as_bytes(),
                },
            )
            .map_err(|_| {
                StoreError::Crypto(format!(
                    "token for WABA {waba_id} failed authentication (altered, or copied from \
                     another tenant)"
                ))
            })?;
        let text = String::from_utf8(plain)
            .map_err(|_| StoreError::Crypto("decrypted token is not UTF-8".into()))?;
        Ok(SecretString::from(text))
    }
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKey")
            .field("ids", &self.ids())
            .finish_non_exhaustive()
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> TokenKey {
        TokenKey::from_bytes(&[byte; 32]).unwrap()
    }

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn round_trips() {
        let k = key(7);
        let sealed = k.seal("111", &secret("EAAG-token")).unwrap();
        assert_eq!(
            k.open("111", &sealed).unwrap().expose_secret(),
            "EAAG-token"
        );
    }

    #[test]
    fn fresh_nonce_every_write() {
        let k = key(7);
        let a = k.seal("111", &secret("same")).unwrap();
        let b = k.seal("111", &secret("same")).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn stored_form_has_version_and_key_id_and_no_plaintext() {
        let k = key(7);
        let sealed = k.seal("111", &secret("EAAG-plaintext")).unwrap();
        assert!(!sealed.contains("EAAG"));
        let raw = STANDARD.decode(&sealed).unwrap();
        assert_eq!(raw[0], VERSION);
        assert_eq!(hex_lower(&raw[1..5]), k.id());
        assert_eq!(raw.len(), HEADER_LEN + "EAAG-plaintext".len() + TAG_LEN);
    }

    #[test]
    fn bound_to_the_waba_id() {
        let k = key(7);
        let sealed = k.seal("111", &secret("t")).unwrap();
        let err = k.open("222", &sealed).unwrap_err();
        assert!(matches!(err, StoreError::Crypto(_)), "{err}");
    }

    #[test]
    fn wrong_key_is_named_as_such() {
        let sealed = key(7).seal("111", &secret("t")).unwrap();
        let err = key(8).open("111", &sealed).unwrap_err();
        assert!(err.to_string().contains("key id"), "{err}");
    }

    #[test]
    fn tampering_is_detected() {
        let k = key(7);
        let mut raw = STANDARD
            .decode(k.seal("111", &secret("token")).unwrap())
            .unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        assert!(k.open("111", &STANDARD.encode(&raw)).is_err());
        raw[last] ^= 1;
        raw[0] = 9;
        let err = k.open("111", &STANDARD.encode(&raw)).unwrap_err();
        assert!(err.to_string().contains("version"), "{err}");
        assert!(k.open("111", "not base64!").is_err());
        assert!(k.open("111", "AAAA").is_err());
    }

    #[test]
    fn from_base64_demands_32_bytes() {
        let good = STANDARD.encode([1u8; 32]);
        assert!(TokenKey::from_base64(&format!("{good}\n")).is_ok());
        let short = STANDARD.encode([1u8; 16]);
        let err = TokenKey::from_base64(&short).unwrap_err();
        assert!(matches!(err, StoreError::BadKey(_)));
        assert!(err.to_string().contains("32 bytes"), "{err}");
        assert!(err.to_string().contains("got 16"), "{err}");
        let err = TokenKey::from_base64("%%%").unwrap_err();
        assert!(matches!(err, StoreError::BadKey(_)), "{err}");
    }

    #[test]
    fn debug_hides_the_key() {
        let k = key(7);
        let shown = format!("{k:?}");
        assert!(shown.contains(&k.id()));
        assert!(!shown.contains("7, 7"));
    }
}
