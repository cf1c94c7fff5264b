//! What both backends' SQL shares: helpers, and [`impl_sql_store!`], which implements
//! every area of the store (one file each, `queue.rs` … `domains.rs`) for a backend. The
//! SQL text is the same for SQLite and PostgreSQL; each backend supplies its pool types,
//! its claim statements (PostgreSQL adds `FOR UPDATE SKIP LOCKED`) and what releasing
//! leases at start-up and following a clock jump mean for it.
//!
//! Why macros rather than generic functions: each area's SQL is written against the
//! concrete `Pool`, `Transaction` and `QueryBuilder` of a backend, and code generic over
//! `sqlx::Database` needs a where clause per bound type and executor that Rust does not
//! imply from a helper trait. Row decoding, which is where the types are, is generic
//! (`rows.rs`) and outside the macros.

pub(crate) fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".into())
}

/// Implements [`crate::Store`] (each of its areas) for `$store`: see each area's macro for
/// what it needs of `$store`.
macro_rules! impl_sql_store {
    ($store:ty, $db:ty, claim_sql = $claim_sql:expr, webhook_claim_sql = $webhook_claim_sql:expr) => {
        $crate::sql::impl_row_helpers!($store, $db);
        $crate::queue::impl_queue_sql!($store, $db, claim_sql = $claim_sql);
        $crate::queue::impl_body_store_use!($store);
        $crate::idempotency::impl_idempotency_sql!($store, $db);
        $crate::messages::impl_message_sql!($store, $db);
        $crate::accounts::impl_account_sql!($store, $db);
        $crate::users::impl_user_sql!($store, $db);
        $crate::routing::impl_routing_sql!($store, $db);
        $crate::webhooks::impl_webhook_sql!($store, $db, webhook_claim_sql = $webhook_claim_sql);
        $crate::feedback::impl_feedback_sql!($store, $db);
        $crate::admin::impl_admin_sql!($store, $db);
        $crate::domains::impl_domain_sql!($store, $db);
        $crate::capture::impl_capture_sql!($store, $db);
    };
}

pub(crate) use impl_sql_store;

/// Implements, for `$store` (its pools `read` and `write`), what most areas share: the rows
/// a statement with one bound key selects, each decoded by a `rows.rs` function, and
/// deleting one row by id.
macro_rules! impl_row_helpers {
    ($store:ty, $db:ty) => {
        impl $store {
            /// The row `select` (binding `key` as `$1`) finds, decoded; `None` when none is.
            async fn fetch_one_as<'q, T, K>(
                &self,
                select: &'static str,
                key: K,
                decode: fn(&<$db as sqlx::Database>::Row) -> Result<T, StoreError>,
            ) -> Result<Option<T>, StoreError>
            where
                K: 'q + Send + sqlx::Encode<'q, $db> + sqlx::Type<$db>,
            {
                let row = sqlx::query(select)
                    .bind(key)
                    .fetch_optional(&self.read)
                    .await?;
                row.as_ref().map(decode).transpose()
            }

            /// Every row `select` (binding `key` as `$1`) finds, decoded, in its order.
            async fn fetch_all_as<'q, T, K>(
                &self,
                select: &'static str,
                key: K,
                decode: fn(&<$db as sqlx::Database>::Row) -> Result<T, StoreError>,
            ) -> Result<Vec<T>, StoreError>
            where
                K: 'q + Send + sqlx::Encode<'q, $db> + sqlx::Type<$db>,
            {
                let rows = sqlx::query(select).bind(key).fetch_all(&self.read).await?;
                rows.iter().map(decode).collect()
            }

            /// Runs `delete` (binding `id` as `$1`, a primary key); `false` when no row went.
            async fn delete_by_id(
                &self,
                delete: &'static str,
                id: i64,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(delete).bind(id).execute(&self.write).await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

pub(crate) use impl_row_helpers;

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
/// Most rows one multi-row statement writes (a batch may be larger): keeps every
/// statement well under SQLite's and PostgreSQL's limits on bound parameters.
pub(crate) const ROWS_PER_STATEMENT: usize = 200;

pub(crate) fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
