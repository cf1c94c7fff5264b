//! Test support: run the real `sluice` binary with a generated config, a real upstream SMTP
//! server (aiosmtpd) that records what it receives, and Python's smtplib as the client.

pub mod esp;
pub mod postgres;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A port nobody listens on right now, and never handed out before by this process (the
/// kernel may give a just-released ephemeral port again, and two listeners of one test
/// instance on one port fail to start).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

pub fn wait_until<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn py_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("py")
}

/// Runs a Python script given as text; its stdout is returned.
pub fn python(script: &str, args: &[String]) -> Output {
    Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs")
}

/// One message as the upstream stored it.
#[derive(Debug, Clone)]
pub struct Received {
    pub raw: Vec<u8>,
    pub envelope: serde_json::Value,
}

impl Received {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    pub fn rcpt_tos(&self) -> Vec<String> {
        self.envelope["rcpt_tos"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// An HTTP/1.1 request with an optional bearer token and JSON body: (status, JSON body).
pub fn http_json(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&serde_json::Value>,
) -> (u16, serde_json::Value) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth));
    }
    http_raw(port, method, path, &headers, body.as_bytes())
}

/// An HTTP/1.1 request with the given headers and raw body: (status, JSON body or Null).
pub fn http_raw(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, serde_json::Value) {
    use std::io::Read;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("HTTP port open");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra}\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let json = response
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or(serde_json::Value::Null);
    (status, json)
}

/// A plain HTTP/1.1 GET on loopback: (status, raw response).
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    use std::io::Read;
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, response)
}

/// The sequence number in the `X-Sluice-Send: <run> <seq>` header `sluice send` adds.
pub fn send_seq(message: &str) -> Option<u64> {
    message
        .lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix("X-Sluice-Send: "))
        .and_then(|v| v.split(' ').nth(1))
        .and_then(|s| s.trim().parse().ok())
}

/// The sequence numbers `sluice send --accepted-log` recorded as acknowledged.
pub fn accepted_seqs(log: &Path) -> std::collections::BTreeSet<u64> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect()
}

/// aiosmtpd on loopback, run by `py/upstream.py`.
pub struct Upstream {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Upstream {
    /// `args` are upstream.py options: `--fail-first 2`, `--reject-rcpt bad`, `--reject-data`.
    pub fn start(args: &[&str]) -> Upstream {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut child = Command::new("python3")
            .arg(py_dir().join("upstream.py"))
            .args(["--port", &port.to_string(), "--out"])
            .arg(dir.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 with aiosmtpd (pip install -r tests/requirements.txt)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with("READY"),
            "upstream did not start: {line:?}"
        );
        Upstream { child, port, dir }
    }

    pub fn messages(&self) -> Vec<Received> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|eml| Received {
                raw: std::fs::read(&eml).unwrap(),
                envelope: serde_json::from_slice(
                    &std::fs::read(eml.with_extension("json")).unwrap(),
                )
                .unwrap(),
            })
            .collect()
    }

    /// How many messages arrived (cheap: a directory listing).
    pub fn count(&self) -> usize {
        std::fs::read_dir(self.dir.path())
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| {
                        let name = e.file_name();
                        let name = name.to_string_lossy();
                        name.ends_with(".eml") && !name.starts_with('.')
                    })
                    .count()
            })
            .unwrap_or(0)
    }

    /// The `sluice send` sequence number of every message received (one per copy).
    pub fn send_seqs(&self) -> Vec<u64> {
        self.messages()
            .iter()
            .filter_map(|m| send_seq(&m.text()))
            .collect()
    }

    /// Waits until at least `n` messages arrived.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        wait_until(timeout, || {
            let messages = self.messages();
            (messages.len() >= n).then_some(messages)
        })
        .unwrap_or_else(|| panic!("upstream got {} of {n} messages", self.messages().len()))
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Ports of a test Sluice.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub submission: u16,
    pub implicit: u16,
    pub plain: u16,
    pub http: u16,
    pub webhook: u16,
    pub panel: u16,
}

