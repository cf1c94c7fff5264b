//! The panel's capture inbox is per tenant, through the real binary: two accounts in
//! sandbox mode, each with an owner logged into the panel over HTTP. Each one's `/inbox`
//! lists only its own captured mail; another tenant's message by id (`/inbox?id=`, the
//! message fragment, an attachment image, its checks, its account's sandbox settings)
//! answers 404 and shows nothing of it; and
//! `/inbox/stream` (server-sent events) carries only its own account's mail, the mail
//! there was and the mail that arrives while it is open, never the other tenant's. The
//! forms without scripts (read mark, delete, delete all) touch only the tenant's own mail;
//! synthetic feedback, tags and sandbox settings naming the other's answer 404.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

const PASSWORD: &str = "inbox-owner-password";

/// A tenant: its account's API key and its owner's panel session cookie.
struct Tenant {
    key: String,
    cookie: String,
    account: i64,
}

/// One HTTP/1.1 request to the panel: (status, head, body), read to its end.
fn panel(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("the panel listens");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// The value of cookie `name` set in a response head.
fn set_cookie(head: &str, name: &str) -> Option<String> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .find_map(|(_, v)| {
            v.trim()
                .strip_prefix(&format!("{name}="))
                .map(|v| v.split(';').next().unwrap_or("").to_string())
        })
}

/// Logs into the panel with the login form: the session cookie.
fn panel_login(port: u16, email: &str) -> String {
    let (status, head, form) = panel(port, "GET", "/login", &[], "");
    assert_eq!(status, 200, "{head}");
    let prelogin = set_cookie(&head, "sluice_prelogin").expect("a pre-login cookie");
    let csrf = form
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the login form's CSRF token");
    let body = format!(
        "csrf={csrf}&email={}&password={PASSWORD}",
        email.replace('@', "%40")
    );
    let cookie = format!("sluice_prelogin={prelogin}");
    let (status, head, _) = panel(
        port,
        "POST",
        "/login",
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &body,
    );
    assert_eq!(status, 303, "{head}");
    set_cookie(&head, "sluice_session").expect("a session cookie")
}

