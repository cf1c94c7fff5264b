//! Accounts (their status and what changes with it), their API keys and SMTP logins, and
//! their monthly usage.

use async_trait::async_trait;
use sluice_core::{AccountId, AccountStatus};

use crate::StoreError;
use crate::types::*;

/// An account's status, from `cache` when read within its lifetime, else from `store`
/// (and cached); a missing account is `Deleted`.
pub async fn cached_account_status<S: AccountStore + ?Sized>(
    store: &S,
    cache: &crate::ttl_cache::TtlCache<AccountId, AccountStatus>,
    account_id: AccountId,
) -> Result<AccountStatus, StoreError> {
    if let Some(status) = cache.get(&account_id) {
        return Ok(status);
    }
    let status = store
        .account(account_id)
        .await?
        .map_or(AccountStatus::Deleted, |a| a.state());
    cache.put(account_id, status);
    Ok(status)
}

/// Accounts and the credentials that act for one (API keys, SMTP logins).
#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn create_account(&self, account: NewAccount, now_ms: i64)
    -> Result<Account, StoreError>;

    async fn account_by_email(&self, email: &str) -> Result<Option<Account>, StoreError>;

    async fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError>;

    /// Accounts by id after `after_id`, at most `limit`.
    async fn list_accounts(&self, after_id: i64, limit: i64) -> Result<Vec<Account>, StoreError>;

    async fn update_account(
        &self,
        id: AccountId,
        update: &AccountUpdate,
        now_ms: i64,
    ) -> Result<Option<Account>, StoreError>;

    /// Moves an account to `status` (never out of `deleted`) and, in the same transaction,
    /// its waiting mail: `suspended` holds queued and deferred messages, `active` queues
    /// held ones again, `deleted` cancels queued, deferred and held ones, each with an
    /// event (`held`, `hold_released`, `account_deleted`); `suspended` and `deleted` also
    /// revoke every refresh token and panel session of its users. `None`: no such
    /// account, or it is deleted.
    async fn set_account_status(
        &self,
        id: AccountId,
        status: sluice_core::AccountStatus,
        now_ms: i64,
    ) -> Result<Option<AccountStatusChange>, StoreError>;

    /// Stores a key's hash; returns the key's id.
    async fn add_api_key(
        &self,
        account_id: AccountId,
        prefix: &str,
        key_hash: &str,
        now_ms: i64,
    ) -> Result<i64, StoreError>;

    async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRow>, StoreError>;

    /// One key by id, revoked or not.
    async fn api_key(&self, id: i64) -> Result<Option<ApiKeyRow>, StoreError>;

    async fn list_api_keys(&self, account_id: AccountId) -> Result<Vec<ApiKeyRow>, StoreError>;

    /// False when the account has no such unrevoked key.
    async fn revoke_api_key(
        &self,
        account_id: AccountId,
        id: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    async fn add_smtp_credential(
        &self,
        account_id: AccountId,
        username: &str,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<i64, StoreError>;

    async fn smtp_credential_by_username(
        &self,
        username: &str,
    ) -> Result<Option<SmtpCredential>, StoreError>;

    /// One SMTP login by id, revoked or not.
    async fn smtp_credential(&self, id: i64) -> Result<Option<SmtpCredential>, StoreError>;

    async fn list_smtp_credentials(
        &self,
        account_id: AccountId,
    ) -> Result<Vec<SmtpCredential>, StoreError>;

    async fn revoke_smtp_credential(
        &self,
        account_id: AccountId,
        id: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Sandbox mode of the account's API key `id` (revoked or not). False: no such key.
    async fn set_api_key_sandbox(
        &self,
        account_id: AccountId,
        id: i64,
        sandbox: bool,
    ) -> Result<bool, StoreError>;

    /// Sandbox mode of the account's SMTP login `id`. False: no such login.
    async fn set_smtp_credential_sandbox(
        &self,
        account_id: AccountId,
        id: i64,
        sandbox: bool,
    ) -> Result<bool, StoreError>;

    /// Messages accepted for the account in `month` (`YYYY-MM`, see `sluice_core::month_of`).
    async fn monthly_usage(&self, account_id: AccountId, month: &str) -> Result<i64, StoreError>;
}

/// Implements [`AccountStore`] for `$store` (pools `write` and `read` of `$db`).
macro_rules! impl_account_sql {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Runs `update`, which marks row `$2` of account `$3` revoked at `$1` unless it
            /// already is; `false` when no row changed.
            async fn revoke_owned_row(
                &self,
                update: &'static str,
                account_id: AccountId,
                id: i64,
                now_ms: i64,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(update)
                    .bind(now_ms)
                    .bind(id)
                    .bind(account_id)
                    .execute(&self.write)
                    .await?;
                Ok(done.rows_affected() == 1)
            }
        }

        #[async_trait::async_trait]
        impl $crate::accounts::AccountStore for $store {
            async fn create_account(
                &self,
                account: NewAccount,
                now_ms: i64,
            ) -> Result<Account, StoreError> {
                // The domains given are an operator's or admin's: verified (`admin`).
                let mut tx = self.write.begin().await?;
                let row = sqlx::query(
                    "INSERT INTO accounts (name, email, password_hash, allowed_domains, status, created_at, updated_at) \
                     VALUES ($1, $2, $3, '[]', 'active', $4, $4) RETURNING *",
                )
                .bind(&account.name)
                .bind(account.email.to_ascii_lowercase())
                .bind(&account.password_hash)
                .bind(now_ms)
                .fetch_one(&mut *tx)
                .await?;
                let mut created = $crate::rows::account_from_row(&row)?;
                Self::vouch_domains_tx(&mut tx, created.id, &account.allowed_domains, "admin", false, now_ms)
                    .await?;
                created.allowed_domains = Self::verified_domains_of(&mut *tx, created.id).await?;
                tx.commit().await?;
                Ok(created)
            }

            async fn account_by_email(&self, email: &str) -> Result<Option<Account>, StoreError> {
                let row = sqlx::query("SELECT * FROM accounts WHERE email = $1")
                    .bind(email.to_ascii_lowercase())
                    .fetch_optional(&self.read)
                    .await?;
                let account = row.as_ref().map($crate::rows::account_from_row).transpose()?;
                self.with_domains(account).await
            }

            async fn add_api_key(
                &self,
                account_id: AccountId,
                prefix: &str,
                key_hash: &str,
                now_ms: i64,
            ) -> Result<i64, StoreError> {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO api_keys (account_id, prefix, key_hash, created_at) \
                     VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(account_id)
                .bind(prefix)
                .bind(key_hash)
                .bind(now_ms)
                .fetch_one(&self.write)
                .await?;
                Ok(id)
            }

            async fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError> {
                let row = sqlx::query("SELECT * FROM accounts WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.read)
                    .await?;
                let account = row.as_ref().map($crate::rows::account_from_row).transpose()?;
                self.with_domains(account).await
            }

            async fn list_accounts(
                &self,
                after_id: i64,
                limit: i64,
            ) -> Result<Vec<Account>, StoreError> {
                let rows = sqlx::query(
                    "SELECT * FROM accounts WHERE id > $1 AND status <> 'deleted' ORDER BY id LIMIT $2",
                )
                .bind(after_id)
                .bind(limit)
                .fetch_all(&self.read)
                .await?;
                let accounts = rows
                    .iter()
                    .map($crate::rows::account_from_row)
                    .collect::<Result<Vec<_>, StoreError>>()?;
                self.list_with_domains(accounts).await
            }

            async fn update_account(
                &self,
                id: AccountId,
                update: &AccountUpdate,
                now_ms: i64,
            ) -> Result<Option<Account>, StoreError> {
                let mut tx = self.write.begin().await?;
                let row = sqlx::query(
                    "UPDATE accounts SET name = COALESCE($1, name), email = COALESCE($2, email), \
                     monthly_limit = COALESCE($3, monthly_limit), \
                     allow_any_local_part = COALESCE($4, allow_any_local_part), \
                     status = COALESCE($5, status), sandbox = COALESCE($8, sandbox), \
                     capture_retention_count = CASE WHEN $9 THEN $10 ELSE capture_retention_count END, \
                     capture_retention_days = CASE WHEN $11 THEN $12 ELSE capture_retention_days END, \
                     capture_release_allowlist = CASE WHEN $13 THEN $14 ELSE capture_release_allowlist END, \
                     capture_chaos = CASE WHEN $15 THEN $16 ELSE capture_chaos END, \
                     updated_at = $6 \
                     WHERE id = $7 AND status <> 'deleted' RETURNING *",
                )
                .bind(update.name.as_deref())
                .bind(update.email.as_ref().map(|e| e.to_ascii_lowercase()))
                .bind(update.monthly_limit)
                .bind(update.allow_any_local_part)
                .bind(update.status.as_deref())
                .bind(now_ms)
                .bind(id)
                .bind(update.sandbox)
                .bind(update.capture_retention_count.is_some())
                .bind(update.capture_retention_count.flatten())
                .bind(update.capture_retention_days.is_some())
                .bind(update.capture_retention_days.flatten())
                .bind(update.capture_release_allowlist.is_some())
                .bind(
                    update
                        .capture_release_allowlist
                        .as_ref()
                        .and_then(|list| list.as_ref().map(json)),
                )
                .bind(update.capture_chaos.is_some())
                .bind(
                    update
                        .capture_chaos
                        .as_ref()
                        .and_then(|rules| rules.as_ref().map(json)),
                )
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let mut account = $crate::rows::account_from_row(&row)?;
                // An admin's list of allowed domains: exactly these are verified (`admin`).
                if let Some(domains) = &update.allowed_domains {
                    Self::vouch_domains_tx(&mut tx, id, domains, "admin", true, now_ms).await?;
                }
                account.allowed_domains = Self::verified_domains_of(&mut *tx, id).await?;
                tx.commit().await?;
                Ok(Some(account))
            }

            async fn set_account_status(
                &self,
                id: AccountId,
                status: sluice_core::AccountStatus,
                now_ms: i64,
            ) -> Result<Option<$crate::AccountStatusChange>, StoreError> {
                use sluice_core::AccountStatus;
                let mut tx = self.write.begin().await?;
                let row = sqlx::query(
                    "UPDATE accounts SET status = $1, updated_at = $2 \
                     WHERE id = $3 AND status <> 'deleted' RETURNING *",
                )
                .bind(status.as_str())
                .bind(now_ms)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    tx.rollback().await?;
                    return Ok(None);
                };
                let account = $crate::rows::account_from_row(&row)?;
                // What becomes of its mail: held while suspended, queued again (due now)
                // when reactivated, cancelled when deleted. Leased (`sending`) messages
                // finish the attempt under way.
                let (sql, kind, detail) = match status {
                    AccountStatus::Suspended => (
                        "UPDATE messages SET status = 'held', updated_at = $1 \
                         WHERE account_id = $2 AND status IN ('queued', 'deferred') RETURNING id",
                        "held",
                        "account suspended",
                    ),
                    AccountStatus::Active => (
                        "UPDATE messages SET status = 'queued', next_attempt_at = $1, updated_at = $1 \
                         WHERE account_id = $2 AND status = 'held' RETURNING id",
                        "hold_released",
                        "account reactivated",
                    ),
                    AccountStatus::Deleted => (
                        "UPDATE messages SET status = 'cancelled', updated_at = $1 \
                         WHERE account_id = $2 AND status IN ('queued', 'deferred', 'held') RETURNING id",
                        "account_deleted",
                        "account deleted",
                    ),
                };
                let ids: Vec<i64> = sqlx::query_scalar(sql)
                    .bind(now_ms)
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
                for chunk in ids.chunks($crate::sql::ROWS_PER_STATEMENT) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO events (message_id, account_id, kind, detail, created_at) ",
                    );
                    insert.push_values(chunk, |mut row, &message_id| {
                        row.push_bind(message_id)
                            .push_bind(id)
                            .push_bind(kind)
                            .push_bind(detail)
                            .push_bind(now_ms);
                    });
                    // The `events_webhook_outbox` trigger fills tenants' webhook outbox.
                    insert.build().execute(&mut *tx).await?;
                }
                // Suspension and deletion end every login of its users: refresh tokens and
                // panel sessions. Reactivation does not bring them back.
                let sessions_revoked = if status.is_active() {
                    0
                } else {
                    sqlx::query(
                        "UPDATE sessions SET revoked_at = $1 WHERE revoked_at IS NULL \
                         AND user_id IN (SELECT id FROM users WHERE account_id = $2)",
                    )
                    .bind(now_ms)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                };
                tx.commit().await?;
                Ok(Some($crate::AccountStatusChange {
                    account,
                    messages_changed: ids.len() as u64,
                    sessions_revoked,
                }))
            }

            async fn api_key_by_hash(
                &self,
                key_hash: &str,
            ) -> Result<Option<ApiKeyRow>, StoreError> {
                self.fetch_one_as(
                    "SELECT * FROM api_keys WHERE key_hash = $1",
                    key_hash,
                    $crate::rows::api_key_from_row,
                )
                .await
            }

            async fn api_key(&self, id: i64) -> Result<Option<ApiKeyRow>, StoreError> {
                self.fetch_one_as(
                    "SELECT * FROM api_keys WHERE id = $1",
                    id,
                    $crate::rows::api_key_from_row,
                )
                .await
            }

            async fn list_api_keys(
                &self,
                account_id: AccountId,
            ) -> Result<Vec<ApiKeyRow>, StoreError> {
                self.fetch_all_as(
                    "SELECT * FROM api_keys WHERE account_id = $1 ORDER BY id",
                    account_id,
                    $crate::rows::api_key_from_row,
                )
                .await
            }

            async fn revoke_api_key(
                &self,
                account_id: AccountId,
                id: i64,
                now_ms: i64,
            ) -> Result<bool, StoreError> {
                self.revoke_owned_row(
                    "UPDATE api_keys SET revoked_at = $1 \
                     WHERE id = $2 AND account_id = $3 AND revoked_at IS NULL",
                    account_id,
                    id,
                    now_ms,
                )
                .await
            }

            async fn add_smtp_credential(
                &self,
                account_id: AccountId,
                username: &str,
                password_hash: &str,
                now_ms: i64,
            ) -> Result<i64, StoreError> {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO smtp_credentials (account_id, username, password_hash, created_at) \
                     VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(account_id)
                .bind(username.to_ascii_lowercase())
                .bind(password_hash)
                .bind(now_ms)
                .fetch_one(&self.write)
                .await?;
                Ok(id)
            }

            async fn smtp_credential_by_username(
                &self,
                username: &str,
            ) -> Result<Option<SmtpCredential>, StoreError> {
                self.fetch_one_as(
                    "SELECT * FROM smtp_credentials WHERE username = $1",
                    username.to_ascii_lowercase(),
                    $crate::rows::credential_from_row,
                )
                .await
            }

            async fn smtp_credential(&self, id: i64) -> Result<Option<SmtpCredential>, StoreError> {
                self.fetch_one_as(
                    "SELECT * FROM smtp_credentials WHERE id = $1",
                    id,
                    $crate::rows::credential_from_row,
                )
                .await
            }

            async fn list_smtp_credentials(
                &self,
                account_id: AccountId,
            ) -> Result<Vec<SmtpCredential>, StoreError> {
                self.fetch_all_as(
                    "SELECT * FROM smtp_credentials WHERE account_id = $1 ORDER BY id",
                    account_id,
                    $crate::rows::credential_from_row,
                )
                .await
            }

            async fn revoke_smtp_credential(
                &self,
                account_id: AccountId,
                id: i64,
                now_ms: i64,
            ) -> Result<bool, StoreError> {
                self.revoke_owned_row(
                    "UPDATE smtp_credentials SET revoked_at = $1 \
                     WHERE id = $2 AND account_id = $3 AND revoked_at IS NULL",
                    account_id,
                    id,
                    now_ms,
                )
                .await
            }

            async fn set_api_key_sandbox(
                &self,
                account_id: AccountId,
                id: i64,
                sandbox: bool,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE api_keys SET sandbox = $1 WHERE id = $2 AND account_id = $3",
                )
                .bind(sandbox)
                .bind(id)
                .bind(account_id)
                .execute(&self.write)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn set_smtp_credential_sandbox(
                &self,
                account_id: AccountId,
                id: i64,
                sandbox: bool,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE smtp_credentials SET sandbox = $1 WHERE id = $2 AND account_id = $3",
                )
                .bind(sandbox)
                .bind(id)
                .bind(account_id)
                .execute(&self.write)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn monthly_usage(
                &self,
                account_id: AccountId,
                month: &str,
            ) -> Result<i64, StoreError> {
                let count: Option<i64> = sqlx::query_scalar(
                    "SELECT messages FROM account_usage WHERE account_id = $1 AND month = $2",
                )
                .bind(account_id)
                .bind(month)
                .fetch_optional(&self.read)
                .await?;
                Ok(count.unwrap_or(0))
            }
        }
    };
}

pub(crate) use impl_account_sql;
