//! The `smtp` provider: an upstream SMTP server, driven command by command so each
//! recipient gets its own result.
//!
//! When the upstream offers PIPELINING, MAIL, the RCPTs and DATA go in one write (else one
//! by one); the content goes dot-stuffed in one write. Connections are pooled per provider,
//! and an idle one gets an RSET before reuse only after 1 s.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::Extension;
use sluice_core::text::sanitize_reply_text;
use sluice_core::{DeliveryReport, RecipientResult, SmtpProviderConfig, SmtpSecurity, Verdict};

use crate::deadline::CutSwitch;
use crate::egress::Egress;
use crate::shared_stream::SharedStream;
use crate::smtp_content::write_content;
use crate::transport::{self, ClientSecurity, ClientTarget, ConnectError};
use crate::{Deliverer, Outbound, OutboundBody};

const EXCERPT: usize = 300;

/// Idle upstream connections kept for reuse, at most this many per provider...
const MAX_IDLE: usize = 64;
/// ...and for at most this long (upstreams close idle sessions; Postfix after 300 s).
const IDLE_FOR: Duration = Duration::from_secs(30);
/// A connection idle this long is checked with RSET before it is used again.
const CHECK_AFTER: Duration = Duration::from_secs(1);

pub struct SmtpDeliverer {
    config: SmtpProviderConfig,
    hello: String,
    egress: Egress,
    /// Connections that finished a transaction cleanly, newest last.
    idle: std::sync::Mutex<Vec<(Upstream, Instant)>>,
}

/// A connection, whether its server takes pipelined commands (RFC 2920), the stream under
/// it (message content is written there directly), and the switch that kills it when the
/// content of a streamed message cannot be read to its end.
struct Upstream {
    conn: AsyncSmtpConnection,
    pipelining: bool,
    stream: SharedStream,
    cut: CutSwitch,
    encrypted: bool,
}

/// A failed transaction, and whether the message content had been sent (then it is
/// never tried again on a fresh connection: the upstream may have taken it).
struct TransactionError {
    error: AttemptError,
    content_sent: bool,
}

impl From<SmtpError> for TransactionError {
    fn from(error: SmtpError) -> Self {
        TransactionError {
            error: AttemptError::Smtp(error),
            content_sent: false,
        }
    }
}

enum AttemptError {
    Io(String),
    Smtp(SmtpError),
}

impl AttemptError {
    /// True when the upstream answered (a reply code), not a broken connection.
    fn answered(&self) -> bool {
        matches!(self, AttemptError::Smtp(e) if e.status().is_some())
    }
}

