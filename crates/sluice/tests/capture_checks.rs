//! The capture checks through the real binary: the HTML compatibility report of a crafted
//! captured message (flex, `<form>`, `<style>`), and the link check against a local
//! `python3 -m http.server`: with `[egress] allow = []` every loopback link is refused and
//! the server sees no request; with loopback opened the links get 200 and 404 (and a 301
//! is followed). Another
//! tenant gets 404 for both routes.

mod common;

use common::BIN;
use common::services::WebServer;
use serde_json::{Value, json};
use sluice_testkit::{Sluice, http_json};

const REFUSED: &str = "refused by the egress policy";

fn call(sluice: &Sluice, token: &str, path: &str) -> (u16, Value) {
    http_json(
        sluice.ports.http,
        "GET",
        &format!("/api/v1{path}"),
        Some(token),
        None,
    )
}

/// Sends the crafted message with a sandboxed key; its id once captured.
fn capture_crafted(sluice: &Sluice, web_port: u16) -> i64 {
    let (status, key) = http_json(
        sluice.ports.http,
        "POST",
        "/api/v1/api-keys",
        Some(&sluice.api_key),
        Some(&json!({ "sandbox": true })),
    );
    assert_eq!(status, 201, "{key}");
    let html = format!(
        "<html><head><style>.row {{ display: flex; }}</style></head><body>\
         <div class=\"row\" style=\"display:flex\"><form action=\"/subscribe\">\
         <input name=\"email\"></form>\
         <a href=\"http://127.0.0.1:{web_port}/ok.html\">ok</a>\
         <img src=\"http://127.0.0.1:{web_port}/missing.png\"></div></body></html>"
    );
    let text = format!(
        "ok: http://127.0.0.1:{web_port}/ok.html, missing: http://127.0.0.1:{web_port}/missing-too.\n\
         redirected (301 to /folder/): http://127.0.0.1:{web_port}/folder"
    );
    let (status, sent) = http_json(
        sluice.ports.http,
        "POST",
        "/api/v1/send",
        Some(key["api_key"].as_str().unwrap()),
        Some(&json!({ "from": "app@example.com", "to": "ann@dest.test",
                      "subject": "Checks", "text": text, "html": html })),
    );
    assert_eq!(status, 202, "{sent}");
    let id = sent["id"].as_i64().unwrap();
    common::Db::open(sluice).wait_status(id, "captured", 20);
    id
}

fn links(sluice: &Sluice, id: i64) -> Vec<(String, Value, Value)> {
    let (status, body) = call(
        sluice,
        &sluice.api_key,
        &format!("/messages/{id}/checks/links"),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], json!(id));
    body["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            assert!(l["ms"].is_u64(), "{l}");
            (
                l["url"].as_str().unwrap().to_string(),
                l["status"].clone(),
                l["error"].clone(),
            )
        })
        .collect()
}

#[test]
fn html_report_and_links_refused_while_loopback_is_closed() {
    let web = WebServer::start();
    let port = web.port;
    let sluice = Sluice::builder(BIN).egress_allow(&[]).start();
    let id = capture_crafted(&sluice, port);

    let (status, report) = call(
        &sluice,
        &sluice.api_key,
        &format!("/messages/{id}/checks/html"),
    );
    assert_eq!(status, 200, "{report}");
    let names: Vec<&str> = report["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["<style> element", "<form>", "<input>", "display:flex"],
        "{report}"
    );
    let flex = &report["features"][3];
    assert_eq!(flex["kind"], json!("css"));
    assert_eq!(flex["count"], json!(2));
    assert_eq!(flex["unsupported_in"], json!(["outlook_windows"]));
    assert_eq!(report["features"][1]["kind"], json!("element"));
    assert_eq!(report["score"], json!(62), "{report}");

    let checked = links(&sluice, id);
    let urls: Vec<&str> = checked.iter().map(|(u, _, _)| u.as_str()).collect();
    assert_eq!(
        urls,
        vec![
            format!("http://127.0.0.1:{port}/ok.html"),
            format!("http://127.0.0.1:{port}/missing.png"),
            format!("http://127.0.0.1:{port}/missing-too"),
            format!("http://127.0.0.1:{port}/folder"),
        ]
    );
    for (url, status, error) in &checked {
        assert_eq!(status, &Value::Null, "{url}");
        assert_eq!(error, &json!(REFUSED), "{url}");
    }

    // Another tenant: 404 for both routes.
    let other = sluice.cli(&[
        "account",
        "create",
        "--name",
        "Other",
        "--email",
        "other@other.test",
        "--password",
        "other-password",
        "--domain",
        "other.test",
    ]);
    assert!(other.status.success(), "{other:?}");
    let other_key = String::from_utf8_lossy(&other.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("api key:"))
        .map(|k| k.trim().to_string())
        .unwrap();
    for check in ["html", "links"] {
        let (status, body) = call(
            &sluice,
            &other_key,
            &format!("/messages/{id}/checks/{check}"),
        );
        assert_eq!(status, 404, "{check}: {body}");
    }

    let log = web.stop();
    assert!(
        !log.contains("HEAD") && !log.contains("GET"),
        "no connection while refused: {log}"
    );
}

#[test]
fn links_are_fetched_when_loopback_is_open() {
    let web = WebServer::start();
    let port = web.port;
    let sluice = Sluice::builder(BIN).egress_allow(&["127.0.0.0/8"]).start();
    let id = capture_crafted(&sluice, port);
    assert_eq!(
        links(&sluice, id),
        vec![
            (
                format!("http://127.0.0.1:{port}/ok.html"),
                json!(200),
                Value::Null
            ),
            (
                format!("http://127.0.0.1:{port}/missing.png"),
                json!(404),
                Value::Null
            ),
            (
                format!("http://127.0.0.1:{port}/missing-too"),
                json!(404),
                Value::Null
            ),
            (
                format!("http://127.0.0.1:{port}/folder"),
                json!(200),
                Value::Null
            ),
        ]
    );
    let log = web.stop();
    assert!(log.contains("\"HEAD /ok.html HTTP/1.1\" 200"), "{log}");
    assert!(log.contains("\"HEAD /folder HTTP/1.1\" 301"), "{log}");
}
