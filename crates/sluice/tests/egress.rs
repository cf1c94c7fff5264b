//! The egress policy end to end, on the real binary with a config that does NOT open
//! loopback: a tenant's webhook endpoint, `sendgrid` base URL, `smtp` host and provider
//! test aimed at a loopback listener (literal, IPv4-mapped, and DNS names served by a local
//! DNS server) are refused when saved and again when connecting, and the listener sees no
//! connection at all. Then `egress.allow` opens loopback and the same destinations work.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::{BIN, Db, api};
use serde_json::{Value, json};
use sluice_testkit::esp::{EspFake, PyServer};
use sluice_testkit::{DnsServer, Sluice, Upstream, http_json, wait_until};

const SECRET: &str = "endpoint-secret-0123456789";

/// A loopback listener that counts the connections it gets and never answers.
struct Listener {
    socket: TcpListener,
    port: u16,
}

impl Listener {
    fn start() -> Listener {
        let socket = TcpListener::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let port = socket.local_addr().unwrap().port();
        Listener { socket, port }
    }

    fn connections(&self) -> usize {
        std::iter::from_fn(|| self.socket.accept().ok()).count()
    }
}

fn assert_refused(answer: &(u16, Value), field: &str, what: &str) {
    let (status, body) = answer;
    assert_eq!(*status, 422, "{what}: {body}");
    assert_eq!(
        body["error"]["code"], "destination_refused",
        "{what}: {body}"
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("{field}: ")),
        "{what}: {message}"
    );
    assert!(body["error"]["request_id"].is_string(), "{body}");
}

fn created(answer: (u16, Value), what: &str) -> i64 {
    let (status, body) = answer;
    assert_eq!(status, 201, "{what}: {body}");
    body["id"].as_i64().unwrap()
}

fn send(sluice: &Sluice, subject: &str) -> i64 {
    let (status, body) = api(
        sluice,
        "POST",
        "/send",
        Some(
            json!({ "from": "app@example.com", "to": "ann@dest.test", "subject": subject,
                     "text": "hello" }),
        ),
    );
    assert_eq!(status, 202, "{body}");
    body["id"].as_i64().unwrap()
}

