//! The SQL of sender domains (table `domains`, migration 0017), shared by both backends:
//! inherent methods the `Store` implementation in `sql.rs` calls. An account's allowed
//! sender domains are its verified rows here; `accounts.allowed_domains` is not read.

use async_trait::async_trait;
use sluice_core::AccountId;

use crate::{DomainRow, StoreError};

/// Sender domains of accounts and their verification.
#[async_trait]
pub trait DomainStore: Send + Sync {
    /// Adds a sender domain to the account: unverified with a new token, or with
    /// `verified_how` (`admin`) verified at once (an existing unverified row of the account
    /// becomes verified). The row, and whether it was added (Conflict: the account has it
    /// already, unverified adds only).
    async fn create_domain(
        &self,
        account_id: AccountId,
        domain: &str,
        verified_how: Option<&str>,
        now_ms: i64,
    ) -> Result<(DomainRow, bool), StoreError>;

    async fn domain(&self, id: i64) -> Result<Option<DomainRow>, StoreError>;

    /// By domain; `account_id` None lists every account's.
    async fn list_domains(
        &self,
        account_id: Option<AccountId>,
    ) -> Result<Vec<DomainRow>, StoreError>;

    async fn delete_domain(&self, id: i64) -> Result<bool, StoreError>;

    /// Marks the domain verified by DNS, unless another account holds the same domain
    /// verified (then `None`, and nothing changes), in one statement.
    async fn verify_domain_by_dns(
        &self,
        id: i64,
        now_ms: i64,
    ) -> Result<Option<DomainRow>, StoreError>;

    /// Whether an account other than `account_id` has `domain` verified.
    async fn domain_verified_elsewhere(
        &self,
        account_id: AccountId,
        domain: &str,
    ) -> Result<bool, StoreError>;

    /// Keeps the result of a DNS check (SPF, DKIM, DMARC) on the domain.
    async fn record_domain_checks(
        &self,
        id: i64,
        checks: &serde_json::Value,
        now_ms: i64,
    ) -> Result<Option<DomainRow>, StoreError>;
}

