//! What `/api/v1` answers about rules (see `routes::rules`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_store::RuleRow;
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

impl From<RuleRow> for RuleView {
    fn from(r: RuleRow) -> Self {
        RuleView {
            id: r.id,
            account_id: r.account_id,
            name: r.name,
            priority: r.priority,
            conditions: r.conditions,
            provider_id: r.provider_id,
            fallbacks: r.fallbacks,
            split: r
                .split
                .into_iter()
                .map(|w| SplitShare {
                    provider_id: w.provider_id,
                    weight: w.weight,
                })
                .collect(),
            enabled: r.enabled,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}
