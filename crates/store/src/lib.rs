//! Durable state: the `Store` trait, its SQLite backend and the group committer.
//!
//! Only this crate speaks SQL, and every query is parameterised.

mod accounts;
mod admin;
mod bodies;
pub mod capture;
mod domains;
mod feedback;
mod group_commit;
mod idempotency;
mod messages;
mod pg_bodies;
mod postgres;
mod queue;
mod reserve;
mod routing;
mod rows;
pub mod spool;
mod sql;
mod sqlite;
mod types;
mod users;
mod webhooks;

use thiserror::Error;

pub mod ttl_cache;

pub use bodies::BodyCodec;
pub use group_commit::{
    BatchWrite, Batcher, GroupCommitConfig, QueueCommitter, QueueWrite, QueueWrites, QueueWritten,
};
pub use pg_bodies::PgBodies;
pub use postgres::PgStore;
pub use reserve::{DiskReserve, storage_faults};
pub use sqlite::SqliteStore;
pub use types::*;

pub use accounts::{AccountStore, cached_account_status};
pub use admin::AdminStore;
pub use capture::CaptureStore;
pub use domains::DomainStore;
pub use feedback::FeedbackStore;
pub use messages::MessageStore;
pub use queue::QueueStore;
pub use routing::RoutingStore;
pub use users::UserStore;
pub use webhooks::WebhookStore;

#[derive(Debug, Clone, Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("already exists: {0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(String),
    /// The disk failed the write or its sync, is full, or is below `storage.min_free_bytes`;
    /// nothing of the write is promised. Answered 452 4.3.1 (SMTP) / 507 (HTTP).
    #[error("storage failed: {0}")]
    Storage(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_string())
            }
            sqlx::Error::Database(db) if reserve::is_storage_fault(db.as_ref()) => {
                reserve::note_storage_fault();
                StoreError::Storage(db.message().to_string())
            }
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(err.to_string())
            }
            _ => StoreError::Database(err.to_string()),
        }
    }
}

/// A stored kind (status, role, source …) that names no value of its enum.
impl From<sluice_core::UnknownKind> for StoreError {
    fn from(err: sluice_core::UnknownKind) -> Self {
        StoreError::Corrupt(err.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(err: serde_json::Error) -> Self {
        StoreError::Corrupt(err.to_string())
    }
}

/// Everything Sluice keeps, area by area; one implementation per database backend. A
/// caller that needs one area takes that trait (the worker's runner takes a
/// `QueueStore`); `Arc<dyn Store>` coerces to any of them.
pub trait Store:
    QueueStore
    + MessageStore
    + AccountStore
    + UserStore
    + RoutingStore
    + WebhookStore
    + FeedbackStore
    + AdminStore
    + DomainStore
    + CaptureStore
    + 'static
{
}

impl<T> Store for T where
    T: QueueStore
        + MessageStore
        + AccountStore
        + UserStore
        + RoutingStore
        + WebhookStore
        + FeedbackStore
        + AdminStore
        + DomainStore
        + CaptureStore
        + ?Sized
        + 'static
{
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Pool size (for SQLite: readers; writes always go through one connection).
    pub max_connections: u32,
    /// How long to wait for a connection before giving up (PostgreSQL).
    pub connect_timeout: std::time::Duration,
    /// Longest any statement may run (PostgreSQL `statement_timeout`).
    pub statement_timeout: std::time::Duration,
    /// How message bodies are sealed and opened.
    pub bodies: BodyCodec,
    /// SQLite: the directory of the spool that holds large bodies (`<data_dir>/spool`).
    /// `None` keeps every body in its row.
    pub spool_dir: Option<std::path::PathBuf>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            max_connections: 8,
            connect_timeout: std::time::Duration::from_secs(5),
            statement_timeout: std::time::Duration::from_secs(30),
            bodies: BodyCodec::default(),
            spool_dir: None,
        }
    }
}

/// Opens the store a URL names (`sqlite://...` or `postgres://...`) and runs its migrations.
pub async fn open(
    url: &str,
    options: &OpenOptions,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(SqliteStore::open(url, options).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(std::sync::Arc::new(PgStore::open(url, options).await?))
    } else {
        Err(StoreError::Database(format!(
            "unsupported database url scheme: {}",
            url.split(':').next().unwrap_or_default()
        )))
    }
}
