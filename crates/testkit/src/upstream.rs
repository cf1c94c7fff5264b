//! The upstream SMTP server tests relay to (aiosmtpd, `py/upstream.py`) and what it
//! received; the sequence numbers `sluice send` marks messages with.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, py_dir, wait_until};

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

    /// With `--hash`: the SHA-256 (hex) and length of the message without the Received
    /// header the relay put first (`raw` then holds only the header section).
    pub fn sha256(&self) -> Option<(&str, u64)> {
        Some((
            self.envelope["sha256"].as_str()?,
            self.envelope["size"].as_u64()?,
        ))
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
    /// `args` are upstream.py options: `--fail-first 2`, `--reject-rcpt bad`,
    /// `--defer-rcpt busy` (451), `--reject-data`, `--hash` (keep the header section and the
    /// SHA-256 of the message, not the message), `--reset-mid-data 2` (the first 2 DATA:
    /// 354, part of the content, then a TCP RST), `--close-after-mail 2` (the first 2 MAIL:
    /// 250, then the connection closed).
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