/// A sandboxed account for `domain` with an owner who logged into the panel.
fn tenant(sluice: &Sluice, admin: &str, domain: &str) -> Tenant {
    let created = sluice.cli(&[
        "account",
        "create",
        "--name",
        domain,
        "--email",
        &format!("smtp@{domain}"),
        "--password",
        "smtp-password-1",
        "--domain",
        domain,
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
    let account: i64 = field("account id:").parse().unwrap();
    let owner = format!("owner@{domain}");
    let (status, user) = sluice_testkit::http_json(
        sluice.ports.http,
        "POST",
        "/api/v1/users",
        Some(admin),
        Some(
            &json!({ "email": owner, "password": PASSWORD, "role": "owner", "account_id": account }),
        ),
    );
    assert_eq!(status, 201, "{user}");
    Tenant {
        key: field("api key:"),
        cookie: panel_login(sluice.ports.panel, &owner),
        account,
    }
}

/// Sends a message as `tenant` and waits until it is captured: its id.
fn send_captured(sluice: &Sluice, tenant: &Tenant, domain: &str, subject: &str) -> i64 {
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGP4z8AARAwQCgAf7gP9i18U1AAAAABJRU5ErkJggg==";
    let (status, sent) = sluice_testkit::http_json(
        sluice.ports.http,
        "POST",
        "/api/v1/send",
        Some(&tenant.key),
        Some(
            &json!({ "from": format!("app@{domain}"), "to": "ann@dest.test", "subject": subject,
            "text": format!("{subject} body"),
            "attachments": [{ "filename": "dot.png", "content_type": "image/png", "content": png }] }),
        ),
    );
    assert_eq!(status, 202, "{sent}");
    let id = sent["id"].as_i64().unwrap();
    let captured = wait_until(Duration::from_secs(20), || {
        let (_, m) = sluice_testkit::http_json(
            sluice.ports.http,
            "GET",
            &format!("/api/v1/messages/{id}"),
            Some(&tenant.key),
            None,
        );
        (m["status"] == "captured").then_some(())
    });
    assert!(captured.is_some(), "{subject} was not captured");
    id
}

/// Reads `path` (a stream) as `cookie`, with `extra` header lines, until `done` holds for what arrived or `limit` passes.
fn read_stream(
    port: u16,
    cookie: &str,
    extra: &str,
    path: &str,
    limit: Duration,
    done: impl Fn(&str) -> bool,
) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\
         Cookie: sluice_session={cookie}\r\n{extra}Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut buffer = [0u8; 8192];
    while started.elapsed() < limit && !done(&String::from_utf8_lossy(&seen)) {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buffer[..n]),
            Err(_) => continue,
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[test]
fn a_tenants_inbox_and_stream_show_only_its_own_mail() {
    let sluice = Sluice::builder(BIN).start();
    let admin = admin_token(&sluice);
    let alpha = tenant(&sluice, &admin, "alpha.test");
    let beta = tenant(&sluice, &admin, "beta.test");
    let alpha_first = send_captured(&sluice, &alpha, "alpha.test", "Alpha first");
    let beta_first = send_captured(&sluice, &beta, "beta.test", "Beta first");
    let port = sluice.ports.panel;
    let as_alpha = format!("sluice_session={}", alpha.cookie);
    let as_beta = format!("sluice_session={}", beta.cookie);

    // The list: each its own.
    let (status, _, page) = panel(port, "GET", "/inbox", &[("Cookie", &as_alpha)], "");
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Alpha first") && page.contains(&format!("data-id=\"{alpha_first}\"")),
        "{page}"
    );
    assert!(
        !page.contains("Beta first") && !page.contains("beta.test"),
        "alpha's inbox shows beta's mail: {page}"
    );
    let (status, _, page) = panel(port, "GET", "/inbox", &[("Cookie", &as_beta)], "");
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Beta first") && !page.contains("Alpha first"),
        "{page}"
    );

    // Alpha's own message opens in all three panes, with its attachment's thumbnail.
    let (status, _, page) = panel(
        port,
        "GET",
        &format!("/inbox?id={alpha_first}"),
        &[("Cookie", &as_alpha)],
        "",
    );
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("class=\"message-subject\">Alpha first<")
            && page.contains("Alpha first body"),
        "{page}"
    );
    assert!(
        page.contains(&format!("src=\"/inbox/messages/{alpha_first}/images/0\"")),
        "{page}"
    );
    let (status, head, _) = panel(
        port,
        "GET",
        &format!("/inbox/messages/{alpha_first}/images/0"),
        &[("Cookie", &as_alpha)],
        "",
    );
    assert_eq!(status, 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: image/png"),
        "{head}"
    );

    // Beta's message by id, any way: 404, nothing of it shown.
    for path in [
        format!("/inbox?id={beta_first}"),
        format!("/inbox?id={beta_first}&checks=1"),
        format!("/inbox/messages/{beta_first}"),
        format!("/inbox/messages/{beta_first}/images/0"),
        format!("/inbox/messages/{beta_first}/checks"),
        format!("/inbox/settings?account_id={}", beta.account),
    ] {
        let (status, _, page) = panel(port, "GET", &path, &[("Cookie", &as_alpha)], "");
        assert_eq!(status, 404, "{path}: {page}");
        assert!(!page.contains("Beta first"), "{path}: {page}");
    }

    // The stream from the start: alpha's mail, the mail there was and the mail that comes
    // while it is open; never beta's, sent at the same time.
    let sender = {
        let (http, alpha_key, beta_key) = (sluice.ports.http, alpha.key.clone(), beta.key.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(1));
            for (key, domain, subject) in [
                (&beta_key, "beta.test", "Beta later"),
                (&alpha_key, "alpha.test", "Alpha later"),
            ] {
                let (status, sent) = sluice_testkit::http_json(
                    http,
                    "POST",
                    "/api/v1/send",
                    Some(key),
                    Some(
                        &json!({ "from": format!("app@{domain}"), "to": "ann@dest.test", "subject": subject, "text": "live" }),
                    ),
                );
                assert_eq!(status, 202, "{sent}");
            }
        })
    };
    let events = read_stream(
        port,
        &alpha.cookie,
        "",
        "/inbox/stream?after=0",
        Duration::from_secs(30),
        |seen| seen.contains("Alpha later"),
    );
    sender.join().unwrap();
    assert!(events.contains("text/event-stream"), "{events}");
    assert!(
        events.contains(&format!("id: {alpha_first}")) && events.contains("Alpha first"),
        "{events}"
    );
    assert!(
        events.contains("Alpha later"),
        "the live message never came: {events}"
    );
    assert!(
        !events.contains("Beta") && !events.contains("beta.test"),
        "alpha's stream carried beta's mail: {events}"
    );

    // Beta's stream, resumed after its first message as a reconnect does (Last-Event-ID).
    let resume = format!("Last-Event-ID: {beta_first}\r\n");
    let events = read_stream(
        port,
        &beta.cookie,
        &resume,
        "/inbox/stream",
        Duration::from_secs(20),
        |seen| seen.contains("Beta later"),
    );
    assert!(events.contains("Beta later"), "{events}");
    assert!(
        !events.contains("Beta first"),
        "a reconnect resumes after Last-Event-ID: {events}"
    );
    assert!(
        !events.contains("Alpha"),
        "beta's stream carried alpha's mail: {events}"
    );

    // The forms (no script): alpha's read mark, delete and delete all touch only alpha's
    // mail, even when they name beta's message.
    let (_, _, page) = panel(port, "GET", "/inbox", &[("Cookie", &as_alpha)], "");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the inbox's CSRF token")
        .to_string();
    let form = [
        ("Cookie", as_alpha.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    let (status, head, _) = panel(
        port,
        "POST",
        "/inbox/read",
        &form,
        &format!("csrf={csrf}&id={alpha_first}&read=1"),
    );
    assert_eq!(status, 303, "{head}");
    let (_, _, page) = panel(port, "GET", "/inbox", &[("Cookie", &as_alpha)], "");
    assert!(
        page.contains(&format!(
            "<li class=\"inbox-row\" data-id=\"{alpha_first}\">"
        )),
        "marked read: {page}"
    );
    let (status, head, _) = panel(
        port,
        "POST",
        "/inbox/delete",
        &form,
        &format!("csrf={csrf}&id={beta_first}"),
    );
    assert_eq!(status, 303, "{head}");
    // Synthetic feedback, tags and sandbox settings naming beta's: 404, nothing changes.
    for (path, body) in [
        (
            "/inbox/feedback",
            format!("csrf={csrf}&id={beta_first}&kind=bounced"),
        ),
        (
            "/inbox/tags",
            format!("csrf={csrf}&id={beta_first}&tags=alpha-was-here"),
        ),
        (
            "/inbox/settings",
            format!(
                "csrf={csrf}&account_id={}&capture_retention_count=1",
                beta.account
            ),
        ),
    ] {
        let (status, _, page) = panel(port, "POST", path, &form, &body);
        assert_eq!(status, 404, "{path}: {page}");
    }
    let (_, beta_view) = sluice_testkit::http_json(
        sluice.ports.http,
        "GET",
        &format!("/api/v1/messages/{beta_first}"),
        Some(&beta.key),
        None,
    );
    assert_eq!(beta_view["tags"], json!([]), "{beta_view}");
    assert!(!beta_view.to_string().contains("bounced"), "{beta_view}");
    let (_, suppressions) = sluice_testkit::http_json(
        sluice.ports.http,
        "GET",
        "/api/v1/suppressions",
        Some(&beta.key),
        None,
    );
    assert!(
        !suppressions.to_string().contains("ann@dest.test"),
        "{suppressions}"
    );
    let (status, head, _) = panel(
        port,
        "POST",
        "/inbox/delete-all",
        &form,
        &format!("csrf={csrf}"),
    );
    assert_eq!(status, 303, "{head}");
    let (_, _, page) = panel(port, "GET", "/inbox", &[("Cookie", &as_alpha)], "");
    assert!(
        !page.contains("Alpha first") && !page.contains("Alpha later"),
        "alpha's mail is deleted: {page}"
    );
    let (_, _, page) = panel(port, "GET", "/inbox", &[("Cookie", &as_beta)], "");
    assert!(
        page.contains("Beta first") && page.contains("Beta later"),
        "beta's mail stays: {page}"
    );
    let (status, _, _) = panel(
        port,
        "POST",
        "/inbox/delete-all",
        &[("Cookie", &as_alpha)],
        "",
    );
    assert_eq!(status, 403, "a form without the CSRF token is refused");

    // Without a session there is no stream.
    let (status, head, _) = panel(port, "GET", "/inbox/stream", &[], "");
    assert!(status == 303 && head.contains("/login"), "{head}");

    // The sandbox settings: an owner edits them; a member sees them read-only (the API
    // would refuse the save), and a save sent anyway changes nothing.
    let (status, _, page) = panel(port, "GET", "/inbox/settings", &[("Cookie", &as_alpha)], "");
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("<button type=\"submit\">Save</button>"),
        "{page}"
    );
    assert!(!page.contains("Read-only"), "{page}");
    let (status, member) = sluice_testkit::http_json(
        sluice.ports.http,
        "POST",
        "/api/v1/users",
        Some(&admin),
        Some(
            &json!({ "email": "member@alpha.test", "password": PASSWORD, "role": "member",
            "account_id": alpha.account }),
        ),
    );
    assert_eq!(status, 201, "{member}");
    let as_member = format!("sluice_session={}", panel_login(port, "member@alpha.test"));
    let (status, _, page) = panel(
        port,
        "GET",
        "/inbox/settings",
        &[("Cookie", &as_member)],
        "",
    );
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Read-only") && page.contains("<fieldset class=\"plain\" disabled>"),
        "{page}"
    );
    assert!(!page.contains(">Save</button>"), "{page}");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the settings form's CSRF token");
    let (status, _, _) = panel(
        port,
        "POST",
        "/inbox/settings",
        &[
            ("Cookie", &as_member),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &format!(
            "csrf={csrf}&account_id={}&capture_retention_count=1",
            alpha.account
        ),
    );
    assert_eq!(status, 403);
    let (_, account) = sluice_testkit::http_json(
        sluice.ports.http,
        "GET",
        &format!("/api/v1/accounts/{}", alpha.account),
        Some(&alpha.key),
        None,
    );
    assert_eq!(account["capture_retention_count"], json!(null), "{account}");
}
