//! The optional IMAP / POP3 check (the panel's "Test" of a mailbox server): connect, TLS
//! where asked (implicit or STARTTLS/STLS), log in, log out, and say how each step went.
//! Separate from delivery: Sluice reads no mail. The answers are judged by pure functions
//! (`imap_ok`, `pop3_ok`); the dialogue is a few lines over tokio.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_core::text::sanitize_reply_text;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::TcpStream;

use crate::ProbeReport;
use crate::egress::Egress;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailboxProtocol {
    Imap,
    Pop3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailboxSecurity {
    None,
    Starttls,
    Tls,
}

impl MailboxProtocol {
    /// How a person names it (the check's steps).
    pub fn label(self) -> &'static str {
        match self {
            MailboxProtocol::Imap => "IMAP",
            MailboxProtocol::Pop3 => "POP3",
        }
    }
}

impl MailboxSecurity {
    /// How a person names it (the check's steps).
    pub fn label(self) -> &'static str {
        match self {
            MailboxSecurity::None => "plain",
            MailboxSecurity::Starttls => "STARTTLS",
            MailboxSecurity::Tls => "SSL/TLS",
        }
    }
}

/// Where and as whom to log in.
#[derive(Clone, Serialize, Deserialize)]
pub struct MailboxServer {
    pub protocol: MailboxProtocol,
    pub host: String,
    pub port: u16,
    pub security: MailboxSecurity,
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub skip_tls_verify: bool,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_timeout() -> u64 {
    10
}

impl std::fmt::Debug for MailboxServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailboxServer")
            .field("protocol", &self.protocol)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .finish_non_exhaustive()
    }
}

/// The usual port of a protocol and security: 143, 993, 110, 995.
pub fn default_port(protocol: MailboxProtocol, security: MailboxSecurity) -> u16 {
    match (protocol, security) {
        (MailboxProtocol::Imap, MailboxSecurity::Tls) => 993,
        (MailboxProtocol::Imap, _) => 143,
        (MailboxProtocol::Pop3, MailboxSecurity::Tls) => 995,
        (MailboxProtocol::Pop3, _) => 110,
    }
}

/// Is this IMAP line the tagged OK for `tag` (Some(true)), its NO/BAD (Some(false)), or
/// something else (untagged data: None)?
pub fn imap_ok(tag: &str, line: &str) -> Option<bool> {
    let rest = line.strip_prefix(tag)?.strip_prefix(' ')?;
    let word = rest.split(' ').next().unwrap_or("").to_ascii_uppercase();
    Some(word == "OK")
}

/// A POP3 status line: `+OK` or not.
pub fn pop3_ok(line: &str) -> bool {
    line.starts_with("+OK")
}

