//! Real services the capture sandbox's tests talk to: SpamAssassin's `spamd` and a
//! `python3 -m http.server` for link checks.

use std::io::Read;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sluice_testkit::{free_port, wait_until};

pub struct Spamd(Child);

impl Drop for Spamd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// spamd on a free loopback port, once it accepts connections; `None` (a notice) when it
/// is not installed and `CI` is not set.
pub fn start_spamd() -> Option<(Spamd, u16)> {
    if !std::path::Path::new("/usr/sbin/spamd").exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "spamd is missing: apt-get install spamd (tests/run.sh does)"
        );
        eprintln!("skipped: spamd is not installed (apt-get install spamd)");
        return None;
    }
    let port = free_port();
    let mut command = Command::new("/usr/sbin/spamd");
    command
        .args([
            "-x",
            "--nouser-config",
            "--max-children=1",
            "--syslog=stderr",
        ])
        .arg(format!("--listen=127.0.0.1:{port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // As root it must be told whom to run as.
    if std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    {
        command.arg("-u").arg("debian-spamd");
    }
    let child = Spamd(command.spawn().expect("spamd starts"));
    wait_until(Duration::from_secs(60), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    })
    .expect("spamd listens");
    Some((child, port))
}

/// `python3 -m http.server` over a directory holding `ok.html`; its request log is stderr.
pub struct WebServer {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl WebServer {
    pub fn start() -> WebServer {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ok.html"), "<p>ok</p>").unwrap();
        std::fs::create_dir(dir.path().join("folder")).unwrap();
        std::fs::write(dir.path().join("folder/index.html"), "<p>index</p>").unwrap();
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-u",
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--directory")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        wait_until(Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ())
        })
        .expect("http.server listens");
        WebServer {
            child,
            port,
            _dir: dir,
        }
    }

    /// The request log so far (the server is stopped to read it).
    pub fn stop(mut self) -> String {
        self.child.kill().ok();
        self.child.wait().ok();
        let mut log = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            stderr.read_to_string(&mut log).ok();
        }
        log
    }
}
