//! Shared by the end-to-end tests: the real binary, the Python client, the database.

#![allow(dead_code)]

pub mod services;
pub mod spool;

use std::path::Path;

use sluice_store::{AttemptRow, EventRow, MessageRecord, Store};
#[allow(unused_imports)]
pub use sluice_testkit::{Sluice, Upstream, accepted_seqs, send_seq, wait_until};

pub const BIN: &str = env!("CARGO_BIN_EXE_sluice");

/// A message with headers, 8-bit UTF-8 text, a line starting with a dot and CRLF endings.
pub fn sample_message(subject: &str) -> Vec<u8> {
    format!(
        "From: App <app@example.com>\r\nTo: <rcpt@dest.test>\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@example.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         Grüße aus Sluice.\r\n.a line that starts with a dot\r\n..two dots\r\n\r\nlast line\r\n"
    )
    .into_bytes()
}

pub struct ClientResult {
    pub ok: bool,
    pub code: i64,
    pub message: String,
    pub json: serde_json::Value,
}

impl ClientResult {
    /// The id in "Ok: queued as N" / "Ok: delivered as N".
    pub fn message_id(&self) -> i64 {
        self.message
            .rsplit(' ')
            .next()
            .and_then(|id| id.trim().parse().ok())
            .unwrap_or_else(|| panic!("no id in {:?}", self.message))
    }
}

/// Python's smtplib sends `message`; `mode` is starttls, implicit or plain.
pub fn smtplib_send(
    port: u16,
    mode: &str,
    auth: Option<(&str, &str)>,
    from: &str,
    to: &[&str],
    message: &[u8],
) -> ClientResult {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.eml");
    std::fs::write(&file, message).unwrap();
    let mut command = std::process::Command::new("python3");
    command
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../testkit/py/client.py"))
        .args([
            "--port",
            &port.to_string(),
            "--mode",
            mode,
            "--from",
            from,
            "--file",
        ])
        .arg(&file);
    if let Some((user, password)) = auth {
        command.args(["--user", user, "--password", password]);
    }
    for rcpt in to {
        command.args(["--to", rcpt]);
    }
    let output = command.output().expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "client output {stdout:?} {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    ClientResult {
        ok: json["ok"].as_bool().unwrap_or(false),
        code: json["code"].as_i64().unwrap_or(0),
        message: json["message"].as_str().unwrap_or_default().to_string(),
        json,
    }
}

pub const USER: Option<(&str, &str)> = Some(("user@example.com", "secret"));

/// Reads the test instance's database (SQLite in WAL mode allows a second reader).
pub struct Db {
    runtime: tokio::runtime::Runtime,
    store: std::sync::Arc<dyn Store>,
}

impl Db {
    pub fn open(sluice: &Sluice) -> Db {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let url = sluice.database_url();
        // The spool is the server's: opened beside it, it is read-only here.
        let options = sluice_store::OpenOptions {
            spool_dir: Some(sluice.data_dir().join("spool")),
            ..Default::default()
        };
        let store = runtime
            .block_on(sluice_store::open(&url, &options))
            .unwrap();
        Db { runtime, store }
    }

    pub fn message(&self, id: i64) -> MessageRecord {
        self.runtime
            .block_on(self.store.message(id))
            .unwrap()
            .unwrap_or_else(|| panic!("message {id} not stored"))
    }

    /// The whole stored message, from its row or the body store.
    pub fn message_bytes(&self, id: i64) -> Vec<u8> {
        let record = self.message(id);
        let storage = self.store.body_storage();
        self.runtime
            .block_on(sluice_core::body::read_whole(
                storage.as_deref(),
                &record.body,
            ))
            .unwrap()
    }

    pub fn attempts(&self, id: i64) -> Vec<AttemptRow> {
        self.runtime.block_on(self.store.attempts(id)).unwrap()
    }

    pub fn events(&self, id: i64) -> Vec<String> {
        self.runtime
            .block_on(self.store.events(id))
            .unwrap()
            .into_iter()
            .map(|e: EventRow| e.kind)
            .collect()
    }

    /// Waits until message `id` has `status`.
    pub fn wait_status(&self, id: i64, status: &str, secs: u64) -> MessageRecord {
        wait_until(std::time::Duration::from_secs(secs), || {
            let m = self.message(id);
            (m.status.as_str() == status).then_some(m)
        })
        .unwrap_or_else(|| panic!("message {id} never {status}: {:?}", self.message(id)))
    }
}

/// The upstream copy without the Received header Sluice adds (it is first; folded lines
/// start with a tab).
pub fn strip_received(raw: &[u8]) -> &[u8] {
    assert!(
        raw.starts_with(b"Received: from "),
        "no Received header first"
    );
    let mut pos = 0;
    loop {
        let end = raw[pos..].windows(2).position(|w| w == b"\r\n").unwrap() + pos + 2;
        pos = end;
        if raw.get(pos) != Some(&b'\t') {
            return &raw[pos..];
        }
    }
}

/// Makes the system admin `root@sluice.test` with the CLI and logs in over the API:
/// the admin's access token.
pub fn admin_token(sluice: &Sluice) -> String {
    let created = sluice.cli(&[
        "admin",
        "create",
        "--email",
        "root@sluice.test",
        "--password",
        "root-password",
    ]);
    assert!(created.status.success(), "{created:?}");
    let (status, login) = sluice_testkit::http_json(
        sluice.ports.http,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&serde_json::json!({ "email": "root@sluice.test", "password": "root-password" })),
    );
    assert_eq!(status, 200, "{login}");
    login["access_token"].as_str().unwrap().to_string()
}

/// An API call with the test account's key: `/api/v1` + `path`; (status, JSON body).
pub fn api(
    sluice: &Sluice,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    sluice_testkit::http_json(
        sluice.ports.http,
        method,
        &format!("/api/v1{path}"),
        Some(&sluice.api_key),
        body.as_ref(),
    )
}

/// `sluice account create` for `email` (password `other-password`, `domain` verified, and
/// `--sandbox` when asked): the API key it printed.
pub fn create_account(sluice: &Sluice, email: &str, domain: &str, sandbox: bool) -> String {
    let mut args = vec![
        "account",
        "create",
        "--name",
        email,
        "--email",
        email,
        "--password",
        "other-password",
        "--domain",
        domain,
    ];
    if sandbox {
        args.push("--sandbox");
    }
    let created = sluice.cli(&args);
    assert!(created.status.success(), "{created:?}");
    String::from_utf8_lossy(&created.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("api key:"))
        .map(|k| k.trim().to_string())
        .expect("an api key")
}

/// What the browser tests need: the repository root (for `tests/panel/`), with
/// playwright-core installed, and the chromium binary (`CHROMIUM`, else Debian's).
pub fn browser_test_setup() -> (std::path::PathBuf, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    assert!(
        root.join("tests/panel/node_modules/playwright-core")
            .exists(),
        "playwright-core is missing: run `npm ci --prefix tests/panel`"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: apt-get install chromium"
    );
    (root, chromium)
}
