//! Store conformance: the same cases on SQLite and on PostgreSQL (a fresh database per
//! test from `SLUICE_TEST_DATABASE_URL`): accounts, enqueue, group commit, claim, lease
//! expiry, retry, attempts, events.

use std::sync::Arc;
use std::time::Duration;

use sluice_core::sealed::MasterKey;
use sluice_core::{
    DeliveryReport, Envelope, MessageStatus, SessionKind, Source, SuppressionReason, Verdict,
};
use sluice_store::{
    AccountUpdate, AttemptRecord, AuditEntry, BodyCodec, GroupCommitConfig, MessageFilter,
    NewAccount, NewMessage, NewUser, OpenOptions, QueueCommitter, Store,
};
use sluice_testkit::postgres::TempDatabase;

/// Keeps the backend's storage alive for the test.
enum Holder {
    Dir(tempfile::TempDir),
    Pg(#[allow(dead_code)] TempDatabase),
}

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

/// `None` when PostgreSQL tests are skipped (no SLUICE_TEST_DATABASE_URL outside CI).
async fn store(backend: Backend) -> Option<(Holder, Arc<dyn Store>, i64)> {
    let (holder, _url, store, account) = store_with(backend, OpenOptions::default()).await?;
    Some((holder, store, account))
}

/// A store opened with `options`, and its URL (to open it again with other options).
async fn store_with(
    backend: Backend,
    options: OpenOptions,
) -> Option<(Holder, String, Arc<dyn Store>, i64)> {
    let (holder, url, store): (Holder, String, Arc<dyn Store>) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("t.db").display());
            let store = sluice_store::open(&url, &options).await.unwrap();
            (Holder::Dir(dir), url, store)
        }
        Backend::Postgres => {
            let db = tokio::task::spawn_blocking(TempDatabase::create)
                .await
                .unwrap()?;
            let store = sluice_store::open(&db.url, &options).await.unwrap();
            let url = db.url.clone();
            (Holder::Pg(db), url, store)
        }
    };
    let account = create_account(store.as_ref()).await;
    Some((holder, url, store, account))
}

/// The account every case writes for (`T@Example.com`, domain `Example.com`).
async fn create_account(store: &dyn Store) -> i64 {
    let account = NewAccount {
        name: "t".into(),
        email: "T@Example.com".into(),
        password_hash: "x".into(),
        allowed_domains: vec!["Example.com".into()],
    };
    store.create_account(account, 1).await.unwrap().id
}

/// Runs each case once per backend, as `sqlite::case` and `postgres::case`.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Backend::Postgres).await;
                }
            )*
        }
    };
}

conformance!(
    accounts_are_found_case_insensitively_and_unique,
    group_commit_shares_transactions_and_keeps_every_message,
    new_messages_and_attempts_share_one_transaction,
    claim_leases_and_expired_leases_return,
    deferred_messages_wait_for_their_time_and_keep_only_pending_recipients,
    concurrent_claimers_never_share_a_message,
    management_records_round_trip,
    an_account_is_not_sandboxed_until_told_and_stays_so_across_other_changes,
    provider_calls_are_rows_and_their_ids_find_the_message,
    dkim_keys_are_unique_per_domain_and_selector,
    subscribed_events_fill_the_webhook_outbox_and_attempts_are_kept,
    batched_attempts_share_a_transaction_and_skip_lost_leases,
    dashboard_counts_by_status_hour_and_provider,
    captured_messages_are_released_through_a_provider_or_deleted,
    sealed_bodies_open_under_the_key_ring_and_reseal_under_the_new_key,
    retention_empties_finished_bodies_then_deletes_finished_messages,
    account_status_holds_releases_and_cancels_its_mail_and_ends_its_sessions,
    a_node_never_reclaims_its_own_lease_and_untried_mail_goes_back,
    a_backward_clock_jump_moves_waiting_mail_on_sqlite_only,
    an_idempotency_key_takes_one_message_per_account_for_a_day,
    a_sync_sends_key_is_settled_or_forgotten,
    concurrent_commits_of_one_key_write_one_message,
);

#[path = "queue_cases/idempotency.rs"]
mod idempotency_cases;
use idempotency_cases::*;

