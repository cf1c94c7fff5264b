//! SMTP ingress: a sans-IO session core ([`session`]) and the tokio server that drives it.

mod conn;
pub mod data;
pub mod deadline;
mod limits;
pub mod outcome;
pub mod reply;
pub mod sasl;
pub mod server;
pub mod session;
pub mod tls;

pub use outcome::reply_for;
pub use reply::Reply;
pub use server::{Authenticator, MessageSink, SmtpServer, TrustedAccount};
pub use session::{AuthOutcome, Event, RecipientVerdict, Session, SessionConfig};

#[cfg(test)]
mod session_tests;
