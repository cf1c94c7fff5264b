//! A running test Sluice (`sluice serve` in its own directory: start, restart, kill, its
//! CLI) and extra nodes of it with other roles.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;

use crate::{Ports, SluiceBuilder, free_port, wait_until};

impl Sluice {
    /// Creates `user@example.com` / `secret` (domain example.com) with the CLI; returns
    /// the API key it printed.
    pub(crate) fn create_test_account(&self) -> String {
        let created = self.cli(&[
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
        String::from_utf8_lossy(&created.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("api key:"))
            .map(|k| k.trim().to_string())
            .unwrap_or_default()
    }
}

/// A running `sluice serve` in its own directory.
pub struct Sluice {
    pub(crate) data_dir: PathBuf,
    pub(crate) bin: PathBuf,
    pub(crate) database_url: Option<String>,
    pub(crate) roles: Option<String>,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub ports: Ports,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) child: Option<Child>,
    pub(crate) starts: u32,
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
    pub(crate) fn first_start(&mut self) {
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

    /// Sets (or with `None` removes) an environment variable of the next starts.
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        self.env.retain(|(k, _)| k != key);
        if let Some(value) = value {
            self.env.push((key.into(), value.into()));
        }
    }

    /// Waits up to `timeout` for the running `sluice serve` to exit by itself (e.g. at a
    /// test crash point); its status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let status = wait_until(timeout, || child.try_wait().ok().flatten())?;
        self.child = None;
        Some(status)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The node's `data_dir`.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
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

    /// `sluice send` on the plain port as a steady load: `count` messages to `to` at `rate`
    /// per second over `concurrency` sessions (10 s timeout each), every 250 logged to
    /// `accepted_log`; stdout and stderr piped.
    pub fn send_load_command(
        &self,
        to: &str,
        count: u64,
        rate: u64,
        concurrency: u64,
        accepted_log: &std::path::Path,
    ) -> Command {
        let (count, rate, concurrency) =
            (count.to_string(), rate.to_string(), concurrency.to_string());
        let mut command = self.send_plain_command(&[
            "--to",
            to,
            "--count",
            &count,
            "--rate",
            &rate,
            "--concurrency",
            &concurrency,
            "--timeout",
            "10",
            "--accepted-log",
        ]);
        command
            .arg(accepted_log)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
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
