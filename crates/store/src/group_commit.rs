//! Group commit: concurrent writers share one transaction, so throughput is not bounded by
//! one fsync per write. The only places writes are batched: new messages
//! ([`GroupCommitter`]) and delivery attempts ([`AttemptCommitter`]), one mechanism.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use sluice_core::MessageId;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::{AttemptRecord, NewMessage, Store, StoreError};

#[derive(Debug, Clone, Copy)]
pub struct GroupCommitConfig {
    /// Most writes in one transaction.
    pub max_batch: usize,
    /// Longest the first write of a batch waits for others to join.
    pub max_wait: Duration,
}

/// One kind of write that can share a transaction with others of its kind.
#[async_trait]
pub trait BatchWrite: Send + Sync + 'static {
    type Item: Send + 'static;
    type Output: Send + 'static;
    /// For the batch-size histogram.
    const NAME: &'static str;
    /// Writes every item in one transaction; one output per item, in order.
    async fn write(
        store: &dyn Store,
        items: &[Self::Item],
        now_ms: i64,
    ) -> Result<Vec<Self::Output>, StoreError>;
}

struct Pending<W: BatchWrite> {
    item: W::Item,
    reply: oneshot::Sender<Result<W::Output, StoreError>>,
}

/// Hands writes to the batching task; clone freely. When every clone is dropped the task
/// writes what it holds and ends.
pub struct Batcher<W: BatchWrite> {
    tx: mpsc::Sender<Pending<W>>,
}

impl<W: BatchWrite> Clone for Batcher<W> {
    fn clone(&self) -> Self {
        Batcher {
            tx: self.tx.clone(),
        }
    }
}

impl<W: BatchWrite> Batcher<W> {
    pub fn start(store: Arc<dyn Store>, config: GroupCommitConfig) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(config.max_batch.max(1) * 4);
        let task = tokio::spawn(run_batcher::<W>(store, config, rx));
        (Batcher { tx }, task)
    }

    /// Returns once the write is committed to stable storage.
    pub async fn submit(&self, item: W::Item) -> Result<W::Output, StoreError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the committer has stopped".into());
        self.tx
            .send(Pending { item, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// New messages: `submit` answers the message's id once it is committed.
pub struct EnqueueMessages;

#[async_trait]
impl BatchWrite for EnqueueMessages {
    type Item = NewMessage;
    type Output = MessageId;
    const NAME: &'static str = "enqueue";
    async fn write(
        store: &dyn Store,
        items: &[NewMessage],
        now_ms: i64,
    ) -> Result<Vec<MessageId>, StoreError> {
        store.enqueue_messages(items, now_ms).await
    }
}

/// Delivery attempts: `submit` answers whether the lease was still held.
pub struct RecordAttempts;

#[async_trait]
impl BatchWrite for RecordAttempts {
    type Item = AttemptRecord;
    type Output = bool;
    const NAME: &'static str = "attempts";
    async fn write(
        store: &dyn Store,
        items: &[AttemptRecord],
        _now_ms: i64,
    ) -> Result<Vec<bool>, StoreError> {
        store.record_attempts(items).await
    }
}

pub type GroupCommitter = Batcher<EnqueueMessages>;
pub type AttemptCommitter = Batcher<RecordAttempts>;

impl GroupCommitter {
    /// Returns once the message is committed to stable storage, with its id.
    pub async fn commit(&self, message: NewMessage) -> Result<MessageId, StoreError> {
        self.submit(message).await
    }
}

async fn run_batcher<W: BatchWrite>(
    store: Arc<dyn Store>,
    config: GroupCommitConfig,
    mut rx: mpsc::Receiver<Pending<W>>,
) {
    let max_batch = config.max_batch.max(1);
    let mut batch: Vec<Pending<W>> = Vec::with_capacity(max_batch);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        let deadline = tokio::time::Instant::now() + config.max_wait;
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    if config.max_wait.is_zero() {
                        break;
                    }
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(next)) => batch.push(next),
                        Ok(None) | Err(_) => break,
                    }
                }
            }
        }
        write_batch::<W>(store.as_ref(), &mut batch).await;
    }
}

async fn write_batch<W: BatchWrite>(store: &dyn Store, batch: &mut Vec<Pending<W>>) {
    let (items, replies): (Vec<W::Item>, Vec<_>) =
        batch.drain(..).map(|p| (p.item, p.reply)).unzip();
    metrics::histogram!("sluice_group_commit_batch_size", "write" => W::NAME)
        .record(items.len() as f64);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    match W::write(store, &items, now_ms).await {
        Ok(outputs) => {
            for (reply, output) in replies.into_iter().zip(outputs) {
                let _ = reply.send(Ok(output));
            }
        }
        Err(err) => {
            tracing::error!(error = %err, batch = items.len(), write = W::NAME, "group commit failed");
            for reply in replies {
                let _ = reply.send(Err(err.clone()));
            }
        }
    }
}
