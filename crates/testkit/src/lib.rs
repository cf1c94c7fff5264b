//! Test support: run the real `sluice` binary with a generated config, a real upstream SMTP
//! server (aiosmtpd) that records what it receives, and Python's smtplib as the client.

mod builder;
mod bulk;
mod chaos_proxy;
mod disk;
mod dns;
pub mod esp;
mod http;
mod node;
pub mod postgres;
mod upstream;

pub use builder::{Ports, SluiceBuilder};
pub use bulk::{BulkClient, BulkOptions, BulkSent, spool_seq};
pub use chaos_proxy::{Chaos, ChaosProxy};
pub use disk::{Tmpfs, build_fault_shim};
pub use dns::DnsServer;
pub use http::{http_get, http_json, http_raw};
pub use node::{Node, Sluice};
pub use upstream::{Received, Upstream, accepted_seqs, send_seq};

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
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
