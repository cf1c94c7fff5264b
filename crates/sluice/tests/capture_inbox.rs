//! The capture sandbox through the real binary: a sandboxed SMTP login and a sandboxed API
//! key have their mail captured while the account's other logins deliver; captured mail is
//! parsed once into the search index (`q` terms), `GET /messages/{id}/parsed` and a signed
//! `message.captured` event with the same JSON; read marks; attachments by URL; bulk
//! delete; retention by count per account; another tenant sees none of it.

mod common;

use std::time::Duration;

use common::{BIN, Db, USER, smtplib_send};
use serde_json::{Value, json};
use sluice_testkit::esp::PyServer;
use sluice_testkit::{Sluice, http_json, wait_until};

const SECRET: &str = "capture-hook-secret-0123456789";
const SANDBOX_LOGIN: (&str, &str) = ("app-sandbox", "sandbox-password");

fn call(
    sluice: &Sluice,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    http_json(
        sluice.ports.http,
        method,
        &format!("/api/v1{path}"),
        Some(token),
        body.as_ref(),
    )
}

/// A multipart invoice: text, HTML with a cid image, a PDF attachment, X-Tags.
fn invoice(subject: &str) -> Vec<u8> {
    format!(
        "From: Billing <billing@example.com>\r\nTo: Dev <dev+qa@dest.test>\r\n\
Cc: Boss <boss@dest.test>\r\nSubject: {subject}\r\nMessage-ID: <{subject}@example.com>\r\n\
Date: Fri, 04 Dec 2026 08:00:00 +0000\r\nX-Tags: Alpha, billing\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"m1\"\r\n\r\n--m1\r\n\
Content-Type: multipart/related; boundary=\"r1\"\r\n\r\n--r1\r\n\
Content-Type: text/html; charset=utf-8\r\n\r\n<p>Total due: <b>42 EUR</b></p><img src=\"cid:logo@x\">\r\n\
--r1\r\nContent-Type: image/png\r\nContent-ID: <logo@x>\r\nContent-Transfer-Encoding: base64\r\n\r\n\
iVBORw0KGgo=\r\n--r1--\r\n--m1\r\n\
Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"invoice.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--m1--\r\n"
    )
    .into_bytes()
}

/// Captured messages the key finds for `q` (waiting for the index), ids newest first.
fn search(sluice: &Sluice, key: &str, q: &str) -> Vec<i64> {
    let path = format!("/messages?status=captured&q={}", url_escape(q));
    let (status, page) = call(sluice, key, "GET", &path, None);
    assert_eq!(status, 200, "{q}: {page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect()
}

/// A GET with a bearer token: (status, head, body bytes).
fn get_bytes(port: u16, path: &str, token: &str) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head, response[split + 4..].to_vec())
}

fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn sandboxed_logins_capture_and_captured_mail_is_searched_parsed_and_posted() {
    let receiver = PyServer::start("hook_receiver.py", &["--secret", SECRET]);
    let sluice = Sluice::builder(BIN)
        .egress_allow(&[])
        .env("SLUICE_EVENT_WEBHOOKS__ALLOW_PRIVATE_TARGETS", "true")
        .env("SLUICE_EVENT_WEBHOOKS__POLL_INTERVAL_MS", "100")
        .start();
    let db = Db::open(&sluice);
    let key = sluice.api_key.clone();

    // A sandboxed SMTP login and a sandboxed API key of the test account.
    let (status, login) = call(
        &sluice,
        &key,
        "POST",
        "/smtp-credentials",
        Some(json!({ "username": SANDBOX_LOGIN.0, "password": SANDBOX_LOGIN.1, "sandbox": true })),
    );
    assert_eq!((status, &login["sandbox"]), (201, &json!(true)), "{login}");
    let (status, sandbox_key) = call(
        &sluice,
        &key,
        "POST",
        "/api-keys",
        Some(json!({ "sandbox": true })),
    );
    assert_eq!(status, 201, "{sandbox_key}");
    let sandbox_key_value = sandbox_key["api_key"].as_str().unwrap().to_string();
    let (status, endpoint) = call(
        &sluice,
        &key,
        "POST",
        "/webhook-endpoints",
        Some(
            json!({ "url": format!("http://127.0.0.1:{}/hook", receiver.port),
                     "events": ["message.captured", "bounced_hard"], "secret": SECRET }),
        ),
    );
    assert_eq!(status, 201, "{endpoint}");

    // The sandboxed login's mail is captured; the account's own login delivers (log).
    let sent = smtplib_send(
        sluice.ports.submission,
        "starttls",
        Some(SANDBOX_LOGIN),
        "billing@example.com",
        &["dev+qa@dest.test"],
        &invoice("Invoice 2026-117"),
    );
    assert!(sent.ok, "{:?}", sent.json);
    let captured = sent.message_id();
    db.wait_status(captured, "captured", 20);
    let delivered = smtplib_send(
        sluice.ports.submission,
        "starttls",
        USER,
        "billing@example.com",
        &["dev@dest.test"],
        &invoice("Invoice 2026-118"),
    );
    assert!(delivered.ok, "{:?}", delivered.json);
    db.wait_status(delivered.message_id(), "delivered", 20);
    // The sandboxed key's send is captured, with its tags.
    let (status, api_sent) = call(
        &sluice,
        &sandbox_key_value,
        "POST",
        "/send",
        Some(
            json!({ "from": "app@example.com", "to": "ann@dest.test", "subject": "Welcome aboard",
                     "text": "Hello Ann, your weekly report is ready.", "tags": ["onboarding"] }),
        ),
    );
    assert_eq!(status, 202, "{api_sent}");
    let api_captured = api_sent["id"].as_i64().unwrap();
    db.wait_status(api_captured, "captured", 20);

    // Search waits for the indexer (it runs beside the worker).
    let found = wait_until(Duration::from_secs(10), || {
        let ids = search(&sluice, &key, "invoice");
        (!ids.is_empty()).then_some(ids)
    })
    .expect("the captured invoice is indexed");
    assert_eq!(found, vec![captured]);
    wait_until(Duration::from_secs(10), || {
        (search(&sluice, &key, "weekly") == vec![api_captured]).then_some(())
    })
    .expect("the API send is indexed");
    for (q, want) in [
        ("inv 42", vec![captured]),
        ("from:billing@example", vec![captured]),
        ("to:boss@", vec![captured]),
        ("subject:\"invoice 2026\"", vec![captured]),
        ("tag:qa", vec![captured]),
        ("tag:alpha", vec![captured]),
        ("tag:onboarding", vec![api_captured]),
        ("has:attachment", vec![captured]),
        ("is:unread", vec![api_captured, captured]),
        (
            "after:2020-01-01 before:2100-01-01",
            vec![api_captured, captured],
        ),
        ("before:2020-01-01", vec![]),
    ] {
        assert_eq!(search(&sluice, &key, q), want, "q={q}");
    }
    let (status, refused) = call(&sluice, &key, "GET", "/messages?q=before%3Ayesterday", None);
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (422, Some("validation_failed")),
        "{refused}"
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("before:"),
        "{refused}"
    );
    let (status, refused) = call(&sluice, &key, "GET", "/messages?status=delivered&q=x", None);
    assert_eq!(status, 422, "{refused}");

    // The list shows what an inbox needs.
    let (_, page) = call(&sluice, &key, "GET", "/messages?status=captured", None);
    let item = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == captured)
        .unwrap()
        .clone();
    assert_eq!(item["subject"], "Invoice 2026-117", "{item}");
    assert_eq!(item["has_attachments"], true);
    assert_eq!(item["read"], false);
    assert_eq!(item["tags"], json!(["alpha", "billing", "qa"]));

    // Read marks.
    let (status, mark) = call(
        &sluice,
        &key,
        "POST",
        &format!("/messages/{captured}/read"),
        None,
    );
    assert_eq!((status, &mark["read"]), (200, &json!(true)), "{mark}");
    assert_eq!(search(&sluice, &key, "is:unread"), vec![api_captured]);
    assert_eq!(search(&sluice, &key, "is:read"), vec![captured]);
    call(
        &sluice,
        &key,
        "POST",
        &format!("/messages/{captured}/unread"),
        None,
    );
    assert_eq!(search(&sluice, &key, "is:read"), Vec::<i64>::new());

    // The parsed message, and its attachment by URL.
    let (status, parsed) = call(
        &sluice,
        &key,
        "GET",
        &format!("/messages/{captured}/parsed"),
        None,
    );
    assert_eq!(status, 200, "{parsed}");
    assert_eq!(parsed["id"], captured);
    assert_eq!(
        parsed["envelope"],
        json!({ "mail_from": "billing@example.com", "rcpt_to": ["dev+qa@dest.test"] })
    );
    assert_eq!(parsed["subject"], "Invoice 2026-117");
    assert_eq!(parsed["message_id"], "Invoice 2026-117@example.com");
    assert_eq!(
        parsed["from"],
        json!({ "name": "Billing", "address": "billing@example.com" })
    );
    assert_eq!(parsed["cc"][0]["address"], "boss@dest.test");
    assert_eq!(parsed["date"], "2026-12-04T08:00:00Z");
    assert!(
        parsed["html"].as_str().unwrap().contains("42 EUR"),
        "{parsed}"
    );
    let attachments = parsed["attachments"].as_array().unwrap();
    let pdf = attachments
        .iter()
        .find(|a| a["filename"] == "invoice.pdf")
        .expect("the pdf");
    assert_eq!(pdf["content_type"], "application/pdf");
    assert_eq!(pdf["disposition"], "attachment");
    assert_eq!(pdf["size"], 9);
    let logo = attachments
        .iter()
        .find(|a| a["content_id"] == "logo@x")
        .expect("the cid image");
    assert_eq!(logo["content_type"], "image/png");
    let url = pdf["url"].as_str().unwrap();
    let (status, head, bytes) = get_bytes(sluice.ports.http, url, &key);
    assert_eq!(status, 200, "{head}");
    assert_eq!(bytes, b"%PDF-1.4\n");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-disposition: attachment"),
        "{head}"
    );

    // The signed event carries the same JSON.
    let posted = wait_until(Duration::from_secs(20), || {
        let (_, log) = http_json(receiver.port, "GET", "/_log", None, None);
        let posts = log.as_array().cloned().unwrap_or_default();
        posts
            .into_iter()
            .find(|p| p["body"]["data"]["id"] == captured)
    })
    .expect("message.captured was posted");
    assert_eq!(posted["signature_ok"], true, "{posted}");
    assert_eq!(posted["body"]["type"], "message.captured");
    assert_eq!(
        posted["body"]["data"], parsed,
        "the event's data is /parsed's answer"
    );

    // Synthetic feedback: a hard bounce as a service would report it suppresses the
    // address and posts the event.
    let (status, applied) = call(
        &sluice,
        &key,
        "POST",
        &format!("/messages/{captured}/feedback"),
        Some(json!({ "kind": "bounced" })),
    );
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["event"], "bounced_hard");
    assert_eq!(applied["recipient"], "dev+qa@dest.test");
    let (_, suppressions) = call(&sluice, &key, "GET", "/suppressions", None);
    assert!(
        suppressions.to_string().contains("dev+qa@dest.test"),
        "{suppressions}"
    );
    let bounce = wait_until(Duration::from_secs(20), || {
        let (_, log) = http_json(receiver.port, "GET", "/_log", None, None);
        let posts = log.as_array().cloned().unwrap_or_default();
        posts
            .into_iter()
            .find(|p| p["body"]["type"] == "bounced_hard")
    })
    .expect("bounced_hard was posted");
    assert_eq!(bounce["body"]["data"]["message_id"], captured, "{bounce}");
    let (status, refused) = call(
        &sluice,
        &key,
        "POST",
        &format!("/messages/{}/feedback", delivered.message_id()),
        Some(json!({ "kind": "complained" })),
    );
    assert_eq!(
        status, 409,
        "only captured mail takes synthetic feedback: {refused}"
    );
    let (status, refused) = call(
        &sluice,
        &key,
        "POST",
        &format!("/messages/{captured}/feedback"),
        Some(json!({ "kind": "exploded" })),
    );
    assert_eq!(status, 422, "{refused}");

    // Tags by hand: they replace the sender's, the message's own (X-Tags, plus-address)
    // stay, and search, the list and /parsed all see them.
    assert_eq!(search(&sluice, &key, "tag:by-hand"), Vec::<i64>::new());
    let (status, tagged) = call(
        &sluice,
        &key,
        "PUT",
        &format!("/messages/{captured}/tags"),
        Some(json!({ "tags": ["By-Hand", "release-2"] })),
    );
    assert_eq!(status, 200, "{tagged}");
    let all = json!(["by-hand", "release-2", "alpha", "billing", "qa"]);
    assert_eq!(tagged["tags"], all);
    assert_eq!(search(&sluice, &key, "tag:by-hand"), vec![captured]);
    assert_eq!(
        search(&sluice, &key, "tag:release-2 tag:qa"),
        vec![captured]
    );
    let (_, parsed_now) = call(
        &sluice,
        &key,
        "GET",
        &format!("/messages/{captured}/parsed"),
        None,
    );
    assert_eq!(parsed_now["tags"], all);
    let (_, detail) = call(&sluice, &key, "GET", &format!("/messages/{captured}"), None);
    assert_eq!(detail["tags"], json!(["by-hand", "release-2"]));
    let (status, _) = call(
        &sluice,
        &key,
        "PUT",
        &format!("/messages/{captured}/tags"),
        Some(json!({ "tags": [] })),
    );
    assert_eq!(status, 200);
    assert_eq!(search(&sluice, &key, "tag:by-hand"), Vec::<i64>::new());
    assert_eq!(search(&sluice, &key, "tag:qa"), vec![captured]);
    let (status, refused) = call(
        &sluice,
        &key,
        "PUT",
        &format!("/messages/{captured}/tags"),
        Some(json!({ "tags": ["no spaces"] })),
    );
    assert_eq!(status, 422, "{refused}");
    let (status, refused) = call(
        &sluice,
        &key,
        "PUT",
        &format!("/messages/{}/tags", delivered.message_id()),
        Some(json!({ "tags": ["x"] })),
    );
    assert_eq!(
        status, 409,
        "only captured mail is tagged by hand: {refused}"
    );
    // A large message's body is in the spool: its X-Tags are read from its header section.
    let large = format!(
        "From: billing@example.com\r\nTo: ann@dest.test\r\nSubject: large\r\n\
         X-Tags: from-header\r\n\r\n{}",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n".repeat(5000)
    );
    let sent = smtplib_send(
        sluice.ports.submission,
        "starttls",
        Some(SANDBOX_LOGIN),
        "billing@example.com",
        &["ann@dest.test"],
        large.as_bytes(),
    );
    assert!(sent.ok, "{:?}", sent.json);
    let large_id = sent.message_id();
    assert!(
        matches!(
            db.wait_status(large_id, "captured", 20).body,
            sluice_core::MessageBody::Stored(_)
        ),
        "the large body is in the spool"
    );
    let (status, tagged) = call(
        &sluice,
        &key,
        "PUT",
        &format!("/messages/{large_id}/tags"),
        Some(json!({ "tags": ["by-hand"] })),
    );
    assert_eq!(
        (status, &tagged["tags"]),
        (200, &json!(["by-hand", "from-header"])),
        "{tagged}"
    );
    // Gone again, so the counts below are of the mail they speak of.
    let (status, deleted) = call(
        &sluice,
        &key,
        "POST",
        "/messages/delete-captured",
        Some(json!({ "ids": [large_id] })),
    );
    assert_eq!((status, &deleted["deleted"]), (200, &json!(1)), "{deleted}");

    // Another tenant sees none of it, and cannot delete it.
    let other_key = common::create_account(&sluice, "other@other.test", "other.test", true);
    assert_eq!(search(&sluice, &other_key, "invoice"), Vec::<i64>::new());
    let (status, _) = call(
        &sluice,
        &other_key,
        "GET",
        &format!("/messages/{captured}/parsed"),
        None,
    );
    assert_eq!(status, 404);
    let (status, _) = call(
        &sluice,
        &other_key,
        "PUT",
        &format!("/messages/{captured}/tags"),
        Some(json!({ "tags": ["mine"] })),
    );
    assert_eq!(status, 404);
    let (status, _) = call(
        &sluice,
        &other_key,
        "POST",
        &format!("/messages/{captured}/read"),
        None,
    );
    assert_eq!(status, 404);
    let (status, deleted) = call(
        &sluice,
        &other_key,
        "POST",
        "/messages/delete-captured",
        Some(json!({ "ids": [captured, api_captured] })),
    );
    assert_eq!((status, &deleted["deleted"]), (200, &json!(0)), "{deleted}");

    // Events: the other tenant's webhook gets its own captured mail only, and ours none of
    // its mail.
    let other_receiver = PyServer::start("hook_receiver.py", &["--secret", SECRET]);
    let (status, _) = call(
        &sluice,
        &other_key,
        "POST",
        "/webhook-endpoints",
        Some(
            json!({ "url": format!("http://127.0.0.1:{}/hook", other_receiver.port),
                     "events": ["*"], "secret": SECRET }),
        ),
    );
    assert_eq!(status, 201);
    let (status, theirs) = call(
        &sluice,
        &other_key,
        "POST",
        "/send",
        Some(
            json!({ "from": "app@other.test", "to": "ann@dest.test", "subject": "Theirs", "text": "t" }),
        ),
    );
    assert_eq!(status, 202, "{theirs}");
    let theirs = theirs["id"].as_i64().unwrap();
    wait_until(Duration::from_secs(20), || {
        let (_, log) = http_json(other_receiver.port, "GET", "/_log", None, None);
        log.as_array()?
            .iter()
            .find(|p| p["body"]["type"] == "message.captured" && p["body"]["data"]["id"] == theirs)
            .cloned()
    })
    .expect("the other tenant's message.captured reached its own webhook");
    let (_, their_log) = http_json(other_receiver.port, "GET", "/_log", None, None);
    for post in their_log.as_array().unwrap() {
        let data = &post["body"]["data"];
        let id = data["id"].as_i64().or(data["message_id"].as_i64());
        assert_eq!(
            id,
            Some(theirs),
            "the other tenant got only its own events: {post}"
        );
    }
    let (_, our_log) = http_json(receiver.port, "GET", "/_log", None, None);
    assert!(
        our_log.as_array().unwrap().iter().all(|p| {
            let data = &p["body"]["data"];
            data["id"] != theirs && data["message_id"] != theirs
        }),
        "{our_log}"
    );

    // The sandboxed key may not turn its own sandbox off; an admin may (audited).
    let key_id = sandbox_key["id"].as_i64().unwrap();
    let (status, refused) = call(
        &sluice,
        &sandbox_key_value,
        "PUT",
        &format!("/api-keys/{key_id}"),
        Some(json!({ "sandbox": false })),
    );
    assert_eq!(status, 403, "{refused}");
    let admin = common::admin_token(&sluice);
    let account_id = sluice_account_id(&sluice, &key);
    let (status, view) = call(
        &sluice,
        &admin,
        "PUT",
        &format!("/api-keys/{key_id}?account_id={account_id}"),
        Some(json!({ "sandbox": false })),
    );
    assert_eq!((status, &view["sandbox"]), (200, &json!(false)), "{view}");
    let (_, audit) = call(
        &sluice,
        &admin,
        "GET",
        "/audit-logs?action=sandbox_off",
        None,
    );
    assert!(audit.to_string().contains("api_key"), "{audit}");

    // Delete all of the account's captured mail.
    let (status, deleted) = call(
        &sluice,
        &key,
        "POST",
        "/messages/delete-captured",
        Some(json!({ "all": true })),
    );
    assert_eq!((status, &deleted["deleted"]), (200, &json!(2)), "{deleted}");
    assert_eq!(search(&sluice, &key, "invoice"), Vec::<i64>::new());
    let (status, _) = call(
        &sluice,
        &key,
        "POST",
        "/messages/delete-captured",
        Some(json!({})),
    );
    assert_eq!(status, 422);
}

