//! The accept path shared by every ingress: commit first, then answer.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use sluice_core::staging::StagingPolicy;
use sluice_core::{
    AcceptOutcome, AccountId, AccountPolicy, AccountStatus, Envelope, MessageId, MessageStatus,
    RetryPolicy, Submission, Verdict, month_of,
};
use sluice_store::{ClaimedMessage, NewMessage, QueueCommitter, Store};
use tokio::sync::Notify;
use tracing::warn;

use crate::dispatch::{Dispatch, Dispatched, Dispatcher};
use crate::now_ms;
use crate::plan::plan_after_sync_attempt;
use sluice_store::ttl_cache::TtlCache;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMode {
    Async,
    Sync,
}

pub struct Acceptor {
    committer: QueueCommitter,
    store: Arc<dyn Store>,
    dispatcher: Arc<Dispatcher>,
    /// The config file's `delivery.mode`, or an admin's run-time choice.
    mode: sluice_core::Live<DeliveryMode>,
    retry: sluice_core::Live<RetryPolicy>,
    wake: Arc<Notify>,
    /// Lease owner for messages delivered in the session (sync mode).
    owner: String,
    /// How long a sync delivery may hold its message before workers may take it.
    sync_lease: Duration,
    staging: StagingPolicy,
    usage: TtlCache<(AccountId, String), i64>,
    /// Whether an account may send, read at most once per `store.account_cache_ms`.
    account_status: TtlCache<AccountId, AccountStatus>,
    has_suppressions: TtlCache<AccountId, bool>,
    /// This node's worker, when it runs one: async mail goes to it leased (`handoff`).
    handoff: std::sync::OnceLock<crate::handoff::Handoff>,
    /// `storage.min_free_bytes` on the database's file system (SQLite only).
    reserve: std::sync::OnceLock<sluice_store::DiskReserve>,
}

