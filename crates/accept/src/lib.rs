//! The accept path every ingress shares (SMTP, `POST /api/v1/send`, the outbound-email
//! webhook): the account's status, staging, suppressions, the disk reserve and the monthly
//! limit checked; the message committed (group commit); then the answer — queued (handed
//! to this node's worker when it has room), or in sync mode delivered at once through the
//! worker's `SyncDelivery` and answered with the upstream's verdict.
//!
//! Ingresses reach it through their own ports: `sluice_smtp::MessageSink` (the SMTP
//! session, which maps the outcome to its reply) and `sluice_core::Submitter` (the API and
//! the webhook receiver).

mod acceptor;
mod sinks;

pub use acceptor::{Acceptor, AcceptorSettings};
pub use sluice_core::AcceptOutcome;
pub use sluice_core::DeliveryMode;
