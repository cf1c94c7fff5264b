//! What the capture area (`CaptureStore`) takes and gives.

use sluice_core::{AccountId, MessageBody, MessageId};

/// A captured message the capture indexer has not parsed yet.
#[derive(Debug, Clone)]
pub struct UnindexedCapture {
    pub id: MessageId,
    pub account_id: AccountId,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub tags: Vec<String>,
    pub body: MessageBody,
    pub created_at: i64,
}

/// What search and the inbox list keep of one captured message.
#[derive(Debug, Clone, PartialEq)]
pub struct CapturedMail {
    pub message_id: MessageId,
    pub account_id: AccountId,
    pub subject: String,
    pub from_text: String,
    pub to_text: String,
    pub cc_text: String,
    /// Empty when bodies are encrypted at rest (the index would hold them in the clear).
    pub body_text: String,
    pub tags: Vec<String>,
    /// The sender's tags (`messages.tags`) `tags` was computed from: the row is written
    /// only while the message still has them (tags set by hand meanwhile: computed again).
    pub sender_tags: Vec<String>,
    pub has_attachments: bool,
    /// The `message.captured` event's detail: the parsed message as JSON.
    pub event_detail: String,
}

/// Which captured mail a bulk delete takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapturedSelection {
    /// These ids (those of other accounts or not captured are left alone).
    Ids(Vec<MessageId>),
    /// All of it.
    All,
}

/// The server's retention for captured mail, for accounts that set none of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureRetention {
    /// Keep at most this many per account (newest kept).
    pub count: Option<i64>,
    /// Keep for at most this many days.
    pub days: Option<i64>,
}
