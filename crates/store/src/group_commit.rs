//! Group commit: concurrent writers share one transaction, so throughput is not bounded by
//! one fsync per write. The only place writes are batched: new messages and delivery
//! attempts, together ([`QueueCommitter`]).
//!
//! The committer hands each message back with its id, so what works on it after the commit
//! (the hand-off to this node's worker) needs no copy of its body.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::{AttemptRecord, Enqueued, NewMessage, Store, StoreError};

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
        items: Vec<Self::Item>,
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

/// One write to the queue: a new message, or a delivery attempt's outcome.
pub enum QueueWrite {
    Message(NewMessage),
    Attempt(AttemptRecord),
}

/// What a committed [`QueueWrite`] answers: what became of the message (its id, or the
/// record of the idempotency key it found taken), with the message handed back; or
/// whether the attempt's lease still held (and so whether it was applied).
// Each answer lives only from the commit to its writer; boxing would cost an allocation
// per message on the accept path for nothing.
#[allow(clippy::large_enum_variant)]
pub enum QueueWritten {
    Message(Enqueued, NewMessage),
    Attempt(bool),
}

/// New messages and delivery attempts share a transaction: under load each batch holds
/// both the mail just accepted and the outcomes of mail just delivered, and pays for one
/// commit (one fsync, and the pages both touch written once).
pub struct QueueWrites;

#[async_trait]
impl BatchWrite for QueueWrites {
    type Item = QueueWrite;
    type Output = QueueWritten;
    const NAME: &'static str = "queue";
    async fn write(
        store: &dyn Store,
        items: Vec<QueueWrite>,
        now_ms: i64,
    ) -> Result<Vec<QueueWritten>, StoreError> {
        let mut messages = Vec::new();
        let mut attempts = Vec::new();
        let mut kinds = Vec::with_capacity(items.len());
        for item in items {
            match item {
                QueueWrite::Message(message) => {
                    messages.push(message);
                    kinds.push(true);
                }
                QueueWrite::Attempt(attempt) => {
                    attempts.push(attempt);
                    kinds.push(false);
                }
            }
        }
        let (ids, applied) = store.write_queue(&messages, &attempts, now_ms).await?;
        let mut written = ids.into_iter().zip(messages);
        let mut applied = applied.into_iter();
        kinds
            .into_iter()
            .map(|is_message| match is_message {
                true => written.next().map(|(id, m)| QueueWritten::Message(id, m)),
                false => applied.next().map(QueueWritten::Attempt),
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                StoreError::Database("the store answered fewer writes than asked".into())
            })
    }
}

/// The queue's group committer: new messages (the accept path) and delivery attempts (the
/// worker) go through one batching task. Clone freely.
#[derive(Clone)]
pub struct QueueCommitter(Batcher<QueueWrites>);

impl QueueCommitter {
    pub fn start(store: Arc<dyn Store>, config: GroupCommitConfig) -> (Self, JoinHandle<()>) {
        let (batcher, task) = Batcher::start(store, config);
        (QueueCommitter(batcher), task)
    }

    /// Returns once the message is committed to stable storage: its id (or, when its
    /// idempotency key was taken, that key's record, and nothing was written), and the
    /// message handed back (what works on it after the commit needs no copy of its body).
    pub async fn commit(&self, message: NewMessage) -> Result<(Enqueued, NewMessage), StoreError> {
        match self.0.submit(QueueWrite::Message(message)).await? {
            QueueWritten::Message(id, message) => Ok((id, message)),
            QueueWritten::Attempt(_) => Err(mismatch()),
        }
    }

    /// Returns once the attempt is committed: whether the lease still held (false: the
    /// attempt was not recorded, another worker owns the message).
    pub async fn record(&self, attempt: AttemptRecord) -> Result<bool, StoreError> {
        match self.0.submit(QueueWrite::Attempt(attempt)).await? {
            QueueWritten::Attempt(applied) => Ok(applied),
            QueueWritten::Message(..) => Err(mismatch()),
        }
    }
}

fn mismatch() -> StoreError {
    StoreError::Database("a queue write was answered as another kind".into())
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
    let count = items.len();
    metrics::histogram!("sluice_group_commit_batch_size", "write" => W::NAME).record(count as f64);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    let started = std::time::Instant::now();
    let written = W::write(store, items, now_ms).await;
    // The transaction's time, fsync included: what every writer in the batch waited last.
    metrics::histogram!("sluice_group_commit_seconds", "write" => W::NAME)
        .record(started.elapsed().as_secs_f64());
    match written {
        Ok(outputs) => {
            for (reply, output) in replies.into_iter().zip(outputs) {
                let _ = reply.send(Ok(output));
            }
        }
        Err(err) => {
            tracing::error!(error = %err, batch = count, write = W::NAME, "group commit failed");
            for reply in replies {
                let _ = reply.send(Err(err.clone()));
            }
        }
    }
}
