//! Accounts from the command line: password hashing and the first API key.

use anyhow::Context;
use argon2::Argon2;
use argon2::password_hash::PasswordHasher;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sluice_store::{NewAccount, Store};

pub struct Created {
    pub id: i64,
    pub api_key: String,
}

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    Ok(Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| anyhow::anyhow!("hashing password: {e}"))?
        .to_string())
}

/// A new API key: 32 random bytes, shown once; only its SHA-256 is stored.
fn new_api_key() -> (String, String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let key = format!("sk_{}", hex::encode(bytes));
    let prefix = key[..11].to_string();
    let hash = hex::encode(Sha256::digest(key.as_bytes()));
    (key, prefix, hash)
}

pub async fn create(
    store: &dyn Store,
    name: &str,
    email: &str,
    password: &str,
    domains: &[String],
) -> anyhow::Result<Created> {
    if sluice_core::validate_mailbox(email).is_err() {
        anyhow::bail!("--email must be an email address");
    }
    if password.is_empty() {
        anyhow::bail!("--password must not be empty");
    }
    let now = now_ms();
    let account = store
        .create_account(
            NewAccount {
                name: name.to_string(),
                email: email.to_string(),
                password_hash: hash_password(password)?,
                allowed_domains: domains.to_vec(),
            },
            now,
        )
        .await
        .context("creating the account")?;
    let (api_key, prefix, hash) = new_api_key();
    store
        .add_api_key(account.id, &prefix, &hash, now)
        .await
        .context("storing the API key")?;
    Ok(Created {
        id: account.id,
        api_key,
    })
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
