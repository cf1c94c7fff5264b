//! The SQL of the send API's idempotency keys (table `idempotency_keys`, migration 0019),
//! shared by both backends: inherent methods the queue area (`queue.rs`) calls.
//!
//! A keyed message claims its key in the transaction that writes it, before the message's
//! INSERT: `INSERT ... ON CONFLICT DO UPDATE ... WHERE expired`, which takes a free or
//! expired key and leaves a live one alone (on PostgreSQL it waits for a transaction that
//! holds the same key to end, then sees its row). A message whose key is taken is left out
//! of the INSERT, so a conflict never aborts the batch it shares with others. Keys are
//! claimed in (account, key) order, so two batches never wait on each other's keys.

use sluice_core::MessageId;
use sluice_core::idempotency::IdempotencyRecord;

/// What the claim decided for one message of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyClaim {
    /// Write the message (no key, or the key is now its own).
    Write,
    /// Do not: an earlier commit holds the key.
    Taken(IdempotencyRecord),
    /// Do not: the message at this index of the same batch claimed the key first.
    SameAs(usize),
}

/// The record of a key a message of this batch claimed, once that message has its id.
pub(crate) fn record_of_batch_claim(
    claim: &sluice_core::idempotency::IdempotencyClaim,
    id: MessageId,
    now_ms: i64,
) -> IdempotencyRecord {
    IdempotencyRecord {
        request_hash: claim.request_hash.clone(),
        message_id: Some(id),
        answer: claim.answer,
        created_at: now_ms,
    }
}

/// Each message's fate in a batch, in order, from the claims and the ids of the messages
/// written (in the order they were written).
pub(crate) fn fates_of_batch(
    messages: &[crate::NewMessage],
    claims: Vec<KeyClaim>,
    written_ids: Vec<MessageId>,
    now_ms: i64,
) -> Result<Vec<crate::Enqueued>, crate::StoreError> {
    use crate::Enqueued;
    let mut written = written_ids.into_iter();
    let mut fates: Vec<Enqueued> = Vec::with_capacity(messages.len());
    for claim in claims {
        let fate = match claim {
            KeyClaim::Write => Enqueued::New(written.next().ok_or_else(|| {
                crate::StoreError::Database("fewer ids than messages written".into())
            })?),
            KeyClaim::Taken(record) => Enqueued::KeyTaken(record),
            // Its twin earlier in the batch was written (this one points at it) or found
            // the key taken (so is this one, by the same record).
            KeyClaim::SameAs(first) => match (&fates[first], &messages[first].idempotency) {
                (Enqueued::New(id), Some(key)) => {
                    Enqueued::KeyTaken(record_of_batch_claim(key, *id, now_ms))
                }
                (Enqueued::KeyTaken(record), _) => Enqueued::KeyTaken(record.clone()),
                (Enqueued::New(_), None) => {
                    return Err(crate::StoreError::Database(
                        "a keyed message's twin in the batch had no key".into(),
                    ));
                }
            },
        };
        fates.push(fate);
    }
    Ok(fates)
}

