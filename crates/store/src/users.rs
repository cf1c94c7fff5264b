//! Users (people who log in to the API and the panel), their login throttle state and
//! their sessions (API refresh tokens, panel logins).

use async_trait::async_trait;
use sluice_core::{AccountId, SessionKind};

use crate::StoreError;
use crate::types::*;

/// Users and their sessions.
#[async_trait]
pub trait UserStore: Send + Sync {
    async fn create_user(&self, user: NewUser, now_ms: i64) -> Result<User, StoreError>;

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError>;

    async fn user(&self, id: i64) -> Result<Option<User>, StoreError>;

    /// Users of one account, or every user for `None`, by id.
    async fn list_users(&self, account_id: Option<AccountId>) -> Result<Vec<User>, StoreError>;

    async fn update_user(
        &self,
        id: i64,
        update: &UserUpdate,
        now_ms: i64,
    ) -> Result<Option<User>, StoreError>;

    /// Ends every refresh session of the user (logout everywhere).
    async fn revoke_user_sessions(&self, user_id: i64, now_ms: i64) -> Result<u64, StoreError>;

    /// Stores the login-throttle state computed by `sluice_core::LoginThrottle`.
    async fn set_login_state(
        &self,
        user_id: i64,
        state: &sluice_core::LoginState,
    ) -> Result<(), StoreError>;

    /// A session of `kind`: `refresh` (an API refresh token) or `panel` (a web panel login).
    async fn create_session(
        &self,
        user_id: i64,
        kind: SessionKind,
        token_hash: &str,
        expires_at: i64,
        now_ms: i64,
    ) -> Result<i64, StoreError>;

    async fn session_by_hash(&self, token_hash: &str) -> Result<Option<SessionRow>, StoreError>;

    /// Ends every session of one kind (all panel logins, when its secret is rotated).
    async fn revoke_sessions_of_kind(
        &self,
        kind: SessionKind,
        now_ms: i64,
    ) -> Result<u64, StoreError>;

    /// Revokes once: false if it was already revoked (a replayed refresh token).
    async fn revoke_session(&self, id: i64, now_ms: i64) -> Result<bool, StoreError>;
}

/// Implements [`UserStore`] for `$store` (pools `write` and `read` of `$db`).
macro_rules! impl_user_sql {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::users::UserStore for $store {
            async fn create_user(&self, user: NewUser, now_ms: i64) -> Result<User, StoreError> {
                let row = sqlx::query(
                    "INSERT INTO users (account_id, email, password_hash, role, status, failed_logins, \
                     created_at, updated_at) VALUES ($1, $2, $3, $4, 'active', 0, $5, $5) RETURNING *",
                )
                .bind(user.account_id)
                .bind(user.email.to_ascii_lowercase())
                .bind(&user.password_hash)
                .bind(&user.role)
                .bind(now_ms)
                .fetch_one(&self.write)
                .await?;
                $crate::rows::user_from_row(&row)
            }

            async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
                self.fetch_one_as(
                    "SELECT * FROM users WHERE email = $1",
                    email.to_ascii_lowercase(),
                    $crate::rows::user_from_row,
                )
                .await
            }

            async fn user(&self, id: i64) -> Result<Option<User>, StoreError> {
                self.fetch_one_as(
                    "SELECT * FROM users WHERE id = $1",
                    id,
                    $crate::rows::user_from_row,
                )
                .await
            }

            async fn list_users(
                &self,
                account_id: Option<AccountId>,
            ) -> Result<Vec<User>, StoreError> {
                self.fetch_all_as(
                    "SELECT * FROM users WHERE (account_id = $1 OR $1 IS NULL) ORDER BY id",
                    account_id,
                    $crate::rows::user_from_row,
                )
                .await
            }

            async fn update_user(
                &self,
                id: i64,
                update: &UserUpdate,
                now_ms: i64,
            ) -> Result<Option<User>, StoreError> {
                let row = sqlx::query(
                    "UPDATE users SET role = COALESCE($1, role), status = COALESCE($2, status), \
                     password_hash = COALESCE($3, password_hash), updated_at = $4 \
                     WHERE id = $5 RETURNING *",
                )
                .bind(update.role.as_deref())
                .bind(update.status.as_deref())
                .bind(update.password_hash.as_deref())
                .bind(now_ms)
                .bind(id)
                .fetch_optional(&self.write)
                .await?;
                row.as_ref().map($crate::rows::user_from_row).transpose()
            }

            async fn revoke_user_sessions(&self, user_id: i64, now_ms: i64) -> Result<u64, StoreError> {
                let done = sqlx::query(
                    "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
                )
                .bind(now_ms)
                .bind(user_id)
                .execute(&self.write)
                .await?;
                Ok(done.rows_affected())
            }

            async fn set_login_state(
                &self,
                user_id: i64,
                state: &sluice_core::LoginState,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE users SET failed_logins = $1, first_failed_at = $2, locked_until = $3 \
                     WHERE id = $4",
                )
                .bind(state.failed_logins)
                .bind(state.first_failed_at)
                .bind(state.locked_until)
                .bind(user_id)
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn create_session(
                &self,
                user_id: i64,
                kind: sluice_core::SessionKind,
                token_hash: &str,
                expires_at: i64,
                now_ms: i64,
            ) -> Result<i64, StoreError> {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO sessions (user_id, token_hash, expires_at, created_at, kind) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(user_id)
                .bind(token_hash)
                .bind(expires_at)
                .bind(now_ms)
                .bind(kind.as_str())
                .fetch_one(&self.write)
                .await?;
                Ok(id)
            }

            async fn revoke_sessions_of_kind(&self, kind: sluice_core::SessionKind, now_ms: i64) -> Result<u64, StoreError> {
                let done = sqlx::query(
                    "UPDATE sessions SET revoked_at = $1 WHERE kind = $2 AND revoked_at IS NULL",
                )
                .bind(now_ms)
                .bind(kind.as_str())
                .execute(&self.write)
                .await?;
                Ok(done.rows_affected())
            }

            async fn session_by_hash(
                &self,
                token_hash: &str,
            ) -> Result<Option<SessionRow>, StoreError> {
                self.fetch_one_as(
                    "SELECT id, user_id, expires_at, revoked_at, kind FROM sessions WHERE token_hash = $1",
                    token_hash,
                    $crate::rows::session_from_row,
                )
                .await
            }

            async fn revoke_session(&self, id: i64, now_ms: i64) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                )
                .bind(now_ms)
                .bind(id)
                .execute(&self.write)
                .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

pub(crate) use impl_user_sql;