/// How to configure a test Sluice.
pub struct SluiceBuilder {
    bin: PathBuf,
    webhook: Vec<String>,
    database_url: Option<String>,
    roles: Option<String>,
    smtp: Vec<String>,
    delivery: Vec<String>,
    provider: String,
    env: Vec<(String, String)>,
    log_format: String,
    sections: Vec<String>,
    panel: Vec<String>,
    data_dir: Option<PathBuf>,
    egress_allow: Vec<String>,
}

impl SluiceBuilder {
    /// `data_dir` (and so the SQLite database) here instead of `<test dir>/data`, e.g. on a
    /// small file system of the test's own.
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_path_buf());
        self
    }

    /// `[egress] allow`: by default loopback (both families), the way `serve --dev` opens
    /// it, since test upstreams, service fakes and hook receivers listen there. An empty
    /// list closes it again, as in production.
    pub fn egress_allow(mut self, ranges: &[&str]) -> Self {
        self.egress_allow = ranges.iter().map(|r| r.to_string()).collect();
        self
    }

    /// Use this database (PostgreSQL) instead of SQLite in the test directory.
    pub fn database(mut self, url: &str) -> Self {
        self.database_url = Some(url.into());
        self
    }

    /// `--roles` for the main node (it must include smtp).
    pub fn roles(mut self, roles: &str) -> Self {
        self.roles = Some(roles.into());
        self
    }

    /// A line under `[smtp]`, e.g. `max_connections = 2`.
    pub fn smtp(mut self, line: &str) -> Self {
        self.smtp.push(line.into());
        self
    }

    /// A line under `[webhook]`, e.g. `secret = "s"`.
    pub fn webhook(mut self, line: &str) -> Self {
        self.webhook.push(line.into());
        self
    }

    /// A line under `[delivery]`, e.g. `mode = "sync"`.
    pub fn delivery(mut self, line: &str) -> Self {
        self.delivery.push(line.into());
        self
    }

    /// Relay to this upstream over plain SMTP.
    pub fn upstream(mut self, port: u16) -> Self {
        self.provider = format!(
            "type = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\ntimeout_secs = 5"
        );
        self
    }

    /// The `[delivery.default_provider]` table body.
    pub fn provider(mut self, toml: &str) -> Self {
        self.provider = toml.into();
        self
    }

    /// A line under `[panel]`, e.g. `tls = true`.
    pub fn panel(mut self, line: &str) -> Self {
        self.panel.push(line.into());
        self
    }

    /// `logging.format`: tests read `text` unless they ask for `json`.
    pub fn log_format(mut self, format: &str) -> Self {
        self.log_format = format.into();
        self
    }

    /// Whole TOML sections appended to the config, e.g. `"[storage]\nencrypt_bodies = true"`.
    pub fn section(mut self, toml: &str) -> Self {
        self.sections.push(toml.into());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Writes the config, creates the account `user@example.com` / `secret` (domain
    /// example.com) with the CLI, and starts `sluice serve`.
    pub fn start(self) -> Sluice {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| dir.path().join("data"));
        let ports = Ports {
            submission: free_port(),
            implicit: free_port(),
            plain: free_port(),
            http: free_port(),
            webhook: free_port(),
            panel: free_port(),
        };
        let config = format!(
            r#"data_dir = "{data}"

[database]
url = "{database}"

[smtp]
hostname = "sluice.test"
trusted_account = "user@example.com"
{smtp}

[[smtp.listeners]]
addr = "127.0.0.1:{submission}"
tls = "starttls"
auth = "required"

[[smtp.listeners]]
addr = "127.0.0.1:{implicit}"
tls = "implicit"
auth = "required"

[[smtp.listeners]]
addr = "127.0.0.1:{plain}"
tls = "none"
auth = "none"

[store]
# Tests change providers and rules and send at once.
account_cache_ms = 0

[delivery]
poll_interval_ms = 100
{delivery}

[delivery.default_provider]
{provider}

[delivery.retry]
initial_delay_secs = 0.3
multiplier = 1.5
max_delay_secs = 2.0
max_attempts = 5
jitter = 0.1

[http]
listen = "127.0.0.1:{http}"

[panel]
listen = "127.0.0.1:{panel}"
{panel_lines}

[webhook]
listen = "127.0.0.1:{webhook}"
{webhook_lines}

[logging]
format = "{log_format}"

[egress]
allow = {egress_allow}

{sections}
"#,
            data = data_dir.display(),
            database = self.database_url.clone().unwrap_or_default(),
            smtp = if self.smtp.iter().any(|l| l.starts_with("trusted_networks")) {
                self.smtp.join("\n")
            } else {
                format!(
                    "trusted_networks = [\"127.0.0.0/8\"]\n{}",
                    self.smtp.join("\n")
                )
            },
            delivery = self.delivery.join("\n"),
            provider = self.provider,
            submission = ports.submission,
            implicit = ports.implicit,
            plain = ports.plain,
            http = ports.http,
            webhook = ports.webhook,
            panel = ports.panel,
            webhook_lines = self.webhook.join("\n"),
            log_format = self.log_format,
            panel_lines = self.panel.join("\n"),
            sections = self.sections.join("\n\n"),
            egress_allow = serde_json::to_string(&self.egress_allow).unwrap(),
        );
        let config_path = dir.path().join("sluice.toml");
        std::fs::write(&config_path, config).unwrap();
        let mut sluice = Sluice {
            data_dir,
            bin: self.bin,
            database_url: self.database_url,
            roles: self.roles,
            dir,
            config_path,
            ports,
            env: self.env,
            child: None,
            starts: 0,
            api_key: String::new(),
        };
        let created = sluice.cli(&[
            "account",
            "create",
            "--name",
            "Test",
            "--email",
            "user@example.com",
            "--password",
            "secret",
            "--domain",
            "example.com",
        ]);
        assert!(created.status.success(), "account create: {created:?}");
        sluice.api_key = String::from_utf8_lossy(&created.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("api key:"))
            .map(|k| k.trim().to_string())
            .unwrap_or_default();
        sluice.first_start();
        sluice
    }
}

