//! Who may send, and the limits, over real sockets.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;

/// Python drives a session step by step and prints each reply code.
fn smtplib_steps(port: u16, mode: &str, steps: &str) -> String {
    let script = format!(
        r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
port = int(sys.argv[1])
try:
    c = smtplib.SMTP_SSL("127.0.0.1", port, timeout=10, context=ctx) if "{mode}" == "implicit" else smtplib.SMTP("127.0.0.1", port, timeout=10)
    print("connect", c.ehlo("client.test")[0])
    if "{mode}" == "starttls":
        print("starttls", c.starttls(context=ctx)[0]); c.ehlo("client.test")
{steps}
except smtplib.SMTPConnectError as e:
    print("connect", e.smtp_code, e.smtp_error.decode())
except smtplib.SMTPServerDisconnected as e:
    print("disconnected")
"#
    );
    let output = sluice_testkit::python(&script, &[port.to_string()]);
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

#[test]
fn no_open_relay() {
    let sluice = Sluice::builder(BIN)
        .smtp("trusted_networks = [\"10.0.0.0/8\"]")
        .start();
    let steps = r#"
    print("mail", c.docmd("MAIL FROM:<app@example.com>")[0])
    print("rcpt", c.docmd("RCPT TO:<victim@elsewhere.test>")[0])
    print("data", c.docmd("DATA")[0])
"#;
    // Submission port, TLS up but no AUTH.
    let out = smtplib_steps(sluice.ports.submission, "starttls", steps);
    assert!(out.contains("mail 530\nrcpt 503\ndata 503"), "{out}");
    // Submission port, plaintext: not even AUTH is offered.
    let out = smtplib_steps(sluice.ports.submission, "plain", steps);
    assert!(out.contains("mail 530"), "{out}");
    // Implicit TLS without AUTH.
    let out = smtplib_steps(sluice.ports.implicit, "implicit", steps);
    assert!(out.contains("mail 530\nrcpt 503\ndata 503"), "{out}");
    // The plain port from an address outside trusted_networks: 554 at connect.
    let mut stream = TcpStream::connect(("127.0.0.1", sluice.ports.plain)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut greeting = String::new();
    stream.read_to_string(&mut greeting).unwrap();
    assert!(greeting.starts_with("554 5.7.1"), "{greeting}");
}

#[test]
fn trusted_network_sends_without_auth_but_only_its_domains() {
    let upstream = Upstream::start(&[]);
    let sluice = Sluice::builder(BIN).upstream(upstream.port).start();
    let result = smtplib_send(
        sluice.ports.plain,
        "plain",
        None,
        "app@example.com",
        &["r@dest.test"],
        &sample_message("trusted"),
    );
    assert!(result.ok, "{:?}", result.json);
    let refused = smtplib_send(
        sluice.ports.plain,
        "plain",
        None,
        "app@evil.test",
        &["r@dest.test"],
        &sample_message("x"),
    );
    assert_eq!(refused.code, 550, "{:?}", refused.json);
    let received = upstream.wait_for(1, Duration::from_secs(20));
    assert!(received[0].text().contains("with ESMTP id"));
}

#[test]
fn auth_failures_are_limited_per_address_across_connections() {
    let sluice = Sluice::builder(BIN).start();
    let steps = r#"
    import base64
    for pw in ["wrong1", "wrong2", "wrong3"]:
        token = base64.b64encode(b"\0user@example.com\0" + pw.encode()).decode()
        print("login", c.docmd("AUTH PLAIN " + token)[0])
"#;
    let out = smtplib_steps(sluice.ports.submission, "starttls", steps);
    assert!(out.contains("login 535\nlogin 535\nlogin 421"), "{out}");
    // A new connection with the right password is still refused: the address is blocked.
    let steps = r#"
    import base64
    token = base64.b64encode(b"\0user@example.com\0secret").decode()
    print("login", c.docmd("AUTH PLAIN " + token)[0])
"#;
    let out = smtplib_steps(sluice.ports.implicit, "implicit", steps);
    assert!(out.contains("login 421"), "{out}");
    let logs = sluice.logs();
    assert!(
        !logs.contains("wrong1") && !logs.contains("secret"),
        "passwords in the log"
    );
}

#[test]
fn max_connections_gets_421_at_connect() {
    let sluice = Sluice::builder(BIN).smtp("max_connections = 2").start();
    let mut held = Vec::new();
    for _ in 0..2 {
        // The start-up probe's session may still hold a slot for a moment.
        let stream = wait_until(Duration::from_secs(10), || {
            let stream = TcpStream::connect(("127.0.0.1", sluice.ports.submission)).ok()?;
            let mut line = String::new();
            BufReader::new(stream.try_clone().ok()?)
                .read_line(&mut line)
                .ok()?;
            line.starts_with("220 ").then_some(stream)
        });
        held.push(stream.expect("a free connection slot"));
    }
    let mut third = TcpStream::connect(("127.0.0.1", sluice.ports.submission)).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reply = String::new();
    third.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("421 4.7.0"), "{reply}");
    // Free one: a new client gets in.
    let mut first = held.remove(0);
    first.write_all(b"QUIT\r\n").unwrap();
    let mut rest = String::new();
    let _ = first.read_to_string(&mut rest);
    let ok = wait_until(Duration::from_secs(5), || {
        let stream = TcpStream::connect(("127.0.0.1", sluice.ports.submission)).ok()?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).ok()?;
        line.starts_with("220 ").then_some(())
    });
    assert!(ok.is_some());
}

