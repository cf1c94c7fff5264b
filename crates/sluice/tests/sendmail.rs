//! `sluice sendmail` / `sendmail` (a symlink to the binary) against a running Sluice: the
//! message arrives byte for byte (Sluice's Received header aside) over the trusted
//! listener, Bcc only in the envelope; PHP's mail() and s-nail (mailx) deliver through it;
//! the exit statuses are sendmail's.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

/// The test account's newest stored message: (envelope sender, recipients, content
/// without Sluice's Received header).
fn newest(sluice: &Sluice, db: &Db) -> (i64, String, Vec<String>, Vec<u8>) {
    let (status, list) = api(sluice, "GET", "/messages?limit=500", None);
    assert_eq!(status, 200, "{list}");
    let id = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_i64())
        .max()
        .expect("a stored message");
    let record = db.message(id);
    let content = strip_received(&db.message_bytes(id)).to_vec();
    (id, record.mail_from, record.rcpt_to, content)
}

fn run(program: &Path, args: &[&str], env: &[(&str, String)], stdin: &[u8]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env_remove("SLUICE_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

/// A directory with `sendmail` -> the sluice binary.
fn symlinked(dir: &Path) -> PathBuf {
    let link = dir.join("sendmail");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    link
}

#[test]
fn sendmail_submits_byte_exact_strips_bcc_and_exits_as_sendmail_does() {
    let sluice = Sluice::builder(BIN).provider("type = \"capture\"").start();
    let db = Db::open(&sluice);
    let links = tempfile::tempdir().unwrap();
    let sendmail = symlinked(links.path());
    let server = vec![(
        "SLUICE_SENDMAIL_SERVER",
        format!("127.0.0.1:{}", sluice.ports.plain),
    )];

    // -t through the symlink: LF lines become CRLF, recipients from To/Cc/Bcc, Bcc gone.
    let input = b"From: App <app@example.com>\n\
        To: Ann <ann@dest.test>\n\
        Cc: bob@dest.test\n\
        Bcc: hidden@dest.test,\n\
        \tother@dest.test\n\
        Subject: Via -t\n\
        \n\
        Hello,\n\
        .\n\
        ..two dots\n\
        8-bit: caf\xc3\xa9\n";
    let out = run(&sendmail, &["-t", "-i"], &server, input);
    assert_eq!(code(&out), 0, "{out:?}");
    let (_, from, rcpts, content) = newest(&sluice, &db);
    assert_eq!(from, "app@example.com");
    assert_eq!(
        rcpts,
        vec![
            "ann@dest.test",
            "bob@dest.test",
            "hidden@dest.test",
            "other@dest.test"
        ]
    );
    assert_eq!(
        String::from_utf8_lossy(&content),
        "From: App <app@example.com>\r\nTo: Ann <ann@dest.test>\r\nCc: bob@dest.test\r\n\
         Subject: Via -t\r\n\r\nHello,\r\n.\r\n..two dots\r\n8-bit: caf\u{e9}\r\n"
    );

    // `sluice sendmail` with the config (its first auth = "none" listener), -f and an
    // argument recipient; without -i a lone dot ends the message.
    let config = sluice.dir_path().join("sluice.toml");
    let config = config.to_str().unwrap();
    let out = run(
        Path::new(BIN),
        &[
            "sendmail",
            "--config",
            config,
            "-oem",
            "-odi",
            "-f",
            "bounce@example.com",
            "carl@dest.test",
        ],
        &[],
        b"Subject: dot\n\nbefore\n.\nafter\n",
    );
    assert_eq!(code(&out), 0, "{out:?}");
    let (_, from, rcpts, content) = newest(&sluice, &db);
    assert_eq!(
        (from.as_str(), rcpts),
        ("bounce@example.com", vec!["carl@dest.test".to_string()])
    );
    // No From in the message: written from the envelope sender.
    assert_eq!(
        content,
        b"From: <bounce@example.com>\r\nSubject: dot\r\n\r\nbefore\r\n"
    );

    // PHP's mail() with sendmail_path pointing at the symlink.
    let php = run(
        Path::new("php"),
        &[
            "-n",
            "-d",
            &format!("sendmail_path={} -t -i", sendmail.display()),
            "-r",
            r#"exit(mail("dee@dest.test", "From PHP", "line 1\n.\nline 3", "From: app@example.com\r\nBcc: php-bcc@dest.test") ? 0 : 1);"#,
        ],
        &server,
        b"",
    );
    assert_eq!(code(&php), 0, "{php:?}");
    let (_, from, rcpts, content) = newest(&sluice, &db);
    assert_eq!(from, "app@example.com");
    assert_eq!(rcpts, vec!["dee@dest.test", "php-bcc@dest.test"]);
    assert_eq!(
        String::from_utf8_lossy(&content),
        "To: dee@dest.test\r\nSubject: From PHP\r\nFrom: app@example.com\r\n\r\nline 1\r\n.\r\nline 3\r\n"
    );

    // mailx (s-nail) with its mta set to the symlink.
    let mailx = run(
        Path::new("s-nail"),
        &[
            "-n",
            "-#",
            "-S",
            &format!("mta={}", sendmail.display()),
            "-r",
            "app@example.com",
            "-s",
            "From mailx",
            "eve@dest.test",
        ],
        &server,
        b"mailx body\nsecond line\n",
    );
    assert_eq!(code(&mailx), 0, "{mailx:?}");
    let (_, from, rcpts, content) = newest(&sluice, &db);
    assert_eq!(
        (from.as_str(), rcpts),
        ("app@example.com", vec!["eve@dest.test".to_string()])
    );
    let text = String::from_utf8_lossy(&content);
    assert!(text.contains("\r\nSubject: From mailx\r\n"), "{text}");
    assert!(
        text.ends_with("\r\n\r\nmailx body\r\nsecond line\r\n"),
        "{text}"
    );

    // Exit statuses. A refused sender (not a verified domain of the account): 77.
    let out = run(
        &sendmail,
        &["-f", "app@elsewhere.test", "ann@dest.test"],
        &server,
        b"Subject: x\n\nx\n",
    );
    assert_eq!(code(&out), 77, "{out:?}");
    // A refused recipient (suppressed): 67.
    let (status, body) = api(
        &sluice,
        "POST",
        "/suppressions",
        Some(serde_json::json!({ "address": "gone@dest.test", "reason": "manual" })),
    );
    assert!(status == 201 || status == 200, "{status} {body}");
    let out = run(
        &sendmail,
        &["gone@dest.test"],
        &server,
        b"From: app@example.com\nSubject: x\n\nx\n",
    );
    assert_eq!(code(&out), 67, "{out:?}");
    // Unsupported modes: 64, with the reason.
    let out = run(&sendmail, &["-bs"], &server, b"");
    assert_eq!(code(&out), 64, "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("-bs"),
        "{out:?}"
    );
    // No server listening: 75, try again later.
    let down = vec![(
        "SLUICE_SENDMAIL_SERVER",
        format!("127.0.0.1:{}", sluice_testkit::free_port()),
    )];
    let out = run(
        &sendmail,
        &["ann@dest.test"],
        &down,
        b"From: app@example.com\n\nx\n",
    );
    assert_eq!(code(&out), 75, "{out:?}");
    // A 4xx from the server (the account is suspended: 451 4.7.1): 75.
    let admin = admin_token(&sluice);
    let (_, accounts) = sluice_testkit::http_json(
        sluice.ports.http,
        "GET",
        "/api/v1/accounts",
        Some(&admin),
        None,
    );
    let account = accounts["items"][0]["id"].as_i64().unwrap();
    let (status, body) = sluice_testkit::http_json(
        sluice.ports.http,
        "PUT",
        &format!("/api/v1/accounts/{account}"),
        Some(&admin),
        Some(&serde_json::json!({ "status": "suspended" })),
    );
    assert_eq!(status, 200, "{body}");
    let out = run(
        &sendmail,
        &["ann@dest.test"],
        &server,
        b"From: app@example.com\n\nx\n",
    );
    assert_eq!(code(&out), 75, "{out:?}");
}
