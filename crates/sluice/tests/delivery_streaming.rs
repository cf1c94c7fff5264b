//! Large stored messages go to an SMTP upstream as they are read from the spool (issue N):
//! byte-exact through a real upstream (aiosmtpd), dot-stuffed on the fly, and a stored body
//! that can no longer be read to its end (its spool segment cut short under it) is never
//! sent truncated: the connection is cut before the final dot, the upstream has nothing,
//! and the message waits as a transient failure. (A captured message's release is a copy
//! with its own body, so the cut-short one waits deferred for its retry instead.)

mod common;

use std::time::Duration;

use common::spool::sha256_hex;
use common::{BIN, Db, api};
use serde_json::json;
use sluice_testkit::{Sluice, Upstream, wait_until};

/// A message of about `size` bytes whose body has lines starting with a dot (stuffed on
/// the wire, unstuffed by the upstream) and a dot alone on a line.
fn large_text(size: usize, marker: &str) -> String {
    let mut text = format!("{marker}\n.a line that starts with a dot\n.\n");
    let mut n = 0;
    while text.len() < size {
        text.push_str(&format!(
            "line {n:08} of the large message, padded to a realistic width for mail\n"
        ));
        if n % 997 == 0 {
            text.push_str("..two dots\n");
        }
        n += 1;
    }
    text
}

/// Sends a text message with `key` (captured when it is a sandboxed key); its id.
fn send_with(sluice: &Sluice, key: &str, text: &str, subject: &str) -> i64 {
    let (status, sent) = sluice_testkit::http_json(
        sluice.ports.http,
        "POST",
        "/api/v1/send",
        Some(key),
        Some(&json!({ "from": "app@example.com", "to": ["ann@dest.test"],
                     "subject": subject, "text": text })),
    );
    assert_eq!(status, 202, "{sent}");
    sent["id"].as_i64().unwrap()
}

fn smtp_provider(sluice: &Sluice, port: u16) -> i64 {
    let (status, body) = api(
        sluice,
        "POST",
        "/providers",
        Some(
            json!({ "name": "upstream", "provider_type": "smtp", "config": {
            "host": "127.0.0.1", "port": port, "security": "none", "timeout_secs": 30 } }),
        ),
    );
    assert_eq!(status, 201, "{body}");
    body["id"].as_i64().unwrap()
}

/// Releases a captured message to `provider`: the copy's id.
fn release(sluice: &Sluice, id: i64, provider: i64) -> i64 {
    let (status, body) = api(
        sluice,
        "POST",
        &format!("/messages/{id}/release"),
        Some(json!({ "provider_id": provider })),
    );
    assert_eq!(status, 202, "{body}");
    body["id"].as_i64().unwrap()
}

/// Points the provider at `port`.
fn move_provider(sluice: &Sluice, provider: i64, port: u16) {
    let (status, body) = api(
        sluice,
        "PUT",
        &format!("/providers/{provider}"),
        Some(
            json!({ "config": { "host": "127.0.0.1", "port": port, "security": "none",
                                  "timeout_secs": 30 } }),
        ),
    );
    assert_eq!(status, 200, "{body}");
}

/// The spool's segment files, newest last.
fn segments(sluice: &Sluice) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(sluice.data_dir().join("spool"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("seg-"))
        .collect();
    files.sort();
    files
}

