//! What goes in and out of the store.

use serde::{Deserialize, Serialize};
use sluice_core::router::WeightedProvider;
use sluice_core::{
    AccountId, AccountPolicy, AccountStatus, DeliveryReport, Envelope, MessageId, MessageStatus,
    ProviderType, Role, SessionKind, Source, SuppressionReason, UserStatus, Verdict,
    WebhookDeliveryStatus,
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
    pub status: AccountStatus,
    pub monthly_limit: i64,
    pub allow_any_local_part: bool,
    /// Sandbox mode: everything the account sends is captured, whatever the routing says.
    pub sandbox: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("status", &self.status)
            .field("sandbox", &self.sandbox)
            .finish_non_exhaustive()
    }
}

impl Account {
    pub fn is_active(&self) -> bool {
        self.state().is_active()
    }

    /// `status` (decoded where the row was read: an unknown text is a `StoreError`).
    pub fn state(&self) -> AccountStatus {
        self.status
    }

    pub fn policy(&self) -> AccountPolicy {
        AccountPolicy {
            account_id: self.id,
            allowed_domains: self.allowed_domains.clone(),
            monthly_limit: self.monthly_limit,
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
    /// Labels from the sender (HTTP API), for routing and search.
    pub tags: Vec<String>,
    /// At most this many delivery attempts (the config's limit still applies).
    pub max_attempts: Option<u32>,
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
    pub body: Vec<u8>,
    pub attempts: u32,
    pub created_at: i64,
    pub max_attempts: Option<u32>,
    /// How it arrived, for routing rules.
    pub source: Source,
    pub tags: Vec<String>,
    /// Set when a captured message was released through this provider: it goes there,
    /// not by the routing rules.
    pub release_provider_id: Option<i64>,
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
    pub body: Vec<u8>,
    pub created_at: i64,
    /// When retention emptied the body (`body` is then empty).
    pub body_purged_at: Option<i64>,
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

/// What `Store::set_account_status` did.
#[derive(Debug, Clone)]
pub struct AccountStatusChange {
    pub account: Account,
    /// Messages held, queued again or cancelled.
    pub messages_changed: u64,
    /// Refresh tokens and panel sessions ended.
    pub sessions_revoked: u64,
}

/// Fields of an account to change; `None` leaves one as it is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AccountUpdate {
    pub name: Option<String>,
    pub email: Option<String>,
    pub allowed_domains: Option<Vec<String>>,
    pub monthly_limit: Option<i64>,
    pub allow_any_local_part: Option<bool>,
    pub status: Option<String>,
    /// Sandbox mode on or off (the API audits each change as `sandbox_on` / `sandbox_off`).
    pub sandbox: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeyRow {
    pub id: i64,
    pub account_id: AccountId,
    /// The first characters of the key, enough to recognise it.
    pub prefix: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    /// `None` for a system admin.
    pub account_id: Option<AccountId>,
    pub email: String,
    pub password_hash: String,
    /// admin | owner | member | viewer
    pub role: String,
}

#[derive(Clone)]
pub struct User {
    pub id: i64,
    pub account_id: Option<AccountId>,
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    pub status: UserStatus,
    pub failed_logins: i64,
    pub first_failed_at: Option<i64>,
    pub locked_until: Option<i64>,
    pub created_at: i64,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A refresh token's row.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: i64,
    pub user_id: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// `refresh` or `panel`.
    pub kind: SessionKind,
}

/// An IMAP / POP3 server kept for checking; the password stays sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MailboxServerRow {
    pub id: i64,
    pub name: String,
    pub protocol: String,
    pub host: String,
    pub port: i64,
    pub security: String,
    pub username: String,
    #[serde(skip_serializing)]
    pub password_sealed: String,
    pub skip_tls_verify: bool,
    pub created_at: i64,
}

/// What the panel's dashboard shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Dashboard {
    pub by_status: Vec<(String, i64)>,
    pub hourly: Vec<HourCount>,
    pub providers: Vec<ProviderCount>,
    pub recent_errors: Vec<RecentError>,
}

/// Events of one kind in the hour starting at `hour` (ms).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HourCount {
    pub hour: i64,
    pub kind: String,
    pub count: i64,
}

