//! The accept path shared by every ingress: check, commit first, then answer.

use std::sync::Arc;
use std::time::Duration;

use sluice_core::idempotency::{IdempotencyClaim, IdempotencyKey, SendAnswer};
use sluice_core::staging::StagingPolicy;
use sluice_core::{
    AcceptOutcome, AccountId, AccountPolicy, AccountStatus, BodyStorage, DeliveryMode, Envelope,
    Live, MessageBody, Source, Submission, month_of,
};
use sluice_store::ttl_cache::TtlCache;
use sluice_store::{
    ClaimedMessage, DiskReserve, Enqueued, NewMessage, QueueCommitter, Store, StoreError,
};
use sluice_worker::handoff::{Handoff, Reserved};
use sluice_worker::{SyncDelivery, SyncMessage};
use tokio::sync::Notify;
use tracing::warn;

/// Everything an Acceptor is built from.
pub struct AcceptorSettings {
    /// New messages are written through it (shared with the worker's attempts).
    pub committer: QueueCommitter,
    pub store: Arc<dyn Store>,
    /// `delivery.mode` at start; `Acceptor::set_mode` follows an admin's run-time choice.
    pub mode: DeliveryMode,
    /// Poked when a message is queued unleased, so an idle worker claims it at once.
    pub wake: Arc<Notify>,
    pub staging: StagingPolicy,
    /// How long an account's monthly usage and whether it has suppressions are reused
    /// (`store.account_cache_ms`).
    pub cache_ttl: Duration,
    /// Accounts' statuses as this node last read them, for `store.account_cache_ms`:
    /// the one cache the API's principals, logins and panel sessions read too.
    pub account_status: Arc<TtlCache<AccountId, AccountStatus>>,
    /// Sync mode: the message delivered while its client waits.
    pub sync: SyncDelivery,
    /// This node's worker, when it runs one: async mail goes to it leased.
    pub handoff: Option<Handoff>,
    /// `storage.min_free_bytes` on the database's file system (SQLite only).
    pub reserve: Option<DiskReserve>,
    /// Bodies longer than this go to the store's body storage, when it has one
    /// (`storage.inline_body_bytes`); shorter ones stay in their row.
    pub inline_body_bytes: usize,
}

pub struct Acceptor {
    committer: QueueCommitter,
    store: Arc<dyn Store>,
    /// The config file's `delivery.mode`, or an admin's run-time choice.
    mode: Live<DeliveryMode>,
    wake: Arc<Notify>,
    staging: StagingPolicy,
    usage: TtlCache<(AccountId, String), i64>,
    /// Whether an account may send, read at most once per `store.account_cache_ms`.
    account_status: Arc<TtlCache<AccountId, AccountStatus>>,
    has_suppressions: TtlCache<AccountId, bool>,
    sync: SyncDelivery,
    handoff: Option<Handoff>,
    reserve: Option<DiskReserve>,
    body_storage: Option<Arc<dyn BodyStorage>>,
    inline_body_bytes: usize,
}

/// A message checked and ready to commit.
struct Admitted {
    source: Source,
    envelope: Envelope,
    body: MessageBody,
    tags: Vec<String>,
    max_attempts: Option<u32>,
    sync: bool,
    idempotency: Option<IdempotencyKey>,
    /// Sent through a sandboxed login: captured at delivery.
    sandbox: bool,
}

impl Acceptor {
    pub fn new(settings: AcceptorSettings) -> Self {
        let AcceptorSettings {
            committer,
            store,
            mode,
            wake,
            staging,
            cache_ttl,
            account_status,
            sync,
            handoff,
            reserve,
            inline_body_bytes,
        } = settings;
        Acceptor {
            body_storage: store.body_storage(),
            inline_body_bytes,
            committer,
            store,
            mode: Live::new(mode),
            wake,
            staging,
            usage: TtlCache::new(cache_ttl),
            account_status,
            has_suppressions: TtlCache::new(cache_ttl),
            sync,
            handoff,
            reserve,
        }
    }

