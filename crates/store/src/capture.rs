//! The capture sandbox's own state: the search index of captured mail (`captured_mail`,
//! with SQLite FTS5 or a PostgreSQL tsvector behind `MessageStore::list_messages`' `q`),
//! read marks, bulk deletes and per-account retention.

use async_trait::async_trait;
use sluice_core::{AccountId, MessageId};

use crate::StoreError;
use crate::types::*;

#[async_trait]
pub trait CaptureStore: Send + Sync {
    /// Captured messages with no index row yet and an id above `after`, oldest first.
    async fn unindexed_captures(
        &self,
        after: MessageId,
        limit: u32,
    ) -> Result<Vec<UnindexedCapture>, StoreError>;

    /// Writes the index rows, each with its `message.captured` event in the same
    /// transaction; a row another node wrote first is skipped (no second event), and so is
    /// one whose message left `captured` or whose tags changed since it was read. How many
    /// were new.
    async fn index_captures(&self, rows: &[CapturedMail], now_ms: i64) -> Result<u64, StoreError>;

    /// Marks a message read (`seen`) or unread. False when there is no such message.
    async fn set_message_read(
        &self,
        id: MessageId,
        read: bool,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Tags a captured message by hand: `sender_tags` replace the tags its sender set
    /// (`messages.tags`), `effective` (those plus what the message itself carries, from
    /// `api_dto::parsed::tags_of`) replace its index row's, so list, search and `/parsed`
    /// agree. False when the message is not captured.
    async fn set_captured_tags(
        &self,
        id: MessageId,
        sender_tags: &[String],
        effective: &[String],
    ) -> Result<bool, StoreError>;

    /// Deletes captured mail of one account (`None`: every account), with its attempts,
    /// events and body. How many went.
    async fn delete_captured(
        &self,
        account_id: Option<AccountId>,
        selection: &CapturedSelection,
    ) -> Result<u64, StoreError>;

    /// Releases a captured message: `copy` (its bytes, to the recipients chosen) is queued
    /// to go through `provider_id` only, and the original stays captured, marked released
    /// (event `released` naming the copy), in one transaction. `None`: not captured.
    async fn release_captured_copy(
        &self,
        original: MessageId,
        copy: &NewMessage,
        provider_id: i64,
        now_ms: i64,
    ) -> Result<Option<MessageId>, StoreError>;

    /// Deletes, for each account with captured mail, what its retention (its own
    /// `capture_retention_count` / `_days`, else `defaults`) no longer keeps: at most
    /// `limit` messages per call. How many went.
    async fn sweep_captured(
        &self,
        defaults: CaptureRetention,
        now_ms: i64,
        limit: u32,
    ) -> Result<u64, StoreError>;
}

/// Implements [`CaptureStore`] for `$store` (pools `write` and `read`, `release_bodies`).
macro_rules! impl_capture_sql {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Deletes the messages `ids` (captured ones only) and frees their bodies.
            async fn delete_captured_ids(&self, ids: &[sluice_core::MessageId]) -> Result<u64, StoreError> {
                let mut freed = Vec::new();
                let mut deleted = 0;
                for chunk in ids.chunks($crate::sql::ROWS_PER_STATEMENT) {
                    let mut delete = sqlx::QueryBuilder::<$db>::new(
                        "DELETE FROM messages WHERE status = 'captured' AND id IN (",
                    );
                    let mut list = delete.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    delete.push(") RETURNING body_ref");
                    let rows = delete.build().fetch_all(&self.write).await?;
                    deleted += rows.len() as u64;
                    for row in rows {
                        let reference: Option<Vec<u8>> = row.try_get("body_ref")?;
                        freed.extend(reference);
                    }
                }
                self.release_bodies(freed).await;
                Ok(deleted)
            }
        }

        #[async_trait::async_trait]
        impl $crate::capture::CaptureStore for $store {
            async fn unindexed_captures(
                &self,
                after: sluice_core::MessageId,
                limit: u32,
            ) -> Result<Vec<$crate::UnindexedCapture>, StoreError> {
                let rows = sqlx::query(
                    "SELECT m.* FROM messages m LEFT JOIN captured_mail c ON c.message_id = m.id \
                     WHERE m.status = 'captured' AND c.message_id IS NULL AND m.id > $1 \
                     ORDER BY m.id LIMIT $2",
                )
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(&self.read)
                .await?;
                rows.iter()
                    .map(|row| {
                        let record = $crate::rows::message_record_from_row(row, &self.bodies)?;
                        Ok($crate::UnindexedCapture {
                            id: record.id,
                            account_id: record.account_id,
                            mail_from: record.mail_from,
                            rcpt_to: record.rcpt_to,
                            tags: record.tags,
                            body: record.body,
                            created_at: record.created_at,
                        })
                    })
                    .collect()
            }

