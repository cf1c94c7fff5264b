//! SMTP AUTH against the accounts in the store (argon2id). Successful logins are
//! remembered for `store.account_cache_ms` (by a SHA-256 of user and password, never the
//! password), so a client that logs in for every message costs one argon2 a while, not one
//! per message; a revoked login stops working within that time.

use std::sync::Arc;

use async_trait::async_trait;
use sluice_core::AccountPolicy;
use sluice_smtp::Authenticator;
use sluice_store::Store;
use sluice_store::ttl_cache::TtlCache;

pub struct StoreAuthenticator {
    store: Arc<dyn Store>,
    trusted_account: String,
    /// Verified against when the user does not exist, so both cases take as long.
    dummy_hash: String,
    verified: TtlCache<String, AccountPolicy>,
    trusted: TtlCache<(), Option<AccountPolicy>>,
}

impl StoreAuthenticator {
    pub fn new(
        store: Arc<dyn Store>,
        trusted_account: String,
        cache_ttl: std::time::Duration,
    ) -> anyhow::Result<Self> {
        Ok(StoreAuthenticator {
            store,
            trusted_account,
            dummy_hash: crate::account::hash_password("no such user")?,
            verified: TtlCache::new(cache_ttl),
            trusted: TtlCache::new(cache_ttl),
        })
    }
}

fn login_key(username: &str, password: &str) -> String {
    sluice_core::secret::hash_token(&format!("{username}\0{password}"))
}

#[async_trait]
impl Authenticator for StoreAuthenticator {
    async fn authenticate(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<AccountPolicy>, String> {
        let key = login_key(username, password);
        if let Some(policy) = self.verified.get(&key) {
            return Ok(Some(policy));
        }
        // An SMTP credential of the account, else the account's own login.
        let credential = self
            .store
            .smtp_credential_by_username(username)
            .await
            .map_err(|e| e.to_string())?
            .filter(|c| c.revoked_at.is_none());
        let (hash, account) = match credential {
            Some(credential) => (
                credential.password_hash,
                self.store
                    .account(credential.account_id)
                    .await
                    .map_err(|e| e.to_string())?,
            ),
            None => match self
                .store
                .account_by_email(username)
                .await
                .map_err(|e| e.to_string())?
            {
                Some(account) => (account.password_hash.clone(), Some(account)),
                None => (self.dummy_hash.clone(), None),
            },
        };
        let account = account.filter(|a| a.is_active());
        let password = password.to_string();
        let ok = sluice_http::password::verify(hash, password).await;
        let policy = account.filter(|_| ok).map(|account| account.policy());
        if let Some(policy) = &policy {
            self.verified.put(key, policy.clone());
        }
        Ok(policy)
    }

    async fn trusted_policy(&self) -> Result<Option<AccountPolicy>, String> {
        if let Some(policy) = self.trusted.get(&()) {
            return Ok(policy);
        }
        let account = self
            .store
            .account_by_email(&self.trusted_account)
            .await
            .map_err(|e| e.to_string())?;
        let policy = account.filter(|a| a.is_active()).map(|a| a.policy());
        self.trusted.put((), policy.clone());
        Ok(policy)
    }
}
