//! POP3 over the capture sandbox through the real binary (issue O §10): two sandboxed
//! tenants send mail over SMTP; Python's poplib reads each tenant's captured mail over STLS
//! and implicit TLS, byte for byte as stored (STAT, LIST, UIDL, TOP, RETR), DELE + QUIT
//! removes it (gone from the API too), DELE without QUIT removes nothing; a tenant never
//! sees the other's mail; a wrong password gets `-ERR [AUTH]` and no maildrop; and mpop
//! (Debian) downloads the mail over STLS and implicit TLS.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::{Value, json};
use sluice_testkit::free_port;

const TENANT_A: (&str, &str) = ("a@alpha.test", "alpha password");
const TENANT_B: (&str, &str) = ("b@beta.test", "beta-password");

struct Pop3Node {
    sluice: Sluice,
    db: Db,
    /// STLS listener, implicit TLS listener.
    listen: u16,
    tls_listen: u16,
}

fn start() -> Pop3Node {
    let (listen, tls_listen) = (free_port(), free_port());
    let sluice = Sluice::builder(BIN)
        .section(&format!(
            "[pop3]\nlisten = \"127.0.0.1:{listen}\"\ntls_listen = \"127.0.0.1:{tls_listen}\"\n\
             failed_login_delay_ms = 200"
        ))
        .start();
    let db = Db::open(&sluice);
    Pop3Node {
        sluice,
        db,
        listen,
        tls_listen,
    }
}

/// `sluice account create --sandbox` for `login` with sender domain `domain`: its API key.
fn sandboxed_account(sluice: &Sluice, login: (&str, &str), domain: &str) -> String {
    let created = sluice.cli(&[
        "account",
        "create",
        "--name",
        domain,
        "--email",
        login.0,
        "--password",
        login.1,
        "--domain",
        domain,
        "--sandbox",
    ]);
    assert!(created.status.success(), "account create: {created:?}");
    let stdout = String::from_utf8_lossy(&created.stdout).to_string();
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("api key:"))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no api key in {stdout}"))
}

/// A message with lines that need byte-stuffing, 8-bit text and several body lines.
fn message(from: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: <{from}>\r\nTo: <ann@dest.test>\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@pop3.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         first body line of {subject}\r\n.a line that starts with a dot\r\n..two dots\r\n.\r\n\
         Grüße\r\nlast line\r\n"
    )
    .into_bytes()
}

/// Sends `subject` as `login` over STARTTLS + AUTH; the id of the captured message.
fn send_captured(node: &Pop3Node, login: (&str, &str), subject: &str) -> (i64, Vec<u8>) {
    let sent = message(login.0, subject);
    let result = smtplib_send(
        node.sluice.ports.submission,
        "starttls",
        Some(login),
        login.0,
        &["ann@dest.test"],
        &sent,
    );
    assert!(result.ok, "{:?}", result.json);
    let id = result.message_id();
    node.db.wait_status(id, "captured", 20);
    (id, sent)
}

/// One poplib session (`testkit/py/pop3_client.py`); its JSON report.
fn poplib(port: u16, mode: &str, login: (&str, &str), extra: &[&str]) -> Value {
    let output = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../testkit/py/pop3_client.py"))
        .args(["--port", &port.to_string(), "--mode", mode])
        .args(["--user", login.0, "--password", login.1])
        .args(extra)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "pop3 client output {stdout:?} {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The header section and blank line of `raw`, then `lines` body lines.
fn top(raw: &[u8], lines: usize) -> Vec<u8> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut out = raw[..split].to_vec();
    for line in raw[split..].split_inclusive(|b| *b == b'\n').take(lines) {
        out.extend_from_slice(line);
    }
    out
}

fn api_status(node: &Pop3Node, key: &str, id: i64) -> u16 {
    sluice_testkit::http_json(
        node.sluice.ports.http,
        "GET",
        &format!("/api/v1/messages/{id}"),
        Some(key),
        None,
    )
    .0
}

