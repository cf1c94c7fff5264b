//! `sluice sendmail` (also `sendmail` through a symlink): reads one message on stdin and
//! submits it to the running Sluice over SMTP, so every policy of the server applies and
//! nothing is acknowledged before the server's 250. Exits as sendmail does (sysexits).
//!
//! Where it submits: `--server HOST:PORT` (or `SLUICE_SENDMAIL_SERVER`), else the first
//! `auth = "none"` listener of the config (`--config`, `SLUICE_CONFIG`, or
//! /etc/sluice/sluice.toml when this user may read it), else 127.0.0.1:2525. As whom: the
//! trusted listener's `smtp.trusted_account`; or, with `SLUICE_SENDMAIL_USER` and
//! `SLUICE_SENDMAIL_PASSWORD`, an SMTP login (`SLUICE_SENDMAIL_TLS` = starttls | implicit |
//! none, `SLUICE_SENDMAIL_INSECURE=1` for a self-signed certificate).

mod args;
mod message;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::Address;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};
use sluice_config::{ListenerAuth, ListenerTls};
use sluice_deliver::transport::{ClientSecurity, ClientTarget, connect};

pub use args::SendmailArgs;

/// sendmail's exit statuses (sysexits.h).
pub mod exit {
    pub const OK: i32 = 0;
    pub const USAGE: i32 = 64;
    pub const DATAERR: i32 = 65;
    pub const NOUSER: i32 = 67;
    pub const UNAVAILABLE: i32 = 69;
    pub const SOFTWARE: i32 = 70;
    pub const TEMPFAIL: i32 = 75;
    pub const NOPERM: i32 = 77;
    pub const CONFIG: i32 = 78;
}

const DEFAULT_SERVER: &str = "127.0.0.1:2525";
const DEFAULT_CONFIG: &str = "/etc/sluice/sluice.toml";

const USAGE: &str = "usage: sendmail [-t] [-i|-oi] [-f sender] [-F name] [--config PATH] \
[--server HOST:PORT] [recipients...] < message
Submits the message on stdin to Sluice over SMTP. Server: --server, SLUICE_SENDMAIL_SERVER, \
the config's first auth = \"none\" listener, or 127.0.0.1:2525. Login: SLUICE_SENDMAIL_USER, \
SLUICE_SENDMAIL_PASSWORD, SLUICE_SENDMAIL_TLS (none|starttls|implicit). \
Exit: 0 sent, 75 try again later, 64-78 refused.";

/// A failure: the exit status and what to say on stderr.
struct Failure(i32, String);

/// Runs sendmail with `args` (without the program name); the exit status.
pub fn main(args: &[String]) -> i32 {
    if args.iter().any(|a| a == "--help") {
        println!("{USAGE}");
        return exit::OK;
    }
    match run(args) {
        Ok(()) => exit::OK,
        Err(Failure(code, why)) => {
            eprintln!("sendmail: {why}");
            code
        }
    }
}

fn run(raw: &[String]) -> Result<(), Failure> {
    let args = args::parse(raw).map_err(|e| Failure(exit::USAGE, e))?;
    let mut input = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut input)
        .map_err(|e| Failure(exit::SOFTWARE, format!("reading the message: {e}")))?;
    let mut content = message::read_message(&input, args.ignore_dots);
    if content.is_empty() {
        return Err(Failure(exit::DATAERR, "no message on stdin".into()));
    }
    let mut recipients: Vec<String> = args
        .recipients
        .iter()
        .flat_map(|list| list.split(','))
        .map(|r| {
            r.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
        .filter(|r| !r.is_empty())
        .collect();
    if args.recipients_from_headers {
        for found in message::header_recipients(&content) {
            if !recipients.iter().any(|r| r.eq_ignore_ascii_case(&found)) {
                recipients.push(found);
            }
        }
    }
    if recipients.is_empty() {
        return Err(Failure(
            exit::USAGE,
            "no recipients: name them as arguments, or use -t to take To, Cc and Bcc".into(),
        ));
    }
    let sender = args
        .sender
        .clone()
        .or_else(|| message::from_address(&content))
        .or_else(|| std::env::var("SLUICE_SENDMAIL_FROM").ok())
        .ok_or_else(|| {
            Failure(
                exit::USAGE,
                "no sender: give -f, a From header, or SLUICE_SENDMAIL_FROM".into(),
            )
        })?;
    // Blind copies never travel in the content, -t or not.
    content = message::without_bcc(&content);
    if !message::has_field(&content, "from") {
        let from = match &args.full_name {
            Some(name) => format!(
                "From: \"{}\" <{sender}>\r\n",
                name.replace(['"', '\\', '\r', '\n'], "")
            ),
            None => format!("From: <{sender}>\r\n"),
        };
        content.splice(0..0, from.into_bytes());
    }
    let target = target(&args)?;
    let credentials = credentials();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure(exit::SOFTWARE, format!("starting: {e}")))?;
    runtime.block_on(submit(
        target,
        credentials,
        &sender,
        &recipients,
        &content,
        args.verbose,
    ))
}

