//! Tenants' event webhooks: their endpoints and the outbox of posts (filled by a trigger on
//! `events`, migration 0011), claimed under lease.

use async_trait::async_trait;
use sluice_core::AccountId;

use crate::StoreError;
use crate::types::*;

/// Tenants' webhook endpoints and the outbox of their event posts.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    async fn create_webhook_endpoint(
        &self,
        endpoint: &NewWebhookEndpoint,
        now_ms: i64,
    ) -> Result<WebhookEndpointRow, StoreError>;

    async fn webhook_endpoint(&self, id: i64) -> Result<Option<WebhookEndpointRow>, StoreError>;

    async fn list_webhook_endpoints(
        &self,
        account_id: Option<AccountId>,
    ) -> Result<Vec<WebhookEndpointRow>, StoreError>;

    /// Replaces url, events, secret and enabled.
    async fn replace_webhook_endpoint(
        &self,
        id: i64,
        endpoint: &NewWebhookEndpoint,
        now_ms: i64,
    ) -> Result<Option<WebhookEndpointRow>, StoreError>;

    async fn delete_webhook_endpoint(&self, id: i64) -> Result<bool, StoreError>;

    /// Pending event posts that are due (or whose lease ran out), leased to `owner`.
    async fn claim_webhook_deliveries(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<DueWebhook>, StoreError>;

    /// False when the lease was lost.
    async fn record_webhook_attempt(
        &self,
        attempt: &WebhookAttemptRecord,
    ) -> Result<bool, StoreError>;

    /// Newest first, with each delivery's attempts.
    async fn list_webhook_deliveries(
        &self,
        endpoint_id: i64,
        limit: i64,
    ) -> Result<Vec<WebhookDeliveryRow>, StoreError>;
}

/// Implements [`WebhookStore`] for `$store` (pools `write` and `read` of `$db`). The claim
/// statement binds `$1` owner, `$2` lease end, `$3` now, `$4` limit.
macro_rules! impl_webhook_sql {
    ($store:ty, $db:ty, webhook_claim_sql = $webhook_claim_sql:expr) => {
        #[async_trait::async_trait]
        impl $crate::webhooks::WebhookStore for $store {
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
                $crate::rows::webhook_endpoint_from_row(&row)
            }

            async fn webhook_endpoint(&self, id: i64) -> Result<Option<WebhookEndpointRow>, StoreError> {
                self.fetch_one_as(
                    "SELECT * FROM webhook_endpoints WHERE id = $1",
                    id,
                    $crate::rows::webhook_endpoint_from_row,
                )
                .await
            }

            async fn list_webhook_endpoints(
                &self,
                account_id: Option<AccountId>,
            ) -> Result<Vec<WebhookEndpointRow>, StoreError> {
                self.fetch_all_as(
                    "SELECT * FROM webhook_endpoints WHERE (account_id = $1 OR $1 IS NULL) ORDER BY id",
                    account_id,
                    $crate::rows::webhook_endpoint_from_row,
                )
                .await
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
                row.as_ref().map($crate::rows::webhook_endpoint_from_row).transpose()
            }

            async fn delete_webhook_endpoint(&self, id: i64) -> Result<bool, StoreError> {
                self.delete_by_id("DELETE FROM webhook_endpoints WHERE id = $1", id).await
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
                            message_status: $crate::rows::Columns::kind(row, "message_status")?,
                            tags: serde_json::from_str(row.try_get("tags")?)?,
                        })
                    })
                    .collect()
            }

            async fn record_webhook_attempt(
                &self,
                a: &WebhookAttemptRecord,
            ) -> Result<bool, StoreError> {
                let status =
                    sluice_core::WebhookDeliveryStatus::after_try(a.delivered, a.next_attempt_at)
                        .as_str();
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
                        status: $crate::rows::Columns::kind(row, "status")?,
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
        }
    };
}

pub(crate) use impl_webhook_sql;
