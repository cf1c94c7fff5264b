//! The body store on both backends (SQLite's spool in a temporary directory; PostgreSQL's
//! chunk table in a fresh database from `SLUICE_TEST_DATABASE_URL`): large bodies written
//! in pieces, queued, claimed and read back byte-exact, clear and sealed; given back after
//! retention drops their rows; unfinished and unnamed bodies removed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sluice_core::body::{BODY_CHUNK, read_whole};
use sluice_core::sealed::MasterKey;
use sluice_core::{
    BodyError, BodyStorage, DeliveryReport, Envelope, MessageBody, MessageStatus, Source,
    StoredBody, Verdict,
};
use sluice_store::{AttemptRecord, BodyCodec, NewAccount, NewMessage, OpenOptions, Store};
use sluice_testkit::postgres::TempDatabase;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
const HEAD: &[u8] = b"Received: from test\r\n";

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A store with a body store, and what the test looks at beneath it.
struct Fixture {
    store: Arc<dyn Store>,
    account: i64,
    /// SQLite: the spool's directory.
    spool_dir: Option<PathBuf>,
    /// PostgreSQL: a pool on the test's database, to look at the chunk table.
    pg: Option<sqlx::PgPool>,
    _dir: tempfile::TempDir,
    _db: Option<TempDatabase>,
}

/// `None` when PostgreSQL tests are skipped (no SLUICE_TEST_DATABASE_URL outside CI); a
/// configured database that does not answer fails the test.
async fn open(backend: Backend, key: Option<MasterKey>) -> Option<Fixture> {
    let dir = tempfile::tempdir().unwrap();
    let encrypt = key.is_some();
    let mut options = OpenOptions {
        bodies: BodyCodec::new(key.map(Arc::new), encrypt),
        ..OpenOptions::default()
    };
    let (store, spool_dir, pg, db) = match backend {
        Backend::Sqlite => {
            let spool = dir.path().join("spool");
            options.spool_dir = Some(spool.clone());
            let url = format!("sqlite://{}", dir.path().join("t.db").display());
            let store = sluice_store::open(&url, &options).await.unwrap();
            (store, Some(spool), None, None)
        }
        Backend::Postgres => {
            let db = tokio::task::spawn_blocking(TempDatabase::create)
                .await
                .unwrap()?;
            let store = sluice_store::open(&db.url, &options).await.unwrap();
            let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
            (store, None, Some(pool), Some(db))
        }
    };
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
    Some(Fixture {
        store,
        account,
        spool_dir,
        pg,
        _dir: dir,
        _db: db,
    })
}

impl Fixture {
    fn storage(&self) -> Arc<dyn BodyStorage> {
        self.store.body_storage().expect("a body store")
    }

    /// Bytes the body store holds: the spool's allocated blocks, or the chunks' data.
    async fn held_bytes(&self) -> u64 {
        if let Some(pool) = &self.pg {
            let sum: i64 = sqlx::query_scalar(
                "SELECT COALESCE(SUM(octet_length(data)), 0)::BIGINT FROM message_body_chunks",
            )
            .fetch_one(pool)
            .await
            .unwrap();
            return sum as u64;
        }
        use std::os::unix::fs::MetadataExt;
        segments(self.spool_dir.as_ref().unwrap())
            .iter()
            .map(|path| std::fs::metadata(path).unwrap().blocks() * 512)
            .sum()
    }

    /// PostgreSQL: rows of the chunk table.
    async fn chunk_rows(&self) -> i64 {
        let pool = self.pg.as_ref().expect("PostgreSQL");
        sqlx::query_scalar("SELECT COUNT(*) FROM message_body_chunks")
            .fetch_one(pool)
            .await
            .unwrap()
    }

    /// Whether `needle` is to be found in the bytes at rest.
    async fn at_rest_contains(&self, needle: &[u8]) -> bool {
        if let Some(pool) = &self.pg {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM message_body_chunks WHERE position($1::bytea IN data) > 0",
            )
            .bind(needle)
            .fetch_one(pool)
            .await
            .unwrap();
            return n > 0;
        }
        segments(self.spool_dir.as_ref().unwrap())
            .iter()
            .any(|path| {
                std::fs::read(path)
                    .unwrap()
                    .windows(needle.len())
                    .any(|w| w == needle)
            })
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("seg-"))
        .collect()
}

fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i / 7) as u8).wrapping_mul(31) ^ (i as u8) ^ seed)
        .collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Writes `bytes` through a writer in pieces of odd sizes, none a multiple of the chunk.
