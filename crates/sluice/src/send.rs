//! `sluice send`: a test client and load generator. Sessions stay open and send messages
//! one after another; the summary reports the accept latency (MAIL FROM to the final 250).

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use sluice_deliver::transport::{ClientSecurity, ClientTarget, connect};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TlsMode {
    Starttls,
    Implicit,
    None,
}

#[derive(Args, Clone, Debug)]
pub struct SendArgs {
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 587)]
    port: u16,
    #[arg(long, value_enum, default_value = "starttls")]
    tls: TlsMode,
    /// Accept any server certificate (self-signed test servers).
    #[arg(long)]
    insecure: bool,
    #[arg(long)]
    user: Option<String>,
    #[arg(long, env = "SLUICE_SEND_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    #[arg(long, default_value = "dev@example.com")]
    from: String,
    /// A recipient; repeat for more.
    #[arg(long = "to", required = true)]
    to: Vec<String>,
    #[arg(long, default_value = "Test from sluice send")]
    subject: String,
    #[arg(long, default_value = "Hello from sluice send.")]
    body: String,
    /// Messages to send in all.
    #[arg(long, default_value_t = 1)]
    count: u64,
    /// Messages per second across all sessions; 0 for as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Sessions in parallel.
    #[arg(long, default_value_t = 1)]
    concurrency: u64,
    /// Pad each body to at least this many bytes.
    #[arg(long, default_value_t = 0)]
    size: usize,
    /// Messages per session before reconnecting; 0 for no limit.
    #[arg(long, default_value_t = 0)]
    per_session: u64,
    /// Append one line per accepted message (sequence number and server reply) to this file.
    #[arg(long)]
    accepted_log: Option<PathBuf>,
    /// Seconds to wait for the server at each step.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Send a message again (on a new connection, 2 s later) this many times when the
    /// server answered a transient 4xx or could not be reached, as an MTA would; 0 counts
    /// the first failure (what the load and durability tests measure).
    #[arg(long, default_value_t = 0)]
    retries: u32,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    errors: Vec<String>,
}

pub async fn run(args: SendArgs) -> anyhow::Result<()> {
    let args = Arc::new(args);
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let next = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let log = match &args.accepted_log {
        Some(path) => Some(Arc::new(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?,
        ))),
        None => None,
    };
    let progress = ProgressBar::new(args.count);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut sessions = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let ctx = SessionCtx {
            args: args.clone(),
            run_id: run_id.clone(),
            next: next.clone(),
            sent: sent.clone(),
            tally: tally.clone(),
            log: log.clone(),
            progress: progress.clone(),
            started,
        };
        sessions.push(tokio::spawn(ctx.run()));
    }
    for session in sessions {
        let _ = session.await;
    }
    progress.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    let mut tally = std::mem::take(&mut *tally.lock().unwrap());
    tally.latencies_us.sort_unstable();
    let ok = tally.latencies_us.len();
    let failed = tally.errors.len();
    let pct = |p: f64| -> f64 {
        if ok == 0 {
            return 0.0;
        }
        let idx = ((ok as f64 * p).ceil() as usize).clamp(1, ok) - 1;
        tally.latencies_us[idx] as f64 / 1000.0
    };
    println!("sent:      {ok}");
    println!("failed:    {failed}");
    println!("elapsed:   {elapsed:.2} s");
    println!("rate:      {:.1} msgs/s", ok as f64 / elapsed.max(1e-9));
    println!(
        "latency:   p50 {:.2} ms, p99 {:.2} ms",
        pct(0.50),
        pct(0.99)
    );
    let mut shown = tally.errors.clone();
    shown.sort();
    shown.dedup();
    for error in shown.iter().take(5) {
        println!("error:     {error}");
    }
    if failed > 0 {
        anyhow::bail!("{failed} message(s) not accepted");
    }
    Ok(())
}

struct SessionCtx {
    args: Arc<SendArgs>,
    run_id: String,
    next: Arc<AtomicU64>,
    sent: Arc<AtomicU64>,
    tally: Arc<Mutex<Tally>>,
    log: Option<Arc<Mutex<std::fs::File>>>,
    progress: ProgressBar,
    started: Instant,
}

