//! Storage faults and the free-space reserve.
//!
//! A write the disk refused (full, an I/O error on write or sync, a corrupt page) is
//! [`StoreError::Storage`](crate::StoreError::Storage). Each one bumps a process-wide count
//! ([`storage_faults`]); the SQLite pools compare it on every acquire and close connections
//! that were open before the fault, so nothing after it runs on a connection whose state
//! (an open transaction, sqlx's idea of its depth) the failed write may have left wrong.
//!
//! [`DiskReserve`] refuses new mail while the data directory's file system has less than
//! `storage.min_free_bytes` free, and takes it again as soon as space returns.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static STORAGE_FAULTS: AtomicU64 = AtomicU64::new(0);
/// When the last fault happened: nanoseconds after [`EPOCH`], plus one (0: never).
static LAST_FAULT: AtomicU64 = AtomicU64::new(0);
static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// How many storage faults this process has seen.
pub fn storage_faults() -> u64 {
    STORAGE_FAULTS.load(Ordering::Acquire)
}

pub(crate) fn note_storage_fault() {
    STORAGE_FAULTS.fetch_add(1, Ordering::AcqRel);
    let since = EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64;
    LAST_FAULT.store(since.saturating_add(1), Ordering::Release);
    metrics::counter!("sluice_storage_faults_total").increment(1);
}

/// A fault of the body store (a spool write or sync that failed): counted like any
/// storage fault, but the database's connections stay trusted, since none of them was
/// writing.
pub(crate) fn note_body_storage_fault() {
    STORAGE_FAULTS.fetch_add(1, Ordering::AcqRel);
    metrics::counter!("sluice_storage_faults_total").increment(1);
}

/// True for a connection of `age` that was opened before the last storage fault: it must
/// not be used again (the pools close it and open a fresh one, which reads the database
/// and its WAL anew).
pub(crate) fn opened_before_last_fault(age: Duration) -> bool {
    let last = LAST_FAULT.load(Ordering::Acquire);
    if last == 0 {
        return false;
    }
    let epoch = *EPOCH.get_or_init(Instant::now);
    let fault_at = epoch + Duration::from_nanos(last - 1);
    Instant::now()
        .checked_sub(age)
        .is_none_or(|opened| opened <= fault_at)
}

/// SQLite: SQLITE_IOERR (10) and its extended codes, SQLITE_CORRUPT (11), SQLITE_FULL (13),
/// SQLITE_CANTOPEN (14), SQLITE_NOTADB (26). PostgreSQL: class 53 (insufficient resources,
/// `disk_full`), class 58 (system error, `io_error`), XX001/XX002 (data or index corrupted).
pub(crate) fn is_storage_fault(error: &dyn sqlx::error::DatabaseError) -> bool {
    if error
        .try_downcast_ref::<sqlx::sqlite::SqliteError>()
        .is_some()
    {
        // sqlx gives SQLite's extended result code; the primary code is its low byte.
        let code = error
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .unwrap_or(0);
        return matches!(code & 0xff, 10 | 11 | 13 | 14 | 26);
    }
    if error
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some()
    {
        let code = error.code().unwrap_or_default();
        return code.starts_with("53") && code != "53300" // too_many_connections: not the disk
            || code.starts_with("58")
            || code == "XX001"
            || code == "XX002";
    }
    false
}

/// The free-space reserve on the file system holding the data directory.
#[derive(Debug, Clone)]
pub struct DiskReserve {
    dir: PathBuf,
    min_free_bytes: u64,
}

impl DiskReserve {
    pub fn new(dir: impl Into<PathBuf>, min_free_bytes: u64) -> Self {
        DiskReserve {
            dir: dir.into(),
            min_free_bytes,
        }
    }

    pub fn min_free_bytes(&self) -> u64 {
        self.min_free_bytes
    }

    /// Bytes an unprivileged writer may still use (`f_bavail × f_frsize`), also published
    /// as `sluice_storage_free_bytes`.
    pub fn free_bytes(&self) -> std::io::Result<u64> {
        let free = free_bytes(&self.dir)?;
        metrics::gauge!("sluice_storage_free_bytes").set(free as f64);
        Ok(free)
    }

    /// Ok while the reserve holds (or is 0); the error names what is left. A file system
    /// that cannot be asked counts as below the reserve: nothing is promised on a disk
    /// Sluice cannot see.
    pub fn check(&self) -> Result<u64, crate::StoreError> {
        if self.min_free_bytes == 0 {
            return Ok(u64::MAX);
        }
        match self.free_bytes() {
            Ok(free) if free >= self.min_free_bytes => Ok(free),
            Ok(free) => Err(crate::StoreError::Storage(format!(
                "{free} bytes free under {}, below the reserve of {}",
                self.dir.display(),
                self.min_free_bytes
            ))),
            Err(error) => Err(crate::StoreError::Storage(format!(
                "free space of {} unknown: {error}",
                self.dir.display()
            ))),
        }
    }
}

fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(dir)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_compares_free_space() {
        let dir = tempfile::tempdir().unwrap();
        let free = DiskReserve::new(dir.path(), 1).check().unwrap();
        assert!(free > 0);
        assert!(DiskReserve::new(dir.path(), u64::MAX).check().is_err());
        assert_eq!(DiskReserve::new(dir.path(), 0).check().unwrap(), u64::MAX);
        let gone = DiskReserve::new(dir.path().join("missing"), 1).check();
        assert!(matches!(gone, Err(crate::StoreError::Storage(_))));
    }
}
