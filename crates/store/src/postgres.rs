//! The PostgreSQL backend: several nodes share one database, which is also the queue.
//! Claims take rows with `FOR UPDATE SKIP LOCKED`, so nodes never wait on each other's
//! claims and never take the same message while its lease holds.

use std::str::FromStr;

use sluice_core::{AccountId, MessageId, MessageStatus};
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, Postgres};

use crate::sql::{impl_sql_store, json, like_escape};
use crate::{
    Account, AccountUpdate, ApiKeyRow, AttemptRecord, AttemptRow, AuditEntry, AuditRow,
    ClaimedMessage, DkimKeyRow, DomainRow, DueWebhook, EventRow, MessageFilter, MessageRecord,
    MessageSummary, NewAccount, NewDkimKey, NewMessage, NewProvider, NewRule, NewTemplate, NewUser,
    NewWebhookEndpoint, OpenOptions, ProviderRow, RuleRow, SessionRow, SmtpCredential, StoreError,
    SuppressionRow, TemplateRow, User, UserUpdate, WebhookAttemptRecord, WebhookAttemptRow,
    WebhookDeliveryRow, WebhookEndpointRow,
};

pub struct PgStore {
    write: PgPool,
    read: PgPool,
    bodies: crate::BodyCodec,
    /// Where large bodies go: the chunk table every node reads.
    body_store: Option<std::sync::Arc<dyn sluice_core::BodyStorage>>,
}

impl PgStore {
    /// Connects and runs the migrations (nodes starting together serialise on sqlx's
    /// advisory lock).
    pub async fn open(url: &str, options: &OpenOptions) -> Result<Self, StoreError> {
        let statement_timeout = format!("{}ms", options.statement_timeout.as_millis());
        let connect = PgConnectOptions::from_str(url)?
            .options([("statement_timeout", statement_timeout.as_str())]);
        // A connection released with a transaction still counted (a COMMIT that failed, one
        // abandoned on an error) is closed rather than reused: the failed COMMIT was never
        // acknowledged (its error is the caller's answer), and nothing later runs on a
        // connection whose transaction state sqlx and the server may see differently.
        let pool = PgPoolOptions::new()
            .after_release(|conn, _meta| {
                let finished = !sqlx::Connection::is_in_transaction(conn);
                Box::pin(async move { Ok(finished) })
            })
            .max_connections(options.max_connections.max(2))
            .acquire_timeout(options.connect_timeout)
            .connect_with(connect)
            .await?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Database(e.to_string()))?;
        let (key, encrypt) = options.bodies.spool_keys();
        let body_store = crate::PgBodies::new(pool.clone(), key, encrypt);
        Ok(PgStore {
            write: pool.clone(),
            read: pool,
            body_store: Some(std::sync::Arc::new(body_store)),
            bodies: options.bodies.clone(),
        })
    }

    /// Other nodes may hold leases right now; expired ones come back through the claim.
    async fn release_leases(&self, _now_ms: i64) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Chunks of bodies no row names, none of them written since `before_ms`.
    async fn sweep_orphan_bodies(&self, before_ms: i64) -> Result<u64, StoreError> {
        crate::pg_bodies::purge_orphans(&self.write, before_ms).await
    }

    /// Other nodes' clocks did not jump, and due times are also compared with the
    /// database's clock: nothing to move.
    async fn shift_due_times(&self, _jump_ms: i64, _now_ms: i64) -> Result<u64, StoreError> {
        Ok(0)
    }
}

/// The database's clock in Unix milliseconds.
macro_rules! db_now_ms {
    () => {
        "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
    };
}

impl PgStore {
    /// Capture search: each word a prefix of a word of `captured_mail.search` (migration
    /// 0021). Words are letters and digits only (`capture_query::words_of`), safe in a
    /// tsquery.
    fn push_words_match(select: &mut sqlx::QueryBuilder<Postgres>, words: &[String]) {
        let expression = words
            .iter()
            .map(|w| format!("{w}:*"))
            .collect::<Vec<_>>()
            .join(" & ");
        select
            .push(" AND c.search @@ to_tsquery('simple', ")
            .push_bind(expression)
            .push(")");
    }
}

impl_sql_store!(
    PgStore,
    Postgres,
    // Candidates come from each kind's index in order, a few times `$4` of them, so a claim
    // does not sort the whole backlog (one OR over the three did); then up to `$4` of them
    // that are still due and not locked by another node's claim are taken.
    // Leases are stamped and checked against the database's clock (`db_now_ms!`), so a
    // node whose clock jumped neither steals others' leases nor loses its own.
    claim_sql = concat!(
        "UPDATE messages SET status = 'sending', lease_owner = $1, lease_until = ",
        db_now_ms!(),
        " + $2, updated_at = $3 \
         WHERE id IN (SELECT id FROM messages \
             WHERE id IN (SELECT id FROM ( \
                 (SELECT id, next_attempt_at AS due FROM messages \
                     WHERE status = 'queued' AND next_attempt_at <= $3 ORDER BY next_attempt_at LIMIT $4 * 4) \
                 UNION ALL (SELECT id, next_attempt_at AS due FROM messages \
                     WHERE status = 'deferred' AND next_attempt_at <= $3 ORDER BY next_attempt_at LIMIT $4 * 4) \
                 UNION ALL (SELECT id, lease_until AS due FROM messages \
                     WHERE status = 'sending' AND lease_until < ",
        db_now_ms!(),
        " AND lease_owner <> $1 ORDER BY lease_until LIMIT $4 * 4) \
                 ) AS candidates ORDER BY due LIMIT $4 * 4) \
               AND ((status IN ('queued', 'deferred') AND next_attempt_at <= $3) \
                 OR (status = 'sending' AND lease_until < ",
        db_now_ms!(),
        " AND lease_owner <> $1)) \
             ORDER BY next_attempt_at LIMIT $4 \
             FOR UPDATE SKIP LOCKED) \
         RETURNING id, account_id, mail_from, pending_rcpt, smtputf8, eight_bit, size, body, body_ref, attempts, created_at, max_attempts, source, tags, release_provider_id, sandbox"
    ),
    webhook_claim_sql = "UPDATE webhook_deliveries SET lease_owner = $1, lease_until = $2, updated_at = $3 \
         WHERE id IN (SELECT id FROM webhook_deliveries \
             WHERE status = 'pending' AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until < $3) \
             ORDER BY next_attempt_at LIMIT $4 \
             FOR UPDATE SKIP LOCKED)"
);
