//! Hostile templates rendered as tenants' templates are (`compose::render`): no panic, and
//! every render ends within the bounds (`render::FUEL` instructions and
//! `render::MAX_OUTPUT` bytes per part), whatever it does.
//!
//! Input: subject, text and html sources separated by NUL, then JSON data after a second NUL.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_compose::render::{MAX_OUTPUT, render};
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(4, '\0');
    let subject = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    let html = parts.next().unwrap_or_default();
    let data = parts
        .next()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_else(|| serde_json::json!({ "name": "<b>n</b>", "items": [1, 2, 3] }));
    let started = Instant::now();
    if let Ok(out) = render(subject, body, html, &data) {
        assert!(out.subject.len() <= MAX_OUTPUT);
        assert!(out.text.len() <= MAX_OUTPUT);
        assert!(out.html.len() <= MAX_OUTPUT);
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a render took {:?}",
        started.elapsed()
    );
});
