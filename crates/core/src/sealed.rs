//! Secrets at rest: AES-256-GCM under a master key that never enters the database.
//! Sealed text is `v1.` + base64(nonce ‖ ciphertext ‖ tag); the nonce comes in as an
//! argument (96 random bits per seal).
//!
//! Message bodies (`storage.encrypt_bodies`) are sealed as bytes: [`BODY_MAGIC`], the
//! 8-byte id of the key, the nonce, then ciphertext ‖ tag. A body without the magic is
//! stored in the clear (SMTP refuses NUL in mail, so no real message starts with it).
//! After a key rotation the old keys stay listed as previous keys: whatever they sealed
//! still opens, and everything sealed from then on uses the current key.
//!
//! Bodies written in chunks are sealed under a per-body data key
//! ([`crate::sealed_chunks::ChunkCipher`]); the data key itself is wrapped in the body
//! format above, so rotating the master key re-wraps 32 bytes and leaves the chunks alone.

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
pub struct MasterKey([u8; 32], Vec<[u8; 32]>);

/// How a sealed body begins.
pub const BODY_MAGIC: &[u8; 5] = b"\0SLB1";
const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

fn key_id(key: &[u8; 32]) -> [u8; KEY_ID_LEN] {
    use sha2::Digest;
    let digest = sha2::Sha256::digest([b"sluice body key id".as_slice(), key].concat());
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&digest[..KEY_ID_LEN]);
    id
}

