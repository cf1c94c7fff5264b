//! SMTP AUTH against the accounts in the store (argon2id).

use std::sync::Arc;

use async_trait::async_trait;
use sluice_core::AccountPolicy;
use sluice_core::secret::verify_password;
use sluice_smtp::Authenticator;
use sluice_store::Store;

pub struct StoreAuthenticator {
    store: Arc<dyn Store>,
    trusted_account: String,
    /// Verified against when the user does not exist, so both cases take as long.
    dummy_hash: String,
}

impl StoreAuthenticator {
    pub fn new(store: Arc<dyn Store>, trusted_account: String) -> anyhow::Result<Self> {
        Ok(StoreAuthenticator {
            store,
            trusted_account,
            dummy_hash: crate::account::hash_password("no such user")?,
        })
    }
}

#[async_trait]
impl Authenticator for StoreAuthenticator {
    async fn authenticate(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<AccountPolicy>, String> {
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
        let ok = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
            .await
            .map_err(|e| e.to_string())?;
        Ok(account.filter(|_| ok).map(|account| account.policy()))
    }

    async fn trusted_policy(&self) -> Result<Option<AccountPolicy>, String> {
        let account = self
            .store
            .account_by_email(&self.trusted_account)
            .await
            .map_err(|e| e.to_string())?;
        Ok(account.filter(|a| a.is_active()).map(|a| a.policy()))
    }
}
