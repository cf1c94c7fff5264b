//! The spool: large message bodies in append-only segment files beside the SQLite
//! database, each byte written once.
//!
//! Sessions append their bodies' chunks to the active segment as they arrive (no sync; into
//! the page cache from the session's own thread). Reads take what the page cache holds
//! without waiting (`RWF_NOWAIT`) and leave the rest, like syncs and hole punches, to the
//! blocking pool. The queue commit syncs every segment its batch's bodies touch (one
//! `fdatasync` each, shared by the whole batch) before the transaction that names them
//! commits, so no row ever points at bytes that are not durable. Bodies are given back after
//! the change that drops their rows commits (or when the batch that would have named them
//! fails before its commit): their blocks are punched out, and a segment no live body uses
//! is removed.
//! A crash between the two leaves bytes no row names; [`Spool::open`] finds them from the
//! rows and frees them before anything is accepted.
//!
//! One process owns a spool (a lock on `<dir>/LOCK`): the node that serves. Another that
//! opens it meanwhile (a `sluice` command beside `serve`, a test reading what the server
//! stored) gets it read-only: it reads bodies, and writes, syncs and frees none.

mod crashpoint;
mod reference;
mod segment;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sluice_core::body::{BODY_CHUNK, BodyReader, BodyWriter};
use sluice_core::sealed::MasterKey;
use sluice_core::sealed_chunks::{CHUNK_OVERHEAD, ChunkCipher};
use sluice_core::{BodyError, BodyStorage};

pub use crashpoint::crashpoint;
pub use reference::{Extent, SpoolRef};
use segment::{Segment, segment_id};

/// Where a segment rotates (64 MiB).
pub const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// The file system block writes are aligned to (and holes punched in).
const BLOCK: u64 = 4096;

/// What start-up recovery found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecoverReport {
    /// Segment files no row names, removed.
    pub segments_removed: usize,
    /// Bytes rows still name.
    pub live_bytes: u64,
}

pub struct Spool {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    segment_bytes: u64,
    /// Seals new bodies when set (`storage.encrypt_bodies`).
    seal_with: Option<Arc<MasterKey>>,
    /// Opens sealed bodies (any key of the ring).
    key: Option<Arc<MasterKey>>,
    state: Mutex<State>,
    /// Counts syncs started: bytes written while it read `e` are covered by a sync that
    /// started after (which moves its segments' `durable` past `e`).
    epoch: std::sync::atomic::AtomicU64,
    /// One sync at a time (group sync): a caller that waited here usually finds its bytes
    /// covered by the sync that ran meanwhile, and returns without one of its own.
    sync_gate: tokio::sync::Mutex<()>,
    /// Held while this spool owns the directory; `None`: opened read-only.
    _lock: Option<std::fs::File>,
}

struct State {
    /// Where new bodies go; `None` when read-only.
    active: Option<Arc<Segment>>,
    segments: HashMap<u64, Arc<Segment>>,
}

/// The directory's lock, when no other process holds it.
fn try_lock(dir: &Path) -> Result<Option<std::fs::File>, BodyError> {
    use rustix::fs::{FlockOperation, flock};
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("LOCK"))
        .map_err(storage)?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(error) => Err(storage(error.into())),
    }
}

fn read_only() -> BodyError {
    BodyError::Unavailable("the spool belongs to the running node; opened read-only".into())
}

fn storage(error: std::io::Error) -> BodyError {
    BodyError::Storage(error.to_string())
}

