//! SendGrid's event webhook body (after verification) through `core::feedback`: no panic,
//! bounded output, and only events with a recipient and the message id we keep.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::feedback::sendgrid_events;

fuzz_target!(|data: &[u8]| {
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let events = sendgrid_events(&payload);
    let items = payload.as_array().map_or(0, Vec::len);
    assert!(events.len() <= items, "more events than items");
    for event in &events {
        assert!(event.detail.chars().count() <= 300);
        assert!(!event.provider_message_id.contains('.'), "{event:?}");
    }
});
