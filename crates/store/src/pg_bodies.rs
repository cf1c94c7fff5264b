//! PostgreSQL's body store: large message bodies as rows of `message_body_chunks`, one per
//! chunk of at most 64 KiB (sealed when `storage.encrypt_bodies` is on), which every node
//! of the cluster reads.
//!
//! A writer takes its body's id from the `message_body_ids` sequence at its first chunk and
//! INSERTs each full chunk in a short transaction of its own, committed without waiting for
//! the WAL flush (`synchronous_commit = off`): no fsync per chunk, and no connection held
//! between chunks while a slow client sends the next. It holds back the last chunk until it
//! knows it is the last (a sealed body's last chunk is sealed as such). The message's row,
//! written later with `body_id`, is what makes the chunks durable (see `sync`) and live;
//! bodies no row names are deleted after the change that dropped their rows commits
//! (`release`), when their writer is dropped unfinished, and in any case by the retention
//! sweep once they are a day old ([`purge_orphans`]).

use std::collections::VecDeque;
use std::sync::Arc;

use async_trait::async_trait;
use sluice_core::body::{BodyReader, BodyWriter};
use sluice_core::sealed::MasterKey;
use sluice_core::sealed_chunks::ChunkCipher;
use sluice_core::{BodyError, BodyStorage};
use sqlx::Row;
use sqlx::postgres::PgPool;

use crate::StoreError;

/// The first byte of this store's references: the spool's are 1, so neither store ever
/// takes the other's reference for its own.
const VERSION: u8 = 2;
const SEALED: u8 = 1;
/// Chunks one read of a body fetches (at most 256 KiB in memory per reader).
const READ_WINDOW: i64 = 4;
/// Orphan bodies one sweep statement deletes.
const ORPHANS_PER_STATEMENT: i64 = 500;

/// A body's reference as its row keeps it:
/// `[2][flags][key len u16, wrapped key]?[body_id i64][chunk count u32]`, little-endian;
/// flag bit 0: sealed. A body of no chunks (empty, not sealed) has no id (0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ChunkedRef {
    /// The body's data key, wrapped under the master key, when its chunks are sealed.
    pub wrapped_key: Option<Vec<u8>>,
    pub body_id: i64,
    pub chunks: u32,
}

