//! What `/api/v1` answers about users (see `routes::users`).

use serde::{Deserialize, Serialize};
use sluice_store::User;
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub id: i64,
    /// Absent for system admins.
    pub account_id: Option<i64>,
    pub email: String,
    pub role: String,
    pub status: String,
    pub created_at: i64,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        UserView {
            id: u.id,
            account_id: u.account_id,
            email: u.email,
            role: u.role.to_string(),
            status: u.status.to_string(),
            created_at: u.created_at,
        }
    }
}
