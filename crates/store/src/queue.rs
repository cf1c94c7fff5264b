//! The queue as the accept path and the workers use it: new messages and delivery
//! attempts (one transaction for both, the group commit's), claims under lease, what a
//! node does with its leases, and retention.

use async_trait::async_trait;
use sluice_core::{AccountId, MessageId};

use crate::StoreError;
use crate::types::*;

/// The delivery queue: writes of the accept path and the workers, claims, leases, retention.
#[async_trait]
pub trait QueueStore: Send + Sync {
    /// Where large bodies go (`None`: every body stays in its row).
    fn body_storage(&self) -> Option<std::sync::Arc<dyn sluice_core::BodyStorage>>;

    /// Commits all messages (a `queued` event and the monthly usage count for each) in one
    /// transaction.
    /// Returns their ids in order. Nothing is visible before the commit. A message whose
    /// idempotency key is taken fails the whole call (`StoreError::Conflict`): keyed sends
    /// go through `write_queue`, which answers them one by one.
    async fn enqueue_messages(
        &self,
        messages: &[NewMessage],
        now_ms: i64,
    ) -> Result<Vec<MessageId>, StoreError>;

    /// New messages and delivery attempts in one transaction (the group commit writes both
    /// kinds together: one fsync for the batch): per message what became of it, in order,
    /// then per attempt whether it was applied, as `record_attempts` answers. A message
    /// whose idempotency key (unexpired) is taken is not written and does not fail the
    /// batch: it answers `Enqueued::KeyTaken` with the record of the one that took it.
    async fn write_queue(
        &self,
        messages: &[NewMessage],
        attempts: &[AttemptRecord],
        now_ms: i64,
    ) -> Result<(Vec<Enqueued>, Vec<bool>), StoreError>;

    /// The account's record of an idempotency key, unless it expired
    /// (`IDEMPOTENCY_TTL_MS` before `now_ms`).
    async fn idempotency_key(
        &self,
        account_id: AccountId,
        key: &str,
        now_ms: i64,
    ) -> Result<Option<sluice_core::idempotency::IdempotencyRecord>, StoreError>;

    /// A sync send's key once its answer is known: `Some` remembers the answer, `None`
    /// forgets the key (a failure is not remembered: a retry runs again).
    async fn settle_idempotency_key(
        &self,
        account_id: AccountId,
        key: &str,
        answer: Option<sluice_core::idempotency::SendAnswer>,
    ) -> Result<(), StoreError>;