/// A node's own lease can look expired only because its clock jumped (it knows what it is
/// working on): it never takes it again, so a forward jump does not deliver twice. Mail it
/// could not start (its provider had no free slot) goes back untried.
async fn a_node_never_reclaims_its_own_lease_and_untried_mail_goes_back(backend: Backend) {
    let Some((_holder, store, account)) = store(backend).await else {
        return;
    };
    let ids = enqueue_numbered(&store, account, &[1, 2], 1000).await;
    let claimed = store.claim_due_messages("n1", 1000, 100, 2).await.unwrap();
    assert_eq!(claimed.len(), 2);
    // Three hours later by n1's clock: nothing of its own comes back to it.
    let jumped = 1000 + 3 * 3_600_000;
    assert!(
        store
            .claim_due_messages("n1", jumped, 100, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // n1 gives message 2 back untried: due again at 1500, attempts unchanged, queued.
    assert!(store.defer_untried(ids[1], "n1", 1500, 1001).await.unwrap());
    assert!(
        !store.defer_untried(ids[1], "n1", 1500, 1001).await.unwrap(),
        "no longer leased"
    );
    assert!(!store.defer_untried(ids[0], "n2", 1500, 1001).await.unwrap());
    let back = store.message(ids[1]).await.unwrap().unwrap();
    assert_eq!((back.status.as_str(), back.attempts), ("queued", 0));
    assert!(
        store
            .claim_due_messages("n1", 1499, 100, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store.claim_due_messages("n1", 1500, 100, 10).await.unwrap();
    assert_eq!(again.iter().map(|m| m.id).collect::<Vec<_>>(), vec![ids[1]]);
    // n1 still records message 1: its lease held all along.
    assert!(
        store
            .record_attempt(&delivered_attempt(ids[0], "n1"))
            .await
            .unwrap()
    );
}

/// SQLite's only clock is the node's: a backward jump moves waiting mail with it, so a
/// retry due 5 minutes later is still due 5 minutes later. PostgreSQL moves nothing.
async fn a_backward_clock_jump_moves_waiting_mail_on_sqlite_only(backend: Backend) {
    let Some((_holder, store, account)) = store(backend).await else {
        return;
    };
    let hour = 3_600_000_i64;
    let now = 10 * hour;
    let ids = enqueue_numbered(&store, account, &[1, 2], now).await;
    store.claim_due_messages("n1", now, 100, 1).await.unwrap();
    assert!(
        store
            .defer_untried(ids[0], "n1", now + 300_000, now)
            .await
            .unwrap()
    );
    // The clock goes back three hours.
    let after = now - 3 * hour;
    let moved = store.follow_clock_jump(-3 * hour, after).await.unwrap();
    let due = store
        .message(ids[0])
        .await
        .unwrap()
        .unwrap()
        .next_attempt_at;
    match backend {
        Backend::Sqlite => {
            // Everything waiting moves: what was due stays due (message 2, due at `now`).
            assert_eq!(moved, 2);
            assert_eq!(due, after + 300_000);
            let claimed = store
                .claim_due_messages("n1", after + 300_000, 100, 10)
                .await
                .unwrap();
            assert_eq!(claimed.len(), 2);
        }
        Backend::Postgres => {
            assert_eq!(moved, 0);
            assert_eq!(due, now + 300_000);
        }
    }
}

fn with_bodies(key: Option<MasterKey>, encrypt: bool) -> OpenOptions {
    OpenOptions {
        bodies: BodyCodec::new(key.map(Arc::new), encrypt),
        ..OpenOptions::default()
    }
}

async fn sealed_bodies_open_under_the_key_ring_and_reseal_under_the_new_key(backend: Backend) {
    let old = MasterKey::from_bytes([1u8; 32]);
    let new = MasterKey::from_bytes([2u8; 32]);
    let Some((_holder, url, store, account)) =
        store_with(backend, with_bodies(Some(old.clone()), true)).await
    else {
        return;
    };
    let ids = enqueue_numbered(&store, account, &[1, 2, 3], 1000).await;
    let body = |n: usize| {
        sluice_core::MessageBody::Inline(format!("Subject: {n}\r\n\r\nbody {n}\r\n").into_bytes())
    };
    assert_eq!(store.message(ids[0]).await.unwrap().unwrap().body, body(1));
    let claimed = store.claim_due_messages("w", 1000, 100, 1).await.unwrap();
    assert_eq!(claimed[0].body, body(1));
    // Without the key the stored bytes do not open: they are not the body.
    let keyless = sluice_store::open(&url, &with_bodies(None, false))
        .await
        .unwrap();
    assert!(keyless.message(ids[1]).await.is_err());
    // Rotated: the new key with the old one as previous reads everything ...
    let rotated = sluice_store::open(
        &url,
        &with_bodies(Some(new.clone().with_previous(vec![old])), true),
    )
    .await
    .unwrap();
    assert_eq!(
        rotated.message(ids[1]).await.unwrap().unwrap().body,
        body(2)
    );
    // ... and seals it all again, a batch at a time.
    assert_eq!(
        rotated.reseal_bodies(0, 2).await.unwrap(),
        (Some(ids[1]), 2, 2)
    );
    assert_eq!(
        rotated.reseal_bodies(ids[1], 2).await.unwrap(),
        (Some(ids[2]), 1, 1)
    );
    assert_eq!(
        rotated.reseal_bodies(ids[2], 2).await.unwrap(),
        (None, 0, 0)
    );
    assert_eq!(
        rotated.reseal_bodies(0, 10).await.unwrap(),
        (Some(ids[2]), 3, 0)
    );
    // The old key is no longer needed.
    let new_only = sluice_store::open(&url, &with_bodies(Some(new), false))
        .await
        .unwrap();
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(
            new_only.message(*id).await.unwrap().unwrap().body,
            body(n + 1)
        );
    }
}

async fn retention_empties_finished_bodies_then_deletes_finished_messages(backend: Backend) {
    let Some((_holder, store, account)) = store(backend).await else {
        return;
    };
    let ids = store
        .enqueue_messages(&[message(account, 1), message(account, 2)], 1000)
        .await
        .unwrap();
    let claimed = store.claim_due_messages("w", 1000, 100, 1).await.unwrap();
    assert_eq!(claimed[0].id, ids[0]);
    let delivered = AttemptRecord {
        started_at: 2000,
        finished_at: 2000,
        next_attempt_at: 2000,
        ..delivered_attempt(ids[0], "w")
    };
    assert!(store.record_attempt(&delivered).await.unwrap());
    // Finished before 3000: only the delivered one; the queued one keeps its body.
    assert_eq!(store.purge_bodies(1500, 5000, 10).await.unwrap(), 0);
    assert_eq!(store.purge_bodies(3000, 5000, 10).await.unwrap(), 1);
    assert_eq!(store.purge_bodies(3000, 5000, 10).await.unwrap(), 0, "once");
    let purged = store.message(ids[0]).await.unwrap().unwrap();
    assert!(purged.body.is_empty());
    assert_eq!(purged.status.as_str(), "delivered");
    assert_eq!(store.attempts(ids[0]).await.unwrap().len(), 1);
    assert!(
        !store
            .message(ids[1])
            .await
            .unwrap()
            .unwrap()
            .body
            .is_empty()
    );
    // Metadata: the finished message goes with its attempts and events.
    assert_eq!(store.purge_messages(1500, 10).await.unwrap(), 0);
    assert_eq!(store.purge_messages(3000, 10).await.unwrap(), 1);
    assert!(store.message(ids[0]).await.unwrap().is_none());
    assert!(store.attempts(ids[0]).await.unwrap().is_empty());
    assert!(store.events(ids[0]).await.unwrap().is_empty());
    assert!(store.message(ids[1]).await.unwrap().is_some());
}

async fn captured_messages_are_released_through_a_provider_or_deleted(backend: Backend) {
    let Some((_holder, store, account)) = store(backend).await else {
        return;
    };
    let ids = store
        .enqueue_messages(&[message(account, 1), message(account, 2)], 1000)
        .await
        .unwrap();
    store.claim_due_messages("w", 1000, 100, 2).await.unwrap();
    let captured = |id: i64| AttemptRecord {
        report: DeliveryReport::uniform(
            "capture",
            &["r@x.test".to_string()],
            Verdict::Delivered,
            None,
            "captured",
        ),
        new_status: MessageStatus::Captured,
        events: vec![("captured".into(), String::new())],
        ..delivered_attempt(id, "w")
    };
    store
        .record_attempts(&[captured(ids[0]), captured(ids[1])])
        .await
        .unwrap();
    // Only captured messages are released or deleted.
    assert!(store.release_message(ids[0], 77, 2000).await.unwrap());
    assert!(
        !store.release_message(ids[0], 77, 2001).await.unwrap(),
        "not twice"
    );
    let claimed = store.claim_due_messages("w2", 2000, 100, 5).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].release_provider_id, Some(77));
    assert_eq!(
        claimed[0].envelope.rcpt_to,
        message(account, 1).envelope.rcpt_to,
        "all recipients again"
    );
    let kinds: Vec<String> = store
        .events(ids[0])
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds.last().map(String::as_str), Some("released"));
    assert!(
        !store.delete_captured_message(ids[0]).await.unwrap(),
        "a sending message stays"
    );
    assert!(store.delete_captured_message(ids[1]).await.unwrap());
    assert!(store.message(ids[1]).await.unwrap().is_none());
    assert!(store.events(ids[1]).await.unwrap().is_empty());
}

