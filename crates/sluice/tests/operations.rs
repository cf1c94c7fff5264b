//! Operations: config hot reload, per-account connection limits, metrics, logs.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;

/// A connection that got its `220` greeting, or the first line it got instead.
fn greeted(port: u16) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut line = String::new();
    BufReader::new(stream.try_clone().unwrap())
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    if line.starts_with("220 ") {
        Ok(stream)
    } else {
        Err(line)
    }
}

/// Holds `n` sessions open on `port` (waiting out the start-up probe's session).
fn hold(port: u16, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            wait_until(Duration::from_secs(10), || greeted(port).ok()).expect("a free session slot")
        })
        .collect()
}

fn quit(mut stream: TcpStream) {
    let _ = stream.write_all(b"QUIT\r\n");
    let mut rest = String::new();
    let _ = stream.read_to_string(&mut rest);
}

/// Waits until the log has `needle` `count` times.
fn wait_log(sluice: &Sluice, needle: &str, count: usize) {
    let found = wait_until(Duration::from_secs(15), || {
        (sluice.logs().matches(needle).count() >= count).then_some(())
    });
    assert!(
        found.is_some(),
        "no {needle:?} in the log:\n{}",
        sluice.logs()
    );
}

fn rewrite_config(sluice: &Sluice, edit: impl Fn(String) -> String) {
    let config = std::fs::read_to_string(&sluice.config_path).unwrap();
    std::fs::write(&sluice.config_path, edit(config)).unwrap();
}

#[test]
fn config_file_changes_apply_without_a_restart_and_a_broken_file_changes_nothing() {
    let sluice = Sluice::builder(BIN).start();
    let port = sluice.ports.submission;
    // Before: many sessions are fine, and each is logged at info.
    let before = hold(port, 3);
    before.into_iter().for_each(quit);
    wait_log(&sluice, "session started", 3);

    // Lower the limit, raise the log level, and change a key that needs a restart.
    rewrite_config(&sluice, |config| {
        config
            .replacen("[smtp]\n", "[smtp]\nmax_connections = 2\n", 1)
            .replacen(
                "format = \"text\"",
                "format = \"text\"\nlevel = \"warn\"",
                1,
            )
            .replacen("[database]\n", "[database]\nmax_connections = 3\n", 1)
    });
    wait_log(&sluice, "config reloaded", 1);
    wait_log(&sluice, "take effect at the next restart", 1);
    // The log filter follows the reloaded config on its own task: its line may come after.
    wait_log(&sluice, "log level changed", 1);
    let logs = sluice.logs();
    assert!(logs.contains("database.max_connections"), "{logs}");
    assert!(logs.contains("smtp.max_connections"), "{logs}");

    let started_before = sluice.logs().matches("session started").count();
    let held = hold(port, 2);
    let third = greeted(port).expect_err("a third session over the new limit");
    assert!(third.starts_with("421 4.7.0"), "{third}");
    // At `warn`, sessions are no longer logged at info.
    assert_eq!(
        sluice.logs().matches("session started").count(),
        started_before,
        "info lines after the level went to warn"
    );

    // A broken file is refused; the running config (limit 2) stays in force.
    rewrite_config(&sluice, |config| config.replacen("[smtp]", "[smtp", 1));
    wait_log(&sluice, "config reload refused", 1);
    let third = greeted(port).expect_err("still limited to two sessions");
    assert!(third.starts_with("421 4.7.0"), "{third}");
    // An invalid value (it parses, but validation refuses it) is refused the same way.
    rewrite_config(&sluice, |config| {
        config.replacen("[smtp", "[smtp]", 1).replacen(
            "max_connections = 2\n",
            "max_connections = 0\n",
            1,
        )
    });
    wait_log(&sluice, "config reload refused", 2);
    let third = greeted(port).expect_err("still limited to two sessions");
    assert!(third.starts_with("421 4.7.0"), "{third}");
    // The node still works: free a slot and a client gets in and sends.
    held.into_iter().for_each(quit);
    let sent = wait_until(Duration::from_secs(10), || {
        let result = smtplib_send(
            port,
            "starttls",
            Some(("user@example.com", "secret")),
            "app@example.com",
            &["r@dest.test"],
            &sample_message("after-reload"),
        );
        result.ok.then_some(result)
    });
    assert!(sent.is_some(), "{}", sluice.logs());

    // The limit goes back up and the level back to info.
    rewrite_config(&sluice, |config| {
        config
            .replacen("max_connections = 0\n", "max_connections = 50\n", 1)
            .replacen("level = \"warn\"", "level = \"info\"", 1)
    });
    wait_log(&sluice, "log level changed", 2);
    let many = hold(port, 4);
    many.into_iter().for_each(quit);
    // SIGHUP re-reads the file (and the certificate) too.
    let reloads = sluice.logs().matches("SIGHUP").count();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &sluice.pid().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let signalled = wait_until(Duration::from_secs(10), || {
        (sluice.logs().matches("SIGHUP").count() > reloads).then_some(())
    });
    assert!(signalled.is_some(), "{}", sluice.logs());
}

