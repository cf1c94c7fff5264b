//! How message bodies are written and read: sealed under the master key when
//! `storage.encrypt_bodies` is on, opened with any key of the ring whatever the setting
//! (bodies stored before it changed stay readable).

use std::sync::Arc;

use sluice_core::sealed::{BodyState, MasterKey};

use crate::StoreError;

#[derive(Clone, Debug, Default)]
pub struct BodyCodec {
    key: Option<Arc<MasterKey>>,
    encrypt: bool,
}

impl BodyCodec {
    /// `key` opens sealed bodies; with `encrypt`, new bodies are sealed under it.
    pub fn new(key: Option<Arc<MasterKey>>, encrypt: bool) -> Self {
        BodyCodec {
            encrypt: encrypt && key.is_some(),
            key,
        }
    }

    /// The key that opens sealed bodies of the body store (SQLite's spool, PostgreSQL's
    /// chunk table), and whether new ones are sealed.
    pub fn spool_keys(&self) -> (Option<Arc<MasterKey>>, bool) {
        (self.key.clone(), self.encrypt)
    }

    /// The bytes to store for `body`: `None` stores it as it is.
    pub fn seal(&self, body: &[u8]) -> Option<Vec<u8>> {
        let key = self.key.as_ref().filter(|_| self.encrypt)?;
        Some(key.seal_body(body, rand::random()))
    }

    /// The body a stored value holds.
    pub fn open(&self, stored: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        if !stored.starts_with(sluice_core::sealed::BODY_MAGIC) {
            return Ok(stored);
        }
        let key = self.key.as_ref().ok_or_else(|| {
            StoreError::Corrupt("a sealed message body, and no master key to open it".into())
        })?;
        key.open_body(stored).map_err(|_| {
            StoreError::Corrupt("a message body that no configured master key opens".into())
        })
    }

    /// What `sluice keys rotate` writes instead of `stored`, if anything: bodies sealed under
    /// a previous key are sealed again under the current one; clear bodies are sealed when
    /// encryption is on. Empty (purged) bodies stay empty.
    pub fn reseal(&self, stored: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(key) = &self.key else {
            return Ok(None);
        };
        let rewrite = match MasterKey::body_state(stored, Some(key)) {
            BodyState::Current => false,
            BodyState::OtherKey => true,
            BodyState::Clear => self.encrypt && !stored.is_empty(),
        };
        if !rewrite {
            return Ok(None);
        }
        let plain = self.open(stored.to_vec())?;
        Ok(Some(key.seal_body(&plain, rand::random())))
    }
}
