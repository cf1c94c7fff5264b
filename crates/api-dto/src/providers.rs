//! What `/api/v1` answers about providers (see `routes::providers`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProviderView {
    pub id: i64,
    /// Absent: system-wide (admins).
    pub account_id: Option<i64>,
    pub name: String,
    /// sendgrid | ses | mailgun | smtp | msgraph | log | capture
    pub provider_type: String,
    /// The settings, secrets shown as `********`.
    #[schema(value_type = Object)]
    pub config: Value,
    pub enabled: bool,
    pub priority: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TestResult {
    pub ok: bool,
    /// What was done, step by step, with the outcome of each.
    pub steps: Vec<String>,
}
