//! Secrets at rest: AES-256-GCM under a master key that never enters the database.
//! Sealed text is `v1.` + base64(nonce ‖ ciphertext ‖ tag); the nonce comes in as an
//! argument (96 random bits per seal).

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("the master key must be 64 hex characters (32 bytes)")]
    BadKey,
    #[error("sealed data is malformed")]
    Malformed,
    #[error("sealed data does not open with this key")]
    WrongKey,
}

#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(********)")
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        MasterKey(bytes)
    }

    pub fn from_hex(text: &str) -> Result<Self, SealError> {
        let bytes = hex::decode(text.trim()).map_err(|_| SealError::BadKey)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| SealError::BadKey)?;
        Ok(MasterKey(bytes))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&self.0.into())
    }

    pub fn seal(&self, plaintext: &[u8], nonce: [u8; 12]) -> String {
        let nonce_value = Nonce::from(nonce);
        let ciphertext = self
            .cipher()
            .encrypt(&nonce_value, plaintext)
            .expect("AES-GCM encrypts any length we store");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        format!("v1.{}", STANDARD.encode(out))
    }

    pub fn open(&self, sealed: &str) -> Result<Vec<u8>, SealError> {
        let encoded = sealed.strip_prefix("v1.").ok_or(SealError::Malformed)?;
        let raw = STANDARD.decode(encoded).map_err(|_| SealError::Malformed)?;
        if raw.len() < 12 + 16 {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = raw.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| SealError::Malformed)?;
        self.cipher()
            .decrypt(&Nonce::from(nonce), ciphertext)
            .map_err(|_| SealError::WrongKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_refuse() {
        let key = MasterKey::from_bytes([1u8; 32]);
        let sealed = key.seal(b"api-key-123", [2u8; 12]);
        assert!(sealed.starts_with("v1.") && !sealed.contains("api-key-123"));
        assert_eq!(key.open(&sealed).unwrap(), b"api-key-123");
        // Same plaintext, other nonce: other ciphertext.
        assert_ne!(key.seal(b"api-key-123", [3u8; 12]), sealed);
        let other = MasterKey::from_bytes([9u8; 32]);
        assert_eq!(other.open(&sealed), Err(SealError::WrongKey));
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(key.open(std::str::from_utf8(&tampered).unwrap()).is_err());
        assert_eq!(key.open("v0.xyz"), Err(SealError::Malformed));
        assert_eq!(MasterKey::from_hex(&key.to_hex()).unwrap().0, key.0);
        assert_eq!(MasterKey::from_hex("abcd").unwrap_err(), SealError::BadKey);
        assert!(!format!("{key:?}").contains("0101"));
    }
}
