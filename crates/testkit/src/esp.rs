//! The email services Sluice cannot reach in tests, faked by `py/esp_fake.py`: each
//! endpoint checks requests as its service does and answers as it would.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::{free_port, http_json, py_dir};

/// A Python helper server from `py/`, stopped when dropped.
pub struct PyServer {
    child: Child,
    pub port: u16,
}

impl PyServer {
    /// Runs `py/<script> --port <free port> <args>` and waits for its `READY` line.
    pub fn start(script: &str, args: &[&str]) -> PyServer {
        let port = free_port();
        let mut child = Command::new("python3")
            .arg(py_dir().join(script))
            .args(["--port", &port.to_string()])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 with tests/requirements.txt installed");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.starts_with("READY"),
            "{script} did not start: {line:?}"
        );
        PyServer { child, port }
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct EspFake {
    pub server: PyServer,
}

impl EspFake {
    /// Starts the fake with its default credentials (see esp_fake.py) and `args`.
    pub fn start(args: &[&str]) -> EspFake {
        EspFake {
            server: PyServer::start("esp_fake.py", args),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.server.port)
    }

    /// Queues answers for a service's next requests that pass its checks: `"429:7"`
    /// (status, Retry-After), `"500"`, `"hang"`, `"revoke-tokens"` (graph); network faults
    /// on a request the service accepts: `"reset"` (RST before any status line),
    /// `"reset-mid-body"`, `"truncated-json"`, `"non-json"` (its success status, then an
    /// unreadable body).
    pub fn script(&self, service: &str, answers: &[&str]) {
        let (status, _) = http_json(
            self.server.port,
            "POST",
            "/_script",
            None,
            Some(&json!({ "service": service, "answers": answers })),
        );
        assert_eq!(status, 204);
    }

    /// Every request so far: service, status answered, problems found, recipients, ...
    pub fn log(&self) -> Vec<Value> {
        let (status, body) = http_json(self.server.port, "GET", "/_log", None, None);
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

/// Signs feedback webhooks as SendGrid, Mailgun and SNS do (`py/feedback_signer.py`).
pub struct FeedbackSigner {
    pub server: PyServer,
}

impl FeedbackSigner {
    pub fn start() -> FeedbackSigner {
        FeedbackSigner {
            server: PyServer::start("feedback_signer.py", &[]),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.server.port)
    }

    /// The SendGrid verification key (base64 DER).
    pub fn sendgrid_key(&self) -> String {
        let (status, key) = http_json(self.server.port, "GET", "/sendgrid-key", None, None);
        assert_eq!(status, 200);
        key["key"].as_str().unwrap().to_string()
    }

    /// (timestamp, signature) for a SendGrid events body.
    pub fn sign_sendgrid(&self, body: &[u8]) -> (String, String) {
        let (status, signed) =
            crate::http_raw(self.server.port, "POST", "/sign/sendgrid", &[], body);
        assert_eq!(status, 200);
        (
            signed["timestamp"].as_str().unwrap().to_string(),
            signed["signature"].as_str().unwrap().to_string(),
        )
    }

    /// A whole Mailgun webhook payload for `event_data`, signed with `key`.
    pub fn sign_mailgun(&self, key: &str, event_data: &Value) -> Value {
        let (status, signed) = http_json(
            self.server.port,
            "POST",
            &format!("/sign/mailgun?key={key}"),
            None,
            Some(event_data),
        );
        assert_eq!(status, 200);
        signed
    }

    /// An SNS message with SigningCertURL (this server's), SignatureVersion and Signature.
    pub fn sign_sns(&self, message: &Value) -> Value {
        let (status, signed) =
            http_json(self.server.port, "POST", "/sign/sns", None, Some(message));
        assert_eq!(status, 200);
        signed
    }

    /// The SubscribeURL calls received.
    pub fn confirmations(&self) -> Vec<Value> {
        let (status, list) = http_json(self.server.port, "GET", "/confirmations", None, None);
        assert_eq!(status, 200);
        list.as_array().cloned().unwrap_or_default()
    }
}
