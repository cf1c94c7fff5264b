//! What services report back about delivered mail (events, bounces), the suppression
//! list that follows from it, and the replay guard of their signed webhooks.

use async_trait::async_trait;
use sluice_core::{AccountId, MessageId};

use crate::StoreError;
use crate::types::*;

/// Services' feedback, suppressions and seen webhook signatures.
#[async_trait]
pub trait FeedbackStore: Send + Sync {
    /// The message a provider's message id belongs to (from its delivery attempts).
    async fn message_by_provider_message_id(
        &self,
        provider_id: i64,
        provider_message_id: &str,
    ) -> Result<Option<(MessageId, AccountId)>, StoreError>;

    /// Records what a service reported about a delivered message. `bounced`: a hard
    /// bounce or drop, which marks a single-recipient delivered message `bounced`.
    async fn record_feedback(
        &self,
        message_id: MessageId,
        account_id: AccountId,
        kind: &str,
        detail: &str,
        bounced: bool,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// Adds (or renews) a suppression of `address` for the account.
    #[allow(clippy::too_many_arguments)]
    async fn add_suppression(
        &self,
        account_id: AccountId,
        address: &str,
        reason: sluice_core::SuppressionReason,
        source: &str,
        expires_at: Option<i64>,
        now_ms: i64,
    ) -> Result<SuppressionRow, StoreError>;

    /// One suppression by id, in force or expired.
    async fn suppression(&self, id: i64) -> Result<Option<SuppressionRow>, StoreError>;

    async fn list_suppressions(
        &self,
        account_id: AccountId,
    ) -> Result<Vec<SuppressionRow>, StoreError>;

    async fn delete_suppression(&self, account_id: AccountId, id: i64) -> Result<bool, StoreError>;

    /// Whether the account has any suppression in force now.
    async fn has_suppressions(
        &self,
        account_id: AccountId,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Which of `addresses` the account may not send to now.
    async fn suppressed(
        &self,
        account_id: AccountId,
        addresses: &[String],
        now_ms: i64,
    ) -> Result<Vec<String>, StoreError>;

    /// Records a webhook signature until `expires_at`; false if it was already recorded
    /// (a replay). Expired signatures are forgotten on the way.
    async fn remember_signature(
        &self,
        signature: &str,
        expires_at: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
}

/// Implements [`FeedbackStore`] for `$store` (pools `write` and `read` of `$db`).
macro_rules! impl_feedback_sql {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::feedback::FeedbackStore for $store {
            async fn message_by_provider_message_id(
                &self,
                provider_id: i64,
                provider_message_id: &str,
            ) -> Result<Option<(MessageId, AccountId)>, StoreError> {
                let row = sqlx::query(
                    "SELECT m.id, m.account_id FROM delivery_attempts a JOIN messages m ON m.id = a.message_id \
                     WHERE a.provider_message_id = $1 AND a.provider_id = $2 ORDER BY a.id DESC LIMIT 1",
                )
                .bind(provider_message_id)
                .bind(provider_id)
                .fetch_optional(&self.read)
                .await?;
                row.map(|row| Ok((row.try_get("id")?, row.try_get("account_id")?)))
                    .transpose()
            }

            async fn record_feedback(
                &self,
                message_id: MessageId,
                account_id: AccountId,
                kind: &str,
                detail: &str,
                bounced: bool,
                now_ms: i64,
            ) -> Result<(), StoreError> {
                let mut tx = self.write.begin().await?;
                Self::insert_event(&mut tx, message_id, Some(account_id), kind, detail, now_ms).await?;
                if bounced {
                    let row = sqlx::query("SELECT rcpt_to FROM messages WHERE id = $1")
                        .bind(message_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    let single = match row {
                        Some(row) => {
                            serde_json::from_str::<Vec<String>>(row.try_get("rcpt_to")?)?.len() == 1
                        }
                        None => false,
                    };
                    if single {
                        sqlx::query(
                            "UPDATE messages SET status = 'bounced', last_error = $1, updated_at = $2 \
                             WHERE id = $3 AND status = 'delivered'",
                        )
                        .bind(detail)
                        .bind(now_ms)
                        .bind(message_id)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            async fn add_suppression(
                &self,
                account_id: AccountId,
                address: &str,
                reason: sluice_core::SuppressionReason,
                source: &str,
                expires_at: Option<i64>,
                now_ms: i64,
            ) -> Result<SuppressionRow, StoreError> {
                let row = sqlx::query(
                    "INSERT INTO suppressions (account_id, address, reason, source, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_id, address) \
                     DO UPDATE SET reason = $3, source = $4, created_at = $5, expires_at = $6 RETURNING *",
                )
                .bind(account_id)
                .bind(address.to_ascii_lowercase())
                .bind(reason.as_str())
                .bind(source)
                .bind(now_ms)
                .bind(expires_at)
                .fetch_one(&self.write)
                .await?;
                $crate::rows::suppression_from_row(&row)
            }

            async fn has_suppressions(
                &self,
                account_id: AccountId,
                now_ms: i64,
            ) -> Result<bool, StoreError> {
                let row = sqlx::query(
                    "SELECT 1 AS one FROM suppressions WHERE account_id = $1 \
                     AND (expires_at IS NULL OR expires_at > $2) LIMIT 1",
                )
                .bind(account_id)
                .bind(now_ms)
                .fetch_optional(&self.read)
                .await?;
                Ok(row.is_some())
            }

            async fn suppression(&self, id: i64) -> Result<Option<SuppressionRow>, StoreError> {
                self.fetch_one_as(
                    "SELECT * FROM suppressions WHERE id = $1",
                    id,
                    $crate::rows::suppression_from_row,
                )
                .await
            }

            async fn list_suppressions(
                &self,
                account_id: AccountId,
            ) -> Result<Vec<SuppressionRow>, StoreError> {
                self.fetch_all_as(
                    "SELECT * FROM suppressions WHERE account_id = $1 ORDER BY id",
                    account_id,
                    $crate::rows::suppression_from_row,
                )
                .await
            }

            async fn delete_suppression(
                &self,
                account_id: AccountId,
                id: i64,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM suppressions WHERE id = $1 AND account_id = $2")
                    .bind(id)
                    .bind(account_id)
                    .execute(&self.write)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn suppressed(
                &self,
                account_id: AccountId,
                addresses: &[String],
                now_ms: i64,
            ) -> Result<Vec<String>, StoreError> {
                let mut found = Vec::new();
                for address in addresses {
                    let hit: Option<i64> = sqlx::query_scalar(
                        "SELECT id FROM suppressions WHERE account_id = $1 AND address = $2 \
                         AND (expires_at IS NULL OR expires_at > $3)",
                    )
                    .bind(account_id)
                    .bind(address.to_ascii_lowercase())
                    .bind(now_ms)
                    .fetch_optional(&self.read)
                    .await?;
                    if hit.is_some() {
                        found.push(address.clone());
                    }
                }
                Ok(found)
            }

            async fn remember_signature(
                &self,
                signature: &str,
                expires_at: i64,
                now_ms: i64,
            ) -> Result<bool, StoreError> {
                let mut tx = self.write.begin().await?;
                sqlx::query("DELETE FROM webhook_signatures WHERE expires_at < $1")
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
                let inserted = sqlx::query(
                    "INSERT INTO webhook_signatures (signature, expires_at) VALUES ($1, $2) \
                     ON CONFLICT (signature) DO NOTHING",
                )
                .bind(signature)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(inserted.rows_affected() == 1)
            }
        }
    };
}

pub(crate) use impl_feedback_sql;
