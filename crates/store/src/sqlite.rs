//! The embedded SQLite backend: WAL, `synchronous = FULL`, one file under the data dir.
//!
//! Writes go through a pool of one connection (SQLite has one writer), reads through a pool
//! of their own. A PASSIVE WAL checkpoint runs every 100 ms from a connection of its own, so
//! the commit path only checkpoints itself once the WAL reaches 10,000 pages.

use std::str::FromStr;
use std::time::Duration;

use sluice_core::{AccountId, MessageId, MessageStatus};
use sqlx::Row;
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

use crate::sql::{impl_sql_store, json, like_escape};
use crate::{
    Account, AccountUpdate, ApiKeyRow, AttemptRecord, AttemptRow, AuditEntry, AuditRow,
    ClaimedMessage, DkimKeyRow, DomainRow, DueWebhook, EventRow, MessageFilter, MessageRecord,
    MessageSummary, NewAccount, NewDkimKey, NewMessage, NewProvider, NewRule, NewTemplate, NewUser,
    NewWebhookEndpoint, OpenOptions, ProviderRow, RuleRow, SessionRow, SmtpCredential, StoreError,
    SuppressionRow, TemplateRow, User, UserUpdate, WebhookAttemptRecord, WebhookAttemptRow,
    WebhookDeliveryRow, WebhookEndpointRow,
};

/// SQLite allows one writer at a time, and a writer that finds the lock taken sleeps in
/// SQLite's busy handler (1, 2, 5 … 100 ms). So every write goes through a pool of one
/// connection, where waiting is a fair async queue instead; reads use their own pool.
pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
    bodies: crate::BodyCodec,
    /// Where large bodies go: the spool, when the store was opened with one.
    body_store: Option<std::sync::Arc<dyn sluice_core::BodyStorage>>,
    /// The background checkpointer runs while this lives (`checkpoint_in_background`).
    _checkpoints: std::sync::Arc<()>,
}

/// Prepared statements the writer keeps. Group commit writes a batch with one multi-row
/// statement per table, so each batch size is a statement of its own: sqlx's 100 were
/// evicted and parsed again all the time under load (3% of the CPU). Batch sizes are
/// bounded by `store.group_commit_max_batch` (256). The bench's quick load holds about
/// 16 MB more RSS with them (106 -> 122 MB) and runs 7% faster.
const STATEMENT_CACHE: usize = 1000;
/// The page size of a database this creates (an existing one keeps its own: SQLite fixes
/// it when the first table is made). Each commit writes every page it changed whole, to the
/// WAL and again at the checkpoint, and a group commit of new messages and attempts changes
/// the last leaf of each table and index it touches (about 40 of them): with 4 KiB pages
/// that was 16 KB of WAL per 50 KB message, 1.43 bytes written per byte of mail in all;
/// with 1 KiB pages 6 KB and 1.20 (`bench/results/`, issue N), throughput no lower.
const PAGE_SIZE: u32 = 1024;
/// How often the background checkpointer copies the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// WAL pages after which the writer checkpoints itself, on its commit path (SQLite's
/// default is 1,000). Under steady writes the background checkpoint never finds the WAL
/// fully copied (frames keep coming), so only the writer's own checkpoint lets the WAL
/// start over from its beginning: at this size (about 10 MB with 1 KiB pages, 40 MB in a
/// database made earlier with 4 KiB ones), and then it has only the last 100 ms of pages
/// left to copy.
const WRITER_CHECKPOINT_PAGES: &str = "10000";

impl SqliteStore {
    /// Opens (creating if needed) the database and runs the migrations.
    pub async fn open(url: &str, options: &OpenOptions) -> Result<Self, StoreError> {
        let connect = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true)
            .page_size(PAGE_SIZE)
            // Pages read through a memory map instead of a read call that copies each one.
            .pragma("mmap_size", "268435456");
        // The writer touches every new message's pages again at claim and record; a page cache
        // that holds a few seconds of them (32 MB) keeps those from being read back.
        let write = distrusting_faults(SqlitePoolOptions::new())
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(
                connect
                    .clone()
                    .pragma("cache_size", "-32768")
                    .statement_cache_capacity(STATEMENT_CACHE)
                    .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES),
            )
            .await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&write)
            .await
            .map_err(|e| StoreError::Database(e.to_string()))?;
        let read = distrusting_faults(SqlitePoolOptions::new())
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(connect.clone().read_only(true))
            .await?;
        let checkpoints = std::sync::Arc::new(());
        let checkpointer = distrusting_faults(SqlitePoolOptions::new())
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(connect)
            .await?;
        tokio::spawn(checkpoint_in_background(
            checkpointer,
            std::sync::Arc::downgrade(&checkpoints),
        ));
        let body_store = match &options.spool_dir {
            Some(dir) => Some(open_spool(&write, dir, &options.bodies).await?),
            None => None,
        };
        Ok(SqliteStore {
            write,
            read,
            body_store,
            bodies: options.bodies.clone(),
            _checkpoints: checkpoints,
        })
    }

    /// One node owns a SQLite database, so at start-up nothing it leased is being worked on.
    async fn release_leases(&self, now_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE messages SET status = 'queued', lease_owner = NULL, lease_until = NULL, \
             next_attempt_at = $1 WHERE status = 'sending'",
        )
        .bind(now_ms)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected())
    }

    /// The spool frees what no row names when it opens (`Spool::open`): nothing to sweep.
    async fn sweep_orphan_bodies(&self, _before_ms: i64) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// The node's clock is the queue's: waiting messages move with a jump of it.
    async fn shift_due_times(&self, jump_ms: i64, now_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE messages SET next_attempt_at = next_attempt_at + $1 \
             WHERE status IN ('queued', 'deferred') AND next_attempt_at > $2",
        )
        .bind(jump_ms)
        .bind(now_ms)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected())
    }
}

