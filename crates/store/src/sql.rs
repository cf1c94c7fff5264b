//! The SQL both backends share, written once. Each backend supplies its pool types, its
//! claim statement (PostgreSQL adds `FOR UPDATE SKIP LOCKED`) and what releasing leases
//! at start-up means for it.

pub(crate) fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".into())
}

/// Implements [`crate::Store`] for `$store`, which has `write` and `read` pools of `$db`
/// and inherent `async fn release_leases(&self, now_ms: i64)` and
/// `async fn shift_due_times(&self, jump_ms: i64, now_ms: i64)`. The claim statement binds
/// `$1` owner, `$2` lease length in ms, `$3` the node's now, `$4` limit; it never takes a
/// message whose lease `$1` itself holds (a node knows what it is working on: its own
/// lease can only look expired because the clock jumped).
macro_rules! impl_sql_store {
    ($store:ty, $db:ty, $row:ty, claim_sql = $claim_sql:expr, webhook_claim_sql = $webhook_claim_sql:expr) => {
        impl $store {
            fn account_from_row(row: &$row) -> Result<Account, StoreError> {
                Ok(Account {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    email: row.try_get("email")?,
                    password_hash: row.try_get("password_hash")?,
                    // Filled from the verified rows of `domains` (`with_domains`).
                    allowed_domains: Vec::new(),
                    status: row.try_get("status")?,
                    monthly_limit: row.try_get("monthly_limit")?,
                    allow_any_local_part: row.try_get("allow_any_local_part")?,
                    sandbox: row.try_get("sandbox")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            }

            fn api_key_from_row(row: &$row) -> Result<ApiKeyRow, StoreError> {
                Ok(ApiKeyRow {
                    id: row.try_get("id")?,
                    account_id: row.try_get("account_id")?,
                    prefix: row.try_get("prefix")?,
                    created_at: row.try_get("created_at")?,
                    revoked_at: row.try_get("revoked_at")?,
                })
            }

            fn credential_from_row(row: &$row) -> Result<SmtpCredential, StoreError> {
                Ok(SmtpCredential {
                    id: row.try_get("id")?,
                    account_id: row.try_get("account_id")?,
                    username: row.try_get("username")?,
                    password_hash: row.try_get("password_hash")?,
                    created_at: row.try_get("created_at")?,
                    revoked_at: row.try_get("revoked_at")?,
                })
            }

            fn provider_from_row(row: &$row) -> Result<ProviderRow, StoreError> {
                Ok(ProviderRow {
                    id: row.try_get("id")?,
                    account_id: row.try_get("account_id")?,
                    name: row.try_get("name")?,
                    provider_type: row.try_get("provider_type")?,
                    config: serde_json::from_str(row.try_get("config")?)?,
                    secrets: row.try_get("secrets")?,
                    enabled: row.try_get("enabled")?,
                    priority: row.try_get("priority")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            }

            fn dkim_key_from_row(row: &$row) -> Result<DkimKeyRow, StoreError> {
                Ok(DkimKeyRow {
                    id: row.try_get("id")?,
                    account_id: row.try_get("account_id")?,
                    domain: row.try_get("domain")?,
                    selector: row.try_get("selector")?,
                    algorithm: row.try_get("algorithm")?,
                    private_key: row.try_get("private_key")?,
                    dns_record: row.try_get("dns_record")?,
                    enabled: row.try_get("enabled")?,
                    created_at: row.try_get("created_at")?,
                })
            }

            fn rule_from_row(row: &$row) -> Result<RuleRow, StoreError> {
                Ok(RuleRow {
                    id: row.try_get("id")?,
                    account_id: row.try_get("account_id")?,
                    name: row.try_get("name")?,
                    priority: row.try_get("priority")?,
                    conditions: serde_json::from_str(row.try_get("conditions")?)?,
                    provider_id: row.try_get("provider_id")?,
                    fallbacks: serde_json::from_str(row.try_get("fallbacks")?)?,
                    split: serde_json::from_str(row.try_get("split")?)?,
                    enabled: row.try_get("enabled")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            }

            fn template_from_row(row: &$row) -> Result<TemplateRow, StoreError> {
                Ok(TemplateRow {
                    id: row.try_get("id")?,
                    account_id: row.try_get("account_id")?,
                    name: row.try_get("name")?,
                    subject: row.try_get("subject")?,
                    text_body: row.try_get("text_body")?,
                    html_body: row.try_get("html_body")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            }

            fn suppression_from_row(row: &$row) -> Result<SuppressionRow, StoreError> {
                Ok(SuppressionRow {
                    id: row.try_get("id")?,
                    account_id: row.try_get("account_id")?,
                    address: row.try_get("address")?,
                    reason: row.try_get("reason")?,
                    source: row.try_get("source")?,
                    created_at: row.try_get("created_at")?,
                    expires_at: row.try_get("expires_at")?,
                })
            }

            fn user_from_row(row: &$row) -> Result<User, StoreError> {
                Ok(User {
                    id: row.try_get("id")?,
                    account_id: row.try_get("account_id")?,
                    email: row.try_get("email")?,
                    password_hash: row.try_get("password_hash")?,
                    role: row.try_get("role")?,
                    status: row.try_get("status")?,
                    failed_logins: row.try_get("failed_logins")?,
                    first_failed_at: row.try_get("first_failed_at")?,
                    locked_until: row.try_get("locked_until")?,
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
                // The outbox of tenants' event webhooks is filled by the `events_webhook_outbox`
                // trigger (migration 0011) in this same transaction, without another round trip.
                Ok(())
            }

            /// New messages inside a transaction: one INSERT per chunk of rows, one usage
            /// update per account. Returns their ids in order.
            async fn enqueue_in(
                &self,
                tx: &mut sqlx::Transaction<'_, $db>,
                messages: &[NewMessage],
                now_ms: i64,
            ) -> Result<Vec<Enqueued>, StoreError> {
                use $crate::idempotency::KeyClaim;
                let claims = Self::claim_idempotency_keys(tx, messages, now_ms).await?;
                let to_write: Vec<&NewMessage> = messages
                    .iter()
                    .zip(&claims)
                    .filter(|(_, claim)| **claim == KeyClaim::Write)
                    .map(|(message, _)| message)
                    .collect();
                let mut ids = Vec::with_capacity(to_write.len());
                for chunk in to_write.chunks($crate::sql::ROWS_PER_STATEMENT) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO messages (account_id, source, mail_from, rcpt_to, pending_rcpt, smtputf8, \
                         eight_bit, size, body, status, attempts, next_attempt_at, lease_owner, lease_until, \
                         created_at, updated_at, tags, max_attempts) ",
                    );
                    let sealed: Vec<Option<Vec<u8>>> =
                        chunk.iter().map(|message| self.bodies.seal(&message.body)).collect();
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
                            .push_bind(sealed.as_deref().unwrap_or(message.body.as_slice()))
                            .push_bind(status.as_str())
                            .push_bind(0_i64)
                            .push_bind(now_ms)
                            .push_bind(owner)
                            .push_bind(lease_until)
                            .push_bind(now_ms)
                            .push_bind(now_ms)
                            .push_bind(json(&message.tags))
                            .push_bind(message.max_attempts.map(i64::from));
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
                // Each message's fate, in order; the keys the written ones claimed point at them.
                let mut written = ids.into_iter();
                let mut fates: Vec<Enqueued> = Vec::with_capacity(messages.len());
                let mut bound: Vec<(AccountId, &str, MessageId)> = Vec::new();
                for (message, claim) in messages.iter().zip(claims) {
                    let fate = match claim {
                        KeyClaim::Write => {
                            let id = written.next().ok_or_else(|| {
                                StoreError::Database("fewer ids than messages written".into())
                            })?;
                            if let Some(key) = &message.idempotency {
                                bound.push((message.account_id, key.key.as_str(), id));
                            }
                            Enqueued::New(id)
                        }
                        KeyClaim::Taken(record) => Enqueued::KeyTaken(record),
                        // Its twin earlier in the batch was written (this one points at
                        // it) or found the key taken (so is this one, by the same record).
                        KeyClaim::SameAs(first) => match (&fates[first], &messages[first].idempotency) {
                            (Enqueued::New(id), Some(key)) => Enqueued::KeyTaken(
                                $crate::idempotency::record_of_batch_claim(key, *id, now_ms),
                            ),
                            (Enqueued::KeyTaken(record), _) => Enqueued::KeyTaken(record.clone()),
                            (Enqueued::New(_), None) => {
                                return Err(StoreError::Database(
                                    "a keyed message's twin in the batch had no key".into(),
                                ));
                            }
                        },
                    };
                    fates.push(fate);
                }
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
                        let verdict = match report.overall() {
                            Verdict::Delivered => "delivered",
                            Verdict::Transient => "transient",
                            Verdict::Permanent => "permanent",
                        };
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

            fn mailbox_server_from_row(row: &$row) -> Result<$crate::MailboxServerRow, StoreError> {
                Ok($crate::MailboxServerRow {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    protocol: row.try_get("protocol")?,
                    host: row.try_get("host")?,
                    port: row.try_get("port")?,
                    security: row.try_get("security")?,
                    username: row.try_get("username")?,
                    password_sealed: row.try_get("password_sealed")?,
                    skip_tls_verify: row.try_get("skip_tls_verify")?,
                    created_at: row.try_get("created_at")?,
                })
            }

            fn webhook_endpoint_from_row(row: &$row) -> Result<WebhookEndpointRow, StoreError> {
                Ok(WebhookEndpointRow {
                    id: row.try_get("id")?,
                    account_id: row.try_get("account_id")?,
                    url: row.try_get("url")?,
                    events: serde_json::from_str(row.try_get("events")?)?,
                    secret: row.try_get("secret")?,
                    enabled: row.try_get("enabled")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
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
                let mut created = Self::account_from_row(&row)?;
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
                let account = row.as_ref().map(Self::account_from_row).transpose()?;
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
                let account = row.as_ref().map(Self::account_from_row).transpose()?;
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
                    .map(Self::account_from_row)
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
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let mut account = Self::account_from_row(&row)?;
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
                let account = Self::account_from_row(&row)?;
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
                let row = sqlx::query("SELECT * FROM api_keys WHERE key_hash = $1")
                    .bind(key_hash)
                    .fetch_optional(&self.read)
                    .await?;
                row.as_ref().map(Self::api_key_from_row).transpose()
            }

            async fn list_api_keys(
                &self,
                account_id: AccountId,
            ) -> Result<Vec<ApiKeyRow>, StoreError> {
                let rows = sqlx::query("SELECT * FROM api_keys WHERE account_id = $1 ORDER BY id")
                    .bind(account_id)
                    .fetch_all(&self.read)
                    .await?;
                rows.iter().map(Self::api_key_from_row).collect()
            }

            async fn revoke_api_key(
                &self,
                account_id: AccountId,
                id: i64,
                now_ms: i64,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE api_keys SET revoked_at = $1 \
                     WHERE id = $2 AND account_id = $3 AND revoked_at IS NULL",
                )
                .bind(now_ms)
                .bind(id)
                .bind(account_id)
                .execute(&self.write)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn create_user(&self, user: NewUser, now_ms: i64) -> Result<User, StoreError> {
                let row = sqlx::query(
                    "INSERT INTO users (account_id, email, password_hash, role, status, failed_logins, \
                     created_at, updated_at) VALUES ($1, $2, $3, $4, 'active', 0, $5, $5) RETURNING *",
                )
                .bind(user.account_id)
                .bind(user.email.to_ascii_lowercase())
                .bind(&user.password_hash)
                .bind(&user.role)
                .bind(now_ms)
                .fetch_one(&self.write)
                .await?;
                Self::user_from_row(&row)
            }

            async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
                let row = sqlx::query("SELECT * FROM users WHERE email = $1")
                    .bind(email.to_ascii_lowercase())
                    .fetch_optional(&self.read)
                    .await?;
                row.as_ref().map(Self::user_from_row).transpose()
            }

            async fn user(&self, id: i64) -> Result<Option<User>, StoreError> {
                let row = sqlx::query("SELECT * FROM users WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.read)
                    .await?;
                row.as_ref().map(Self::user_from_row).transpose()
            }

            async fn list_users(
                &self,
                account_id: Option<AccountId>,
            ) -> Result<Vec<User>, StoreError> {
                let rows = sqlx::query(
                    "SELECT * FROM users WHERE (account_id = $1 OR $1 IS NULL) ORDER BY id",
                )
                .bind(account_id)
                .fetch_all(&self.read)
                .await?;
                rows.iter().map(Self::user_from_row).collect()
            }

            async fn update_user(
                &self,
                id: i64,
                update: &UserUpdate,
                now_ms: i64,
            ) -> Result<Option<User>, StoreError> {
                let row = sqlx::query(
                    "UPDATE users SET role = COALESCE($1, role), status = COALESCE($2, status), \
                     password_hash = COALESCE($3, password_hash), updated_at = $4 \
                     WHERE id = $5 RETURNING *",
                )
                .bind(update.role.as_deref())
                .bind(update.status.as_deref())
                .bind(update.password_hash.as_deref())
                .bind(now_ms)
                .bind(id)
                .fetch_optional(&self.write)
                .await?;
                row.as_ref().map(Self::user_from_row).transpose()
            }

            async fn revoke_user_sessions(&self, user_id: i64, now_ms: i64) -> Result<u64, StoreError> {
                let done = sqlx::query(
                    "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
                )
                .bind(now_ms)
                .bind(user_id)
                .execute(&self.write)
                .await?;
                Ok(done.rows_affected())
            }

            async fn set_login_state(
                &self,
                user_id: i64,
                state: &sluice_core::LoginState,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE users SET failed_logins = $1, first_failed_at = $2, locked_until = $3 \
                     WHERE id = $4",
                )
                .bind(state.failed_logins)
                .bind(state.first_failed_at)
                .bind(state.locked_until)
                .bind(user_id)
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn create_session(
                &self,
                user_id: i64,
                kind: &str,
                token_hash: &str,
                expires_at: i64,
                now_ms: i64,
            ) -> Result<i64, StoreError> {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO sessions (user_id, token_hash, expires_at, created_at, kind) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(user_id)
                .bind(token_hash)
                .bind(expires_at)
                .bind(now_ms)
                .bind(kind)
                .fetch_one(&self.write)
                .await?;
                Ok(id)
            }

            async fn revoke_sessions_of_kind(&self, kind: &str, now_ms: i64) -> Result<u64, StoreError> {
                let done = sqlx::query(
                    "UPDATE sessions SET revoked_at = $1 WHERE kind = $2 AND revoked_at IS NULL",
                )
                .bind(now_ms)
                .bind(kind)
                .execute(&self.write)
                .await?;
                Ok(done.rows_affected())
            }

            async fn create_mailbox_server(
                &self,
                s: &$crate::MailboxServerRow,
            ) -> Result<$crate::MailboxServerRow, StoreError> {
                let row = sqlx::query(
                    "INSERT INTO mailbox_servers (name, protocol, host, port, security, username, \
                     password_sealed, skip_tls_verify, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
                )
                .bind(&s.name)
                .bind(&s.protocol)
                .bind(&s.host)
                .bind(s.port)
                .bind(&s.security)
                .bind(&s.username)
                .bind(&s.password_sealed)
                .bind(s.skip_tls_verify)
                .bind(s.created_at)
                .fetch_one(&self.write)
                .await?;
                Self::mailbox_server_from_row(&row)
            }

            async fn list_mailbox_servers(&self) -> Result<Vec<$crate::MailboxServerRow>, StoreError> {
                let rows = sqlx::query("SELECT * FROM mailbox_servers ORDER BY id")
                    .fetch_all(&self.read)
                    .await?;
                rows.iter().map(Self::mailbox_server_from_row).collect()
            }

            async fn mailbox_server(&self, id: i64) -> Result<Option<$crate::MailboxServerRow>, StoreError> {
                let row = sqlx::query("SELECT * FROM mailbox_servers WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.read)
                    .await?;
                row.as_ref().map(Self::mailbox_server_from_row).transpose()
            }

            async fn delete_mailbox_server(&self, id: i64) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM mailbox_servers WHERE id = $1")
                    .bind(id)
                    .execute(&self.write)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
                Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.write)
                    .await?)
            }

            async fn put_setting(&self, key: &str, value: &str, now_ms: i64) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (key) DO UPDATE SET value = $2, updated_at = $3",
                )
                .bind(key)
                .bind(value)
                .bind(now_ms)
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn dashboard(
                &self,
                account_id: Option<AccountId>,
                since_ms: i64,
            ) -> Result<$crate::Dashboard, StoreError> {
                let by_status = sqlx::query(
                    "SELECT status, COUNT(*) AS n FROM messages \
                     WHERE (account_id = $1 OR $1 IS NULL) GROUP BY status ORDER BY status",
                )
                .bind(account_id)
                .fetch_all(&self.read)
                .await?
                .iter()
                .map(|row| Ok((row.try_get("status")?, row.try_get("n")?)))
                .collect::<Result<Vec<(String, i64)>, StoreError>>()?;
                let hourly = sqlx::query(
                    "SELECT (e.created_at / 3600000) * 3600000 AS hour, e.kind, COUNT(*) AS n \
                     FROM events e JOIN messages m ON m.id = e.message_id \
                     WHERE e.created_at >= $2 AND (m.account_id = $1 OR $1 IS NULL) \
                       AND e.kind IN ('queued', 'delivered', 'failed', 'captured', 'bounced') \
                     GROUP BY (e.created_at / 3600000) * 3600000, e.kind",
                )
                .bind(account_id)
                .bind(since_ms)
                .fetch_all(&self.read)
                .await?
                .iter()
                .map(|row| {
                    Ok($crate::HourCount {
                        hour: row.try_get("hour")?,
                        kind: row.try_get("kind")?,
                        count: row.try_get("n")?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
                let providers = sqlx::query(
                    "SELECT d.provider, d.verdict, COUNT(*) AS n, MAX(d.finished_at) AS last_at \
                     FROM delivery_attempts d JOIN messages m ON m.id = d.message_id \
                     WHERE d.finished_at >= $2 AND (m.account_id = $1 OR $1 IS NULL) \
                     GROUP BY d.provider, d.verdict ORDER BY d.provider, d.verdict",
                )
                .bind(account_id)
                .bind(since_ms)
                .fetch_all(&self.read)
                .await?
                .iter()
                .map(|row| {
                    Ok($crate::ProviderCount {
                        provider: row.try_get("provider")?,
                        verdict: row.try_get("verdict")?,
                        count: row.try_get("n")?,
                        last_at: row.try_get("last_at")?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
                let recent_errors = sqlx::query(
                    "SELECT e.message_id, e.kind, e.detail, e.created_at \
                     FROM events e JOIN messages m ON m.id = e.message_id \
                     WHERE (m.account_id = $1 OR $1 IS NULL) AND e.kind IN \
                       ('failed', 'deferred', 'recipient_failed', 'provider_auth_failed', 'bounced_hard', 'complained', 'dropped') \
                     ORDER BY e.id DESC LIMIT 10",
                )
                .bind(account_id)
                .fetch_all(&self.read)
                .await?
                .iter()
                .map(|row| {
                    Ok($crate::RecentError {
                        message_id: row.try_get("message_id")?,
                        kind: row.try_get("kind")?,
                        detail: row.try_get("detail")?,
                        created_at: row.try_get("created_at")?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
                Ok($crate::Dashboard { by_status, hourly, providers, recent_errors })
            }

            async fn session_by_hash(
                &self,
                token_hash: &str,
            ) -> Result<Option<SessionRow>, StoreError> {
                let row = sqlx::query(
                    "SELECT id, user_id, expires_at, revoked_at, kind FROM sessions WHERE token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&self.read)
                .await?;
                row.map(|row| {
                    Ok(SessionRow {
                        id: row.try_get("id")?,
                        user_id: row.try_get("user_id")?,
                        expires_at: row.try_get("expires_at")?,
                        revoked_at: row.try_get("revoked_at")?,
                        kind: row.try_get("kind")?,
                    })
                })
                .transpose()
            }

            async fn revoke_session(&self, id: i64, now_ms: i64) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                )
                .bind(now_ms)
                .bind(id)
                .execute(&self.write)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn requeue_message(&self, id: MessageId, now_ms: i64) -> Result<bool, StoreError> {
                let mut tx = self.write.begin().await?;
                let done = sqlx::query(
                    "UPDATE messages SET pending_rcpt = CASE WHEN status = 'failed' \
                     THEN rcpt_to ELSE pending_rcpt END, status = 'queued', next_attempt_at = $1, \
                     updated_at = $1 WHERE id = $2 AND status IN ('failed', 'deferred')",
                )
                .bind(now_ms)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                Self::insert_event(&mut tx, id, None, "retry_requested", "", now_ms).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn cancel_message(&self, id: MessageId, now_ms: i64) -> Result<bool, StoreError> {
                let mut tx = self.write.begin().await?;
                let done = sqlx::query(
                    "UPDATE messages SET status = 'cancelled', updated_at = $1 \
                     WHERE id = $2 AND status IN ('queued', 'deferred', 'held')",
                )
                .bind(now_ms)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                Self::insert_event(&mut tx, id, None, "cancelled", "", now_ms).await?;
                tx.commit().await?;
                Ok(true)
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
                let row = sqlx::query("SELECT * FROM smtp_credentials WHERE username = $1")
                    .bind(username.to_ascii_lowercase())
                    .fetch_optional(&self.read)
                    .await?;
                row.as_ref().map(Self::credential_from_row).transpose()
            }

            async fn list_smtp_credentials(
                &self,
                account_id: AccountId,
            ) -> Result<Vec<SmtpCredential>, StoreError> {
                let rows = sqlx::query(
                    "SELECT * FROM smtp_credentials WHERE account_id = $1 ORDER BY id",
                )
                .bind(account_id)
                .fetch_all(&self.read)
                .await?;
                rows.iter().map(Self::credential_from_row).collect()
            }

            async fn revoke_smtp_credential(
                &self,
                account_id: AccountId,
                id: i64,
                now_ms: i64,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE smtp_credentials SET revoked_at = $1 \
                     WHERE id = $2 AND account_id = $3 AND revoked_at IS NULL",
                )
                .bind(now_ms)
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

            async fn create_provider(
                &self,
                p: &NewProvider,
                now_ms: i64,
            ) -> Result<ProviderRow, StoreError> {
                let row = sqlx::query(
                    "INSERT INTO providers (account_id, name, provider_type, config, secrets, enabled, \
                     priority, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
                     RETURNING *",
                )
                .bind(p.account_id)
                .bind(&p.name)
                .bind(&p.provider_type)
                .bind(p.config.to_string())
                .bind(&p.secrets)
                .bind(p.enabled)
                .bind(p.priority)
                .bind(now_ms)
                .fetch_one(&self.write)
                .await?;
                Self::provider_from_row(&row)
            }

            async fn provider(&self, id: i64) -> Result<Option<ProviderRow>, StoreError> {
                let row = sqlx::query("SELECT * FROM providers WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.read)
                    .await?;
                row.as_ref().map(Self::provider_from_row).transpose()
            }

            async fn list_providers(
                &self,
                account_id: Option<AccountId>,
            ) -> Result<Vec<ProviderRow>, StoreError> {
                let rows = sqlx::query(
                    "SELECT * FROM providers WHERE (account_id = $1 OR $1 IS NULL) \
                     ORDER BY priority, id",
                )
                .bind(account_id)
                .fetch_all(&self.read)
                .await?;
                rows.iter().map(Self::provider_from_row).collect()
            }

            async fn routing_providers(
                &self,
                account_id: AccountId,
            ) -> Result<Vec<ProviderRow>, StoreError> {
                let rows = sqlx::query(
                    "SELECT * FROM providers WHERE account_id = $1 OR account_id IS NULL \
                     ORDER BY priority, id",
                )
                .bind(account_id)
                .fetch_all(&self.read)
                .await?;
                rows.iter().map(Self::provider_from_row).collect()
            }

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

            async fn replace_provider(
                &self,
                id: i64,
                p: &NewProvider,
                now_ms: i64,
            ) -> Result<Option<ProviderRow>, StoreError> {
                let row = sqlx::query(
                    "UPDATE providers SET name = $1, provider_type = $2, config = $3, secrets = $4, \
                     enabled = $5, priority = $6, updated_at = $7 WHERE id = $8 RETURNING *",
                )
                .bind(&p.name)
                .bind(&p.provider_type)
                .bind(p.config.to_string())
                .bind(&p.secrets)
                .bind(p.enabled)
                .bind(p.priority)
                .bind(now_ms)
                .bind(id)
                .fetch_optional(&self.write)
                .await?;
                row.as_ref().map(Self::provider_from_row).transpose()
            }

            async fn delete_provider(&self, id: i64) -> Result<bool, StoreError> {
                let in_use: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM routing_rules WHERE provider_id = $1",
                )
                .bind(id)
                .fetch_one(&self.read)
                .await?;
                if in_use > 0 {
                    return Err(StoreError::Conflict("routing rules use this provider".into()));
                }
                let done = sqlx::query("DELETE FROM providers WHERE id = $1")
                    .bind(id)
                    .execute(&self.write)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn create_rule(&self, r: &NewRule, now_ms: i64) -> Result<RuleRow, StoreError> {
                let row = sqlx::query(
                    "INSERT INTO routing_rules (account_id, name, priority, conditions, provider_id, \
                     fallbacks, enabled, created_at, updated_at, split) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9) \
                     RETURNING *",
                )
                .bind(r.account_id)
                .bind(&r.name)
                .bind(r.priority)
                .bind(r.conditions.to_string())
                .bind(r.provider_id)
                .bind(json(&r.fallbacks))
                .bind(r.enabled)
                .bind(now_ms)
                .bind(json(&r.split))
                .fetch_one(&self.write)
                .await?;
                Self::rule_from_row(&row)
            }

            async fn rule(&self, id: i64) -> Result<Option<RuleRow>, StoreError> {
                let row = sqlx::query("SELECT * FROM routing_rules WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.read)
                    .await?;
                row.as_ref().map(Self::rule_from_row).transpose()
            }

            async fn list_rules(
                &self,
                account_id: Option<AccountId>,
            ) -> Result<Vec<RuleRow>, StoreError> {
                let rows = sqlx::query(
                    "SELECT * FROM routing_rules WHERE (account_id = $1 OR $1 IS NULL) \
                     ORDER BY priority, id",
                )
                .bind(account_id)
                .fetch_all(&self.read)
                .await?;
                rows.iter().map(Self::rule_from_row).collect()
            }

            async fn replace_rule(
                &self,
                id: i64,
                r: &NewRule,
                now_ms: i64,
            ) -> Result<Option<RuleRow>, StoreError> {
                let row = sqlx::query(
                    "UPDATE routing_rules SET name = $1, priority = $2, conditions = $3, \
                     provider_id = $4, fallbacks = $5, enabled = $6, updated_at = $7, split = $9 \
                     WHERE id = $8 RETURNING *",
                )
                .bind(&r.name)
                .bind(r.priority)
                .bind(r.conditions.to_string())
                .bind(r.provider_id)
                .bind(json(&r.fallbacks))
                .bind(r.enabled)
                .bind(now_ms)
                .bind(id)
                .bind(json(&r.split))
                .fetch_optional(&self.write)
                .await?;
                row.as_ref().map(Self::rule_from_row).transpose()
            }

            async fn delete_rule(&self, id: i64) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM routing_rules WHERE id = $1")
                    .bind(id)
                    .execute(&self.write)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn create_template(
                &self,
                t: &NewTemplate,
                now_ms: i64,
            ) -> Result<TemplateRow, StoreError> {
                let row = sqlx::query(
                    "INSERT INTO templates (account_id, name, subject, text_body, html_body, created_at, \
                     updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING *",
                )
                .bind(t.account_id)
                .bind(&t.name)
                .bind(&t.subject)
                .bind(&t.text_body)
                .bind(&t.html_body)
                .bind(now_ms)
                .fetch_one(&self.write)
                .await?;
                Self::template_from_row(&row)
            }

            async fn template(&self, id: i64) -> Result<Option<TemplateRow>, StoreError> {
                let row = sqlx::query("SELECT * FROM templates WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.read)
                    .await?;
                row.as_ref().map(Self::template_from_row).transpose()
            }

            async fn template_by_name(
                &self,
                account_id: Option<AccountId>,
                name: &str,
            ) -> Result<Option<TemplateRow>, StoreError> {
                let row = sqlx::query(
                    "SELECT * FROM templates WHERE name = $1 AND (account_id = $2 OR account_id IS NULL) \
                     ORDER BY account_id IS NULL LIMIT 1",
                )
                .bind(name)
                .bind(account_id)
                .fetch_optional(&self.read)
                .await?;
                row.as_ref().map(Self::template_from_row).transpose()
            }

            async fn list_templates(
                &self,
                account_id: Option<AccountId>,
            ) -> Result<Vec<TemplateRow>, StoreError> {
                let rows = sqlx::query(
                    "SELECT * FROM templates WHERE (account_id = $1 OR account_id IS NULL OR $1 IS NULL) \
                     ORDER BY name, id",
                )
                .bind(account_id)
                .fetch_all(&self.read)
                .await?;
                rows.iter().map(Self::template_from_row).collect()
            }

            async fn replace_template(
                &self,
                id: i64,
                t: &NewTemplate,
                now_ms: i64,
            ) -> Result<Option<TemplateRow>, StoreError> {
                let row = sqlx::query(
                    "UPDATE templates SET name = $1, subject = $2, text_body = $3, html_body = $4, \
                     updated_at = $5 WHERE id = $6 RETURNING *",
                )
                .bind(&t.name)
                .bind(&t.subject)
                .bind(&t.text_body)
                .bind(&t.html_body)
                .bind(now_ms)
                .bind(id)
                .fetch_optional(&self.write)
                .await?;
                row.as_ref().map(Self::template_from_row).transpose()
            }

            async fn delete_template(&self, id: i64) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM templates WHERE id = $1")
                    .bind(id)
                    .execute(&self.write)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn create_webhook_endpoint(
                &self,
                e: &NewWebhookEndpoint,
                now_ms: i64,
            ) -> Result<WebhookEndpointRow, StoreError> {
                let row = sqlx::query(
                    "INSERT INTO webhook_endpoints (account_id, url, events, secret, enabled, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING *",
                )
                .bind(e.account_id)
                .bind(&e.url)
                .bind(json(&e.events))
                .bind(&e.secret)
                .bind(e.enabled)
                .bind(now_ms)
                .fetch_one(&self.write)
                .await?;
                Self::webhook_endpoint_from_row(&row)
            }

            async fn webhook_endpoint(&self, id: i64) -> Result<Option<WebhookEndpointRow>, StoreError> {
                let row = sqlx::query("SELECT * FROM webhook_endpoints WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.read)
                    .await?;
                row.as_ref().map(Self::webhook_endpoint_from_row).transpose()
            }

            async fn list_webhook_endpoints(
                &self,
                account_id: Option<AccountId>,
            ) -> Result<Vec<WebhookEndpointRow>, StoreError> {
                let rows = sqlx::query(
                    "SELECT * FROM webhook_endpoints WHERE (account_id = $1 OR $1 IS NULL) ORDER BY id",
                )
                .bind(account_id)
                .fetch_all(&self.read)
                .await?;
                rows.iter().map(Self::webhook_endpoint_from_row).collect()
            }

            async fn replace_webhook_endpoint(
                &self,
                id: i64,
                e: &NewWebhookEndpoint,
                now_ms: i64,
            ) -> Result<Option<WebhookEndpointRow>, StoreError> {
                let row = sqlx::query(
                    "UPDATE webhook_endpoints SET url = $1, events = $2, secret = $3, enabled = $4, updated_at = $5 \
                     WHERE id = $6 RETURNING *",
                )
                .bind(&e.url)
                .bind(json(&e.events))
                .bind(&e.secret)
                .bind(e.enabled)
                .bind(now_ms)
                .bind(id)
                .fetch_optional(&self.write)
                .await?;
                row.as_ref().map(Self::webhook_endpoint_from_row).transpose()
            }

            async fn delete_webhook_endpoint(&self, id: i64) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
                    .bind(id)
                    .execute(&self.write)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn claim_webhook_deliveries(
                &self,
                owner: &str,
                now_ms: i64,
                lease_ms: i64,
                limit: u32,
            ) -> Result<Vec<DueWebhook>, StoreError> {
                let lease_until = now_ms + lease_ms;
                sqlx::query($webhook_claim_sql)
                    .bind(owner)
                    .bind(lease_until)
                    .bind(now_ms)
                    .bind(i64::from(limit))
                    .execute(&self.write)
                    .await?;
                let rows = sqlx::query(
                    "SELECT d.id, d.endpoint_id, d.attempts, d.created_at, w.url, w.secret, w.account_id, \
                     e.message_id, e.kind, e.detail, e.created_at AS event_at, m.mail_from, m.rcpt_to, \
                     m.status AS message_status, m.tags \
                     FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id \
                     JOIN events e ON e.id = d.event_id JOIN messages m ON m.id = e.message_id \
                     WHERE d.lease_owner = $1 AND d.lease_until = $2 AND d.status = 'pending' ORDER BY d.id",
                )
                .bind(owner)
                .bind(lease_until)
                .fetch_all(&self.write)
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok(DueWebhook {
                            id: row.try_get("id")?,
                            endpoint_id: row.try_get("endpoint_id")?,
                            url: row.try_get("url")?,
                            secret: row.try_get("secret")?,
                            attempts: row.try_get::<i64, _>("attempts")? as u32,
                            created_at: row.try_get("created_at")?,
                            account_id: row.try_get("account_id")?,
                            message_id: row.try_get("message_id")?,
                            kind: row.try_get("kind")?,
                            detail: row.try_get("detail")?,
                            event_at: row.try_get("event_at")?,
                            mail_from: row.try_get("mail_from")?,
                            rcpt_to: serde_json::from_str(row.try_get("rcpt_to")?)?,
                            message_status: row.try_get("message_status")?,
                            tags: serde_json::from_str(row.try_get("tags")?)?,
                        })
                    })
                    .collect()
            }

            async fn record_webhook_attempt(
                &self,
                a: &WebhookAttemptRecord,
            ) -> Result<bool, StoreError> {
                let status = match (a.delivered, a.next_attempt_at) {
                    (true, _) => "delivered",
                    (false, Some(_)) => "pending",
                    (false, None) => "failed",
                };
                let mut tx = self.write.begin().await?;
                let updated = sqlx::query(
                    "UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1, next_attempt_at = $2, \
                     last_error = $3, lease_owner = NULL, lease_until = NULL, updated_at = $4 \
                     WHERE id = $5 AND lease_owner = $6",
                )
                .bind(status)
                .bind(a.next_attempt_at.unwrap_or(a.finished_at))
                .bind(&a.error)
                .bind(a.finished_at)
                .bind(a.delivery_id)
                .bind(&a.lease_owner)
                .execute(&mut *tx)
                .await?;
                if updated.rows_affected() == 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO webhook_attempts (delivery_id, status_code, error, started_at, finished_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(a.delivery_id)
                .bind(a.status_code.map(i64::from))
                .bind(&a.error)
                .bind(a.started_at)
                .bind(a.finished_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn list_webhook_deliveries(
                &self,
                endpoint_id: i64,
                limit: i64,
            ) -> Result<Vec<WebhookDeliveryRow>, StoreError> {
                let rows = sqlx::query(
                    "SELECT d.*, e.kind, e.message_id FROM webhook_deliveries d JOIN events e ON e.id = d.event_id \
                     WHERE d.endpoint_id = $1 ORDER BY d.id DESC LIMIT $2",
                )
                .bind(endpoint_id)
                .bind(limit)
                .fetch_all(&self.read)
                .await?;
                let mut deliveries = Vec::with_capacity(rows.len());
                for row in &rows {
                    let id: i64 = row.try_get("id")?;
                    let attempts = sqlx::query(
                        "SELECT status_code, error, started_at, finished_at FROM webhook_attempts \
                         WHERE delivery_id = $1 ORDER BY id",
                    )
                    .bind(id)
                    .fetch_all(&self.read)
                    .await?;
                    deliveries.push(WebhookDeliveryRow {
                        id,
                        endpoint_id: row.try_get("endpoint_id")?,
                        event_kind: row.try_get("kind")?,
                        message_id: row.try_get("message_id")?,
                        status: row.try_get("status")?,
                        attempts: row.try_get::<i64, _>("attempts")? as u32,
                        next_attempt_at: row.try_get("next_attempt_at")?,
                        last_error: row.try_get("last_error")?,
                        created_at: row.try_get("created_at")?,
                        attempt_log: attempts
                            .iter()
                            .map(|a| {
                                Ok(WebhookAttemptRow {
                                    status_code: a.try_get("status_code")?,
                                    error: a.try_get("error")?,
                                    started_at: a.try_get("started_at")?,
                                    finished_at: a.try_get("finished_at")?,
                                })
                            })
                            .collect::<Result<_, StoreError>>()?,
                    });
                }
                Ok(deliveries)
            }

            async fn create_dkim_key(
                &self,
                key: &NewDkimKey,
                now_ms: i64,
            ) -> Result<DkimKeyRow, StoreError> {
                let row = sqlx::query(
                    "INSERT INTO dkim_keys (account_id, domain, selector, algorithm, private_key, dns_record, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
                )
                .bind(key.account_id)
                .bind(key.domain.to_ascii_lowercase())
                .bind(&key.selector)
                .bind(&key.algorithm)
                .bind(&key.private_key)
                .bind(&key.dns_record)
                .bind(now_ms)
                .fetch_one(&self.write)
                .await?;
                Self::dkim_key_from_row(&row)
            }

            async fn dkim_key(&self, id: i64) -> Result<Option<DkimKeyRow>, StoreError> {
                let row = sqlx::query("SELECT * FROM dkim_keys WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.read)
                    .await?;
                row.as_ref().map(Self::dkim_key_from_row).transpose()
            }

            async fn list_dkim_keys(
                &self,
                account_id: Option<AccountId>,
            ) -> Result<Vec<DkimKeyRow>, StoreError> {
                let rows = sqlx::query(
                    "SELECT * FROM dkim_keys WHERE (account_id = $1 OR $1 IS NULL) ORDER BY id",
                )
                .bind(account_id)
                .fetch_all(&self.read)
                .await?;
                rows.iter().map(Self::dkim_key_from_row).collect()
            }

            async fn delete_dkim_key(&self, id: i64) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM dkim_keys WHERE id = $1")
                    .bind(id)
                    .execute(&self.write)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn create_domain(
                &self,
                account_id: AccountId,
                domain: &str,
                verified_how: Option<&str>,
                now_ms: i64,
            ) -> Result<(DomainRow, bool), StoreError> {
                self.create_domain_sql(account_id, domain, verified_how, now_ms).await
            }

            async fn domain(&self, id: i64) -> Result<Option<DomainRow>, StoreError> {
                self.domain_sql(id).await
            }

            async fn list_domains(
                &self,
                account_id: Option<AccountId>,
            ) -> Result<Vec<DomainRow>, StoreError> {
                self.list_domains_sql(account_id).await
            }

            async fn delete_domain(&self, id: i64) -> Result<bool, StoreError> {
                self.delete_domain_sql(id).await
            }

            async fn verify_domain_by_dns(
                &self,
                id: i64,
                now_ms: i64,
            ) -> Result<Option<DomainRow>, StoreError> {
                self.verify_domain_by_dns_sql(id, now_ms).await
            }

            async fn domain_verified_elsewhere(
                &self,
                account_id: AccountId,
                domain: &str,
            ) -> Result<bool, StoreError> {
                self.verified_elsewhere_sql(account_id, domain).await
            }

            async fn record_domain_checks(
                &self,
                id: i64,
                checks: &serde_json::Value,
                now_ms: i64,
            ) -> Result<Option<DomainRow>, StoreError> {
                self.record_domain_checks_sql(id, checks, now_ms).await
            }

            async fn add_suppression(
                &self,
                account_id: AccountId,
                address: &str,
                reason: &str,
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
                .bind(reason)
                .bind(source)
                .bind(now_ms)
                .bind(expires_at)
                .fetch_one(&self.write)
                .await?;
                Self::suppression_from_row(&row)
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

            async fn list_suppressions(
                &self,
                account_id: AccountId,
            ) -> Result<Vec<SuppressionRow>, StoreError> {
                let rows = sqlx::query("SELECT * FROM suppressions WHERE account_id = $1 ORDER BY id")
                    .bind(account_id)
                    .fetch_all(&self.read)
                    .await?;
                rows.iter().map(Self::suppression_from_row).collect()
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

            async fn add_audit(&self, entry: &AuditEntry, now_ms: i64) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO audit_logs (account_id, actor, action, target_type, target_id, \
                     changes, source_ip, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(entry.account_id)
                .bind(&entry.actor)
                .bind(&entry.action)
                .bind(&entry.target_type)
                .bind(&entry.target_id)
                .bind(entry.changes.to_string())
                .bind(entry.source_ip.as_deref())
                .bind(now_ms)
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn list_audit(&self, filter: &$crate::AuditFilter) -> Result<Vec<AuditRow>, StoreError> {
                let rows = sqlx::query(
                    "SELECT * FROM audit_logs WHERE (account_id = $1 OR $1 IS NULL) \
                     AND (id < $2 OR $2 IS NULL) AND (actor = $4 OR $4 IS NULL) \
                     AND (action = $5 OR $5 IS NULL) AND (target_type = $6 OR $6 IS NULL) \
                     ORDER BY id DESC LIMIT $3",
                )
                .bind(filter.account_id)
                .bind(filter.before_id)
                .bind(filter.limit)
                .bind(filter.actor.as_deref())
                .bind(filter.action.as_deref())
                .bind(filter.target_type.as_deref())
                .fetch_all(&self.read)
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok(AuditRow {
                            id: row.try_get("id")?,
                            account_id: row.try_get("account_id")?,
                            actor: row.try_get("actor")?,
                            action: row.try_get("action")?,
                            target_type: row.try_get("target_type")?,
                            target_id: row.try_get("target_id")?,
                            changes: serde_json::from_str(row.try_get("changes")?)?,
                            source_ip: row.try_get("source_ip")?,
                            created_at: row.try_get("created_at")?,
                        })
                    })
                    .collect()
            }

            async fn list_messages(
                &self,
                filter: &MessageFilter,
            ) -> Result<Vec<MessageSummary>, StoreError> {
                let to_pattern = filter.to.as_ref().map(|to| format!("%\"{}\"%", like_escape(to)));
                let rows = sqlx::query(
                    "SELECT id, account_id, source, mail_from, rcpt_to, status, attempts, size, \
                     last_error, created_at, updated_at FROM messages \
                     WHERE (account_id = $1 OR $1 IS NULL) AND (status = $2 OR $2 IS NULL) \
                     AND (mail_from = $3 OR $3 IS NULL) \
                     AND (rcpt_to LIKE $4 ESCAPE '\\' OR $4 IS NULL) \
                     AND (created_at >= $5 OR $5 IS NULL) AND (created_at < $6 OR $6 IS NULL) \
                     AND (id < $7 OR $7 IS NULL) ORDER BY id DESC LIMIT $8",
                )
                .bind(filter.account_id)
                .bind(filter.status.as_deref())
                .bind(filter.from.as_deref())
                .bind(to_pattern)
                .bind(filter.since)
                .bind(filter.until)
                .bind(filter.before_id)
                .bind(filter.limit)
                .fetch_all(&self.read)
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok(MessageSummary {
                            id: row.try_get("id")?,
                            account_id: row.try_get("account_id")?,
                            source: row.try_get("source")?,
                            mail_from: row.try_get("mail_from")?,
                            rcpt_to: serde_json::from_str(row.try_get("rcpt_to")?)?,
                            status: row.try_get("status")?,
                            attempts: row.try_get::<i64, _>("attempts")? as u32,
                            size: row.try_get("size")?,
                            last_error: row.try_get("last_error")?,
                            created_at: row.try_get("created_at")?,
                            updated_at: row.try_get("updated_at")?,
                        })
                    })
                    .collect()
            }

            async fn enqueue_messages(
                &self,
                messages: &[NewMessage],
                now_ms: i64,
            ) -> Result<Vec<MessageId>, StoreError> {
                let mut tx = self.write.begin().await?;
                let fates = self.enqueue_in(&mut tx, messages, now_ms).await?;
                let ids = fates
                    .into_iter()
                    .map(|fate| match fate {
                        Enqueued::New(id) => Ok(id),
                        Enqueued::KeyTaken(_) => {
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
            ) -> Result<(Vec<Enqueued>, Vec<bool>), StoreError> {
                let mut tx = self.write.begin().await?;
                let fates = self.enqueue_in(&mut tx, messages, now_ms).await?;
                let applied = Self::record_attempts_in(&mut tx, attempts).await?;
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
                            body: self.bodies.open(row.try_get("body")?)?,
                            attempts: row.try_get::<i64, _>("attempts")? as u32,
                            created_at: row.try_get("created_at")?,
                            max_attempts: row
                                .try_get::<Option<i64>, _>("max_attempts")?
                                .map(|n| n.clamp(0, u32::MAX as i64) as u32),
                            source: row.try_get("source")?,
                            tags: serde_json::from_str(row.try_get("tags")?)?,
                            release_provider_id: row.try_get("release_provider_id")?,
                        })
                    })
                    .collect()
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
                let done = sqlx::query("DELETE FROM messages WHERE id = $1 AND status = 'captured'")
                    .bind(id)
                    .execute(&self.write)
                    .await?;
                Ok(done.rows_affected() == 1)
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
                    body: self.bodies.open(row.try_get("body")?)?,
                    created_at: row.try_get("created_at")?,
                    body_purged_at: row.try_get("body_purged_at")?,
                }))
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

            async fn reseal_bodies(
                &self,
                after_id: MessageId,
                limit: u32,
            ) -> Result<(Option<MessageId>, u64, u64), StoreError> {
                let rows = sqlx::query("SELECT id, body FROM messages WHERE id > $1 ORDER BY id LIMIT $2")
                    .bind(after_id)
                    .bind(i64::from(limit))
                    .fetch_all(&self.read)
                    .await?;
                let mut last = None;
                let mut rewrites = Vec::new();
                for row in &rows {
                    let id: MessageId = row.try_get("id")?;
                    let stored: Vec<u8> = row.try_get("body")?;
                    last = Some(id);
                    if let Some(resealed) = self.bodies.reseal(&stored)? {
                        rewrites.push((id, stored, resealed));
                    }
                }
                let mut tx = self.write.begin().await?;
                let mut rewritten = 0;
                for (id, stored, resealed) in &rewrites {
                    // Only if nobody changed it meanwhile (retention may have emptied it).
                    let done = sqlx::query("UPDATE messages SET body = $1 WHERE id = $2 AND body = $3")
                        .bind(resealed.as_slice())
                        .bind(*id)
                        .bind(stored.as_slice())
                        .execute(&mut *tx)
                        .await?;
                    rewritten += done.rows_affected();
                }
                tx.commit().await?;
                Ok((last, rows.len() as u64, rewritten))
            }

            async fn purge_bodies(&self, before_ms: i64, now_ms: i64, limit: u32) -> Result<u64, StoreError> {
                let done = sqlx::query(
                    "UPDATE messages SET body = $1, body_purged_at = $2 WHERE id IN (\
                       SELECT id FROM messages \
                       WHERE status IN ('delivered', 'failed', 'bounced', 'cancelled') \
                         AND updated_at < $3 AND body_purged_at IS NULL \
                       ORDER BY updated_at LIMIT $4)",
                )
                .bind(Vec::<u8>::new())
                .bind(now_ms)
                .bind(before_ms)
                .bind(i64::from(limit))
                .execute(&self.write)
                .await?;
                Ok(done.rows_affected())
            }

            async fn purge_messages(&self, before_ms: i64, limit: u32) -> Result<u64, StoreError> {
                // Attempts, events and webhook posts go with their message (ON DELETE CASCADE).
                let done = sqlx::query(
                    "DELETE FROM messages WHERE id IN (\
                       SELECT id FROM messages \
                       WHERE status IN ('delivered', 'failed', 'bounced', 'cancelled') \
                         AND updated_at < $1 \
                       ORDER BY updated_at LIMIT $2)",
                )
                .bind(before_ms)
                .bind(i64::from(limit))
                .execute(&self.write)
                .await?;
                Ok(done.rows_affected())
            }

            async fn oldest_waiting_created_at(&self) -> Result<Option<i64>, StoreError> {
                let row = sqlx::query(
                    "SELECT MIN(created_at) AS oldest FROM messages WHERE status IN ('queued', 'deferred')",
                )
                .fetch_one(&self.read)
                .await?;
                Ok(row.try_get("oldest")?)
            }

            fn pool_usage(&self) -> Vec<(&'static str, u32, u32)> {
                [("write", &self.write), ("read", &self.read)]
                    .into_iter()
                    .map(|(name, pool)| {
                        let open = pool.size();
                        (name, open.saturating_sub(pool.num_idle() as u32), open)
                    })
                    .collect()
            }
        }
    };
}

pub(crate) use impl_sql_store;

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
/// Most rows one multi-row statement writes (a batch may be larger): keeps every
/// statement well under SQLite's and PostgreSQL's limits on bound parameters.
pub(crate) const ROWS_PER_STATEMENT: usize = 200;

pub(crate) fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
