//! Durable state: the `Store` trait, its SQLite backend and the group committer.
//!
//! Only this crate speaks SQL, and every query is parameterised.

mod bodies;
mod domains;
mod group_commit;
mod idempotency;
mod postgres;
mod reserve;
mod sql;
mod sqlite;
mod types;

use async_trait::async_trait;
use thiserror::Error;

pub mod ttl_cache;

pub use bodies::BodyCodec;
pub use group_commit::{
    BatchWrite, Batcher, GroupCommitConfig, QueueCommitter, QueueWrite, QueueWrites, QueueWritten,
};
pub use postgres::PgStore;
pub use reserve::{DiskReserve, storage_faults};
pub use sqlite::SqliteStore;
pub use types::*;

use sluice_core::{AccountId, MessageId};

#[derive(Debug, Clone, Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("already exists: {0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(String),
    /// The disk failed the write or its sync, is full, or is below `storage.min_free_bytes`;
    /// nothing of the write is promised. Answered 452 4.3.1 (SMTP) / 507 (HTTP).
    #[error("storage failed: {0}")]
    Storage(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_string())
            }
            sqlx::Error::Database(db) if reserve::is_storage_fault(db.as_ref()) => {
                reserve::note_storage_fault();
                StoreError::Storage(db.message().to_string())
            }
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(err.to_string())
            }
            _ => StoreError::Database(err.to_string()),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(err: serde_json::Error) -> Self {
        StoreError::Corrupt(err.to_string())
    }
}