/// Where to submit, as the module's documentation says.
fn target(args: &SendmailArgs) -> Result<ClientTarget, Failure> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let security = match env("SLUICE_SENDMAIL_TLS").as_deref() {
        None | Some("none") => ClientSecurity::None,
        Some("starttls") => ClientSecurity::Starttls,
        Some("implicit") => ClientSecurity::Implicit,
        Some(other) => {
            return Err(Failure(
                exit::CONFIG,
                format!("SLUICE_SENDMAIL_TLS is none, starttls or implicit, not {other:?}"),
            ));
        }
    };
    let (server, security) = match args
        .server
        .clone()
        .or_else(|| env("SLUICE_SENDMAIL_SERVER"))
    {
        Some(server) => (server, security),
        None => match trusted_listener(
            args.config
                .clone()
                .or_else(|| env("SLUICE_CONFIG").map(PathBuf::from)),
        )? {
            Some((addr, tls)) => (addr, tls),
            None => (DEFAULT_SERVER.to_string(), security),
        },
    };
    let (host, port) = server
        .rsplit_once(':')
        .and_then(|(host, port)| {
            Some((
                host.trim_matches(['[', ']']).to_string(),
                port.parse().ok()?,
            ))
        })
        .ok_or_else(|| {
            Failure(
                exit::CONFIG,
                format!("the server {server:?} is not HOST:PORT"),
            )
        })?;
    Ok(ClientTarget {
        host,
        port,
        security,
        skip_tls_verify: env("SLUICE_SENDMAIL_INSECURE").is_some_and(|v| v != "0"),
        timeout: Duration::from_secs(60),
        hello: "localhost".into(),
        // The operator's own server, named by the operator.
        egress: sluice_deliver::Egress::Trusted,
    })
}

/// The first `auth = "none"` listener of the config as HOST:PORT (a wildcard address as
/// loopback), with how to secure it. A config named on purpose must load; the default
/// one is skipped when absent or not readable by this user (PHP runs as www-data).
fn trusted_listener(named: Option<PathBuf>) -> Result<Option<(String, ClientSecurity)>, Failure> {
    let path = match &named {
        Some(path) => path.as_path(),
        None if std::fs::File::open(DEFAULT_CONFIG).is_ok() => Path::new(DEFAULT_CONFIG),
        None => return Ok(None),
    };
    let config = sluice_config::load(sluice_config::Config::default(), Some(path))
        .map_err(|e| Failure(exit::CONFIG, format!("{}: {e}", path.display())))?;
    let Some(listener) = config
        .smtp
        .listeners
        .iter()
        .find(|l| l.auth == ListenerAuth::None)
    else {
        return Ok(None);
    };
    let ip = match listener.addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_string(),
        ip if ip.is_unspecified() => "[::1]".to_string(),
        ip if ip.is_ipv6() => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let security = match listener.tls {
        ListenerTls::Implicit => ClientSecurity::Implicit,
        ListenerTls::Starttls | ListenerTls::None => ClientSecurity::None,
    };
    Ok(Some((format!("{ip}:{}", listener.addr.port()), security)))
}

