//! Tenants' webhook endpoints and the event-post outbox (`WebhookStore`).

use serde::{Deserialize, Serialize};
use sluice_core::{AccountId, MessageId, MessageStatus, WebhookDeliveryStatus};

/// Where a tenant wants message events POSTed.
#[derive(Debug, Clone)]
pub struct WebhookEndpointRow {
    pub id: i64,
    pub account_id: AccountId,
    pub url: String,
    /// Event kinds; `*` for all.
    pub events: Vec<String>,
    /// Sealed signing secret.
    pub secret: String,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewWebhookEndpoint {
    pub account_id: AccountId,
    pub url: String,
    pub events: Vec<String>,
    pub secret: String,
    pub enabled: bool,
}

/// A due POST of one event to one endpoint, claimed under a lease.
#[derive(Debug, Clone)]
pub struct DueWebhook {
    pub id: i64,
    pub endpoint_id: i64,
    pub url: String,
    pub secret: String,
    pub attempts: u32,
    pub created_at: i64,
    pub account_id: AccountId,
    pub message_id: MessageId,
    pub kind: String,
    pub detail: String,
    pub event_at: i64,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub message_status: MessageStatus,
    pub tags: Vec<String>,
}

/// What became of one POST.
#[derive(Debug, Clone)]
pub struct WebhookAttemptRecord {
    pub delivery_id: i64,
    pub lease_owner: String,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub delivered: bool,
    /// When to try again; None with `delivered` false: give up (`failed`).
    pub next_attempt_at: Option<i64>,
    pub started_at: i64,
    pub finished_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookAttemptRow {
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub started_at: i64,
    pub finished_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookDeliveryRow {
    pub id: i64,
    pub endpoint_id: i64,
    pub event_kind: String,
    pub message_id: MessageId,
    pub status: WebhookDeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub attempt_log: Vec<WebhookAttemptRow>,
}
