//! What `/api/v1` answers about dashboard (see `routes::dashboard`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DashboardView {
    /// Messages per status.
    pub queue: Vec<StatusCount>,
    /// 24 entries, oldest first: the hour's start (ms) and its counts.
    pub hours: Vec<HourView>,
    pub providers: Vec<ProviderHealth>,
    pub recent_errors: Vec<ErrorView>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StatusCount {
    pub status: String,
    pub count: i64,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct HourView {
    pub hour: i64,
    pub accepted: i64,
    /// Delivered by a real provider; captured mail is counted apart.
    pub delivered: i64,
    /// Kept by capture (delivered nowhere).
    pub captured: i64,
    pub failed: i64,
}

/// Provider calls of the last 24 hours.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct ProviderHealth {
    pub provider: String,
    pub delivered: i64,
    /// Calls of the capture provider: kept, not delivered.
    pub captured: i64,
    pub transient: i64,
    pub permanent: i64,
    pub last_at: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorView {
    pub message_id: i64,
    pub kind: String,
    pub detail: String,
    pub created_at: i64,
}