    /// Leases up to `limit` messages that are due (or whose lease, held by another owner,
    /// expired) to `owner`, for `lease_ms`. A message `owner` leased itself is never taken
    /// again by `owner`, however late the clock says it is. SQLite measures the lease with
    /// `now_ms`; PostgreSQL with the database's clock, so no node's clock jump steals it.
    async fn claim_due_messages(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<ClaimedMessage>, StoreError>;

    /// Records an attempt and applies its outcome, if `owner` still holds the lease.
    /// Returns false (and changes nothing) when the lease was lost.
    async fn record_attempt(&self, attempt: &AttemptRecord) -> Result<bool, StoreError>;

    /// Several attempts in one transaction (group commit); one answer per attempt.
    async fn record_attempts(&self, attempts: &[AttemptRecord]) -> Result<Vec<bool>, StoreError>;

    /// Returns every leased message to the queue. Only safe when no other node
    /// shares the database (SQLite, at start-up).
    async fn release_all_leases(&self, now_ms: i64) -> Result<u64, StoreError>;

    /// Gives a message `owner` leased back to the queue without an attempt (its provider
    /// had no free slot), due at `next_attempt_at`; its attempts are unchanged. False when
    /// the lease was lost.
    async fn defer_untried(
        &self,
        id: MessageId,
        owner: &str,
        next_attempt_at: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    /// The node's wall clock jumped back by `-jump_ms` and now reads `now_ms`. On SQLite
    /// (whose only clock is this node's) waiting messages due after `now_ms` are moved by
    /// the jump: a retry planned for 5 minutes later still goes 5 minutes later, and what
    /// was due stays due (mail queued after the jump only becomes due earlier);
    /// on PostgreSQL nothing moves (due times are also compared with the database's clock,
    /// and other nodes' clocks did not jump). The number of messages moved.
    async fn follow_clock_jump(&self, jump_ms: i64, now_ms: i64) -> Result<u64, StoreError>;

    async fn count_by_status(&self) -> Result<Vec<(String, i64)>, StoreError>;

    /// Empties the bodies of up to `limit` finished messages (delivered, failed, bounced,
    /// cancelled) last changed before `before_ms`; how many.
    async fn purge_bodies(
        &self,
        before_ms: i64,
        now_ms: i64,
        limit: u32,
    ) -> Result<u64, StoreError>;

    /// Deletes up to `limit` finished messages last changed before `before_ms`, with their
    /// attempts, events and webhook posts; how many.
    async fn purge_messages(&self, before_ms: i64, limit: u32) -> Result<u64, StoreError>;

    /// Deletes up to `limit` idempotency keys created before `before_ms`; how many.
    async fn purge_idempotency_keys(&self, before_ms: i64, limit: u32) -> Result<u64, StoreError>;

    /// Deletes stored bodies no message names whose last chunk was written before
    /// `before_ms` (their writer died, or their release failed); how many. PostgreSQL only:
    /// SQLite's spool frees its orphans when it opens, and answers 0.
    async fn purge_orphan_bodies(&self, before_ms: i64) -> Result<u64, StoreError>;

    /// When the oldest message still waiting for delivery (queued or deferred) was accepted.
    async fn oldest_waiting_created_at(&self) -> Result<Option<i64>, StoreError>;
}

/// Implements [`QueueStore`] for `$store`, which has `write` and `read` pools of `$db`, a
/// `bodies` codec and inherent `async fn release_leases(&self, now_ms: i64)`,
/// `async fn shift_due_times(&self, jump_ms: i64, now_ms: i64)` and
/// `async fn sweep_orphan_bodies(&self, before_ms: i64)`. The claim statement binds
/// `$1` owner, `$2` lease length in ms, `$3` the node's now, `$4` limit; it never takes a
/// message whose lease `$1` itself holds (a node knows what it is working on: its own
/// lease can only look expired because the clock jumped).
macro_rules! impl_queue_sql {
    ($store:ty, $db:ty, claim_sql = $claim_sql:expr) => {
        impl $store {
            /// New messages inside a transaction: their idempotency keys claimed, one INSERT
            /// per chunk of rows, one usage update per account. Returns each message's fate
            /// in order.
            async fn enqueue_in(
                &self,
                tx: &mut sqlx::Transaction<'_, $db>,
                messages: &[NewMessage],
                now_ms: i64,
            ) -> Result<Vec<$crate::Enqueued>, StoreError> {
                let claims = Self::claim_idempotency_keys(tx, messages, now_ms).await?;
                let to_write: Vec<&NewMessage> = messages
                    .iter()
                    .zip(&claims)
                    .filter(|(_, claim)| **claim == $crate::idempotency::KeyClaim::Write)
                    .map(|(message, _)| message)
                    .collect();
                let mut ids = Vec::with_capacity(to_write.len());
                for chunk in to_write.chunks($crate::sql::ROWS_PER_STATEMENT) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO messages (account_id, source, mail_from, rcpt_to, pending_rcpt, smtputf8, \
                         eight_bit, size, body, body_ref, body_id, status, attempts, next_attempt_at, \
                         lease_owner, lease_until, created_at, updated_at, tags, max_attempts, sandbox) ",
                    );
                    let sealed: Vec<Option<Vec<u8>>> = chunk
                        .iter()
                        .map(|message| self.bodies.seal($crate::queue::row_bytes(&message.body)))
                        .collect();
                    insert.push_values(chunk.iter().zip(&sealed), |mut row, (message, sealed)| {
                        let (status, owner, lease_until) = match &message.lease {
                            Some((owner, until)) => {
                                (MessageStatus::Sending, Some(owner.as_str()), Some(*until))
                            }
                            None => (MessageStatus::Queued, None, None),
                        };
                        let rcpt = json(&message.envelope.rcpt_to);
                        row.push_bind(message.account_id)
                            .push_bind(message.source.as_str())
                            .push_bind(message.envelope.mail_from.as_str())
                            .push_bind(rcpt.clone())
                            .push_bind(rcpt)
                            .push_bind(message.envelope.smtputf8)
                            .push_bind(message.envelope.eight_bit)
                            .push_bind(message.body.len() as i64)
                            .push_bind(
                                sealed.as_deref().unwrap_or($crate::queue::row_bytes(&message.body)),
                            )
                            .push_bind(message.body.reference())
                            .push_bind(
                                message.body.reference().and_then($crate::pg_bodies::body_id_of),
                            )
                            .push_bind(status.as_str())
                            .push_bind(0_i64)
                            .push_bind(now_ms)
                            .push_bind(owner)
                            .push_bind(lease_until)
                            .push_bind(now_ms)
                            .push_bind(now_ms)
                            .push_bind(json(&message.tags))
                            .push_bind(message.max_attempts.map(i64::from))
                            .push_bind(message.sandbox);
                    });
                    insert.push(" RETURNING id");
                    // One statement inserts the chunk; ids are handed out in the order the
                    // rows are inserted (SQLite's rowid and PostgreSQL's sequence both only
                    // grow), so the sorted ids answer the chunk's messages in order.
                    // The `queued` events come from the `messages_queued_event` trigger.
                    let mut chunk_ids: Vec<i64> =
                        insert.build_query_scalar::<i64>().fetch_all(&mut **tx).await?;
                    chunk_ids.sort_unstable();
                    ids.extend(chunk_ids);
                }
                let fates = $crate::idempotency::fates_of_batch(messages, claims, ids, now_ms)?;
                let bound: Vec<(AccountId, &str, MessageId)> = messages
                    .iter()
                    .zip(&fates)
                    .filter_map(|(message, fate)| match (fate, &message.idempotency) {
                        ($crate::Enqueued::New(id), Some(key)) => {
                            Some((message.account_id, key.key.as_str(), *id))
                        }
                        _ => None,
                    })
                    .collect();
                Self::bind_idempotency_keys(tx, &bound).await?;
                // One usage update per account in the batch, not per message.
                let mut per_account: Vec<(AccountId, i64)> = Vec::new();
                for message in to_write {
                    match per_account.iter_mut().find(|(a, _)| *a == message.account_id) {
                        Some((_, n)) => *n += 1,
                        None => per_account.push((message.account_id, 1)),
                    }
                }
                for (account_id, n) in per_account {
                    sqlx::query(
                        "INSERT INTO account_usage (account_id, month, messages) VALUES ($1, $2, $3) \
                         ON CONFLICT (account_id, month) \
                         DO UPDATE SET messages = account_usage.messages + $3",
                    )
                    .bind(account_id)
                    .bind(sluice_core::month_of(now_ms))
                    .bind(n)
                    .execute(&mut **tx)
                    .await?;
                }
                Ok(fates)
            }

            /// Attempts inside a transaction, a few statements per batch rather than per
            /// attempt (each statement is a round trip to the database): one UPDATE of the
            /// messages whose lease still holds, one INSERT of their provider calls, one of their
            /// events. Returns, per attempt, whether it was applied; nothing is written for an
            /// attempt whose lease was lost, nor for a second attempt of the same message.
            async fn record_attempts_in(
                tx: &mut sqlx::Transaction<'_, $db>,
                attempts: &[AttemptRecord],
            ) -> Result<Vec<bool>, StoreError> {
                let mut applied = vec![false; attempts.len()];
                let mut seen = std::collections::HashSet::new();
                let firsts: Vec<usize> = (0..attempts.len())
                    .filter(|&i| seen.insert(attempts[i].message_id))
                    .collect();
                for chunk in firsts.chunks($crate::sql::ROWS_PER_STATEMENT) {
                    let mut update = sqlx::QueryBuilder::<$db>::new(
                        "UPDATE messages SET status = v.column2, pending_rcpt = v.column3, \
                         attempts = attempts + 1, next_attempt_at = v.column4, last_error = v.column5, \
                         lease_owner = NULL, lease_until = NULL, updated_at = v.column6 FROM (",
                    );
                    update.push_values(chunk, |mut row, &i| {
                        let a = &attempts[i];
                        row.push_bind(a.message_id)
                            .push_bind(a.new_status.as_str())
                            .push_bind(json(&a.pending_rcpt))
                            .push_bind(a.next_attempt_at)
                            .push_bind(a.last_error.as_deref())
                            .push_bind(a.finished_at)
                            .push_bind(a.lease_owner.as_str());
                    });
                    update.push(
                        ") AS v WHERE messages.id = v.column1 AND messages.lease_owner = v.column7 \
                         RETURNING messages.id",
                    );
                    let done: std::collections::HashSet<i64> = update
                        .build_query_scalar::<i64>()
                        .fetch_all(&mut **tx)
                        .await?
                        .into_iter()
                        .collect();
                    for &i in chunk {
                        applied[i] = done.contains(&attempts[i].message_id);
                    }
                }
                let kept: Vec<&AttemptRecord> = attempts
                    .iter()
                    .zip(&applied)
                    .filter_map(|(a, ok)| ok.then_some(a))
                    .collect();
                Self::insert_provider_calls(tx, &kept).await?;
                let events: Vec<(MessageId, &str, &str, i64)> = kept
                    .iter()
                    .flat_map(|a| {
                        a.events
                            .iter()
                            .map(|(kind, detail)| (a.message_id, kind.as_str(), detail.as_str(), a.finished_at))
                    })
                    .collect();
                for chunk in events.chunks($crate::sql::ROWS_PER_STATEMENT) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO events (message_id, account_id, kind, detail, created_at) ",
                    );
                    insert.push_values(chunk, |mut row, &(id, kind, detail, at)| {
                        row.push_bind(id)
                            .push_bind(None::<AccountId>)
                            .push_bind(kind)
                            .push_bind(detail)
                            .push_bind(at);
                    });
                    // The `events_webhook_outbox` trigger fills tenants' webhook outbox.
                    insert.build().execute(&mut **tx).await?;
                }
                Ok(applied)
            }

