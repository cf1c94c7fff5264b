//! What `/api/v1` answers about messages (see `routes::messages`).

use serde::{Deserialize, Serialize};
use sluice_store::MessageSummary;
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessageItem {
    pub id: i64,
    pub account_id: i64,
    pub source: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub status: String,
    pub attempts: u32,
    pub size: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Captured mail, once indexed: its Subject.
    pub subject: Option<String>,
    /// Captured mail: it has attachments (inline images with a Content-ID aside).
    pub has_attachments: bool,
    /// The sender's tags, and for indexed captured mail those of `X-Tags` and
    /// plus-addresses too.
    pub tags: Vec<String>,
    /// Someone marked it read (`POST /messages/{id}/read`).
    pub read: bool,
    /// Captured mail a copy of which was released (`POST /messages/{id}/release`).
    pub released: bool,
}

/// `POST /messages/delete-captured`: these captured messages, or all of them.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeleteCaptured {
    #[serde(default)]
    pub ids: Vec<i64>,
    /// Every captured message of the account (admins: of `account_id`, or of all).
    #[serde(default)]
    pub all: bool,
    pub account_id: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeletedCaptured {
    pub deleted: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReadMark {
    pub id: i64,
    pub read: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AttemptView {
    pub provider: String,
    /// The configured provider that carried the attempt; absent for the default provider.
    pub provider_id: Option<i64>,
    /// The service's id for the message (SendGrid X-Message-Id, SES MessageId, ...).
    pub provider_message_id: Option<String>,
    pub verdict: String,
    pub code: Option<i64>,
    pub response: String,
    pub started_at: i64,
    pub finished_at: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    pub kind: String,
    pub detail: String,
    pub created_at: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessageDetail {
    pub id: i64,
    pub account_id: i64,
    pub source: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub pending_rcpt: Vec<String>,
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub size: i64,
    pub created_at: i64,
    /// Set when retention emptied the body (`retention.body_days`): the raw source is gone.
    pub body_purged_at: Option<i64>,
    /// The tags its sender set (the send API's `tags`) or set by hand
    /// (`PUT /messages/{id}/tags`); `/parsed` adds those the message carries.
    #[serde(default)]
    pub tags: Vec<String>,
    pub delivery_attempts: Vec<AttemptView>,
    pub events: Vec<EventView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Requeued {
    pub id: i64,
    pub status: String,
}

impl From<MessageSummary> for MessageItem {
    fn from(m: MessageSummary) -> Self {
        MessageItem {
            id: m.id,
            account_id: m.account_id,
            source: m.source.to_string(),
            mail_from: m.mail_from,
            rcpt_to: m.rcpt_to,
            status: m.status.to_string(),
            attempts: m.attempts,
            size: m.size,
            last_error: m.last_error,
            created_at: m.created_at,
            updated_at: m.updated_at,
            subject: m.subject,
            has_attachments: m.has_attachments,
            tags: m.tags,
            read: m.read,
            released: m.released,
        }
    }
}
