//! The port every ingress hands mail to: the HTTP API's send, the outbound-email webhook
//! and (through `sluice-accept`'s SMTP sink) the SMTP session. `sluice-accept`'s
//! `Acceptor` implements it; tests put stand-ins behind it.

use crate::{AcceptOutcome, AccountPolicy, Submission};

/// The accept path: commit (or deliver, when `sync`) and say what happened.
#[async_trait::async_trait]
pub trait Submitter: Send + Sync + 'static {
    async fn submit(&self, policy: &AccountPolicy, submission: Submission) -> AcceptOutcome;
}
