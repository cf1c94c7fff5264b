//! A DNS server a test publishes records on.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::{free_port, py_dir};

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