/// Implements the idempotency methods for `$store` (pools `write` and `read` of `$db`).
macro_rules! impl_idempotency_sql {
    ($store:ty, $db:ty) => {
        impl $store {
            /// The unexpired record of `key`, read through `executor` (a pool, or the
            /// transaction that just failed to claim it).
            async fn idempotency_record<'e, E>(
                executor: E,
                account_id: AccountId,
                key: &str,
                now_ms: i64,
            ) -> Result<Option<sluice_core::idempotency::IdempotencyRecord>, StoreError>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let row = sqlx::query(
                    "SELECT request_hash, message_id, answer, created_at FROM idempotency_keys \
                     WHERE account_id = $1 AND idem_key = $2 AND created_at >= $3",
                )
                .bind(account_id)
                .bind(key)
                .bind(now_ms - sluice_core::idempotency::IDEMPOTENCY_TTL_MS)
                .fetch_optional(executor)
                .await?;
                row.as_ref().map($crate::rows::idempotency_from_row).transpose()
            }

            /// Claims the keys of a batch's messages, in (account, key) order: per message,
            /// whether it is to be written.
            async fn claim_idempotency_keys(
                tx: &mut sqlx::Transaction<'_, $db>,
                messages: &[NewMessage],
                now_ms: i64,
            ) -> Result<Vec<$crate::idempotency::KeyClaim>, StoreError> {
                use $crate::idempotency::KeyClaim;
                let mut claims = vec![KeyClaim::Write; messages.len()];
                let mut keyed: Vec<(AccountId, &str, usize)> = messages
                    .iter()
                    .enumerate()
                    .filter_map(|(i, m)| {
                        m.idempotency.as_ref().map(|c| (m.account_id, c.key.as_str(), i))
                    })
                    .collect();
                // Sorted by key, then by position: the first of equal keys claims it.
                keyed.sort_unstable();
                let mut previous: Option<(AccountId, &str, usize)> = None;
                for (account_id, key, i) in keyed {
                    if let Some((a, k, first)) = previous
                        && a == account_id
                        && k == key
                    {
                        claims[i] = KeyClaim::SameAs(first);
                        continue;
                    }
                    previous = Some((account_id, key, i));
                    let Some(claim) = messages[i].idempotency.as_ref() else { continue };
                    let claimed = sqlx::query(
                        "INSERT INTO idempotency_keys \
                         (account_id, idem_key, request_hash, message_id, answer, created_at) \
                         VALUES ($1, $2, $3, NULL, $4, $5) \
                         ON CONFLICT (account_id, idem_key) DO UPDATE SET \
                         request_hash = excluded.request_hash, message_id = NULL, \
                         answer = excluded.answer, created_at = excluded.created_at \
                         WHERE idempotency_keys.created_at < $6",
                    )
                    .bind(account_id)
                    .bind(key)
                    .bind(claim.request_hash.as_str())
                    .bind(claim.answer.map(|a| a.as_str()))
                    .bind(now_ms)
                    .bind(now_ms - sluice_core::idempotency::IDEMPOTENCY_TTL_MS)
                    .execute(&mut **tx)
                    .await?;
                    if claimed.rows_affected() == 0 {
                        let record = Self::idempotency_record(&mut **tx, account_id, key, now_ms)
                            .await?
                            .ok_or_else(|| {
                                StoreError::Database("an idempotency key vanished while claimed".into())
                            })?;
                        claims[i] = KeyClaim::Taken(record);
                    }
                }
                Ok(claims)
            }

            /// Points each key the batch claimed at its message.
            async fn bind_idempotency_keys(
                tx: &mut sqlx::Transaction<'_, $db>,
                bound: &[(AccountId, &str, MessageId)],
            ) -> Result<(), StoreError> {
                for (account_id, key, id) in bound {
                    sqlx::query(
                        "UPDATE idempotency_keys SET message_id = $1 \
                         WHERE account_id = $2 AND idem_key = $3",
                    )
                    .bind(*id)
                    .bind(*account_id)
                    .bind(*key)
                    .execute(&mut **tx)
                    .await?;
                }
                Ok(())
            }

            async fn settle_idempotency(
                &self,
                account_id: AccountId,
                key: &str,
                answer: Option<sluice_core::idempotency::SendAnswer>,
            ) -> Result<(), StoreError> {
                let done = match answer {
                    Some(answer) => sqlx::query(
                        "UPDATE idempotency_keys SET answer = $3 \
                         WHERE account_id = $1 AND idem_key = $2",
                    )
                    .bind(account_id)
                    .bind(key)
                    .bind(answer.as_str()),
                    // Only a key still waiting for its answer: never one that a later
                    // request took after this one expired.
                    None => sqlx::query(
                        "DELETE FROM idempotency_keys \
                         WHERE account_id = $1 AND idem_key = $2 AND answer IS NULL",
                    )
                    .bind(account_id)
                    .bind(key),
                };
                done.execute(&self.write).await?;
                Ok(())
            }

            async fn purge_idempotency(&self, before_ms: i64, limit: u32) -> Result<u64, StoreError> {
                let done = sqlx::query(
                    "DELETE FROM idempotency_keys WHERE (account_id, idem_key) IN (\
                       SELECT account_id, idem_key FROM idempotency_keys \
                       WHERE created_at < $1 ORDER BY created_at LIMIT $2)",
                )
                .bind(before_ms)
                .bind(i64::from(limit))
                .execute(&self.write)
                .await?;
                Ok(done.rows_affected())
            }
        }
    };
}

pub(crate) use impl_idempotency_sql;