impl SmtpDeliverer {
    pub fn new(config: SmtpProviderConfig, default_hello: &str, egress: Egress) -> Self {
        let hello = config
            .hello_name
            .clone()
            .unwrap_or_else(|| default_hello.to_string());
        SmtpDeliverer {
            config,
            hello,
            egress,
            idle: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// A pooled connection, or a new one. Pooled connections save the TCP (and TLS, and
    /// AUTH) handshakes and the EHLO of every message. One idle for [`CHECK_AFTER`] or more
    /// must answer RSET first; a fresher one is used at once (if the upstream dropped it
    /// meanwhile, the transaction fails before the content and is tried again fresh).
    async fn checkout(&self) -> Result<(Upstream, bool), AttemptError> {
        loop {
            let pooled = {
                let mut idle = self.idle.lock().expect("pool lock");
                idle.retain(|(_, since)| since.elapsed() < IDLE_FOR);
                idle.pop()
            };
            let Some((mut upstream, since)) = pooled else {
                break;
            };
            if since.elapsed() < CHECK_AFTER || upstream.conn.command("RSET\r\n").await.is_ok() {
                return Ok((upstream, true));
            }
            upstream.conn.abort().await;
        }
        Ok((self.connect().await?, false))
    }

    /// Back to the pool after a clean transaction; QUIT when the pool is full.
    async fn checkin(&self, upstream: Upstream) {
        let mut full = {
            let mut idle = self.idle.lock().expect("pool lock");
            if idle.len() < MAX_IDLE {
                idle.push((upstream, Instant::now()));
                return;
            }
            upstream
        };
        let _ = full.conn.quit().await;
    }

    async fn connect(&self) -> Result<Upstream, AttemptError> {
        let target = ClientTarget {
            host: self.config.host.clone(),
            port: self.config.port(),
            security: match self.config.security {
                SmtpSecurity::None => ClientSecurity::None,
                SmtpSecurity::Starttls => ClientSecurity::Starttls,
                SmtpSecurity::Tls => ClientSecurity::Implicit,
            },
            skip_tls_verify: self.config.skip_tls_verify,
            timeout: Duration::from_secs(self.config.timeout_secs),
            hello: self.hello.clone(),
            egress: self.egress.clone(),
        };
        let connected = transport::connect(&target).await.map_err(|e| match e {
            ConnectError::Egress(e) => AttemptError::Io(e.to_string()),
            ConnectError::Io(e) => AttemptError::Io(e.to_string()),
            ConnectError::Smtp(e) => AttemptError::Smtp(e),
        })?;
        let mut conn = connected.conn;
        // lettre keeps only the EHLO keywords it knows; ask once more for PIPELINING.
        let pipelining = match conn.command(format!("EHLO {}\r\n", self.hello)).await {
            Ok(reply) => reply
                .message()
                .any(|line| line.trim().eq_ignore_ascii_case("PIPELINING")),
            Err(error) => return Err(AttemptError::Smtp(error)),
        };
        if let (Some(user), Some(password)) = (&self.config.username, &self.config.password) {
            let credentials = Credentials::new(user.clone(), password.clone());
            conn.auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
                .await
                .map_err(AttemptError::Smtp)?;
        }
        Ok(Upstream {
            conn,
            pipelining,
            stream: connected.stream,
            cut: connected.cut,
            encrypted: connected.encrypted,
        })
    }

    /// MAIL, RCPT per recipient, DATA, content. With PIPELINING the commands go in one
    /// write and their replies are read in order; the content (dot-stuffed, with its end
    /// mark) is always one write.
    async fn transaction(
        &self,
        upstream: &mut Upstream,
        message: Outbound<'_>,
    ) -> Result<Vec<RecipientResult>, TransactionError> {
        let envelope = message.envelope;
        let conn = &mut upstream.conn;
        let mut params = String::new();
        let info = conn.server_info();
        if envelope.smtputf8 && info.supports_feature(Extension::SmtpUtfEight) {
            params.push_str(" SMTPUTF8");
        }
        if envelope.eight_bit && info.supports_feature(Extension::EightBitMime) {
            params.push_str(" BODY=8BITMIME");
        }
        let mail = format!("MAIL FROM:<{}>{params}\r\n", envelope.mail_from);
        let rcpt = |to: &str| format!("RCPT TO:<{to}>\r\n");
        let mut results = Vec::with_capacity(envelope.rcpt_to.len());
        let mut accepted = Vec::new();
        if upstream.pipelining {
            let mut commands = mail;
            for to in &envelope.rcpt_to {
                commands.push_str(&rcpt(to));
            }
            commands.push_str("DATA\r\n");
            // MAIL refused: the upstream refuses the rest too; the connection is dropped.
            conn.command(commands).await?;
        } else {
            conn.command(mail).await?;
        }
        for to in &envelope.rcpt_to {
            let reply = match upstream.pipelining {
                true => conn.read_response().await,
                false => conn.command(rcpt(to)).await,
            };
            match reply {
                Ok(_) => accepted.push(to.clone()),
                Err(error) if error.status().is_some() => {
                    results.push(result_from_error(to, &error))
                }
                Err(error) => return Err(error.into()),
            }
        }
        let data = match (upstream.pipelining, accepted.is_empty()) {
            (true, _) => conn.read_response().await,
            (false, false) => conn.command("DATA\r\n").await,
            (false, true) => {
                let _ = conn.command("RSET\r\n").await;
                return Ok(results);
            }
        };
        match data {
            // Pipelined DATA with no recipient: refused, as it should be.
            Err(error) if accepted.is_empty() && error.status().is_some() => {
                let _ = conn.command("RSET\r\n").await;
                return Ok(results);
            }
            // ...or taken anyway: end the empty content at once.
            Ok(_) if accepted.is_empty() => {
                let _ = conn.command(".\r\n").await;
                return Ok(results);
            }
            Ok(_) => {}
            Err(error) => return Err(error.into()),
        }
        let sent = send_content(upstream, message.body).await;
        match sent {
            Ok(response) => {
                let text = response.message().collect::<Vec<_>>().join(" ");
                let code = u16::from(response.code());
                for rcpt in accepted {
                    results.push(RecipientResult {
                        rcpt,
                        verdict: Verdict::Delivered,
                        code: Some(code),
                        response: sanitize_reply_text(&text, EXCERPT),
                    });
                }
            }
            Err(AttemptError::Smtp(error)) if error.status().is_some() => {
                results.extend(accepted.iter().map(|rcpt| result_from_error(rcpt, &error)));
            }
            Err(error) => {
                return Err(TransactionError {
                    error,
                    content_sent: true,
                });
            }
        }
        Ok(results)
    }
}

/// Sends the content, dot-stuffed and ended with `CRLF . CRLF`, straight to the stream
/// under lettre (a stored message a chunk at a time as it is read); answers the upstream's
/// reply to it.
async fn send_content(
    upstream: &mut Upstream,
    body: OutboundBody<'_>,
) -> Result<lettre::transport::smtp::response::Response, AttemptError> {
    write_content(&mut upstream.stream, body, &upstream.cut)
        .await
        .map_err(|e| AttemptError::Io(e.to_string()))?;
    upstream
        .conn
        .read_response()
        .await
        .map_err(AttemptError::Smtp)
}

/// `body` made transparent (RFC 5321 4.5.2: a `.` that starts a line is doubled) and
/// ended with the end-of-data mark, in one piece. A body ending in CRLF gets no extra
/// empty line. What `write_content` must send, in the tests.
#[cfg(test)]
pub(crate) fn dot_stuffed(body: &[u8]) -> Vec<u8> {
    let mut wire = crate::smtp_content::WireChunks::default();
    let mut out = Vec::with_capacity(body.len() + body.len() / 512 + 8);
    wire.push_into(body, &mut out);
    wire.finish_into(&mut out);
    out
}

/// 5xx is permanent; 4xx, timeouts, connection and TLS errors are transient.
fn result_from_error(rcpt: &str, error: &SmtpError) -> RecipientResult {
    let verdict = if error.is_permanent() {
        Verdict::Permanent
    } else {
        Verdict::Transient
    };
    RecipientResult {
        rcpt: rcpt.to_string(),
        verdict,
        code: error.status().map(u16::from),
        response: sanitize_reply_text(&error.to_string(), EXCERPT),
    }
}

#[async_trait]
impl Deliverer for SmtpDeliverer {
    fn kind(&self) -> &'static str {
        "smtp"
    }

    fn sender_name(&self) -> Option<&str> {
        self.config.from_name.as_deref()
    }

    fn streams_bodies(&self) -> bool {
        true
    }

    fn destination(&self) -> Option<String> {
        Some(format!(
            "{}:{}",
            self.config.host.to_ascii_lowercase(),
            self.config.port()
        ))
    }

    async fn deliver(&self, message: Outbound<'_>) -> DeliveryReport {
        let rcpts = &message.envelope.rcpt_to;
        // Each step has its deadline of `timeout_secs` (the connection's DeadlineStream);
        // the whole attempt is bounded too, so an upstream that answers every step just in
        // time cannot hold a slot for ever.
        let limit = Duration::from_secs(self.config.timeout_secs.saturating_mul(4).max(1));
        let attempt = async {
            // Failures while connecting (TCP, TLS, AUTH) are deferred even when 5xx, like
            // Postfix's soft bounce: the fix is usually on our side and the mail should wait.
            let (mut upstream, reused) = self.checkout().await.map_err(|e| (e, true))?;
            let results = match self.transaction(&mut upstream, message).await {
                // A pooled connection the upstream dropped meanwhile: once more, fresh.
                Err(failed) if reused && !failed.content_sent && !failed.error.answered() => {
                    upstream.conn.abort().await;
                    upstream = self.connect().await.map_err(|e| (e, true))?;
                    self.transaction(&mut upstream, message).await
                }
                other => other,
            };
            match results {
                Ok(results) => {
                    self.checkin(upstream).await;
                    Ok(results)
                }
                Err(failed) => {
                    upstream.conn.abort().await;
                    Err((failed.error, false))
                }
            }
        };
        let results = match tokio::time::timeout(limit, attempt).await {
            Ok(Ok(results)) => results,
            Ok(Err((AttemptError::Io(text), _))) => {
                return DeliveryReport::uniform(
                    "smtp",
                    rcpts,
                    Verdict::Transient,
                    None,
                    &sanitize_reply_text(&text, EXCERPT),
                );
            }
            Ok(Err((AttemptError::Smtp(error), connecting))) => {
                let mut result = result_from_error("", &error);
                if connecting {
                    result.verdict = Verdict::Transient;
                }
                return DeliveryReport::uniform(
                    "smtp",
                    rcpts,
                    result.verdict,
                    result.code,
                    &result.response,
                );
            }
            Err(_) => {
                return DeliveryReport::uniform(
                    "smtp",
                    rcpts,
                    Verdict::Transient,
                    None,
                    "timed out talking to the upstream",
                );
            }
        };
        DeliveryReport {
            provider: "smtp".into(),
            recipients: results,
            ..Default::default()
        }
    }
}

/// The outcome of a connectivity check, step by step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    pub ok: bool,
    pub steps: Vec<String>,
}

