//! `[pop3]`: POP3 over each account's captured mail (the capture sandbox), with the SMTP
//! listeners' certificate (`[tls]`).

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pop3Config {
    /// Plaintext POP3 with STLS (RFC 2595); unset: none. Without TLS, USER/PASS is taken
    /// only from loopback and `smtp.trusted_networks`.
    pub listen: Option<SocketAddr>,
    /// POP3 over implicit TLS (POP3S); unset: none.
    pub tls_listen: Option<SocketAddr>,
    /// Sessions open at once over both listeners.
    pub max_connections: usize,
    /// A session idle this long is closed without deleting anything (RFC 1939 asks for
    /// at least 10 minutes).
    pub idle_timeout_secs: u64,
    /// How long a wrong password waits for its answer.
    pub failed_login_delay_ms: u64,
    /// A login sees at most this many captured messages: the newest ones.
    pub max_messages: usize,
}

impl Default for Pop3Config {
    fn default() -> Self {
        Pop3Config {
            listen: None,
            tls_listen: None,
            max_connections: 100,
            idle_timeout_secs: 600,
            failed_login_delay_ms: 1000,
            max_messages: 10_000,
        }
    }
}