/// An IMAP quoted string (RFC 3501): backslash and quote escaped. None when it cannot be
/// quoted (line breaks).
pub fn imap_quote(text: &str) -> Option<String> {
    if text.contains(['\r', '\n']) {
        return None;
    }
    Some(format!(
        "\"{}\"",
        text.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// One line-oriented conversation; every read is bounded by the server's timeout.
struct Dialog {
    io: BufReader<Stream>,
    timeout: Duration,
}

impl Dialog {
    async fn line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match tokio::time::timeout(self.timeout, self.io.read_line(&mut line)).await {
            Err(_) => Err("timed out".into()),
            Ok(Err(e)) => Err(e.to_string()),
            Ok(Ok(0)) => Err("the server closed the connection".into()),
            Ok(Ok(_)) => Ok(line.trim_end().to_string()),
        }
    }

    async fn send(&mut self, command: &str) -> Result<(), String> {
        let write = async {
            self.io.get_mut().write_all(command.as_bytes()).await?;
            self.io.get_mut().write_all(b"\r\n").await?;
            self.io.get_mut().flush().await
        };
        match tokio::time::timeout(self.timeout, write).await {
            Err(_) => Err("timed out".into()),
            Ok(result) => result.map_err(|e| e.to_string()),
        }
    }

    /// Reads to the tagged answer of `tag`; its text.
    async fn imap_answer(&mut self, tag: &str) -> Result<(bool, String), String> {
        for _ in 0..100 {
            let line = self.line().await?;
            if let Some(ok) = imap_ok(tag, &line) {
                return Ok((ok, line));
            }
        }
        Err("no tagged answer".into())
    }

    async fn start_tls(self, host: &str, skip_verify: bool) -> Result<Dialog, String> {
        let Stream::Plain(tcp) = self.io.into_inner() else {
            return Err("TLS is already up".into());
        };
        let connector =
            tokio_rustls::TlsConnector::from(crate::transport::client_config(skip_verify));
        let name =
            rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
        let tls = tokio::time::timeout(self.timeout, connector.connect(name, tcp))
            .await
            .map_err(|_| "TLS handshake timed out".to_string())?
            .map_err(|e| format!("TLS handshake failed: {e}"))?;
        Ok(Dialog {
            io: BufReader::new(Stream::Tls(Box::new(tls))),
            timeout: self.timeout,
        })
    }
}

fn shown(text: &str) -> String {
    sanitize_reply_text(text, 200)
}

/// Runs the check; every step is reported, the first failure ends it. Passwords never
/// appear in the steps.
pub async fn probe_mailbox(server: &MailboxServer, egress: &Egress) -> ProbeReport {
    let mut steps = Vec::new();
    let ok = match run(server, egress, &mut steps).await {
        Ok(()) => true,
        Err(why) => {
            steps.push(format!("failed: {}", shown(&why)));
            false
        }
    };
    ProbeReport { ok, steps }
}

async fn run(
    server: &MailboxServer,
    egress: &Egress,
    steps: &mut Vec<String>,
) -> Result<(), String> {
    let mut dialog = connect(server, egress, steps).await?;
    expect_greeting(server, &mut dialog, steps).await?;
    if server.security == MailboxSecurity::Starttls {
        dialog = upgrade_to_tls(server, dialog, steps).await?;
    }
    match server.protocol {
        MailboxProtocol::Imap => imap_login_logout(server, &mut dialog, steps).await,
        MailboxProtocol::Pop3 => pop3_login_logout(server, &mut dialog, steps).await,
    }
}

/// The connection through the egress policy, with TLS at once when the server wants it.
async fn connect(
    server: &MailboxServer,
    egress: &Egress,
    steps: &mut Vec<String>,
) -> Result<Dialog, String> {
    let timeout = Duration::from_secs(server.timeout_secs.max(1));
    steps.push(format!(
        "connect to {}:{} ({}, {})",
        server.host,
        server.port,
        server.protocol.label(),
        server.security.label()
    ));
    let tcp = egress
        .connect_tcp(&server.host, server.port, timeout)
        .await
        .map_err(|e| e.to_string())?;
    let mut dialog = Dialog {
        io: BufReader::new(Stream::Plain(tcp)),
        timeout,
    };
    if server.security == MailboxSecurity::Tls {
        dialog = dialog
            .start_tls(&server.host, server.skip_tls_verify)
            .await?;
        steps.push("TLS up".into());
    }
    Ok(dialog)
}

/// The server's greeting, which must be the protocol's OK.
async fn expect_greeting(
    server: &MailboxServer,
    dialog: &mut Dialog,
    steps: &mut Vec<String>,
) -> Result<(), String> {
    let greeting = dialog.line().await?;
    let greeted = match server.protocol {
        MailboxProtocol::Imap => greeting.starts_with("* OK") || greeting.starts_with("* PREAUTH"),
        MailboxProtocol::Pop3 => pop3_ok(&greeting),
    };
    if !greeted {
        return Err(format!("unexpected greeting: {greeting}"));
    }
    steps.push(format!("greeting: {}", shown(&greeting)));
    Ok(())
}

/// STARTTLS (IMAP) or STLS (POP3), then the TLS handshake.
async fn upgrade_to_tls(
    server: &MailboxServer,
    mut dialog: Dialog,
    steps: &mut Vec<String>,
) -> Result<Dialog, String> {
    let command = match server.protocol {
        MailboxProtocol::Imap => "a1 STARTTLS",
        MailboxProtocol::Pop3 => "STLS",
    };
    dialog.send(command).await?;
    let (ok, answer) = match server.protocol {
        MailboxProtocol::Imap => dialog.imap_answer("a1").await?,
        MailboxProtocol::Pop3 => {
            let line = dialog.line().await?;
            (pop3_ok(&line), line)
        }
    };
    if !ok {
        return Err(format!("{command} refused: {answer}"));
    }
    let dialog = dialog
        .start_tls(&server.host, server.skip_tls_verify)
        .await?;
    steps.push(format!("{command}: TLS up"));
    Ok(dialog)
}

/// IMAP LOGIN, then LOGOUT.
async fn imap_login_logout(
    server: &MailboxServer,
    dialog: &mut Dialog,
    steps: &mut Vec<String>,
) -> Result<(), String> {
    let (Some(user), Some(pass)) = (imap_quote(&server.username), imap_quote(&server.password))
    else {
        return Err("the user name or password has a line break".into());
    };
    dialog.send(&format!("a2 LOGIN {user} {pass}")).await?;
    let (ok, answer) = dialog.imap_answer("a2").await?;
    if !ok {
        return Err(format!("login refused: {answer}"));
    }
    steps.push(format!("login accepted: {}", shown(&answer)));
    dialog.send("a3 LOGOUT").await?;
    let (ok, answer) = dialog.imap_answer("a3").await?;
    if !ok {
        return Err(format!("logout refused: {answer}"));
    }
    steps.push("logged out".into());
    Ok(())
}

/// POP3 USER and PASS, then QUIT.
async fn pop3_login_logout(
    server: &MailboxServer,
    dialog: &mut Dialog,
    steps: &mut Vec<String>,
) -> Result<(), String> {
    if server.username.contains(['\r', '\n']) || server.password.contains(['\r', '\n']) {
        return Err("the user name or password has a line break".into());
    }
    dialog.send(&format!("USER {}", server.username)).await?;
    let answer = dialog.line().await?;
    if !pop3_ok(&answer) {
        return Err(format!("USER refused: {answer}"));
    }
    dialog.send(&format!("PASS {}", server.password)).await?;
    let answer = dialog.line().await?;
    if !pop3_ok(&answer) {
        return Err(format!("login refused: {answer}"));
    }
    steps.push(format!("login accepted: {}", shown(&answer)));
    dialog.send("QUIT").await?;
    let answer = dialog.line().await?;
    if !pop3_ok(&answer) {
        return Err(format!("QUIT refused: {answer}"));
    }
    steps.push("logged out".into());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imap_answers_are_matched_by_tag() {
        assert_eq!(imap_ok("a2", "a2 OK Logged in"), Some(true));
        assert_eq!(
            imap_ok("a2", "a2 NO [AUTHENTICATIONFAILED] Authentication failed."),
            Some(false)
        );
        assert_eq!(imap_ok("a2", "a2 BAD parse error"), Some(false));
        assert_eq!(imap_ok("a2", "* CAPABILITY IMAP4rev1"), None);
        assert_eq!(imap_ok("a2", "a21 OK other tag"), None);
    }

    #[test]
    fn pop3_status_and_quoting() {
        assert!(pop3_ok("+OK Dovecot ready."));
        assert!(!pop3_ok("-ERR [AUTH] Authentication failed."));
        assert_eq!(imap_quote(r#"p"w\d"#).as_deref(), Some(r#""p\"w\\d""#));
        assert_eq!(imap_quote("a\r\nb"), None);
    }

    #[test]
    fn ports_follow_protocol_and_security() {
        assert_eq!(
            default_port(MailboxProtocol::Imap, MailboxSecurity::Starttls),
            143
        );
        assert_eq!(
            default_port(MailboxProtocol::Imap, MailboxSecurity::Tls),
            993
        );
        assert_eq!(
            default_port(MailboxProtocol::Pop3, MailboxSecurity::None),
            110
        );
        assert_eq!(
            default_port(MailboxProtocol::Pop3, MailboxSecurity::Tls),
            995
        );
    }

    #[test]
    fn the_password_is_not_in_debug_output() {
        let server = MailboxServer {
            protocol: MailboxProtocol::Imap,
            host: "h".into(),
            port: 143,
            security: MailboxSecurity::None,
            username: "u".into(),
            password: "hunter2".into(),
            skip_tls_verify: false,
            timeout_secs: 1,
        };
        assert!(!format!("{server:?}").contains("hunter2"));
    }
}