fn sluice_account_id(sluice: &Sluice, key: &str) -> i64 {
    let (_, keys) = call(sluice, key, "GET", "/api-keys", None);
    keys[0]["account_id"].as_i64().expect("the key's account")
}

#[test]
fn captured_mail_is_kept_by_each_accounts_retention() {
    let sluice = Sluice::builder(BIN)
        .env("SLUICE_RETENTION__INTERVAL_SECS", "1")
        .start();
    let db = Db::open(&sluice);
    let key = sluice.api_key.clone();
    let account_id = sluice_account_id(&sluice, &key);
    for bad in [json!(0), json!(-1), json!(2_000_000)] {
        let (status, refused) = call(
            &sluice,
            &key,
            "PUT",
            &format!("/accounts/{account_id}"),
            Some(json!({ "capture_retention_count": bad })),
        );
        assert_eq!(status, 422, "{refused}");
    }
    let (status, view) = call(
        &sluice,
        &key,
        "PUT",
        &format!("/accounts/{account_id}"),
        Some(json!({ "sandbox": true, "capture_retention_count": 2 })),
    );
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["capture_retention_count"], 2);
    assert_eq!(view["capture_retention_days"], Value::Null);
    let mut ids = Vec::new();
    for n in 0..4 {
        let sent = smtplib_send(
            sluice.ports.submission,
            "starttls",
            USER,
            "app@example.com",
            &["ann@dest.test"],
            &common::sample_message(&format!("kept {n}")),
        );
        assert!(sent.ok, "{:?}", sent.json);
        ids.push(sent.message_id());
        db.wait_status(sent.message_id(), "captured", 20);
    }
    let kept = wait_until(Duration::from_secs(15), || {
        let (_, page) = call(&sluice, &key, "GET", "/messages?status=captured", None);
        let kept: Vec<i64> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_i64().unwrap())
            .collect();
        (kept.len() == 2).then_some(kept)
    })
    .expect("retention kept two");
    assert_eq!(kept, vec![ids[3], ids[2]], "the newest stay");
    // Null: back to the server default (1000): nothing more goes.
    let (status, view) = call(
        &sluice,
        &key,
        "PUT",
        &format!("/accounts/{account_id}"),
        Some(json!({ "capture_retention_count": null })),
    );
    assert_eq!(
        (status, &view["capture_retention_count"]),
        (200, &Value::Null),
        "{view}"
    );
}

