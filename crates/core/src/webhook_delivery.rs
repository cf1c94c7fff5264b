//! Where one event post to a tenant's endpoint stands (`webhook_deliveries.status`),
//! decoded once where a row is read.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookDeliveryStatus {
    /// Waiting for its first or next try.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Given up.
    Failed,
}

impl WebhookDeliveryStatus {
    pub const ALL: [WebhookDeliveryStatus; 3] = [
        WebhookDeliveryStatus::Pending,
        WebhookDeliveryStatus::Delivered,
        WebhookDeliveryStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookDeliveryStatus::Pending => "pending",
            WebhookDeliveryStatus::Delivered => "delivered",
            WebhookDeliveryStatus::Failed => "failed",
        }
    }

    /// After a try: delivered, or pending while another try is planned, else failed.
    pub fn after_try(delivered: bool, next_attempt_at: Option<i64>) -> Self {
        match (delivered, next_attempt_at) {
            (true, _) => WebhookDeliveryStatus::Delivered,
            (false, Some(_)) => WebhookDeliveryStatus::Pending,
            (false, None) => WebhookDeliveryStatus::Failed,
        }
    }
}

crate::text_kind!(WebhookDeliveryStatus, "webhook delivery status");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_unknown_text_is_an_error() {
        for status in WebhookDeliveryStatus::ALL {
            assert_eq!(status.as_str().parse::<WebhookDeliveryStatus>(), Ok(status));
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::Value::String(status.as_str().into())
            );
        }
        assert!("sent".parse::<WebhookDeliveryStatus>().is_err());
    }
}
