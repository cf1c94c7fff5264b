//! The capture sandbox's store, on SQLite (FTS5) and on PostgreSQL (tsvector,
//! `SLUICE_TEST_DATABASE_URL`): the same search terms find the same mail on both; one
//! account never finds another's; indexing twice makes one `message.captured` event; read
//! marks; bulk deletes only the caller's; retention by count and by age.

use std::sync::Arc;

use sluice_core::capture_query::CaptureQuery;
use sluice_core::{
    DeliveryReport, Envelope, MessageBody, MessageId, MessageStatus, Source, Verdict,
};
use sluice_store::{
    AccountUpdate, AttemptRecord, CaptureRetention, CapturedMail, CapturedSelection, MessageFilter,
    NewAccount, NewMessage, OpenOptions, Store,
};
use sluice_testkit::postgres::TempDatabase;

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

#[allow(dead_code)]
enum Holder {
    Dir(tempfile::TempDir),
    Pg(TempDatabase),
}

async fn open(backend: Backend) -> Option<(Holder, Arc<dyn Store>)> {
    let (holder, url) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
            (Holder::Dir(dir), url)
        }
        Backend::Postgres => {
            let db = tokio::task::spawn_blocking(TempDatabase::create)
                .await
                .unwrap()?;
            let url = db.url.clone();
            (Holder::Pg(db), url)
        }
    };
    let store: Arc<dyn Store> = sluice_store::open(&url, &OpenOptions::default())
        .await
        .unwrap();
    Some((holder, store))
}