async fn write_in_pieces(storage: &dyn BodyStorage, bytes: &[u8]) -> StoredBody {
    let sizes = [1, 4093, BODY_CHUNK + 1, 77, 2 * BODY_CHUNK - 1, 3];
    let mut writer = storage.writer().await.unwrap();
    let mut rest = bytes;
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at((*size).min(rest.len()));
        writer.write(piece).await.unwrap();
        rest = tail;
    }
    let (reference, len) = writer.finish().await.unwrap();
    assert_eq!(len, bytes.len() as u64);
    StoredBody {
        head: HEAD.to_vec(),
        reference,
        len,
    }
}

fn message(account_id: i64, body: StoredBody) -> NewMessage {
    NewMessage {
        account_id,
        source: Source::Smtp,
        envelope: Envelope {
            mail_from: "a@example.com".into(),
            rcpt_to: vec!["r@x.test".into()],
            smtputf8: false,
            eight_bit: false,
        },
        body: MessageBody::Stored(body),
        lease: None,
        tags: Vec::new(),
        max_attempts: None,
        sandbox: false,
        idempotency: None,
    }
}

fn delivered(id: i64) -> AttemptRecord {
    AttemptRecord {
        message_id: id,
        lease_owner: "w".into(),
        report: DeliveryReport::uniform(
            "smtp",
            &["r@x.test".to_string()],
            Verdict::Delivered,
            Some(250),
            "ok",
        ),
        calls: vec![],
        started_at: 2000,
        finished_at: 2000,
        new_status: MessageStatus::Delivered,
        pending_rcpt: vec![],
        next_attempt_at: 2000,
        last_error: None,
        events: vec![("delivered".into(), String::new())],
    }
}

fn whole(bytes: &[u8]) -> Vec<u8> {
    let mut out = HEAD.to_vec();
    out.extend_from_slice(bytes);
    out
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
    large_bodies_are_queued_claimed_read_back_and_given_back,
    large_sealed_bodies_are_not_in_the_clear_and_read_back,
    bodies_of_every_edge_size_read_back,
    unfinished_and_unnamed_bodies_are_removed,
);

/// Two bodies of about 1 MB through the queue: claimed back, read byte-exact, given back
/// when retention empties one message's body and deletes both messages.
async fn queued_claimed_read_back_and_given_back(backend: Backend, key: Option<MasterKey>) {
    let sealed = key.is_some();
    let Some(fx) = open(backend, key).await else {
        return;
    };
    let storage = fx.storage();
    let contents = [content(1_000_003, 1), content(999_999, 2)];
    let mut messages = Vec::new();
    for bytes in &contents {
        messages.push(message(
            fx.account,
            write_in_pieces(storage.as_ref(), bytes).await,
        ));
    }
    assert_eq!(
        fx.at_rest_contains(&contents[0][1000..1064]).await,
        !sealed,
        "sealed bodies are not in the clear, clear ones are (the check can fail)"
    );
    let (fates, _) = fx.store.write_queue(&messages, &[], 1000).await.unwrap();
    assert_eq!(fates.len(), 2);
    if let Some(pool) = &fx.pg {
        let named: i64 =
            sqlx::query_scalar("SELECT COUNT(DISTINCT body_id) FROM messages WHERE body_id > 0")
                .fetch_one(pool)
                .await
                .unwrap();
        assert_eq!(named, 2, "each row names its body's id");
    }
    let mut claimed = fx
        .store
        .claim_due_messages("w", 1000, 60_000, 10)
        .await
        .unwrap();
    claimed.sort_by_key(|c| c.id);
    assert_eq!(claimed.len(), 2);
    for (claim, (sent, bytes)) in claimed.iter().zip(messages.iter().zip(&contents)) {
        assert_eq!(
            claim.body, sent.body,
            "the row keeps the head and reference"
        );
        let read = read_whole(Some(storage.as_ref()), &claim.body)
            .await
            .unwrap();
        assert!(read == whole(bytes), "byte-exact ({} bytes)", bytes.len());
    }
    let held = fx.held_bytes().await;
    assert!(held >= 1_999_000, "{held} bytes held");
    for claim in &claimed {
        assert!(fx.store.record_attempt(&delivered(claim.id)).await.unwrap());
    }
    // Retention empties one finished body: its content goes, the other's stays.
    assert_eq!(fx.store.purge_bodies(3000, 5000, 1).await.unwrap(), 1);
    let held = fx.held_bytes().await;
    assert!((900_000..1_200_000).contains(&held), "{held} bytes held");
    // Then deletes both messages: nothing is left.
    assert_eq!(fx.store.purge_messages(3000, 10).await.unwrap(), 2);
    let held = fx.held_bytes().await;
    assert!(held < 64 * 1024, "{held} bytes still held");
    if fx.pg.is_some() {
        assert_eq!(fx.chunk_rows().await, 0);
    }
}

async fn large_bodies_are_queued_claimed_read_back_and_given_back(backend: Backend) {
    queued_claimed_read_back_and_given_back(backend, None).await;
}

