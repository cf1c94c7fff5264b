//! The spool as the large-message tests check it: what its segment files hold on disk
//! against what the rows name, and every stored message against what its client sent.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use sha2::{Digest, Sha256};
use sluice_store::spool::SpoolRef;

use super::{Db, strip_received};

/// The file system's block: holes are punched in whole blocks.
const BLOCK: u64 = 4096;

/// One row of `messages`, as the spool checks need it.
#[derive(Debug, Clone)]
pub struct MessageRow {
    pub id: i64,
    pub status: String,
    pub size: i64,
    pub body_ref: Option<Vec<u8>>,
    pub purged: bool,
}

/// id, status, size, body_ref, body_purged_at.
type RowColumns = (i64, String, i64, Option<Vec<u8>>, Option<i64>);

/// Every message row of the instance's SQLite database (read beside the running server).
pub fn message_rows(database_url: &str) -> Vec<MessageRow> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pool = sqlx::SqlitePool::connect(database_url).await.unwrap();
        let rows: Vec<RowColumns> = sqlx::query_as(
            "SELECT id, status, size, body_ref, body_purged_at FROM messages ORDER BY id",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        pool.close().await;
        rows.into_iter()
            .map(|(id, status, size, body_ref, purged_at)| MessageRow {
                id,
                status,
                size,
                body_ref,
                purged: purged_at.is_some(),
            })
            .collect()
    })
}

/// The spool's use of the disk against what rows name.
#[derive(Debug, Clone, Copy)]
pub struct SpoolUse {
    /// Bytes the file system holds for `seg-*.dat` (`st_blocks` × 512).
    pub allocated: u64,
    pub segments: usize,
    /// Bytes of the runs rows' body references name.
    pub named: u64,
    /// Bytes of the blocks those runs touch: once start-up has freed what no row names,
    /// nothing else may be held.
    pub named_blocks: u64,
    pub rows_with_body: usize,
}

impl SpoolUse {
    pub fn measure(data_dir: &Path, database_url: &str) -> SpoolUse {
        let (allocated, segments) = spool_allocated(data_dir);
        let mut named = 0;
        let mut blocks = HashSet::new();
        let mut rows_with_body = 0;
        for row in message_rows(database_url) {
            let Some(reference) = row.body_ref else {
                continue;
            };
            rows_with_body += 1;
            let spooled = SpoolRef::decode(&reference).expect("a body reference that parses");
            for extent in spooled.extents {
                named += extent.len;
                if extent.len > 0 {
                    let last = (extent.offset + extent.len - 1) / BLOCK;
                    blocks.extend((extent.offset / BLOCK..=last).map(|b| (extent.segment, b)));
                }
            }
        }
        SpoolUse {
            allocated,
            segments,
            named,
            named_blocks: blocks.len() as u64 * BLOCK,
            rows_with_body,
        }
    }

    /// Nothing leaked: every byte the rows name is on disk, and the disk holds no block
    /// beyond the ones they touch (plus `slack`).
    pub fn assert_no_leak(&self, slack: u64, what: &str) {
        println!("{what}: {self}");
        assert!(
            self.allocated >= self.named,
            "{what}: the spool holds less than the rows name: {self}"
        );
        assert!(
            self.allocated <= self.named_blocks + slack,
            "{what}: the spool holds {} bytes more than the blocks rows name: {self}",
            self.allocated - self.named_blocks
        );
    }
}

impl std::fmt::Display for SpoolUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const MIB: f64 = 1024.0 * 1024.0;
        write!(
            f,
            "spool {:.2} MiB allocated in {} segment(s); rows ({}) name {:.2} MiB in {:.2} MiB of blocks",
            self.allocated as f64 / MIB,
            self.segments,
            self.rows_with_body,
            self.named as f64 / MIB,
            self.named_blocks as f64 / MIB
        )
    }
}

/// Bytes the file system holds for the segment files in `<data_dir>/spool`, and how many.
pub fn spool_allocated(data_dir: &Path) -> (u64, usize) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(data_dir.join("spool")) else {
        return (0, 0);
    };
    let mut bytes = 0;
    let mut count = 0;
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("seg-")
            && name.ends_with(".dat")
            && let Ok(meta) = entry.metadata()
        {
            bytes += meta.blocks() * 512;
            count += 1;
        }
    }
    (bytes, count)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Every stored message whose body is still kept: `(label, seq)` → (id, SHA-256 of the
/// message without the Received header Sluice put first). Bodies are read one at a time.
pub fn stored_messages(
    db: &Db,
    rows: &[MessageRow],
) -> BTreeMap<(String, u64), Vec<(i64, String)>> {
    let mut stored: BTreeMap<(String, u64), Vec<(i64, String)>> = BTreeMap::new();
    for row in rows.iter().filter(|r| !r.purged) {
        let bytes = db.message_bytes(row.id);
        let message = strip_received(&bytes);
        let key = sluice_testkit::spool_seq(message)
            .unwrap_or_else(|| panic!("message {} carries no X-Spool-Seq", row.id));
        stored
            .entry(key)
            .or_default()
            .push((row.id, sha256_hex(message)));
    }
    stored
}
