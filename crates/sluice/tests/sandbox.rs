//! Sandbox mode through the real binary: an account in sandbox mode has everything it sends
//! captured, even after it adds an SMTP provider pointing at a real upstream; an API key may
//! turn sandbox mode on but not off; an admin turns it off (audited `sandbox_off`) and the
//! next message reaches the upstream. The same in sync mode.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

const SANDBOX_LOGIN: (&str, &str) = ("dev@sandbox.test", "sandbox-password");

/// An API call with `token`: `/api/v1` + `path`; (status, JSON body).
fn call(
    sluice: &Sluice,
    token: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    sluice_testkit::http_json(
        sluice.ports.http,
        method,
        &format!("/api/v1{path}"),
        Some(token),
        body.as_ref(),
    )
}

/// `sluice account create --sandbox` for dev@sandbox.test: (account id, API key).
fn create_sandboxed_account(sluice: &Sluice) -> (i64, String) {
    let created = sluice.cli(&[
        "account",
        "create",
        "--name",
        "Sandboxed",
        "--email",
        SANDBOX_LOGIN.0,
        "--password",
        SANDBOX_LOGIN.1,
        "--domain",
        "sandbox.test",
        "--sandbox",
    ]);
    assert!(created.status.success(), "account create: {created:?}");
    let stdout = String::from_utf8_lossy(&created.stdout).to_string();
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
    };
    assert!(field("sandbox:").starts_with("on"), "{stdout}");
    (field("account id:").parse().unwrap(), field("api key:"))
}

/// The account's own SMTP provider: the upstream, no TLS.
fn add_upstream_provider(sluice: &Sluice, key: &str, upstream: &Upstream) -> i64 {
    let (status, provider) = call(
        sluice,
        key,
        "POST",
        "/providers",
        Some(json!({ "name": "real relay", "provider_type": "smtp",
            "config": { "host": "127.0.0.1", "port": upstream.port, "security": "none" } })),
    );
    assert_eq!(status, 201, "{provider}");
    provider["id"].as_i64().unwrap()
}

fn message(subject: &str) -> Vec<u8> {
    format!(
        "From: App <app@sandbox.test>\r\nTo: <ann@dest.test>\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@sandbox.test>\r\n\r\nHello from the sandbox.\r\n"
    )
    .into_bytes()
}

fn send(sluice: &Sluice, subject: &str) -> ClientResult {
    let sent = smtplib_send(
        sluice.ports.submission,
        "starttls",
        Some(SANDBOX_LOGIN),
        "app@sandbox.test",
        &["ann@dest.test"],
        &message(subject),
    );
    assert!(sent.ok, "{:?}", sent.json);
    sent
}

