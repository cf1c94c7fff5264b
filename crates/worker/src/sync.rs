//! Sync mode's delivery: a message the acceptor has just committed, leased to this node,
//! delivered while its client waits, and its attempt recorded as the worker records any.
//! The acceptor turns the result into the client's answer.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use sluice_core::staging::StagingPolicy;
use sluice_core::{AcceptOutcome, Live, MessageStatus, RetryPolicy, Verdict};
use sluice_store::Store;
use tokio::sync::Notify;
use tracing::warn;

use crate::dispatch::{Dispatch, Dispatched, Dispatcher};
use crate::now_ms;
use crate::plan::plan_after_sync_attempt;

/// A message just committed, to deliver while its client waits.
pub struct SyncMessage<'a> {
    pub id: sluice_core::MessageId,
    pub account_id: sluice_core::AccountId,
    pub source: sluice_core::Source,
    pub tags: &'a [String],
    pub envelope: &'a sluice_core::Envelope,
    pub body: &'a sluice_core::MessageBody,
    /// Sent through a sandboxed API key or SMTP credential.
    pub sandbox: bool,
}

/// Delivers one message at once through the node's Dispatcher.
pub struct SyncDelivery {
    pub store: Arc<dyn Store>,
    pub dispatcher: Arc<Dispatcher>,
    /// A config reload replaces it; the attempt plans with the one of its time.
    pub retry: Live<RetryPolicy>,
    pub staging: StagingPolicy,
    /// Poked when the attempt leaves the message deferred, so the worker retries it.
    pub wake: Arc<Notify>,
    /// Lease owner for messages delivered while their client waits.
    pub owner: String,
    /// How long a sync delivery may hold its message before workers may take it.
    pub lease: Duration,
}

impl SyncDelivery {
    /// The lease a message to be delivered at once is inserted with, from `now_ms`.
    pub fn lease_from(&self, now_ms: i64) -> (String, i64) {
        (self.owner.clone(), now_ms + self.lease.as_millis() as i64)
    }

    /// Delivers `message` (committed with `lease_from`'s lease), records the attempt and
    /// says what the client is to hear: delivered, or the upstream's refusal.
    pub async fn deliver(&self, message: SyncMessage<'_>) -> AcceptOutcome {
        let started_at = now_ms();
        let id = message.id;
        let sample: f64 = rand::rng().random();
        let prefix = self.staging.delivery_headers(message.account_id, id);
        let dispatched = match self
            .dispatcher
            .prepare_body(message.body, prefix, &message.envelope.rcpt_to)
            .await
        {
            Ok(body) => {
                let dispatch = Dispatch {
                    id,
                    account_id: message.account_id,
                    source: message.source,
                    tags: message.tags,
                    envelope: message.envelope,
                    body: &body,
                    release_provider_id: None,
                    sandbox: message.sandbox,
                };
                self.dispatcher.dispatch(dispatch, sample).await
            }
            Err(not_sent) => not_sent,
        };
        let Dispatched {
            calls,
            merged: report,
        } = dispatched;
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
