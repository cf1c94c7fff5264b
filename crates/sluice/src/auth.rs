//! SMTP AUTH against the accounts in the store (argon2id). Successful logins are
//! remembered for `store.account_cache_ms` (by a SHA-256 of user and password, never the
//! password), so a client that logs in for every message costs one argon2 a while, not one
//! per message; a revoked login stops working within that time. After that time the login
//! is read from the store again, but a password already found to match the very hash
//! stored now is not run through argon2 again (the check is a pure function of hash and
//! password), and concurrent logins of one user and password wait for one check rather
//! than each running their own (`PasswordChecks`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sluice_core::{AccountPolicy, AccountStatus};
use sluice_smtp::{Authenticator, TrustedAccount};
use sluice_store::Store;
use sluice_store::ttl_cache::TtlCache;

pub struct StoreAuthenticator {
    store: Arc<dyn Store>,
    trusted_account: String,
    /// Verified against when the user does not exist, so both cases take as long.
    dummy_hash: String,
    verified: TtlCache<String, AccountPolicy>,
    trusted: TtlCache<(), TrustedAccount>,
    checks: PasswordChecks,
}

/// argon2 checks of logins, remembered: a login key (SHA-256 of user and password) found
/// to match a stored hash is taken as matching that same hash for a while without running
/// argon2 again, and concurrent checks of one login key wait for one run.
pub struct PasswordChecks {
    /// Login key → the stored hash its password matched.
    matched: TtlCache<String, String>,
    /// Login key → the lock its argon2 check is made under.
    checking: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// How many times argon2 ran.
    argon2_runs: AtomicU64,
}

impl PasswordChecks {
    pub fn new(remember_for: Duration) -> Self {
        PasswordChecks {
            matched: TtlCache::new(remember_for),
            checking: Mutex::new(HashMap::new()),
            argon2_runs: AtomicU64::new(0),
        }
    }

    /// Whether `password` matches `hash`.
    pub async fn matches(&self, key: &str, hash: String, password: &str) -> bool {
        if self.matched.get(key).as_ref() == Some(&hash) {
            return true;
        }
        let gate = self
            .checking
            .lock()
            .expect("login gate lock")
            .entry(key.to_string())
            .or_default()
            .clone();
        let ok = {
            let _turn = gate.lock().await;
            if self.matched.get(key).as_ref() == Some(&hash) {
                true
            } else {
                self.argon2_runs.fetch_add(1, Ordering::Relaxed);
                let ok = sluice_api::password::verify(hash.clone(), password.to_string()).await;
                if ok {
                    self.matched.put(key.to_string(), hash);
                }
                ok
            }
        };
        let mut checking = self.checking.lock().expect("login gate lock");
        // The map's and this call's: nobody else waits on this gate.
        if Arc::strong_count(&gate) == 2 {
            checking.remove(key);
        }
        ok
    }
}

/// How long a password found to match a stored hash is taken as matching it (while that
/// hash stays the stored one).
const MATCHED_FOR: Duration = Duration::from_secs(600);

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
            checks: PasswordChecks::new(MATCHED_FOR),
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
        let sandboxed_login = credential.as_ref().is_some_and(|c| c.sandbox);
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
        let ok = self.checks.matches(&key, hash, password).await;
        let policy = account.filter(|_| ok).map(|account| AccountPolicy {
            sandbox: sandboxed_login,
            chaos: account.chaos_for(account.sandbox || sandboxed_login),
            ..account.policy()
        });
        if let Some(policy) = &policy {
            self.verified.put(key, policy.clone());
        }
        Ok(policy)
    }

    async fn trusted_policy(&self) -> Result<TrustedAccount, String> {
        if let Some(trusted) = self.trusted.get(&()) {
            return Ok(trusted);
        }
        let account = self
            .store
            .account_by_email(&self.trusted_account)
            .await
            .map_err(|e| e.to_string())?;
        let trusted = match account {
            None => TrustedAccount::Missing,
            Some(account) => match account.state() {
                AccountStatus::Active => TrustedAccount::Active(account.policy()),
                AccountStatus::Suspended => TrustedAccount::Suspended,
                AccountStatus::Deleted => TrustedAccount::Deleted,
            },
        };
        self.trusted.put((), trusted.clone());
        Ok(trusted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_remembered_match_holds_only_for_the_same_hash() {
        let checks = PasswordChecks::new(Duration::from_secs(600));
        let first = crate::account::hash_password("right-password").unwrap();
        let key = login_key("app", "right-password");
        assert!(!checks.matches(&key, first.clone(), "wrong-password").await);
        assert!(checks.matches(&key, first.clone(), "right-password").await);
        assert!(checks.matches(&key, first.clone(), "right-password").await);
        assert_eq!(checks.argon2_runs.load(Ordering::Relaxed), 2);
        // The password changed: the stored hash is another one, so the old password is
        // checked again, and refused.
        let second = crate::account::hash_password("new-password").unwrap();
        assert!(!checks.matches(&key, second.clone(), "right-password").await);
        // Nor does remembering let a wrong password through under the remembered key's hash.
        let other = login_key("app", "guess");
        assert!(!checks.matches(&other, first, "guess").await);
        assert!(checks.checking.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn concurrent_logins_share_one_check() {
        let checks = Arc::new(PasswordChecks::new(Duration::from_secs(600)));
        let hash = crate::account::hash_password("pw-of-many").unwrap();
        let key = login_key("many", "pw-of-many");
        let logins: Vec<_> = (0..8)
            .map(|_| {
                let (checks, hash, key) = (checks.clone(), hash.clone(), key.clone());
                tokio::spawn(async move { checks.matches(&key, hash, "pw-of-many").await })
            })
            .collect();
        for login in logins {
            assert!(login.await.unwrap());
        }
        assert_eq!(checks.matched.get(&key), Some(hash));
        assert_eq!(checks.argon2_runs.load(Ordering::Relaxed), 1);
        assert!(checks.checking.lock().unwrap().is_empty());
    }
}