fn credentials() -> Option<Credentials> {
    let user = std::env::var("SLUICE_SENDMAIL_USER")
        .ok()
        .filter(|u| !u.is_empty())?;
    let password = std::env::var("SLUICE_SENDMAIL_PASSWORD").unwrap_or_default();
    Some(Credentials::new(user, password))
}

/// A refusal or failure of one SMTP step as sendmail's exit status: transient (4xx, no
/// answer, no connection) 75; permanent by step.
fn failed(step: &str, permanent_code: i32, error: &lettre::transport::smtp::Error) -> Failure {
    let code = if error.is_permanent() {
        permanent_code
    } else {
        exit::TEMPFAIL
    };
    Failure(code, format!("{step}: {error}"))
}

async fn submit(
    target: ClientTarget,
    credentials: Option<Credentials>,
    sender: &str,
    recipients: &[String],
    content: &[u8],
    verbose: bool,
) -> Result<(), Failure> {
    let server = format!("{}:{}", target.host, target.port);
    let mut conn = connect(&target)
        .await
        .map_err(|e| {
            let permanent =
                matches!(&e, sluice_deliver::transport::ConnectError::Smtp(s) if s.is_permanent());
            let code = if permanent {
                exit::UNAVAILABLE
            } else {
                exit::TEMPFAIL
            };
            Failure(code, format!("cannot submit to {server}: {e}"))
        })?
        .conn;
    let result = transaction(&mut conn, credentials, sender, recipients, content, verbose).await;
    let _ = conn.quit().await;
    result
}

async fn transaction(
    conn: &mut AsyncSmtpConnection,
    credentials: Option<Credentials>,
    sender: &str,
    recipients: &[String],
    content: &[u8],
    verbose: bool,
) -> Result<(), Failure> {
    let say = |step: &str, reply: &lettre::transport::smtp::response::Response| {
        if verbose {
            eprintln!(
                "{step}: {} {}",
                reply.code(),
                reply.message().collect::<Vec<_>>().join(" ")
            );
        }
    };
    if let Some(credentials) = credentials {
        let reply = conn
            .auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
            .await
            .map_err(|e| failed("AUTH", exit::NOPERM, &e))?;
        say("AUTH", &reply);
    }
    let from: Address = sender
        .parse()
        .map_err(|e| Failure(exit::DATAERR, format!("sender {sender:?}: {e}")))?;
    let mut options = Vec::new();
    let utf8 = !sender.is_ascii() || recipients.iter().any(|r| !r.is_ascii());
    if utf8 && conn.server_info().supports_feature(Extension::SmtpUtfEight) {
        options.push(MailParameter::SmtpUtfEight);
    }
    if !content.is_ascii() && conn.server_info().supports_feature(Extension::EightBitMime) {
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    let reply = conn
        .command(Mail::new(Some(from), options))
        .await
        .map_err(|e| failed("sender refused (MAIL FROM)", exit::NOPERM, &e))?;
    say("MAIL", &reply);
    for recipient in recipients {
        let to: Address = recipient
            .parse()
            .map_err(|e| Failure(exit::NOUSER, format!("recipient {recipient:?}: {e}")))?;
        let reply = conn
            .command(Rcpt::new(to, Vec::new()))
            .await
            .map_err(|e| failed(&format!("recipient {recipient} refused"), exit::NOUSER, &e))?;
        say("RCPT", &reply);
    }
    let reply = conn
        .command(Data)
        .await
        .map_err(|e| failed("DATA refused", exit::UNAVAILABLE, &e))?;
    say("DATA", &reply);
    // lettre ends the content with CRLF "." CRLF itself: the last line's CRLF is that
    // terminator's first one.
    let reply = conn
        .message(content.strip_suffix(b"\r\n").unwrap_or(content))
        .await
        .map_err(|e| failed("message refused", exit::DATAERR, &e))?;
    say("sent", &reply);
    Ok(())
}
