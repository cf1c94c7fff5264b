//! One message as `MessageStore` reads it, its attempts and events; the list's filter
//! and rows.

use serde::{Deserialize, Serialize};
use sluice_core::{AccountId, MessageId, MessageStatus, Source, Verdict};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageRecord {
    pub id: MessageId,
    pub account_id: AccountId,
    pub source: Source,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub pending_rcpt: Vec<String>,
    pub status: MessageStatus,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub size: i64,
    #[serde(skip)]
    pub body: sluice_core::MessageBody,
    pub created_at: i64,
    /// When retention emptied the body (`body` is then empty).
    pub body_purged_at: Option<i64>,
    /// The sender's tags (send API `tags`).
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttemptRow {
    pub provider: String,
    pub provider_id: Option<i64>,
    pub provider_message_id: Option<String>,
    pub verdict: Verdict,
    pub code: Option<i64>,
    pub response: String,
    pub started_at: i64,
    pub finished_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRow {
    pub kind: String,
    pub detail: String,
    pub created_at: i64,
}

/// Which messages to list, newest first, `before_id` as the cursor.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub account_id: Option<AccountId>,
    pub status: Option<MessageStatus>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub before_id: Option<i64>,
    pub limit: i64,
    /// Search terms over the capture index (captured mail only).
    pub query: Option<sluice_core::capture_query::CaptureQuery>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageSummary {
    pub id: MessageId,
    pub account_id: AccountId,
    pub source: Source,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub status: MessageStatus,
    pub attempts: u32,
    pub size: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// From the capture index (captured mail, once indexed).
    pub subject: Option<String>,
    pub has_attachments: bool,
    /// The index's tags once indexed, else the sender's.
    pub tags: Vec<String>,
    /// Someone marked it read.
    pub read: bool,
    /// Captured mail a copy of which was released to a provider.
    pub released: bool,
}
