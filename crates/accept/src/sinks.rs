//! The Acceptor behind each ingress's port.

use async_trait::async_trait;
use sluice_core::body::BodyWriter;
use sluice_core::{
    AcceptOutcome, AccountPolicy, BodyError, Envelope, MessageBody, Source, Submission, Submitter,
};
use sluice_smtp::{MessageSink, RecipientVerdict};

use crate::Acceptor;

/// The SMTP session: recipients were checked per RCPT, so the accept path does not read
/// the suppression list again.
#[async_trait]
impl MessageSink for Acceptor {
    async fn accept(
        &self,
        policy: &AccountPolicy,
        envelope: Envelope,
        body: MessageBody,
    ) -> AcceptOutcome {
        let submission = Submission {
            source: Source::Smtp,
            envelope,
            body,
            tags: Vec::new(),
            max_attempts: None,
            sync: false,
            recipients_checked: true,
            idempotency: None,
        };
        Acceptor::accept(self, policy, submission).await
    }

    async fn body_writer(&self) -> Result<Option<Box<dyn BodyWriter>>, BodyError> {
        match self.body_storage() {
            Some(storage) => storage.writer().await.map(Some),
            None => Ok(None),
        }
    }

    async fn check_recipient(&self, policy: &AccountPolicy, rcpt: &str) -> RecipientVerdict {
        match self
            .suppressed(policy.account_id, &[rcpt.to_string()])
            .await
        {
            Ok(hits) if hits.is_empty() => RecipientVerdict::Accept,
            Ok(_) => RecipientVerdict::Suppressed,
            Err(_) => RecipientVerdict::Unavailable,
        }
    }
}

/// `POST /api/v1/send` and the outbound-email webhook.
#[async_trait]
impl Submitter for Acceptor {
    async fn submit(&self, policy: &AccountPolicy, submission: Submission) -> AcceptOutcome {
        self.accept(policy, submission).await
    }
}
