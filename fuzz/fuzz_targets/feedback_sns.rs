//! An SNS notification (SES feedback) as the feedback route reads it after verification:
//! the envelope's `Message` is JSON text, read again and normalised by `core::feedback`.
//! No panic; every event names a recipient the notification listed, with bounded detail.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::feedback::ses_events;

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    // The route's reading: a string `Message` holding JSON, else the value itself.
    let inner = envelope["Message"]
        .as_str()
        .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
        .unwrap_or(envelope);
    let events = ses_events(&inner);
    let listed = inner.to_string();
    for event in &events {
        assert!(event.detail.chars().count() <= 300);
        let quoted = serde_json::to_string(&event.recipient).unwrap();
        assert!(
            listed
                .to_ascii_lowercase()
                .contains(&quoted.to_ascii_lowercase()),
            "{event:?} names a recipient not in {listed}"
        );
    }
});
