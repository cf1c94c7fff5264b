//! DKIM end to end: a key made through the API signs mail on its way to an SMTP upstream,
//! and dkimpy (an independent verifier) accepts the signature with the DNS record the API
//! showed; the same copy with one byte changed does not verify.

mod common;

use std::path::Path;

use common::{BIN, Db, Upstream};
use serde_json::{Value, json};
use sluice_testkit::Sluice;

fn dkimpy_verifies(message: &[u8], record: &Value) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.eml");
    std::fs::write(&file, message).unwrap();
    let output = std::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../testkit/py/dkim_verify.py"))
        .arg("--file")
        .arg(&file)
        .args(["--name", record["name"].as_str().unwrap()])
        .args(["--record", record["value"].as_str().unwrap()])
        .output()
        .expect("python3 with dkimpy (pip install -r tests/requirements.txt)");
    let result: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("dkim_verify: {}", String::from_utf8_lossy(&output.stderr)));
    result["ok"].as_bool().unwrap()
}

#[test]
fn mail_to_smtp_providers_is_signed_and_verifies_independently() {
    let upstream = Upstream::start(&[]);
    let sluice = Sluice::builder(BIN).upstream(upstream.port).start();
    let db = Db::open(&sluice);
    let api =
        |method: &str, path: &str, body: Option<Value>| common::api(&sluice, method, path, body);
    // Only the account's own (verified) domains can get a key.
    let (status, refused) = api(
        "POST",
        "/dkim-keys",
        Some(json!({ "domain": "elsewhere.test", "selector": "s1" })),
    );
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"]["code"], "domain_not_verified");
    let (status, key) = api(
        "POST",
        "/dkim-keys",
        Some(json!({ "domain": "example.com", "selector": "mail2026" })),
    );
    assert_eq!(status, 201, "{key}");
    assert_eq!(key["algorithm"], "rsa-sha256");
    let record = key["dns_record"].clone();
    assert_eq!(record["name"], "mail2026._domainkey.example.com");
    assert!(
        record["value"]
            .as_str()
            .unwrap()
            .starts_with("v=DKIM1; k=rsa; p=")
    );
    assert!(
        !key.to_string().contains("PRIVATE"),
        "the private key is never shown"
    );

    let (status, sent) = api(
        "POST",
        "/send",
        Some(
            json!({ "from": "Billing <billing@example.com>", "to": "ann@dest.test",
                     "subject": "Signed", "text": "Grüße\n.a dot line\n", "html": "<p>hi</p>" }),
        ),
    );
    assert_eq!(status, 202, "{sent}");
    db.wait_status(sent["id"].as_i64().unwrap(), "delivered", 20);
    let received = upstream.wait_for(1, std::time::Duration::from_secs(10));
    let raw = &received[0].raw;
    assert!(raw.starts_with(b"DKIM-Signature: "), "signed first");
    assert!(
        dkimpy_verifies(raw, &record),
        "dkimpy accepts the signature"
    );

    let text = String::from_utf8_lossy(raw).replace("<p>hi</p>", "<p>ho</p>");
    assert!(
        !dkimpy_verifies(text.as_bytes(), &record),
        "a changed body does not verify"
    );
}