            async fn index_captures(
                &self,
                rows: &[$crate::CapturedMail],
                now_ms: i64,
            ) -> Result<u64, StoreError> {
                let mut tx = self.write.begin().await?;
                let mut new = 0;
                for row in rows {
                    // Only while it is still captured (a release or delete may have come first)
                    // with the sender's tags the row was computed from (not set by hand since).
                    let done = sqlx::query(
                        "INSERT INTO captured_mail (message_id, account_id, subject, from_text, \
                         to_text, cc_text, body_text, tags, has_attachments, indexed_at) \
                         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 FROM messages \
                         WHERE id = $1 AND status = 'captured' AND tags = $11 \
                         ON CONFLICT (message_id) DO NOTHING",
                    )
                    .bind(row.message_id)
                    .bind(row.account_id)
                    .bind(&row.subject)
                    .bind(&row.from_text)
                    .bind(&row.to_text)
                    .bind(&row.cc_text)
                    .bind(&row.body_text)
                    .bind($crate::sql::json(&row.tags))
                    .bind(row.has_attachments)
                    .bind(now_ms)
                    .bind($crate::sql::json(&row.sender_tags))
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() == 1 {
                        new += 1;
                        Self::insert_event(
                            &mut tx,
                            row.message_id,
                            Some(row.account_id),
                            "message.captured",
                            &row.event_detail,
                            now_ms,
                        )
                        .await?;
                    }
                }
                tx.commit().await?;
                Ok(new)
            }

            async fn set_message_read(
                &self,
                id: sluice_core::MessageId,
                read: bool,
                now_ms: i64,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE messages SET seen_at = CASE WHEN $1 THEN COALESCE(seen_at, $2) END \
                     WHERE id = $3",
                )
                .bind(read)
                .bind(now_ms)
                .bind(id)
                .execute(&self.write)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn set_captured_tags(
                &self,
                id: sluice_core::MessageId,
                sender_tags: &[String],
                effective: &[String],
            ) -> Result<bool, StoreError> {
                let mut tx = self.write.begin().await?;
                let done = sqlx::query(
                    "UPDATE messages SET tags = $1 WHERE id = $2 AND status = 'captured'",
                )
                .bind($crate::sql::json(&sender_tags))
                .bind(id)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    return Ok(false);
                }
                // No index row yet: the indexer reads the new `messages.tags` when it comes.
                sqlx::query("UPDATE captured_mail SET tags = $1 WHERE message_id = $2")
                    .bind($crate::sql::json(&effective))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn delete_captured(
                &self,
                account_id: Option<sluice_core::AccountId>,
                selection: &$crate::CapturedSelection,
            ) -> Result<u64, StoreError> {
                let mut deleted = 0;
                match selection {
                    $crate::CapturedSelection::Ids(ids) => {
                        // Only ids of the account: the others are not the caller's to delete.
                        for chunk in ids.chunks($crate::sql::ROWS_PER_STATEMENT) {
                            let mut select = sqlx::QueryBuilder::<$db>::new(
                                "SELECT id FROM messages WHERE status = 'captured' AND id IN (",
                            );
                            let mut list = select.separated(", ");
                            for id in chunk {
                                list.push_bind(*id);
                            }
                            select.push(")");
                            if let Some(account) = account_id {
                                select.push(" AND account_id = ").push_bind(account);
                            }
                            let mine: Vec<sluice_core::MessageId> = select
                                .build()
                                .fetch_all(&self.read)
                                .await?
                                .iter()
                                .map(|row| row.try_get("id"))
                                .collect::<Result<_, _>>()?;
                            deleted += self.delete_captured_ids(&mine).await?;
                        }
                    }
                    $crate::CapturedSelection::All => loop {
                        let ids: Vec<sluice_core::MessageId> = sqlx::query(
                            "SELECT id FROM messages WHERE status = 'captured' \
                             AND (account_id = $1 OR $1 IS NULL) ORDER BY id LIMIT 500",
                        )
                        .bind(account_id)
                        .fetch_all(&self.read)
                        .await?
                        .iter()
                        .map(|row| row.try_get("id"))
                        .collect::<Result<_, _>>()?;
                        if ids.is_empty() {
                            break;
                        }
                        let went = self.delete_captured_ids(&ids).await?;
                        deleted += went;
                        if went == 0 {
                            break;
                        }
                    },
                }
                Ok(deleted)
            }