#[test]
fn an_account_may_hold_only_so_many_sessions() {
    let sluice = Sluice::builder(BIN)
        .smtp("max_connections_per_account = 1")
        .start();
    // The plain port's clients send as the trusted account, user@example.com.
    let held = wait_until(Duration::from_secs(10), || greeted(sluice.ports.plain).ok())
        .expect("a session for the account");
    let refused = greeted(sluice.ports.plain).expect_err("the account's second session");
    assert!(refused.starts_with("421 4.7.0"), "{refused}");
    // AUTH as the same account on the submission port is refused too, after the right
    // password, with 421 and the connection closed.
    let script = r#"
import base64, smtplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
c = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
c.ehlo("client.test"); c.starttls(context=ctx); c.ehlo("client.test")
code, text = c.docmd("AUTH PLAIN " + base64.b64encode(b"\0user@example.com\0secret").decode())
print(code, text.decode())
"#;
    let out = sluice_testkit::python(script, &[sluice.ports.submission.to_string()]);
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.starts_with("421 4.7.0 Too many connections for this account"),
        "{out}"
    );
    // When the first session ends, the account may connect again.
    quit(held);
    let sent = wait_until(Duration::from_secs(10), || {
        let result = smtplib_send(
            sluice.ports.submission,
            "starttls",
            Some(("user@example.com", "secret")),
            "app@example.com",
            &["r@dest.test"],
            &sample_message("free"),
        );
        result.ok.then_some(())
    });
    assert!(sent.is_some(), "{}", sluice.logs());
}

#[test]
fn config_check_masks_secrets() {
    let sluice = Sluice::builder(BIN)
        .section("[secrets]\nmaster_key = \"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"\nprevious_master_keys = [\"ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\"]")
        .section("[api]\njwt_secret = \"jwt-secret-value\"")
        .start();
    let out = sluice.cli(&["config", "check"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("max_connections_per_account = 200"), "{text}");
    assert!(!text.contains("00112233445566778899"), "{text}");
    assert!(!text.contains("jwt-secret-value"), "{text}");
    assert!(text.contains("master_key = \"********\""), "{text}");
    // Keys that only look like secrets keep their values: durations are not tokens.
    assert!(!text.contains("ffeeddccbbaa9988"), "{text}");
    assert!(text.contains("access_token_ttl_secs = 900"), "{text}");
    assert!(text.contains("refresh_token_ttl_secs = 604800"), "{text}");
    // A broken file: a clear error and a failing exit code.
    let broken = sluice.dir_path().join("broken.toml");
    std::fs::write(&broken, "[smtp]\nmax_connections = \"many\"\n").unwrap();
    let out = std::process::Command::new(BIN)
        .args(["config", "check", "--config"])
        .arg(&broken)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(error.contains("max_connections"), "{error}");
}

/// Parses `/metrics` with Prometheus's own Python parser: one line per sample,
/// `name{label="value",...} value`, labels sorted.
fn scrape(sluice: &Sluice) -> Vec<String> {
    let (status, text) = sluice_testkit::http_get(sluice.ports.http, "/metrics");
    assert_eq!(status, 200, "{text}");
    let text = text
        .split_once("\r\n\r\n")
        .map_or(text.as_str(), |(_, body)| body);
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join('%s="%s"' % kv for kv in sorted(s.labels.items()))
        print("%s{%s} %r" % (s.name, labels, s.value))
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "not Prometheus text: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The value of the sample `name{labels}` (labels as printed by `scrape`), or 0.
fn sample(samples: &[String], name_and_labels: &str) -> f64 {
    samples
        .iter()
        .find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (key == name_and_labels).then(|| value.parse().unwrap())
        })
        .unwrap_or(0.0)
}

/// The sum over every sample of `name` whose labels include all of `having`.
fn total(samples: &[String], name: &str, having: &[&str]) -> f64 {
    samples
        .iter()
        .filter_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            let (sample_name, labels) = key.split_once('{')?;
            (sample_name == name && having.iter().all(|label| labels.contains(label)))
                .then(|| value.parse::<f64>().unwrap())
        })
        .sum()
}

