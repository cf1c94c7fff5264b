//! The worker loop: claim due messages in batches under a lease, deliver them with bounded
//! concurrency, record each attempt. On shutdown it stops claiming and lets in-flight
//! attempts finish.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use sluice_core::RetryPolicy;
use sluice_store::{ClaimedMessage, QueueCommitter, QueueStore};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{Instrument, info, warn};

use crate::clock::ClockWatch;
use crate::dispatch::{Dispatch, Dispatched, Dispatcher};
use crate::handoff::HandoffReceiver;
use crate::now_ms;
use crate::plan::{message_policy, plan_after_attempt};

/// A message whose provider had no free slot is due again this much later (plus up to 1 s).
const BUSY_RETRY_MS: i64 = 2_000;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub concurrency: usize,
    pub batch_size: u32,
    pub lease: Duration,
    pub poll_interval: Duration,
    /// A config reload replaces it; each attempt plans with the one of its time.
    pub retry: sluice_core::Live<RetryPolicy>,
    pub staging: sluice_core::staging::StagingPolicy,
}

pub struct Worker {
    store: Arc<dyn QueueStore>,
    dispatcher: Arc<Dispatcher>,
    /// Attempts are recorded in shared transactions (one fsync for many).
    attempts: QueueCommitter,
    config: WorkerConfig,
    /// Lease owner name: unique per process.
    owner: String,
    /// Poked when new mail is committed, so an idle worker need not wait for its poll.
    wake: Arc<Notify>,
}

impl Worker {
    pub fn new(
        store: Arc<dyn QueueStore>,
        dispatcher: Arc<Dispatcher>,
        attempts: QueueCommitter,
        config: WorkerConfig,
        owner: String,
        wake: Arc<Notify>,
    ) -> Arc<Self> {
        Arc::new(Worker {
            store,
            dispatcher,
            attempts,
            config,
            owner,
            wake,
        })
    }

