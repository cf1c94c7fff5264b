//! `BulkClient`: many large messages at once through Python's smtplib (`py/bulk_client.py`),
//! each made as it is sent, so neither that process nor the test holds them; what each
//! client heard, with the SHA-256 of what it sent.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use crate::py_dir;

/// What to send: `count` messages of about `size` bytes from `concurrency` sessions.
#[derive(Debug, Clone)]
pub struct BulkOptions {
    pub port: u16,
    /// `starttls`, `implicit` or `plain`.
    pub mode: String,
    pub auth: Option<(String, String)>,
    /// The one recipient of every message.
    pub to: String,
    pub count: usize,
    pub size: usize,
    pub concurrency: usize,
    /// In the Subject, Message-ID and `X-Spool-Seq` of every message, so runs differ.
    pub label: String,
    pub first_seq: u64,
    /// Each message waits (stalls) once this many bytes of it are sent, until
    /// [`BulkClient::release`] or [`BulkClient::finish`]. 0: no stall.
    pub stall_at: usize,
}

impl BulkOptions {
    /// The submission port with STARTTLS and the test account's AUTH.
    pub fn submission(port: u16, count: usize, size: usize, concurrency: usize) -> Self {
        BulkOptions {
            port,
            mode: "starttls".into(),
            auth: Some(("user@example.com".into(), "secret".into())),
            to: "r@dest.test".into(),
            count,
            size,
            concurrency,
            label: "bulk".into(),
            first_seq: 1,
            stall_at: 0,
        }
    }
}

/// One message as its client saw it.
#[derive(Debug, Clone)]
pub struct BulkSent {
    /// `BulkOptions::label`: with `seq`, what names the message (`X-Spool-Seq`).
    pub label: String,
    pub seq: u64,
    /// The reply to the end of data (or the refusal before it); 0: an I/O error.
    pub code: i64,
    pub message: String,
    /// Whether the end of data went out (with `code == 0`: the server may have stored it).
    pub dot_sent: bool,
    /// SHA-256 (hex) and length of the message as meant, before dot-stuffing.
    pub sha256: String,
    pub size: u64,
}

impl BulkSent {
    pub fn acknowledged(&self) -> bool {
        self.code == 250
    }

    /// No answer to a sent end of data: stored or not, the client cannot know.
    pub fn in_doubt(&self) -> bool {
        self.code == 0 && self.dot_sent
    }

    /// The id in "2.0.0 Ok: queued as N".
    pub fn queued_id(&self) -> i64 {
        self.message
            .rsplit(' ')
            .next()
            .and_then(|id| id.trim().parse().ok())
            .unwrap_or_else(|| panic!("no id in {:?}", self.message))
    }
}

/// A running `bulk_client.py`.
pub struct BulkClient {
    child: Child,
    label: String,
    stdin: Option<ChildStdin>,
    events: Receiver<serde_json::Value>,
    sent: Vec<BulkSent>,
    stalled: usize,
    done: bool,
}

impl BulkClient {
    pub fn start(options: &BulkOptions) -> BulkClient {
        let mut command = Command::new("python3");
        command
            .arg(py_dir().join("bulk_client.py"))
            .args(["--port", &options.port.to_string()])
            .args(["--mode", &options.mode])
            .args(["--to", &options.to])
            .args(["--count", &options.count.to_string()])
            .args(["--size", &options.size.to_string()])
            .args(["--concurrency", &options.concurrency.to_string()])
            .args(["--label", &options.label])
            .args(["--first-seq", &options.first_seq.to_string()])
            .args(["--stall-at", &options.stall_at.to_string()]);
        if let Some((user, password)) = &options.auth {
            command.args(["--user", user, "--password", password]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let stdout = child.stdout.take().unwrap();
        let (tx, events) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let event = serde_json::from_str(&line)
                    .unwrap_or_else(|_| panic!("bulk client printed {line:?}"));
                if tx.send(event).is_err() {
                    break;
                }
            }
        });
        BulkClient {
            label: options.label.clone(),
            stdin: child.stdin.take(),
            child,
            events,
            sent: Vec::new(),
            stalled: 0,
            done: false,
        }
    }

    /// Takes in the events printed so far, waiting at most `wait` for the next one.
    fn drain(&mut self, wait: Duration) {
        let mut wait = wait;
        loop {
            let event = match self.events.recv_timeout(wait) {
                Ok(event) => event,
                Err(RecvTimeoutError::Timeout) => return,
                Err(RecvTimeoutError::Disconnected) => {
                    self.done = true;
                    return;
                }
            };
            wait = Duration::ZERO;
            match event["event"].as_str() {
                Some("sent") => self.sent.push(BulkSent {
                    label: self.label.clone(),
                    seq: event["seq"].as_u64().unwrap(),
                    code: event["code"].as_i64().unwrap_or(0),
                    message: event["message"].as_str().unwrap_or_default().to_string(),
                    dot_sent: event["dot_sent"].as_bool().unwrap_or(false),
                    sha256: event["sha256"].as_str().unwrap_or_default().to_string(),
                    size: event["size"].as_u64().unwrap_or(0),
                }),
                Some("stalled") => self.stalled += 1,
                Some("done") => self.done = true,
                _ => panic!("bulk client event {event}"),
            }
        }
    }

    /// Messages answered so far.
    pub fn sent(&mut self) -> &[BulkSent] {
        self.drain(Duration::ZERO);
        &self.sent
    }

    /// Waits until `n` messages are stalled mid-DATA (`BulkOptions::stall_at`); true if they
    /// were within `timeout`.
    pub fn wait_stalled(&mut self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.stalled < n && !self.done && Instant::now() < deadline {
            self.drain(Duration::from_millis(50));
        }
        self.stalled >= n
    }

    /// Lets stalled messages go on.
    pub fn release(&mut self) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = stdin.write_all(b"go\n");
            let _ = stdin.flush();
        }
    }

    /// Waits until every message was answered (or `timeout` passed).
    pub fn wait_done(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.done && Instant::now() < deadline {
            self.drain(Duration::from_millis(100));
        }
        self.done
    }

    /// Starts no more messages, lets stalled ones go on, and waits for the sessions to end:
    /// every message started, with what its client heard.
    pub fn finish(mut self) -> Vec<BulkSent> {
        drop(self.stdin.take());
        let finished = self.wait_done(Duration::from_secs(120));
        assert!(finished, "the bulk client did not finish");
        let _ = self.child.wait();
        std::mem::take(&mut self.sent)
    }
}

impl Drop for BulkClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `X-Spool-Seq: <label> <seq>` a bulk message carries, from its header section.
pub fn spool_seq(message: &[u8]) -> Option<(String, u64)> {
    let head = &message[..message.len().min(64 * 1024)];
    let text = String::from_utf8_lossy(head);
    let value = text
        .split("\r\n")
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix("X-Spool-Seq: "))?;
    let (label, seq) = value.trim().rsplit_once(' ')?;
    Some((label.to_string(), seq.parse().ok()?))
}
