//! What goes in and out of the store.

mod accounts;
mod admin;
mod capture;
mod domains;
mod feedback;
mod messages;
mod queue;
mod routing;
mod users;
mod webhooks;

pub use accounts::{
    Account, AccountStatusChange, AccountUpdate, ApiKeyRow, NewAccount, SmtpCredential,
};
pub use admin::{
    AuditEntry, AuditFilter, AuditRow, Dashboard, HourCount, MailboxServerRow, ProviderCount,
    RecentError,
};
pub use capture::{CaptureRetention, CapturedMail, CapturedSelection, UnindexedCapture};
pub use domains::DomainRow;
pub use feedback::SuppressionRow;
pub use messages::{AttemptRow, EventRow, MessageFilter, MessageRecord, MessageSummary};
pub use queue::{AttemptRecord, ClaimedMessage, Enqueued, NewMessage, ProviderAttempt};
pub use routing::{
    DkimKeyRow, NewDkimKey, NewProvider, NewRule, NewTemplate, ProviderRow, RuleRow, TemplateRow,
};
pub use users::{NewUser, SessionRow, User, UserUpdate};
pub use webhooks::{
    DueWebhook, NewWebhookEndpoint, WebhookAttemptRecord, WebhookAttemptRow, WebhookDeliveryRow,
    WebhookEndpointRow,
};
