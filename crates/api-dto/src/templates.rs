//! What `/api/v1` answers about templates (see `routes::templates`).

use serde::{Deserialize, Serialize};
use sluice_store::TemplateRow;
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

impl From<TemplateRow> for TemplateView {
    fn from(t: TemplateRow) -> Self {
        TemplateView {
            id: t.id,
            account_id: t.account_id,
            name: t.name,
            subject: t.subject,
            text: t.text_body,
            html: t.html_body,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}