#[test]
fn metrics_move_with_mail_and_parse_as_prometheus_text() {
    let sluice = Sluice::builder(BIN).start();
    let before = scrape(&sluice);
    for n in 0..2 {
        let sent = smtplib_send(
            sluice.ports.submission,
            "starttls",
            Some(("user@example.com", "secret")),
            "app@example.com",
            &["metrics-rcpt@dest.test"],
            &sample_message(&format!("metrics-{n}")),
        );
        assert!(sent.ok, "{:?}", sent.json);
    }
    let (status, body) = api(
        &sluice,
        "POST",
        "/send",
        Some(serde_json::json!({
            "from": "app@example.com", "to": ["metrics-rcpt@dest.test"],
            "subject": "metrics", "text": "counted",
        })),
    );
    assert_eq!(status, 202, "{body}");
    let (status, _) = api(&sluice, "GET", "/messages/987654", None);
    assert_eq!(status, 404);
    let db = Db::open(&sluice);
    for id in 1..=3 {
        db.wait_status(id, "delivered", 20);
    }

    let after = scrape(&sluice);
    let moved =
        |name: &str, having: &[&str]| total(&after, name, having) - total(&before, name, having);
    assert_eq!(
        moved(
            "sluice_messages_accepted_total",
            &["source=\"smtp\"", "account=\"1\""]
        ),
        2.0
    );
    assert_eq!(
        moved("sluice_messages_accepted_total", &["source=\"api\""]),
        1.0
    );
    assert_eq!(
        moved(
            "sluice_messages_total",
            &["status=\"delivered\"", "account=\"1\""]
        ),
        3.0
    );
    assert!(moved("sluice_smtp_connections_total", &[]) >= 2.0);
    assert_eq!(
        moved("sluice_smtp_auth_total", &["outcome=\"success\""]),
        2.0
    );
    assert_eq!(moved("sluice_accept_latency_seconds_count", &[]), 3.0);
    // An idle worker keeps up: all three went straight to it, none waited to be claimed.
    assert_eq!(
        (
            moved("sluice_accept_handoff_total", &["to=\"worker\""]),
            moved("sluice_accept_handoff_total", &["to=\"queue\""])
        ),
        (3.0, 0.0)
    );
    assert_eq!(moved("sluice_delivery_latency_seconds_count", &[]), 3.0);
    // Histograms, with buckets, not summaries.
    assert!(
        total(
            &after,
            "sluice_accept_latency_seconds_bucket",
            &["le=\"+Inf\""]
        ) >= 3.0
    );
    assert!(total(&after, "sluice_group_commit_batch_size_count", &[]) >= 1.0);
    assert_eq!(
        moved(
            "sluice_http_requests_total",
            &["route=\"/api/v1/send\"", "status=\"202\""]
        ),
        1.0
    );
    // The route is the pattern, not the path: ids do not become series.
    assert_eq!(
        moved(
            "sluice_http_requests_total",
            &["route=\"/api/v1/messages/{id}\"", "status=\"404\""]
        ),
        1.0
    );
    assert!(sample(&after, "sluice_queue_messages{status=\"delivered\"}") >= 3.0);
    assert_eq!(
        sample(&after, "sluice_queue_messages{status=\"queued\"}"),
        0.0
    );
    assert!(
        after
            .iter()
            .any(|l| l.starts_with("sluice_queue_oldest_age_seconds{} "))
    );
    assert!(sample(&after, "sluice_db_connections_open{pool=\"write\"}") >= 1.0);
    assert!(
        after
            .iter()
            .any(|l| l.starts_with("sluice_smtp_connections_open{} "))
    );
    // Recipients never become labels.
    assert!(!after.iter().any(|l| l.contains("dest.test")), "{after:?}");
}