    /// Messages accepted from now on are answered as `mode` says.
    pub fn set_mode(&self, mode: DeliveryMode) {
        self.mode.set(mode);
    }

    /// Checks the account's monthly limit, commits, then answers (or delivers, in sync mode).
    /// Concurrent accepts may overshoot the limit by the few messages in flight.
    /// Where message content goes as it arrives (the store's body storage), if anywhere.
    pub fn body_storage(&self) -> Option<&Arc<dyn BodyStorage>> {
        self.body_storage.as_ref()
    }

    pub async fn accept(&self, policy: &AccountPolicy, submission: Submission) -> AcceptOutcome {
        let started = std::time::Instant::now();
        let stored = submission.body.reference().map(<[u8]>::to_vec);
        let message = match self.admit(policy, submission).await {
            Ok(message) => message,
            Err(refused) => {
                self.give_back(stored).await;
                return refused;
            }
        };
        self.commit_then_answer(policy.account_id, message, started)
            .await
    }

    /// The checks before anything is written: the account's status, staging, suppressions
    /// (unless the ingress checked them), the disk reserve and the monthly limit; staging's
    /// forwarding applied.
    async fn admit(
        &self,
        policy: &AccountPolicy,
        submission: Submission,
    ) -> Result<Admitted, AcceptOutcome> {
        let Submission {
            source,
            envelope,
            body,
            tags,
            max_attempts,
            sync,
            recipients_checked,
            idempotency,
        } = submission;
        let sync = sync || *self.mode.get() == DeliveryMode::Sync;
        // A session or key that authenticated before a suspension or deletion sends no
        // more once this node has read the account again.
        self.check_status(policy.account_id).await?;
        if let Some(rcpt) = self.staging.refused_recipient(&envelope.rcpt_to) {
            return Err(AcceptOutcome::RecipientNotAllowed(rcpt.to_string()));
        }
        if !recipients_checked {
            self.check_suppressions(policy.account_id, &envelope.rcpt_to)
                .await?;
        }
        let mut body = body;
        let envelope = match self.staging.forward(&envelope.rcpt_to) {
            Some((rcpt_to, header)) => {
                body.prepend(header.as_bytes());
                Envelope {
                    rcpt_to,
                    ..envelope
                }
            }
            None => envelope,
        };
        if let Some(Err(error)) = self.reserve.as_ref().map(|r| r.check()) {
            warn!(%error, "message refused: storage reserve");
            return Err(refused_for_storage("reserve"));
        }
        self.check_monthly_limit(policy).await?;
        let body = self.store_if_large(body).await?;
        Ok(Admitted {
            source,
            envelope,
            body,
            tags,
            max_attempts,
            sync,
            idempotency,
            sandbox: policy.sandbox,
        })
    }

    /// A body that came whole (the HTTP API, a short SMTP message) and is longer than
    /// `inline_body_bytes` goes to the body storage, so its row stays small.
    async fn store_if_large(&self, body: MessageBody) -> Result<MessageBody, AcceptOutcome> {
        let (Some(storage), MessageBody::Inline(bytes)) = (&self.body_storage, &body) else {
            return Ok(body);
        };
        if bytes.len() <= self.inline_body_bytes {
            return Ok(body);
        }
        match sluice_core::body::store_body(&**storage, Vec::new(), bytes).await {
            Ok(stored) => Ok(MessageBody::Stored(stored)),
            Err(error) => {
                warn!(%error, "message refused: its body was not stored");
                Err(refused_for_storage("write"))
            }
        }
    }

    /// Gives back a stored body whose message was refused before its commit.
    async fn give_back(&self, reference: Option<Vec<u8>>) {
        if let (Some(storage), Some(reference)) = (&self.body_storage, reference) {
            storage.release(vec![reference]).await;
        }
    }