/// What a stored body is, as far as the key ring can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyState {
    Clear,
    /// Sealed under the current key.
    Current,
    /// Sealed under a previous key (or one not configured at all).
    OtherKey,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(********)")
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        MasterKey(bytes, Vec::new())
    }

    /// Keys replaced by this one: what they sealed still opens.
    pub fn with_previous(mut self, previous: Vec<MasterKey>) -> Self {
        self.1 = previous.into_iter().map(|key| key.0).collect();
        self
    }

    fn ring(&self) -> impl Iterator<Item = &[u8; 32]> {
        std::iter::once(&self.0).chain(self.1.iter())
    }

    pub fn from_hex(text: &str) -> Result<Self, SealError> {
        let bytes = hex::decode(text.trim()).map_err(|_| SealError::BadKey)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| SealError::BadKey)?;
        Ok(MasterKey::from_bytes(bytes))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&self.0.into())
    }

    /// A message body sealed under the current key.
    pub fn seal_body(&self, plaintext: &[u8], nonce: [u8; NONCE_LEN]) -> Vec<u8> {
        let ciphertext = self
            .cipher()
            .encrypt(&Nonce::from(nonce), plaintext)
            .expect("AES-GCM encrypts any length we store");
        let mut out =
            Vec::with_capacity(BODY_MAGIC.len() + KEY_ID_LEN + NONCE_LEN + ciphertext.len());
        out.extend_from_slice(BODY_MAGIC);
        out.extend_from_slice(&key_id(&self.0));
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn body_state(stored: &[u8], key: Option<&MasterKey>) -> BodyState {
        match stored.strip_prefix(BODY_MAGIC.as_slice()) {
            None => BodyState::Clear,
            Some(rest) if key.is_some_and(|k| rest.starts_with(&key_id(&k.0))) => {
                BodyState::Current
            }
            Some(_) => BodyState::OtherKey,
        }
    }

    /// A stored body as it was handed in: opened with whichever key of the ring sealed it,
    /// or as it is when it was stored in the clear.
    pub fn open_body(&self, stored: Vec<u8>) -> Result<Vec<u8>, SealError> {
        match stored.strip_prefix(BODY_MAGIC.as_slice()) {
            Some(rest) => self.open_after_magic(rest),
            None => Ok(stored),
        }
    }

    /// A per-body data key (see [`crate::sealed_chunks::ChunkCipher`]) sealed under the
    /// current key, in the body format: any key of the ring unwraps it, and
    /// [`MasterKey::body_state`] tells whether `sluice keys rotate` should wrap it again
    /// (`OtherKey`) without touching the chunks it encrypts.
    pub fn wrap_data_key(&self, data_key: &[u8; 32], nonce: [u8; NONCE_LEN]) -> Vec<u8> {
        self.seal_body(data_key, nonce)
    }

    /// `sluice keys rotate`: a data key wrapped under a previous key of the ring, wrapped
    /// again under the current one; `None` when the current key wraps it already.
    pub fn rewrap_data_key(
        &self,
        wrapped: &[u8],
        nonce: [u8; NONCE_LEN],
    ) -> Result<Option<Vec<u8>>, SealError> {
        if MasterKey::body_state(wrapped, Some(self)) != BodyState::OtherKey {
            return Ok(None);
        }
        let data_key = self.unwrap_data_key(wrapped)?;
        Ok(Some(self.wrap_data_key(&data_key, nonce)))
    }

    /// The data key [`MasterKey::wrap_data_key`] sealed, under whichever key of the ring
    /// sealed it. Unlike [`MasterKey::open_body`], bytes without the magic are refused:
    /// a data key is never stored in the clear.
    pub fn unwrap_data_key(&self, wrapped: &[u8]) -> Result<[u8; 32], SealError> {
        let rest = wrapped
            .strip_prefix(BODY_MAGIC.as_slice())
            .ok_or(SealError::Malformed)?;
        let plain = self.open_after_magic(rest)?;
        plain.try_into().map_err(|_| SealError::Malformed)
    }

    /// Key id ‖ nonce ‖ ciphertext ‖ tag, opened with the key of the ring the id names.
    fn open_after_magic(&self, rest: &[u8]) -> Result<Vec<u8>, SealError> {
        if rest.len() < KEY_ID_LEN + NONCE_LEN + TAG_LEN {
            return Err(SealError::Malformed);
        }
        let (id, rest) = rest.split_at(KEY_ID_LEN);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError::Malformed)?;
        let key = self
            .ring()
            .find(|key| key_id(key).as_slice() == id)
            .ok_or(SealError::WrongKey)?;
        Aes256Gcm::new(&(*key).into())
            .decrypt(&Nonce::from(nonce), ciphertext)
            .map_err(|_| SealError::WrongKey)
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
        // The tag tells a wrong key apart, so each key of the ring can simply be tried.
        self.ring()
            .find_map(|key| {
                Aes256Gcm::new(&(*key).into())
                    .decrypt(&Nonce::from(nonce), ciphertext)
                    .ok()
            })
            .ok_or(SealError::WrongKey)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rewrap_moves_a_data_key_to_the_current_key_once() {
        let old = MasterKey::from_bytes([1; 32]);
        let data_key = [9u8; 32];
        let wrapped = old.wrap_data_key(&data_key, [0; 12]);
        assert_eq!(old.rewrap_data_key(&wrapped, [1; 12]).unwrap(), None);
        let ring = MasterKey::from_bytes([2; 32]).with_previous(vec![old]);
        let moved = ring.rewrap_data_key(&wrapped, [1; 12]).unwrap().unwrap();
        assert_eq!(ring.rewrap_data_key(&moved, [2; 12]).unwrap(), None);
        let current_only = MasterKey::from_bytes([2; 32]);
        assert_eq!(current_only.unwrap_data_key(&moved).unwrap(), data_key);
        assert!(current_only.unwrap_data_key(&wrapped).is_err());
    }

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

    #[test]
    fn bodies_seal_under_the_current_key_and_open_under_any_key_of_the_ring() {
        let old = MasterKey::from_bytes([1u8; 32]);
        let body = b"Subject: hi\r\n\r\nsecret body text\r\n".to_vec();
        let sealed = old.seal_body(&body, [7u8; 12]);
        assert!(sealed.starts_with(BODY_MAGIC));
        assert!(!sealed.windows(11).any(|w| w == b"secret body"));
        assert_eq!(old.open_body(sealed.clone()).unwrap(), body);
        assert_eq!(
            MasterKey::body_state(&sealed, Some(&old)),
            BodyState::Current
        );
        // Rotated: the new key opens what the old one sealed only with the old one listed.
        let new = MasterKey::from_bytes([2u8; 32]);
        assert_eq!(new.open_body(sealed.clone()), Err(SealError::WrongKey));
        let ring = new.clone().with_previous(vec![old.clone()]);
        assert_eq!(ring.open_body(sealed.clone()).unwrap(), body);
        assert_eq!(
            MasterKey::body_state(&sealed, Some(&ring)),
            BodyState::OtherKey
        );
        assert_eq!(MasterKey::body_state(&body, Some(&ring)), BodyState::Clear);
        // Secrets sealed by the old key open through the ring too; new ones use the new key.
        let secret = old.seal(b"provider-key", [3u8; 12]);
        assert_eq!(ring.open(&secret).unwrap(), b"provider-key");
        assert_eq!(new.open(&ring.seal(b"x", [4u8; 12])).unwrap(), b"x");
        // A clear body passes through; a tampered or truncated one is refused.
        assert_eq!(ring.open_body(body.clone()).unwrap(), body);
        let mut tampered = ring.seal_body(&body, [5u8; 12]);
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(ring.open_body(tampered), Err(SealError::WrongKey));
        assert_eq!(
            ring.open_body(BODY_MAGIC.to_vec()),
            Err(SealError::Malformed)
        );
    }

    #[test]
    fn data_keys_wrap_under_the_current_key_and_unwrap_under_any_key_of_the_ring() {
        let old = MasterKey::from_bytes([1u8; 32]);
        let data_key = [0x5au8; 32];
        let wrapped = old.wrap_data_key(&data_key, [7u8; 12]);
        assert!(wrapped.starts_with(BODY_MAGIC));
        assert!(!wrapped.windows(8).any(|w| w == [0x5a; 8]));
        assert_eq!(old.unwrap_data_key(&wrapped), Ok(data_key));
        assert_eq!(
            MasterKey::body_state(&wrapped, Some(&old)),
            BodyState::Current
        );

        let new = MasterKey::from_bytes([2u8; 32]);
        assert_eq!(new.unwrap_data_key(&wrapped), Err(SealError::WrongKey));
        let ring = new.clone().with_previous(vec![old.clone()]);
        assert_eq!(ring.unwrap_data_key(&wrapped), Ok(data_key));
        // Sealed under a previous key: what `keys rotate` looks for to re-wrap it.
        assert_eq!(
            MasterKey::body_state(&wrapped, Some(&ring)),
            BodyState::OtherKey
        );
        let rewrapped = ring.wrap_data_key(&ring.unwrap_data_key(&wrapped).unwrap(), [8u8; 12]);
        assert_eq!(
            MasterKey::body_state(&rewrapped, Some(&ring)),
            BodyState::Current
        );
        assert_eq!(new.unwrap_data_key(&rewrapped), Ok(data_key));
    }

    #[test]
    fn unwrapping_refuses_clear_bytes_wrong_lengths_and_tampering() {
        let key = MasterKey::from_bytes([1u8; 32]);
        // 32 clear bytes are not a wrapped key, though open_body would pass them through.
        assert_eq!(key.unwrap_data_key(&[0x5a; 32]), Err(SealError::Malformed));
        assert_eq!(key.unwrap_data_key(b""), Err(SealError::Malformed));
        assert_eq!(key.unwrap_data_key(BODY_MAGIC), Err(SealError::Malformed));
        // A sealed body that is not 32 bytes long does not pass for a data key.
        let short = key.seal_body(&[0x5a; 31], [7u8; 12]);
        assert_eq!(key.unwrap_data_key(&short), Err(SealError::Malformed));
        let mut tampered = key.wrap_data_key(&[0x5a; 32], [7u8; 12]);
        let middle = tampered.len() / 2;
        tampered[middle] ^= 0x01;
        assert_eq!(key.unwrap_data_key(&tampered), Err(SealError::WrongKey));
    }
}
