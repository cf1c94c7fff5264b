//! Delivery: the [`Deliverer`] trait and its implementations. Every outcome is mapped to
//! Delivered / Transient / Permanent per recipient. Only this crate talks to the outside
//! world on the way out.

mod capture;
pub mod deadline;
pub mod delivery_log;
pub mod dkim;
pub mod dns;
pub mod egress;
pub mod http;
mod log;
pub mod mailbox;
pub mod sender_name;
mod smtp;
pub mod transport;

use std::sync::Arc;

use async_trait::async_trait;
use sluice_core::{AccountId, DeliveryReport, Envelope, MessageId, ProviderConfig};

pub use capture::CaptureDeliverer;
pub use egress::Egress;
pub use log::LogDeliverer;
pub use smtp::{ProbeReport, SmtpDeliverer, TestMessage, probe_smtp, send_test_message};

/// One message on its way out. `envelope.rcpt_to` holds only the recipients to try now.
#[derive(Debug, Clone, Copy)]
pub struct Outbound<'a> {
    pub id: MessageId,
    pub account_id: AccountId,
    pub envelope: &'a Envelope,
    pub body: &'a [u8],
}

#[async_trait]
pub trait Deliverer: Send + Sync + 'static {
    /// The provider kind, for attempts and metrics: `smtp`, `sendgrid`, `log`, ...
    fn kind(&self) -> &'static str;
    /// The display name this provider puts before a bare From address (SMTP providers'
    /// `from_name`); the Dispatcher applies it before DKIM signing.
    fn sender_name(&self) -> Option<&str> {
        None
    }
    /// The host and port an SMTP provider connects to, so deliveries to one destination
    /// share its slots; None for services reached by HTTP.
    fn destination(&self) -> Option<String> {
        None
    }
    /// Never fails: every error becomes a transient or permanent result per recipient.
    async fn deliver(&self, message: Outbound<'_>) -> DeliveryReport;
}

/// Builds the deliverer a provider config describes. `hello_name` is the default EHLO name;
/// `egress` says whether its destination is checked (a tenant's provider) or trusted.
pub fn from_config(
    config: &ProviderConfig,
    hello_name: &str,
    egress: &Egress,
) -> Arc<dyn Deliverer> {
    match config {
        ProviderConfig::Log => Arc::new(LogDeliverer),
        ProviderConfig::Capture => Arc::new(CaptureDeliverer),
        ProviderConfig::Smtp(smtp) => {
            Arc::new(SmtpDeliverer::new(smtp.clone(), hello_name, egress.clone()))
        }
        ProviderConfig::Sendgrid(c) => {
            Arc::new(http::sendgrid::SendgridDeliverer::new(c.clone(), egress))
        }
        ProviderConfig::Mailgun(c) => {
            Arc::new(http::mailgun::MailgunDeliverer::new(c.clone(), egress))
        }
        ProviderConfig::Ses(c) => Arc::new(http::ses::SesDeliverer::new(c.clone(), egress)),
        ProviderConfig::Msgraph(c) => {
            Arc::new(http::msgraph::MsGraphDeliverer::new(c.clone(), egress))
        }
    }
}
