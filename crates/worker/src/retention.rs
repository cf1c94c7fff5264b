//! Retention: bodies of finished messages are emptied after `retention.body_days`, the
//! messages themselves (with attempts, events and webhook posts) deleted after
//! `retention.metadata_days`, in batches so no statement holds the writer for long.
//! Captured mail is kept until someone deletes or releases it. The send API's idempotency
//! keys are deleted once a day old (`IDEMPOTENCY_TTL_MS`), whatever the retention settings.

use std::sync::Arc;
use std::time::Duration;

use sluice_store::{QueueStore, StoreError};
use tokio::sync::watch;
use tracing::{info, warn};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

#[derive(Debug, Clone)]
pub struct RetentionConfig {
    /// 0: keep bodies.
    pub body_days: u32,
    /// 0: keep messages.
    pub metadata_days: u32,
    pub batch_size: u32,
    pub interval: Duration,
}

/// Messages last changed before these times lose their body / are deleted.
pub fn cutoffs(now_ms: i64, body_days: u32, metadata_days: u32) -> (Option<i64>, Option<i64>) {
    let before = |days: u32| (days > 0).then(|| now_ms - i64::from(days) * DAY_MS);
    (before(body_days), before(metadata_days))
}

/// What one purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub bodies: u64,
    pub messages: u64,
    pub idempotency_keys: u64,
}

/// One purge, batch after batch until nothing is left.
pub async fn purge_expired(
    store: &dyn QueueStore,
    config: &RetentionConfig,
    now_ms: i64,
) -> Result<Purged, StoreError> {
    let (bodies_before, messages_before) = cutoffs(now_ms, config.body_days, config.metadata_days);
    let batch = config.batch_size.max(1);
    let mut bodies = 0;
    if let Some(before) = bodies_before {
        loop {
            let done = store.purge_bodies(before, now_ms, batch).await?;
            bodies += done;
            if done < u64::from(batch) {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    let mut messages = 0;
    if let Some(before) = messages_before {
        loop {
            let done = store.purge_messages(before, batch).await?;
            messages += done;
            if done < u64::from(batch) {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    let mut idempotency_keys = 0;
    let keys_before = now_ms - sluice_core::idempotency::IDEMPOTENCY_TTL_MS;
    loop {
        let done = store.purge_idempotency_keys(keys_before, batch).await?;
        idempotency_keys += done;
        if done < u64::from(batch) {
            break;
        }
        tokio::task::yield_now().await;
    }
    Ok(Purged {
        bodies,
        messages,
        idempotency_keys,
    })
}

/// Purges every `config.interval` until shutdown.
pub async fn run(
    store: Arc<dyn QueueStore>,
    config: RetentionConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        match purge_expired(store.as_ref(), &config, crate::now_ms()).await {
            Ok(purged) if purged == Purged::default() => {}
            Ok(Purged {
                bodies,
                messages,
                idempotency_keys,
            }) => {
                metrics::counter!("sluice_retention_purged_total", "what" => "body")
                    .increment(bodies);
                metrics::counter!("sluice_retention_purged_total", "what" => "message")
                    .increment(messages);
                metrics::counter!("sluice_retention_purged_total", "what" => "idempotency_key")
                    .increment(idempotency_keys);
                info!(bodies, messages, idempotency_keys, "retention: purged");
            }
            Err(error) => warn!(%error, "retention purge failed; trying again next round"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cutoffs;

    #[test]
    fn cutoffs_count_whole_days_back_and_zero_keeps() {
        let now = 100 * 86_400_000;
        assert_eq!(
            cutoffs(now, 7, 90),
            (Some(93 * 86_400_000), Some(10 * 86_400_000))
        );
        assert_eq!(cutoffs(now, 0, 90), (None, Some(10 * 86_400_000)));
        assert_eq!(cutoffs(now, 7, 0), (Some(93 * 86_400_000), None));
    }
}