    async fn check_status(&self, account_id: AccountId) -> Result<(), AcceptOutcome> {
        match self.account_status(account_id).await {
            Ok(AccountStatus::Active) => Ok(()),
            Ok(status) => {
                metrics::counter!("sluice_accept_refused_total", "reason" => status.as_str())
                    .increment(1);
                Err(match status {
                    AccountStatus::Suspended => AcceptOutcome::AccountSuspended,
                    _ => AcceptOutcome::AccountDeleted,
                })
            }
            Err(error) => {
                warn!(%error, "account not readable; message not stored");
                Err(AcceptOutcome::Unavailable)
            }
        }
    }

    async fn check_suppressions(
        &self,
        account_id: AccountId,
        rcpts: &[String],
    ) -> Result<(), AcceptOutcome> {
        match self.suppressed(account_id, rcpts).await {
            Ok(hits) if !hits.is_empty() => Err(AcceptOutcome::Suppressed(hits)),
            Ok(_) => Ok(()),
            Err(error) => {
                warn!(%error, "suppressions not readable; message not stored");
                Err(AcceptOutcome::Unavailable)
            }
        }
    }

    async fn check_monthly_limit(&self, policy: &AccountPolicy) -> Result<(), AcceptOutcome> {
        match self.monthly_usage(policy.account_id).await {
            Ok(used) if used >= policy.monthly_limit => {
                metrics::counter!("sluice_accept_refused_total", "reason" => "monthly_limit")
                    .increment(1);
                Err(AcceptOutcome::QuotaExceeded)
            }
            Ok(_) => Ok(()),
            Err(error) => {
                warn!(%error, "usage not readable; message not stored");
                Err(AcceptOutcome::Unavailable)
            }
        }
    }

    /// Commits the message (leased to this node's worker when it has room, or to the sync
    /// delivery), then answers: queued, or what the upstream said.
    async fn commit_then_answer(
        &self,
        account_id: AccountId,
        admitted: Admitted,
        started: std::time::Instant,
    ) -> AcceptOutcome {
        let Admitted {
            source,
            envelope,
            body,
            tags,
            max_attempts,
            sync,
            idempotency,
            sandbox,
        } = admitted;
        let reserved = match sync {
            false => self.handoff.as_ref().and_then(|h| h.reserve(now_ms())),
            true => None,
        };
        let lease = match &reserved {
            Some(place) => Some(place.lease()),
            None => sync.then(|| self.sync.lease_from(now_ms())),
        };
        let message = NewMessage {
            account_id,
            source,
            envelope,
            body,
            lease,
            tags,
            max_attempts,
            sandbox,
            // Async: the answer (202 queued) is known now and remembered with the message.
            // Sync: it is known once the upstream answered (`settle_key`).
            idempotency: idempotency.as_ref().map(|key| IdempotencyClaim {
                key: key.key.clone(),
                request_hash: key.request_hash.clone(),
                answer: (!sync).then_some(SendAnswer::Queued),
            }),
        };
        // A stored body is synced by the group commit, once for its whole batch, before the
        // transaction that names it (`write_queue`). Syncing each body here first, so the
        // syncs overlapped the batch before, cost 11% of the throughput at 50 KB on two
        // cores (a gate turn and a blocking-pool trip per message; fdatasync took 0.3 ms).
        let (id, message) = match self.committer.commit(message).await {
            Ok((Enqueued::New(id), message)) => (id, message),
            // Another request with this key committed first: nothing was written (the
            // reserved hand-off place is freed as it drops).
            Ok((Enqueued::KeyTaken(record), message)) => {
                self.give_back(message.body.reference().map(<[u8]>::to_vec))
                    .await;
                return AcceptOutcome::IdempotencyKeyTaken(record);
            }
            Err(error @ StoreError::Storage(_)) => {
                warn!(%error, "message not stored");
                return refused_for_storage("write");
            }
            Err(error) => {
                warn!(%error, "message not stored");
                metrics::counter!("sluice_accept_failures_total").increment(1);
                return AcceptOutcome::Unavailable;
            }
        };
        metrics::counter!(
            "sluice_messages_accepted_total",
            "source" => source.as_str(),
            "account" => account_id.to_string()
        )
        .increment(1);
        // Until the commit: what a client waits for its 250 (sync mode adds the delivery).
        metrics::histogram!("sluice_accept_latency_seconds", "source" => source.as_str())
            .record(started.elapsed().as_secs_f64());
        if sync {
            let message = SyncMessage {
                id,
                account_id,
                source,
                tags: &message.tags,
                envelope: &message.envelope,
                body: &message.body,
                sandbox: message.sandbox,
            };
            let outcome = self.sync.deliver(message).await;
            if let Some(key) = &idempotency {
                self.settle_key(account_id, &key.key, &outcome).await;
            }
            return outcome;
        }
        self.queue(id, message, reserved)
    }