#[test]
fn logs_of_a_full_send_hold_no_body_password_key_or_token() {
    let upstream = Upstream::start(&[]);
    let sluice = Sluice::builder(BIN)
        .upstream(upstream.port)
        .log_format("json")
        .start();
    let token = admin_token(&sluice);
    let body_marker = "Body-text-that-must-never-be-logged-4711";
    send_marked(&sluice, body_marker);
    let (status, reply) = sluice_testkit::http_json(
        sluice.ports.http,
        "POST",
        "/api/v1/send",
        Some(&token),
        Some(&serde_json::json!({
            "account_id": 1, "from": "app@example.com", "to": ["r@dest.test"],
            "subject": "logs", "text": body_marker,
        })),
    );
    assert!(status == 202 || status == 422, "{reply}");
    let (status, reply) = api(
        &sluice,
        "POST",
        "/send",
        Some(serde_json::json!({
            "from": "app@example.com", "to": ["r@dest.test"],
            "subject": "logs", "text": body_marker, "html": format!("<p>{body_marker}</p>"),
        })),
    );
    assert_eq!(status, 202, "{reply}");
    upstream.wait_for(2, Duration::from_secs(20));
    // A failed login and a failed AUTH, whose passwords must not show either.
    let (status, _) = sluice_testkit::http_json(
        sluice.ports.http,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&serde_json::json!({ "email": "root@sluice.test", "password": "Wrong-Pass-9931" })),
    );
    assert_eq!(status, 401);
    let failed = smtplib_send(
        sluice.ports.submission,
        "starttls",
        Some(("user@example.com", "Wrong-Smtp-Pass-5521")),
        "app@example.com",
        &["r@dest.test"],
        b"Subject: x\r\n\r\nx\r\n",
    );
    assert!(!failed.ok);
    // Give the last lines a moment to be written.
    wait_log(&sluice, "auth failed", 1);

    let logs = sluice.logs();
    for secret in [
        body_marker,
        "secret",
        "root-password",
        "Wrong-Pass-9931",
        "Wrong-Smtp-Pass-5521",
        sluice.api_key.as_str(),
        &sluice.api_key[..12],
        token.as_str(),
        &token[..24],
    ] {
        assert!(!logs.contains(secret), "{secret:?} is in the log:\n{logs}");
    }
    // JSON lines; SMTP session lines carry the session id, HTTP lines the request id,
    // delivery lines the message id.
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let with = |message: &str| -> Vec<&serde_json::Value> {
        lines.iter().filter(|l| l["message"] == message).collect()
    };
    let started = with("session started");
    assert!(!started.is_empty());
    for line in &started {
        assert!(line["span"]["session"].is_string(), "{line}");
        assert!(line["client_ip"] == "127.0.0.1", "{line}");
        assert!(line["timestamp"].is_string(), "{line}");
    }
    let ended = with("session ended");
    assert!(
        ended.iter().any(|l| l["auth"] == "authenticated"),
        "{ended:?}"
    );
    let requests = with("request");
    assert!(requests.len() >= 3, "{requests:?}");
    for line in &requests {
        assert!(line["span"]["request_id"].is_string(), "{line}");
    }
    let attempts = with("attempt finished");
    assert!(attempts.len() >= 2, "{attempts:?}");
    for line in &attempts {
        assert!(
            line["span"]["message_id"].is_number() || line["span"]["message_id"].is_string(),
            "{line}"
        );
    }
}

