//! Group commit: concurrent accepts share one transaction, so throughput is not bounded by
//! one fsync per message. This is the only place that batches writes of new messages.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sluice_core::MessageId;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::{NewMessage, Store, StoreError};

#[derive(Debug, Clone, Copy)]
pub struct GroupCommitConfig {
    /// Most messages in one transaction.
    pub max_batch: usize,
    /// Longest the first message of a batch waits for others to join.
    pub max_wait: Duration,
}

struct Pending {
    message: NewMessage,
    reply: oneshot::Sender<Result<MessageId, StoreError>>,
}

/// Hands messages to the committer task; clone freely. When every clone is dropped the
/// task commits what it holds and ends.
#[derive(Clone)]
pub struct GroupCommitter {
    tx: mpsc::Sender<Pending>,
}

impl GroupCommitter {
    pub fn start(store: Arc<dyn Store>, config: GroupCommitConfig) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(config.max_batch.max(1) * 4);
        let task = tokio::spawn(run_committer(store, config, rx));
        (GroupCommitter { tx }, task)
    }

    /// Returns once the message is committed to stable storage, with its id.
    pub async fn commit(&self, message: NewMessage) -> Result<MessageId, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Pending { message, reply })
            .await
            .map_err(|_| StoreError::Unavailable("the committer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the committer has stopped".into()))?
    }
}

async fn run_committer(
    store: Arc<dyn Store>,
    config: GroupCommitConfig,
    mut rx: mpsc::Receiver<Pending>,
) {
    let max_batch = config.max_batch.max(1);
    let mut batch: Vec<Pending> = Vec::with_capacity(max_batch);
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
        commit_batch(store.as_ref(), &mut batch).await;
    }
}

async fn commit_batch(store: &dyn Store, batch: &mut Vec<Pending>) {
    let (messages, replies): (Vec<NewMessage>, Vec<_>) =
        batch.drain(..).map(|p| (p.message, p.reply)).unzip();
    metrics::histogram!("sluice_group_commit_batch_size").record(messages.len() as f64);
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    match store.enqueue_messages(&messages, now_ms).await {
        Ok(ids) => {
            for (reply, id) in replies.into_iter().zip(ids) {
                let _ = reply.send(Ok(id));
            }
        }
        Err(err) => {
            tracing::error!(error = %err, batch = messages.len(), "group commit failed");
            for reply in replies {
                let _ = reply.send(Err(err.clone()));
            }
        }
    }
}
