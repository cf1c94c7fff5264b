//! Sender domains are owned, not claimed: the real binary, a local authoritative DNS
//! server (`[dns] nameservers`), SMTP through Python's smtplib, the HTTP API.
//! A domain goes unverified → TXT published → verified → usable; a second tenant can
//! neither verify nor use it until a system admin vouches for it; SPF, DKIM and DMARC
//! statuses follow the records the test publishes.

mod common;

use common::{BIN, Db, Sluice, Upstream, admin_token, sample_message, smtplib_send};
use serde_json::{Value, json};
use sluice_testkit::{DnsServer, http_json};

/// An API call with `token`: `/api/v1` + `path`.
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

fn send_body(from: &str) -> Value {
    json!({ "from": from, "to": "ann@dest.test", "subject": "hello", "text": "hi" })
}

#[test]
fn a_domain_is_usable_once_its_dns_proves_it_and_only_for_the_account_that_proved_it() {
    let dns = DnsServer::start();
    let upstream = Upstream::start(&[]);
    let sluice = Sluice::builder(BIN)
        .upstream(upstream.port)
        .section(&format!("[dns]\nnameservers = [\"{}\"]", dns.addr()))
        .start();
    let db = Db::open(&sluice);
    let a = sluice.api_key.clone();
    let admin = admin_token(&sluice);
    let (status, b_created) = call(
        &sluice,
        &admin,
        "POST",
        "/accounts",
        Some(json!({ "name": "B", "email": "b@b.test", "password": "b-password" })),
    );
    assert_eq!(status, 201, "{b_created}");
    let b = b_created["api_key"].as_str().unwrap().to_string();
    let b_id = b_created["account"]["id"].as_i64().unwrap();
    assert_eq!(b_created["account"]["allowed_domains"], json!([]));

    // Before: the domain is nobody's. SMTP (the plain port's trusted account is A) and
    // HTTP refuse it, saying what to fix.
    let refused = smtplib_send(
        sluice.ports.plain,
        "plain",
        None,
        "app@acme.test",
        &["r@dest.test"],
        &sample_message("before"),
    );
    assert_eq!(refused.code, 550, "{:?}", refused.json);
    assert!(
        refused.message.contains("5.7.1") && refused.message.contains("/api/v1/domains"),
        "{}",
        refused.message
    );
    let (status, body) = call(
        &sluice,
        &a,
        "POST",
        "/send",
        Some(send_body("app@acme.test")),
    );
    assert_eq!(
        (status, &body["error"]["code"]),
        (403, &json!("sender_not_verified")),
        "{body}"
    );

    // A tenant cannot grant itself a domain through its account any more.
    let (_, me) = call(&sluice, &a, "GET", "/api-keys", None);
    let a_id = me[0]["account_id"].as_i64().unwrap();
    let (status, body) = call(
        &sluice,
        &a,
        "PUT",
        &format!("/accounts/{a_id}"),
        Some(json!({ "allowed_domains": ["acme.test", "gmail.com"] })),
    );
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("read_only_field")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/api/v1/domains")
    );
    let (_, account) = call(&sluice, &a, "GET", &format!("/accounts/{a_id}"), None);
    assert_eq!(account["allowed_domains"], json!(["example.com"]));
    let refused = smtplib_send(
        sluice.ports.plain,
        "plain",
        None,
        "ceo@gmail.com",
        &["r@dest.test"],
        &sample_message("x"),
    );
    assert_eq!(refused.code, 550, "{:?}", refused.json);

    // A adds it: unverified, with the record to publish.
    let (status, domain) = call(
        &sluice,
        &a,
        "POST",
        "/domains",
        Some(json!({ "domain": "Acme.Test." })),
    );
    assert_eq!(status, 201, "{domain}");
    let id = domain["id"].as_i64().unwrap();
    assert_eq!(domain["domain"], "acme.test");
    assert_eq!(domain["account_id"], a_id);
    assert_eq!(domain["verified"], false);
    let record = &domain["verification"];
    assert_eq!(
        (&record["name"], &record["type"]),
        (&json!("_sluice.acme.test"), &json!("TXT"))
    );
    let a_value = record["value"].as_str().unwrap().to_string();
    assert!(
        a_value.starts_with("sluice-verify=") && a_value.len() > 30,
        "{a_value}"
    );
    for key in ["spf", "dkim", "dmarc"] {
        assert_eq!(domain[key]["status"], "missing", "{domain}");
    }
    // Bad names and a tenant's "verified": refused.
    for bad in ["acme", "bad domain.test", "[127.0.0.1]", "bücher.test"] {
        let (status, body) = call(
            &sluice,
            &a,
            "POST",
            "/domains",
            Some(json!({ "domain": bad })),
        );
        assert_eq!(status, 422, "{bad}: {body}");
    }
    let (status, body) = call(
        &sluice,
        &a,
        "POST",
        "/domains",
        Some(json!({ "domain": "x.test", "verified": true })),
    );
    assert_eq!(status, 403, "{body}");

    // Not published yet: still unverified, and it says so.
    let (status, checked) = call(&sluice, &a, "POST", &format!("/domains/{id}/verify"), None);
    assert_eq!(status, 200, "{checked}");
    assert_eq!(checked["verified"], false);
    assert!(
        checked["detail"]
            .as_str()
            .unwrap()
            .contains("no TXT record at _sluice.acme.test"),
        "{checked}"
    );
    let refused = smtplib_send(
        sluice.ports.plain,
        "plain",
        None,
        "app@acme.test",
        &["r@dest.test"],
        &sample_message("x"),
    );
    assert_eq!(refused.code, 550);

    // B claims the same name: its own row and token, not A's.
    let (status, b_domain) = call(
        &sluice,
        &b,
        "POST",
        "/domains",
        Some(json!({ "domain": "acme.test" })),
    );
    assert_eq!(status, 201, "{b_domain}");
    let b_domain_id = b_domain["id"].as_i64().unwrap();
    let b_value = b_domain["verification"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(a_value, b_value);

    // Published (both tokens, even): A verifies first; then B cannot.
    dns.publish("_sluice.acme.test", "TXT", &[&a_value, &b_value]);
    dns.publish("acme.test", "TXT", &["v=spf1 include:_spf.acme.test -all"]);
    let (status, verified) = call(&sluice, &a, "POST", &format!("/domains/{id}/verify"), None);
    assert_eq!(status, 200, "{verified}");
    assert_eq!(
        (&verified["verified"], &verified["verified_how"]),
        (&json!(true), &json!("dns")),
        "{verified}"
    );
    assert_eq!(verified["spf"]["status"], "ok", "{verified}");
    assert_eq!(verified["dmarc"]["status"], "missing", "{verified}");
    assert_eq!(verified["dkim"]["status"], "missing", "{verified}");
    let (status, body) = call(
        &sluice,
        &b,
        "POST",
        &format!("/domains/{b_domain_id}/verify"),
        None,
    );
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("domain_taken")),
        "{body}"
    );
    let (_, b_row) = call(&sluice, &b, "GET", &format!("/domains/{b_domain_id}"), None);
    assert_eq!(b_row["verified"], false);

    // After: A sends from it over SMTP and HTTP.
    let accepted = smtplib_send(
        sluice.ports.plain,
        "plain",
        None,
        "app@acme.test",
        &["r@dest.test"],
        &sample_message("after"),
    );
    assert!(accepted.ok, "{:?}", accepted.json);
    db.wait_status(accepted.message_id(), "delivered", 20);
    let (status, sent) = call(
        &sluice,
        &a,
        "POST",
        "/send",
        Some(send_body("App <app@acme.test>")),
    );
    assert_eq!(status, 202, "{sent}");
    let (_, account) = call(&sluice, &a, "GET", &format!("/accounts/{a_id}"), None);
    assert_eq!(
        account["allowed_domains"],
        json!(["acme.test", "example.com"])
    );

    // B can neither use it (HTTP, SMTP with its own login, a DKIM key) nor grant it itself.
    let (status, body) = call(
        &sluice,
        &b,
        "POST",
        "/send",
        Some(send_body("ceo@acme.test")),
    );
    assert_eq!(
        (status, &body["error"]["code"]),
        (403, &json!("sender_not_verified")),
        "{body}"
    );
    let (status, body) = call(
        &sluice,
        &b,
        "POST",
        "/smtp-credentials",
        Some(json!({ "username": "b-app", "password": "b-app-password" })),
    );
    assert_eq!(status, 201, "{body}");
    let refused = smtplib_send(
        sluice.ports.submission,
        "starttls",
        Some(("b-app", "b-app-password")),
        "ceo@acme.test",
        &["r@dest.test"],
        &sample_message("b"),
    );
    assert_eq!(refused.code, 550, "{:?}", refused.json);
    let (status, body) = call(
        &sluice,
        &b,
        "POST",
        "/dkim-keys",
        Some(json!({ "domain": "acme.test", "selector": "b1" })),
    );
    assert_eq!(
        (status, &body["error"]["code"]),
        (403, &json!("domain_not_verified")),
        "{body}"
    );
    let (status, body) = call(
        &sluice,
        &b,
        "PUT",
        &format!("/accounts/{b_id}"),
        Some(json!({ "allowed_domains": ["acme.test"] })),
    );
    assert_eq!(status, 400, "{body}");
    // A's domain is not even visible to B.
    for (method, path) in [
        ("GET", format!("/domains/{id}")),
        ("POST", format!("/domains/{id}/verify")),
        ("DELETE", format!("/domains/{id}")),
    ] {
        let (status, body) = call(&sluice, &b, method, &path, None);
        assert_eq!(
            (status, &body["error"]["code"]),
            (404, &json!("not_found")),
            "{method} {path}: {body}"
        );
    }
    let (_, listed) = call(&sluice, &b, "GET", "/domains", None);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], b_domain_id);
    let (status, _) = call(
        &sluice,
        &b,
        "GET",
        &format!("/domains?account_id={a_id}"),
        None,
    );
    assert_eq!(status, 404);

    // SPF, DKIM and DMARC as published: invalid, then ok.
    let (status, key) = call(
        &sluice,
        &a,
        "POST",
        "/dkim-keys",
        Some(json!({ "domain": "acme.test", "selector": "s1" })),
    );
    assert_eq!(status, 201, "{key}");
    let key_record = key["dns_record"]["value"].as_str().unwrap().to_string();
    dns.publish("acme.test", "TXT", &["v=spf1 -all", "v=spf1 +all"]);
    dns.publish(
        "s1._domainkey.acme.test",
        "TXT",
        &["v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAnotthekey"],
    );
    dns.publish(
        "_dmarc.acme.test",
        "TXT",
        &["v=DMARC1; rua=mailto:d@acme.test"],
    );
    let (_, checked) = call(&sluice, &a, "POST", &format!("/domains/{id}/verify"), None);
    for key in ["spf", "dkim", "dmarc"] {
        assert_eq!(checked[key]["status"], "invalid", "{key}: {checked}");
    }
    assert_eq!(
        checked["verified"], true,
        "a failing check does not unverify"
    );
    dns.publish("acme.test", "TXT", &["v=spf1 ip4:192.0.2.0/24 -all"]);
    dns.publish("s1._domainkey.acme.test", "TXT", &[&key_record]);
    dns.publish("_dmarc.acme.test", "TXT", &["v=DMARC1; p=reject"]);
    let (_, checked) = call(&sluice, &a, "POST", &format!("/domains/{id}/verify"), None);
    for key in ["spf", "dkim", "dmarc"] {
        assert_eq!(checked[key]["status"], "ok", "{key}: {checked}");
    }
    // The last check is kept for GET and the list.
    let (_, listed) = call(&sluice, &a, "GET", "/domains", None);
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .unwrap();
    assert_eq!(row["dmarc"]["status"], "ok");
    assert_eq!(row["dmarc"]["detail"], "v=DMARC1; p=reject");

    // A system admin vouches for B too: then B may send from it.
    let (status, vouched) = call(
        &sluice,
        &admin,
        "POST",
        "/domains",
        Some(json!({ "domain": "acme.test", "account_id": b_id, "verified": true })),
    );
    assert_eq!(status, 200, "{vouched}");
    assert_eq!(
        (&vouched["id"], &vouched["verified_how"]),
        (&json!(b_domain_id), &json!("admin"))
    );
    let (status, sent) = call(
        &sluice,
        &b,
        "POST",
        "/send",
        Some(send_body("ceo@acme.test")),
    );
    assert_eq!(status, 202, "{sent}");
    let (_, all) = call(&sluice, &admin, "GET", "/domains", None);
    assert_eq!(all.as_array().unwrap().len(), 3, "{all}");
    let (_, only_b) = call(
        &sluice,
        &admin,
        "GET",
        &format!("/domains?account_id={b_id}"),
        None,
    );
    assert_eq!(only_b.as_array().unwrap().len(), 1);

    // Removed: refused again.
    let (status, _) = call(&sluice, &a, "DELETE", &format!("/domains/{id}"), None);
    assert_eq!(status, 204);
    let refused = smtplib_send(
        sluice.ports.plain,
        "plain",
        None,
        "app@acme.test",
        &["r@dest.test"],
        &sample_message("gone"),
    );
    assert_eq!(refused.code, 550, "{:?}", refused.json);

    // Every change is in the audit log.
    let (_, audit) = call(
        &sluice,
        &admin,
        "GET",
        &format!("/audit-logs?account_id={a_id}&target_type=domain"),
        None,
    );
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in ["create", "verify", "delete"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
}