/// A verification token: 16 random bytes, hex.
pub(crate) fn new_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Implements the domain methods for `$store` (pools `write` and `read` of `$db`).
macro_rules! impl_domain_sql {
    ($store:ty, $db:ty) => {
        impl $store {
            /// The account's verified domains, by name.
            async fn verified_domains_of<'e, E>(
                executor: E,
                account_id: AccountId,
            ) -> Result<Vec<String>, StoreError>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let domains: Vec<String> = sqlx::query_scalar(
                    "SELECT domain FROM domains WHERE account_id = $1 AND verified = TRUE ORDER BY domain",
                )
                .bind(account_id)
                .fetch_all(executor)
                .await?;
                Ok(domains)
            }

            /// Fills `allowed_domains` of an account read from its row.
            async fn with_domains(&self, account: Option<Account>) -> Result<Option<Account>, StoreError> {
                match account {
                    Some(mut account) => {
                        account.allowed_domains = Self::verified_domains_of(&self.read, account.id).await?;
                        Ok(Some(account))
                    }
                    None => Ok(None),
                }
            }

            /// Fills `allowed_domains` of accounts listed by id, in one query.
            async fn list_with_domains(&self, mut accounts: Vec<Account>) -> Result<Vec<Account>, StoreError> {
                let (Some(first), Some(last)) = (accounts.first(), accounts.last()) else {
                    return Ok(accounts);
                };
                let rows = sqlx::query(
                    "SELECT account_id, domain FROM domains \
                     WHERE account_id >= $1 AND account_id <= $2 AND verified = TRUE ORDER BY domain",
                )
                .bind(first.id)
                .bind(last.id)
                .fetch_all(&self.read)
                .await?;
                for row in &rows {
                    let account_id: AccountId = row.try_get("account_id")?;
                    let domain: String = row.try_get("domain")?;
                    if let Some(account) = accounts.iter_mut().find(|a| a.id == account_id) {
                        account.allowed_domains.push(domain);
                    }
                }
                Ok(accounts)
            }

            /// An admin vouches for `domains` of the account: each becomes verified (`how`),
            /// added if missing. With `replace`, the account's other verified domains become
            /// unverified (their rows and tokens stay, so DNS can verify them again).
            async fn vouch_domains_tx(
                tx: &mut sqlx::Transaction<'_, $db>,
                account_id: AccountId,
                domains: &[String],
                how: &str,
                replace: bool,
                now_ms: i64,
            ) -> Result<(), StoreError> {
                let wanted: Vec<String> = domains.iter().map(|d| d.to_ascii_lowercase()).collect();
                for domain in &wanted {
                    Self::vouch_one(tx, account_id, domain, how, now_ms).await?;
                }
                if replace {
                    for domain in Self::verified_domains_of(&mut **tx, account_id).await? {
                        if !wanted.contains(&domain) {
                            sqlx::query(
                                "UPDATE domains SET verified = FALSE, verified_at = NULL, verified_how = NULL \
                                 WHERE account_id = $1 AND domain = $2",
                            )
                            .bind(account_id)
                            .bind(&domain)
                            .execute(&mut **tx)
                            .await?;
                        }
                    }
                }
                Ok(())
            }

            /// The row of (account, domain), verified by `how` (added if missing); whether
            /// it was added.
            async fn vouch_one(
                tx: &mut sqlx::Transaction<'_, $db>,
                account_id: AccountId,
                domain: &str,
                how: &str,
                now_ms: i64,
            ) -> Result<(DomainRow, bool), StoreError> {
                let existing = sqlx::query("SELECT * FROM domains WHERE account_id = $1 AND domain = $2")
                    .bind(account_id)
                    .bind(domain)
                    .fetch_optional(&mut **tx)
                    .await?;
                if let Some(row) = existing {
                    let row = $crate::rows::domain_from_row(&row)?;
                    if row.verified {
                        return Ok((row, false));
                    }
                    let row = sqlx::query(
                        "UPDATE domains SET verified = TRUE, verified_at = $1, verified_how = $2 \
                         WHERE id = $3 RETURNING *",
                    )
                    .bind(now_ms)
                    .bind(how)
                    .bind(row.id)
                    .fetch_one(&mut **tx)
                    .await?;
                    return Ok(($crate::rows::domain_from_row(&row)?, false));
                }
                let row = sqlx::query(
                    "INSERT INTO domains (account_id, domain, token, verified, verified_at, verified_how, created_at) \
                     VALUES ($1, $2, $3, TRUE, $4, $5, $4) RETURNING *",
                )
                .bind(account_id)
                .bind(domain)
                .bind(crate::domains::new_token())
                .bind(now_ms)
                .bind(how)
                .fetch_one(&mut **tx)
                .await?;
                Ok(($crate::rows::domain_from_row(&row)?, true))
            }
        }

        #[async_trait::async_trait]
        impl $crate::domains::DomainStore for $store {
            async fn create_domain(
                &self,
                account_id: AccountId,
                domain: &str,
                verified_how: Option<&str>,
                now_ms: i64,
            ) -> Result<(DomainRow, bool), StoreError> {
                let domain = domain.to_ascii_lowercase();
                if let Some(how) = verified_how {
                    let mut tx = self.write.begin().await?;
                    let done = Self::vouch_one(&mut tx, account_id, &domain, how, now_ms).await?;
                    tx.commit().await?;
                    return Ok(done);
                }
                let row = sqlx::query(
                    "INSERT INTO domains (account_id, domain, token, verified, created_at) \
                     VALUES ($1, $2, $3, FALSE, $4) RETURNING *",
                )
                .bind(account_id)
                .bind(&domain)
                .bind(crate::domains::new_token())
                .bind(now_ms)
                .fetch_one(&self.write)
                .await?;
                Ok(($crate::rows::domain_from_row(&row)?, true))
            }

            async fn domain(&self, id: i64) -> Result<Option<DomainRow>, StoreError> {
                self.fetch_one_as(
                    "SELECT * FROM domains WHERE id = $1",
                    id,
                    $crate::rows::domain_from_row,
                )
                .await
            }

            async fn list_domains(
                &self,
                account_id: Option<AccountId>,
            ) -> Result<Vec<DomainRow>, StoreError> {
                self.fetch_all_as(
                    "SELECT * FROM domains WHERE (account_id = $1 OR $1 IS NULL) ORDER BY domain, account_id",
                    account_id,
                    $crate::rows::domain_from_row,
                )
                .await
            }

            async fn delete_domain(&self, id: i64) -> Result<bool, StoreError> {
                self.delete_by_id("DELETE FROM domains WHERE id = $1", id).await
            }

            async fn verify_domain_by_dns(
                &self,
                id: i64,
                now_ms: i64,
            ) -> Result<Option<DomainRow>, StoreError> {
                // One statement: another account's verified row of the same domain, read in
                // the same write, keeps this one unverified.
                let row = sqlx::query(
                    "UPDATE domains SET verified = TRUE, verified_at = $1, verified_how = 'dns' \
                     WHERE id = $2 AND NOT EXISTS (SELECT 1 FROM domains other \
                         WHERE other.domain = domains.domain AND other.account_id <> domains.account_id \
                         AND other.verified = TRUE) \
                     RETURNING *",
                )
                .bind(now_ms)
                .bind(id)
                .fetch_optional(&self.write)
                .await?;
                row.as_ref().map($crate::rows::domain_from_row).transpose()
            }

            async fn domain_verified_elsewhere(
                &self,
                account_id: AccountId,
                domain: &str,
            ) -> Result<bool, StoreError> {
                let found: Option<i64> = sqlx::query_scalar(
                    "SELECT id FROM domains WHERE domain = $1 AND account_id <> $2 AND verified = TRUE LIMIT 1",
                )
                .bind(domain.to_ascii_lowercase())
                .bind(account_id)
                .fetch_optional(&self.read)
                .await?;
                Ok(found.is_some())
            }

            async fn record_domain_checks(
                &self,
                id: i64,
                checks: &serde_json::Value,
                now_ms: i64,
            ) -> Result<Option<DomainRow>, StoreError> {
                let row = sqlx::query(
                    "UPDATE domains SET checks = $1, checked_at = $2 WHERE id = $3 RETURNING *",
                )
                .bind(checks.to_string())
                .bind(now_ms)
                .bind(id)
                .fetch_optional(&self.write)
                .await?;
                row.as_ref().map($crate::rows::domain_from_row).transpose()
            }
        }
    };
}

pub(crate) use impl_domain_sql;
