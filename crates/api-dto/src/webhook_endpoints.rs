//! What `/api/v1` answers about webhook endpoints (see `routes::webhook_endpoints`).

use serde::{Deserialize, Serialize};
use sluice_store::WebhookDeliveryRow;
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EndpointView {
    pub id: i64,
    pub account_id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    /// Only when created (or replaced with a new secret): keep it, it is not shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AttemptView {
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub started_at: i64,
    pub finished_at: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryView {
    pub id: i64,
    pub event: String,
    pub message_id: i64,
    /// pending | delivered | failed
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub attempt_log: Vec<AttemptView>,
}

impl From<WebhookDeliveryRow> for DeliveryView {
    fn from(d: WebhookDeliveryRow) -> Self {
        DeliveryView {
            id: d.id,
            event: d.event_kind,
            message_id: d.message_id,
            status: d.status.as_str().into(),
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_error: d.last_error,
            created_at: d.created_at,
            attempt_log: d
                .attempt_log
                .into_iter()
                .map(|a| AttemptView {
                    status_code: a.status_code,
                    error: a.error,
                    started_at: a.started_at,
                    finished_at: a.finished_at,
                })
                .collect(),
        }
    }
}
