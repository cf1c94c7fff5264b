//! Conformance cases of the send API's idempotency keys (migration 0019), run on both
//! backends by `queue.rs`'s `conformance!`.

use std::time::Duration;

use sluice_core::idempotency::{
    IDEMPOTENCY_TTL_MS, IdempotencyClaim, IdempotencyRecord, SendAnswer,
};
use sluice_store::{Enqueued, GroupCommitConfig, MessageFilter, NewAccount, QueueCommitter, Store};

use super::{Backend, message, new_id, store};

fn keyed(
    account: i64,
    n: usize,
    key: &str,
    hash: &str,
    answer: Option<SendAnswer>,
) -> sluice_store::NewMessage {
    sluice_store::NewMessage {
        sandbox: false,
        idempotency: Some(IdempotencyClaim {
            key: key.into(),
            request_hash: hash.into(),
            answer,
        }),
        ..message(account, n)
    }
}

async fn stored_count(store: &dyn Store, account: i64) -> usize {
    store
        .list_messages(&MessageFilter {
            account_id: Some(account),
            limit: 1000,
            ..MessageFilter::default()
        })
        .await
        .unwrap()
        .len()
}

fn taken(fate: &Enqueued) -> &IdempotencyRecord {
    match fate {
        Enqueued::KeyTaken(record) => record,
        other => panic!("written, though its key was taken: {other:?}"),
    }
}

/// A key takes one message per account: a second message with it (in the same batch or a
/// later one, same request or not) is not written and gets the first one's record, without
/// failing the rest of its batch; another account's same key is its own; after 24 h the
/// key is free again, and the retention sweep deletes it.
pub async fn an_idempotency_key_takes_one_message_per_account_for_a_day(backend: Backend) {
    let Some((_holder, store, account)) = store(backend).await else {
        return;
    };
    let queued = Some(SendAnswer::Queued);
    let (fates, _) = store
        .write_queue(
            &[
                keyed(account, 1, "k1", "h1", queued),
                keyed(account, 2, "k1", "h1", queued),
                keyed(account, 3, "k2", "h2", queued),
                message(account, 4),
            ],
            &[],
            1000,
        )
        .await
        .unwrap();
    let first = new_id(&fates[0]);
    assert_eq!(
        taken(&fates[1]),
        &IdempotencyRecord {
            request_hash: "h1".into(),
            message_id: Some(first),
            answer: queued,
            created_at: 1000,
        }
    );
    let (third, fourth) = (new_id(&fates[2]), new_id(&fates[3]));
    assert!(first != third && third != fourth);
    assert_eq!(stored_count(store.as_ref(), account).await, 3);
    // Only written messages count against the monthly limit.
    let month = sluice_core::month_of(1000);
    assert_eq!(store.monthly_usage(account, &month).await.unwrap(), 3);

    // A later batch: the key is taken whatever the request; the other messages are written.
    let (fates, _) = store
        .write_queue(
            &[
                keyed(account, 5, "k1", "other", None),
                keyed(account, 11, "k1", "h1", queued),
                message(account, 6),
            ],
            &[],
            2000,
        )
        .await
        .unwrap();
    for fate in &fates[..2] {
        let record = taken(fate);
        assert_eq!(
            (record.request_hash.as_str(), record.message_id),
            ("h1", Some(first))
        );
    }
    new_id(&fates[2]);
    assert_eq!(stored_count(store.as_ref(), account).await, 4);
    let found = store
        .idempotency_key(account, "k1", 2000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.message_id, found.answer), (Some(first), queued));
    assert!(
        store
            .idempotency_key(account, "k3", 2000)
            .await
            .unwrap()
            .is_none()
    );

    // `enqueue_messages` refuses a taken key as a conflict and writes nothing of the call.
    let refused = store
        .enqueue_messages(
            &[message(account, 7), keyed(account, 8, "k2", "h2", queued)],
            3000,
        )
        .await;
    assert!(
        matches!(refused, Err(sluice_store::StoreError::Conflict(_))),
        "{refused:?}"
    );
    assert_eq!(stored_count(store.as_ref(), account).await, 4);

    // Another account's key of the same name is its own.
    let other = store
        .create_account(
            NewAccount {
                name: "o".into(),
                email: "o@example.org".into(),
                password_hash: "x".into(),
                allowed_domains: vec!["example.org".into()],
            },
            1,
        )
        .await
        .unwrap()
        .id;
    let (fates, _) = store
        .write_queue(&[keyed(other, 9, "k1", "h9", queued)], &[], 3000)
        .await
        .unwrap();
    let others = new_id(&fates[0]);
    assert_ne!(others, first);

    // A day later the key is forgotten: looked up, absent; claimed, a new message.
    let later = 1000 + IDEMPOTENCY_TTL_MS + 1;
    assert!(
        store
            .idempotency_key(account, "k1", later)
            .await
            .unwrap()
            .is_none()
    );
    let (fates, _) = store
        .write_queue(&[keyed(account, 10, "k1", "h10", queued)], &[], later)
        .await
        .unwrap();
    let renewed = new_id(&fates[0]);
    let found = store
        .idempotency_key(account, "k1", later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.request_hash.as_str(), found.message_id),
        ("h10", Some(renewed))
    );

    // The sweep deletes keys created before its cutoff, in batches: k2 (1000) and the other
    // account's k1 (3000); the renewed k1 stays.
    assert_eq!(store.purge_idempotency_keys(later - 1, 1).await.unwrap(), 1);
    assert_eq!(
        store.purge_idempotency_keys(later - 1, 10).await.unwrap(),
        1
    );
    assert_eq!(
        store.purge_idempotency_keys(later - 1, 10).await.unwrap(),
        0
    );
    assert!(
        store
            .idempotency_key(account, "k1", later)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .idempotency_key(other, "k1", 3000)
            .await
            .unwrap()
            .is_none()
    );
}