#[test]
fn tenants_destinations_on_loopback_are_refused_until_the_operator_opens_them() {
    let dns = DnsServer::start();
    dns.publish("loop.egress.test", "A", &["127.0.0.1"]);
    dns.publish("mixed.egress.test", "A", &["93.184.216.34", "127.0.0.1"]);
    let listener = Listener::start();
    let port = listener.port;
    let mut sluice = Sluice::builder(BIN)
        .egress_allow(&[])
        .section(&format!("[dns]\nnameservers = [\"{}\"]", dns.addr()))
        .env("SLUICE_EVENT_WEBHOOKS__POLL_INTERVAL_MS", "100")
        .start();
    let db = Db::open(&sluice);
    let call = |method: &str, path: &str, body: Value| api(&sluice, method, path, Some(body));

    // Refused when saved: every way of writing the listener's address.
    for host in [
        "127.0.0.1",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[0:0:0:0:0:ffff:127.0.0.1]",
        "[::127.0.0.1]",
        "loop.egress.test",
        "mixed.egress.test",
    ] {
        let url = format!("http://{host}:{port}/hook");
        let hook = call(
            "POST",
            "/webhook-endpoints",
            json!({ "url": url, "events": ["deferred"] }),
        );
        assert_refused(&hook, "url", &url);
        let sendgrid = call(
            "POST",
            "/providers",
            json!({ "name": "sg", "provider_type": "sendgrid",
                    "config": { "api_key": "SG.k", "base_url": format!("http://{host}:{port}") } }),
        );
        assert_refused(&sendgrid, "config.base_url", host);
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let smtp = call(
            "POST",
            "/providers",
            json!({ "name": "relay", "provider_type": "smtp",
                    "config": { "host": bare, "port": port, "security": "none" } }),
        );
        assert_refused(&smtp, "config.host", bare);
    }

    // Refused when connecting: a name that did not resolve when it was saved, then
    // pointed at the listener.
    let late = format!("late.egress.test:{port}");
    let hook = created(
        call(
            "POST",
            "/webhook-endpoints",
            json!({ "url": format!("http://{late}/hook"), "events": ["deferred", "failed"],
                    "secret": SECRET }),
        ),
        "webhook saved while unresolvable",
    );
    created(
        call(
            "POST",
            "/providers",
            json!({ "name": "sg-late", "provider_type": "sendgrid",
                    "config": { "api_key": "SG.k", "base_url": format!("http://{late}"),
                                "timeout_secs": 2 } }),
        ),
        "sendgrid saved while unresolvable",
    );
    let relay = created(
        call(
            "POST",
            "/providers",
            json!({ "name": "relay-late", "provider_type": "smtp", "enabled": false,
                    "config": { "host": "late.egress.test", "port": port, "security": "none",
                                "timeout_secs": 2 } }),
        ),
        "smtp saved while unresolvable",
    );
    dns.publish("late.egress.test", "A", &["127.0.0.1"]);

    let test_message = json!({ "from": "app@example.com", "to": "ann@dest.test" });
    let tested = call(
        "POST",
        &format!("/providers/{relay}/test"),
        test_message.clone(),
    );
    assert_refused(&tested, "config.host", "provider test");

    let id = send(&sluice, "refused at connect");
    let attempt = wait_until(Duration::from_secs(20), || {
        db.attempts(id)
            .into_iter()
            .find(|a| a.provider == "sendgrid")
    })
    .expect("the delivery attempt is recorded");
    assert_eq!(attempt.verdict.as_str(), "transient", "{attempt:?}");
    assert!(
        attempt.response.contains("late.egress.test")
            && attempt.response.contains("127.0.0.1 is loopback"),
        "{attempt:?}"
    );
    let deliveries = wait_until(Duration::from_secs(20), || {
        let (_, list) = api(
            &sluice,
            "GET",
            &format!("/webhook-endpoints/{hook}/deliveries"),
            None,
        );
        let list = list.as_array().cloned().unwrap_or_default();
        list.iter().any(|d| d["status"] == "failed").then_some(list)
    })
    .expect("the event post is recorded as failed");
    let failed = deliveries.iter().find(|d| d["status"] == "failed").unwrap();
    assert_eq!(failed["attempts"], 1, "not retried: {failed}");
    assert!(
        failed["last_error"].as_str().unwrap().contains("loopback"),
        "{failed}"
    );
    assert_eq!(listener.connections(), 0, "nothing reached the listener");

    // The operator opens loopback: the same kinds of destination work.
    let config = std::fs::read_to_string(&sluice.config_path).unwrap();
    let opened = config.replace("allow = []", "allow = [\"127.0.0.0/8\"]");
    assert_ne!(config, opened);
    std::fs::write(&sluice.config_path, opened).unwrap();
    sluice.kill9();
    sluice.spawn();
    let call = |method: &str, path: &str, body: Value| api(&sluice, method, path, Some(body));

    let receiver = PyServer::start("hook_receiver.py", &["--secret", SECRET]);
    let fake = EspFake::start(&[]);
    let upstream = Upstream::start(&[]);
    for host in ["loop.egress.test", "[::ffff:127.0.0.1]"] {
        created(
            call(
                "POST",
                "/webhook-endpoints",
                json!({ "url": format!("http://{host}:{}/hook", receiver.port),
                        "events": ["delivered"], "secret": SECRET }),
            ),
            host,
        );
    }
    // The provider aimed at the silent listener steps aside.
    let (_, list) = api(&sluice, "GET", "/providers", None);
    let late = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "sg-late");
    let late = late.unwrap()["id"].as_i64().unwrap();
    let (status, body) = call(
        "PUT",
        &format!("/providers/{late}"),
        json!({ "enabled": false }),
    );
    assert_eq!(status, 200, "{body}");
    created(
        call(
            "POST",
            "/providers",
            json!({ "name": "sg-open", "provider_type": "sendgrid", "priority": 1,
                    "config": { "api_key": "SG.test-key",
                                "base_url": format!("http://[::ffff:7f00:1]:{}", fake.server.port),
                                "timeout_secs": 2 } }),
        ),
        "sendgrid on an IPv4-mapped literal",
    );
    let relay = created(
        call(
            "POST",
            "/providers",
            json!({ "name": "relay-open", "provider_type": "smtp", "enabled": false,
                    "config": { "host": "loop.egress.test", "port": upstream.port,
                                "security": "none", "timeout_secs": 2 } }),
        ),
        "smtp on a name resolving to loopback",
    );
    let (status, tested) = call("POST", &format!("/providers/{relay}/test"), test_message);
    assert_eq!(status, 200, "{tested}");
    assert_eq!(tested["ok"], true, "{tested}");
    assert_eq!(upstream.wait_for(1, Duration::from_secs(10)).len(), 1);

    let id = send(&sluice, "opened");
    db.wait_status(id, "delivered", 20);
    assert!(
        fake.requests("sendgrid")
            .iter()
            .any(|r| r["json"]["subject"] == "opened"),
        "{:?}",
        fake.log()
    );
    let posts = wait_until(Duration::from_secs(20), || {
        let (_, log) = http_json(receiver.port, "GET", "/_log", None, None);
        let posts = log.as_array().cloned().unwrap_or_default();
        let delivered: Vec<Value> = posts
            .into_iter()
            .filter(|p| p["body"]["type"] == "delivered" && p["body"]["data"]["message_id"] == id)
            .collect();
        (delivered.len() >= 2).then_some(delivered)
    })
    .expect("both endpoints got the delivered event");
    assert!(posts.iter().all(|p| p["signature_ok"] == true), "{posts:?}");
}
