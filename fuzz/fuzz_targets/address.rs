//! The address parsers: `core::validate_mailbox` / `domain_of` (SMTP envelopes) and
//! `compose::parse_mailbox` (the send API and webhook): no panic, and what passes is what
//! every later step assumes (length, one domain, no line break, a mailbox core accepts).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_compose::parse_mailbox;
use sluice_core::{domain_of, validate_mailbox};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if validate_mailbox(text).is_ok() {
        assert!(text.len() <= 254);
        let at = text.rfind('@').expect("a mailbox has an @");
        assert!(at > 0 && at <= 64, "local part length");
        let domain = domain_of(text).expect("a mailbox has a domain");
        assert_eq!(domain, text[at + 1..].to_ascii_lowercase());
        assert!(!domain.is_empty());
        assert!(
            !text.contains(['\r', '\n', '\0', '<', '>']) || text.starts_with('"'),
            "{text:?}"
        );
        assert!(!text.contains(['\r', '\n', '\0']), "{text:?}");
    }
    if let Ok(mailbox) = parse_mailbox("to", text) {
        assert!(
            validate_mailbox(&mailbox.address).is_ok(),
            "{mailbox:?} from {text:?}"
        );
        assert!(!mailbox.address.contains(['\r', '\n']));
        if let Some(name) = &mailbox.name {
            assert!(!name.contains(['\r', '\n', '\0']), "{mailbox:?}");
        }
    }
});