#[test]
fn poplib_reads_a_tenants_captured_mail_byte_exact_over_stls_and_implicit_tls() {
    let node = start();
    let key_a = sandboxed_account(&node.sluice, TENANT_A, "alpha.test");
    let _key_b = sandboxed_account(&node.sluice, TENANT_B, "beta.test");
    let (first, first_sent) = send_captured(&node, TENANT_A, "first");
    let (second, second_sent) = send_captured(&node, TENANT_A, "second");
    let (other, _) = send_captured(&node, TENANT_B, "other");
    let stored = [node.db.message_bytes(first), node.db.message_bytes(second)];
    // What is stored is what was sent, after the Received header Sluice adds.
    assert_eq!(strip_received(&stored[0]), first_sent.as_slice());
    assert_eq!(strip_received(&stored[1]), second_sent.as_slice());
    let sizes = [stored[0].len() as i64, stored[1].len() as i64];

    for (mode, port) in [("stls", node.listen), ("ssl", node.tls_listen)] {
        let report = poplib(port, mode, TENANT_A, &[]);
        assert!(
            report["tls"]
                .as_str()
                .is_some_and(|v| v.starts_with("TLSv1")),
            "{mode}: {report}"
        );
        assert_eq!(report["stat"], json!([2, sizes[0] + sizes[1]]), "{mode}");
        assert_eq!(
            report["list"],
            json!([[1, sizes[0]], [2, sizes[1]]]),
            "{mode}"
        );
        assert_eq!(
            report["uidl"],
            json!([[1, first.to_string()], [2, second.to_string()]]),
            "{mode}: UIDL is the message id"
        );
        for (id, raw) in [(first, &stored[0]), (second, &stored[1])] {
            let got = &report["messages"][id.to_string()];
            assert_eq!(got["retr"], json!(hex(raw)), "{mode}: RETR of {id}");
            assert_eq!(
                got["retr_response"],
                json!(format!("+OK {} octets", raw.len()))
            );
            assert_eq!(got["top0"], json!(hex(&top(raw, 0))), "{mode}: TOP {id} 0");
            assert_eq!(got["top1"], json!(hex(&top(raw, 1))), "{mode}: TOP {id} 1");
        }
        assert!(report["quit"].as_str().unwrap().starts_with("+OK"));
    }
    let capa = poplib(node.listen, "plain", TENANT_A, &[]);
    assert_eq!(
        capa["capa_before"],
        json!([
            "AUTH-RESP-CODE",
            "IMPLEMENTATION",
            "PIPELINING",
            "RESP-CODES",
            "STLS",
            "TOP",
            "UIDL",
            "USER"
        ])
    );

    // DELE without QUIT (the connection just closes): nothing is deleted.
    let report = poplib(
        node.listen,
        "stls",
        TENANT_A,
        &["--delete", &first.to_string(), "--no-quit"],
    );
    assert_eq!(report["dele"], json!(["+OK Message 1 deleted"]));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(api_status(&node, &key_a, first), 200, "still there");

    // DELE then QUIT: gone, from POP3 and from the API; the other tenant's mail stays.
    let report = poplib(
        node.tls_listen,
        "ssl",
        TENANT_A,
        &["--delete", &first.to_string()],
    );
    assert_eq!(
        report["quit"],
        json!("+OK Sluice POP3 server signing off (1 messages left)")
    );
    assert_eq!(api_status(&node, &key_a, first), 404);
    let report = poplib(node.listen, "stls", TENANT_A, &[]);
    assert_eq!(report["stat"], json!([1, sizes[1]]));
    assert_eq!(report["uidl"], json!([[1, second.to_string()]]));
    assert_eq!(node.db.message(other).status.as_str(), "captured");
    let logs = node.sluice.logs();
    for tls in ["stls", "implicit"] {
        assert!(
            logs.lines()
                .any(|l| l.contains("pop3 listener started") && l.contains(tls)),
            "{logs}"
        );
    }
}

