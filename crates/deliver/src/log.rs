//! The `log` provider: a one-line summary per message, never the body.

use async_trait::async_trait;
use sluice_core::{DeliveryReport, Verdict};

use crate::{Deliverer, Outbound};

pub struct LogDeliverer;

#[async_trait]
impl Deliverer for LogDeliverer {
    fn kind(&self) -> &'static str {
        "log"
    }

    /// It never reads the content.
    fn streams_bodies(&self) -> bool {
        true
    }

    async fn deliver(&self, message: Outbound<'_>) -> DeliveryReport {
        tracing::info!(
            message_id = message.id,
            account = message.account_id,
            from = %message.envelope.mail_from,
            recipients = message.envelope.rcpt_to.len(),
            size = message.body.len(),
            "log provider: message not sent"
        );
        DeliveryReport::uniform(
            "log",
            &message.envelope.rcpt_to,
            Verdict::Delivered,
            None,
            "written to log",
        )
    }
}
