//! Secrets at rest: AES-256-GCM with a random 96-bit nonce per value, and the
//! record and field as associated data, so that a sealed value copied into another
//! row or column fails to open instead of leaking there.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;

use crate::StoreError;

const VERSION: &str = "v1";

/// The store key. Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct Cipher {
    aead: Aes256Gcm,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(redacted)")
    }
}

impl Cipher {
    /// A new random key, as its base64 text (what `secret.key` holds).
    pub fn generate_key() -> String {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        B64.encode(key)
    }

    /// The cipher for a key in base64 text (32 bytes).
    pub fn from_base64(text: &str) -> Result<Cipher, String> {
        let bytes = B64
            .decode(text.trim())
            .map_err(|e| format!("the secret key is not valid base64: {e}"))?;
        let aead = Aes256Gcm::new_from_slice(&bytes).map_err(|_| {
            format!(
                "the secret key must be 32 bytes (44 base64 characters), got {} bytes",
                bytes.len()
            )
        })?;
        Ok(Cipher { aead })
    }

    /// Seals `plaintext` for the field `context` (e.g. `mailboxes.password:<id>`).
    pub fn seal(&self, context: &str, plaintext: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .aead
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{VERSION}:{}", B64.encode(out))
    }

    /// Opens a value sealed by [`Cipher::seal`] for the same `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<String, StoreError> {
        let fail = |why: &str| StoreError::Crypto(format!("{context}: {why}"));
        let body = sealed
            .strip_prefix("v1:")
            .ok_or_else(|| fail("unknown format"))?;
        let bytes = B64.decode(body).map_err(|_| fail("not base64"))?;
        if bytes.len() < 12 + 16 {
            return Err(fail("too short"));
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let plain = self
            .aead
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| fail("wrong key or tampered value"))?;
        String::from_utf8(plain).map_err(|_| fail("not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip_and_bind_the_context() {
        let c = Cipher::from_base64(&Cipher::generate_key()).unwrap();
        let sealed = c.seal("mailboxes.password:1", "hunter2");
        assert!(!sealed.contains("hunter2"));
        assert_ne!(
            sealed,
            c.seal("mailboxes.password:1", "hunter2"),
            "nonces differ"
        );
        assert_eq!(c.open("mailboxes.password:1", &sealed).unwrap(), "hunter2");
        assert!(
            c.open("mailboxes.password:2", &sealed).is_err(),
            "moved to another row"
        );
        let other = Cipher::from_base64(&Cipher::generate_key()).unwrap();
        assert!(
            other.open("mailboxes.password:1", &sealed).is_err(),
            "another key"
        );
    }

    #[test]
    fn bad_keys_are_explained() {
        assert!(
            Cipher::from_base64("not base64!")
                .unwrap_err()
                .contains("base64")
        );
        assert!(
            Cipher::from_base64("AAAA")
                .unwrap_err()
                .contains("32 bytes")
        );
    }
}
