//! What the queue area (`QueueStore`) takes and gives: new messages, claims, attempts.

use sluice_core::{
    AccountId, DeliveryReport, Envelope, MessageBody, MessageId, MessageStatus, Source,
};

/// A message on its way into the queue.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub account_id: AccountId,
    pub source: Source,
    pub envelope: Envelope,
    pub body: MessageBody,
    /// `Some((owner, lease_until_ms))` stores it already leased (sync mode delivers it in
    /// the session); `None` queues it for the workers.
    pub lease: Option<(String, i64)>,
    /// Labels from the sender (HTTP API), for routing and search.
    pub tags: Vec<String>,
    /// At most this many delivery attempts (the config's limit still applies).
    pub max_attempts: Option<u32>,
    /// Sent through a sandboxed API key or SMTP credential: captured at delivery.
    pub sandbox: bool,
    /// The HTTP send API's idempotency key, written in the message's transaction; when the
    /// key is already taken the message is not written (`Enqueued::KeyTaken`).
    pub idempotency: Option<sluice_core::idempotency::IdempotencyClaim>,
}

/// What became of a [`NewMessage`] in a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// Written, with this id.
    New(MessageId),
    /// Not written: its idempotency key was taken, by an earlier commit or by an earlier
    /// message of the same batch; what that one left.
    KeyTaken(sluice_core::idempotency::IdempotencyRecord),
}

/// A message a worker holds under lease.
#[derive(Debug, Clone)]
pub struct ClaimedMessage {
    pub id: MessageId,
    pub account_id: AccountId,
    /// `rcpt_to` holds only the recipients still pending.
    pub envelope: Envelope,
    pub body: MessageBody,
    pub attempts: u32,
    pub created_at: i64,
    pub max_attempts: Option<u32>,
    /// How it arrived, for routing rules.
    pub source: Source,
    pub tags: Vec<String>,
    /// Set when a captured message was released through this provider: it goes there,
    /// not by the routing rules.
    pub release_provider_id: Option<i64>,
    /// Sent through a sandboxed API key or SMTP credential: captured, whatever the routing.
    pub sandbox: bool,
}

/// What one provider made of (some recipients of) a message.
#[derive(Debug, Clone)]
pub struct ProviderAttempt {
    /// The configured provider; `None` for the config's default provider.
    pub provider_id: Option<i64>,
    pub report: DeliveryReport,
}

/// The outcome of one attempt, ready to store.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub message_id: MessageId,
    pub lease_owner: String,
    /// Every recipient's final result in this attempt (after failover), for the message.
    pub report: DeliveryReport,
    /// One row per provider call; when empty, `report` is stored as the one row.
    pub calls: Vec<ProviderAttempt>,
    pub started_at: i64,
    pub finished_at: i64,
    pub new_status: MessageStatus,
    /// Recipients still to deliver (the transient ones).
    pub pending_rcpt: Vec<String>,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    /// (kind, detail) events to add.
    pub events: Vec<(String, String)>,
}
