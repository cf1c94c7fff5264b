//! What the SQLite store does when its body store fails under it.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sluice_core::body::{BodyReader, BodyWriter};
use sluice_core::{BodyError, BodyStorage, Envelope, MessageBody, Source, StoredBody};

use super::SqliteStore;
use crate::{AccountStore, NewAccount, NewMessage, OpenOptions, QueueStore, StoreError};

/// A body store whose every sync fails (as a failed fdatasync does), and which records
/// what is given back to it.
#[derive(Default)]
struct FailingSync {
    released: Mutex<Vec<Vec<u8>>>,
}

#[async_trait]
impl BodyStorage for FailingSync {
    async fn writer(&self) -> Result<Box<dyn BodyWriter>, BodyError> {
        Err(BodyError::Unavailable("not in this test".into()))
    }
    async fn reader(&self, _reference: &[u8]) -> Result<Box<dyn BodyReader>, BodyError> {
        Err(BodyError::Unavailable("not in this test".into()))
    }
    async fn sync(&self, _references: &[&[u8]]) -> Result<(), BodyError> {
        Err(BodyError::Storage("fdatasync: Input/output error".into()))
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

/// A group commit whose bodies could not be synced writes no row, answers a storage error
/// (the acceptor's 452 / 507) and gives the bodies back, since nothing will ever name them.
#[tokio::test]
async fn a_batch_whose_bodies_fail_to_sync_writes_nothing_and_gives_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let mut store = SqliteStore::open(&url, &OpenOptions::default())
        .await
        .unwrap();
    let bodies = Arc::new(FailingSync::default());
    store.body_store = Some(bodies.clone());
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