/// Provider calls of one verdict since the dashboard's start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderCount {
    pub provider: String,
    pub verdict: Verdict,
    pub count: i64,
    pub last_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecentError {
    pub message_id: i64,
    pub kind: String,
    pub detail: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub account_id: Option<AccountId>,
    /// `user:<id>`, `api_key:<id>` or `cli`.
    pub actor: String,
    /// `create`, `update`, `delete`, `revoke`, `login` ...
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    /// Changed fields; never secrets.
    pub changes: serde_json::Value,
    pub source_ip: Option<String>,
}

/// Which audit entries: every field that is set must match (`None` account: all accounts).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub account_id: Option<AccountId>,
    /// `user:<id>`, `api_key:<id>`, `cli`.
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target_type: Option<String>,
    /// Entries older than this id (the cursor).
    pub before_id: Option<i64>,
    pub limit: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditRow {
    pub id: i64,
    pub account_id: Option<AccountId>,
    pub actor: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub changes: serde_json::Value,
    pub source_ip: Option<String>,
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
}

#[derive(Clone, Serialize, Deserialize)]
pub struct SmtpCredential {
    pub id: i64,
    pub account_id: AccountId,
    pub username: String,
    #[serde(skip)]
    pub password_hash: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl std::fmt::Debug for SmtpCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpCredential")
            .field("id", &self.id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Fields of a user to change; `None` leaves one as it is.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub role: Option<String>,
    pub status: Option<String>,
    pub password_hash: Option<String>,
}

/// A provider as stored: public settings in the clear, secret settings sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderRow {
    pub id: i64,
    /// `None`: system-wide.
    pub account_id: Option<AccountId>,
    pub name: String,
    pub provider_type: ProviderType,
    pub config: serde_json::Value,
    /// `v1.` + base64 AES-256-GCM; never leaves the server.
    #[serde(skip)]
    pub secrets: String,
    pub enabled: bool,
    pub priority: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewProvider {
    pub account_id: Option<AccountId>,
    pub name: String,
    pub provider_type: ProviderType,
    pub config: serde_json::Value,
    pub secrets: String,
    pub enabled: bool,
    pub priority: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuleRow {
    pub id: i64,
    pub account_id: AccountId,
    pub name: String,
    pub priority: i64,
    pub conditions: serde_json::Value,
    pub provider_id: i64,
    pub fallbacks: Vec<i64>,
    pub split: Vec<WeightedProvider>,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewRule {
    pub account_id: AccountId,
    pub name: String,
    pub priority: i64,
    pub conditions: serde_json::Value,
    pub provider_id: i64,
    pub fallbacks: Vec<i64>,
    pub split: Vec<WeightedProvider>,
    pub enabled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TemplateRow {
    pub id: i64,
    /// `None`: system-wide.
    pub account_id: Option<AccountId>,
    pub name: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewTemplate {
    pub account_id: Option<AccountId>,
    pub name: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
}

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

/// A DKIM key: the private half sealed, the DNS record to publish in the clear.
#[derive(Debug, Clone)]
pub struct DkimKeyRow {
    pub id: i64,
    pub account_id: AccountId,
    pub domain: String,
    pub selector: String,
    pub algorithm: String,
    /// Sealed PKCS#8 DER; never leaves the server.
    pub private_key: String,
    pub dns_record: String,
    pub enabled: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewDkimKey {
    pub account_id: AccountId,
    pub domain: String,
    pub selector: String,
    pub algorithm: String,
    pub private_key: String,
    pub dns_record: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SuppressionRow {
    pub id: i64,
    pub account_id: AccountId,
    pub address: String,
    pub reason: SuppressionReason,
    pub source: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// A sender domain of an account (table `domains`). Only verified rows are usable for
/// sending; `token` is what the account publishes as `_sluice.<domain> TXT
/// "sluice-verify=<token>"`.
#[derive(Debug, Clone)]
pub struct DomainRow {
    pub id: i64,
    pub account_id: AccountId,
    /// Lower case, no trailing dot.
    pub domain: String,
    pub token: String,
    pub verified: bool,
    pub verified_at: Option<i64>,
    /// `dns`, `admin` or `migration`; `None` while unverified.
    pub verified_how: Option<String>,
    /// The last DNS check (SPF, DKIM, DMARC) as the API shows it; `{}` before the first.
    pub checks: serde_json::Value,
    pub checked_at: Option<i64>,
    pub created_at: i64,
}
