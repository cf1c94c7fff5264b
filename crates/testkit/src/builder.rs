//! `SluiceBuilder`: a test Sluice's config, written to its directory, then started.

use std::path::{Path, PathBuf};

use crate::{Sluice, free_port};

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
    pub(crate) bin: PathBuf,
    pub(crate) webhook: Vec<String>,
    pub(crate) database_url: Option<String>,
    pub(crate) roles: Option<String>,
    pub(crate) smtp: Vec<String>,
    pub(crate) delivery: Vec<String>,
    pub(crate) provider: String,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) log_format: String,
    pub(crate) sections: Vec<String>,
    pub(crate) panel: Vec<String>,
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) egress_allow: Vec<String>,
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
        let ports = Ports::free();
        let config_path = dir.path().join("sluice.toml");
        std::fs::write(&config_path, self.config_text(&data_dir, &ports)).unwrap();
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
        sluice.api_key = sluice.create_test_account();
        sluice.first_start();
        sluice
    }

    /// The config file: every listener on `ports`, the builder's lines in their sections.
    fn config_text(&self, data_dir: &Path, ports: &Ports) -> String {
        format!(
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
        )
    }
}

impl Ports {
    /// A free port for every listener.
    fn free() -> Ports {
        Ports {
            submission: free_port(),
            implicit: free_port(),
            plain: free_port(),
            http: free_port(),
            webhook: free_port(),
            panel: free_port(),
        }
    }
}