/// The database's bytes on disk: the main file and its write-ahead log.
fn database_bytes(sluice: &Sluice) -> Vec<u8> {
    let path = sluice.database_path();
    let mut bytes = std::fs::read(&path).unwrap();
    let wal = format!("{}-wal", path.display());
    if let Ok(more) = std::fs::read(wal) {
        bytes.extend(more);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// `GET /api/v1/messages/{id}/raw` with the account's key: (status, bytes).
fn raw_message(sluice: &Sluice, id: i64) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", sluice.ports.http)).unwrap();
    write!(
        stream,
        "GET /api/v1/messages/{id}/raw HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        sluice.api_key
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let status = String::from_utf8_lossy(&response[..12.min(response.len())])
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, response)
}

fn send_marked(sluice: &Sluice, marker: &str) -> i64 {
    let message = format!(
        "From: <app@example.com>\r\nTo: <r@dest.test>\r\nSubject: {marker}\r\n\r\n{marker} body\r\n"
    );
    let sent = smtplib_send(
        sluice.ports.submission,
        "starttls",
        Some(("user@example.com", "secret")),
        "app@example.com",
        &["r@dest.test"],
        message.as_bytes(),
    );
    assert!(sent.ok, "{:?}", sent.json);
    sent.message_id()
}

#[test]
fn encrypted_bodies_are_not_in_the_database_file_and_survive_a_key_rotation() {
    let upstream = Upstream::start(&[]);
    let mut sluice = Sluice::builder(BIN).upstream(upstream.port).start();
    // Control: without encryption the body is in the file, so the grep below can fail.
    let clear = send_marked(&sluice, "Clear-Marker-1618");
    upstream.wait_for(1, Duration::from_secs(20));
    sluice.terminate();
    assert!(contains(&database_bytes(&sluice), "Clear-Marker-1618"));

    rewrite_config(&sluice, |config| {
        config + "\n[storage]\nencrypt_bodies = true\n"
    });
    sluice.spawn();
    let sealed = send_marked(&sluice, "Sealed-Marker-2718");
    let received = upstream.wait_for(2, Duration::from_secs(20));
    assert!(
        received
            .iter()
            .any(|m| m.text().contains("Sealed-Marker-2718 body"))
    );
    let (status, raw) = raw_message(&sluice, sealed);
    assert_eq!(status, 200);
    assert!(
        contains(&raw, "Sealed-Marker-2718 body"),
        "the API reads it opened"
    );
    sluice.terminate();
    let bytes = database_bytes(&sluice);
    assert!(
        !contains(&bytes, "Sealed-Marker-2718"),
        "the sealed body is in the file"
    );

    // Rotate: a new master key, the generated one as previous; `keys rotate` beside the
    // running server seals both bodies again (the clear one too, encryption being on).
    let old_key = std::fs::read_to_string(sluice.dir_path().join("data/master.key")).unwrap();
    let new_key = "22".repeat(32);
    rewrite_config(&sluice, |config| {
        format!(
            "{config}\n[secrets]\nmaster_key = \"{new_key}\"\nprevious_master_keys = [\"{}\"]\n",
            old_key.trim()
        )
    });
    sluice.spawn();
    let out = sluice.cli(&["keys", "rotate"]);
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("2 sealed again"), "{printed}");
    sluice.terminate();
    // Without the old key everything still opens.
    rewrite_config(&sluice, |config| {
        config.replacen(
            &format!("previous_master_keys = [\"{}\"]", old_key.trim()),
            "previous_master_keys = []",
            1,
        )
    });
    sluice.spawn();
    for (id, marker) in [(clear, "Clear-Marker-1618"), (sealed, "Sealed-Marker-2718")] {
        let (status, raw) = raw_message(&sluice, id);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&raw));
        assert!(contains(&raw, &format!("{marker} body")));
    }
}

#[test]
fn the_panel_serves_https_with_a_secure_cookie_when_asked() {
    let sluice = Sluice::builder(BIN).panel("tls = true").start();
    let script = r#"
import http.client, ssl, sys, socket
port = int(sys.argv[1])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
c.request("GET", "/login")
r = c.getresponse(); body = r.read().decode()
print("status", r.status)
print("tls", c.sock.version())
print("cookie", r.getheader("Set-Cookie"))
print("form", 'name="password"' in body)
# Plain HTTP to the same port gets no HTTP answer.
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(b"GET /login HTTP/1.1\r\nHost: x\r\n\r\n")
try:
    answer = s.recv(100)
except Exception:
    answer = b""
print("plain", answer.startswith(b"HTTP/1.1 200"))
"#;
    let out = wait_until(Duration::from_secs(10), || {
        let out = sluice_testkit::python(script, &[sluice.ports.panel.to_string()]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("status 200").then_some(text)
    })
    .unwrap_or_else(|| panic!("no HTTPS answer:\n{}", sluice.logs()));
    assert!(out.contains("tls TLSv1."), "{out}");
    assert!(out.contains("form True"), "{out}");
    let cookie = out.lines().find(|l| l.starts_with("cookie")).unwrap();
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    assert!(out.contains("plain False"), "{out}");
}

/// Commands that change what a server uses say which database they open, and do not make
/// a new one where no server reads (`admin create` on the built-in defaults, without the
/// server's `--config` or `--dev`).
#[test]
fn admin_create_names_its_database_and_refuses_the_default_when_missing() {
    let dir = tempfile::tempdir().unwrap();
    let admin_create = |extra: &[&str]| {
        std::process::Command::new(BIN)
            .current_dir(dir.path())
            .env_remove("SLUICE_CONFIG")
            .args(["admin", "create"])
            .args(extra)
            .args([
                "--email",
                "root@example.com",
                "--password",
                "long-enough-pass",
            ])
            .output()
            .unwrap()
    };
    if !std::path::Path::new("/var/lib/sluice/sluice.db").exists() {
        let out = admin_create(&[]);
        assert!(!out.status.success(), "{out:?}");
        let error = String::from_utf8_lossy(&out.stderr);
        assert!(
            error.contains("no database at /var/lib/sluice/sluice.db"),
            "{error}"
        );
        assert!(!std::path::Path::new("/var/lib/sluice/sluice.db").exists());
    }
    // With --dev it writes where `serve --dev` reads (./data) and says so.
    let out = admin_create(&["--dev"]);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("database: sqlite://./data/sluice.db"),
        "{said}"
    );
    assert!(dir.path().join("data/sluice.db").exists());
}

