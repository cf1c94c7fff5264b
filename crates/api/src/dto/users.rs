//! What `/api/v1` answers about users (see `routes::users`).

use serde::{Deserialize, Serialize};
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