            async fn release_captured_copy(
                &self,
                original: sluice_core::MessageId,
                copy: &$crate::NewMessage,
                provider_id: i64,
                now_ms: i64,
            ) -> Result<Option<sluice_core::MessageId>, StoreError> {
                let mut tx = self.write.begin().await?;
                let marked = sqlx::query(
                    "UPDATE messages SET released_at = $1 WHERE id = $2 AND status = 'captured'",
                )
                .bind(now_ms)
                .bind(original)
                .execute(&mut *tx)
                .await?;
                if marked.rows_affected() == 0 {
                    tx.rollback().await?;
                    return Ok(None);
                }
                let fates = self
                    .enqueue_in(&mut tx, std::slice::from_ref(copy), now_ms)
                    .await?;
                let Some($crate::Enqueued::New(copy_id)) = fates.into_iter().next() else {
                    tx.rollback().await?;
                    return Err(StoreError::Conflict("the copy was not written".into()));
                };
                // In the same transaction: no worker can claim the copy before it is bound
                // to the provider.
                sqlx::query("UPDATE messages SET release_provider_id = $1 WHERE id = $2")
                    .bind(provider_id)
                    .bind(copy_id)
                    .execute(&mut *tx)
                    .await?;
                Self::insert_event(
                    &mut tx,
                    original,
                    None,
                    "released",
                    &format!("copy={copy_id} provider_id={provider_id}"),
                    now_ms,
                )
                .await?;
                tx.commit().await?;
                Ok(Some(copy_id))
            }

            async fn sweep_captured(
                &self,
                defaults: $crate::CaptureRetention,
                now_ms: i64,
                limit: u32,
            ) -> Result<u64, StoreError> {
                // Per account: what is past its age, and what is past its count (the
                // newest `count` stay).
                let accounts = sqlx::query(
                    "SELECT a.id, a.capture_retention_count, a.capture_retention_days FROM accounts a \
                     WHERE EXISTS (SELECT 1 FROM messages m WHERE m.account_id = a.id \
                     AND m.status = 'captured')",
                )
                .fetch_all(&self.read)
                .await?;
                let mut swept = 0u64;
                for row in accounts {
                    let budget = i64::from(limit) - swept as i64;
                    if budget <= 0 {
                        break;
                    }
                    let account: sluice_core::AccountId = row.try_get("id")?;
                    let count: Option<i64> = row
                        .try_get::<Option<i64>, _>("capture_retention_count")?
                        .or(defaults.count);
                    let days: Option<i64> = row
                        .try_get::<Option<i64>, _>("capture_retention_days")?
                        .or(defaults.days);
                    let cutoff = days.map(|d| now_ms - d.saturating_mul(86_400_000));
                    let ids: Vec<sluice_core::MessageId> = sqlx::query(
                        "SELECT id FROM messages WHERE account_id = $1 AND status = 'captured' \
                         AND (created_at < $2 OR id < COALESCE((SELECT MIN(k.id) FROM (SELECT id FROM messages \
                         WHERE account_id = $1 AND status = 'captured' ORDER BY id DESC LIMIT $3) k), \
                         9223372036854775807)) \
                         ORDER BY id LIMIT $4",
                    )
                    .bind(account)
                    .bind(cutoff)
                    .bind(count.map(|c| c.max(0)).unwrap_or(i64::MAX))
                    .bind(budget)
                    .fetch_all(&self.read)
                    .await?
                    .iter()
                    .map(|row| row.try_get("id"))
                    .collect::<Result<_, _>>()?;
                    swept += self.delete_captured_ids(&ids).await?;
                }
                Ok(swept)
            }
        }
    };
}

pub(crate) use impl_capture_sql;