#[test]
fn a_large_stored_message_is_streamed_byte_exact_and_never_sent_truncated() {
    let upstream = Upstream::start(&["--hash"]);
    let sluice = Sluice::builder(BIN).start();
    let db = Db::open(&sluice);
    let provider = smtp_provider(&sluice, upstream.port);
    // A sandboxed key: its mail is captured (its body kept in the spool) until released.
    let (status, sandboxed) = api(
        &sluice,
        "POST",
        "/api-keys",
        Some(json!({ "sandbox": true })),
    );
    assert_eq!(status, 201, "{sandboxed}");
    let sandboxed = sandboxed["api_key"].as_str().unwrap().to_string();

    // Whole: 3 MB captured, then a copy released to the upstream arrives as stored.
    let whole = send_with(
        &sluice,
        &sandboxed,
        &large_text(3_000_000, "first"),
        "streamed",
    );
    db.wait_status(whole, "captured", 20);
    let stored = db.message_bytes(whole);
    assert!(stored.len() > 3_000_000);
    let copy = release(&sluice, whole, provider);
    db.wait_status(copy, "delivered", 60);
    assert_eq!(
        db.message(whole).status.as_str(),
        "captured",
        "the original stays"
    );
    assert_eq!(
        db.message_bytes(copy),
        stored,
        "the copy is the captured message"
    );
    let received = upstream.wait_for(1, Duration::from_secs(10));
    let (sha256, len) = received[0].sha256().expect("--hash");
    // (An API message has no Received header; the upstream hashes what it got.)
    assert_eq!(
        (sha256, len),
        (sha256_hex(&stored).as_str(), stored.len() as u64),
        "the upstream got the stored message, byte for byte"
    );

    // Cut short: the spool segment that holds the second message loses its tail after
    // the message was committed. Its first chunk (the header section) still reads.
    // It first waits deferred: its provider points where nothing listens.
    move_provider(&sluice, provider, sluice_testkit::free_port());
    let cut = send_with(
        &sluice,
        &sluice.api_key,
        &large_text(3_000_000, "second"),
        "cut short",
    );
    db.wait_status(cut, "deferred", 30);
    let segment = segments(&sluice).pop().expect("a spool segment");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    let end = file.metadata().unwrap().len();
    // The second message is the last thing written: keep all but its last 2 MB.
    file.set_len(end - 2_000_000).unwrap();
    drop(file);
    move_provider(&sluice, provider, upstream.port);
    let (status, retried) = api(&sluice, "POST", &format!("/messages/{cut}/retry"), None);
    assert_eq!(status, 202, "{retried}");
    let attempt = wait_until(Duration::from_secs(30), || {
        db.attempts(cut)
            .into_iter()
            .find(|a| a.provider == "smtp" && a.response.contains("could not be read"))
    })
    .expect("an attempt is recorded");
    assert_eq!(attempt.verdict.as_str(), "transient", "{attempt:?}");
    assert!(
        attempt.response.contains("could not be read"),
        "the attempt says why: {attempt:?}"
    );
    assert_eq!(db.message(cut).status.as_str(), "deferred");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        upstream.count(),
        1,
        "the upstream took nothing of the message that could not be read to its end"
    );
}

/// A self-signed certificate and key for an upstream, in `dir`.
fn upstream_certificate(dir: &std::path::Path) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=upstream.test"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(made.status.success(), "{made:?}");
    (cert.display().to_string(), key.display().to_string())
}

/// Both TLS modes to an upstream: STARTTLS (done by Sluice before lettre sees the
/// connection) and implicit TLS; a small message and a large streamed one each arrive
/// byte-exact over TLS.
#[test]
fn tls_upstreams_get_small_and_streamed_mail_over_starttls_and_implicit_tls() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = upstream_certificate(certs.path());
    for (security, extra) in [("starttls", None), ("tls", Some("--implicit-tls"))] {
        let mut args = vec![
            "--hash",
            "--tls-cert",
            cert.as_str(),
            "--tls-key",
            key.as_str(),
        ];
        args.extend(extra);
        let upstream = Upstream::start(&args);
        let sluice = Sluice::builder(BIN)
            .provider(&format!(
                "type = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"{security}\"\n\
                 skip_tls_verify = true\ntimeout_secs = 20",
                upstream.port
            ))
            .start();
        let db = Db::open(&sluice);
        let mut sent = Vec::new();
        for (size, subject) in [(2_000, "small"), (1_500_000, "large")] {
            let (status, body) = api(
                &sluice,
                "POST",
                "/send",
                Some(json!({ "from": "app@example.com", "to": ["ann@dest.test"],
                             "subject": subject, "text": large_text(size, subject) })),
            );
            assert_eq!(status, 202, "{body}");
            let id = body["id"].as_i64().unwrap();
            db.wait_status(id, "delivered", 60);
            sent.push(db.message_bytes(id));
        }
        let received = upstream.wait_for(2, Duration::from_secs(10));
        for message in &received {
            assert_eq!(message.envelope["tls"], true, "{security}: over TLS");
            let (sha256, len) = message.sha256().expect("--hash");
            assert!(
                sent.iter()
                    .any(|m| sha256_hex(m) == sha256 && m.len() as u64 == len),
                "{security}: a message arrived as stored"
            );
        }
    }
}
