//! Accounts, their status changes, API keys and SMTP logins (`AccountStore`).

use serde::{Deserialize, Serialize};
use sluice_core::{AccountId, AccountPolicy, AccountStatus};

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub name: String,
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub allowed_domains: Vec<String>,
}

#[derive(Clone)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub email: String,
    pub password_hash: String,
    pub allowed_domains: Vec<String>,
    pub status: AccountStatus,
    pub monthly_limit: i64,
    pub allow_any_local_part: bool,
    /// Sandbox mode: everything the account sends is captured, whatever the routing says.
    pub sandbox: bool,
    /// Captured mail kept: at most this many, for at most this many days (`None`: the
    /// server's `retention.capture_count` / `capture_days`).
    pub capture_retention_count: Option<i64>,
    pub capture_retention_days: Option<i64>,
    /// Where its captured mail may be released to: addresses and domains (`None`: anywhere).
    pub capture_release_allowlist: Option<Vec<String>>,
    /// Injected SMTP answers for its sandboxed senders.
    pub capture_chaos: Option<sluice_core::chaos::ChaosRules>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("status", &self.status)
            .field("sandbox", &self.sandbox)
            .finish_non_exhaustive()
    }
}

impl Account {
    pub fn is_active(&self) -> bool {
        self.state().is_active()
    }

    /// `status` (decoded where the row was read: an unknown text is a `StoreError`).
    pub fn state(&self) -> AccountStatus {
        self.status
    }

    pub fn policy(&self) -> AccountPolicy {
        AccountPolicy {
            account_id: self.id,
            allowed_domains: self.allowed_domains.clone(),
            monthly_limit: self.monthly_limit,
            sandbox: false,
            chaos: self.chaos_for(self.sandbox),
        }
    }

    /// The chaos rules a sender of this account gets: only a sandboxed one.
    pub fn chaos_for(
        &self,
        sandboxed: bool,
    ) -> Option<std::sync::Arc<sluice_core::chaos::ChaosRules>> {
        self.capture_chaos
            .clone()
            .filter(|rules| sandboxed && !rules.is_empty())
            .map(std::sync::Arc::new)
    }
}

/// What `Store::set_account_status` did.
#[derive(Debug, Clone)]
pub struct AccountStatusChange {
    pub account: Account,
    /// Messages held, queued again or cancelled.
    pub messages_changed: u64,
    /// Refresh tokens and panel sessions ended.
    pub sessions_revoked: u64,
}

/// Fields of an account to change; `None` leaves one as it is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AccountUpdate {
    pub name: Option<String>,
    pub email: Option<String>,
    pub allowed_domains: Option<Vec<String>>,
    pub monthly_limit: Option<i64>,
    pub allow_any_local_part: Option<bool>,
    pub status: Option<String>,
    /// Sandbox mode on or off (the API audits each change as `sandbox_on` / `sandbox_off`).
    pub sandbox: Option<bool>,
    /// `Some(None)` sets it back to the server default.
    pub capture_retention_count: Option<Option<i64>>,
    pub capture_retention_days: Option<Option<i64>>,
    /// `Some(None)` lets captured mail be released anywhere again.
    pub capture_release_allowlist: Option<Option<Vec<String>>>,
    /// `Some(None)` turns chaos off.
    pub capture_chaos: Option<Option<sluice_core::chaos::ChaosRules>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeyRow {
    pub id: i64,
    pub account_id: AccountId,
    /// The first characters of the key, enough to recognise it.
    pub prefix: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// What this key sends is captured, whatever the account's mode and routing.
    pub sandbox: bool,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct SmtpCredential {
    pub id: i64,
    pub account_id: AccountId,
    pub username: String,
    #[serde(skip)]
    pub password_hash: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// What this login sends is captured, whatever the account's mode and routing.
    pub sandbox: bool,
}

impl std::fmt::Debug for SmtpCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpCredential")
            .field("id", &self.id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}