/// A running `sluice serve` in its own directory.
pub struct Sluice {
    data_dir: PathBuf,
    bin: PathBuf,
    database_url: Option<String>,
    roles: Option<String>,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub ports: Ports,
    env: Vec<(String, String)>,
    child: Option<Child>,
    starts: u32,
    /// The API key `account create` printed for user@example.com.
    pub api_key: String,
}

impl Sluice {
    pub fn builder(bin: &str) -> SluiceBuilder {
        SluiceBuilder {
            bin: PathBuf::from(bin),
            smtp: Vec::new(),
            delivery: Vec::new(),
            provider: "type = \"log\"".into(),
            database_url: None,
            roles: None,
            webhook: Vec::new(),
            env: Vec::new(),
            log_format: "text".into(),
            sections: Vec::new(),
            panel: Vec::new(),
            data_dir: None,
            egress_allow: vec!["127.0.0.0/8".into(), "::1/128".into()],
        }
    }

    /// Runs a `sluice` subcommand with this instance's config.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut command = Command::new(&self.bin);
        command.args(args);
        if args.first() != Some(&"send") {
            command.arg("--config").arg(&self.config_path);
        }
        command
            .envs(self.env.iter().cloned())
            .output()
            .expect("sluice runs")
    }

    /// This instance's own directory (config, data, logs).
    pub fn dir_path(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self, start: u32) -> PathBuf {
        self.dir.path().join(format!("serve-{start}.log"))
    }

    /// Everything every run of `sluice serve` logged.
    pub fn logs(&self) -> String {
        (1..=self.starts)
            .map(|n| std::fs::read_to_string(self.log_path(n)).unwrap_or_default())
            .collect()
    }

    pub fn spawn(&mut self) {
        assert!(self.try_spawn(), "sluice did not start:\n{}", self.logs());
    }

    /// Starts `sluice serve`; true once every port answers, false if it exited first.
    fn try_spawn(&mut self) -> bool {
        self.starts += 1;
        let log = std::fs::File::create(self.log_path(self.starts)).unwrap();
        let mut command = Command::new(&self.bin);
        command.arg("serve").arg("--config").arg(&self.config_path);
        if let Some(roles) = &self.roles {
            command.args(["--roles", roles]);
        }
        let child = command
            .envs(self.env.iter().cloned())
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("sluice serve starts");
        self.child = Some(child);
        let mut ports = vec![self.ports.submission, self.ports.implicit, self.ports.plain];
        if self.roles.as_deref().is_none_or(|r| r.contains("http")) {
            ports.push(self.ports.http);
            ports.push(self.ports.webhook);
        }
        let up = wait_until(Duration::from_secs(30), || {
            let exited = self
                .child
                .as_mut()
                .is_some_and(|c| c.try_wait().ok().flatten().is_some());
            if exited {
                return Some(false);
            }
            ports
                .iter()
                .all(|port| TcpStream::connect(("127.0.0.1", *port)).is_ok())
                .then_some(true)
        });
        up == Some(true)
    }

    /// Starts the first time, moving to other ports if another process took one of ours
    /// between choosing and binding it.
    fn first_start(&mut self) {
        for attempt in 0..4 {
            if self.try_spawn() {
                return;
            }
            let logs = self.logs();
            assert!(
                attempt < 3 && logs.contains("binding"),
                "sluice did not start:\n{logs}"
            );
            self.kill9();
            let fresh = Ports {
                submission: free_port(),
                implicit: free_port(),
                plain: free_port(),
                http: free_port(),
                webhook: free_port(),
                panel: free_port(),
            };
            let mut config = std::fs::read_to_string(&self.config_path).unwrap();
            for (old, new) in [
                (self.ports.submission, fresh.submission),
                (self.ports.implicit, fresh.implicit),
                (self.ports.plain, fresh.plain),
                (self.ports.http, fresh.http),
                (self.ports.panel, fresh.panel),
                (self.ports.webhook, fresh.webhook),
            ] {
                config =
                    config.replace(&format!("127.0.0.1:{old}\""), &format!("127.0.0.1:{new}\""));
            }
            std::fs::write(&self.config_path, config).unwrap();
            self.ports = fresh;
        }
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for the exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait().unwrap()
    }

    /// Waits for a process already sent SIGTERM to exit.
    pub fn terminate_wait(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        child.wait().unwrap()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("sluice.db")
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.database_path().display()))
    }

    /// Another node on the same config (so the same database) with other `--roles`,
    /// e.g. `worker`. Its log is `node-<name>.log` in the test directory.
    pub fn spawn_node(&self, name: &str, roles: &str) -> Node {
        let log = std::fs::File::create(self.dir.path().join(format!("node-{name}.log"))).unwrap();
        let child = Command::new(&self.bin)
            .arg("serve")
            .arg("--config")
            .arg(&self.config_path)
            .args(["--roles", roles])
            .envs(self.env.iter().cloned())
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("sluice serve starts");
        Node { child: Some(child) }
    }

    /// Runs `sluice send` against this instance's submission port with the test account.
    pub fn send_command(&self, extra: &[&str]) -> Command {
        let port = self.ports.submission.to_string();
        let mut command = self.send_to(&port, "starttls");
        command.args([
            "--insecure",
            "--user",
            "user@example.com",
            "--password",
            "secret",
        ]);
        command.args(extra);
        command
    }

    /// Runs `sluice send` against this instance's trusted plain port (no TLS, no AUTH).
    pub fn send_plain_command(&self, extra: &[&str]) -> Command {
        let port = self.ports.plain.to_string();
        let mut command = self.send_to(&port, "none");
        command.args(extra);
        command
    }

    fn send_to(&self, port: &str, tls: &str) -> Command {
        let mut command = Command::new(&self.bin);
        command.args([
            "send",
            "--port",
            port,
            "--tls",
            tls,
            "--from",
            "app@example.com",
        ]);
        command
    }

    /// Writes `line` into a raw TCP session; helper for protocol tests.
    pub fn raw_session(&self, port: u16, input: &[u8]) -> String {
        use std::io::Read;
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(input).unwrap();
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// A tmpfs of `size` (e.g. `"32m"`) mounted on a directory of its own; unmounted when
/// dropped. `None` when it cannot be mounted (not root, no mount(8)) and `CI` is unset: the
/// caller skips; under `CI` it panics instead, so CI never passes a test that did not run.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(Tmpfs { dir }),
            other => {
                let why = format!("cannot mount a tmpfs: {other:?}");
                assert!(std::env::var_os("CI").is_none(), "{why}");
                eprintln!("skipped: {why}");
                None
            }
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Builds `c/fault_shim.c` with gcc into `out` and returns the library for `LD_PRELOAD`.
/// While the file named by `SLUICE_FAULT_CONTROL` exists, the shim fails with EIO the calls
/// it names (`fsync`: fsync/fdatasync; `write`: write/pwrite/writev; both when it names
/// both) on files under `SLUICE_FAULT_DIR`.
pub fn build_fault_shim(out: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("c/fault_shim.c");
    let lib = out.join("fault_shim.so");
    let built = Command::new("gcc")
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o"])
        .arg(&lib)
        .arg(&source)
        .arg("-ldl")
        .output()
        .expect("gcc runs");
    assert!(built.status.success(), "gcc: {built:?}");
    lib
}

/// An extra `sluice serve` process; killed when dropped.
pub struct Node {
    child: Option<Child>,
}

impl Node {
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// An authoritative DNS server on loopback (UDP and TCP, `py/dns_server.py`), serving
/// records a test publishes with [`DnsServer::publish`]. Point Sluice at it with
/// `[dns] nameservers = ["127.0.0.1:<port>"]`.
pub struct DnsServer {
    child: Child,
    pub port: u16,
    zone: tempfile::NamedTempFile,
    records: std::sync::Mutex<serde_json::Map<String, serde_json::Value>>,
}

impl DnsServer {
    pub fn start() -> DnsServer {
        let zone = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(zone.path(), "{}").unwrap();
        // UDP and TCP on one port: retry when the TCP port is free but the UDP one is not.
        for _ in 0..10 {
            let port = free_port();
            let mut child = Command::new("python3")
                .arg(py_dir().join("dns_server.py"))
                .args(["--port", &port.to_string(), "--zone"])
                .arg(zone.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("python3 with dnspython (pip install -r tests/requirements.txt)");
            let mut line = String::new();
            let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
            if line.starts_with("READY") {
                return DnsServer {
                    child,
                    port,
                    zone,
                    records: Default::default(),
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("the test DNS server did not start");
    }

    /// `127.0.0.1:<port>`, for `[dns] nameservers`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Sets every value of `rtype` ("TXT", "A", "AAAA", "MX", ...) at `name`; an empty
    /// list removes them. The next query sees it.
    pub fn publish(&self, name: &str, rtype: &str, values: &[&str]) {
        let name = format!("{}.", name.trim_end_matches('.').to_ascii_lowercase());
        let mut records = self.records.lock().unwrap();
        let entry = records.entry(name).or_insert_with(|| serde_json::json!({}));
        entry[rtype] = serde_json::json!(values);
        let text = serde_json::to_string(&*records).unwrap();
        // Written beside and renamed, so a query never reads half a file.
        let tmp = self.zone.path().with_extension("new");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.zone.path()).unwrap();
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