    /// Async mode after the commit: the message to this node's worker when a place was
    /// reserved, else a wake-up for whichever worker claims it.
    fn queue(
        &self,
        id: sluice_core::MessageId,
        message: NewMessage,
        reserved: Option<Reserved>,
    ) -> AcceptOutcome {
        if self.handoff.is_some() {
            // How often this node's worker keeps up (handed over) or is behind (queued).
            let path = if reserved.is_some() {
                "worker"
            } else {
                "queue"
            };
            metrics::counter!("sluice_accept_handoff_total", "to" => path).increment(1);
        }
        match reserved {
            None => self.wake.notify_one(),
            Some(place) => place.send(ClaimedMessage {
                id,
                account_id: message.account_id,
                envelope: message.envelope,
                body: message.body,
                attempts: 0,
                created_at: now_ms(),
                max_attempts: message.max_attempts,
                source: message.source,
                tags: message.tags,
                release_provider_id: None,
                sandbox: message.sandbox,
            }),
        }
        AcceptOutcome::Queued(id)
    }

    /// A sync send's key once the upstream answered: a 2xx answer is remembered, a failure
    /// forgets the key (a retry runs again). Unsettled (the database refused), the key
    /// answers 409 until `sync_lease` passed, then as queued: the workers deliver it.
    async fn settle_key(&self, account_id: AccountId, key: &str, outcome: &AcceptOutcome) {
        let answer = match outcome {
            AcceptOutcome::Delivered(_) => Some(SendAnswer::Delivered),
            _ => None,
        };
        if let Err(error) = self
            .store
            .settle_idempotency_key(account_id, key, answer)
            .await
        {
            warn!(%error, "the idempotency key of a sync send was not settled");
        }
    }

    /// Which of `rcpts` the account may not send to. Accounts without any suppression (known
    /// for `store.account_cache_ms`) are not asked about each address.
    pub async fn suppressed(
        &self,
        account_id: AccountId,
        rcpts: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let now = now_ms();
        let any = match self.has_suppressions.get(&account_id) {
            Some(any) => any,
            None => {
                let any = self.store.has_suppressions(account_id, now).await?;
                self.has_suppressions.put(account_id, any);
                any
            }
        };
        if !any {
            return Ok(Vec::new());
        }
        self.store.suppressed(account_id, rcpts, now).await
    }

    /// The account's status, read at most once per `store.account_cache_ms`; a missing
    /// account is `Deleted`.
    async fn account_status(&self, account_id: AccountId) -> Result<AccountStatus, StoreError> {
        sluice_store::cached_account_status(&*self.store, &self.account_status, account_id).await
    }

    /// The account's messages this month, read at most once per `store.account_cache_ms`
    /// (so a busy account may overshoot its limit by that long's worth of mail).
    async fn monthly_usage(&self, account_id: AccountId) -> Result<i64, StoreError> {
        let month = month_of(now_ms());
        let key = (account_id, month.clone());
        if let Some(used) = self.usage.get(&key) {
            return Ok(used);
        }
        let used = self.store.monthly_usage(account_id, &month).await?;
        self.usage.put(key, used);
        Ok(used)
    }
}

/// A message refused because the disk cannot take it: below the reserve, or a write or
/// sync that failed.
fn refused_for_storage(reason: &'static str) -> AcceptOutcome {
    metrics::counter!("sluice_storage_refusals_total", "reason" => reason).increment(1);
    AcceptOutcome::InsufficientStorage
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