impl Acceptor {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        committer: QueueCommitter,
        store: Arc<dyn Store>,
        dispatcher: Arc<Dispatcher>,
        mode: DeliveryMode,
        retry: sluice_core::Live<RetryPolicy>,
        wake: Arc<Notify>,
        owner: String,
        sync_lease: Duration,
        staging: StagingPolicy,
        cache_ttl: Duration,
    ) -> Self {
        Acceptor {
            committer,
            store,
            dispatcher,
            mode: sluice_core::Live::new(mode),
            retry,
            wake,
            owner,
            sync_lease,
            staging,
            usage: TtlCache::new(cache_ttl),
            account_status: TtlCache::new(cache_ttl),
            has_suppressions: TtlCache::new(cache_ttl),
            handoff: std::sync::OnceLock::new(),
            reserve: std::sync::OnceLock::new(),
        }
    }

    /// New mail is refused while `reserve` does not hold (set once).
    pub fn keep_reserve(&self, reserve: sluice_store::DiskReserve) {
        let _ = self.reserve.set(reserve);
    }

    /// Async mail goes from now on straight to the worker behind `handoff` (set once).
    pub fn hand_off_to(&self, handoff: crate::handoff::Handoff) {
        let _ = self.handoff.set(handoff);
    }

    /// Messages accepted from now on are answered as `mode` says.
    pub fn set_mode(&self, mode: DeliveryMode) {
        self.mode.set(mode);
    }

    /// Checks the account's monthly limit, commits, then answers (or delivers, in sync mode).
    /// Concurrent accepts may overshoot the limit by the few messages in flight.
    pub async fn accept(&self, policy: &AccountPolicy, submission: Submission) -> AcceptOutcome {
        let Submission {
            source,
            envelope,
            body,
            tags,
            max_attempts,
            sync,
            recipients_checked,
        } = submission;
        let started = std::time::Instant::now();
        let sync = sync || *self.mode.get() == DeliveryMode::Sync;
        // A session or key that authenticated before a suspension or deletion sends no
        // more once this node has read the account again.
        match self.account_status(policy.account_id).await {
            Ok(AccountStatus::Active) => {}
            Ok(status) => {
                metrics::counter!("sluice_accept_refused_total", "reason" => status.as_str())
                    .increment(1);
                return match status {
                    AccountStatus::Suspended => AcceptOutcome::AccountSuspended,
                    _ => AcceptOutcome::AccountDeleted,
                };
            }
            Err(error) => {
                warn!(%error, "account not readable; message not stored");
                return AcceptOutcome::Unavailable;
            }
        }
        if let Some(rcpt) = self.staging.refused_recipient(&envelope.rcpt_to) {
            return AcceptOutcome::RecipientNotAllowed(rcpt.to_string());
        }
        let suppressed = match recipients_checked {
            true => Ok(Vec::new()),
            false => self.suppressed(policy.account_id, &envelope.rcpt_to).await,
        };
        match suppressed {
            Ok(hits) if !hits.is_empty() => return AcceptOutcome::Suppressed(hits),
            Ok(_) => {}
            Err(error) => {
                warn!(%error, "suppressions not readable; message not stored");
                return AcceptOutcome::Unavailable;
            }
        }
        let (envelope, body) = match self.staging.forward(&envelope.rcpt_to) {
            Some((rcpt_to, header)) => {
                let mut marked = header.into_bytes();
                marked.extend_from_slice(&body);
                (
                    Envelope {
                        rcpt_to,
                        ..envelope
                    },
                    marked,
                )
            }
            None => (envelope, body),
        };
        let account_id = policy.account_id;
        if let Some(Err(error)) = self.reserve.get().map(|r| r.check()) {
            warn!(%error, "message refused: storage reserve");
            return refused_for_storage("reserve");
        }
        match self.monthly_usage(account_id).await {
            Ok(used) if used >= policy.monthly_limit => {
                metrics::counter!("sluice_accept_refused_total", "reason" => "monthly_limit")
                    .increment(1);
                return AcceptOutcome::QuotaExceeded;
            }
            Ok(_) => {}
            Err(error) => {
                warn!(%error, "usage not readable; message not stored");
                return AcceptOutcome::Unavailable;
            }
        }
        let reserved = match sync {
            false => self.handoff.get().and_then(|h| h.reserve(now_ms())),
            true => None,
        };
        let lease = match &reserved {
            Some(place) => Some(place.lease()),
            None => sync.then(|| {
                (
                    self.owner.clone(),
                    now_ms() + self.sync_lease.as_millis() as i64,
                )
            }),
        };
        let message = NewMessage {
            account_id,
            source,
            envelope,
            body,
            lease,
            tags,
            max_attempts,
        };
        let (id, message) = match self.committer.commit(message).await {
            Ok(committed) => committed,
            Err(error @ sluice_store::StoreError::Storage(_)) => {
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
        if !sync && self.handoff.get().is_some() {
            // How often this node's worker keeps up (handed over) or is behind (queued).
            let path = if reserved.is_some() {
                "worker"
            } else {
                "queue"
            };
            metrics::counter!("sluice_accept_handoff_total", "to" => path).increment(1);
        }
        match (sync, reserved) {
            (false, None) => {
                self.wake.notify_one();
                AcceptOutcome::Queued(id)
            }
            (false, Some(place)) => {
                place.send(ClaimedMessage {
                    id,
                    account_id,
                    envelope: message.envelope,
                    body: message.body,
                    attempts: 0,
                    created_at: now_ms(),
                    max_attempts,
                    source: source.as_str().to_string(),
                    tags: message.tags,
                    release_provider_id: None,
                });
                AcceptOutcome::Queued(id)
            }
            (true, _) => {
                let message = Dispatch {
                    id,
                    account_id,
                    source,
                    tags: &message.tags,
                    envelope: &message.envelope,
                    body: &message.body,
                    release_provider_id: None,
                };
                self.deliver_now(message).await
            }
        }
    }

    /// Which of `rcpts` the account may not send to. Accounts without any suppression (known
    /// for `store.account_cache_ms`) are not asked about each address.
    pub async fn suppressed(
        &self,
        account_id: AccountId,
        rcpts: &[String],
    ) -> Result<Vec<String>, sluice_store::StoreError> {
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
    async fn account_status(
        &self,
        account_id: AccountId,
    ) -> Result<AccountStatus, sluice_store::StoreError> {
        if let Some(status) = self.account_status.get(&account_id) {
            return Ok(status);
        }
        let status = self
            .store
            .account(account_id)
            .await?
            .map_or(AccountStatus::Deleted, |a| a.state());
        self.account_status.put(account_id, status);
        Ok(status)
    }

    /// The account's messages this month, read at most once per `store.account_cache_ms`
    /// (so a busy account may overshoot its limit by that long's worth of mail).
    async fn monthly_usage(&self, account_id: AccountId) -> Result<i64, sluice_store::StoreError> {
        let month = month_of(now_ms());
        let key = (account_id, month.clone());
        if let Some(used) = self.usage.get(&key) {
            return Ok(used);
        }
        let used = self.store.monthly_usage(account_id, &month).await?;
        self.usage.put(key, used);
        Ok(used)
    }

    async fn deliver_now(&self, message: Dispatch<'_>) -> AcceptOutcome {
        let started_at = now_ms();
        let id = message.id;
        let marked = with_delivery_headers(&self.staging, message.account_id, id, message.body);
        let sample: f64 = rand::rng().random();
        let Dispatched {
            calls,
            merged: report,
        } = self
            .dispatcher
            .dispatch(
                Dispatch {
                    body: &marked,
                    ..message
                },
                sample,
            )
            .await;
        let finished_at = now_ms();
        let jitter: f64 = rand::rng().random();
        let plan =
            plan_after_sync_attempt(&report, started_at, finished_at, &self.retry.get(), jitter);
        let first_failure = report.first_failure().cloned();
        let overall = report.overall();
        let status = plan.status;
        let record = plan.into_record(id, &self.owner, report, calls, started_at, finished_at);
        if let Err(error) = self.store.record_attempt(&record).await {
            warn!(%error, message_id = id, "recording the sync attempt failed");
        }
        if status == MessageStatus::Deferred {
            self.wake.notify_one();
        }
        let (code, text) = first_failure
            .map(|r| (r.code, r.response))
            .unwrap_or((None, String::new()));
        match (status, overall) {
            (MessageStatus::Delivered | MessageStatus::Captured | MessageStatus::Deferred, _) => {
                AcceptOutcome::Delivered(id)
            }
            (_, Verdict::Permanent) => AcceptOutcome::Permanent { id, code, text },
            _ => AcceptOutcome::Transient { id, code, text },
        }
    }
}

/// A message refused because the disk cannot take it: below the reserve, or a write or
/// sync that failed.
fn refused_for_storage(reason: &'static str) -> AcceptOutcome {
    metrics::counter!("sluice_storage_refusals_total", "reason" => reason).increment(1);
    AcceptOutcome::InsufficientStorage
}

/// The body as a provider gets it: with the staging headers first when they are on.
pub(crate) fn with_delivery_headers<'a>(
    staging: &StagingPolicy,
    account_id: AccountId,
    message_id: MessageId,
    body: &'a [u8],
) -> std::borrow::Cow<'a, [u8]> {
    match staging.delivery_headers(account_id, message_id) {
        Some(headers) => {
            let mut marked = headers.into_bytes();
            marked.extend_from_slice(body);
            std::borrow::Cow::Owned(marked)
        }
        None => std::borrow::Cow::Borrowed(body),
    }
}