async fn large_sealed_bodies_are_not_in_the_clear_and_read_back(backend: Backend) {
    queued_claimed_read_back_and_given_back(backend, Some(MasterKey::from_bytes([5; 32]))).await;
}

async fn bodies_of_every_edge_size_read_back(backend: Backend) {
    for key in [None, Some(MasterKey::from_bytes([6; 32]))] {
        let Some(fx) = open(backend, key).await else {
            return;
        };
        let storage = fx.storage();
        for len in [
            0,
            1,
            BODY_CHUNK - 1,
            BODY_CHUNK,
            BODY_CHUNK + 1,
            3 * BODY_CHUNK,
        ] {
            let bytes = content(len, len as u8);
            let body = write_in_pieces(storage.as_ref(), &bytes).await;
            storage.sync(&[&body.reference]).await.unwrap();
            let read = read_whole(Some(storage.as_ref()), &MessageBody::Stored(body))
                .await
                .unwrap();
            assert!(read == whole(&bytes), "len {len}");
        }
    }
}

/// A writer dropped before it finished gives back what it wrote; a finished body no row
/// names is swept once it is old enough (PostgreSQL; the spool frees those at start).
async fn unfinished_and_unnamed_bodies_are_removed(backend: Backend) {
    let Some(fx) = open(backend, None).await else {
        return;
    };
    let storage = fx.storage();
    let mut writer = storage.writer().await.unwrap();
    writer
        .write(&content(3 * BODY_CHUNK + 100, 3))
        .await
        .unwrap();
    assert!(
        fx.held_bytes().await >= 3 * BODY_CHUNK as u64,
        "full chunks written"
    );
    drop(writer);
    let mut waited = Duration::ZERO;
    while fx.held_bytes().await >= 4096 {
        assert!(
            waited < Duration::from_secs(10),
            "dropped writer's chunks stay"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }

    let live_bytes = content(300_000, 4);
    let live = write_in_pieces(storage.as_ref(), &live_bytes).await;
    fx.store
        .write_queue(&[message(fx.account, live.clone())], &[], now_ms())
        .await
        .unwrap();
    let _unnamed = write_in_pieces(storage.as_ref(), &content(200_000, 5)).await;
    assert_eq!(
        fx.store
            .purge_orphan_bodies(now_ms() - DAY_MS)
            .await
            .unwrap(),
        0,
        "too young to be an orphan"
    );
    let swept = fx
        .store
        .purge_orphan_bodies(now_ms() + DAY_MS)
        .await
        .unwrap();
    match backend {
        Backend::Postgres => {
            assert_eq!(swept, 1, "the unnamed body, not the queued one");
            let held = fx.held_bytes().await;
            assert!((300_000..300_100).contains(&held), "{held} bytes held");
        }
        Backend::Sqlite => assert_eq!(swept, 0),
    }
    let read = read_whole(Some(storage.as_ref()), &MessageBody::Stored(live))
        .await
        .unwrap();
    assert!(read == whole(&live_bytes));
}

/// A chunk missing from the table, or one sealed for another place, is an error, never
/// bytes that were not written (PostgreSQL only: the spool's own tests cover it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_missing_or_moved_chunks_are_corrupt() {
    for key in [None, Some(MasterKey::from_bytes([7; 32]))] {
        let Some(fx) = open(Backend::Postgres, key).await else {
            return;
        };
        let pool = fx.pg.as_ref().unwrap();
        let storage = fx.storage();
        let body = write_in_pieces(storage.as_ref(), &content(4 * BODY_CHUNK + 9, 8)).await;
        let stored = MessageBody::Stored(body);
        assert!(read_whole(Some(storage.as_ref()), &stored).await.is_ok());
        // The last chunk gone: the reference's count tells.
        sqlx::query("DELETE FROM message_body_chunks WHERE seq = 4")
            .execute(pool)
            .await
            .unwrap();
        let cut = read_whole(Some(storage.as_ref()), &stored).await;
        assert!(matches!(cut, Err(BodyError::Corrupt(_))), "{cut:?}");
        // A middle chunk gone, the next moved into its place.
        sqlx::query("DELETE FROM message_body_chunks WHERE seq = 1")
            .execute(pool)
            .await
            .unwrap();
        let gap = read_whole(Some(storage.as_ref()), &stored).await;
        assert!(matches!(gap, Err(BodyError::Corrupt(_))), "{gap:?}");
        sqlx::query("UPDATE message_body_chunks SET seq = 1 WHERE seq = 2")
            .execute(pool)
            .await
            .unwrap();
        let moved = read_whole(Some(storage.as_ref()), &stored).await;
        assert!(moved.is_err(), "a moved chunk is refused: {moved:?}");
    }
}
