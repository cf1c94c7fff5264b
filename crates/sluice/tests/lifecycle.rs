//! Account lifecycle through the real binary: SMTP AUTH (the account's login and an SMTP
//! credential), the trusted port and API keys of a suspended account are refused, its
//! deferred mail is held and goes out once it is reactivated; after deletion every one of
//! them is refused for good.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use common::*;

/// AUTH PLAIN on the submission port (STARTTLS): the reply code.
fn auth_code(port: u16, user: &str, password: &str) -> String {
    let script = r#"
import base64, smtplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
c = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
c.ehlo("client.test"); c.starttls(context=ctx); c.ehlo("client.test")
token = base64.b64encode(b"\0" + sys.argv[2].encode() + b"\0" + sys.argv[3].encode()).decode()
code, text = c.docmd("AUTH PLAIN " + token)
print(code, text.decode())
"#;
    let output = sluice_testkit::python(
        script,
        &[port.to_string(), user.to_string(), password.to_string()],
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
        + &String::from_utf8_lossy(&output.stderr)
}

/// The first line the trusted (plain, auth = "none") port says.
fn trusted_greeting(port: u16) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut first = [0u8; 512];
    let n = stream.read(&mut first).unwrap_or(0);
    String::from_utf8_lossy(&first[..n]).trim().to_string()
}

fn set_status(sluice: &Sluice, admin: &str, account: i64, status: &str) {
    let (code, body) = sluice_testkit::http_json(
        sluice.ports.http,
        if status == "deleted" { "DELETE" } else { "PUT" },
        &format!("/api/v1/accounts/{account}"),
        Some(admin),
        (status != "deleted")
            .then(|| serde_json::json!({ "status": status }))
            .as_ref(),
    );
    assert!(code == 200 || code == 204, "{status}: {code} {body}");
}

#[test]
fn suspension_holds_mail_and_shuts_every_door_reactivation_opens_them_deletion_is_final() {
    // The upstream defers the first message, so it waits in the queue.
    let upstream = Upstream::start(&["--fail-first", "1"]);
    let sluice = Sluice::builder(BIN).upstream(upstream.port).start();
    let db = Db::open(&sluice);
    let admin = admin_token(&sluice);
    let (_, accounts) = sluice_testkit::http_json(
        sluice.ports.http,
        "GET",
        "/api/v1/accounts",
        Some(&admin),
        None,
    );
    let account = accounts["items"][0]["id"].as_i64().unwrap();
    let (code, credential) = api(
        &sluice,
        "POST",
        "/smtp-credentials",
        Some(serde_json::json!({ "username": "app-sender", "password": "app-sender-pw-1" })),
    );
    assert_eq!(code, 201, "{credential}");

    let sent = smtplib_send(
        sluice.ports.submission,
        "starttls",
        Some(("user@example.com", "secret")),
        "app@example.com",
        &["r@dest.test"],
        &sample_message("held"),
    );
    assert!(sent.ok, "{:?}", sent.json);
    let id = sent.message_id();
    db.wait_status(id, "deferred", 20);

    // Suspended: every door refuses, the deferred message is held.
    set_status(&sluice, &admin, account, "suspended");
    assert_eq!(db.message(id).status.as_str(), "held");
    assert!(db.events(id).contains(&"held".to_string()));
    for (user, password) in [
        ("user@example.com", "secret"),
        ("app-sender", "app-sender-pw-1"),
    ] {
        let code = auth_code(sluice.ports.submission, user, password);
        assert!(code.starts_with("535 5.7.8"), "{user}: {code}");
    }
    let greeting = trusted_greeting(sluice.ports.plain);
    assert!(greeting.starts_with("421 4.7.0"), "{greeting}");
    let (code, body) = api(&sluice, "GET", "/messages", None);
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (403, Some("account_suspended"))
    );
    let (code, body) = api(&sluice, "GET", &format!("/messages/{id}/raw"), None);
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (403, Some("account_suspended"))
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(upstream.count(), 0, "held mail is not sent");

    // Reactivated: the held message goes out at once, and every door opens again.
    set_status(&sluice, &admin, account, "active");
    let received = upstream.wait_for(1, Duration::from_secs(20));
    assert!(received[0].text().contains("Subject: held"));
    db.wait_status(id, "delivered", 20);
    for (user, password) in [
        ("user@example.com", "secret"),
        ("app-sender", "app-sender-pw-1"),
    ] {
        let code = auth_code(sluice.ports.submission, user, password);
        assert!(code.starts_with("235"), "{user}: {code}");
    }
    let greeting = trusted_greeting(sluice.ports.plain);
    assert!(greeting.starts_with("220"), "{greeting}");
    let (code, _) = api(&sluice, "GET", "/messages", None);
    assert_eq!(code, 200);

    // Deleted: refused for good, with a permanent answer on the trusted port.
    set_status(&sluice, &admin, account, "deleted");
    for (user, password) in [
        ("user@example.com", "secret"),
        ("app-sender", "app-sender-pw-1"),
    ] {
        let code = auth_code(sluice.ports.submission, user, password);
        assert!(code.starts_with("535 5.7.8"), "{user}: {code}");
    }
    let greeting = trusted_greeting(sluice.ports.plain);
    assert!(greeting.starts_with("554 5.7.1"), "{greeting}");
    let (code, body) = api(&sluice, "GET", "/messages", None);
    assert_eq!(
        (code, body["error"]["code"].as_str()),
        (401, Some("account_deleted"))
    );
    let logs = sluice.logs();
    assert!(!logs.contains("app-sender-pw-1"), "a password in the log");
}
