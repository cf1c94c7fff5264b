//! Where and how mail is kept: `[database]`, `[storage]`, `[retention]`, `[store]`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path`, `postgres://user@host/db`, or empty for `<data_dir>/sluice.db`.
    pub url: String,
    pub max_connections: u32,
    /// PostgreSQL: how long to wait for a connection before answering "try again later".
    pub connect_timeout_secs: u64,
    /// PostgreSQL: `statement_timeout` for every statement.
    pub statement_timeout_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Seal message bodies with AES-256-GCM under the master key before they are stored.
    /// Bodies stored before it was turned on stay readable (and stay in the clear until
    /// `sluice keys rotate` rewrites them).
    pub encrypt_bodies: bool,
    /// New mail is refused (452 4.3.1 / 507) while the file system holding the SQLite
    /// database has less than this many bytes free, and taken again once it has more.
    /// 0 turns the check off. Not applied on PostgreSQL (its disk is not this machine's).
    pub min_free_bytes: u64,
    /// Message bodies longer than this are written to the body store as they arrive (the
    /// spool's segment files in `<data_dir>/spool` on SQLite, chunks on PostgreSQL) and
    /// never held whole; shorter ones stay in their row.
    pub inline_body_bytes: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            encrypt_bodies: false,
            // One WAL cycle (the writer checkpoints at 10,000 pages of WAL: 10 MB, or 40 MB in
            // a database made before 1 KiB pages; the checkpoint may grow the database file by
            // as much) plus the delivery log and its rotated copy (2 × 5 MB), with room to
            // spare.
            min_free_bytes: 100 * 1024 * 1024,
            inline_body_bytes: 4096,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Bodies of delivered, failed, bounced and cancelled messages are removed after this
    /// many days (the message row, its events and attempts stay). 0: keep forever.
    pub body_days: u32,
    /// Finished messages with their events and attempts are removed after this many days.
    /// 0: keep forever.
    pub metadata_days: u32,
    /// Captured mail kept per account, newest first, for accounts that set no
    /// `capture_retention_count` of their own. 0: no limit.
    pub capture_count: u32,
    /// Captured mail is removed after this many days, for accounts that set no
    /// `capture_retention_days` of their own. 0: keep.
    pub capture_days: u32,
    /// Rows removed per statement; the purge runs in such batches until nothing is left.
    pub batch_size: u32,
    /// How often the purge runs.
    pub interval_secs: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            body_days: 7,
            metadata_days: 90,
            capture_count: 1000,
            capture_days: 30,
            batch_size: 500,
            interval_secs: 600,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Most messages one group commit holds.
    pub group_commit_max_batch: usize,
    /// Longest a write waits for others to share its commit, in microseconds. 0 (the
    /// default): none; writes that arrive while a commit is running share the next one,
    /// which is batching enough under load and adds no wait when idle.
    pub group_commit_max_wait_micros: u64,
    /// How long (ms) a node may reuse an account's settings it read for delivery and
    /// accept: providers, routing rules, DKIM keys, monthly usage. 0: read them for every
    /// message. Changes made on any node apply everywhere within this time.
    pub account_cache_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: String::new(),
            max_connections: 8,
            connect_timeout_secs: 5,
            statement_timeout_secs: 30,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            group_commit_max_batch: 256,
            group_commit_max_wait_micros: 0,
            account_cache_ms: 1000,
        }
    }
}