impl ChunkedRef {
    pub fn encode(&self) -> Vec<u8> {
        let key_len = self.wrapped_key.as_ref().map_or(0, |k| 2 + k.len());
        let mut out = Vec::with_capacity(2 + key_len + 12);
        out.push(VERSION);
        match &self.wrapped_key {
            Some(key) => {
                out.push(SEALED);
                out.extend_from_slice(&(key.len() as u16).to_le_bytes());
                out.extend_from_slice(key);
            }
            None => out.push(0),
        }
        out.extend_from_slice(&self.body_id.to_le_bytes());
        out.extend_from_slice(&self.chunks.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<ChunkedRef, BodyError> {
        let corrupt = || BodyError::Corrupt("a body reference that does not parse".into());
        let mut rest = bytes;
        let mut take = |n: usize| -> Result<&[u8], BodyError> {
            if rest.len() < n {
                return Err(corrupt());
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        let header = take(2)?;
        if header[0] != VERSION || header[1] & !SEALED != 0 {
            return Err(corrupt());
        }
        let wrapped_key = match header[1] & SEALED {
            0 => None,
            _ => {
                let len = u16::from_le_bytes(take(2)?.try_into().unwrap()) as usize;
                Some(take(len)?.to_vec())
            }
        };
        let body_id = i64::from_le_bytes(take(8)?.try_into().unwrap());
        let chunks = u32::from_le_bytes(take(4)?.try_into().unwrap());
        // Chunk numbers are INTEGER in the table.
        if !rest.is_empty() || (chunks > 0 && body_id <= 0) || chunks > i32::MAX as u32 {
            return Err(corrupt());
        }
        Ok(ChunkedRef {
            wrapped_key,
            body_id,
            chunks,
        })
    }
}

/// The chunk table's body a row's `body_ref` names (its `messages.body_id`): `None` for a
/// reference of another store (the spool's) and for a body of no chunks.
pub(crate) fn body_id_of(reference: &[u8]) -> Option<i64> {
    ChunkedRef::decode(reference)
        .ok()
        .filter(|r| r.chunks > 0)
        .map(|r| r.body_id)
}

/// A failed statement as a body store error: the disk's faults are `Storage` (452 / 507),
/// anything else (connection lost, pool exhausted, timeout, server shutting down) is
/// `Unavailable`: try again later.
fn body_error(error: sqlx::Error) -> BodyError {
    match &error {
        sqlx::Error::Database(db) if crate::reserve::is_storage_fault(db.as_ref()) => {
            BodyError::Storage(db.message().to_string())
        }
        _ => BodyError::Unavailable(error.to_string()),
    }
}

/// Bodies in the `message_body_chunks` table of a PostgreSQL database.
pub struct PgBodies {
    pool: PgPool,
    /// Seals new bodies when set (`storage.encrypt_bodies`).
    seal_with: Option<Arc<MasterKey>>,
    /// Opens sealed bodies (any key of the ring).
    key: Option<Arc<MasterKey>>,
}

impl PgBodies {
    /// Bodies on `pool`; `key` opens sealed ones, and with `encrypt` new ones are sealed.
    pub fn new(pool: PgPool, key: Option<Arc<MasterKey>>, encrypt: bool) -> Self {
        PgBodies {
            pool,
            seal_with: key.clone().filter(|_| encrypt),
            key,
        }
    }
}

/// Deletes the bodies no row names (`messages.body_id`) and none of whose chunks was
/// written since `before_ms` (database clock): their writer died, or their release failed.
/// Returns how many bodies went. A body still being written, or finished and about to be
/// named by its row, has a chunk younger than that (the retention sweep asks for a day).
pub(crate) async fn purge_orphans(pool: &PgPool, before_ms: i64) -> Result<u64, StoreError> {
    let mut removed = 0;
    loop {
        let gone: i64 = sqlx::query_scalar(
            "WITH gone AS ( \
               DELETE FROM message_body_chunks WHERE body_id IN ( \
                 SELECT c.body_id FROM message_body_chunks c \
                 WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.body_id = c.body_id) \
                 GROUP BY c.body_id HAVING MAX(c.created_at) < $1 \
                 LIMIT $2) \
               RETURNING body_id) \
             SELECT COUNT(DISTINCT body_id) FROM gone",
        )
        .bind(before_ms)
        .bind(ORPHANS_PER_STATEMENT)
        .fetch_one(pool)
        .await?;
        removed += gone as u64;
        if gone < ORPHANS_PER_STATEMENT {
            return Ok(removed);
        }
    }
}

async fn delete_bodies(pool: &PgPool, body_ids: &[i64]) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM message_body_chunks WHERE body_id = ANY($1)")
        .bind(body_ids)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

#[async_trait]
impl BodyStorage for PgBodies {
    async fn writer(&self) -> Result<Box<dyn BodyWriter>, BodyError> {
        let (cipher, wrapped_key) = match &self.seal_with {
            Some(master) => {
                let data_key: [u8; 32] = rand::random();
                let wrapped = master.wrap_data_key(&data_key, rand::random());
                (Some(ChunkCipher::new(&data_key)), Some(wrapped))
            }
            None => (None, None),
        };
        Ok(Box::new(PgBodyWriter {
            pool: self.pool.clone(),
            body_id: None,
            buffer: Default::default(),
            cipher,
            wrapped_key,
            chunks: 0,
            finished: false,
        }))
    }

    fn rewrap(&self, reference: &[u8]) -> Result<Option<Vec<u8>>, BodyError> {
        let mut chunked = ChunkedRef::decode(reference)?;
        let (Some(wrapped), Some(key)) = (&chunked.wrapped_key, &self.key) else {
            return Ok(None);
        };
        let rewrapped = key
            .rewrap_data_key(wrapped, rand::random())
            .map_err(|_| BodyError::Corrupt("a body key no configured master key opens".into()))?;
        let Some(rewrapped) = rewrapped else {
            return Ok(None);
        };
        chunked.wrapped_key = Some(rewrapped);
        Ok(Some(chunked.encode()))
    }

    async fn reader(&self, reference: &[u8]) -> Result<Box<dyn BodyReader>, BodyError> {
        let chunked = ChunkedRef::decode(reference)?;
        let cipher = match &chunked.wrapped_key {
            None => None,
            Some(wrapped) => {
                let key = self.key.as_ref().ok_or_else(|| {
                    BodyError::Corrupt("a sealed body, and no master key to open it".into())
                })?;
                let data_key = key.unwrap_data_key(wrapped).map_err(|_| {
                    BodyError::Corrupt("a body key no configured master key opens".into())
                })?;
                Some(ChunkCipher::new(&data_key))
            }
        };
        Ok(Box::new(PgBodyReader {
            pool: self.pool.clone(),
            body_id: chunked.body_id,
            chunks: chunked.chunks,
            next: 0,
            window: VecDeque::new(),
            cipher,
        }))
    }

    /// Nothing to do. Each chunk committed with `synchronous_commit = off` before its
    /// writer finished, so before the transaction that writes the message's row began; that
    /// transaction commits with `synchronous_commit` on, and its COMMIT returns only once the
    /// WAL is flushed up to its commit record. The WAL is one sequence, and every earlier
    /// chunk's commit record lies before that one in it: "If the database should crash, it
    /// will recover by replaying WAL up to the last record that was flushed … Because the
    /// transactions are replayed in commit order, … it is not possible for A's effects to
    /// be lost while B's effects are preserved"
    /// (<https://www.postgresql.org/docs/current/wal-async-commit.html>). So a row that
    /// survives a crash finds its chunks; chunks whose row never committed are orphans.
    async fn sync(&self, _references: &[&[u8]]) -> Result<(), BodyError> {
        Ok(())
    }

    async fn release(&self, references: Vec<Vec<u8>>) {
        let body_ids: Vec<i64> = references
            .iter()
            .filter_map(|reference| match ChunkedRef::decode(reference) {
                Ok(chunked) => (chunked.chunks > 0).then_some(chunked.body_id),
                Err(error) => {
                    tracing::warn!(%error, "body not given back");
                    None
                }
            })
            .collect();
        if body_ids.is_empty() {
            return;
        }
        if let Err(error) = delete_bodies(&self.pool, &body_ids).await {
            tracing::warn!(%error, bodies = body_ids.len(), "bodies not given back: the orphan sweep will");
        }
    }
}

struct PgBodyWriter {
    pool: PgPool,
    /// Taken from the sequence with the first chunk.
    body_id: Option<i64>,
    /// At most one chunk not yet written: held back until it is known not to be the last.
    buffer: sluice_core::body::ChunkBuffer,
    cipher: Option<ChunkCipher>,
    wrapped_key: Option<Vec<u8>>,
    chunks: u32,
    finished: bool,
}

impl PgBodyWriter {
    /// Writes chunk number `self.chunks` in a transaction of its own.
    async fn append(&mut self, plain: Vec<u8>, last: bool) -> Result<(), BodyError> {
        let seq = self.chunks;
        let position = i32::try_from(seq)
            .map_err(|_| BodyError::Storage("a body of more than 2^31 chunks".into()))?;
        let data = match &self.cipher {
            Some(cipher) => cipher.seal_chunk(u64::from(seq), last, &plain),
            None => plain,
        };
        let mut tx = self.pool.begin().await.map_err(body_error)?;
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await
            .map_err(body_error)?;
        let body_id: i64 = sqlx::query_scalar(
            "INSERT INTO message_body_chunks (body_id, seq, data, created_at) \
             VALUES (COALESCE($1, nextval('message_body_ids')), $2, $3, \
                     CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)) \
             RETURNING body_id",
        )
        .bind(self.body_id)
        .bind(position)
        .bind(data)
        .fetch_one(&mut *tx)
        .await
        .map_err(body_error)?;
        // Known before the commit: a commit that fails may still have happened, and a
        // dropped writer deletes what it may have written.
        self.body_id = Some(body_id);
        tx.commit().await.map_err(body_error)?;
        self.chunks = seq + 1;
        Ok(())
    }
}

#[async_trait]
impl BodyWriter for PgBodyWriter {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), BodyError> {
        for full in self.buffer.push(bytes) {
            self.append(full, false).await?;
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<(Vec<u8>, u64), BodyError> {
        let (rest, len) = self.buffer.finish();
        // A sealed empty body is one empty chunk sealed as last (a reader then knows it
        // was not cut short); a clear one has no chunk and no id.
        if !rest.is_empty() || self.cipher.is_some() {
            self.append(rest, true).await?;
        }
        self.finished = true;
        let reference = ChunkedRef {
            wrapped_key: self.wrapped_key.take(),
            body_id: self.body_id.unwrap_or(0),
            chunks: self.chunks,
        };
        Ok((reference.encode(), len))
    }
}

impl Drop for PgBodyWriter {
    /// An unfinished body (its session ended, a write failed) is deleted in the background
    /// when a runtime is there; otherwise, or if that fails, the orphan sweep removes it.
    fn drop(&mut self) {
        let Some(body_id) = self.body_id.filter(|_| !self.finished) else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let pool = self.pool.clone();
        runtime.spawn(async move {
            if let Err(error) = delete_bodies(&pool, &[body_id]).await {
                tracing::debug!(%error, body_id, "unfinished body left to the orphan sweep");
            }
        });
    }
}

struct PgBodyReader {
    pool: PgPool,
    body_id: i64,
    chunks: u32,
    /// The chunk `next_chunk` answers next.
    next: u32,
    /// Chunks fetched and not yet answered, from `next` on.
    window: VecDeque<Vec<u8>>,
    cipher: Option<ChunkCipher>,
}

impl PgBodyReader {
    /// Fetches up to [`READ_WINDOW`] chunks from `next`, each where it must be.
    async fn fill(&mut self) -> Result<(), BodyError> {
        let rows = sqlx::query(
            "SELECT seq, data FROM message_body_chunks \
             WHERE body_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq LIMIT $4",
        )
        .bind(self.body_id)
        .bind(self.next as i32)
        .bind(self.chunks as i32)
        .bind(READ_WINDOW)
        .fetch_all(&self.pool)
        .await
        .map_err(body_error)?;
        for (expected, row) in (self.next..).zip(rows) {
            let seq: i32 = row.try_get("seq").map_err(body_error)?;
            if seq as u32 != expected {
                break;
            }
            self.window
                .push_back(row.try_get("data").map_err(body_error)?);
        }
        if self.window.is_empty() {
            return Err(BodyError::Corrupt(format!(
                "chunk {} of stored body {} is missing",
                self.next, self.body_id
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl BodyReader for PgBodyReader {
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, BodyError> {
        if self.next >= self.chunks {
            return Ok(None);
        }
        if self.window.is_empty() {
            self.fill().await?;
        }
        let Some(data) = self.window.pop_front() else {
            return Err(BodyError::Corrupt("a chunk read and lost".into()));
        };
        let index = self.next;
        self.next += 1;
        match &self.cipher {
            None => Ok(Some(data)),
            Some(cipher) => cipher
                .open_chunk(u64::from(index), self.next == self.chunks, &data)
                .map(Some)
                .map_err(|_| BodyError::Corrupt("a sealed body chunk does not open".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_round_trip_and_are_never_a_spool_reference() {
        let plain = ChunkedRef {
            wrapped_key: None,
            body_id: 41,
            chunks: 16,
        };
        assert_eq!(ChunkedRef::decode(&plain.encode()).unwrap(), plain);
        assert_eq!(body_id_of(&plain.encode()), Some(41));
        let sealed = ChunkedRef {
            wrapped_key: Some(vec![7; 73]),
            ..plain.clone()
        };
        assert_eq!(ChunkedRef::decode(&sealed.encode()).unwrap(), sealed);
        assert_eq!(body_id_of(&sealed.encode()), Some(41));
        let empty = ChunkedRef {
            wrapped_key: None,
            body_id: 0,
            chunks: 0,
        };
        assert_eq!(ChunkedRef::decode(&empty.encode()).unwrap(), empty);
        assert_eq!(body_id_of(&empty.encode()), None, "no chunks, no id");
        let spooled = crate::spool::SpoolRef {
            wrapped_key: None,
            extents: vec![crate::spool::Extent {
                segment: 1,
                offset: 0,
                len: 10,
            }],
            written_epoch: 0,
        }
        .encode();
        assert!(ChunkedRef::decode(&spooled).is_err());
        assert_eq!(body_id_of(&spooled), None);
        assert!(crate::spool::SpoolRef::decode(&plain.encode()).is_err());
    }

    #[test]
    fn malformed_references_are_corrupt_not_a_panic() {
        let good = ChunkedRef {
            wrapped_key: Some(vec![1, 2, 3]),
            body_id: 9,
            chunks: 2,
        }
        .encode();
        for cut in 0..good.len() {
            assert!(ChunkedRef::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = good.clone();
        long.push(0);
        assert!(ChunkedRef::decode(&long).is_err());
        let mut flags = good.clone();
        flags[1] = 2;
        assert!(ChunkedRef::decode(&flags).is_err());
        let no_id = ChunkedRef {
            wrapped_key: None,
            body_id: 0,
            chunks: 3,
        };
        assert!(ChunkedRef::decode(&no_id.encode()).is_err());
    }
}
