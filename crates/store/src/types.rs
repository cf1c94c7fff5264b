//! What goes in and out of the store.

use serde::{Deserialize, Serialize};
use sluice_core::{
    AccountId, AccountPolicy, DeliveryReport, Envelope, MessageId, MessageStatus, Source,
};

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub name: String,
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub allowed_domains: Vec<String>,
}

#[derive(Clone)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub email: String,
    pub password_hash: String,
    pub allowed_domains: Vec<String>,
    pub status: String,
    pub created_at: i64,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Account {
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }

    pub fn policy(&self) -> AccountPolicy {
        AccountPolicy {
            account_id: self.id,
            allowed_domains: self.allowed_domains.clone(),
        }
    }
}

/// A message on its way into the queue.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub account_id: AccountId,
    pub source: Source,
    pub envelope: Envelope,
    pub body: Vec<u8>,
    /// `Some((owner, lease_until_ms))` stores it already leased (sync mode delivers it in
    /// the session); `None` queues it for the workers.
    pub lease: Option<(String, i64)>,
}

/// A message a worker holds under lease.
#[derive(Debug, Clone)]
pub struct ClaimedMessage {
    pub id: MessageId,
    pub account_id: AccountId,
    /// `rcpt_to` holds only the recipients still pending.
    pub envelope: Envelope,
    pub body: Vec<u8>,
    pub attempts: u32,
    pub created_at: i64,
}

/// The outcome of one attempt, ready to store.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub message_id: MessageId,
    pub lease_owner: String,
    pub report: DeliveryReport,
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageRecord {
    pub id: MessageId,
    pub account_id: AccountId,
    pub source: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub pending_rcpt: Vec<String>,
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub size: i64,
    #[serde(skip)]
    pub body: Vec<u8>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttemptRow {
    pub provider: String,
    pub verdict: String,
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
