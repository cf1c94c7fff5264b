//! The email services Sluice cannot reach in tests, faked by `py/esp_fake.py`: each
//! endpoint checks requests as its service does and answers as it would.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::{free_port, http_json, py_dir};

pub struct EspFake {
    child: Child,
    pub port: u16,
}

impl EspFake {
    /// Starts the fake with its default credentials (see esp_fake.py) and `args`.
    pub fn start(args: &[&str]) -> EspFake {
        let port = free_port();
        let mut child = Command::new("python3")
            .arg(py_dir().join("esp_fake.py"))
            .args(["--port", &port.to_string()])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 with botocore (pip install -r tests/requirements.txt)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with("READY"),
            "esp fake did not start: {line:?}"
        );
        EspFake { child, port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Queues answers for a service's next requests that pass its checks: `"429:7"`
    /// (status, Retry-After), `"500"`, `"hang"`, `"revoke-tokens"` (graph).
    pub fn script(&self, service: &str, answers: &[&str]) {
        let (status, _) = http_json(
            self.port,
            "POST",
            "/_script",
            None,
            Some(&json!({ "service": service, "answers": answers })),
        );
        assert_eq!(status, 204);
    }

    /// Every request so far: service, status answered, problems found, recipients, ...
    pub fn log(&self) -> Vec<Value> {
        let (status, body) = http_json(self.port, "GET", "/_log", None, None);
        assert_eq!(status, 200);
        body.as_array().cloned().unwrap_or_default()
    }

    /// The requests to one service.
    pub fn requests(&self, service: &str) -> Vec<Value> {
        self.log()
            .into_iter()
            .filter(|e| e["service"] == service)
            .collect()
    }
}

impl Drop for EspFake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