#[test]
fn tenants_never_see_each_others_mail_and_a_wrong_password_opens_no_maildrop() {
    let node = start();
    sandboxed_account(&node.sluice, TENANT_A, "alpha.test");
    let key_b = sandboxed_account(&node.sluice, TENANT_B, "beta.test");
    let (a1, _) = send_captured(&node, TENANT_A, "a-one");
    let (_a2, _) = send_captured(&node, TENANT_A, "a-two");
    let (b1, _) = send_captured(&node, TENANT_B, "b-one");
    let b_raw = node.db.message_bytes(b1);

    let report = poplib(
        node.listen,
        "stls",
        TENANT_B,
        &["--retr", "2", "--retr", "3"],
    );
    assert_eq!(report["stat"], json!([1, b_raw.len()]));
    assert_eq!(report["uidl"], json!([[1, b1.to_string()]]));
    assert_eq!(
        report["messages"][b1.to_string()]["retr"],
        json!(hex(&b_raw))
    );
    // A's messages are not numbered in B's maildrop, so no number reaches them.
    for number in ["2", "3"] {
        assert_eq!(
            report["retr_numbers"][number],
            json!({ "error": "-ERR No such message" }),
            "{report}"
        );
    }
    let seen: Vec<&String> = report["messages"].as_object().unwrap().keys().collect();
    assert_eq!(seen, [&b1.to_string()], "B's session read only B's mail");
    let text = report.to_string();
    for subject in ["a-one", "a-two"] {
        assert!(!text.contains(&hex(subject.as_bytes())), "{text}");
    }
    // Nor does B's API key reach A's mail.
    assert_eq!(api_status(&node, &key_b, a1), 404);

    // A wrong password: -ERR [AUTH], no maildrop, and commands need a login.
    let report = poplib(
        node.tls_listen,
        "ssl",
        (TENANT_A.0, "not the password"),
        &[],
    );
    assert!(
        report["login_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("-ERR [AUTH]")),
        "{report}"
    );
    assert_eq!(report["stat_error"], json!("-ERR Log in first"));
    assert!(report.get("stat").is_none(), "{report}");
    // A's own password still works afterwards (one failure does not block the address).
    let report = poplib(node.listen, "stls", TENANT_A, &[]);
    assert_eq!(report["stat"][0], json!(2));
    let logs = node.sluice.logs();
    assert!(
        !logs.contains(TENANT_A.1) && !logs.contains(TENANT_B.1),
        "a password reached the log"
    );
}

/// mpop (a real POP3 client from Debian) downloads into a maildir, over STLS and over
/// implicit TLS, and deletes what it downloaded (`--keep=off`).
#[test]
fn mpop_downloads_captured_mail() {
    let node = start();
    let key_a = sandboxed_account(&node.sluice, TENANT_A, "alpha.test");
    let (first, _) = send_captured(&node, TENANT_A, "mpop-one");
    let first_raw = node.db.message_bytes(first);
    let dir = tempfile::tempdir().unwrap();
    let rc = dir.path().join("mpoprc");
    std::fs::write(&rc, "").unwrap();
    // mpop refuses a configuration file others may read.
    std::fs::set_permissions(&rc, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, TENANT_A.1).unwrap();
    let mpop = |port: u16, starttls: bool, maildir: &Path| {
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).unwrap();
        }
        let output = Command::new("mpop")
            .arg(format!("--file={}", rc.display()))
            .arg("--host=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg("--timeout=20")
            .arg("--tls=on")
            .arg(format!(
                "--tls-starttls={}",
                if starttls { "on" } else { "off" }
            ))
            .arg("--tls-certcheck=off")
            .arg("--auth=user")
            .arg(format!("--user={}", TENANT_A.0))
            .arg(format!("--passwordeval=cat {}", password_file.display()))
            .arg(format!("--delivery=maildir,{}", maildir.display()))
            .arg(format!(
                "--uidls-file={}",
                dir.path().join("uidls").display()
            ))
            .arg("--only-new=off")
            .arg("--keep=off")
            .output()
            .expect("mpop runs (tests/run.sh installs it)");
        assert!(output.status.success(), "mpop: {output:?}");
        let mut files: Vec<Vec<u8>> = std::fs::read_dir(maildir.join("new"))
            .unwrap()
            .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
            .collect();
        files.sort();
        files
    };
    let downloaded = mpop(node.listen, true, &dir.path().join("stls"));
    assert_eq!(downloaded.len(), 1);
    // mpop may add its own header at the top and writes LF line ends; the rest is the
    // stored message.
    assert!(
        lf(&downloaded[0]).ends_with(&lf(&first_raw)),
        "{}",
        String::from_utf8_lossy(&downloaded[0])
    );
    assert_eq!(
        api_status(&node, &key_a, first),
        404,
        "--keep=off deleted it"
    );

    let (second, _) = send_captured(&node, TENANT_A, "mpop-two");
    let second_raw = node.db.message_bytes(second);
    let downloaded = mpop(node.tls_listen, false, &dir.path().join("implicit"));
    assert_eq!(downloaded.len(), 1);
    assert!(lf(&downloaded[0]).ends_with(&lf(&second_raw)));
    assert_eq!(api_status(&node, &key_a, second), 404);
}