/// Connects as a delivery would (TCP, TLS as configured, EHLO, AUTH if configured) and
/// says QUIT; sends no mail. Upstream text in the steps is sanitised.
pub async fn probe_smtp(
    config: &SmtpProviderConfig,
    default_hello: &str,
    egress: &Egress,
) -> ProbeReport {
    let deliverer = SmtpDeliverer::new(config.clone(), default_hello, egress.clone());
    let mut steps = vec![format!(
        "connect to {}:{} ({})",
        config.host,
        config.port(),
        config.security.label()
    )];
    let limit = Duration::from_secs(config.timeout_secs.saturating_mul(2).max(1));
    let connected = tokio::time::timeout(limit, deliverer.connect()).await;
    let (mut conn, encrypted) = match connected {
        Ok(Ok(upstream)) => (upstream.conn, upstream.encrypted),
        Ok(Err(error)) => {
            let text = match error {
                AttemptError::Io(text) => text,
                AttemptError::Smtp(e) => e.to_string(),
            };
            steps.push(format!("failed: {}", sanitize_reply_text(&text, EXCERPT)));
            return ProbeReport { ok: false, steps };
        }
        Err(_) => {
            steps.push("failed: timed out".into());
            return ProbeReport { ok: false, steps };
        }
    };
    steps.push(format!(
        "connected; EHLO accepted{}",
        if encrypted { "; TLS up" } else { "" }
    ));
    if config.username.is_some() {
        steps.push("AUTH accepted".into());
    }
    match conn.quit().await {
        Ok(_) => steps.push("QUIT accepted".into()),
        Err(e) => steps.push(format!(
            "QUIT: {}",
            sanitize_reply_text(&e.to_string(), EXCERPT)
        )),
    }
    ProbeReport { ok: true, steps }
}