impl Spool {
    /// Opens the spool in `dir` (creating it), freeing what no reference in `live` names:
    /// those are every row's body reference, read before any new body is written.
    pub fn open(
        dir: &Path,
        live: impl IntoIterator<Item = Vec<u8>>,
        key: Option<Arc<MasterKey>>,
        encrypt: bool,
        segment_bytes: u64,
    ) -> Result<(Spool, RecoverReport), BodyError> {
        std::fs::create_dir_all(dir).map_err(storage)?;
        let Some(lock) = try_lock(dir)? else {
            let spool = Spool {
                inner: Arc::new(Inner {
                    dir: dir.to_path_buf(),
                    segment_bytes,
                    seal_with: None,
                    key,
                    state: Mutex::new(State {
                        active: None,
                        segments: HashMap::new(),
                    }),
                    epoch: Default::default(),
                    sync_gate: tokio::sync::Mutex::new(()),
                    _lock: None,
                }),
            };
            return Ok((spool, RecoverReport::default()));
        };
        let mut named: HashMap<u64, Vec<(u64, u64)>> = HashMap::new();
        for reference in live {
            match SpoolRef::decode(&reference) {
                Ok(spooled) => {
                    for e in spooled.extents {
                        named.entry(e.segment).or_default().push((e.offset, e.len));
                    }
                }
                Err(error) => tracing::warn!(%error, "a row's body reference is unreadable"),
            }
        }
        let mut report = RecoverReport::default();
        let mut segments = HashMap::new();
        let mut last_id = 0;
        for entry in std::fs::read_dir(dir).map_err(storage)? {
            let entry = entry.map_err(storage)?;
            let Some(id) = entry.file_name().to_str().and_then(segment_id) else {
                continue;
            };
            last_id = last_id.max(id);
            let path = entry.path();
            let Some(mut runs) = named.remove(&id) else {
                std::fs::remove_file(&path).map_err(storage)?;
                report.segments_removed += 1;
                continue;
            };
            runs.sort_unstable();
            let live: u64 = runs.iter().map(|(_, len)| len).sum();
            let segment = Segment::reopen(path, id, live).map_err(storage)?;
            let mut free_from = 0;
            for (offset, len) in runs {
                segment.punch(free_from, offset.saturating_sub(free_from));
                free_from = free_from.max(offset + len);
            }
            let end = segment.end.load(Ordering::Acquire);
            segment.punch(free_from, end.saturating_sub(free_from));
            report.live_bytes += live;
            segments.insert(id, Arc::new(segment));
        }
        for id in named.keys() {
            tracing::error!(segment = id, "rows name a spool segment that is missing");
        }
        let active = Arc::new(Segment::create(dir, last_id + 1).map_err(storage)?);
        segments.insert(active.id, active.clone());
        let spool = Spool {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                segment_bytes,
                seal_with: key.clone().filter(|_| encrypt),
                key,
                state: Mutex::new(State {
                    active: Some(active),
                    segments,
                }),
                epoch: Default::default(),
                sync_gate: tokio::sync::Mutex::new(()),
                _lock: Some(lock),
            }),
        };
        Ok((spool, report))
    }

    /// Bytes the file system holds for the spool's segments (holes not counted).
    pub fn allocated_bytes(&self) -> u64 {
        let state = self.inner.state.lock().unwrap();
        state
            .segments
            .values()
            .map(|s| Segment::allocated(&s.path))
            .sum()
    }

    /// Whether a sync since covers every byte of this body.
    pub fn is_durable(&self, reference: &[u8]) -> Result<bool, BodyError> {
        let spooled = SpoolRef::decode(reference)?;
        for extent in &spooled.extents {
            let segment = self.inner.segment(extent.segment)?;
            if segment.durable.load(Ordering::Acquire) <= spooled.written_epoch {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The spool's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }
}

impl Inner {
    /// Where `len` bytes go: the active segment (a new one when it is full).
    fn reserve(&self, len: u64) -> Result<(Arc<Segment>, u64), BodyError> {
        let mut state = self.state.lock().unwrap();
        let end = state
            .active
            .as_ref()
            .ok_or_else(read_only)?
            .end
            .load(Ordering::Acquire);
        if end > 0 && end + len > self.segment_bytes {
            self.rotate(&mut state)?;
        }
        let segment = state.active.clone().ok_or_else(read_only)?;
        // Every write starts on a block of its own, so no block holds two bodies' bytes and
        // a body given back frees every block it used.
        let offset = segment.end.load(Ordering::Acquire).next_multiple_of(BLOCK);
        segment.end.store(offset + len, Ordering::Release);
        segment.live.fetch_add(len, Ordering::AcqRel);
        Ok((segment, offset))
    }

    fn rotate(&self, state: &mut State) -> Result<(), BodyError> {
        let Some(old) = state.active.take() else {
            return Err(read_only());
        };
        let next = match Segment::create(&self.dir, old.id + 1) {
            Ok(next) => Arc::new(next),
            Err(error) => {
                state.active = Some(old);
                return Err(storage(error));
            }
        };
        state.active = Some(next.clone());
        state.segments.insert(next.id, next);
        if old.live.load(Ordering::Acquire) == 0 {
            state.segments.remove(&old.id);
            let _ = std::fs::remove_file(&old.path);
        }
        Ok(())
    }

    fn segment(&self, id: u64) -> Result<Arc<Segment>, BodyError> {
        let mut state = self.state.lock().unwrap();
        if let Some(segment) = state.segments.get(&id) {
            return Ok(segment.clone());
        }
        let gone = || BodyError::Corrupt(format!("spool segment {id} is gone"));
        if state.active.is_some() {
            return Err(gone());
        }
        // Read-only: segments are opened as bodies in them are read.
        let path = self.dir.join(segment::segment_name(id));
        let segment = Arc::new(Segment::reopen(path, id, 0).map_err(|_| gone())?);
        state.segments.insert(id, segment.clone());
        Ok(segment)
    }

    fn owned(&self) -> bool {
        self.state.lock().unwrap().active.is_some()
    }

    /// Gives these runs back; removes segments left with nothing live.
    fn give_back(&self, extents: &[Extent]) {
        if !self.owned() {
            return;
        }
        for extent in extents {
            let Ok(segment) = self.segment(extent.segment) else {
                continue;
            };
            segment.punch(extent.offset, extent.len.next_multiple_of(BLOCK));
            crashpoint("body-given-back");
            if segment.take_live(extent.len) == 0 {
                let mut state = self.state.lock().unwrap();
                let idle = segment.live.load(Ordering::Acquire) == 0;
                let active = state.active.as_ref().map(|a| a.id);
                if idle && active != Some(segment.id) {
                    state.segments.remove(&segment.id);
                    let _ = std::fs::remove_file(&segment.path);
                }
            }
        }
    }
}

#[async_trait]
impl BodyStorage for Spool {
    async fn writer(&self) -> Result<Box<dyn BodyWriter>, BodyError> {
        if !self.inner.owned() {
            return Err(read_only());
        }
        let (cipher, wrapped_key) = match &self.inner.seal_with {
            Some(master) => {
                let data_key: [u8; 32] = rand::random();
                let wrapped = master.wrap_data_key(&data_key, rand::random());
                (Some(ChunkCipher::new(&data_key)), Some(wrapped))
            }
            None => (None, None),
        };
        Ok(Box::new(SpoolWriter {
            spool: self.inner.clone(),
            buffer: Default::default(),
            written: SpoolRef {
                wrapped_key,
                extents: Vec::new(),
                written_epoch: 0,
            },
            cipher,
            chunks: 0,
            finished: false,
        }))
    }

    async fn reader(&self, reference: &[u8]) -> Result<Box<dyn BodyReader>, BodyError> {
        let spooled = SpoolRef::decode(reference)?;
        let cipher = match &spooled.wrapped_key {
            None => None,
            Some(wrapped) => {
                let key = self.inner.key.as_ref().ok_or_else(|| {
                    BodyError::Corrupt("a sealed body, and no master key to open it".into())
                })?;
                let data_key = key.unwrap_data_key(wrapped).map_err(|_| {
                    BodyError::Corrupt("a body key no configured master key opens".into())
                })?;
                Some(ChunkCipher::new(&data_key))
            }
        };
        Ok(Box::new(SpoolReader {
            spool: self.inner.clone(),
            remaining: spooled.stored_len(),
            extents: spooled.extents.into_iter().collect(),
            cipher,
            chunk: 0,
        }))
    }

    async fn sync(&self, references: &[&[u8]]) -> Result<(), BodyError> {
        if !self.inner.owned() {
            return Err(read_only());
        }
        let _turn = self.inner.sync_gate.lock().await;
        // Only segments holding bytes that no sync started since covers.
        let mut ids = HashSet::new();
        for reference in references {
            let spooled = SpoolRef::decode(reference)?;
            for extent in &spooled.extents {
                let segment = self.inner.segment(extent.segment)?;
                if segment.durable.load(Ordering::Acquire) <= spooled.written_epoch {
                    ids.insert(extent.segment);
                }
            }
        }
        let segments = ids
            .into_iter()
            .map(|id| self.inner.segment(id))
            .collect::<Result<Vec<_>, _>>()?;
        if segments.is_empty() {
            return Ok(());
        }
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let epoch = inner.epoch.fetch_add(1, Ordering::AcqRel);
            let started = std::time::Instant::now();
            let synced = segments.iter().try_for_each(|s| s.sync());
            metrics::histogram!("sluice_spool_sync_seconds")
                .record(started.elapsed().as_secs_f64());
            if synced.is_ok() {
                for segment in &segments {
                    segment.durable.fetch_max(epoch + 1, Ordering::AcqRel);
                }
            }
            if synced.is_err() {
                // After a failed sync the kernel may have dropped the dirty pages and the
                // next sync may report success: nothing more is written to that segment.
                let mut state = inner.state.lock().unwrap();
                let active = state.active.as_ref().map(|a| a.id);
                if segments.iter().any(|s| Some(s.id) == active) {
                    let _ = inner.rotate(&mut state);
                }
            }
            synced.map_err(storage)
        })
        .await
        .map_err(|e| BodyError::Storage(e.to_string()))?
    }

    fn rewrap(&self, reference: &[u8]) -> Result<Option<Vec<u8>>, BodyError> {
        let mut spooled = SpoolRef::decode(reference)?;
        let (Some(wrapped), Some(key)) = (&spooled.wrapped_key, &self.inner.key) else {
            return Ok(None);
        };
        let rewrapped = key
            .rewrap_data_key(wrapped, rand::random())
            .map_err(|_| BodyError::Corrupt("a body key no configured master key opens".into()))?;
        let Some(rewrapped) = rewrapped else {
            return Ok(None);
        };
        spooled.wrapped_key = Some(rewrapped);
        Ok(Some(spooled.encode()))
    }

    async fn release(&self, references: Vec<Vec<u8>>) {
        let inner = self.inner.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for reference in references {
                match SpoolRef::decode(&reference) {
                    Ok(spooled) => inner.give_back(&spooled.extents),
                    Err(error) => tracing::warn!(%error, "body not given back"),
                }
            }
        })
        .await;
    }
}