macro_rules! both_backends {
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

both_backends!(
    search_terms_find_the_same_mail_and_never_another_accounts,
    indexing_twice_makes_one_event_and_deletes_take_only_the_callers,
    retention_keeps_the_newest_and_drops_the_old,
    tags_set_by_hand_are_what_search_and_the_message_show,
);

const DAY: i64 = 86_400_000;
/// 2026-12-04T00:00:00Z.
const DEC_4: i64 = 1_796_342_400_000;

async fn account(store: &Arc<dyn Store>, email: &str) -> i64 {
    store
        .create_account(
            NewAccount {
                name: email.into(),
                email: email.into(),
                password_hash: "x".into(),
                allowed_domains: vec![],
            },
            1,
        )
        .await
        .unwrap()
        .id
}

/// A message of `account` captured at `at` (accepted leased, then recorded captured).
async fn captured(store: &Arc<dyn Store>, account: i64, at: i64) -> MessageId {
    let rcpt = vec!["dev@example.org".to_string()];
    let ids = store
        .enqueue_messages(
            &[NewMessage {
                account_id: account,
                source: Source::Smtp,
                envelope: Envelope {
                    mail_from: "app@example.com".into(),
                    rcpt_to: rcpt.clone(),
                    smtputf8: false,
                    eight_bit: false,
                },
                body: MessageBody::Inline(b"Subject: x\r\n\r\nbody\r\n".to_vec()),
                lease: Some(("test".into(), at + DAY)),
                tags: vec![],
                max_attempts: None,
                sandbox: false,
                idempotency: None,
            }],
            at,
        )
        .await
        .unwrap();
    let mut report =
        DeliveryReport::uniform("capture", &rcpt, Verdict::Delivered, None, "captured");
    report.captured = true;
    let recorded = store
        .record_attempt(&AttemptRecord {
            message_id: ids[0],
            lease_owner: "test".into(),
            report,
            calls: vec![],
            started_at: at,
            finished_at: at,
            new_status: MessageStatus::Captured,
            pending_rcpt: vec![],
            next_attempt_at: at,
            last_error: None,
            events: vec![("captured".into(), "provider=capture".into())],
        })
        .await
        .unwrap();
    assert!(recorded);
    ids[0]
}

#[allow(clippy::too_many_arguments)]
fn row(
    id: MessageId,
    account: i64,
    subject: &str,
    from: &str,
    to: &str,
    body: &str,
    tags: &[&str],
    attachments: bool,
) -> CapturedMail {
    CapturedMail {
        message_id: id,
        account_id: account,
        subject: subject.into(),
        from_text: from.into(),
        to_text: to.into(),
        cc_text: String::new(),
        body_text: body.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        // `captured` makes messages without sender tags.
        sender_tags: vec![],
        has_attachments: attachments,
        event_detail: format!("{{\"id\":{id}}}"),
    }
}

async fn search(store: &Arc<dyn Store>, account: Option<i64>, q: &str) -> Vec<MessageId> {
    let filter = MessageFilter {
        account_id: account,
        status: Some(MessageStatus::Captured),
        limit: 50,
        query: Some(CaptureQuery::parse(q).unwrap()),
        ..Default::default()
    };
    let mut ids: Vec<MessageId> = store
        .list_messages(&filter)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    ids.sort();
    ids
}

async fn search_terms_find_the_same_mail_and_never_another_accounts(backend: Backend) {
    let Some((_holder, store)) = open(backend).await else {
        return;
    };
    let a = account(&store, "a@a.test").await;
    let b = account(&store, "b@b.test").await;
    let invoice = captured(&store, a, DEC_4 - DAY).await;
    let report = captured(&store, a, DEC_4).await;
    let greeting = captured(&store, a, DEC_4 + DAY).await;
    let b_invoice = captured(&store, b, DEC_4).await;

    let waiting = store.unindexed_captures(0, 10).await.unwrap();
    assert_eq!(waiting.len(), 4);
    assert_eq!(waiting[0].id, invoice);
    assert_eq!(waiting[0].rcpt_to, ["dev@example.org"]);

    let rows = [
        row(
            invoice,
            a,
            "Your invoice 2026-117",
            "Billing <billing@shop.example>",
            "dev+signup@example.org",
            "Total due: 42 EUR. Thanks!",
            &["signup", "billing"],
            true,
        ),
        row(
            report,
            a,
            "Weekly report",
            "Reports <reports@example.com>",
            "ops@example.org",
            "Nothing to see",
            &[],
            false,
        ),
        row(
            greeting,
            a,
            "Grüße aus Köln",
            "Anna <anna@example.de>",
            "dev@example.org",
            "Hallo zusammen, schöne Grüße",
            &["welcome"],
            false,
        ),
        row(
            b_invoice,
            b,
            "Your invoice 2026-118",
            "Billing <billing@shop.example>",
            "b@example.org",
            "Total due: 42 EUR.",
            &["signup"],
            true,
        ),
    ];
    assert_eq!(store.index_captures(&rows, DEC_4).await.unwrap(), 4);
    assert!(store.unindexed_captures(0, 10).await.unwrap().is_empty());

    let a_only = Some(a);
    for (q, want) in [
        ("invoice", vec![invoice]),
        ("invo", vec![invoice]),
        ("INVOICE 42", vec![invoice]),
        ("eur thanks", vec![invoice]),
        ("grüße", vec![greeting]),
        ("köln", vec![greeting]),
        ("from:billing@shop", vec![invoice]),
        ("from:ANNA", vec![greeting]),
        ("to:ops@", vec![report]),
        ("subject:\"weekly report\"", vec![report]),
        ("tag:signup", vec![invoice]),
        ("tag:welcome", vec![greeting]),
        ("has:attachment", vec![invoice]),
        ("after:2026-12-04", vec![report, greeting]),
        ("before:2026-12-04", vec![invoice]),
        ("after:2026-12-04 before:2026-12-05", vec![report]),
        ("is:unread", vec![invoice, report, greeting]),
        ("nothing-like-this", vec![]),
        ("invoice tag:welcome", vec![]),
    ] {
        assert_eq!(search(&store, a_only, q).await, want, "{backend:?}: {q}");
    }
    // Another account's mail is never found, whatever the terms; an admin finds both.
    assert_eq!(search(&store, Some(b), "invoice").await, vec![b_invoice]);
    assert_eq!(
        search(&store, Some(b), "weekly").await,
        Vec::<MessageId>::new()
    );
    assert_eq!(
        search(&store, None, "invoice").await,
        vec![invoice, b_invoice]
    );

    // Read marks: is:read / is:unread, and the list's `read`.
    assert!(store.set_message_read(report, true, DEC_4).await.unwrap());
    assert_eq!(search(&store, a_only, "is:read").await, vec![report]);
    assert_eq!(
        search(&store, a_only, "is:unread").await,
        vec![invoice, greeting]
    );
    assert!(store.set_message_read(report, false, DEC_4).await.unwrap());
    assert_eq!(
        search(&store, a_only, "is:read").await,
        Vec::<MessageId>::new()
    );
    assert!(!store.set_message_read(999_999, true, DEC_4).await.unwrap());

    // The list carries what the inbox shows.
    let list = store
        .list_messages(&MessageFilter {
            account_id: a_only,
            status: Some(MessageStatus::Captured),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let first = list.iter().find(|m| m.id == invoice).unwrap();
    assert_eq!(first.subject.as_deref(), Some("Your invoice 2026-117"));
    assert!(first.has_attachments);
    assert_eq!(first.tags, ["signup", "billing"]);
    assert!(!first.read);
}

async fn indexing_twice_makes_one_event_and_deletes_take_only_the_callers(backend: Backend) {
    let Some((_holder, store)) = open(backend).await else {
        return;
    };
    let a = account(&store, "a@a.test").await;
    let b = account(&store, "b@b.test").await;
    let one = captured(&store, a, DEC_4).await;
    let two = captured(&store, a, DEC_4).await;
    let three = captured(&store, a, DEC_4).await;
    let theirs = captured(&store, b, DEC_4).await;
    let rows = [
        row(one, a, "one", "x", "y", "alpha", &[], false),
        row(two, a, "two", "x", "y", "alpha", &[], false),
    ];
    assert_eq!(store.index_captures(&rows, DEC_4).await.unwrap(), 2);
    // A second node (or a retry) indexing the same message writes nothing new.
    assert_eq!(store.index_captures(&rows[..1], DEC_4).await.unwrap(), 0);
    let events = store.events(one).await.unwrap();
    let captured_events: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "message.captured")
        .collect();
    assert_eq!(captured_events.len(), 1);
    assert_eq!(captured_events[0].detail, format!("{{\"id\":{one}}}"));

    // A selection with another account's id deletes only the caller's.
    let went = store
        .delete_captured(Some(a), &CapturedSelection::Ids(vec![one, theirs]))
        .await
        .unwrap();
    assert_eq!(went, 1);
    assert!(store.message(one).await.unwrap().is_none());
    assert!(store.message(theirs).await.unwrap().is_some());
    // The index row went with it: search no longer finds it.
    assert_eq!(search(&store, Some(a), "alpha").await, vec![two]);

    // All of A's: B's stays.
    let went = store
        .delete_captured(Some(a), &CapturedSelection::All)
        .await
        .unwrap();
    assert_eq!(went, 2);
    assert!(store.message(three).await.unwrap().is_none());
    assert!(store.message(theirs).await.unwrap().is_some());
    assert_eq!(
        search(&store, Some(a), "alpha").await,
        Vec::<MessageId>::new()
    );
}

async fn retention_keeps_the_newest_and_drops_the_old(backend: Backend) {
    let Some((_holder, store)) = open(backend).await else {
        return;
    };
    let a = account(&store, "a@a.test").await;
    let b = account(&store, "b@b.test").await;
    let mut a_ids = Vec::new();
    for n in 0..5 {
        a_ids.push(captured(&store, a, DEC_4 + n).await);
    }
    let b_old = captured(&store, b, DEC_4 - 40 * DAY).await;
    let b_new = captured(&store, b, DEC_4).await;
    // A keeps 2 (its own setting); B the server's default: 30 days.
    store
        .update_account(
            a,
            &AccountUpdate {
                capture_retention_count: Some(Some(2)),
                ..Default::default()
            },
            DEC_4,
        )
        .await
        .unwrap()
        .unwrap();
    let defaults = CaptureRetention {
        count: Some(1000),
        days: Some(30),
    };
    // At most `limit` per call.
    let first = store
        .sweep_captured(defaults, DEC_4 + DAY, 2)
        .await
        .unwrap();
    assert_eq!(first, 2);
    let rest = store
        .sweep_captured(defaults, DEC_4 + DAY, 100)
        .await
        .unwrap();
    assert_eq!(first + rest, 4);
    let remaining: Vec<MessageId> = {
        let mut ids = Vec::new();
        for id in a_ids.iter().chain([&b_old, &b_new]) {
            if store.message(*id).await.unwrap().is_some() {
                ids.push(*id);
            }
        }
        ids
    };
    assert_eq!(remaining, vec![a_ids[3], a_ids[4], b_new]);
    assert_eq!(
        store
            .sweep_captured(defaults, DEC_4 + DAY, 100)
            .await
            .unwrap(),
        0
    );

    // Back to the server default (null): nothing more goes while under it.
    let account = store
        .update_account(
            a,
            &AccountUpdate {
                capture_retention_count: Some(None),
                ..Default::default()
            },
            DEC_4,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.capture_retention_count, None);
    assert_eq!(
        store
            .sweep_captured(defaults, DEC_4 + DAY, 100)
            .await
            .unwrap(),
        0
    );
}

async fn tags_set_by_hand_are_what_search_and_the_message_show(backend: Backend) {
    let Some((_holder, store)) = open(backend).await else {
        return;
    };
    let a = account(&store, "a@a.test").await;
    let indexed = captured(&store, a, DEC_4).await;
    let waiting = captured(&store, a, DEC_4).await;
    let rows = [row(
        indexed,
        a,
        "one",
        "x",
        "y",
        "alpha",
        &["billing"],
        false,
    )];
    store.index_captures(&rows, DEC_4).await.unwrap();
    assert_eq!(search(&store, Some(a), "tag:billing").await, vec![indexed]);

    let sender = ["release-2".to_string()];
    let effective = ["release-2".to_string(), "billing".to_string()];
    assert!(
        store
            .set_captured_tags(indexed, &sender, &effective)
            .await
            .unwrap()
    );
    assert_eq!(
        search(&store, Some(a), "tag:release-2").await,
        vec![indexed]
    );
    assert_eq!(search(&store, Some(a), "tag:billing").await, vec![indexed]);
    assert_eq!(store.message(indexed).await.unwrap().unwrap().tags, sender);
    // Not indexed yet: the message row takes them, for the indexer to read.
    assert!(
        store
            .set_captured_tags(waiting, &sender, &sender)
            .await
            .unwrap()
    );
    assert_eq!(store.message(waiting).await.unwrap().unwrap().tags, sender);
    // An index row computed from the tags before that is not written (the indexer comes
    // round again); one computed from the new tags is.
    let pending = store.unindexed_captures(0, 10).await.unwrap();
    assert_eq!(
        pending.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![waiting]
    );
    assert!(
        store
            .unindexed_captures(waiting, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let stale = row(waiting, a, "two", "x", "y", "beta", &[], false);
    assert_eq!(
        store
            .index_captures(std::slice::from_ref(&stale), DEC_4)
            .await
            .unwrap(),
        0
    );
    let fresh = CapturedMail {
        tags: sender.to_vec(),
        sender_tags: sender.to_vec(),
        ..stale
    };
    assert_eq!(store.index_captures(&[fresh], DEC_4).await.unwrap(), 1);
    assert_eq!(
        search(&store, Some(a), "tag:release-2").await,
        vec![indexed, waiting]
    );
    // Cleared: search no longer finds the hand tag.
    assert!(
        store
            .set_captured_tags(indexed, &[], &effective[1..])
            .await
            .unwrap()
    );
    assert_eq!(
        search(&store, Some(a), "tag:release-2").await,
        vec![waiting]
    );
    // Only captured mail.
    store
        .delete_captured(Some(a), &CapturedSelection::Ids(vec![waiting]))
        .await
        .unwrap();
    assert!(
        !store
            .set_captured_tags(waiting, &sender, &sender)
            .await
            .unwrap()
    );
}
