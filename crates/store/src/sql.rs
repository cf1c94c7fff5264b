//! The SQL both backends share, written once. Each backend supplies its pool types, its
//! claim statement (PostgreSQL adds `FOR UPDATE SKIP LOCKED`) and what releasing leases
//! at start-up means for it.

pub(crate) fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".into())
}

/// Implements [`crate::Store`] for `$store`, which has `write` and `read` pools of `$db`
/// and an inherent `async fn release_leases(&self, now_ms: i64)`.
macro_rules! impl_sql_store {
    ($store:ty, $db:ty, $row:ty, claim_sql = $claim_sql:expr) => {
        impl $store {
            fn account_from_row(row: &$row) -> Result<Account, StoreError> {
                Ok(Account {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    email: row.try_get("email")?,
                    password_hash: row.try_get("password_hash")?,
                    allowed_domains: serde_json::from_str(row.try_get("allowed_domains")?)?,
                    status: row.try_get("status")?,
                    created_at: row.try_get("created_at")?,
                })
            }

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
                Ok(())
            }
        }

        #[async_trait]
        impl $crate::Store for $store {
            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.read).await?;
                Ok(())
            }

            async fn create_account(
                &self,
                account: NewAccount,
                now_ms: i64,
            ) -> Result<Account, StoreError> {
                let domains: Vec<String> = account
                    .allowed_domains
                    .iter()
                    .map(|d| d.to_ascii_lowercase())
                    .collect();
                let row = sqlx::query(
                    "INSERT INTO accounts (name, email, password_hash, allowed_domains, status, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, 'active', $5, $5) RETURNING *",
                )
                .bind(&account.name)
                .bind(account.email.to_ascii_lowercase())
                .bind(&account.password_hash)
                .bind(json(&domains))
                .bind(now_ms)
                .fetch_one(&self.write)
                .await?;
                Self::account_from_row(&row)
            }

            async fn account_by_email(&self, email: &str) -> Result<Option<Account>, StoreError> {
                let row = sqlx::query("SELECT * FROM accounts WHERE email = $1")
                    .bind(email.to_ascii_lowercase())
                    .fetch_optional(&self.read)
                    .await?;
                row.as_ref().map(Self::account_from_row).transpose()
            }

            async fn add_api_key(
                &self,
                account_id: AccountId,
                prefix: &str,
                key_hash: &str,
                now_ms: i64,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO api_keys (account_id, prefix, key_hash, created_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(account_id)
                .bind(prefix)
                .bind(key_hash)
                .bind(now_ms)
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn enqueue_messages(
                &self,
                messages: &[NewMessage],
                now_ms: i64,
            ) -> Result<Vec<MessageId>, StoreError> {
                let mut tx = self.write.begin().await?;
                let mut ids = Vec::with_capacity(messages.len());
                for message in messages {
                    let (status, owner, lease_until) = match &message.lease {
                        Some((owner, until)) => {
                            (MessageStatus::Sending, Some(owner.as_str()), Some(*until))
                        }
                        None => (MessageStatus::Queued, None, None),
                    };
                    let rcpt = json(&message.envelope.rcpt_to);
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO messages (account_id, source, mail_from, rcpt_to, pending_rcpt, smtputf8, \
                         eight_bit, size, body, status, attempts, next_attempt_at, lease_owner, lease_until, \
                         created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9, 0, $10, $11, $12, $10, $10) RETURNING id",
                    )
                    .bind(message.account_id)
                    .bind(message.source.as_str())
                    .bind(&message.envelope.mail_from)
                    .bind(&rcpt)
                    .bind(message.envelope.smtputf8)
                    .bind(message.envelope.eight_bit)
                    .bind(message.body.len() as i64)
                    .bind(&message.body)
                    .bind(status.as_str())
                    .bind(now_ms)
                    .bind(owner)
                    .bind(lease_until)
                    .fetch_one(&mut *tx)
                    .await?;
                    Self::insert_event(&mut tx, id, Some(message.account_id), "queued", "", now_ms).await?;
                    ids.push(id);
                }
                tx.commit().await?;
                Ok(ids)
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
                .bind(now_ms + lease_ms)
                .bind(now_ms)
                .bind(i64::from(limit))
                .fetch_all(&self.write)
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok(ClaimedMessage {
                            id: row.try_get("id")?,
                            account_id: row.try_get("account_id")?,
                            envelope: Envelope {
                                mail_from: row.try_get("mail_from")?,
                                rcpt_to: serde_json::from_str(row.try_get("pending_rcpt")?)?,
                                smtputf8: row.try_get("smtputf8")?,
                                eight_bit: row.try_get("eight_bit")?,
                            },
                            body: row.try_get("body")?,
                            attempts: row.try_get::<i64, _>("attempts")? as u32,
                            created_at: row.try_get("created_at")?,
                        })
                    })
                    .collect()
            }

            async fn record_attempt(&self, attempt: &AttemptRecord) -> Result<bool, StoreError> {
                let mut tx = self.write.begin().await?;
                let updated = sqlx::query(
                    "UPDATE messages SET status = $1, pending_rcpt = $2, attempts = attempts + 1, \
                     next_attempt_at = $3, last_error = $4, lease_owner = NULL, lease_until = NULL, updated_at = $5 \
                     WHERE id = $6 AND lease_owner = $7",
                )
                .bind(attempt.new_status.as_str())
                .bind(json(&attempt.pending_rcpt))
                .bind(attempt.next_attempt_at)
                .bind(&attempt.last_error)
                .bind(attempt.finished_at)
                .bind(attempt.message_id)
                .bind(&attempt.lease_owner)
                .execute(&mut *tx)
                .await?;
                if updated.rows_affected() == 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                let report = &attempt.report;
                let verdict = match report.overall() {
                    Verdict::Delivered => "delivered",
                    Verdict::Transient => "transient",
                    Verdict::Permanent => "permanent",
                };
                let first = report.first_failure().or(report.recipients.first());
                sqlx::query(
                    "INSERT INTO delivery_attempts (message_id, provider, verdict, code, response, recipients, started_at, finished_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(attempt.message_id)
                .bind(&report.provider)
                .bind(verdict)
                .bind(first.and_then(|r| r.code).map(i64::from))
                .bind(first.map(|r| r.response.as_str()).unwrap_or_default())
                .bind(json(&report.recipients))
                .bind(attempt.started_at)
                .bind(attempt.finished_at)
                .execute(&mut *tx)
                .await?;
                for (kind, detail) in &attempt.events {
                    Self::insert_event(
                        &mut tx,
                        attempt.message_id,
                        None,
                        kind,
                        detail,
                        attempt.finished_at,
                    )
                    .await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn release_all_leases(&self, now_ms: i64) -> Result<u64, StoreError> {
                self.release_leases(now_ms).await
            }

            async fn message(&self, id: MessageId) -> Result<Option<MessageRecord>, StoreError> {
                let row = sqlx::query("SELECT * FROM messages WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.read)
                    .await?;
                let Some(row) = row else { return Ok(None) };
                Ok(Some(MessageRecord {
                    id: row.try_get("id")?,
                    account_id: row.try_get("account_id")?,
                    source: row.try_get("source")?,
                    mail_from: row.try_get("mail_from")?,
                    rcpt_to: serde_json::from_str(row.try_get("rcpt_to")?)?,
                    pending_rcpt: serde_json::from_str(row.try_get("pending_rcpt")?)?,
                    status: row.try_get("status")?,
                    attempts: row.try_get::<i64, _>("attempts")? as u32,
                    next_attempt_at: row.try_get("next_attempt_at")?,
                    last_error: row.try_get("last_error")?,
                    size: row.try_get("size")?,
                    body: row.try_get("body")?,
                    created_at: row.try_get("created_at")?,
                }))
            }

            async fn attempts(&self, id: MessageId) -> Result<Vec<AttemptRow>, StoreError> {
                let rows = sqlx::query(
                    "SELECT provider, verdict, code, response, started_at, finished_at \
                     FROM delivery_attempts WHERE message_id = $1 ORDER BY id",
                )
                .bind(id)
                .fetch_all(&self.read)
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok(AttemptRow {
                            provider: row.try_get("provider")?,
                            verdict: row.try_get("verdict")?,
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

            async fn count_by_status(&self) -> Result<Vec<(String, i64)>, StoreError> {
                let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM messages GROUP BY status")
                    .fetch_all(&self.read)
                    .await?;
                rows.iter()
                    .map(|row| Ok((row.try_get("status")?, row.try_get("n")?)))
                    .collect()
            }
        }
    };
}

pub(crate) use impl_sql_store;