struct SpoolWriter {
    spool: Arc<Inner>,
    /// At most one chunk not yet written (and, when sealing, the last one held back until
    /// it is known to be the last).
    buffer: sluice_core::body::ChunkBuffer,
    written: SpoolRef,
    cipher: Option<ChunkCipher>,
    chunks: u64,
    finished: bool,
}

impl SpoolWriter {
    async fn append(&mut self, plain: Vec<u8>, last: bool) -> Result<(), BodyError> {
        let bytes = match &self.cipher {
            Some(cipher) => cipher.seal_chunk(self.chunks, last, &plain),
            None => plain,
        };
        self.chunks += 1;
        let (segment, offset) = self.spool.reserve(bytes.len() as u64)?;
        let len = bytes.len() as u64;
        self.written.push(Extent {
            segment: segment.id,
            offset,
            len,
        });
        // Into the page cache on this thread: a chunk is at most 64 KiB (and its tag). A
        // buffered write normally only copies; it can wait when the kernel holds writers
        // back (dirty pages over its limits, which the spool's syncs of every accepted body
        // keep low; memory reclaim; the file system's own locks and journal), and then
        // this worker waits with it. Accepted as a trade: a trip to the blocking pool per
        // chunk cost 15% of the throughput at 50 KB on two cores (issue N). Syncs, reads
        // the cache cannot answer and hole punches stay on the blocking pool.
        segment.write_at(&bytes, offset).map_err(storage)?;
        self.written.written_epoch = self.spool.epoch.load(Ordering::Acquire);
        Ok(())
    }
}