#[test]
fn smuggling_over_a_real_socket_never_yields_a_second_message() {
    let upstream = Upstream::start(&[]);
    let sluice = Sluice::builder(BIN).upstream(upstream.port).start();
    let out = sluice.raw_session(
        sluice.ports.plain,
        b"EHLO x\r\nMAIL FROM:<app@example.com>\r\nRCPT TO:<r@dest.test>\r\nDATA\r\n\
          Subject: one\r\n\r\nfirst\n.\nMAIL FROM:<app@example.com>\r\nRCPT TO:<victim@dest.test>\r\n\
          DATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\n",
    );
    assert!(out.contains("550 5.5.2"), "{out}");
    let finals: Vec<&str> = out.lines().filter(|l| l.starts_with("250 ")).collect();
    assert_eq!(
        finals,
        vec![
            "250 CHUNKING",
            "250 2.1.0 Sender OK",
            "250 2.1.5 Recipient OK"
        ],
        "{out}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(upstream.messages().is_empty());
}

#[test]
fn idle_and_tls_handshake_timeouts_disconnect() {
    let sluice = Sluice::builder(BIN)
        .smtp("idle_timeout_secs = 1")
        .smtp("tls_handshake_timeout_secs = 1")
        .start();
    // Idle after the greeting: 421 4.4.2 and the connection closes.
    let started = std::time::Instant::now();
    let out = sluice.raw_session(sluice.ports.submission, b"EHLO x\r\n");
    assert!(out.contains("421 4.4.2"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(8));
    // Implicit TLS port, no ClientHello: closed without a word.
    let started = std::time::Instant::now();
    let out = sluice.raw_session(sluice.ports.implicit, b"");
    assert_eq!(out, "");
    assert!(started.elapsed() < Duration::from_secs(8));
    // Every SMTP log line carries its session id.
    let logs = sluice.logs();
    let smtp_lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("sluice_smtp::server") && !l.contains("listener"))
        .collect();
    assert!(!smtp_lines.is_empty());
    for line in smtp_lines {
        assert!(line.contains("session="), "{line}");
    }
}

/// The API manages what SMTP enforces: a credential made through the API logs in over
/// SMTP until it is revoked, and the monthly limit set through the API refuses with 452.
#[test]
fn api_managed_smtp_credentials_and_monthly_limit() {
    use serde_json::json;
    use sluice_testkit::http_json;
    let sluice = Sluice::builder(BIN).start();
    let http = sluice.ports.http;
    let admin = admin_token(&sluice);
    let (_, accounts) = http_json(http, "GET", "/api/v1/accounts", Some(&admin), None);
    let account = accounts["items"][0]["id"].as_i64().unwrap();

    let (status, credential) = http_json(
        http,
        "POST",
        "/api/v1/smtp-credentials",
        Some(&admin),
        Some(
            &json!({ "account_id": account, "username": "billing-app", "password": "billing-pass-1" }),
        ),
    );
    assert_eq!(status, 201, "{credential}");
    let login = Some(("billing-app", "billing-pass-1"));
    let sent = smtplib_send(
        sluice.ports.submission,
        "starttls",
        login,
        "app@example.com",
        &["r@dest.test"],
        &sample_message("cred"),
    );
    assert!(sent.ok, "{:?}", sent.json);

    let (status, _) = http_json(
        http,
        "PUT",
        &format!("/api/v1/accounts/{account}"),
        Some(&admin),
        Some(&json!({ "monthly_limit": 2 })),
    );
    assert_eq!(status, 200);
    let second = smtplib_send(
        sluice.ports.submission,
        "starttls",
        login,
        "app@example.com",
        &["r@dest.test"],
        &sample_message("two"),
    );
    assert!(second.ok, "{:?}", second.json);
    let third = smtplib_send(
        sluice.ports.submission,
        "starttls",
        login,
        "app@example.com",
        &["r@dest.test"],
        &sample_message("three"),
    );
    assert_eq!(third.code, 452, "{:?}", third.json);
    assert!(third.message.starts_with("4.2.2"), "{}", third.message);

    let id = credential["id"].as_i64().unwrap();
    let (status, _) = http_json(
        http,
        "DELETE",
        &format!("/api/v1/smtp-credentials/{id}?account_id={account}"),
        Some(&admin),
        None,
    );
    assert_eq!(status, 204);
    let revoked = smtplib_send(
        sluice.ports.submission,
        "starttls",
        login,
        "app@example.com",
        &["r@dest.test"],
        &sample_message("x"),
    );
    assert_eq!(revoked.code, 535, "{:?}", revoked.json);
    // Every change is in the audit log with who, what and from where.
    let (_, audit) = http_json(http, "GET", "/api/v1/audit-logs", Some(&admin), None);
    let entries = audit["items"].as_array().unwrap();
    let revoke = entries
        .iter()
        .find(|e| e["action"] == "revoke" && e["target_type"] == "smtp_credential")
        .expect("the revocation is audited");
    assert_eq!(revoke["source_ip"], "127.0.0.1");
    assert!(revoke["actor"].as_str().unwrap().starts_with("user:"));
    assert!(!audit.to_string().contains("billing-pass-1"));
}

#[test]
fn admin_sees_and_closes_live_smtp_sessions() {
    use sluice_testkit::http_json;
    let sluice = Sluice::builder(BIN).start();
    let http = sluice.ports.http;
    let admin = admin_token(&sluice);

    let stream = TcpStream::connect(("127.0.0.1", sluice.ports.plain)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    writer
        .write_all(b"EHLO x\r\nMAIL FROM:<app@example.com>\r\nRCPT TO:<r@dest.test>\r\n")
        .unwrap();
    let listed = wait_until(Duration::from_secs(5), || {
        let (_, list) = http_json(http, "GET", "/api/v1/smtp/connections", Some(&admin), None);
        list.as_array()?
            .iter()
            .find(|c| c["mail_from"] == "app@example.com" && c["recipients"] == 1)
            .cloned()
    })
    .expect("the session is listed with its transaction");
    assert_eq!(listed["tls"], false);
    let id = listed["id"].as_str().unwrap();
    let (status, _) = http_json(
        http,
        "DELETE",
        &format!("/api/v1/smtp/connections/{id}"),
        Some(&admin),
        None,
    );
    assert_eq!(status, 204);
    let mut rest = String::new();
    let _ = reader.read_to_string(&mut rest);
    assert!(rest.contains("421 4.3.2"), "{rest}");
    let gone = wait_until(Duration::from_secs(5), || {
        let (_, list) = http_json(http, "GET", "/api/v1/smtp/connections", Some(&admin), None);
        list.as_array()?.iter().all(|c| c["id"] != id).then_some(())
    });
    assert!(gone.is_some());
}

#[test]
fn a_suppressed_recipient_gets_550_5_1_1_on_its_rcpt() {
    use serde_json::json;
    let upstream = Upstream::start(&[]);
    let sluice = Sluice::builder(BIN).upstream(upstream.port).start();
    let (status, body) = sluice_testkit::http_json(
        sluice.ports.http,
        "POST",
        "/api/v1/suppressions",
        Some(&sluice.api_key),
        Some(&json!({ "address": "bounced@dest.test", "reason": "hard_bounce" })),
    );
    assert_eq!(status, 201, "{body}");
    let steps = r#"
print("mail", c.docmd("MAIL FROM:<app@example.com>")[0])
print("rcpt1", c.docmd("RCPT TO:<bounced@dest.test>")[0])
print("rcpt2", c.docmd("RCPT TO:<fine@dest.test>")[0])
"#;
    let script = format!(
        r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
c = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10)
c.ehlo("x"); c.starttls(context=ctx); c.ehlo("x"); c.login("user@example.com", "secret")
{steps}
"#
    );
    let out = sluice_testkit::python(&script, &[sluice.ports.submission.to_string()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("mail 250\nrcpt1 550\nrcpt2 250"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The message to both goes only to the one that is not suppressed.
    let sent = smtplib_send(
        sluice.ports.submission,
        "starttls",
        USER,
        "app@example.com",
        &["bounced@dest.test", "fine@dest.test"],
        &sample_message("supp"),
    );
    assert!(sent.ok, "{:?}", sent.json);
    assert_eq!(sent.json["refused"]["bounced@dest.test"][0], 550);
    let received = upstream.wait_for(1, Duration::from_secs(20));
    assert_eq!(received[0].rcpt_tos(), vec!["fine@dest.test"]);
}

/// A client that writes `prefix`, then `drip` one byte every 400 ms, until the server closes
/// (or 15 s pass). Returns what the server said after the greeting and how long it took.
fn trickle(port: u16, prefix: &[u8], drip: u8) -> (String, Duration) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut greeting = String::new();
    reader.read_line(&mut greeting).unwrap();
    assert!(greeting.starts_with("220"), "{greeting}");
    let started = std::time::Instant::now();
    stream.write_all(prefix).unwrap();
    let mut said = Vec::new();
    while started.elapsed() < Duration::from_secs(15) {
        let mut buf = [0u8; 512];
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => said.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        if stream.write_all(&[drip]).is_err() {
            break;
        }
    }
    (
        String::from_utf8_lossy(&said).into_owned(),
        started.elapsed(),
    )
}

/// Slowloris: bytes that never finish a command, or message content at a trickle, do not
/// hold a connection slot past the command deadline (idle_timeout_secs from the first byte)
/// or the minimum data rate.
#[test]
fn trickling_clients_are_cut_off_and_free_their_slots() {
    let sluice = Sluice::builder(BIN)
        .smtp("idle_timeout_secs = 2")
        .smtp("max_connections = 2")
        .smtp("min_data_rate = 500")
        .start();
    let port = sluice.ports.plain;
    // The harness's readiness probe may still hold a slot for a moment.
    std::thread::sleep(Duration::from_millis(500));
    // Both slots taken by trickling clients: one inside a command, one inside DATA.
    let command = std::thread::spawn(move || trickle(port, b"EHLO ", b'a'));
    let data = std::thread::spawn(move || {
        trickle(
            port,
            b"EHLO x\r\nMAIL FROM:<app@example.com>\r\nRCPT TO:<r@dest.test>\r\nDATA\r\n",
            b'b',
        )
    });
    let (said, took) = command.join().unwrap();
    assert!(said.contains("421 4.4.2"), "{said}");
    assert!(
        took < Duration::from_secs(6),
        "the command trickle held on for {took:?}"
    );
    let (said, took) = data.join().unwrap();
    assert!(said.contains("354"), "{said}");
    assert!(said.contains("421 4.4.2"), "{said}");
    assert!(
        took < Duration::from_secs(8),
        "the content trickle held on for {took:?}"
    );
    // The slots are free again: a normal client gets in and sends.
    let out = sluice.raw_session(
        port,
        b"EHLO x\r\nMAIL FROM:<app@example.com>\r\nRCPT TO:<r@dest.test>\r\nDATA\r\nSubject: hi\r\n\r\nok\r\n.\r\nQUIT\r\n",
    );
    assert!(out.starts_with("220"), "{out}");
    assert!(out.contains("queued"), "{out}");
}

/// A keep-alive client whose POST is refused before its body is read (401) is told
/// `Connection: close`, so its next request goes on a new connection instead of meeting a
/// socket the server has closed ("remote end closed connection without response").
#[test]
fn a_refused_post_says_connection_close_and_keep_alive_clients_carry_on() {
    let sluice = Sluice::builder(BIN).start();
    let script = r#"
import http.client, json, sys
port = int(sys.argv[1])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
body = json.dumps({"from": "app@example.com", "to": ["r@dest.test"], "subject": "x", "text": "y" * 20000})
for i in range(30):
    conn.request("POST", "/api/v1/send", body=body,
                 headers={"authorization": "Bearer wrong", "content-type": "application/json"})
    r = conn.getresponse(); r.read()
    assert r.status == 401, r.status
    assert (r.getheader("connection") or "").lower() == "close", dict(r.getheaders())
    conn.request("GET", "/healthz")
    r = conn.getresponse(); r.read()
    assert r.status == 200, r.status
    assert r.getheader("connection") is None, dict(r.getheaders())
print("ok")
"#;
    let out = sluice_testkit::python(script, &[sluice.ports.http.to_string()]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.trim() == "ok",
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
