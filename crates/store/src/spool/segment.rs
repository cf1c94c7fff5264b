//! One segment file of the spool: bytes appended at offsets handed out under the spool's
//! lock, synced as a whole, and given back by punching holes.

use std::fs::{File, OpenOptions};
use std::io::IoSliceMut;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{FallocateFlags, fallocate};
use rustix::io::{ReadWriteFlags, preadv2};

pub struct Segment {
    pub id: u64,
    pub path: PathBuf,
    file: File,
    /// The next free offset; moved only under the spool's lock.
    pub end: AtomicU64,
    /// Bytes of bodies written here that no one has given back yet (finished or still being
    /// written). At zero a segment that is no longer the active one is removed.
    pub live: AtomicU64,
    /// Bytes written while the spool's sync epoch was below this are durable.
    pub durable: AtomicU64,
}

pub fn segment_name(id: u64) -> String {
    format!("seg-{id:016x}.dat")
}

/// The id a segment file's name carries.
pub fn segment_id(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("seg-")?.strip_suffix(".dat")?;
    u64::from_str_radix(hex, 16).ok()
}

impl Segment {
    /// A new, empty segment; its directory entry is synced before it is used.
    pub fn create(dir: &Path, id: u64) -> std::io::Result<Segment> {
        let path = dir.join(segment_name(id));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        File::open(dir)?.sync_all()?;
        Ok(Segment {
            id,
            path,
            file,
            end: AtomicU64::new(0),
            live: AtomicU64::new(0),
            durable: AtomicU64::new(0),
        })
    }

    /// A segment found at start-up, holding `live` bytes of bodies rows still name.
    pub fn reopen(path: PathBuf, id: u64, live: u64) -> std::io::Result<Segment> {
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        let end = file.metadata()?.len();
        Ok(Segment {
            id,
            path,
            file,
            end: AtomicU64::new(end),
            live: AtomicU64::new(live),
            // What was here at start-up is what rows named: durable before they committed.
            durable: AtomicU64::new(u64::MAX),
        })
    }

    pub fn write_at(&self, bytes: &[u8], offset: u64) -> std::io::Result<()> {
        self.file.write_all_at(bytes, offset)
    }

    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    /// Reads what the page cache holds of `buf.len()` bytes at `offset` without waiting for
    /// the disk to answer (`RWF_NOWAIT`; the kernel may still start a readahead): how many
    /// bytes it read, fewer (even none) when the rest is not cached, the file ends, or the
    /// kernel cannot read without waiting.
    pub fn read_cached_at(&self, buf: &mut [u8], offset: u64) -> usize {
        let mut done = 0;
        while done < buf.len() {
            let mut slices = [IoSliceMut::new(&mut buf[done..])];
            match preadv2(
                &self.file,
                &mut slices,
                offset + done as u64,
                ReadWriteFlags::NOWAIT,
            ) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(rustix::io::Errno::INTR) => {}
                // EAGAIN: not cached; EOPNOTSUPP / EINVAL: no RWF_NOWAIT here.
                Err(_) => break,
            }
        }
        done
    }

    pub fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    /// Gives the blocks of `[offset, offset + len)` back to the file system; the file keeps
    /// its size. On a file system without hole punching the bytes stay until the segment
    /// is removed whole.
    pub fn punch(&self, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        let flags = FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE;
        if let Err(error) = fallocate(&self.file, flags, offset, len) {
            tracing::debug!(%error, segment = self.id, "hole punch not done");
        }
    }

    /// Bytes the file system holds for this file (holes not counted).
    pub fn allocated(path: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).map_or(0, |m| m.blocks() * 512)
    }

    pub fn take_live(&self, len: u64) -> u64 {
        self.live.fetch_sub(len, Ordering::AcqRel) - len
    }
}