/// A sync send's key waits for its answer: remembered once delivered, forgotten on a
/// failure (so a retry sends again).
pub async fn a_sync_sends_key_is_settled_or_forgotten(backend: Backend) {
    let Some((_holder, store, account)) = store(backend).await else {
        return;
    };
    let (fates, _) = store
        .write_queue(
            &[
                keyed(account, 1, "ok", "h", None),
                keyed(account, 2, "bad", "h", None),
            ],
            &[],
            1000,
        )
        .await
        .unwrap();
    let ok = new_id(&fates[0]);
    let running = store
        .idempotency_key(account, "ok", 1000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((running.message_id, running.answer), (Some(ok), None));
    store
        .settle_idempotency_key(account, "ok", Some(SendAnswer::Delivered))
        .await
        .unwrap();
    let settled = store
        .idempotency_key(account, "ok", 1000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(settled.answer, Some(SendAnswer::Delivered));
    // Forgetting touches only a key still waiting: a settled one stays.
    store
        .settle_idempotency_key(account, "ok", None)
        .await
        .unwrap();
    assert!(
        store
            .idempotency_key(account, "ok", 1000)
            .await
            .unwrap()
            .is_some()
    );
    store
        .settle_idempotency_key(account, "bad", None)
        .await
        .unwrap();
    assert!(
        store
            .idempotency_key(account, "bad", 1000)
            .await
            .unwrap()
            .is_none()
    );
    let (fates, _) = store
        .write_queue(&[keyed(account, 3, "bad", "h", None)], &[], 2000)
        .await
        .unwrap();
    new_id(&fates[0]);
}

/// Many writers with one key through several committers (separate transactions, which
/// PostgreSQL runs at once): one message, and every writer learns its id.
pub async fn concurrent_commits_of_one_key_write_one_message(backend: Backend) {
    let Some((_holder, store, account)) = store(backend).await else {
        return;
    };
    let committers: Vec<_> = (0..4)
        .map(|_| {
            QueueCommitter::start(
                store.clone(),
                GroupCommitConfig {
                    max_batch: 3,
                    max_wait: Duration::from_millis(2),
                },
            )
        })
        .collect();
    let mut joins = Vec::new();
    for n in 0..24 {
        let committer = committers[n % committers.len()].0.clone();
        joins.push(tokio::spawn(async move {
            let message = keyed(account, n, "same", "h", Some(SendAnswer::Queued));
            committer.commit(message).await.map(|(fate, _)| fate)
        }));
    }
    let mut written = Vec::new();
    let mut pointed = Vec::new();
    for join in joins {
        match join.await.unwrap().unwrap() {
            Enqueued::New(id) => written.push(id),
            Enqueued::KeyTaken(record) => pointed.push(record.message_id),
        }
    }
    assert_eq!(written.len(), 1, "{written:?}");
    assert!(
        pointed.iter().all(|id| *id == Some(written[0])),
        "{pointed:?}"
    );
    assert_eq!(stored_count(store.as_ref(), account).await, 1);
    for (committer, task) in committers {
        drop(committer);
        task.await.unwrap();
    }
}
