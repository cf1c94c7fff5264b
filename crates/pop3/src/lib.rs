//! POP3 for the capture sandbox (issue O §10): a tenant reads its account's captured mail
//! in any mail client. RFC 1939 (USER, PASS, STAT, LIST, UIDL, RETR, TOP, DELE, RSET, NOOP,
//! QUIT), RFC 2449 CAPA and response codes, RFC 2595 STLS, and implicit TLS.
//!
//! - [`session`]: the sans-IO state machine, tested with byte tables (`session_tests.rs`).
//! - [`wire`]: status lines and byte-stuffed multi-line message answers.
//! - [`maildrop`]: the [`CapturedMailbox`] port the binary implements over the store.
//! - [`server`]: the tokio listener: connection limit, idle timeout, TLS, shutdown, and
//!   logins checked by the SMTP [`sluice_smtp::Authenticator`] with a delay and a
//!   per-address failure limit.

pub mod maildrop;
pub mod server;
pub mod session;
pub mod wire;

pub use maildrop::{CapturedMailbox, MaildropError};
pub use server::{Pop3Server, Pop3Settings};
pub use session::{Event, FetchOutcome, LoginOutcome, MaildropEntry, Session, SessionConfig};

#[cfg(test)]
mod session_tests;