    /// Runs until `shutdown`: delivers what this node's acceptor hands off (`handoff`,
    /// already leased to this worker) and claims due messages, at once when woken by an
    /// unleased commit, again right away while claims come back full, else every
    /// `poll_interval` (retries, other nodes' mail, expired leases).
    pub async fn run(
        self: Arc<Self>,
        mut shutdown: watch::Receiver<bool>,
        mut handoff: Option<HandoffReceiver>,
    ) {
        let slots = Arc::new(Semaphore::new(self.config.concurrency));
        let mut in_flight = JoinSet::new();
        info!(owner = %self.owner, concurrency = self.config.concurrency, "worker started");
        let mut claim_now = true;
        let mut next_poll = tokio::time::Instant::now() + self.config.poll_interval;
        let started = std::time::Instant::now();
        let mut clock = ClockWatch::new(now_ms(), 0);
        while !*shutdown.borrow() {
            while in_flight.try_join_next().is_some() {}
            self.follow_clock(&mut clock, started).await;
            // Handed-off messages first: they are ours already.
            while let Some(rx) = handoff.as_mut() {
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    break;
                };
                match rx.try_recv() {
                    Ok(message) => self.spawn_delivery(&mut in_flight, message, permit),
                    Err(_) => break,
                }
            }
            let free = slots
                .available_permits()
                .min(self.config.batch_size as usize);
            if claim_now && free > 0 {
                let lease_ms = self.config.lease.as_millis() as i64;
                match self
                    .store
                    .claim_due_messages(&self.owner, now_ms(), lease_ms, free as u32)
                    .await
                {
                    Ok(claimed) => {
                        // A full claim may have left more behind: claim again at once.
                        claim_now = claimed.len() == free;
                        for message in claimed {
                            let permit =
                                slots.clone().acquire_owned().await.expect("semaphore open");
                            self.spawn_delivery(&mut in_flight, message, permit);
                        }
                    }
                    Err(error) => {
                        warn!(%error, "claiming messages failed");
                        claim_now = false;
                        next_poll = tokio::time::Instant::now()
                            + self.config.poll_interval.max(Duration::from_millis(500));
                    }
                }
                if claim_now {
                    continue;
                }
            }
            let take_handoff = handoff.is_some() && slots.available_permits() > 0;
            tokio::select! {
                _ = tokio::time::sleep_until(next_poll) => {
                    claim_now = true;
                    next_poll = tokio::time::Instant::now() + self.config.poll_interval;
                }
                _ = self.wake.notified() => claim_now = true,
                message = next_handed_off(&mut handoff), if take_handoff => match message {
                    Some(message) => {
                        let permit = slots.clone().acquire_owned().await.expect("semaphore open");
                        self.spawn_delivery(&mut in_flight, message, permit);
                    }
                    None => handoff = None,
                },
                _ = in_flight.join_next(), if !in_flight.is_empty() => {}
                _ = shutdown.changed() => {}
            }
        }
        // Mail handed off but not started is ours under lease: deliver it too.
        if let Some(mut rx) = handoff {
            rx.close();
            while let Ok(message) = rx.try_recv() {
                let permit = slots.clone().acquire_owned().await.expect("semaphore open");
                self.spawn_delivery(&mut in_flight, message, permit);
            }
        }
        let left = in_flight.len();
        if left > 0 {
            info!(left, "worker stopping: finishing in-flight attempts");
        }
        while in_flight.join_next().await.is_some() {}
        info!("worker stopped");
    }

    fn spawn_delivery(
        self: &Arc<Self>,
        in_flight: &mut JoinSet<()>,
        message: ClaimedMessage,
        permit: OwnedSemaphorePermit,
    ) {
        let worker = self.clone();
        let span = tracing::info_span!("delivery", message_id = message.id);
        in_flight.spawn(
            async move {
                worker.deliver_one(message).await;
                drop(permit);
            }
            .instrument(span),
        );
    }

    async fn deliver_one(&self, message: ClaimedMessage) {
        let started_at = now_ms();
        let sample: f64 = rand::rng().random();
        let prefix = self
            .config
            .staging
            .delivery_headers(message.account_id, message.id);
        let dispatched = match self
            .dispatcher
            .prepare_body(&message.body, prefix, &message.envelope.rcpt_to)
            .await
        {
            Ok(body) => {
                self.dispatcher
                    .dispatch(
                        Dispatch {
                            id: message.id,
                            account_id: message.account_id,
                            source: message.source,
                            tags: &message.tags,
                            envelope: &message.envelope,
                            body: &body,
                            release_provider_id: message.release_provider_id,
                            sandbox: message.sandbox,
                        },
                        sample,
                    )
                    .await
            }
            Err(not_sent) => not_sent,
        };
        if dispatched.untried_busy() && self.give_back_untried(message.id).await {
            return;
        }
        let Dispatched { calls, merged } = dispatched;
        let report = merged;
        let finished_at = now_ms();
        let jitter: f64 = rand::rng().random();
        let plan = plan_after_attempt(
            &report,
            message.attempts,
            message.created_at,
            finished_at,
            &message_policy(&self.config.retry.get(), message.max_attempts),
            jitter,
        );
        metrics::counter!(
            "sluice_messages_total",
            "status" => plan.status.as_str(),
            "provider" => report.provider.clone(),
            "account" => message.account_id.to_string()
        )
        .increment(1);
        if plan.status == sluice_core::MessageStatus::Delivered {
            // From accept to the upstream's yes, retries included.
            metrics::histogram!("sluice_delivery_latency_seconds", "provider" => report.provider.clone())
                .record((finished_at - message.created_at).max(0) as f64 / 1000.0);
        }
        info!(
            provider = %report.provider,
            status = plan.status.as_str(),
            attempt = message.attempts + 1,
            error = plan.last_error.as_deref().unwrap_or(""),
            "attempt finished"
        );
        let record = plan.into_record(
            message.id,
            &self.owner,
            report,
            calls,
            started_at,
            finished_at,
        );
        self.record_while_leased(record).await;
    }

    /// Gives a message whose provider had no free slot back to the queue, untried, due
    /// again in 2 to 3 s. False when that failed (the attempt is then recorded as a
    /// transient failure).
    async fn give_back_untried(&self, id: sluice_core::MessageId) -> bool {
        let now = now_ms();
        let again = now + BUSY_RETRY_MS + rand::rng().random_range(0..1_000);
        match self.store.defer_untried(id, &self.owner, again, now).await {
            Ok(given_back) => {
                metrics::counter!("sluice_deliveries_deferred_busy_total").increment(1);
                if !given_back {
                    warn!("lease lost before the message was given back");
                }
                true
            }
            Err(error) => {
                warn!(%error, "giving back a message whose provider is busy failed");
                false
            }
        }
    }

    /// Records the attempt, trying again every second while the database is unreachable,
    /// for as long as the lease lasts (measured on this node's monotonic clock). A node
    /// never claims its own leases again, so giving up early would leave the message
    /// leased to it until it restarts; a delivered one must not go out again either.
    async fn record_while_leased(&self, record: sluice_store::AttemptRecord) {
        let deadline = tokio::time::Instant::now() + self.config.lease;
        loop {
            match self.attempts.record(record.clone()).await {
                Ok(true) => return,
                Ok(false) => return warn!("lease lost before the attempt was recorded"),
                Err(error) if tokio::time::Instant::now() + Duration::from_secs(1) < deadline => {
                    warn!(%error, "recording the attempt failed; trying again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(error) => {
                    return warn!(%error, "recording the attempt failed; the message stays leased until the lease ends or this node restarts");
                }
            }
        }
    }

    /// Follows a jump of the wall clock: a backward one moves waiting mail with it (on
    /// SQLite; see `Store::follow_clock_jump`), a forward one only makes retries early.
    async fn follow_clock(&self, watch: &mut ClockWatch, started: std::time::Instant) {
        let wall = now_ms();
        let Some(jump) = watch.observe(wall, started.elapsed().as_millis() as i64) else {
            return;
        };
        if jump > 0 {
            return warn!(
                jump_ms = jump,
                "the wall clock jumped forward; leases hold, retries may go early"
            );
        }
        match self.store.follow_clock_jump(jump, wall).await {
            Ok(moved) => warn!(
                jump_ms = jump,
                moved, "the wall clock jumped back; waiting mail moved with it"
            ),
            Err(error) => {
                warn!(%error, jump_ms = jump, "the wall clock jumped back; moving waiting mail failed")
            }
        }
    }
}

/// The next handed-off message; None when the channel is gone.
async fn next_handed_off(handoff: &mut Option<HandoffReceiver>) -> Option<ClaimedMessage> {
    match handoff {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