/// `serve --dev` says at start where the panel is, how to log in and which API key works:
/// a fresh key at each start (keys are stored hashed), the previous start's revoked.
#[test]
fn serve_dev_prints_the_panel_login_and_a_working_api_key() {
    let dir = tempfile::tempdir().unwrap();
    let port = sluice_testkit::free_port;
    let (http, panel, pop3, pop3s) = (port(), port(), port(), port());
    // `--dev` with a file that moves its listeners off the fixed dev ports.
    let config = dir.path().join("dev.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{data}\"\n\
             [[smtp.listeners]]\naddr = \"127.0.0.1:{smtp}\"\ntls = \"none\"\nauth = \"none\"\n\
             [http]\nlisten = \"127.0.0.1:{http}\"\n\
             [panel]\nlisten = \"127.0.0.1:{panel}\"\n\
             [webhook]\nlisten = \"127.0.0.1:{webhook}\"\n\
             [pop3]\nlisten = \"127.0.0.1:{pop3}\"\ntls_listen = \"127.0.0.1:{pop3s}\"\n",
            data = dir.path().join("data").display(),
            smtp = port(),
            webhook = port(),
        ),
    )
    .unwrap();
    let start = || {
        let mut child = std::process::Command::new(BIN)
            .args(["serve", "--dev", "--config"])
            .arg(&config)
            .env_remove("SLUICE_CONFIG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut banner = String::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            banner.push_str(&line);
            banner.push('\n');
            if line.contains("export API_KEY=") {
                break;
            }
        }
        // Keep reading: a closed stdout would fail the server's next write.
        std::thread::spawn(move || lines.for_each(drop));
        (child, banner)
    };
    let key_of = |banner: &str| {
        banner
            .split("export API_KEY=")
            .nth(1)
            .map(|k| k.trim().to_string())
            .unwrap_or_else(|| panic!("no API key in {banner:?}"))
    };
    let messages = |key: &str| {
        let ready = sluice_testkit::wait_until(std::time::Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", http)).ok()?;
            let (status, _) =
                sluice_testkit::http_json(http, "GET", "/api/v1/messages?limit=1", Some(key), None);
            (status != 0 && status != 503).then_some(status)
        });
        ready.unwrap_or_else(|| {
            let log = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
            panic!("the API does not answer; the server said:\n{log}")
        })
    };

    let (mut first, banner) = start();
    assert!(
        banner.contains(&format!("http://127.0.0.1:{panel}"))
            && banner.contains("admin@example.com / dev-admin")
            && banner.contains(&format!("127.0.0.1:{pop3} (STLS), 127.0.0.1:{pop3s} (TLS)")),
        "{banner}"
    );
    let first_key = key_of(&banner);
    assert!(first_key.starts_with("sk_"), "{banner}");
    assert_eq!(messages(&first_key), 200, "the printed key works");
    first.kill().unwrap();
    first.wait().unwrap();

    let (mut second, banner) = start();
    let second_key = key_of(&banner);
    assert_ne!(second_key, first_key, "a fresh key at each start");
    assert_eq!(messages(&second_key), 200);
    assert_eq!(
        messages(&first_key),
        401,
        "the previous start's key is revoked"
    );
    second.kill().unwrap();
    second.wait().unwrap();
}
