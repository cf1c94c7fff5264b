//! Retention: bodies of finished messages are emptied after `retention.body_days`, the
//! messages themselves (with attempts, events and webhook posts) deleted after
//! `retention.metadata_days`, in batches so no statement holds the writer for long.
//! Captured mail is kept per account by count and age (`capture_count` / `capture_days`,
//! or the account's own `capture_retention_count` / `_days`). The send API's idempotency
//! keys are deleted once a day old (`IDEMPOTENCY_TTL_MS`), whatever the retention settings,
//! and so are stored bodies no message names (PostgreSQL's chunks whose writer died or
//! whose release failed; `ORPHAN_BODY_AGE_MS`).

use std::sync::Arc;
use std::time::Duration;

use sluice_store::{CaptureRetention, Store, StoreError};
use tokio::sync::watch;
use tracing::{info, warn};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// A stored body no message names is an orphan once nothing was written to it for this
/// long: far longer than any body takes from its last chunk to its message's commit.
pub const ORPHAN_BODY_AGE_MS: i64 = DAY_MS;

#[derive(Debug, Clone)]
pub struct RetentionConfig {
    /// 0: keep bodies.
    pub body_days: u32,
    /// 0: keep messages.
    pub metadata_days: u32,
    /// Captured mail per account by default (0: no limit).
    pub capture_count: u32,
    /// Days captured mail is kept by default (0: keep).
    pub capture_days: u32,
    pub batch_size: u32,
    pub interval: Duration,
}

impl RetentionConfig {
    /// The server's captured-mail retention, for accounts without their own.
    pub fn capture_defaults(&self) -> CaptureRetention {
        CaptureRetention {
            count: (self.capture_count > 0).then_some(i64::from(self.capture_count)),
            days: (self.capture_days > 0).then_some(i64::from(self.capture_days)),
        }
    }
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
    pub orphan_bodies: u64,
    pub captured: u64,
}

/// One purge, batch after batch until nothing is left.
pub async fn purge_expired(
    store: &dyn Store,
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
    let orphan_bodies = store
        .purge_orphan_bodies(now_ms - ORPHAN_BODY_AGE_MS)
        .await?;
    let mut captured = 0;
    loop {
        let done = store
            .sweep_captured(config.capture_defaults(), now_ms, batch)
            .await?;
        captured += done;
        if done < u64::from(batch) {
            break;
        }
        tokio::task::yield_now().await;
    }
    Ok(Purged {
        bodies,
        messages,
        idempotency_keys,
        orphan_bodies,
        captured,
    })
}

/// Purges every `config.interval` until shutdown.
pub async fn run(
    store: Arc<dyn Store>,
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
                orphan_bodies,
                captured,
            }) => {
                metrics::counter!("sluice_retention_purged_total", "what" => "body")
                    .increment(bodies);
                metrics::counter!("sluice_retention_purged_total", "what" => "message")
                    .increment(messages);
                metrics::counter!("sluice_retention_purged_total", "what" => "idempotency_key")
                    .increment(idempotency_keys);
                metrics::counter!("sluice_retention_purged_total", "what" => "orphan_body")
                    .increment(orphan_bodies);
                metrics::counter!("sluice_retention_purged_total", "what" => "captured")
                    .increment(captured);
                info!(
                    bodies,
                    messages, idempotency_keys, orphan_bodies, captured, "retention: purged"
                );
            }
            Err(error) => warn!(%error, "retention purge failed; trying again next round"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ORPHAN_BODY_AGE_MS, Purged, RetentionConfig, cutoffs, purge_expired};
    use std::time::Duration;

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

    /// A body whose writer died (written, never named by a message) goes with the sweep
    /// once a day old, whatever the retention settings (PostgreSQL; skipped without
    /// `SLUICE_TEST_DATABASE_URL`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_sweep_removes_bodies_no_message_names_once_a_day_old() {
        let Some(db) = tokio::task::spawn_blocking(sluice_testkit::postgres::TempDatabase::create)
            .await
            .unwrap()
        else {
            return;
        };
        let store = sluice_store::open(&db.url, &sluice_store::OpenOptions::default())
            .await
            .unwrap();
        let storage = store.body_storage().expect("PostgreSQL stores bodies");
        let body = sluice_core::body::store_body(storage.as_ref(), Vec::new(), &[7; 200_000])
            .await
            .unwrap();
        let config = RetentionConfig {
            body_days: 0,
            metadata_days: 0,
            capture_count: 0,
            capture_days: 0,
            batch_size: 100,
            interval: Duration::from_secs(60),
        };
        let now = crate::now_ms();
        let fresh = purge_expired(store.as_ref(), &config, now).await.unwrap();
        assert_eq!(fresh, Purged::default(), "not a day old yet");
        let later = now + ORPHAN_BODY_AGE_MS + 60_000;
        let swept = purge_expired(store.as_ref(), &config, later).await.unwrap();
        assert_eq!(swept.orphan_bodies, 1);
        let gone = sluice_core::body::read_whole(
            Some(storage.as_ref()),
            &sluice_core::MessageBody::Stored(body),
        )
        .await;
        assert!(gone.is_err(), "its chunks are gone");
    }
}