/// An SMTP provider's sender display name goes before a bare From, and Sluice signs
/// after naming, so the signature still verifies; a From with a name is left as written.
#[test]
fn a_providers_sender_name_goes_before_a_bare_from_and_is_signed() {
    let upstream = Upstream::start(&[]);
    let sluice = Sluice::builder(BIN).start();
    let db = Db::open(&sluice);
    let api =
        |method: &str, path: &str, body: Option<Value>| common::api(&sluice, method, path, body);
    let (status, key) = api(
        "POST",
        "/dkim-keys",
        Some(json!({ "domain": "example.com", "selector": "named" })),
    );
    assert_eq!(status, 201, "{key}");
    let (status, provider) = api(
        "POST",
        "/providers",
        Some(json!({ "name": "named relay", "provider_type": "smtp",
            "config": { "host": "127.0.0.1", "port": upstream.port, "security": "none",
                        "from_name": "Example Billing" } })),
    );
    assert_eq!(status, 201, "{provider}");

    for from in ["billing@example.com", "Ann <ann@example.com>"] {
        let (status, sent) = api(
            "POST",
            "/send",
            Some(json!({ "from": from, "to": "ann@dest.test", "subject": "Named", "text": "hi" })),
        );
        assert_eq!(status, 202, "{sent}");
        db.wait_status(sent["id"].as_i64().unwrap(), "delivered", 20);
    }
    let received = upstream.wait_for(2, std::time::Duration::from_secs(10));
    let header_of = |raw: &[u8]| {
        String::from_utf8_lossy(raw)
            .lines()
            .find(|l| l.starts_with("From:"))
            .map(str::to_string)
    };
    let froms: Vec<Option<String>> = received.iter().map(|r| header_of(&r.raw)).collect();
    assert!(
        froms.contains(&Some("From: Example Billing <billing@example.com>".into())),
        "{froms:?}"
    );
    assert!(
        froms
            .iter()
            .any(|f| f.as_deref().is_some_and(|f| f.contains("Ann"))
                && !f.as_deref().unwrap().contains("Example Billing")),
        "{froms:?}"
    );
    for message in &received {
        assert!(
            dkimpy_verifies(&message.raw, &key["dns_record"]),
            "dkimpy accepts {}",
            message.text()
        );
    }
}

/// A message large enough to be streamed from the spool is signed over its whole body
/// (the body hash taken a chunk at a time as the spool is read), with either key type:
/// dkimpy accepts it, and the same copy with one byte changed near its end does not verify.
#[test]
fn a_large_streamed_message_is_signed_over_its_whole_body() {
    let upstream = Upstream::start(&[]);
    let sluice = Sluice::builder(BIN).upstream(upstream.port).start();
    let db = Db::open(&sluice);
    let mut text = String::from(".a first line with a dot\n");
    let mut n = 0;
    while text.len() < 2_500_000 {
        text.push_str(&format!(
            "line {n:07}: the body of a large signed message\n"
        ));
        n += 1;
    }
    text.push_str("the last line: zebra\n");
    for (round, algorithm) in ["rsa-sha256", "ed25519-sha256"].into_iter().enumerate() {
        let (status, key) = common::api(
            &sluice,
            "POST",
            "/dkim-keys",
            Some(
                json!({ "domain": "example.com", "selector": format!("big{round}"),
                         "algorithm": algorithm }),
            ),
        );
        assert_eq!(status, 201, "{key}");
        let record = key["dns_record"].clone();
        let (status, sent) = common::api(
            &sluice,
            "POST",
            "/send",
            Some(json!({ "from": "big@example.com", "to": "ann@dest.test",
                         "subject": "Large and signed", "text": text })),
        );
        assert_eq!(status, 202, "{sent}");
        db.wait_status(sent["id"].as_i64().unwrap(), "delivered", 60);
        let received = upstream.wait_for(round + 1, std::time::Duration::from_secs(10));
        let raw = &received[round].raw;
        assert!(raw.len() > 2_500_000);
        assert!(raw.starts_with(b"DKIM-Signature: "), "signed first");
        assert!(
            dkimpy_verifies(raw, &record),
            "dkimpy accepts the {algorithm} signature"
        );
        let changed = String::from_utf8_lossy(raw).replace("zebra", "zebre");
        assert!(
            !dkimpy_verifies(changed.as_bytes(), &record),
            "a change at the end of the body does not verify"
        );
        let id = key["id"].as_i64().unwrap();
        let (status, _) = common::api(&sluice, "DELETE", &format!("/dkim-keys/{id}"), None);
        assert_eq!(status, 204);
    }
}