#[test]
fn a_sandboxed_accounts_mail_is_captured_until_an_admin_turns_sandbox_off() {
    let upstream = Upstream::start(&[]);
    let sluice = Sluice::builder(BIN).start();
    let db = Db::open(&sluice);
    let (account, key) = create_sandboxed_account(&sluice);
    let (status, view) = call(&sluice, &key, "GET", &format!("/accounts/{account}"), None);
    assert_eq!(
        (status, view["sandbox"].as_bool()),
        (200, Some(true)),
        "{view}"
    );

    // The account routes to a real upstream: its mail is still captured, nothing leaves.
    let provider = add_upstream_provider(&sluice, &key, &upstream);
    let captured = send(&sluice, "captured").message_id();
    let record = db.wait_status(captured, "captured", 20);
    assert_eq!(record.status.as_str(), "captured");
    let attempts = db.attempts(captured);
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(
        (attempts[0].provider.as_str(), attempts[0].provider_id),
        ("capture", None)
    );
    assert!(db.events(captured).contains(&"captured".to_string()));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(upstream.count(), 0, "a sandbox's mail reached the upstream");

    // The application's API key may not let the sandbox's mail out.
    let (status, refused) = call(
        &sluice,
        &key,
        "PUT",
        &format!("/accounts/{account}"),
        Some(json!({ "sandbox": false })),
    );
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{refused}"
    );
    assert!(refused["error"]["request_id"].is_string(), "{refused}");
    let (_, view) = call(&sluice, &key, "GET", &format!("/accounts/{account}"), None);
    assert_eq!(view["sandbox"].as_bool(), Some(true), "{view}");

    // An admin turns it off on purpose: audited, naming who.
    let admin = admin_token(&sluice);
    let (status, view) = call(
        &sluice,
        &admin,
        "PUT",
        &format!("/accounts/{account}"),
        Some(json!({ "sandbox": false })),
    );
    assert_eq!(
        (status, view["sandbox"].as_bool()),
        (200, Some(false)),
        "{view}"
    );
    let (status, audit) = call(
        &sluice,
        &admin,
        "GET",
        &format!("/audit-logs?account_id={account}&action=sandbox_off"),
        None,
    );
    assert_eq!(status, 200, "{audit}");
    let entries = audit["items"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{audit}");
    assert!(
        entries[0]["actor"].as_str().unwrap().starts_with("user:"),
        "{audit}"
    );
    assert_eq!(entries[0]["target_id"], account.to_string());
    assert_eq!(entries[0]["changes"]["sandbox"], false);

    // The next message goes where the account's routing says: the upstream.
    let delivered = send(&sluice, "delivered").message_id();
    let received = upstream.wait_for(1, Duration::from_secs(20));
    assert!(received[0].text().contains("Subject: delivered"));
    assert_eq!(received[0].rcpt_tos(), vec!["ann@dest.test"]);
    db.wait_status(delivered, "delivered", 20);
    assert_eq!(db.attempts(delivered)[0].provider_id, Some(provider));
    // The captured one stayed captured: turning sandbox off releases nothing.
    assert_eq!(db.message(captured).status.as_str(), "captured");
    assert_eq!(upstream.count(), 1);
}

#[test]
fn sync_mode_captures_a_sandboxed_accounts_mail_before_it_answers() {
    let upstream = Upstream::start(&[]);
    let sluice = Sluice::builder(BIN).delivery("mode = \"sync\"").start();
    let db = Db::open(&sluice);
    let (account, key) = create_sandboxed_account(&sluice);
    add_upstream_provider(&sluice, &key, &upstream);

    let sent = send(&sluice, "sync-captured");
    let id = sent.message_id();
    assert_eq!(
        db.message(id).status.as_str(),
        "captured",
        "captured before the 250"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(upstream.count(), 0, "a sandbox's mail reached the upstream");

    // Off, then on again with the API key (turning it on needs no login): audited both ways.
    let admin = admin_token(&sluice);
    let path = format!("/accounts/{account}");
    let (status, _) = call(
        &sluice,
        &admin,
        "PUT",
        &path,
        Some(json!({ "sandbox": false })),
    );
    assert_eq!(status, 200);
    let out = send(&sluice, "sync-delivered");
    assert_eq!(db.message(out.message_id()).status.as_str(), "delivered");
    assert_eq!(upstream.count(), 1);
    let (status, view) = call(
        &sluice,
        &key,
        "PUT",
        &path,
        Some(json!({ "sandbox": true })),
    );
    assert_eq!(
        (status, view["sandbox"].as_bool()),
        (200, Some(true)),
        "{view}"
    );
    let again = send(&sluice, "sync-captured-again");
    assert_eq!(db.message(again.message_id()).status.as_str(), "captured");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(upstream.count(), 1);
    let (_, audit) = call(
        &sluice,
        &admin,
        "GET",
        &format!("/audit-logs?account_id={account}&target_type=account"),
        None,
    );
    let actions: Vec<(&str, &str)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("sandbox_"))
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(actions.len(), 2, "{audit}");
    assert_eq!(actions[0].0, "sandbox_on");
    assert!(actions[0].1.starts_with("api_key:"), "{actions:?}");
    assert_eq!(actions[1].0, "sandbox_off");
    assert!(actions[1].1.starts_with("user:"), "{actions:?}");
}
