//! The `capture` provider: the message stays in the store, marked `captured`, for inspection.

use async_trait::async_trait;
use sluice_core::{DeliveryReport, Verdict};

use crate::{Deliverer, Outbound};

pub struct CaptureDeliverer;

#[async_trait]
impl Deliverer for CaptureDeliverer {
    fn kind(&self) -> &'static str {
        "capture"
    }

    /// It never reads the content.
    fn streams_bodies(&self) -> bool {
        true
    }

    async fn deliver(&self, message: Outbound<'_>) -> DeliveryReport {
        let mut report = DeliveryReport::uniform(
            "capture",
            &message.envelope.rcpt_to,
            Verdict::Delivered,
            None,
            "captured",
        );
        report.captured = true;
        report
    }
}
