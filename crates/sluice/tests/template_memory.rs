//! A hostile template cannot take the server's memory. Templates that ask for gigabytes in
//! a few dozen instructions (a string doubled 31 times; a macro that doubles its argument
//! as it recurses; one huge repetition) are refused as template errors, the server's peak
//! memory (VmHWM) stays small, and the next render works. What bounds them is minijinja's
//! fuel (`compose::render::FUEL`), which charges every byte an operator or filter creates,
//! not only instructions: without it (or with fuel that counts instructions only) the
//! server itself would allocate the gigabytes.

mod common;

use common::BIN;
use serde_json::{Value, json};
use sluice_testkit::{Sluice, http_json};

const MIB: u64 = 1024 * 1024;

/// VmHWM (bytes): the process's peak resident memory.
fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .expect("VmHWM")
        * 1024
}

fn preview(sluice: &Sluice, text: &str) -> (u16, Value) {
    http_json(
        sluice.ports.http,
        "POST",
        "/api/v1/templates/preview",
        Some(&sluice.api_key),
        Some(&json!({ "subject": "s", "text": text, "html": "" })),
    )
}

#[test]
fn a_template_that_asks_for_gigabytes_fails_alone() {
    let sluice = Sluice::builder(BIN).start();
    let pid = sluice.pid().expect("the server's pid");
    let (status, rendered) = preview(&sluice, "Hello {{ 'Ann' }}");
    assert_eq!(status, 200, "{rendered}");
    assert_eq!(rendered["text"], "Hello Ann");

    let hostile = [
        "{% set ns = namespace(s='x') %}{% for i in range(31) %}\
         {% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
        "{% macro grow(s, n) %}{% if n > 0 %}{{ grow(s ~ s, n - 1) }}{% else %}{{ s | length }}\
         {% endif %}{% endmacro %}{{ grow('x', 31) }}",
        "{{ ('x' * 99999999) | length }}{{ ('y' * 99999999) | length }}",
        "{% set ns = namespace(s='ab') %}{% for i in range(40) %}\
         {% set ns.s = ns.s | replace('a', ns.s) %}{% endfor %}{{ ns.s | length }}",
    ];
    for template in hostile {
        let (status, refused) = preview(&sluice, template);
        assert_eq!(status, 422, "{template}: {refused}");
        let message = refused["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("runs too long") || message.contains("too large"),
            "{template}: {refused}"
        );
    }
    let peak = peak_memory(pid);
    assert!(
        peak < 400 * MIB,
        "the server's own memory peaked at {} MiB",
        peak / MIB
    );

    // Other renders go on.
    let (status, rendered) = preview(&sluice, "Hello {{ 6 * 7 }}");
    assert_eq!((status, rendered["text"].as_str()), (200, Some("Hello 42")));
    let (status, _) = http_json(sluice.ports.http, "GET", "/healthz", None, None);
    assert_eq!(status, 200);
}