#[async_trait]
impl BodyWriter for SpoolWriter {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), BodyError> {
        for full in self.buffer.push(bytes) {
            self.append(full, false).await?;
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<(Vec<u8>, u64), BodyError> {
        let (rest, len) = self.buffer.finish();
        if !rest.is_empty() || self.cipher.is_some() {
            self.append(rest, true).await?;
        }
        self.finished = true;
        Ok((self.written.encode(), len))
    }
}

impl Drop for SpoolWriter {
    fn drop(&mut self) {
        if !self.finished {
            self.spool.give_back(&self.written.extents);
        }
    }
}

struct SpoolReader {
    spool: Arc<Inner>,
    extents: std::collections::VecDeque<Extent>,
    remaining: u64,
    cipher: Option<ChunkCipher>,
    chunk: u64,
}

#[async_trait]
impl BodyReader for SpoolReader {
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, BodyError> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let piece = match self.cipher {
            Some(_) => BODY_CHUNK + CHUNK_OVERHEAD,
            None => BODY_CHUNK,
        };
        let want = (piece as u64).min(self.remaining);
        let mut runs = Vec::new();
        let mut left = want;
        while left > 0 {
            let extent = self.extents.front_mut().ok_or_else(|| {
                BodyError::Corrupt("a spool reference shorter than its body".into())
            })?;
            let take = extent.len.min(left);
            runs.push((extent.segment, extent.offset, take));
            extent.offset += take;
            extent.len -= take;
            left -= take;
            if extent.len == 0 {
                self.extents.pop_front();
            }
        }
        let runs = runs
            .into_iter()
            .map(|(id, offset, len)| Ok((self.spool.segment(id)?, offset, len as usize)))
            .collect::<Result<Vec<_>, BodyError>>()?;
        // From the page cache on this thread when it holds the bytes (a body just accepted
        // usually is); the rest from the disk on the blocking pool.
        let mut bytes = vec![0; want as usize];
        let cached = fill_from(&mut bytes, &runs, 0, true).map_err(storage)?;
        if cached < bytes.len() {
            bytes = tokio::task::spawn_blocking(move || {
                fill_from(&mut bytes, &runs, cached, false).map(|_| bytes)
            })
            .await
            .map_err(|e| BodyError::Storage(e.to_string()))?
            .map_err(storage)?;
        }
        self.remaining -= want;
        let chunk = self.chunk;
        self.chunk += 1;
        match &self.cipher {
            None => Ok(Some(bytes)),
            Some(cipher) => cipher
                .open_chunk(chunk, self.remaining == 0, &bytes)
                .map(Some)
                .map_err(|_| BodyError::Corrupt("a sealed body chunk does not open".into())),
        }
    }
}

/// Fills `out` from `runs` (segment, offset, length; their lengths add up to `out`'s),
/// starting at byte `from` of `out`. With `cached_only` it stops at the first byte the page
/// cache does not hold; it answers how far `out` is filled.
fn fill_from(
    out: &mut [u8],
    runs: &[(Arc<Segment>, u64, usize)],
    from: usize,
    cached_only: bool,
) -> std::io::Result<usize> {
    debug_assert_eq!(runs.iter().map(|r| r.2).sum::<usize>(), out.len());
    let mut start = 0;
    let mut filled = from;
    for (segment, offset, len) in runs {
        let end = start + len;
        if filled < end {
            let skip = filled - start;
            let buf = &mut out[filled..end];
            let at = offset + skip as u64;
            if cached_only {
                let read = segment.read_cached_at(buf, at);
                filled += read;
                if read < buf.len() {
                    return Ok(filled);
                }
            } else {
                segment.read_at(buf, at)?;
                filled = end;
            }
        }
        start = end;
    }
    Ok(filled)
}

#[cfg(test)]
mod tests;