async fn dashboard_counts_by_status_hour_and_provider(backend: Backend) {
    let Some((_holder, store, account)) = store(backend).await else {
        return;
    };
    let hour = 3_600_000_i64;
    let at = 5 * hour + 10;
    let ids = store
        .enqueue_messages(&[message(account, 1), message(account, 2)], at)
        .await
        .unwrap();
    store.claim_due_messages("w", at, 100, 2).await.unwrap();
    let record = |id: i64, verdict: Verdict, status: MessageStatus, event: &str| AttemptRecord {
        message_id: id,
        lease_owner: "w".into(),
        report: DeliveryReport::uniform(
            "smtp",
            &["r@x.test".to_string()],
            verdict,
            Some(550),
            "no such user",
        ),
        calls: vec![],
        started_at: at + 1,
        finished_at: at + hour,
        new_status: status,
        pending_rcpt: vec![],
        next_attempt_at: at + hour,
        last_error: None,
        events: vec![(event.into(), "550 no such user".into())],
    };
    store
        .record_attempts(&[
            record(
                ids[0],
                Verdict::Delivered,
                MessageStatus::Delivered,
                "delivered",
            ),
            record(ids[1], Verdict::Permanent, MessageStatus::Failed, "failed"),
        ])
        .await
        .unwrap();
    let board = store.dashboard(None, 0).await.unwrap();
    assert_eq!(
        board.by_status,
        vec![("delivered".to_string(), 1), ("failed".to_string(), 1)]
    );
    let mut hourly: Vec<(i64, String, i64)> = board
        .hourly
        .iter()
        .map(|h| (h.hour, h.kind.clone(), h.count))
        .collect();
    hourly.sort();
    assert_eq!(
        hourly,
        vec![
            (5 * hour, "queued".to_string(), 2),
            (6 * hour, "delivered".to_string(), 1),
            (6 * hour, "failed".to_string(), 1),
        ]
    );
    let providers: Vec<(String, String, i64)> = board
        .providers
        .iter()
        .map(|p| (p.provider.clone(), p.verdict.as_str().to_string(), p.count))
        .collect();
    assert_eq!(
        providers,
        vec![
            ("smtp".to_string(), "delivered".to_string(), 1),
            ("smtp".to_string(), "permanent".to_string(), 1),
        ]
    );
    assert_eq!(board.recent_errors.len(), 1);
    assert_eq!(board.recent_errors[0].message_id, ids[1]);
    // Another account's view, and a window after everything, are empty.
    let other = store.dashboard(Some(account + 1000), 0).await.unwrap();
    assert!(
        other.by_status.is_empty() && other.hourly.is_empty() && other.recent_errors.is_empty()
    );
    assert!(
        store
            .dashboard(None, 7 * hour)
            .await
            .unwrap()
            .hourly
            .is_empty()
    );
}

async fn batched_attempts_share_a_transaction_and_skip_lost_leases(backend: Backend) {
    let Some((_holder, store, account)) = store(backend).await else {
        return;
    };
    let ids = enqueue_numbered(&store, account, &[1, 2, 3], 1000).await;
    let claimed = store.claim_due_messages("w", 1000, 100, 3).await.unwrap();
    assert_eq!(claimed.len(), 3);
    let (attempts, task) = sluice_store::QueueCommitter::start(
        store.clone(),
        GroupCommitConfig {
            max_batch: 8,
            max_wait: Duration::from_millis(20),
        },
    );
    let record = delivered_attempt;
    // Four writers at once; the second lost its lease, the fourth repeats the first.
    let (a, b, c, d) = tokio::join!(
        attempts.record(record(ids[0], "w")),
        attempts.record(record(ids[1], "someone-else")),
        attempts.record(record(ids[2], "w")),
        attempts.record(record(ids[0], "w")),
    );
    assert_eq!(
        (a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap()),
        (true, false, true, false)
    );
    assert_eq!(
        store.attempts(ids[0]).await.unwrap().len(),
        1,
        "one attempt row"
    );
    let kinds: Vec<String> = store
        .events(ids[2])
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, vec!["queued", "delivered"]);
    drop(attempts);
    task.await.unwrap();
    let statuses: Vec<String> = statuses_of(&store, &ids).await;
    assert_eq!(statuses, vec!["delivered", "sending", "delivered"]);
    assert!(
        store.attempts(ids[1]).await.unwrap().is_empty(),
        "nothing written for a lost lease"
    );
}

async fn statuses_of(store: &Arc<dyn Store>, ids: &[i64]) -> Vec<String> {
    let mut out = Vec::new();
    for id in ids {
        out.push(
            store
                .message(*id)
                .await
                .unwrap()
                .unwrap()
                .status
                .to_string(),
        );
    }
    out
}