/// Everything Sluice keeps. One implementation per database backend.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap round trip for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;

    async fn create_account(&self, account: NewAccount, now_ms: i64)
    -> Result<Account, StoreError>;
    async fn account_by_email(&self, email: &str) -> Result<Option<Account>, StoreError>;
    async fn account(&self, id: AccountId) -> Result<Option<Account>, StoreError>;
    /// Accounts by id after `after_id`, at most `limit`.
    async fn list_accounts(&self, after_id: i64, limit: i64) -> Result<Vec<Account>, StoreError>;
    async fn update_account(
        &self,
        id: AccountId,
        update: &AccountUpdate,
        now_ms: i64,
    ) -> Result<Option<Account>, StoreError>;

    /// Moves an account to `status` (never out of `deleted`) and, in the same transaction,
    /// its waiting mail: `suspended` holds queued and deferred messages, `active` queues
    /// held ones again, `deleted` cancels queued, deferred and held ones, each with an
    /// event (`held`, `hold_released`, `account_deleted`); `suspended` and `deleted` also
    /// revoke every refresh token and panel session of its users. `None`: no such
    /// account, or it is deleted.
    async fn set_account_status(
        &self,
        id: AccountId,
        status: sluice_core::AccountStatus,
        now_ms: i64,
    ) -> Result<Option<AccountStatusChange>, StoreError>;

    /// Stores a key's hash; returns the key's id.
    async fn add_api_key(
        &self,
        account_id: AccountId,
        prefix: &str,
        key_hash: &str,
        now_ms: i64,
    ) -> Result<i64, StoreError>;
    async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRow>, StoreError>;
    async fn list_api_keys(&self, account_id: AccountId) -> Result<Vec<ApiKeyRow>, StoreError>;
    /// False when the account has no such unrevoked key.
    async fn revoke_api_key(
        &self,
        account_id: AccountId,
        id: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    async fn create_user(&self, user: NewUser, now_ms: i64) -> Result<User, StoreError>;
    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError>;
    async fn user(&self, id: i64) -> Result<Option<User>, StoreError>;
    /// Users of one account, or every user for `None`, by id.
    async fn list_users(&self, account_id: Option<AccountId>) -> Result<Vec<User>, StoreError>;
    async fn update_user(
        &self,
        id: i64,
        update: &UserUpdate,
        now_ms: i64,
    ) -> Result<Option<User>, StoreError>;
    /// Ends every refresh session of the user (logout everywhere).
    async fn revoke_user_sessions(&self, user_id: i64, now_ms: i64) -> Result<u64, StoreError>;
    /// Stores the login-throttle state computed by `sluice_core::LoginThrottle`.
    async fn set_login_state(
        &self,
        user_id: i64,
        state: &sluice_core::LoginState,
    ) -> Result<(), StoreError>;

    /// A session of `kind`: `refresh` (an API refresh token) or `panel` (a web panel login).
    async fn create_session(
        &self,
        user_id: i64,
        kind: &str,
        token_hash: &str,
        expires_at: i64,
        now_ms: i64,
    ) -> Result<i64, StoreError>;
    async fn session_by_hash(&self, token_hash: &str) -> Result<Option<SessionRow>, StoreError>;
    /// Ends every session of one kind (all panel logins, when its secret is rotated).
    async fn revoke_sessions_of_kind(&self, kind: &str, now_ms: i64) -> Result<u64, StoreError>;
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
    /// Revokes once: false if it was already revoked (a replayed refresh token).
    async fn revoke_session(&self, id: i64, now_ms: i64) -> Result<bool, StoreError>;

    async fn add_smtp_credential(
        &self,
        account_id: AccountId,
        username: &str,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<i64, StoreError>;
    async fn smtp_credential_by_username(
        &self,
        username: &str,
    ) -> Result<Option<SmtpCredential>, StoreError>;
    async fn list_smtp_credentials(
        &self,
        account_id: AccountId,
    ) -> Result<Vec<SmtpCredential>, StoreError>;
    async fn revoke_smtp_credential(
        &self,
        account_id: AccountId,
        id: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Messages accepted for the account in `month` (`YYYY-MM`, see `sluice_core::month_of`).
    async fn monthly_usage(&self, account_id: AccountId, month: &str) -> Result<i64, StoreError>;

    async fn create_provider(
        &self,
        provider: &NewProvider,
        now_ms: i64,
    ) -> Result<ProviderRow, StoreError>;
    async fn provider(&self, id: i64) -> Result<Option<ProviderRow>, StoreError>;
    /// One account's providers, or all for `None`, by priority then id.
    async fn list_providers(
        &self,
        account_id: Option<AccountId>,
    ) -> Result<Vec<ProviderRow>, StoreError>;
    /// The providers a message of the account may go through: its own and the system-wide.
    async fn routing_providers(
        &self,
        account_id: AccountId,
    ) -> Result<Vec<ProviderRow>, StoreError>;
    /// The message a provider's message id belongs to (from its delivery attempts).
    async fn message_by_provider_message_id(
        &self,
        provider_id: i64,
        provider_message_id: &str,
    ) -> Result<Option<(MessageId, AccountId)>, StoreError>;
    /// Records what a service reported about a delivered message. `bounced`: a hard
    /// bounce or drop, which marks a single-recipient delivered message `bounced`.
    async fn record_feedback(
        &self,
        message_id: MessageId,
        account_id: AccountId,
        kind: &str,
        detail: &str,
        bounced: bool,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Replaces every field but the id, account and creation time.
    async fn replace_provider(
        &self,
        id: i64,
        provider: &NewProvider,
        now_ms: i64,
    ) -> Result<Option<ProviderRow>, StoreError>;
    /// False when no such provider; a provider that rules use cannot be deleted (Conflict).
    async fn delete_provider(&self, id: i64) -> Result<bool, StoreError>;

    async fn create_rule(&self, rule: &NewRule, now_ms: i64) -> Result<RuleRow, StoreError>;
    async fn rule(&self, id: i64) -> Result<Option<RuleRow>, StoreError>;
    async fn list_rules(&self, account_id: Option<AccountId>) -> Result<Vec<RuleRow>, StoreError>;
    async fn replace_rule(
        &self,
        id: i64,
        rule: &NewRule,
        now_ms: i64,
    ) -> Result<Option<RuleRow>, StoreError>;
    async fn delete_rule(&self, id: i64) -> Result<bool, StoreError>;

    async fn create_template(
        &self,
        t: &NewTemplate,
        now_ms: i64,
    ) -> Result<TemplateRow, StoreError>;
    async fn template(&self, id: i64) -> Result<Option<TemplateRow>, StoreError>;
    /// The account's template of that name, else the system-wide one.
    async fn template_by_name(
        &self,
        account_id: Option<AccountId>,
        name: &str,
    ) -> Result<Option<TemplateRow>, StoreError>;
    /// The account's templates and the system-wide ones (`None`: every template).
    async fn list_templates(
        &self,
        account_id: Option<AccountId>,
    ) -> Result<Vec<TemplateRow>, StoreError>;
    async fn replace_template(
        &self,
        id: i64,
        t: &NewTemplate,
        now_ms: i64,
    ) -> Result<Option<TemplateRow>, StoreError>;
    async fn delete_template(&self, id: i64) -> Result<bool, StoreError>;

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

    /// Conflict when the domain already has a key with this selector.
    async fn create_dkim_key(
        &self,
        key: &NewDkimKey,
        now_ms: i64,
    ) -> Result<DkimKeyRow, StoreError>;
    async fn dkim_key(&self, id: i64) -> Result<Option<DkimKeyRow>, StoreError>;
    /// Oldest first; `account_id` None lists every account's keys.
    async fn list_dkim_keys(
        &self,
        account_id: Option<AccountId>,
    ) -> Result<Vec<DkimKeyRow>, StoreError>;
    async fn delete_dkim_key(&self, id: i64) -> Result<bool, StoreError>;

    /// Adds a sender domain to the account: unverified with a new token, or with
    /// `verified_how` (`admin`) verified at once (an existing unverified row of the account
    /// becomes verified). The row, and whether it was added (Conflict: the account has it
    /// already, unverified adds only).
    async fn create_domain(
        &self,
        account_id: AccountId,
        domain: &str,
        verified_how: Option<&str>,
        now_ms: i64,
    ) -> Result<(DomainRow, bool), StoreError>;
    async fn domain(&self, id: i64) -> Result<Option<DomainRow>, StoreError>;
    /// By domain; `account_id` None lists every account's.
    async fn list_domains(
        &self,
        account_id: Option<AccountId>,
    ) -> Result<Vec<DomainRow>, StoreError>;
    async fn delete_domain(&self, id: i64) -> Result<bool, StoreError>;
    /// Marks the domain verified by DNS, unless another account holds the same domain
    /// verified (then `None`, and nothing changes), in one statement.
    async fn verify_domain_by_dns(
        &self,
        id: i64,
        now_ms: i64,
    ) -> Result<Option<DomainRow>, StoreError>;
    /// Whether an account other than `account_id` has `domain` verified.
    async fn domain_verified_elsewhere(
        &self,
        account_id: AccountId,
        domain: &str,
    ) -> Result<bool, StoreError>;
    /// Keeps the result of a DNS check (SPF, DKIM, DMARC) on the domain.
    async fn record_domain_checks(
        &self,
        id: i64,
        checks: &serde_json::Value,
        now_ms: i64,
    ) -> Result<Option<DomainRow>, StoreError>;

    /// Adds (or renews) a suppression of `address` for the account.
    #[allow(clippy::too_many_arguments)]
    async fn add_suppression(
        &self,
        account_id: AccountId,
        address: &str,
        reason: &str,
        source: &str,
        expires_at: Option<i64>,
        now_ms: i64,
    ) -> Result<SuppressionRow, StoreError>;
    async fn list_suppressions(
        &self,
        account_id: AccountId,
    ) -> Result<Vec<SuppressionRow>, StoreError>;
    async fn delete_suppression(&self, account_id: AccountId, id: i64) -> Result<bool, StoreError>;
    /// Whether the account has any suppression in force now.
    async fn has_suppressions(
        &self,
        account_id: AccountId,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Which of `addresses` the account may not send to now.
    async fn suppressed(
        &self,
        account_id: AccountId,
        addresses: &[String],
        now_ms: i64,
    ) -> Result<Vec<String>, StoreError>;

    /// Records a webhook signature until `expires_at`; false if it was already recorded
    /// (a replay). Expired signatures are forgotten on the way.
    async fn remember_signature(
        &self,
        signature: &str,
        expires_at: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    async fn add_audit(&self, entry: &AuditEntry, now_ms: i64) -> Result<(), StoreError>;
    /// Newest first, by the filter's fields that are set.
    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>, StoreError>;

    async fn list_messages(
        &self,
        filter: &MessageFilter,
    ) -> Result<Vec<MessageSummary>, StoreError>;

    /// Commits all messages (a `queued` event and the monthly usage count for each) in one
    /// transaction.
    /// Returns their ids in order. Nothing is visible before the commit. A message whose
    /// idempotency key is taken fails the whole call (`StoreError::Conflict`): keyed sends
    /// go through `write_queue`, which answers them one by one.
    async fn enqueue_messages(
        &self,
        messages: &[NewMessage],
        now_ms: i64,
    ) -> Result<Vec<MessageId>, StoreError>;

    /// New messages and delivery attempts in one transaction (the group commit writes both
    /// kinds together: one fsync for the batch): per message what became of it, in order,
    /// then per attempt whether it was applied, as `record_attempts` answers. A message
    /// whose idempotency key (unexpired) is taken is not written and does not fail the
    /// batch: it answers `Enqueued::KeyTaken` with the record of the one that took it.
    async fn write_queue(
        &self,
        messages: &[NewMessage],
        attempts: &[AttemptRecord],
        now_ms: i64,
    ) -> Result<(Vec<Enqueued>, Vec<bool>), StoreError>;

    /// The account's record of an idempotency key, unless it expired
    /// (`IDEMPOTENCY_TTL_MS` before `now_ms`).
    async fn idempotency_key(
        &self,
        account_id: AccountId,
        key: &str,
        now_ms: i64,
    ) -> Result<Option<sluice_core::idempotency::IdempotencyRecord>, StoreError>;

    /// A sync send's key once its answer is known: `Some` remembers the answer, `None`
    /// forgets the key (a failure is not remembered: a retry runs again).
    async fn settle_idempotency_key(
        &self,
        account_id: AccountId,
        key: &str,
        answer: Option<sluice_core::idempotency::SendAnswer>,
    ) -> Result<(), StoreError>;

    /// Leases up to `limit` messages that are due (or whose lease, held by another owner,
    /// expired) to `owner`, for `lease_ms`. A message `owner` leased itself is never taken
    /// again by `owner`, however late the clock says it is. SQLite measures the lease with
    /// `now_ms`; PostgreSQL with the database's clock, so no node's clock jump steals it.
    async fn claim_due_messages(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<ClaimedMessage>, StoreError>;

    /// Records an attempt and applies its outcome, if `owner` still holds the lease.
    /// Returns false (and changes nothing) when the lease was lost.
    async fn record_attempt(&self, attempt: &AttemptRecord) -> Result<bool, StoreError>;
    /// Several attempts in one transaction (group commit); one answer per attempt.
    async fn record_attempts(&self, attempts: &[AttemptRecord]) -> Result<Vec<bool>, StoreError>;

    /// Returns every leased message to the queue. Only safe when no other node
    /// shares the database (SQLite, at start-up).
    async fn release_all_leases(&self, now_ms: i64) -> Result<u64, StoreError>;

    /// Gives a message `owner` leased back to the queue without an attempt (its provider
    /// had no free slot), due at `next_attempt_at`; its attempts are unchanged. False when
    /// the lease was lost.
    async fn defer_untried(
        &self,
        id: MessageId,
        owner: &str,
        next_attempt_at: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    /// The node's wall clock jumped back by `-jump_ms` and now reads `now_ms`. On SQLite
    /// (whose only clock is this node's) waiting messages due after `now_ms` are moved by
    /// the jump: a retry planned for 5 minutes later still goes 5 minutes later, and what
    /// was due stays due (mail queued after the jump only becomes due earlier);
    /// on PostgreSQL nothing moves (due times are also compared with the database's clock,
    /// and other nodes' clocks did not jump). The number of messages moved.
    async fn follow_clock_jump(&self, jump_ms: i64, now_ms: i64) -> Result<u64, StoreError>;

    async fn message(&self, id: MessageId) -> Result<Option<MessageRecord>, StoreError>;
    /// Queues a failed or deferred message again, due now (a failed one to all its
    /// recipients). False when it is in another state.
    async fn requeue_message(&self, id: MessageId, now_ms: i64) -> Result<bool, StoreError>;
    /// Queues a captured message again, to go through `provider_id` (not the routing rules),
    /// with event `released`. False when it is not captured.
    async fn release_message(
        &self,
        id: MessageId,
        provider_id: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Deletes a captured message with its attempts and events. False when it is not captured.
    async fn delete_captured_message(&self, id: MessageId) -> Result<bool, StoreError>;
    /// Withdraws a queued or deferred message. False when it is in another state.
    async fn cancel_message(&self, id: MessageId, now_ms: i64) -> Result<bool, StoreError>;
    async fn attempts(&self, id: MessageId) -> Result<Vec<AttemptRow>, StoreError>;
    async fn events(&self, id: MessageId) -> Result<Vec<EventRow>, StoreError>;
    async fn count_by_status(&self) -> Result<Vec<(String, i64)>, StoreError>;
    /// Seals again (`BodyCodec::reseal`) the bodies of up to `limit` messages after
    /// `after_id`, in id order: (the last id looked at — `None` when there are no more
    /// messages —, how many were looked at, how many rewritten).
    async fn reseal_bodies(
        &self,
        after_id: MessageId,
        limit: u32,
    ) -> Result<(Option<MessageId>, u64, u64), StoreError>;
    /// Empties the bodies of up to `limit` finished messages (delivered, failed, bounced,
    /// cancelled) last changed before `before_ms`; how many.
    async fn purge_bodies(
        &self,
        before_ms: i64,
        now_ms: i64,
        limit: u32,
    ) -> Result<u64, StoreError>;
    /// Deletes up to `limit` finished messages last changed before `before_ms`, with their
    /// attempts, events and webhook posts; how many.
    async fn purge_messages(&self, before_ms: i64, limit: u32) -> Result<u64, StoreError>;
    /// Deletes up to `limit` idempotency keys created before `before_ms`; how many.
    async fn purge_idempotency_keys(&self, before_ms: i64, limit: u32) -> Result<u64, StoreError>;
    /// When the oldest message still waiting for delivery (queued or deferred) was accepted.
    async fn oldest_waiting_created_at(&self) -> Result<Option<i64>, StoreError>;
    /// Database connections per pool (`write`, `read`): (pool, in use, open).
    fn pool_usage(&self) -> Vec<(&'static str, u32, u32)>;
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Pool size (for SQLite: readers; writes always go through one connection).
    pub max_connections: u32,
    /// How long to wait for a connection before giving up (PostgreSQL).
    pub connect_timeout: std::time::Duration,
    /// Longest any statement may run (PostgreSQL `statement_timeout`).
    pub statement_timeout: std::time::Duration,
    /// How message bodies are sealed and opened.
    pub bodies: BodyCodec,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            max_connections: 8,
            connect_timeout: std::time::Duration::from_secs(5),
            statement_timeout: std::time::Duration::from_secs(30),
            bodies: BodyCodec::default(),
        }
    }
}

/// Opens the store a URL names (`sqlite://...` or `postgres://...`) and runs its migrations.
pub async fn open(
    url: &str,
    options: &OpenOptions,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(SqliteStore::open(url, options).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(std::sync::Arc::new(PgStore::open(url, options).await?))
    } else {
        Err(StoreError::Database(format!(
            "unsupported database url scheme: {}",
            url.split(':').next().unwrap_or_default()
        )))
    }
}
