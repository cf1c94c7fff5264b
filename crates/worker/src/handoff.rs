//! Hand-off: mail this node has just committed goes straight to this node's worker.
//!
//! The acceptor reserves a place in a bounded channel before it commits; the message is
//! then inserted already leased to the worker (in the same INSERT, so the lease is as
//! durable as the message) and, once committed, sent through the channel. The worker
//! delivers it without claiming it: one write transaction and one read of the body fewer
//! per message. When every place is taken (the worker is behind) the message is committed
//! unleased and claimed as before. If the node dies with messages in the channel, their
//! lease expires and any worker claims them: nothing is lost, it only waits for the lease.

use std::time::Duration;

use sluice_store::ClaimedMessage;
use tokio::sync::mpsc;

/// The acceptor's side.
#[derive(Clone)]
pub struct Handoff {
    tx: mpsc::Sender<ClaimedMessage>,
    owner: String,
    lease: Duration,
}

/// A reserved place: the lease to insert the message with, and where to send it once
/// committed. Dropped unused (the commit failed), the place is free again.
pub struct Reserved {
    permit: mpsc::OwnedPermit<ClaimedMessage>,
    pub owner: String,
    pub lease_until_ms: i64,
}

/// The worker's side.
pub type HandoffReceiver = mpsc::Receiver<ClaimedMessage>;

/// A channel with `capacity` places; messages are leased to `owner` for `lease`.
pub fn handoff(capacity: usize, owner: String, lease: Duration) -> (Handoff, HandoffReceiver) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (Handoff { tx, owner, lease }, rx)
}

impl Handoff {
    /// A place for one message committed at `now_ms`, if one is free and the worker runs.
    pub fn reserve(&self, now_ms: i64) -> Option<Reserved> {
        let permit = self.tx.clone().try_reserve_owned().ok()?;
        Some(Reserved {
            permit,
            owner: self.owner.clone(),
            lease_until_ms: now_ms + self.lease.as_millis() as i64,
        })
    }
}

impl Reserved {
    /// The lease the message is inserted with.
    pub fn lease(&self) -> (String, i64) {
        (self.owner.clone(), self.lease_until_ms)
    }

    /// Gives the committed message to the worker.
    pub fn send(self, message: ClaimedMessage) {
        self.permit.send(message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: i64) -> ClaimedMessage {
        ClaimedMessage {
            id,
            account_id: 1,
            envelope: sluice_core::Envelope {
                mail_from: "a@b.test".into(),
                rcpt_to: vec!["c@d.test".into()],
                smtputf8: false,
                eight_bit: false,
            },
            body: sluice_core::MessageBody::Inline(b"Subject: x\r\n\r\n".to_vec()),
            attempts: 0,
            created_at: 0,
            max_attempts: None,
            source: sluice_core::Source::Smtp,
            tags: Vec::new(),
            release_provider_id: None,
            sandbox: false,
        }
    }

    #[tokio::test]
    async fn places_are_bounded_and_freed_when_unused() {
        let (handoff, mut rx) = handoff(2, "node-1".into(), Duration::from_secs(300));
        let first = handoff.reserve(1_000).expect("a place");
        assert_eq!(first.lease(), ("node-1".to_string(), 301_000));
        let second = handoff.reserve(1_000).expect("a second place");
        assert!(handoff.reserve(1_000).is_none(), "full: commit unleased");
        drop(second); // its commit failed
        let third = handoff.reserve(2_000).expect("the freed place");
        first.send(message(1));
        third.send(message(3));
        assert_eq!(rx.recv().await.map(|m| m.id), Some(1));
        assert_eq!(rx.recv().await.map(|m| m.id), Some(3));
    }

    #[tokio::test]
    async fn no_place_once_the_worker_has_stopped() {
        let (handoff, rx) = handoff(4, "node-1".into(), Duration::from_secs(300));
        drop(rx);
        assert!(handoff.reserve(0).is_none());
    }
}