            /// One `delivery_attempts` row per provider call (one for the whole attempt when
            /// it made no call), in as few statements as the batch allows.
            async fn insert_provider_calls(
                tx: &mut sqlx::Transaction<'_, $db>,
                attempts: &[&AttemptRecord],
            ) -> Result<(), StoreError> {
                let mut rows: Vec<(&AttemptRecord, Option<i64>, &sluice_core::DeliveryReport)> =
                    Vec::new();
                for attempt in attempts {
                    match attempt.calls.is_empty() {
                        true => rows.push((attempt, None, &attempt.report)),
                        false => rows.extend(
                            attempt.calls.iter().map(|c| (*attempt, c.provider_id, &c.report)),
                        ),
                    }
                }
                for chunk in rows.chunks($crate::sql::ROWS_PER_STATEMENT) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO delivery_attempts (message_id, provider, verdict, code, response, \
                         recipients, started_at, finished_at, provider_id, provider_message_id) ",
                    );
                    insert.push_values(chunk, |mut row, &(attempt, provider_id, report)| {
                        let verdict = report.overall().as_str();
                        let first = report.first_failure().or(report.recipients.first());
                        row.push_bind(attempt.message_id)
                            .push_bind(report.provider.as_str())
                            .push_bind(verdict)
                            .push_bind(first.and_then(|r| r.code).map(i64::from))
                            .push_bind(first.map(|r| r.response.as_str()).unwrap_or_default())
                            .push_bind(json(&report.recipients))
                            .push_bind(attempt.started_at)
                            .push_bind(attempt.finished_at)
                            .push_bind(provider_id)
                            .push_bind(report.provider_message_id.as_deref());
                    });
                    insert.build().execute(&mut **tx).await?;
                }
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::queue::QueueStore for $store {
            fn body_storage(&self) -> Option<std::sync::Arc<dyn sluice_core::BodyStorage>> {
                self.body_store.clone()
            }

            async fn enqueue_messages(
                &self,
                messages: &[NewMessage],
                now_ms: i64,
            ) -> Result<Vec<MessageId>, StoreError> {
                self.sync_bodies(messages).await?;
                let mut tx = self.write.begin().await?;
                let fates = self.enqueue_in(&mut tx, messages, now_ms).await?;
                let ids = fates
                    .into_iter()
                    .map(|fate| match fate {
                        $crate::Enqueued::New(id) => Ok(id),
                        $crate::Enqueued::KeyTaken(_) => {
                            Err(StoreError::Conflict("idempotency key taken".into()))
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                tx.commit().await?;
                Ok(ids)
            }

            async fn write_queue(
                &self,
                messages: &[NewMessage],
                attempts: &[AttemptRecord],
                now_ms: i64,
            ) -> Result<(Vec<$crate::Enqueued>, Vec<bool>), StoreError> {
                // The bodies' sync runs while the statements do (nothing they write is
                // visible, or durable, before the commit), and ends before the commit starts:
                // no committed row ever names a body that is not durable.
                let statements = async {
                    let mut tx = self.write.begin().await?;
                    let fates = self.enqueue_in(&mut tx, messages, now_ms).await?;
                    let applied = Self::record_attempts_in(&mut tx, attempts).await?;
                    Ok::<_, StoreError>((tx, fates, applied))
                };
                let (synced, written) = tokio::join!(self.sync_bodies(messages), statements);
                // A failed sync drops the transaction unfinished: it rolls back, and
                // `sync_bodies` gave the bodies back.
                synced?;
                let (tx, fates, applied) = match written {
                    Ok(written) => written,
                    // Failed before COMMIT: rolled back, so no row names these bodies. (A
                    // failed COMMIT is in doubt, so its bodies are left to start-up recovery.)
                    Err(error) => {
                        let references = messages
                            .iter()
                            .filter_map(|m| m.body.reference())
                            .map(<[u8]>::to_vec)
                            .collect();
                        self.release_bodies(references).await;
                        return Err(error);
                    }
                };
                tx.commit().await?;
                Ok((fates, applied))
            }

            async fn idempotency_key(
                &self,
                account_id: AccountId,
                key: &str,
                now_ms: i64,
            ) -> Result<Option<sluice_core::idempotency::IdempotencyRecord>, StoreError> {
                Self::idempotency_record(&self.read, account_id, key, now_ms).await
            }

            async fn settle_idempotency_key(
                &self,
                account_id: AccountId,
                key: &str,
                answer: Option<sluice_core::idempotency::SendAnswer>,
            ) -> Result<(), StoreError> {
                self.settle_idempotency(account_id, key, answer).await
            }

            async fn purge_idempotency_keys(
                &self,
                before_ms: i64,
                limit: u32,
            ) -> Result<u64, StoreError> {
                self.purge_idempotency(before_ms, limit).await
            }

            async fn claim_due_messages(
                &self,
                owner: &str,
                now_ms: i64,
                lease_ms: i64,
                limit: u32,
            ) -> Result<Vec<ClaimedMessage>, StoreError> {
                let rows = sqlx::query($claim_sql)
                .bind(owner)
                .bind(lease_ms)
                .bind(now_ms)
                .bind(i64::from(limit))
                .fetch_all(&self.write)
                .await?;
                rows.iter()
                    .map(|row| $crate::rows::claimed_from_row(row, &self.bodies))
                    .collect()
            }

            async fn record_attempt(&self, attempt: &AttemptRecord) -> Result<bool, StoreError> {
                let applied = self.record_attempts(std::slice::from_ref(attempt)).await?;
                Ok(applied.first().copied().unwrap_or(false))
            }

            async fn record_attempts(&self, attempts: &[AttemptRecord]) -> Result<Vec<bool>, StoreError> {
                let mut tx = self.write.begin().await?;
                let applied = Self::record_attempts_in(&mut tx, attempts).await?;
                tx.commit().await?;
                Ok(applied)
            }

            async fn release_all_leases(&self, now_ms: i64) -> Result<u64, StoreError> {
                self.release_leases(now_ms).await
            }

            async fn defer_untried(
                &self,
                id: MessageId,
                owner: &str,
                next_attempt_at: i64,
                now_ms: i64,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE messages SET status = CASE WHEN attempts = 0 THEN 'queued' ELSE 'deferred' END, \
                     next_attempt_at = $1, lease_owner = NULL, lease_until = NULL, updated_at = $2 \
                     WHERE id = $3 AND lease_owner = $4 AND status = 'sending'",
                )
                .bind(next_attempt_at)
                .bind(now_ms)
                .bind(id)
                .bind(owner)
                .execute(&self.write)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn follow_clock_jump(&self, jump_ms: i64, now_ms: i64) -> Result<u64, StoreError> {
                self.shift_due_times(jump_ms, now_ms).await
            }

            async fn count_by_status(&self) -> Result<Vec<(String, i64)>, StoreError> {
                let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM messages GROUP BY status")
                    .fetch_all(&self.read)
                    .await?;
                rows.iter()
                    .map(|row| Ok((row.try_get("status")?, row.try_get("n")?)))
                    .collect()
            }

            async fn purge_bodies(&self, before_ms: i64, now_ms: i64, limit: u32) -> Result<u64, StoreError> {
                // The stored contents go back to the body store only once the rows no
                // longer name them (a crash in between leaves them to start-up recovery).
                let mut tx = self.write.begin().await?;
                let rows = sqlx::query(
                    "SELECT id, body_ref FROM messages \
                     WHERE status IN ('delivered', 'failed', 'bounced', 'cancelled') \
                       AND updated_at < $1 AND body_purged_at IS NULL \
                     ORDER BY updated_at LIMIT $2",
                )
                .bind(before_ms)
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await?;
                if rows.is_empty() {
                    return Ok(0);
                }
                let mut freed = Vec::new();
                let mut update = sqlx::QueryBuilder::<$db>::new(
                    "UPDATE messages SET body = ",
                );
                update
                    .push_bind(Vec::<u8>::new())
                    .push(", body_ref = NULL, body_id = NULL, body_purged_at = ")
                    .push_bind(now_ms)
                    .push(" WHERE id IN (");
                let mut ids = update.separated(", ");
                for row in &rows {
                    ids.push_bind(row.try_get::<i64, _>("id")?);
                    freed.extend(row.try_get::<Option<Vec<u8>>, _>("body_ref")?);
                }
                ids.push_unseparated(")");
                let purged = update.build().execute(&mut *tx).await?.rows_affected();
                tx.commit().await?;
                if !freed.is_empty() {
                    $crate::spool::crashpoint("purge-committed");
                }
                self.release_bodies(freed).await;
                Ok(purged)
            }

            async fn purge_messages(&self, before_ms: i64, limit: u32) -> Result<u64, StoreError> {
                // Attempts, events and webhook posts go with their message (ON DELETE CASCADE).
                let rows = sqlx::query(
                    "DELETE FROM messages WHERE id IN (\
                       SELECT id FROM messages \
                       WHERE status IN ('delivered', 'failed', 'bounced', 'cancelled') \
                         AND updated_at < $1 \
                       ORDER BY updated_at LIMIT $2) \
                     RETURNING body_ref",
                )
                .bind(before_ms)
                .bind(i64::from(limit))
                .fetch_all(&self.write)
                .await?;
                if !rows.is_empty() {
                    $crate::spool::crashpoint("purge-committed");
                }
                let deleted = rows.len() as u64;
                let freed = rows
                    .iter()
                    .map(|row| row.try_get::<Option<Vec<u8>>, _>("body_ref"))
                    .collect::<Result<Vec<_>, _>>()?;
                self.release_bodies(freed.into_iter().flatten().collect()).await;
                Ok(deleted)
            }

            async fn purge_orphan_bodies(&self, before_ms: i64) -> Result<u64, StoreError> {
                self.sweep_orphan_bodies(before_ms).await
            }

            async fn oldest_waiting_created_at(&self) -> Result<Option<i64>, StoreError> {
                let row = sqlx::query(
                    "SELECT MIN(created_at) AS oldest FROM messages WHERE status IN ('queued', 'deferred')",
                )
                .fetch_one(&self.read)
                .await?;
                Ok(row.try_get("oldest")?)
            }
        }
    };
}

pub(crate) use impl_queue_sql;

/// What a message's row keeps in `body`: the whole message, or the head of a stored one.
pub(crate) fn row_bytes(body: &sluice_core::MessageBody) -> &[u8] {
    match body {
        sluice_core::MessageBody::Inline(bytes) => bytes,
        sluice_core::MessageBody::Stored(stored) => &stored.head,
    }
}

/// A body store's failure as the queue reports it: a disk fault is a refusal (452 / 507).
pub(crate) fn body_store_error(error: sluice_core::BodyError) -> StoreError {
    match error {
        sluice_core::BodyError::Storage(why) => {
            crate::reserve::note_body_storage_fault();
            StoreError::Storage(why)
        }
        sluice_core::BodyError::Unavailable(why) => StoreError::Unavailable(why),
        sluice_core::BodyError::Corrupt(why) => StoreError::Corrupt(why),
    }
}

/// Inherent methods a store with an optional body store gets: `$store` has a field
/// `body_store: Option<Arc<dyn BodyStorage>>`.
macro_rules! impl_body_store_use {
    ($store:ty) => {
        impl $store {
            /// Makes the stored contents these messages name durable, before their rows
            /// commit. When that fails no row is written, so nothing will name them: they
            /// are given back, and the batch refused.
            async fn sync_bodies(&self, messages: &[NewMessage]) -> Result<(), StoreError> {
                let references: Vec<&[u8]> =
                    messages.iter().filter_map(|m| m.body.reference()).collect();
                if references.is_empty() {
                    return Ok(());
                }
                let Some(store) = &self.body_store else {
                    return Err(StoreError::Corrupt(
                        "a stored body, and no body store configured".into(),
                    ));
                };
                if let Err(error) = store.sync(&references).await {
                    store
                        .release(references.iter().map(|r| r.to_vec()).collect())
                        .await;
                    return Err($crate::queue::body_store_error(error));
                }
                $crate::spool::crashpoint("body-synced");
                Ok(())
            }

            /// Gives back stored contents whose rows no longer name them (after that commit).
            async fn release_bodies(&self, references: Vec<Vec<u8>>) {
                if let (Some(store), false) = (&self.body_store, references.is_empty()) {
                    store.release(references).await;
                }
            }
        }
    };
}

pub(crate) use impl_body_store_use;
