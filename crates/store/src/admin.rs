//! The node's and the operator's: health, pool usage, run-time settings, the audit log,
//! mailbox check servers and the dashboard's counts.

use async_trait::async_trait;
use sluice_core::AccountId;

use crate::StoreError;
use crate::types::*;

/// Health, settings, audit, mailbox check servers and the dashboard.
#[async_trait]
pub trait AdminStore: Send + Sync {
    /// Cheap round trip for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;

    /// IMAP / POP3 servers kept for checking (`id` is ignored on create).
    async fn create_mailbox_server(
        &self,
        server: &MailboxServerRow,
    ) -> Result<MailboxServerRow, StoreError>;

    async fn list_mailbox_servers(&self) -> Result<Vec<MailboxServerRow>, StoreError>;

    async fn mailbox_server(&self, id: i64) -> Result<Option<MailboxServerRow>, StoreError>;

    async fn delete_mailbox_server(&self, id: i64) -> Result<bool, StoreError>;

    /// A node-wide setting kept in the database.
    async fn setting(&self, key: &str) -> Result<Option<String>, StoreError>;

    async fn put_setting(&self, key: &str, value: &str, now_ms: i64) -> Result<(), StoreError>;

    /// Queue depth by status, the last hours' accepted/delivered/failed counts, provider
    /// results and recent errors, for one account or all (`None`).
    async fn dashboard(
        &self,
        account_id: Option<AccountId>,
        since_ms: i64,
    ) -> Result<Dashboard, StoreError>;

    async fn add_audit(&self, entry: &AuditEntry, now_ms: i64) -> Result<(), StoreError>;

    /// Newest first, by the filter's fields that are set.
    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>, StoreError>;

    /// Database connections per pool (`write`, `read`): (pool, in use, open).
    fn pool_usage(&self) -> Vec<(&'static str, u32, u32)>;
}

/// Implements [`AdminStore`] for `$store` (pools `write` and `read` of `$db`).
macro_rules! impl_admin_sql {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::admin::AdminStore for $store {
            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.read).await?;
                Ok(())
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
                $crate::rows::mailbox_server_from_row(&row)
            }

            async fn list_mailbox_servers(&self) -> Result<Vec<$crate::MailboxServerRow>, StoreError> {
                let rows = sqlx::query("SELECT * FROM mailbox_servers ORDER BY id")
                    .fetch_all(&self.read)
                    .await?;
                rows.iter().map($crate::rows::mailbox_server_from_row).collect()
            }

            async fn mailbox_server(&self, id: i64) -> Result<Option<$crate::MailboxServerRow>, StoreError> {
                self.fetch_one_as(
                    "SELECT * FROM mailbox_servers WHERE id = $1",
                    id,
                    $crate::rows::mailbox_server_from_row,
                )
                .await
            }

            async fn delete_mailbox_server(&self, id: i64) -> Result<bool, StoreError> {
                self.delete_by_id("DELETE FROM mailbox_servers WHERE id = $1", id).await
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
                        verdict: $crate::rows::Columns::kind(row, "verdict")?,
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

pub(crate) use impl_admin_sql;
