//! What the API may see of live SMTP sessions, and how it asks one to end.

use serde::{Deserialize, Serialize};

use crate::AccountId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionInfo {
    /// The session id that every log line of the session carries.
    pub id: String,
    pub remote_addr: String,
    /// The listener's address.
    pub listener: String,
    pub tls: bool,
    /// The account the session sends as (after AUTH, or trusted).
    pub account_id: Option<AccountId>,
    /// The SMTP AUTH username, if any.
    pub user: Option<String>,
    /// MAIL FROM of the transaction under way.
    pub mail_from: Option<String>,
    /// Recipients accepted so far in it.
    pub recipients: usize,
    pub started_at: i64,
}

/// Implemented by the SMTP server; an empty one where a node runs no SMTP.
pub trait ConnectionDirectory: Send + Sync {
    fn list(&self) -> Vec<ConnectionInfo>;
    /// Asks session `id` to end (421); false when there is no such session.
    fn close(&self, id: &str) -> bool;
}

/// No SMTP on this node.
pub struct NoConnections;

impl ConnectionDirectory for NoConnections {
    fn list(&self) -> Vec<ConnectionInfo> {
        Vec::new()
    }

    fn close(&self, _id: &str) -> bool {
        false
    }
}
