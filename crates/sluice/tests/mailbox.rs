//! The optional IMAP / POP3 checks against a real Dovecot on loopback (Debian's
//! `dovecot-imapd` / `dovecot-pop3d`, configured here: IMAP with STARTTLS and implicit TLS,
//! POP3 with STLS and implicit TLS, one user): each check connects, does TLS, logs in and
//! out; a wrong password and an unverified self-signed certificate fail at their step.

mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use common::BIN;
use serde_json::{Value, json};
use sluice_testkit::{Sluice, free_port, http_json, wait_until};

struct Dovecot {
    child: Child,
    ports: [u16; 4],
    _dir: tempfile::TempDir,
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_dovecot() -> Dovecot {
    assert!(
        Path::new("/usr/sbin/dovecot").exists(),
        "dovecot is missing: apt-get install dovecot-imapd dovecot-pop3d"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Dovecot's unprivileged processes and the mail user (nobody) must reach these.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(d.join("mail")).unwrap();
    std::fs::set_permissions(d.join("mail"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(d.join("key.pem"))
        .arg("-out")
        .arg(d.join("cert.pem"))
        .output()
        .expect("openssl");
    assert!(made.status.success(), "{made:?}");
    std::fs::write(d.join("users"), "tester:{PLAIN}mailbox-pass-1::::::\n").unwrap();
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let dir_text = d.display();
    let config = format!(
        r#"protocols = imap pop3
listen = 127.0.0.1
base_dir = {dir_text}/run
state_dir = {dir_text}/state
log_path = {dir_text}/dovecot.log
ssl = yes
ssl_cert = <{dir_text}/cert.pem
ssl_key = <{dir_text}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:{dir_text}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {dir_text}/users
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home={dir_text}/mail/%u
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = {imap}
  }}
  inet_listener imaps {{
    port = {imaps}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = {pop3s}
    ssl = yes
  }}
}}
"#,
        imap = ports[0],
        imaps = ports[1],
        pop3 = ports[2],
        pop3s = ports[3],
    );
    std::fs::write(d.join("dovecot.conf"), config).unwrap();
    let child = Command::new("/usr/sbin/dovecot")
        .arg("-F")
        .arg("-c")
        .arg(d.join("dovecot.conf"))
        .spawn()
        .expect("dovecot starts");
    let up = wait_until(Duration::from_secs(15), || {
        ports
            .iter()
            .all(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok())
            .then_some(())
    });
    assert!(
        up.is_some(),
        "dovecot did not listen: {}",
        std::fs::read_to_string(d.join("dovecot.log")).unwrap_or_default()
    );
    Dovecot {
        child,
        ports,
        _dir: dir,
    }
}

#[test]
fn imap_and_pop3_checks_log_in_and_out_of_a_real_dovecot() {
    let dovecot = start_dovecot();
    let sluice = Sluice::builder(BIN).start();
    let created = sluice.cli(&[
        "admin",
        "create",
        "--email",
        "ops@mailbox.test",
        "--password",
        "ops-password-1",
    ]);
    assert!(created.status.success(), "{created:?}");
    let (status, tokens) = http_json(
        sluice.ports.http,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&json!({ "email": "ops@mailbox.test", "password": "ops-password-1" })),
    );
    assert_eq!(status, 200, "{tokens}");
    let token = tokens["access_token"].as_str().unwrap().to_string();
    let api = |method: &str, path: &str, body: Option<Value>| {
        http_json(
            sluice.ports.http,
            method,
            &format!("/api/v1{path}"),
            Some(&token),
            body.as_ref(),
        )
    };
    let server =
        |name: &str, protocol: &str, security: &str, port: u16, password: &str, skip: bool| {
            let (status, created) = api(
                "POST",
                "/mailbox-servers",
                Some(
                    json!({ "name": name, "protocol": protocol, "host": "localhost", "port": port,
                         "security": security, "username": "tester", "password": password,
                         "skip_tls_verify": skip }),
                ),
            );
            assert_eq!(status, 201, "{created}");
            assert!(
                !created.to_string().contains(password),
                "the password is never shown"
            );
            created["id"].as_i64().unwrap()
        };
    let [imap, imaps, pop3, pop3s] = dovecot.ports;
    for (name, protocol, security, port) in [
        ("imap-starttls", "imap", "starttls", imap),
        ("imaps", "imap", "tls", imaps),
        ("pop3-stls", "pop3", "starttls", pop3),
        ("pop3s", "pop3", "tls", pop3s),
        ("imap-plain", "imap", "none", imap),
    ] {
        let id = server(name, protocol, security, port, "mailbox-pass-1", true);
        let (status, result) = api("POST", &format!("/mailbox-servers/{id}/test"), None);
        assert_eq!(status, 200, "{result}");
        let steps = result["steps"].to_string();
        assert_eq!(result["ok"], true, "{name}: {steps}");
        assert!(
            steps.contains("login accepted") && steps.contains("logged out"),
            "{name}: {steps}"
        );
        if security != "none" {
            assert!(steps.contains("TLS up"), "{name}: {steps}");
        }
    }
    for (name, protocol, port, security) in [
        ("imap-wrong", "imap", imap, "starttls"),
        ("pop3-wrong", "pop3", pop3s, "tls"),
    ] {
        let id = server(name, protocol, security, port, "not-the-password", true);
        let (_, result) = api("POST", &format!("/mailbox-servers/{id}/test"), None);
        assert_eq!(result["ok"], false, "{name}: {result}");
        assert!(
            result["steps"].to_string().contains("login refused"),
            "{name}: {result}"
        );
    }
    // Dovecot's certificate is self-signed: without skip_tls_verify the TLS step fails.
    let id = server(
        "imaps-verified",
        "imap",
        "tls",
        imaps,
        "mailbox-pass-1",
        false,
    );
    let (_, result) = api("POST", &format!("/mailbox-servers/{id}/test"), None);
    assert_eq!(result["ok"], false, "{result}");
    assert!(
        result["steps"].to_string().contains("TLS handshake failed"),
        "{result}"
    );
    // Listed without passwords; tenants do not see them.
    let (_, list) = api("GET", "/mailbox-servers", None);
    assert_eq!(list.as_array().map(Vec::len), Some(8));
    assert!(!list.to_string().contains("mailbox-pass-1"));
    let (status, _) = common::api(&sluice, "GET", "/mailbox-servers", None);
    assert_eq!(status, 403, "an account's API key is not an admin");
    assert!(
        !sluice.logs().contains("mailbox-pass-1"),
        "the password is never logged"
    );
}
