//! `[smtp]` (listeners, limits, trusted networks) and `[tls]`.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerTls {
    Starttls,
    Implicit,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerAuth {
    Required,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    pub addr: SocketAddr,
    pub tls: ListenerTls,
    pub auth: ListenerAuth,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// The name in the greeting and EHLO reply.
    pub hostname: String,
    pub listeners: Vec<ListenerConfig>,
    /// Clients allowed on `auth = "none"` listeners.
    pub trusted_networks: Vec<IpNet>,
    /// Email of the account that trusted clients send as.
    pub trusted_account: String,
    pub max_connections: usize,
    /// Sessions one account may hold open at once (authenticated or trusted); beyond it
    /// AUTH (or the greeting, for trusted clients) is answered 421 4.7.0. 0: no limit.
    pub max_connections_per_account: usize,
    pub max_message_size: usize,
    pub max_recipients: usize,
    pub max_auth_failures: u32,
    pub auth_failure_window_secs: u64,
    /// Waiting for a command, and the longest one command may take from its first byte
    /// (a client cannot keep a slot by trickling bytes).
    pub idle_timeout_secs: u64,
    /// Message content (DATA/BDAT) must arrive at least this fast, in bytes per second,
    /// after the first `idle_timeout_secs` (Postfix's `smtpd_min_data_rate`).
    pub min_data_rate: u64,
    pub tls_handshake_timeout_secs: u64,
    /// How long sessions may run on after shutdown begins.
    pub shutdown_grace_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain; empty: a self-signed one is generated into `data_dir` once.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// The oldest TLS version offered: "1.2" or "1.3".
    pub min_version: String,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert_file: None,
            key_file: None,
            min_version: "1.2".into(),
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            hostname: "localhost".into(),
            listeners: vec![
                ListenerConfig {
                    addr: "0.0.0.0:587".parse().unwrap(),
                    tls: ListenerTls::Starttls,
                    auth: ListenerAuth::Required,
                },
                ListenerConfig {
                    addr: "0.0.0.0:465".parse().unwrap(),
                    tls: ListenerTls::Implicit,
                    auth: ListenerAuth::Required,
                },
            ],
            trusted_networks: Vec::new(),
            trusted_account: String::new(),
            max_connections: 1000,
            max_connections_per_account: 200,
            max_message_size: 25 * 1024 * 1024,
            max_recipients: 100,
            max_auth_failures: 3,
            auth_failure_window_secs: 900,
            idle_timeout_secs: 300,
            min_data_rate: 500,
            tls_handshake_timeout_secs: 10,
            shutdown_grace_secs: 30,
        }
    }
}