/// CRLF line ends as LF.
fn lf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            continue;
        }
        out.push(*b);
    }
    out
}

/// Reads from `stream` until `want` has arrived or the peer closed; what arrived.
fn read_until(stream: &mut std::net::TcpStream, want: &str) -> String {
    use std::io::Read;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains(want) {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// The server loop: a connection over `max_connections` is refused with `[SYS/TEMP]`, an
/// idle session is closed after `idle_timeout_secs` (deleting nothing), and shutdown ends
/// an open session with `[SYS/TEMP]` and lets the node exit.
#[test]
fn connection_limit_idle_timeout_and_shutdown() {
    use std::io::Write;
    use std::net::TcpStream;
    let listen = free_port();
    let sluice = Sluice::builder(BIN)
        .section(&format!(
            "[pop3]\nlisten = \"127.0.0.1:{listen}\"\nmax_connections = 1\nidle_timeout_secs = 1"
        ))
        .start();
    let db = Db::open(&sluice);
    sandboxed_account(&sluice, TENANT_A, "alpha.test");
    let node_a = Pop3Node {
        sluice,
        db,
        listen,
        tls_listen: 0,
    };
    let (id, _) = send_captured(&node_a, TENANT_A, "idle");
    let Pop3Node { mut sluice, db, .. } = node_a;

    // Marked deleted, then idle: closed without UPDATE, the message stays.
    let mut first = TcpStream::connect(("127.0.0.1", listen)).unwrap();
    assert!(read_until(&mut first, "\r\n").starts_with("+OK"));
    first
        .write_all(format!("USER {}\r\nPASS {}\r\nDELE 1\r\n", TENANT_A.0, TENANT_A.1).as_bytes())
        .unwrap();
    let answers = read_until(&mut first, "+OK Message 1 deleted\r\n");
    assert!(answers.ends_with("+OK Message 1 deleted\r\n"), "{answers}");
    // The one slot is taken: a second connection is refused.
    let mut second = TcpStream::connect(("127.0.0.1", listen)).unwrap();
    let refused = read_until(&mut second, "\r\n");
    assert_eq!(
        refused,
        "-ERR [SYS/TEMP] Too many connections, try later\r\n"
    );
    let idle = read_until(&mut first, "closing\r\n");
    assert_eq!(idle, "-ERR Idle for too long, closing\r\n");
    assert_eq!(
        db.message(id).status.as_str(),
        "captured",
        "no QUIT, no delete"
    );

    // The slot is free again; shutdown ends the open session.
    let mut third = TcpStream::connect(("127.0.0.1", listen)).unwrap();
    assert!(read_until(&mut third, "\r\n").starts_with("+OK"));
    let status = sluice.terminate();
    assert!(status.success(), "{status:?}");
    assert_eq!(
        read_until(&mut third, "\r\n"),
        "-ERR [SYS/TEMP] Server shutting down\r\n"
    );
}
