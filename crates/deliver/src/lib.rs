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
pub mod shared_stream;
mod smtp;
mod smtp_content;
pub mod transport;

use std::sync::Arc;

use async_trait::async_trait;
use sluice_core::split_body::SplitBody;
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
    pub body: OutboundBody<'a>,
}

/// The message as a provider gets it: whole in memory, or (only for a deliverer whose
/// [`Deliverer::streams_bodies`] is true) a head in memory and the rest read from body
/// storage as it is sent.
#[derive(Debug, Clone, Copy)]
pub enum OutboundBody<'a> {
    Whole(&'a [u8]),
    /// `head` in place of `body.head` (a copy with the sender name or a DKIM signature),
    /// then the rest of `body`.
    Streamed {
        head: &'a [u8],
        body: &'a SplitBody,
    },
}

impl<'a> OutboundBody<'a> {
    /// Length of the whole message.
    pub fn len(&self) -> u64 {
        match self {
            OutboundBody::Whole(bytes) => bytes.len() as u64,
            OutboundBody::Streamed { head, body } => head.len() as u64 + body.rest_len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole message, when it is in memory. The Dispatcher hands a streamed body
    /// only to deliverers that stream, so for the others this is always Some.
    pub fn whole(&self) -> Option<&'a [u8]> {
        match *self {
            OutboundBody::Whole(bytes) => Some(bytes),
            OutboundBody::Streamed { .. } => None,
        }
    }
}

/// The report of a deliverer that needs the whole message and was handed a streamed one
/// (a Dispatcher bug, never a panic): every recipient waits.
pub fn whole_body_missing(kind: &'static str, message: &Outbound<'_>) -> DeliveryReport {
    DeliveryReport::uniform(
        kind,
        &message.envelope.rcpt_to,
        sluice_core::Verdict::Transient,
        None,
        "the message body was not loaded for this provider",
    )
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
    /// True when the deliverer takes [`OutboundBody::Streamed`] (it sends the content as
    /// it reads it); the others always get the whole message.
    fn streams_bodies(&self) -> bool {
        false
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