/// Opens the spool in `dir`, freeing what no row names (a crash's leftovers).
async fn open_spool(
    write: &SqlitePool,
    dir: &std::path::Path,
    bodies: &crate::BodyCodec,
) -> Result<std::sync::Arc<dyn sluice_core::BodyStorage>, StoreError> {
    let live: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT body_ref FROM messages WHERE body_ref IS NOT NULL")
            .fetch_all(write)
            .await?;
    let (key, encrypt) = bodies.spool_keys();
    let (spool, report) =
        crate::spool::Spool::open(dir, live, key, encrypt, crate::spool::SEGMENT_BYTES)
            .map_err(crate::queue::body_store_error)?;
    tracing::info!(
        removed_segments = report.segments_removed,
        live_bytes = report.live_bytes,
        "spool opened"
    );
    Ok(std::sync::Arc::new(spool))
}

/// A pool that does not reuse a connection a failed write may have left wrong.
///
/// SQLite documents that after SQLITE_FULL, SQLITE_IOERR (and a few more) within a
/// transaction "the transaction might be rolled back automatically", and only
/// `sqlite3_get_autocommit` tells (sqlite.org/c3ref/get_autocommit.html). sqlx keeps its own
/// transaction depth: after a failed COMMIT it still counts one, its ROLLBACK on drop fails
/// ("no transaction is active") and leaves the count at one, and from then on `begin()`
/// issues a SAVEPOINT and `commit()` a RELEASE of it. Once a later failure leaves a real
/// transaction open under that count, every "commit" releases a nested savepoint and
/// reaches no disk: the 250s without a WAL write of issue 18. So:
/// - a connection released with a transaction still counted (a failed or abandoned one) is
///   closed, never handed out again;
/// - after any storage fault, every connection opened before it is closed on its next
///   acquire; the fresh connection reads the database header and the WAL index anew.
fn distrusting_faults(options: SqlitePoolOptions) -> SqlitePoolOptions {
    options
        .after_release(|conn, _meta| {
            let finished = !sqlx::Connection::is_in_transaction(conn);
            Box::pin(async move { Ok(finished) })
        })
        .before_acquire(|_conn, meta| {
            let stale = crate::reserve::opened_before_last_fault(meta.age);
            Box::pin(async move { Ok(!stale) })
        })
}

/// Copies committed WAL pages into the database file from its own connection, off the
/// writer's commit path: with SQLite's automatic checkpoint every 1,000 pages, the commit
/// that crossed the mark also wrote them all back and synced the database file, and the
/// accepts waiting for that commit waited for the checkpoint too (the slowest 1% of accept
/// latencies). A PASSIVE checkpoint takes no lock a reader or the writer needs. Ends once
/// the store is dropped.
async fn checkpoint_in_background(pool: SqlitePool, store: std::sync::Weak<()>) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if store.upgrade().is_none() {
            break;
        }
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            tracing::warn!(%error, "background WAL checkpoint failed");
        }
    }
    pool.close().await;
}

impl SqliteStore {
    /// Capture search: each word a prefix of a word of the FTS5 index (`captured_fts`).
    /// Words are letters and digits only (`capture_query::words_of`), safe in quotes.
    fn push_words_match(select: &mut sqlx::QueryBuilder<Sqlite>, words: &[String]) {
        let expression = words
            .iter()
            .map(|w| format!("\"{w}\"*"))
            .collect::<Vec<_>>()
            .join(" AND ");
        select
            .push(" AND m.id IN (SELECT rowid FROM captured_fts WHERE captured_fts MATCH ")
            .push_bind(expression)
            .push(")");
    }
}

impl_sql_store!(
    SqliteStore,
    Sqlite,
    // Each kind of due message is read from its index in order and only `$4` of each, so a
    // claim costs the same with a backlog of millions as with none (one OR over the three
    // made SQLite fetch and sort every due row).
    claim_sql = "UPDATE messages SET status = 'sending', lease_owner = $1, lease_until = $3 + $2, updated_at = $3 \
         WHERE id IN (SELECT id FROM ( \
             SELECT * FROM (SELECT id, next_attempt_at AS due FROM messages \
                 WHERE status = 'queued' AND next_attempt_at <= $3 ORDER BY next_attempt_at LIMIT $4) \
             UNION ALL SELECT * FROM (SELECT id, next_attempt_at AS due FROM messages \
                 WHERE status = 'deferred' AND next_attempt_at <= $3 ORDER BY next_attempt_at LIMIT $4) \
             UNION ALL SELECT * FROM (SELECT id, lease_until AS due FROM messages \
                 WHERE status = 'sending' AND lease_until < $3 AND lease_owner <> $1 ORDER BY lease_until LIMIT $4) \
             ) ORDER BY due LIMIT $4) \
         RETURNING id, account_id, mail_from, pending_rcpt, smtputf8, eight_bit, size, body, body_ref, attempts, created_at, max_attempts, source, tags, release_provider_id, sandbox",
    webhook_claim_sql = "UPDATE webhook_deliveries SET lease_owner = $1, lease_until = $2, updated_at = $3 \
         WHERE id IN (SELECT id FROM webhook_deliveries \
             WHERE status = 'pending' AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until < $3) \
             ORDER BY next_attempt_at LIMIT $4)"
);

#[cfg(test)]
#[path = "sqlite_tests.rs"]
mod tests;
