//! The web panel in a real browser: `tests/panel/panel.test.mjs` (playwright-core driving
//! Debian's headless chromium) logs in, is refused a POST without the CSRF token, creates
//! an SMTP provider and runs Test SMTP against a real aiosmtpd upstream, opens a captured
//! message (HTML in the sandboxed frame, attachment download), releases it through that
//! provider (the upstream receives it) and deletes another, edits a template and sees
//! the live preview, makes an API key (shown once, works, revoked: refused), changes a
//! setting and finds it in the audit log, logs out and finds
//! the session dead. On every page it collects console errors and CSP violations and
//! fails on any it did not cause on purpose; an admin's per-account pages open on an
//! account picker; a message's inline (`cid:`) image shows in the sandboxed frame; the
//! capture inbox shows a message sent by smtplib while it is open, without a reload, opens
//! it in place, and renders its tabs (HTML with a cid image, text, headers, highlighted
//! raw source), its attachment's thumbnail and the mobile / tablet width preview, and
//! moves, opens, searches, marks and deletes with the keys. This test starts Sluice and
//! the upstream, sends the messages, runs the script and fails with its output if any
//! check fails.
//!
//! Needs `npm ci --prefix tests/panel` and `/usr/bin/chromium` (`.ci/run` installs both).
//! `SLUICE_PANEL_SCREENSHOTS=docs` also writes the README's screenshots.

mod common;

use std::process::Command;
use std::time::Duration;

use base64::Engine;
use common::{BIN, Upstream};
use serde_json::json;
use sluice_testkit::{Sluice, wait_until};

#[test]
fn the_panel_works_in_a_real_browser() {
    let (root, chromium) = common::browser_test_setup();
    let script = root.join("tests/panel/panel.test.mjs");

    let upstream = Upstream::start(&[]);
    // The panel calls the API as its user for every page (a message page: three calls),
    // so a browser that walks every page and polls a release needs more than 100 a minute.
    let sluice = Sluice::builder(BIN)
        .provider("type = \"capture\"")
        .section("[api]\nrate_limit_per_minute = 1000")
        .start();
    let created = sluice.cli(&[
        "admin",
        "create",
        "--email",
        "admin@panel.test",
        "--password",
        "panel-password-1",
    ]);
    assert!(created.status.success(), "{created:?}");

    let csv = base64::engine::general_purpose::STANDARD.encode("quarter,total\nq1,42\n");
    let (status, sent) = common::api(
        &sluice,
        "POST",
        "/send",
        Some(json!({
            "from": "reports@example.com", "to": "cfo@dest.test", "subject": "Q1",
            "text": "The numbers are attached.",
            "html": "<h2>Quarterly numbers</h2><script>document.title='owned'</script><p>See attachment.</p>",
            "attachments": [{ "filename": "numbers.csv", "content_type": "text/csv", "content": csv }],
        })),
    );
    assert_eq!(status, 202, "{sent}");
    let id = sent["id"].as_i64().expect("a message id");
    let captured = wait_until(Duration::from_secs(20), || {
        let (_, message) = common::api(&sluice, "GET", &format!("/messages/{id}"), None);
        (message["status"] == "captured").then_some(message)
    });
    let account_id = captured.expect("the message was not captured")["account_id"]
        .as_i64()
        .expect("an account id");

    let (status, second) = common::api(
        &sluice,
        "POST",
        "/send",
        Some(
            json!({ "from": "reports@example.com", "to": "cfo@dest.test", "subject": "Draft", "text": "delete me" }),
        ),
    );
    assert_eq!(status, 202, "{second}");
    let second = second["id"].as_i64().expect("a message id");
    let captured_too = wait_until(Duration::from_secs(20), || {
        let (_, message) = common::api(&sluice, "GET", &format!("/messages/{second}"), None);
        (message["status"] == "captured").then_some(())
    });
    assert!(
        captured_too.is_some(),
        "the second message was not captured"
    );

    // A message with an inline image (multipart/related, `cid:`), over SMTP.
    let related = "From: Reports <reports@example.com>\r\nTo: <cfo@dest.test>\r\n\
        Subject: Logo\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/related; boundary=\"rel\"\r\n\r\n\
        --rel\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
        <p>Our logo: <img id=\"logo\" src=\"cid:logo@reports.example.com\" alt=\"logo\"></p>\r\n\
        --rel\r\nContent-Type: image/png\r\nContent-ID: <logo@reports.example.com>\r\n\
        Content-Disposition: inline\r\nContent-Transfer-Encoding: base64\r\n\r\n\
        iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGP4z8AARAwQCgAf7gP9i18U1AAAAABJRU5ErkJggg==\r\n\
        --rel--\r\n";
    let inline = common::smtplib_send(
        sluice.ports.plain,
        "plain",
        None,
        "reports@example.com",
        &["cfo@dest.test"],
        related.as_bytes(),
    );
    assert!(inline.ok, "{:?}", inline.json);
    let inline = inline.message_id();
    let inline_captured = wait_until(Duration::from_secs(20), || {
        let (_, message) = common::api(&sluice, "GET", &format!("/messages/{inline}"), None);
        (message["status"] == "captured").then_some(())
    });
    assert!(
        inline_captured.is_some(),
        "the inline-image message was not captured"
    );

    let mut node = Command::new("node");
    node.arg(&script)
        .env(
            "PANEL_URL",
            format!("http://127.0.0.1:{}", sluice.ports.panel),
        )
        .env("ADMIN_EMAIL", "admin@panel.test")
        .env("ADMIN_PASSWORD", "panel-password-1")
        .env("UPSTREAM_PORT", upstream.port.to_string())
        .env("MESSAGE_ID", id.to_string())
        .env("ACCOUNT_ID", account_id.to_string())
        .env("SECOND_MESSAGE_ID", second.to_string())
        .env("INLINE_MESSAGE_ID", inline.to_string())
        .env("API_URL", format!("http://127.0.0.1:{}", sluice.ports.http))
        .env("SMTP_PORT", sluice.ports.plain.to_string())
        .env("CHROMIUM", &chromium);
    if let Ok(dir) = std::env::var("SLUICE_PANEL_SCREENSHOTS") {
        node.env("SCREENSHOTS_DIR", root.join(dir));
    }
    let output = node.output().expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser checks failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("ok - the logged-out session's cookie no longer opens the panel"),
        "{stdout}"
    );

    // Test SMTP's message and the released message reached the real upstream through the
    // provider made in the panel, both with its sender display name before their bare From.
    let received = upstream.wait_for(2, Duration::from_secs(10));
    let texts: Vec<String> = received.iter().map(|r| r.text()).collect();
    let test = texts
        .iter()
        .find(|t| t.contains("Subject: Sluice test message"));
    assert!(
        test.is_some_and(|t| t.contains("From: Panel Relay <admin@panel.test>\r\n")),
        "{texts:?}"
    );
    let released = texts.iter().find(|t| t.contains("Subject: Q1"));
    assert!(
        released.is_some_and(|t| t.contains("From: Panel Relay <reports@example.com>\r\n")),
        "{texts:?}"
    );

    let logs = sluice.logs();
    assert!(
        !logs.contains("panel-password-1"),
        "the password is never logged"
    );
}
