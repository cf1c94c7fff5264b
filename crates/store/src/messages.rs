//! Messages as operators and tenants see them: one message with its attempts and events,
//! the filtered list, and what a caller may do to one (retry, cancel, release or delete a
//! captured one); bodies sealed again after a key rotation.

use async_trait::async_trait;
use sluice_core::MessageId;

use crate::StoreError;
use crate::types::*;

/// Reading messages and acting on one of them.
#[async_trait]
pub trait MessageStore: Send + Sync {
    async fn list_messages(
        &self,
        filter: &MessageFilter,
    ) -> Result<Vec<MessageSummary>, StoreError>;

    async fn message(&self, id: MessageId) -> Result<Option<MessageRecord>, StoreError>;

    /// Queues a failed or deferred message again, due now (a failed one to all its
    /// recipients). False when it is in another state.
    async fn requeue_message(&self, id: MessageId, now_ms: i64) -> Result<bool, StoreError>;

    /// Queues a captured message again, to go through `provider_id` (not the routing rules),
    /// with event `released`. False when it is not captured.
    async fn release_message(
        &self,
        id: MessageId,
        provider_id: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Deletes a captured message with its attempts and events. False when it is not captured.
    async fn delete_captured_message(&self, id: MessageId) -> Result<bool, StoreError>;

    /// Withdraws a queued or deferred message. False when it is in another state.
    async fn cancel_message(&self, id: MessageId, now_ms: i64) -> Result<bool, StoreError>;

    async fn attempts(&self, id: MessageId) -> Result<Vec<AttemptRow>, StoreError>;

    async fn events(&self, id: MessageId) -> Result<Vec<EventRow>, StoreError>;

    /// Seals again (`BodyCodec::reseal`) the bodies of up to `limit` messages after
    /// `after_id`, in id order: (the last id looked at — `None` when there are no more
    /// messages —, how many were looked at, how many rewritten).
    async fn reseal_bodies(
        &self,
        after_id: MessageId,
        limit: u32,
    ) -> Result<(Option<MessageId>, u64, u64), StoreError>;
}

/// Implements [`MessageStore`] for `$store` (pools `write` and `read` of `$db`, a `bodies`
/// codec); also the inherent `insert_event` the other areas' SQL shares.
macro_rules! impl_message_sql {
    ($store:ty, $db:ty) => {
        impl $store {
            async fn insert_event(
                tx: &mut sqlx::Transaction<'_, $db>,
                message_id: MessageId,
                account_id: Option<AccountId>,
                kind: &str,
                detail: &str,
                now_ms: i64,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO events (message_id, account_id, kind, detail, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(message_id)
                .bind(account_id)
                .bind(kind)
                .bind(detail)
                .bind(now_ms)
                .execute(&mut **tx)
                .await?;
                // The outbox of tenants' event webhooks is filled by the `events_webhook_outbox`
                // trigger (migration 0011) in this same transaction, without another round trip.
                Ok(())
            }

            /// Runs `update` (binding `now_ms` as `$1`, `id` as `$2`); when it changed the
            /// message, records event `kind` in the same transaction. `false`: unchanged.
            async fn change_status_with_event(
                &self,
                update: &'static str,
                id: MessageId,
                kind: &str,
                now_ms: i64,
            ) -> Result<bool, StoreError> {
                let mut tx = self.write.begin().await?;
                let done = sqlx::query(update)
                    .bind(now_ms)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                Self::insert_event(&mut tx, id, None, kind, "", now_ms).await?;
                tx.commit().await?;
                Ok(true)
            }
        }

        #[async_trait::async_trait]
        impl $crate::messages::MessageStore for $store {
            async fn requeue_message(&self, id: MessageId, now_ms: i64) -> Result<bool, StoreError> {
                self.change_status_with_event(
                    "UPDATE messages SET pending_rcpt = CASE WHEN status = 'failed' \
                     THEN rcpt_to ELSE pending_rcpt END, status = 'queued', next_attempt_at = $1, \
                     updated_at = $1 WHERE id = $2 AND status IN ('failed', 'deferred')",
                    id,
                    "retry_requested",
                    now_ms,
                )
                .await
            }

            async fn cancel_message(&self, id: MessageId, now_ms: i64) -> Result<bool, StoreError> {
                self.change_status_with_event(
                    "UPDATE messages SET status = 'cancelled', updated_at = $1 \
                     WHERE id = $2 AND status IN ('queued', 'deferred', 'held')",
                    id,
                    "cancelled",
                    now_ms,
                )
                .await
            }

            async fn list_messages(
                &self,
                filter: &MessageFilter,
            ) -> Result<Vec<MessageSummary>, StoreError> {
                let mut select = sqlx::QueryBuilder::<$db>::new(
                    "SELECT m.id, m.account_id, m.source, m.mail_from, m.rcpt_to, m.status, \
                     m.attempts, m.size, m.last_error, m.created_at, m.updated_at, m.seen_at, \
                     COALESCE(c.tags, m.tags) AS tags, c.subject, c.has_attachments \
                     FROM messages m LEFT JOIN captured_mail c ON c.message_id = m.id WHERE 1 = 1",
                );
                if let Some(account) = filter.account_id {
                    select.push(" AND m.account_id = ").push_bind(account);
                }
                if let Some(status) = filter.status {
                    select.push(" AND m.status = ").push_bind(status.as_str());
                }
                if let Some(from) = &filter.from {
                    select.push(" AND m.mail_from = ").push_bind(from.clone());
                }
                if let Some(to) = &filter.to {
                    select
                        .push(" AND m.rcpt_to LIKE ")
                        .push_bind(format!("%\"{}\"%", like_escape(to)))
                        .push(" ESCAPE '\\'");
                }
                if let Some(since) = filter.since {
                    select.push(" AND m.created_at >= ").push_bind(since);
                }
                if let Some(until) = filter.until {
                    select.push(" AND m.created_at < ").push_bind(until);
                }
                if let Some(before) = filter.before_id {
                    select.push(" AND m.id < ").push_bind(before);
                }
                if let Some(query) = &filter.query {
                    // Search is over the index: captured mail once parsed.
                    select.push(" AND c.message_id IS NOT NULL");
                    let fields: [(&str, &Vec<String>); 4] = [
                        ("c.from_text", &query.from),
                        ("c.to_text || ' ' || c.cc_text", &query.to),
                        ("c.subject", &query.subject),
                        ("c.tags", &query.tags),
                    ];
                    for (column, values) in fields {
                        for value in values {
                            select
                                .push(format!(" AND LOWER({column}) LIKE "))
                                .push_bind(format!("%{}%", like_escape(value)))
                                .push(" ESCAPE '\\'");
                        }
                    }
                    if query.has_attachment {
                        select.push(" AND c.has_attachments = ").push_bind(true);
                    }
                    match query.read {
                        Some(true) => select.push(" AND m.seen_at IS NOT NULL"),
                        Some(false) => select.push(" AND m.seen_at IS NULL"),
                        None => &mut select,
                    };
                    if let Some(before) = query.before_ms {
                        select.push(" AND m.created_at < ").push_bind(before);
                    }
                    if let Some(after) = query.after_ms {
                        select.push(" AND m.created_at >= ").push_bind(after);
                    }
                    if !query.words.is_empty() {
                        Self::push_words_match(&mut select, &query.words);
                    }
                }
                select.push(" ORDER BY m.id DESC LIMIT ").push_bind(filter.limit);
                let rows = select.build().fetch_all(&self.read).await?;
                rows.iter().map($crate::rows::message_summary_from_row).collect()
            }

            async fn release_message(
                &self,
                id: MessageId,
                provider_id: i64,
                now_ms: i64,
            ) -> Result<bool, StoreError> {
                let mut tx = self.write.begin().await?;
                let done = sqlx::query(
                    "UPDATE messages SET status = 'queued', pending_rcpt = rcpt_to, release_provider_id = $1, \
                     next_attempt_at = $2, attempts = 0, last_error = NULL, updated_at = $2 \
                     WHERE id = $3 AND status = 'captured'",
                )
                .bind(provider_id)
                .bind(now_ms)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                Self::insert_event(&mut tx, id, None, "released", &format!("provider_id={provider_id}"), now_ms)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn delete_captured_message(&self, id: MessageId) -> Result<bool, StoreError> {
                // Its attempts, events and their webhook outbox rows go with it (ON DELETE CASCADE).
                let row = sqlx::query(
                    "DELETE FROM messages WHERE id = $1 AND status = 'captured' RETURNING body_ref",
                )
                .bind(id)
                .fetch_optional(&self.write)
                .await?;
                let Some(row) = row else { return Ok(false) };
                let freed: Option<Vec<u8>> = row.try_get("body_ref")?;
                self.release_bodies(freed.into_iter().collect()).await;
                Ok(true)
            }

            async fn message(&self, id: MessageId) -> Result<Option<MessageRecord>, StoreError> {
                let row = sqlx::query("SELECT * FROM messages WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.read)
                    .await?;
                let Some(row) = row else { return Ok(None) };
                Ok(Some($crate::rows::message_record_from_row(&row, &self.bodies)?))
            }

            async fn attempts(&self, id: MessageId) -> Result<Vec<AttemptRow>, StoreError> {
                let rows = sqlx::query(
                    "SELECT provider, provider_id, provider_message_id, verdict, code, response, \
                     started_at, finished_at FROM delivery_attempts WHERE message_id = $1 ORDER BY id",
                )
                .bind(id)
                .fetch_all(&self.read)
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok(AttemptRow {
                            provider: row.try_get("provider")?,
                            provider_id: row.try_get("provider_id")?,
                            provider_message_id: row.try_get("provider_message_id")?,
                            verdict: $crate::rows::Columns::kind(row, "verdict")?,
                            code: row.try_get("code")?,
                            response: row.try_get("response")?,
                            started_at: row.try_get("started_at")?,
                            finished_at: row.try_get("finished_at")?,
                        })
                    })
                    .collect()
            }

            async fn events(&self, id: MessageId) -> Result<Vec<EventRow>, StoreError> {
                let rows = sqlx::query(
                    "SELECT kind, detail, created_at FROM events WHERE message_id = $1 ORDER BY id",
                )
                .bind(id)
                .fetch_all(&self.read)
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok(EventRow {
                            kind: row.try_get("kind")?,
                            detail: row.try_get("detail")?,
                            created_at: row.try_get("created_at")?,
                        })
                    })
                    .collect()
            }

            async fn reseal_bodies(
                &self,
                after_id: MessageId,
                limit: u32,
            ) -> Result<(Option<MessageId>, u64, u64), StoreError> {
                let rows = sqlx::query(
                    "SELECT id, body, body_ref FROM messages WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(after_id)
                .bind(i64::from(limit))
                .fetch_all(&self.read)
                .await?;
                let mut last = None;
                let mut rewrites = Vec::new();
                for row in &rows {
                    let id: MessageId = row.try_get("id")?;
                    let stored: Vec<u8> = row.try_get("body")?;
                    let reference: Option<Vec<u8>> = row.try_get("body_ref")?;
                    last = Some(id);
                    // A stored body's data key is wrapped again; its bytes stay as they are.
                    let rewrapped = match (&reference, &self.body_store) {
                        (Some(reference), Some(store)) => store
                            .rewrap(reference)
                            .map_err($crate::queue::body_store_error)?,
                        _ => None,
                    };
                    let resealed = self.bodies.reseal(&stored)?;
                    if resealed.is_some() || rewrapped.is_some() {
                        rewrites.push((id, stored, resealed, reference, rewrapped));
                    }
                }
                let mut tx = self.write.begin().await?;
                let mut rewritten = 0;
                for (id, stored, resealed, reference, rewrapped) in &rewrites {
                    // Only if nobody changed it meanwhile (retention may have emptied it).
                    let done = sqlx::query(
                        "UPDATE messages SET body = $1, body_ref = $2 \
                         WHERE id = $3 AND body = $4 AND body_ref IS NOT DISTINCT FROM $5",
                    )
                    .bind(resealed.as_deref().unwrap_or(stored))
                    .bind(rewrapped.as_ref().or(reference.as_ref()))
                    .bind(*id)
                    .bind(stored.as_slice())
                    .bind(reference.as_ref())
                    .execute(&mut *tx)
                    .await?;
                    rewritten += done.rows_affected();
                }
                tx.commit().await?;
                Ok((last, rows.len() as u64, rewritten))
            }
        }
    };
}

pub(crate) use impl_message_sql;