async fn subscribed_events_fill_the_webhook_outbox_and_attempts_are_kept(backend: Backend) {
    let Some((_holder, store, account)) = store(backend).await else {
        return;
    };
    let endpoint = store
        .create_webhook_endpoint(
            &sluice_store::NewWebhookEndpoint {
                account_id: account,
                url: "https://hooks.example.com/sluice".into(),
                events: vec!["delivered".into(), "bounced_hard".into()],
                secret: "v1.sealed".into(),
                enabled: true,
            },
            1,
        )
        .await
        .unwrap();
    let ids = store
        .enqueue_messages(&[message(account, 1)], 1000)
        .await
        .unwrap();
    // `queued` is not published; nothing is due yet.
    assert!(
        store
            .claim_webhook_deliveries("w", 1000, 100, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = store.claim_due_messages("w", 1000, 100, 1).await.unwrap();
    let report = DeliveryReport::uniform(
        "smtp",
        &claimed[0].envelope.rcpt_to,
        Verdict::Delivered,
        Some(250),
        "ok",
    );
    let record = AttemptRecord {
        report,
        events: vec![
            ("delivered".into(), "provider=smtp".into()),
            ("failover".into(), "not subscribed".into()),
        ],
        ..delivered_attempt(ids[0], "w")
    };
    assert!(store.record_attempt(&record).await.unwrap());
    let due = store
        .claim_webhook_deliveries("h1", 1003, 100, 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1, "only the subscribed kind");
    assert_eq!(
        (
            due[0].kind.as_str(),
            due[0].message_id,
            due[0].message_status.as_str()
        ),
        ("delivered", ids[0], "delivered")
    );
    assert_eq!(due[0].url, "https://hooks.example.com/sluice");
    // Leased: another sender does not get it until the lease runs out.
    assert!(
        store
            .claim_webhook_deliveries("h2", 1050, 100, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let failed_once = sluice_store::WebhookAttemptRecord {
        delivery_id: due[0].id,
        lease_owner: "h1".into(),
        status_code: Some(500),
        error: Some("HTTP 500".into()),
        delivered: false,
        next_attempt_at: Some(2000),
        started_at: 1004,
        finished_at: 1005,
    };
    assert!(store.record_webhook_attempt(&failed_once).await.unwrap());
    assert!(
        store
            .claim_webhook_deliveries("h1", 1999, 100, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store
        .claim_webhook_deliveries("h2", 2000, 100, 10)
        .await
        .unwrap();
    assert_eq!(again[0].attempts, 1);
    let delivered = sluice_store::WebhookAttemptRecord {
        lease_owner: "h2".into(),
        status_code: Some(204),
        error: None,
        delivered: true,
        next_attempt_at: None,
        ..failed_once.clone()
    };
    assert!(
        !store.record_webhook_attempt(&failed_once).await.unwrap(),
        "lease lost"
    );
    assert!(store.record_webhook_attempt(&delivered).await.unwrap());
    let log = store
        .list_webhook_deliveries(endpoint.id, 10)
        .await
        .unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].status.as_str(), log[0].attempts), ("delivered", 2));
    let codes: Vec<_> = log[0].attempt_log.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, vec![Some(500), Some(204)]);
}

async fn dkim_keys_are_unique_per_domain_and_selector(backend: Backend) {
    let Some((_holder, store, account)) = store(backend).await else {
        return;
    };
    let key = sluice_store::NewDkimKey {
        account_id: account,
        domain: "Example.com".into(),
        selector: "s1".into(),
        algorithm: "rsa-sha256".into(),
        private_key: "v1.sealed".into(),
        dns_record: "v=DKIM1; k=rsa; p=AAAA".into(),
    };
    let created = store.create_dkim_key(&key, 5).await.unwrap();
    assert_eq!(created.domain, "example.com");
    assert!(created.enabled);
    assert!(matches!(
        store.create_dkim_key(&key, 6).await,
        Err(sluice_store::StoreError::Conflict(_))
    ));
    let other = sluice_store::NewDkimKey {
        selector: "s2".into(),
        ..key
    };
    store.create_dkim_key(&other, 7).await.unwrap();
    assert_eq!(store.list_dkim_keys(Some(account)).await.unwrap().len(), 2);
    assert!(
        store
            .list_dkim_keys(Some(account + 1))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.delete_dkim_key(created.id).await.unwrap());
    assert!(store.dkim_key(created.id).await.unwrap().is_none());
}

async fn provider_calls_are_rows_and_their_ids_find_the_message(backend: Backend) {
    let Some((_holder, store, account)) = store(backend).await else {
        return;
    };
    let ids = store
        .enqueue_messages(&[message(account, 1)], 1000)
        .await
        .unwrap();
    let claimed = store.claim_due_messages("w", 1000, 100, 1).await.unwrap();
    assert_eq!(claimed[0].source.as_str(), "smtp");
    assert_eq!(claimed[0].tags, Vec::<String>::new());
    let rcpts = &claimed[0].envelope.rcpt_to;
    let first = DeliveryReport::uniform("sendgrid", rcpts, Verdict::Transient, Some(503), "busy");
    let mut second = DeliveryReport::uniform("mailgun", rcpts, Verdict::Delivered, Some(200), "ok");
    second.provider_message_id = Some("mg-123@x.test".into());
    let record = AttemptRecord {
        report: second.clone(),
        calls: vec![
            sluice_store::ProviderAttempt {
                provider_id: Some(7),
                report: first,
            },
            sluice_store::ProviderAttempt {
                provider_id: Some(8),
                report: second,
            },
        ],
        events: vec![],
        ..delivered_attempt(ids[0], "w")
    };
    assert!(store.record_attempt(&record).await.unwrap());
    let attempts = store.attempts(ids[0]).await.unwrap();
    let rows: Vec<_> = attempts
        .iter()
        .map(|a| (a.provider.as_str(), a.verdict.as_str()))
        .collect();
    assert_eq!(
        rows,
        vec![("sendgrid", "transient"), ("mailgun", "delivered")]
    );
    let found = store
        .message_by_provider_message_id(8, "mg-123@x.test")
        .await
        .unwrap();
    assert_eq!(found, Some((ids[0], account)));
    // Another provider's id space is not searched.
    assert_eq!(
        store
            .message_by_provider_message_id(7, "mg-123@x.test")
            .await
            .unwrap(),
        None
    );
}

fn audit(account_id: Option<i64>, before_id: Option<i64>, limit: i64) -> sluice_store::AuditFilter {
    sluice_store::AuditFilter {
        account_id,
        before_id,
        limit,
        ..Default::default()
    }
}

/// Enqueues `message(account, n)` for each n, at `now`: their ids.
async fn enqueue_numbered(
    store: &Arc<dyn Store>,
    account: i64,
    numbers: &[usize],
    now: i64,
) -> Vec<i64> {
    let messages: Vec<NewMessage> = numbers.iter().map(|n| message(account, *n)).collect();
    store.enqueue_messages(&messages, now).await.unwrap()
}

/// A delivered attempt of message `id` by lease owner `owner`, at 1002.
fn delivered_attempt(id: i64, owner: &str) -> AttemptRecord {
    AttemptRecord {
        message_id: id,
        lease_owner: owner.into(),
        report: DeliveryReport::uniform(
            "smtp",
            &["r@x.test".to_string()],
            Verdict::Delivered,
            Some(250),
            "ok",
        ),
        calls: vec![],
        started_at: 1001,
        finished_at: 1002,
        new_status: MessageStatus::Delivered,
        pending_rcpt: vec![],
        next_attempt_at: 1002,
        last_error: None,
        events: vec![("delivered".into(), String::new())],
    }
}

/// The id of a message that was written (panics on a taken idempotency key).
fn new_id(fate: &sluice_store::Enqueued) -> i64 {
    match fate {
        sluice_store::Enqueued::New(id) => *id,
        other => panic!("not written: {other:?}"),
    }
}

fn message(account_id: i64, n: usize) -> NewMessage {
    NewMessage {
        account_id,
        source: Source::Smtp,
        envelope: Envelope {
            mail_from: "a@example.com".into(),
            rcpt_to: vec![format!("r{n}@x.test"), "s@x.test".into()],
            smtputf8: false,
            eight_bit: false,
        },
        body: sluice_core::MessageBody::Inline(
            format!("Subject: {n}\r\n\r\nbody {n}\r\n").into_bytes(),
        ),
        lease: None,
        tags: Vec::new(),
        max_attempts: None,
        sandbox: false,
        idempotency: None,
    }
}

async fn accounts_are_found_case_insensitively_and_unique(backend: Backend) {
    let Some((_holder, store, id)) = store(backend).await else {
        return;
    };
    let account = store
        .account_by_email("t@EXAMPLE.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.id, id);
    assert_eq!(account.allowed_domains, vec!["example.com"]);
    let again = store
        .create_account(
            NewAccount {
                name: "dup".into(),
                email: "t@example.com".into(),
                password_hash: "x".into(),
                allowed_domains: vec![],
            },
            2,
        )
        .await;
    assert!(matches!(again, Err(sluice_store::StoreError::Conflict(_))));
}

async fn group_commit_shares_transactions_and_keeps_every_message(backend: Backend) {
    let Some((_holder, store, account)) = store(backend).await else {
        return;
    };
    let (committer, task) = QueueCommitter::start(
        store.clone(),
        GroupCommitConfig {
            max_batch: 16,
            max_wait: Duration::from_millis(5),
        },
    );
    let mut joins = Vec::new();
    for n in 0..100 {
        let committer = committer.clone();
        joins.push(tokio::spawn(async move {
            committer
                .commit(message(account, n))
                .await
                .map(|(fate, _)| new_id(&fate))
        }));
    }
    let mut ids = Vec::new();
    for join in joins {
        ids.push(join.await.unwrap().unwrap());
    }
    drop(committer);
    task.await.unwrap();
    // Every writer got the id of its own message, though many shared one statement.
    for (n, id) in ids.iter().enumerate() {
        let body = store.message(*id).await.unwrap().unwrap().body;
        assert_eq!(body, message(account, n).body, "message {n} got id {id}");
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 100);
    let stored = store.message(ids[7]).await.unwrap().unwrap();
    assert_eq!(stored.status.as_str(), "queued");
    assert!(
        String::from_utf8(stored.body.as_inline().unwrap().to_vec())
            .unwrap()
            .starts_with("Subject: ")
    );
    assert_eq!(store.events(ids[7]).await.unwrap()[0].kind, "queued");
}

/// The group committer writes the accept path's messages and the worker's attempts in one
/// transaction; each writer still gets its own answer.
async fn new_messages_and_attempts_share_one_transaction(backend: Backend) {
    let Some((_holder, store, account)) = store(backend).await else {
        return;
    };
    let ids = enqueue_numbered(&store, account, &[1, 2], 1000).await;
    assert_eq!(
        store
            .claim_due_messages("w", 1000, 100, 2)
            .await
            .unwrap()
            .len(),
        2
    );
    let delivered = delivered_attempt;
    let (fates, applied) = store
        .write_queue(
            &[message(account, 3), message(account, 4)],
            &[delivered(ids[0], "w"), delivered(ids[1], "someone-else")],
            1003,
        )
        .await
        .unwrap();
    assert_eq!(applied, vec![true, false]);
    let new_ids: Vec<i64> = fates.iter().map(new_id).collect();
    assert_eq!(new_ids.len(), 2);
    for (n, id) in [(3, new_ids[0]), (4, new_ids[1])] {
        let stored = store.message(id).await.unwrap().unwrap();
        assert_eq!(
            (stored.status.as_str(), stored.body),
            ("queued", message(account, n).body)
        );
    }
    assert_eq!(
        store
            .message(ids[0])
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "delivered"
    );
    assert_eq!(
        store
            .message(ids[1])
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "sending"
    );

    // Through the committer, writers of both kinds at once, each answered as its kind.
    assert_eq!(
        store
            .claim_due_messages("w", 1004, 100, 2)
            .await
            .unwrap()
            .len(),
        2
    );
    let (committer, task) = QueueCommitter::start(
        store.clone(),
        GroupCommitConfig {
            max_batch: 16,
            max_wait: Duration::from_millis(20),
        },
    );
    let (first, second, recorded, lost) = tokio::join!(
        committer.commit(message(account, 5)),
        committer.commit(message(account, 6)),
        committer.record(delivered(new_ids[0], "w")),
        committer.record(delivered(new_ids[1], "someone-else")),
    );
    let ((first, handed_back), second) = (first.unwrap(), new_id(&second.unwrap().0));
    let first = new_id(&first);
    // The committed message comes back to its writer, so nothing needs a copy of it.
    assert_eq!(handed_back.body, message(account, 5).body);
    assert_eq!((recorded.unwrap(), lost.unwrap()), (true, false));
    assert_eq!(
        store.message(first).await.unwrap().unwrap().body,
        message(account, 5).body
    );
    assert_eq!(
        store.message(second).await.unwrap().unwrap().body,
        message(account, 6).body
    );
    assert_eq!(
        store
            .message(new_ids[0])
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "delivered"
    );
    drop(committer);
    task.await.unwrap();
}

async fn claim_leases_and_expired_leases_return(backend: Backend) {
    let Some((_holder, store, account)) = store(backend).await else {
        return;
    };
    let ids = store
        .enqueue_messages(&[message(account, 1), message(account, 2)], 1000)
        .await
        .unwrap();
    // Not due before it was queued.
    assert!(
        store
            .claim_due_messages("w1", 999, 100, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = store.claim_due_messages("w1", 1000, 100, 1).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, ids[0]);
    assert_eq!(claimed[0].envelope.rcpt_to, vec!["r1@x.test", "s@x.test"]);
    let second = store.claim_due_messages("w2", 1001, 100, 10).await.unwrap();
    assert_eq!(
        second.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![ids[1]]
    );
    // w1's lease runs to 1100; at 1101 another worker takes the message over. (On
    // PostgreSQL the lease is measured by the database's clock: a node whose clock says
    // 1101, or three hours later, does not take it before 100 ms really passed.)
    assert!(
        store
            .claim_due_messages("w3", 1100, 100, 10)
            .await
            .unwrap()
            .is_empty()
    );
    if let Backend::Postgres = backend {
        let jumped = 1101 + 3 * 3_600_000;
        assert!(
            store
                .claim_due_messages("w3", jumped, 100, 10)
                .await
                .unwrap()
                .is_empty(),
            "a node's clock jump does not expire another's lease"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let taken = store.claim_due_messages("w3", 1101, 100, 10).await.unwrap();
    let expected = match backend {
        Backend::Sqlite => vec![ids[0]],
        // 150 ms really passed: w2's lease ran out by the database's clock too.
        Backend::Postgres => vec![ids[0], ids[1]],
    };
    let mut taken: Vec<i64> = taken.iter().map(|m| m.id).collect();
    taken.sort();
    assert_eq!(taken, expected);

    // w1 lost its lease: its result is not applied.
    let report = DeliveryReport::uniform(
        "smtp",
        &claimed[0].envelope.rcpt_to,
        Verdict::Delivered,
        Some(250),
        "ok",
    );
    let mut record = AttemptRecord {
        message_id: ids[0],
        lease_owner: "w1".into(),
        report,
        calls: vec![],
        started_at: 1102,
        finished_at: 1103,
        new_status: MessageStatus::Delivered,
        pending_rcpt: vec![],
        next_attempt_at: 1103,
        last_error: None,
        events: vec![("delivered".into(), String::new())],
    };
    assert!(!store.record_attempt(&record).await.unwrap());
    assert_eq!(
        store
            .message(ids[0])
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "sending"
    );
    record.lease_owner = "w3".into();
    assert!(store.record_attempt(&record).await.unwrap());
    let done = store.message(ids[0]).await.unwrap().unwrap();
    assert_eq!((done.status.as_str(), done.attempts), ("delivered", 1));
    assert_eq!(store.attempts(ids[0]).await.unwrap()[0].code, Some(250));
    let kinds: Vec<_> = store
        .events(ids[0])
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, vec!["queued", "delivered"]);
}

async fn deferred_messages_wait_for_their_time_and_keep_only_pending_recipients(backend: Backend) {
    let Some((_holder, store, account)) = store(backend).await else {
        return;
    };
    let id = store
        .enqueue_messages(&[message(account, 1)], 0)
        .await
        .unwrap()[0];
    let claimed = store.claim_due_messages("w", 0, 1000, 10).await.unwrap();
    let mut report = DeliveryReport::uniform(
        "smtp",
        &claimed[0].envelope.rcpt_to,
        Verdict::Delivered,
        Some(250),
        "ok",
    );
    report.recipients[1].verdict = Verdict::Transient;
    store
        .record_attempt(&AttemptRecord {
            message_id: id,
            lease_owner: "w".into(),
            pending_rcpt: report.transient_recipients(),
            calls: vec![],
            report,
            started_at: 1,
            finished_at: 2,
            new_status: MessageStatus::Deferred,
            next_attempt_at: 500,
            last_error: Some("451 try later".into()),
            events: vec![],
        })
        .await
        .unwrap();
    assert!(
        store
            .claim_due_messages("w", 499, 1000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store.claim_due_messages("w", 500, 1000, 10).await.unwrap();
    assert_eq!(again[0].envelope.rcpt_to, vec!["s@x.test"]);
    assert_eq!(again[0].attempts, 1);
    match backend {
        // A restart of a single-node store hands the leased message back at once.
        Backend::Sqlite => {
            assert_eq!(store.release_all_leases(600).await.unwrap(), 1);
            assert_eq!(
                store
                    .claim_due_messages("w2", 600, 1000, 10)
                    .await
                    .unwrap()
                    .len(),
                1
            );
        }
        // Shared by nodes: a starting node must not take leases others hold.
        Backend::Postgres => {
            assert_eq!(store.release_all_leases(600).await.unwrap(), 0);
            assert!(
                store
                    .claim_due_messages("w2", 600, 1000, 10)
                    .await
                    .unwrap()
                    .is_empty()
            );
            tokio::time::sleep(Duration::from_millis(1100)).await;
            assert_eq!(
                store
                    .claim_due_messages("w2", 1501, 1000, 10)
                    .await
                    .unwrap()
                    .len(),
                1
            );
        }
    }
}

async fn concurrent_claimers_never_share_a_message(backend: Backend) {
    let Some((_holder, store, account)) = store(backend).await else {
        return;
    };
    let batch: Vec<NewMessage> = (0..300).map(|n| message(account, n)).collect();
    let ids = store.enqueue_messages(&batch, 0).await.unwrap();
    let mut claimers = Vec::new();
    for worker in 0..4 {
        let store = store.clone();
        claimers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let claimed = store
                    .claim_due_messages(&format!("w{worker}"), 10, 60_000, 7)
                    .await
                    .unwrap();
                if claimed.is_empty() {
                    return mine;
                }
                mine.extend(claimed.into_iter().map(|m| m.id));
            }
        }));
    }
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(total, all.len(), "a message was claimed twice");
    assert_eq!(all, ids);
}

/// Sandbox mode (migration 0018): off for a new account; on and off by update only, and an
/// update of other fields (or a status change) leaves it as it was; every read shows it.
async fn an_account_is_not_sandboxed_until_told_and_stays_so_across_other_changes(
    backend: Backend,
) {
    let Some((_holder, store, account)) = store(backend).await else {
        return;
    };
    assert!(!store.account(account).await.unwrap().unwrap().sandbox);
    let on = AccountUpdate {
        sandbox: Some(true),
        ..Default::default()
    };
    let updated = store
        .update_account(account, &on, 2)
        .await
        .unwrap()
        .unwrap();
    assert!(updated.sandbox);
    let renamed = AccountUpdate {
        name: Some("renamed".into()),
        monthly_limit: Some(7),
        ..Default::default()
    };
    let updated = store
        .update_account(account, &renamed, 3)
        .await
        .unwrap()
        .unwrap();
    assert!(updated.sandbox, "an update without sandbox keeps it");
    store
        .set_account_status(account, sluice_core::AccountStatus::Suspended, 4)
        .await
        .unwrap()
        .unwrap();
    store
        .set_account_status(account, sluice_core::AccountStatus::Active, 5)
        .await
        .unwrap()
        .unwrap();
    assert!(store.account(account).await.unwrap().unwrap().sandbox);
    assert!(
        store
            .account_by_email("t@example.com")
            .await
            .unwrap()
            .unwrap()
            .sandbox
    );
    assert!(store.list_accounts(0, 10).await.unwrap()[0].sandbox);
    let off = AccountUpdate {
        sandbox: Some(false),
        ..Default::default()
    };
    let updated = store
        .update_account(account, &off, 6)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((updated.sandbox, updated.name.as_str()), (false, "renamed"));
    assert!(!store.account(account).await.unwrap().unwrap().sandbox);
}

async fn management_records_round_trip(backend: Backend) {
    let Some((_holder, store, account)) = store(backend).await else {
        return;
    };
    // Accounts: update what is given, keep the rest; deleted ones leave the list.
    let updated = store
        .update_account(
            account,
            &AccountUpdate {
                monthly_limit: Some(5),
                allowed_domains: Some(vec!["New.Example".into()]),
                ..Default::default()
            },
            10,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!((updated.monthly_limit, updated.name.as_str()), (5, "t"));
    assert_eq!(updated.allowed_domains, vec!["new.example"]);
    assert_eq!(store.list_accounts(0, 10).await.unwrap().len(), 1);
    let deleted = AccountUpdate {
        status: Some("deleted".into()),
        ..Default::default()
    };
    store
        .update_account(account, &deleted, 11)
        .await
        .unwrap()
        .unwrap();
    assert!(store.list_accounts(0, 10).await.unwrap().is_empty());
    assert!(
        store
            .update_account(account, &deleted, 12)
            .await
            .unwrap()
            .is_none()
    );

    // API keys: found by hash, revoked once, only by their account.
    let key = store
        .add_api_key(account, "sk_abc", "hash1", 1)
        .await
        .unwrap();
    assert_eq!(
        store.api_key_by_hash("hash1").await.unwrap().unwrap().id,
        key
    );
    assert!(!store.revoke_api_key(account + 1, key, 2).await.unwrap());
    assert!(store.revoke_api_key(account, key, 2).await.unwrap());
    assert!(!store.revoke_api_key(account, key, 3).await.unwrap());
    assert_eq!(
        store.list_api_keys(account).await.unwrap()[0].revoked_at,
        Some(2)
    );

    // Users, login state and refresh sessions.
    let user = store
        .create_user(
            NewUser {
                account_id: None,
                email: "Admin@X.test".into(),
                password_hash: "h".into(),
                role: "admin".into(),
            },
            1,
        )
        .await
        .unwrap();
    let state = sluice_core::LoginState {
        failed_logins: 2,
        first_failed_at: Some(5),
        locked_until: None,
    };
    store.set_login_state(user.id, &state).await.unwrap();
    let again = store.user_by_email("admin@x.test").await.unwrap().unwrap();
    assert_eq!(
        (again.failed_logins, again.first_failed_at, again.account_id),
        (2, Some(5), None)
    );
    let session = store
        .create_session(user.id, SessionKind::Refresh, "rt1", 100, 1)
        .await
        .unwrap();
    assert_eq!(
        store.session_by_hash("rt1").await.unwrap().unwrap().id,
        session
    );
    assert!(store.revoke_session(session, 2).await.unwrap());
    assert!(
        !store.revoke_session(session, 3).await.unwrap(),
        "revoked twice"
    );
    let other = store
        .create_session(user.id, SessionKind::Panel, "rt2", 100, 1)
        .await
        .unwrap();
    assert_eq!(
        store
            .session_by_hash("rt2")
            .await
            .unwrap()
            .unwrap()
            .kind
            .as_str(),
        "panel"
    );
    assert_eq!(store.revoke_user_sessions(user.id, 4).await.unwrap(), 1);
    assert!(!store.revoke_session(other, 5).await.unwrap());
    // Revoking one kind leaves the other.
    store
        .create_session(user.id, SessionKind::Panel, "p3", 100, 6)
        .await
        .unwrap();
    store
        .create_session(user.id, SessionKind::Refresh, "r3", 100, 6)
        .await
        .unwrap();
    assert_eq!(
        store
            .revoke_sessions_of_kind(SessionKind::Panel, 7)
            .await
            .unwrap(),
        1
    );
    assert!(
        store
            .session_by_hash("p3")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    assert!(
        store
            .session_by_hash("r3")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );
    // Settings: absent, set, replaced.
    assert_eq!(store.setting("panel.secret").await.unwrap(), None);
    store.put_setting("panel.secret", "a", 1).await.unwrap();
    store.put_setting("panel.secret", "b", 2).await.unwrap();
    assert_eq!(
        store.setting("panel.secret").await.unwrap().as_deref(),
        Some("b")
    );
    let update = sluice_store::UserUpdate {
        status: Some("disabled".into()),
        ..Default::default()
    };
    let disabled = store
        .update_user(user.id, &update, 6)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (disabled.status.as_str(), disabled.role.as_str()),
        ("disabled", "admin")
    );
    assert_eq!(store.list_users(None).await.unwrap().len(), 1);
    assert!(store.list_users(Some(account)).await.unwrap().is_empty());

    // Suppressions: per account, case-insensitive, renewable, expiring.
    let entry = store
        .add_suppression(
            account,
            "Gone@Dest.test",
            SuppressionReason::HardBounce,
            "api",
            None,
            5,
        )
        .await
        .unwrap();
    let both = ["gone@dest.test".to_string(), "ok@dest.test".to_string()];
    assert_eq!(
        store.suppressed(account, &both, 6).await.unwrap(),
        vec!["gone@dest.test"]
    );
    assert!(
        store
            .suppressed(account + 1, &both, 6)
            .await
            .unwrap()
            .is_empty()
    );
    store
        .add_suppression(
            account,
            "gone@dest.test",
            SuppressionReason::Complaint,
            "api",
            Some(10),
            7,
        )
        .await
        .unwrap();
    assert_eq!(
        store.list_suppressions(account).await.unwrap().len(),
        1,
        "renewed, not doubled"
    );
    assert!(
        store
            .suppressed(account, &both, 11)
            .await
            .unwrap()
            .is_empty(),
        "expired"
    );
    assert!(
        !store
            .delete_suppression(account + 1, entry.id)
            .await
            .unwrap()
    );
    assert!(store.delete_suppression(account, entry.id).await.unwrap());

    // Webhook signatures: once each until they expire.
    assert!(store.remember_signature("sig-a", 100, 10).await.unwrap());
    assert!(!store.remember_signature("sig-a", 100, 20).await.unwrap());
    assert!(
        store.remember_signature("sig-a", 300, 101).await.unwrap(),
        "expired: forgotten"
    );

    // Providers and the rules that use them.
    let provider = store
        .create_provider(
            &sluice_store::NewProvider {
                account_id: Some(account),
                name: "mx".into(),
                provider_type: sluice_core::ProviderType::Smtp,
                config: serde_json::json!({ "host": "mx.test" }),
                secrets: "v1.sealed".into(),
                enabled: true,
                priority: 5,
            },
            1,
        )
        .await
        .unwrap();
    assert!(provider.enabled);
    assert_eq!(provider.config["host"], "mx.test");
    let system = store
        .create_provider(
            &sluice_store::NewProvider {
                account_id: None,
                name: "log".into(),
                provider_type: sluice_core::ProviderType::Log,
                config: serde_json::json!({}),
                secrets: "v1.x".into(),
                enabled: false,
                priority: 1,
            },
            1,
        )
        .await
        .unwrap();
    assert_eq!(store.list_providers(Some(account)).await.unwrap().len(), 1);
    let all: Vec<i64> = store
        .list_providers(None)
        .await
        .unwrap()
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(all, vec![system.id, provider.id], "by priority");
    let rule = store
        .create_rule(
            &sluice_store::NewRule {
                account_id: account,
                name: "r".into(),
                priority: 1,
                conditions: serde_json::json!({ "source": "smtp" }),
                provider_id: provider.id,
                fallbacks: vec![system.id],
                split: vec![sluice_core::router::WeightedProvider {
                    provider_id: system.id,
                    weight: 3,
                }],
                enabled: true,
            },
            2,
        )
        .await
        .unwrap();
    let stored = store.rule(rule.id).await.unwrap().unwrap();
    assert_eq!(stored.fallbacks, vec![system.id]);
    assert_eq!(stored.split, rule.split);
    assert_eq!(stored.split[0].weight, 3);
    let routable: Vec<i64> = store
        .routing_providers(account)
        .await
        .unwrap()
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(
        routable,
        vec![system.id, provider.id],
        "own and system-wide"
    );
    assert!(store.routing_providers(account + 1).await.unwrap().len() == 1);
    assert!(matches!(
        store.delete_provider(provider.id).await,
        Err(sluice_store::StoreError::Conflict(_))
    ));
    assert!(store.delete_rule(rule.id).await.unwrap());
    assert!(store.delete_provider(provider.id).await.unwrap());
    assert!(store.provider(provider.id).await.unwrap().is_none());

    for (n, acct) in [(1, Some(account)), (2, None), (3, Some(account))] {
        let entry = AuditEntry {
            account_id: acct,
            actor: "cli".into(),
            action: "update".into(),
            target_type: "account".into(),
            target_id: n.to_string(),
            changes: serde_json::json!({ "n": n }),
            source_ip: None,
        };
        store.add_audit(&entry, n).await.unwrap();
    }
    let mine = store
        .list_audit(&audit(Some(account), None, 10))
        .await
        .unwrap();
    assert_eq!(
        mine.iter()
            .map(|a| a.target_id.as_str())
            .collect::<Vec<_>>(),
        vec!["3", "1"]
    );
    assert_eq!(
        store
            .list_audit(&audit(None, None, 10))
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        store
            .list_audit(&audit(None, Some(mine[0].id), 10))
            .await
            .unwrap()
            .len(),
        2
    );

    let by_action = sluice_store::AuditFilter {
        action: Some("update".into()),
        target_type: Some("account".into()),
        actor: Some("cli".into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(store.list_audit(&by_action).await.unwrap().len(), 3);
    let other = sluice_store::AuditFilter {
        action: Some("delete".into()),
        limit: 10,
        ..Default::default()
    };
    assert!(store.list_audit(&other).await.unwrap().is_empty());

    // Messages by filter, newest first, with a cursor.
    let ids = store
        .enqueue_messages(
            &[
                message(account, 1),
                message(account, 2),
                message(account, 3),
            ],
            50,
        )
        .await
        .unwrap();
    let all = MessageFilter {
        account_id: Some(account),
        limit: 10,
        ..Default::default()
    };
    let listed = store.list_messages(&all).await.unwrap();
    assert_eq!(
        listed.iter().map(|m| m.id).collect::<Vec<_>>(),
        ids.iter().rev().copied().collect::<Vec<_>>()
    );
    let to = MessageFilter {
        to: Some("r2@x.test".into()),
        ..all.clone()
    };
    assert_eq!(store.list_messages(&to).await.unwrap()[0].id, ids[1]);
    let wildcard = MessageFilter {
        to: Some("r_@x.test".into()),
        ..all.clone()
    };
    assert!(
        store.list_messages(&wildcard).await.unwrap().is_empty(),
        "LIKE wildcards are escaped"
    );
    let page = MessageFilter {
        before_id: Some(ids[2]),
        limit: 1,
        ..all.clone()
    };
    assert_eq!(store.list_messages(&page).await.unwrap()[0].id, ids[1]);
    let other = MessageFilter {
        account_id: Some(account + 1),
        ..all.clone()
    };
    assert!(store.list_messages(&other).await.unwrap().is_empty());
    let delivered = MessageFilter {
        status: Some(MessageStatus::Delivered),
        ..all
    };
    assert!(store.list_messages(&delivered).await.unwrap().is_empty());
}

/// SQLite: committed pages reach the database file within a moment, by the background
/// checkpointer, though far fewer than the writer's own checkpoint threshold were written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_wal_is_copied_into_the_database_in_the_background() {
    let Some((holder, store, account)) = store(Backend::Sqlite).await else {
        return;
    };
    let Holder::Dir(dir) = &holder else {
        unreachable!("a SQLite store lives in a directory")
    };
    let db = dir.path().join("t.db");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = std::fs::metadata(&db).unwrap().len();
    let messages: Vec<NewMessage> = (0..50)
        .map(|n| NewMessage {
            body: sluice_core::MessageBody::Inline(vec![b'x'; 10_000]),
            ..message(account, n)
        })
        .collect();
    store.enqueue_messages(&messages, 1000).await.unwrap();
    let grown = async {
        loop {
            if std::fs::metadata(&db).unwrap().len() >= before + 400_000 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), grown)
        .await
        .expect("the 500 KB of new messages reach the database file, not only the WAL");
}

async fn kinds_of(store: &Arc<dyn Store>, id: i64) -> Vec<String> {
    store
        .events(id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

async fn account_status_holds_releases_and_cancels_its_mail_and_ends_its_sessions(
    backend: Backend,
) {
    use sluice_core::AccountStatus;
    let Some((_holder, store, account)) = store(backend).await else {
        return;
    };
    let other = store
        .create_account(
            NewAccount {
                name: "other".into(),
                email: "other@other.test".into(),
                password_hash: "x".into(),
                allowed_domains: vec!["other.test".into()],
            },
            1,
        )
        .await
        .unwrap()
        .id;
    let user = store
        .create_user(
            NewUser {
                account_id: Some(account),
                email: "member@example.com".into(),
                password_hash: "x".into(),
                role: "member".into(),
            },
            1,
        )
        .await
        .unwrap();
    store
        .create_session(user.id, SessionKind::Refresh, "refresh-hash", 1_000_000, 1)
        .await
        .unwrap();
    store
        .create_session(user.id, SessionKind::Panel, "panel-hash", 1_000_000, 1)
        .await
        .unwrap();
    // Queued, deferred, delivered, in flight (leased); and another account's queued one.
    let ids = enqueue_numbered(&store, account, &[1, 2, 3, 4], 0).await;
    let (queued, deferred, delivered, in_flight) = (ids[0], ids[1], ids[2], ids[3]);
    let theirs = enqueue_numbered(&store, other, &[5], 0).await[0];
    let claimed = store.claim_due_messages("w", 0, 100_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 5);
    let mut deferral = delivered_attempt(deferred, "w");
    deferral.new_status = MessageStatus::Deferred;
    deferral.next_attempt_at = 0;
    deferral.events = vec![];
    store.record_attempt(&deferral).await.unwrap();
    store
        .record_attempt(&delivered_attempt(delivered, "w"))
        .await
        .unwrap();
    // Back to the queue, as if never claimed (their leases are this test's to drop).
    for id in [queued, theirs] {
        let mut back = delivered_attempt(id, "w");
        back.new_status = MessageStatus::Queued;
        back.next_attempt_at = 0;
        back.events = vec![];
        store.record_attempt(&back).await.unwrap();
    }

    let change = store
        .set_account_status(account, AccountStatus::Suspended, 2000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(change.account.state(), AccountStatus::Suspended);
    assert_eq!(change.messages_changed, 2);
    assert_eq!(change.sessions_revoked, 2);
    assert_eq!(
        statuses_of(&store, &[queued, deferred, delivered, in_flight, theirs]).await,
        ["held", "held", "delivered", "sending", "queued"]
    );
    assert!(kinds_of(&store, queued).await.contains(&"held".to_string()));
    for hash in ["refresh-hash", "panel-hash"] {
        let session = store.session_by_hash(hash).await.unwrap().unwrap();
        assert_eq!(session.revoked_at, Some(2000), "{hash}");
    }
    // Workers never claim held mail: only the other account's message is due.
    let due = store
        .claim_due_messages("w2", 10_000, 1000, 10)
        .await
        .unwrap();
    assert_eq!(due.iter().map(|m| m.id).collect::<Vec<_>>(), [theirs]);
    // Suspending again changes nothing more.
    let again = store
        .set_account_status(account, AccountStatus::Suspended, 2500)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.messages_changed, again.sessions_revoked), (0, 0));

    let change = store
        .set_account_status(account, AccountStatus::Active, 3000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((change.messages_changed, change.sessions_revoked), (2, 0));
    assert_eq!(
        statuses_of(&store, &[queued, deferred]).await,
        ["queued", "queued"]
    );
    assert!(
        kinds_of(&store, deferred)
            .await
            .contains(&"hold_released".to_string())
    );
    let record = store.message(queued).await.unwrap().unwrap();
    assert_eq!(record.next_attempt_at, 3000, "due at once");
    // Reactivation does not bring revoked sessions back.
    let session = store.session_by_hash("panel-hash").await.unwrap().unwrap();
    assert!(session.revoked_at.is_some());

    let held_again = store
        .set_account_status(account, AccountStatus::Suspended, 3500)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(held_again.messages_changed, 2);
    let change = store
        .set_account_status(account, AccountStatus::Deleted, 4000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(change.messages_changed, 2, "held mail is cancelled too");
    assert_eq!(
        statuses_of(&store, &[queued, deferred, delivered, theirs]).await,
        ["cancelled", "cancelled", "delivered", "sending"]
    );
    assert!(
        kinds_of(&store, queued)
            .await
            .contains(&"account_deleted".to_string())
    );
    // The body stays for admins until retention.
    assert!(
        !store
            .message(queued)
            .await
            .unwrap()
            .unwrap()
            .body
            .is_empty()
    );
    // A deletion is final.
    assert!(
        store
            .set_account_status(account, AccountStatus::Active, 5000)
            .await
            .unwrap()
            .is_none()
    );
    let account = store.account(account).await.unwrap().unwrap();
    assert_eq!(account.state(), AccountStatus::Deleted);
}

async fn page_size_of(url: &str) -> i64 {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
    sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

/// A database Sluice creates has small pages (each commit writes its changed pages whole:
/// issue N's write amplification); one made before keeps its own size and works as before.
#[tokio::test]
async fn sqlite_pages_are_small_in_a_new_database_and_kept_in_an_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let new = format!("sqlite://{}", dir.path().join("new.db").display());
    drop(
        sluice_store::open(&new, &OpenOptions::default())
            .await
            .unwrap(),
    );
    assert_eq!(page_size_of(&new).await, 1024);

    // As an earlier Sluice left it: 4 KiB pages, WAL, a table already made.
    let old = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&old).await.unwrap();
        for sql in [
            "PRAGMA page_size = 4096",
            "PRAGMA journal_mode = WAL",
            "CREATE TABLE before_upgrade (x INTEGER)",
        ] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
        conn.close().await.unwrap();
    }
    let store = sluice_store::open(&old, &OpenOptions::default())
        .await
        .unwrap();
    let account = create_account(store.as_ref()).await;
    let ids = store
        .enqueue_messages(&[message(account, 1)], 2)
        .await
        .unwrap();
    assert_eq!(store.message(ids[0]).await.unwrap().unwrap().id, ids[0]);
    drop(store);
    assert_eq!(page_size_of(&old).await, 4096);
}
