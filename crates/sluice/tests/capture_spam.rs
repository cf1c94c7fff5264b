//! The capture sandbox's spam check against a real SpamAssassin `spamd` (Debian's
//! `spamd`, started here on a free port): the GTUBE test message scores as spam with the
//! GTUBE rule named; an ordinary message does not; without `capture.spamd` the check says
//! it is unavailable; another tenant gets 404.

mod common;

use common::services::start_spamd;
use common::{BIN, Db, USER, smtplib_send};
use serde_json::{Value, json};
use sluice_testkit::{Sluice, free_port, http_json};

fn call(sluice: &Sluice, token: &str, path: &str) -> (u16, Value) {
    http_json(
        sluice.ports.http,
        "GET",
        &format!("/api/v1{path}"),
        Some(token),
        None,
    )
}

const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

#[test]
fn spamd_scores_captured_mail_and_names_the_rules() {
    let Some((_spamd, port)) = start_spamd() else {
        return;
    };
    let sluice = Sluice::builder(BIN)
        .env("SLUICE_CAPTURE__SPAMD", &format!("127.0.0.1:{port}"))
        .start();
    let db = Db::open(&sluice);
    let key = sluice.api_key.clone();
    let (status, _) = http_json(
        sluice.ports.http,
        "PUT",
        "/api/v1/accounts/1",
        Some(&key),
        Some(&json!({ "sandbox": true })),
    );
    assert_eq!(status, 200);
    let send = |body: &str| {
        let message = format!(
            "From: App <app@example.com>\r\nTo: <ann@dest.test>\r\nSubject: check\r\n\
             Date: Fri, 04 Dec 2026 08:00:00 +0000\r\nMessage-ID: <{}@example.com>\r\n\r\n{body}\r\n",
            body.len()
        );
        let sent = smtplib_send(
            sluice.ports.submission,
            "starttls",
            USER,
            "app@example.com",
            &["ann@dest.test"],
            message.as_bytes(),
        );
        assert!(sent.ok, "{:?}", sent.json);
        db.wait_status(sent.message_id(), "captured", 20);
        sent.message_id()
    };
    let spam = send(GTUBE);
    let (status, report) = call(&sluice, &key, &format!("/messages/{spam}/checks/spam"));
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["is_spam"], true, "{report}");
    assert!(report["score"].as_f64().unwrap() >= 1000.0, "{report}");
    assert_eq!(report["threshold"], 5.0);
    let gtube = report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "GTUBE")
        .unwrap_or_else(|| panic!("GTUBE among the rules: {report}"));
    assert!(
        gtube["description"]
            .as_str()
            .unwrap()
            .contains("Unsolicited"),
        "{gtube}"
    );

    let ham = send("Hello Ann, the meeting moved to Thursday at ten. See you there.");
    let (status, report) = call(&sluice, &key, &format!("/messages/{ham}/checks/spam"));
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["is_spam"], false, "{report}");
    assert!(
        report["rules"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["name"] != "GTUBE")
    );

    // Another tenant: 404, whatever spamd would say.
    let other_key = common::create_account(&sluice, "other@other.test", "other.test", false);
    let (status, _) = call(
        &sluice,
        &other_key,
        &format!("/messages/{spam}/checks/spam"),
    );
    assert_eq!(status, 404);
}

#[test]
fn without_spamd_the_check_says_it_is_unavailable() {
    let dead = free_port();
    let sluice = Sluice::builder(BIN)
        .env("SLUICE_CAPTURE__SPAMD", &format!("127.0.0.1:{dead}"))
        .env("SLUICE_CAPTURE__SPAMD_TIMEOUT_SECS", "2")
        .start();
    let db = Db::open(&sluice);
    let key = sluice.api_key.clone();
    http_json(
        sluice.ports.http,
        "PUT",
        "/api/v1/accounts/1",
        Some(&key),
        Some(&json!({ "sandbox": true })),
    );
    let sent = smtplib_send(
        sluice.ports.submission,
        "starttls",
        USER,
        "app@example.com",
        &["ann@dest.test"],
        &common::sample_message("no spamd"),
    );
    db.wait_status(sent.message_id(), "captured", 20);
    let (status, refused) = call(
        &sluice,
        &key,
        &format!("/messages/{}/checks/spam", sent.message_id()),
    );
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (503, Some("spam_check_unavailable")),
        "{refused}"
    );
}