/// Who a test message goes from and to, and the provider's name for its subject.
#[derive(Debug, Clone, Copy)]
pub struct TestMessage<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub provider_name: &'a str,
    /// Unix seconds, for the Date header and the Message-ID.
    pub now_secs: i64,
}

/// [`probe_smtp`], then, when that passed, one real message sent through the provider
/// as a delivery would send it (sender display name applied), with the upstream's
/// answer to it as the last step.
pub async fn send_test_message(
    config: &SmtpProviderConfig,
    default_hello: &str,
    egress: &Egress,
    test: TestMessage<'_>,
) -> ProbeReport {
    let mut report = probe_smtp(config, default_hello, egress).await;
    if !report.ok {
        return report;
    }
    let deliverer = SmtpDeliverer::new(config.clone(), default_hello, egress.clone());
    let plain = test_message(&test, &deliverer.hello);
    let body = config
        .from_name
        .as_deref()
        .and_then(|name| crate::sender_name::with_sender_name(&plain, name))
        .unwrap_or(plain);
    let envelope = sluice_core::Envelope {
        mail_from: test.from.to_string(),
        rcpt_to: vec![test.to.to_string()],
        smtputf8: !test.from.is_ascii() || !test.to.is_ascii(),
        eight_bit: false,
    };
    let delivered = deliverer
        .deliver(Outbound {
            id: 0,
            account_id: 0,
            envelope: &envelope,
            body: OutboundBody::Whole(&body),
        })
        .await;
    let Some(result) = delivered.recipients.first() else {
        report.ok = false;
        report.steps.push("test message: no answer".into());
        return report;
    };
    report.ok = result.verdict == Verdict::Delivered;
    let outcome = if report.ok { "accepted" } else { "refused" };
    let code = result.code.map(|c| format!("{c} ")).unwrap_or_default();
    report.steps.push(format!(
        "test message to {}: {outcome}: {code}{}",
        test.to, result.response
    ));
    report
}

