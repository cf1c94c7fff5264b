//! Users and their sessions (`UserStore`).

use sluice_core::{AccountId, Role, SessionKind, UserStatus};

#[derive(Debug, Clone)]
pub struct NewUser {
    /// `None` for a system admin.
    pub account_id: Option<AccountId>,
    pub email: String,
    pub password_hash: String,
    /// admin | owner | member | viewer
    pub role: String,
}

#[derive(Clone)]
pub struct User {
    pub id: i64,
    pub account_id: Option<AccountId>,
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    pub status: UserStatus,
    pub failed_logins: i64,
    pub first_failed_at: Option<i64>,
    pub locked_until: Option<i64>,
    pub created_at: i64,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A refresh token's row.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: i64,
    pub user_id: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// `refresh` or `panel`.
    pub kind: SessionKind,
}

/// Fields of a user to change; `None` leaves one as it is.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub role: Option<String>,
    pub status: Option<String>,
    pub password_hash: Option<String>,
}
