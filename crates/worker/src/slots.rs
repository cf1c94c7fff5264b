//! Delivery slots per provider and per SMTP destination host, so a slow or hanging
//! upstream holds only its own: a call takes a slot of its provider and one of its
//! destination or does not start. Waited for only briefly (`SLOT_PATIENCE` in the
//! dispatcher): a message whose provider stays full goes back to the queue untried
//! (`Store::defer_untried`) instead of holding one of the node's slots while it waits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Limits: `[delivery] provider_concurrency` and `host_concurrency`.
#[derive(Debug, Clone, Copy)]
pub struct SlotLimits {
    pub per_provider: usize,
    pub per_host: usize,
    /// Most bytes of stored bodies loaded for delivery at once
    /// (`delivery.max_bodies_in_memory_bytes`).
    pub bodies_in_memory: usize,
}

impl Default for SlotLimits {
    fn default() -> Self {
        SlotLimits {
            bodies_in_memory: 128 * 1024 * 1024,
            per_provider: 16,
            per_host: 16,
        }
    }
}

/// The slots of every provider and destination this node has delivered to.
pub struct Slots {
    limits: SlotLimits,
    by_key: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// Held for one provider call.
pub struct Held {
    _provider: OwnedSemaphorePermit,
    _host: Option<OwnedSemaphorePermit>,
}

impl Slots {
    pub fn new(limits: SlotLimits) -> Self {
        Slots {
            limits,
            by_key: Mutex::new(HashMap::new()),
        }
    }

    fn semaphore(&self, key: String, limit: usize) -> Arc<Semaphore> {
        let mut by_key = self.by_key.lock().expect("slots lock");
        by_key
            .entry(key)
            .or_insert_with(|| Arc::new(Semaphore::new(limit.max(1))))
            .clone()
    }

    /// A slot of `provider` (None: the default provider) and of `destination`, waiting at
    /// most `patience` for them (a fast provider's slots free within that, so its burst
    /// goes out without going back to the queue); None when either stayed full.
    pub async fn take(
        &self,
        provider: Option<i64>,
        destination: Option<&str>,
        patience: Duration,
    ) -> Option<Held> {
        let key = match provider {
            Some(id) => format!("provider:{id}"),
            None => "provider:default".to_string(),
        };
        let provider = self.semaphore(key, self.limits.per_provider);
        let host =
            destination.map(|host| self.semaphore(format!("host:{host}"), self.limits.per_host));
        let both = async {
            let provider = provider.acquire_owned().await.ok()?;
            let host = match host {
                Some(host) => Some(host.acquire_owned().await.ok()?),
                None => None,
            };
            Some(Held {
                _provider: provider,
                _host: host,
            })
        };
        tokio::time::timeout(patience, both).await.ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Duration = Duration::from_millis(0);

    #[tokio::test]
    async fn a_full_provider_or_host_gives_no_slot_and_a_freed_one_does() {
        let slots = Slots::new(SlotLimits {
            per_provider: 2,
            per_host: 3,
            ..SlotLimits::default()
        });
        let take = |p, h| slots.take(p, h, NOW);
        let a1 = take(Some(1), Some("mx.a:25")).await.unwrap();
        let _a2 = take(Some(1), Some("mx.a:25")).await.unwrap();
        assert!(
            take(Some(1), Some("mx.a:25")).await.is_none(),
            "provider 1 full"
        );
        // Another provider to the same host: the host has one slot left.
        let _b1 = take(Some(2), Some("mx.a:25")).await.unwrap();
        assert!(take(Some(2), Some("mx.a:25")).await.is_none(), "host full");
        // Other providers and hosts are not held up.
        assert!(take(Some(3), Some("mx.b:25")).await.is_some());
        assert!(take(None, None).await.is_some());
        // A slot freed while one waits is taken.
        let waiting = slots.take(Some(1), Some("mx.a:25"), Duration::from_secs(5));
        let (held, ()) = tokio::join!(waiting, async { drop(a1) });
        assert!(held.is_some());
    }
}
