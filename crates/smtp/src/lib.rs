//! SMTP ingress: a sans-IO session core ([`session`]) and the tokio listener that drives it.

pub mod data;
pub mod reply;
pub mod sasl;
pub mod session;

pub use reply::Reply;
pub use session::{AuthOutcome, Event, Session, SessionConfig};

#[cfg(test)]
mod session_tests;
