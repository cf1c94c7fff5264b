//! Mailgun's webhook body (after verification) through `core::feedback`: no panic, at most
//! one event, bounded detail.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::feedback::mailgun_events;

fuzz_target!(|data: &[u8]| {
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let events = mailgun_events(&payload);
    assert!(events.len() <= 1, "{events:?}");
    for event in &events {
        assert!(event.detail.chars().count() <= 3 * 300 + 2);
    }
});