impl SessionCtx {
    async fn run(self) {
        let mut conn: Option<AsyncSmtpConnection> = None;
        let mut in_session = 0u64;
        loop {
            let seq = self.next.fetch_add(1, Ordering::SeqCst);
            if seq >= self.args.count {
                break;
            }
            if self.args.rate > 0.0 {
                let due = self.started + Duration::from_secs_f64(seq as f64 / self.args.rate);
                tokio::time::sleep_until(due.into()).await;
            }
            if self.args.per_session > 0 && in_session >= self.args.per_session {
                if let Some(mut old) = conn.take() {
                    let _ = old.quit().await;
                }
                in_session = 0;
            }
            let mut result = self.send_one(&mut conn, seq).await;
            let mut retried = 0;
            while let Err(error) = &result {
                if retried >= self.args.retries || !is_transient(error) {
                    break;
                }
                retried += 1;
                if let Some(mut old) = conn.take() {
                    let _ = old.quit().await;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
                result = self.send_one(&mut conn, seq).await;
            }
            in_session += 1;
            match result {
                Ok((latency, reply)) => {
                    self.sent.fetch_add(1, Ordering::Relaxed);
                    if let Some(log) = &self.log {
                        let _ = writeln!(log.lock().unwrap(), "{seq} {reply}");
                    }
                    self.tally.lock().unwrap().latencies_us.push(latency);
                }
                Err(error) => {
                    conn = None;
                    self.tally.lock().unwrap().errors.push(error);
                }
            }
            self.progress.inc(1);
        }
        if let Some(mut conn) = conn {
            let _ = conn.quit().await;
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, String> {
        let args = &self.args;
        let target = ClientTarget {
            host: args.host.clone(),
            port: args.port,
            security: match args.tls {
                TlsMode::Starttls => ClientSecurity::Starttls,
                TlsMode::Implicit => ClientSecurity::Implicit,
                TlsMode::None => ClientSecurity::None,
            },
            skip_tls_verify: args.insecure,
            timeout: Duration::from_secs(args.timeout),
            hello: "sluice-send.local".into(),
            // The operator's own test client: no tenant names this host.
            egress: sluice_deliver::Egress::Trusted,
        };
        let mut conn = connect(&target)
            .await
            .map_err(|e| format!("connect: {e}"))?
            .conn;
        if let (Some(user), Some(password)) = (&args.user, &args.password) {
            conn.auth(
                &[Mechanism::Plain, Mechanism::Login],
                &Credentials::new(user.clone(), password.clone()),
            )
            .await
            .map_err(|e| format!("auth: {e}"))?;
        }
        Ok(conn)
    }

    fn message(&self, seq: u64) -> Vec<u8> {
        let args = &self.args;
        let date = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default();
        let mut body = format!("{}\r\n", args.body);
        while body.len() < args.size {
            body.push_str("The quick brown fox jumps over the lazy dog. 0123456789 abcdefghij\r\n");
        }
        format!(
            "From: <{from}>\r\nTo: {to}\r\nSubject: {subject} #{seq}\r\nDate: {date}\r\n\
             Message-ID: <{run}.{seq}@sluice-send.local>\r\nX-Sluice-Send: {run} {seq}\r\n\
             MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}",
            from = args.from,
            to = args
                .to
                .iter()
                .map(|t| format!("<{t}>"))
                .collect::<Vec<_>>()
                .join(", "),
            subject = args.subject,
            run = self.run_id,
        )
        .into_bytes()
    }

    async fn send_one(
        &self,
        conn: &mut Option<AsyncSmtpConnection>,
        seq: u64,
    ) -> Result<(u64, String), String> {
        if conn.is_none() {
            *conn = Some(self.connect().await?);
        }
        let Some(active) = conn.as_mut() else {
            return Err("not connected".into());
        };
        let from = self.args.from.parse().map_err(|e| format!("--from: {e}"))?;
        let to = self
            .args
            .to
            .iter()
            .map(|t| t.parse())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("--to: {e}"))?;
        let envelope = Envelope::new(Some(from), to).map_err(|e| e.to_string())?;
        let message = self.message(seq);
        let begin = Instant::now();
        let response = active
            .send(&envelope, &message)
            .await
            .map_err(|e| e.to_string())?;
        let latency = begin.elapsed().as_micros() as u64;
        let text = response.message().collect::<Vec<_>>().join(" ");
        Ok((latency, text))
    }
}

/// A failure worth another try: a 4xx answer, or no connection.
fn is_transient(error: &str) -> bool {
    error.starts_with("connect:") || error.contains("transient error")
}

#[cfg(test)]
mod retry_tests {
    use super::is_transient;

    #[test]
    fn only_4xx_answers_and_lost_connections_are_tried_again() {
        assert!(is_transient(
            "transient error (451): 4.3.0 Temporary failure storing the message"
        ));
        assert!(is_transient("connect: connection refused"));
        assert!(!is_transient("permanent error (550): 5.7.1 Sender domain"));
        assert!(!is_transient("--from: invalid address"));
    }
}
