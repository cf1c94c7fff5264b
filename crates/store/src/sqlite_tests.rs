//! What the SQLite store does when its body store fails under it.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sluice_core::body::{BodyReader, BodyWriter};
use sluice_core::{BodyError, BodyStorage, Envelope, MessageBody, Source, StoredBody};

use super::SqliteStore;
use crate::{AccountStore, NewAccount, NewMessage, OpenOptions, QueueStore, StoreError};

/// A body store whose syncs fail (as a failed fdatasync does) or succeed, and which records
/// what is given back to it.
#[derive(Default)]
struct Bodies {
    sync_fails: bool,
    released: Mutex<Vec<Vec<u8>>>,
}

#[async_trait]
impl BodyStorage for Bodies {
    async fn writer(&self) -> Result<Box<dyn BodyWriter>, BodyError> {
        Err(BodyError::Unavailable("not in this test".into()))
    }
    async fn reader(&self, _reference: &[u8]) -> Result<Box<dyn BodyReader>, BodyError> {
        Err(BodyError::Unavailable("not in this test".into()))
    }
    async fn sync(&self, _references: &[&[u8]]) -> Result<(), BodyError> {
        match self.sync_fails {
            true => Err(BodyError::Storage("fdatasync: Input/output error".into())),
            false => Ok(()),
        }
    }
    async fn release(&self, references: Vec<Vec<u8>>) {
        self.released.lock().unwrap().extend(references);
    }
}

fn stored_message(account_id: i64, reference: &[u8]) -> NewMessage {
    NewMessage {
        account_id,
        source: Source::Smtp,
        envelope: Envelope {
            mail_from: "a@example.com".into(),
            rcpt_to: vec!["b@x.test".into()],
            smtputf8: false,
            eight_bit: false,
        },
        body: MessageBody::Stored(StoredBody {
            head: b"Received: test\r\n".to_vec(),
            reference: reference.to_vec(),
            len: 100_000,
        }),
        lease: None,
        tags: Vec::new(),
        max_attempts: None,
        sandbox: false,
        idempotency: None,
    }
}

/// A store over `bodies`, in `dir`, with one account.
async fn store_over(dir: &std::path::Path, bodies: Arc<Bodies>) -> (SqliteStore, i64) {
    let url = format!("sqlite://{}", dir.join("t.db").display());
    let mut store = SqliteStore::open(&url, &OpenOptions::default())
        .await
        .unwrap();
    store.body_store = Some(bodies);
    let account = store
        .create_account(
            NewAccount {
                name: "t".into(),
                email: "t@example.com".into(),
                password_hash: "x".into(),
                allowed_domains: vec!["example.com".into()],
            },
            1,
        )
        .await
        .unwrap()
        .id;
    (store, account)
}

/// A group commit whose bodies could not be synced writes no row, answers a storage error
/// (the acceptor's 452 / 507) and gives the bodies back, since nothing will ever name them.
#[tokio::test]
async fn a_batch_whose_bodies_fail_to_sync_writes_nothing_and_gives_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let bodies = Arc::new(Bodies {
        sync_fails: true,
        ..Default::default()
    });
    let (store, account) = store_over(dir.path(), bodies.clone()).await;
    let batch = [
        stored_message(account, b"one"),
        stored_message(account, b"two"),
    ];
    let written = store.write_queue(&batch, &[], 2).await;
    assert!(
        matches!(written, Err(StoreError::Storage(_))),
        "{:?}",
        written.err()
    );
    assert_eq!(
        *bodies.released.lock().unwrap(),
        [b"one".to_vec(), b"two".to_vec()]
    );
    assert!(store.count_by_status().await.unwrap().is_empty());
}

/// A group commit whose statements fail (here a row for an account that does not exist)
/// rolls back: its bodies, synced meanwhile, are given back too, not left until a restart.
#[tokio::test]
async fn a_batch_whose_statements_fail_gives_its_synced_bodies_back() {
    let dir = tempfile::tempdir().unwrap();
    let bodies = Arc::new(Bodies::default());
    let (store, account) = store_over(dir.path(), bodies.clone()).await;
    let batch = [
        stored_message(account, b"one"),
        stored_message(account + 1000, b"two"),
    ];
    let written = store.write_queue(&batch, &[], 2).await;
    assert!(written.is_err());
    assert_eq!(
        *bodies.released.lock().unwrap(),
        [b"one".to_vec(), b"two".to_vec()]
    );
    assert!(store.count_by_status().await.unwrap().is_empty());
    // The write connection was not left inside the failed transaction.
    let ids = store
        .write_queue(&[stored_message(account, b"three")], &[], 3)
        .await
        .unwrap();
    assert_eq!(ids.0.len(), 1);
    assert_eq!(store.count_by_status().await.unwrap().len(), 1);
}