/// A short plain-text message saying what it is.
fn test_message(test: &TestMessage<'_>, hello: &str) -> Vec<u8> {
    let date = time::OffsetDateTime::from_unix_timestamp(test.now_secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc2822)
                .ok()
        })
        .unwrap_or_default();
    let name = sanitize_reply_text(test.provider_name, 100);
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: Sluice test message ({name})\r\n\
         Date: {date}\r\nMessage-ID: <sluice-test-{secs}@{hello}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n\
         This message was sent by Sluice's Test SMTP to check the provider \"{name}\".\r\n\
         Nothing needs to be done with it.\r\n",
        from = test.from,
        to = test.to,
        secs = test.now_secs,
    )
    .into_bytes()
}

#[cfg(test)]
#[path = "smtp_stuffing_tests.rs"]
mod stuffing_tests;

#[cfg(test)]
mod tests {
    use super::dot_stuffed;

    #[test]
    fn content_is_made_transparent_and_ended_once() {
        let table: [(&[u8], &[u8]); 6] = [
            (b"a\r\nb\r\n", b"a\r\nb\r\n.\r\n"),
            (b"a\r\nb", b"a\r\nb\r\n.\r\n"),
            (b".starts\r\n..two\r\n", b"..starts\r\n...two\r\n.\r\n"),
            (b"x\r\n.\r\ny\r\n", b"x\r\n..\r\ny\r\n.\r\n"),
            (b"bare\n.lf\r\n", b"bare\n..lf\r\n.\r\n"),
            (b"mid.dot\r\n", b"mid.dot\r\n.\r\n"),
        ];
        for (body, wire) in table {
            assert_eq!(
                dot_stuffed(body),
                wire,
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
