//! Domain types and pure policy for Sluice: addresses, envelopes, message
//! status, delivery verdicts, the retry schedule and the auth-failure limiter.
//!
//! Nothing here does I/O or reads a clock: time arrives as unix milliseconds
//! and randomness as a sample in `[0, 1)`.

pub mod account;
pub mod address;
pub mod body;
pub mod capture_query;
pub mod capture_release;
pub mod chaos;
pub mod connections;
pub mod delivery_mode;
pub mod egress;
pub mod feedback;
pub mod idempotency;
pub mod limiter;
pub mod live;
pub mod login;
pub mod message;
pub mod provider;
pub mod provider_spec;
pub mod provider_type;
pub mod rate;
pub mod retry;
pub mod router;
pub mod routing;
pub mod sealed;
pub mod sealed_chunks;
pub mod secret;
pub mod sender_domain;
pub mod spamc;
pub mod split_body;
pub mod staging;
pub mod submitter;
pub mod suppression;
pub mod text;
pub mod user;
pub mod web_url;
pub mod webhook_delivery;

pub use account::AccountStatus;
pub use address::{AddressError, domain_of, validate_mailbox};
pub use body::{BodyError, BodyStorage, MessageBody, StoredBody};
pub use connections::{ConnectionDirectory, ConnectionInfo, NoConnections};
pub use delivery_mode::DeliveryMode;
pub use limiter::FailureLimiter;
pub use live::Live;
pub use login::{LoginState, LoginThrottle};
pub use message::{
    AcceptOutcome, AccountId, AccountPolicy, DeliveryReport, Envelope, MessageId, MessageStatus,
    RecipientResult, Source, Submission, Verdict, month_of,
};
pub use provider::{
    MailgunConfig, MailgunRegion, MsGraphConfig, ProviderConfig, ProviderType, SendgridConfig,
    SesConfig, SmtpProviderConfig, SmtpSecurity,
};
pub use retry::{RetryDecision, RetryPolicy};
pub use submitter::Submitter;
pub use suppression::SuppressionReason;
pub use user::{Role, SessionKind, UnknownKind, UserStatus};
pub use webhook_delivery::WebhookDeliveryStatus;
