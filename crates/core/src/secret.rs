//! Password hashing (argon2id) and the hashes of bearer secrets (API keys, refresh tokens).
//! Randomness for new secrets comes in as an argument.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
#[error("hashing the password failed: {0}")]
pub struct HashError(String);

/// An argon2id PHC string (salt drawn by argon2 from the OS).
pub fn hash_password(password: &str) -> Result<String, HashError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches the PHC string `hash`; a malformed hash matches nothing.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// SHA-256 hex of a high-entropy bearer secret: what the store keeps instead of it.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A bearer secret made from 32 random bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct NewSecret {
    /// Shown once, never stored.
    pub value: String,
    /// Enough of it to recognise it in a list.
    pub prefix: String,
    pub hash: String,
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSecret")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// `kind` is the visible prefix: `sk` for API keys, `rt` for refresh tokens.
pub fn new_secret(kind: &str, random: [u8; 32]) -> NewSecret {
    let value = format!("{kind}_{}", hex::encode(random));
    NewSecret {
        prefix: value[..kind.len() + 9].to_string(),
        hash: hash_token(&value),
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_passwords() {
        let key = new_secret("sk", [7u8; 32]);
        assert_eq!(key.value.len(), 3 + 64);
        assert!(key.value.starts_with(&key.prefix) && key.prefix.len() == 11);
        assert_eq!(key.hash, hash_token(&key.value));
        assert!(!format!("{key:?}").contains(&key.value));
        let hash = hash_password("pw").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "pw"));
        assert!(!verify_password(&hash, "other"));
        assert!(!verify_password("not a hash", "pw"));
    }
}
