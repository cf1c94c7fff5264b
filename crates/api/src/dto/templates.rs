//! What `/api/v1` answers about templates (see `routes::templates`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TemplateView {
    pub id: i64,
    /// Absent: system-wide.
    pub account_id: Option<i64>,
    pub name: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub created_at: i64,
    pub updated_at: i64,
}
