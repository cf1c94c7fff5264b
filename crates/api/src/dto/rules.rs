//! What `/api/v1` answers about rules (see `routes::rules`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RuleView {
    pub id: i64,
    pub account_id: i64,
    pub name: String,
    pub priority: i64,
    #[schema(value_type = Object)]
    pub conditions: Value,
    pub provider_id: i64,
    pub fallbacks: Vec<i64>,
    pub split: Vec<SplitShare>,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One provider's share of a weighted split.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitShare {
    pub provider_id: i64,
    pub weight: u32,
}
