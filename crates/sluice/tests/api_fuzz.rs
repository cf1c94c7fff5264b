//! A bounded schemathesis run against the API's own OpenAPI document, as a system admin,
//! on a real server: no request may get a 5xx.

mod common;

use std::process::Command;

use common::*;
use sluice_testkit::http_json;

#[test]
fn schemathesis_finds_no_server_errors() {
    let sluice = Sluice::builder(BIN)
        .env("SLUICE_API__RATE_LIMIT_PER_MINUTE", "1000000")
        .start();
    let http = sluice.ports.http;
    let token = admin_token(&sluice);
    let (status, document) = http_json(http, "GET", "/api/v1/openapi.json", None, None);
    assert_eq!(status, 200);
    assert_eq!(document["openapi"], "3.1.0");

    let base = format!("http://127.0.0.1:{http}/api/v1");
    let output = Command::new("schemathesis")
        .arg("run")
        .arg(format!("{base}/openapi.json"))
        .args(["--url", &base])
        .args(["--checks", "not_a_server_error"])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args([
            "--max-examples",
            "10",
            "--request-timeout",
            "10",
            "--seed",
            "1",
        ])
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .expect("schemathesis (pip install -r tests/requirements.txt)");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis failed:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("passed"), "{report}");
    assert!(!sluice.logs().contains("panicked"), "the server panicked");
}