/// Chaos: a sandboxed login of an account with `capture_chaos` meets the configured
/// answer in a real client (Python's smtplib); the account's other logins never do; turned
/// off, mail is captured again.
#[test]
fn sandbox_chaos_makes_a_real_client_see_the_configured_answer() {
    let sluice = Sluice::builder(BIN).start();
    let key = sluice.api_key.clone();
    let account_id = sluice_account_id(&sluice, &key);
    let (status, _) = call(
        &sluice,
        &key,
        "POST",
        "/smtp-credentials",
        Some(json!({ "username": SANDBOX_LOGIN.0, "password": SANDBOX_LOGIN.1, "sandbox": true })),
    );
    assert_eq!(status, 201);
    for bad in [
        json!({ "rcpt": { "code": 250, "probability": 0.5 } }),
        json!({ "rcpt": { "code": 451, "probability": 2 } }),
        json!({ "quit": { "code": 451, "probability": 1 } }),
    ] {
        let (status, refused) = call(
            &sluice,
            &key,
            "PUT",
            &format!("/accounts/{account_id}"),
            Some(json!({ "capture_chaos": bad })),
        );
        assert_eq!(status, 422, "{refused}");
    }
    let rules =
        json!({ "rcpt": { "code": 451, "probability": 1.0, "message": "Chaos: try later" } });
    let (status, view) = call(
        &sluice,
        &key,
        "PUT",
        &format!("/accounts/{account_id}"),
        Some(json!({ "capture_chaos": rules })),
    );
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["capture_chaos"], rules);

    let send = |login| {
        smtplib_send(
            sluice.ports.submission,
            "starttls",
            Some(login),
            "app@example.com",
            &["ann@dest.test"],
            &common::sample_message("chaos"),
        )
    };
    let refused = send(SANDBOX_LOGIN);
    assert!(!refused.ok, "{:?}", refused.json);
    assert_eq!(refused.code, 451, "{:?}", refused.json);
    assert!(
        refused.message.contains("4.3.0 Chaos: try later"),
        "{:?}",
        refused.json
    );
    // The account itself is not in sandbox mode: its own login gets no chaos.
    let normal = send(USER.unwrap());
    assert!(normal.ok, "{:?}", normal.json);

    let (status, _) = call(
        &sluice,
        &key,
        "PUT",
        &format!("/accounts/{account_id}"),
        Some(json!({ "capture_chaos": null })),
    );
    assert_eq!(status, 200);
    // The authenticator caches a login's policy briefly; the change shows within it.
    let sent = wait_until(Duration::from_secs(10), || {
        let sent = send(SANDBOX_LOGIN);
        sent.ok.then_some(sent)
    })
    .expect("without chaos the sandboxed login sends again");
    Db::open(&sluice).wait_status(sent.message_id(), "captured", 20);
}
