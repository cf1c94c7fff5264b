//! SASL PLAIN and LOGIN decoding of arbitrary client text: no panic, what decodes has the
//! shape the mechanism promises, encodes back to the same credentials, and its `Debug`
//! never shows the password.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_smtp::sasl::{decode_login_item, decode_plain, encode_base64};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(credentials) = decode_plain(&text) {
        assert!(!credentials.username.is_empty());
        assert!(!credentials.username.contains('\0') && !credentials.password.contains('\0'));
        let again = format!("\0{}\0{}", credentials.username, credentials.password);
        assert_eq!(
            decode_plain(&encode_base64(again.as_bytes())),
            Ok(credentials.clone())
        );
        // `Debug` never depends on the password: the same credentials with a password that
        // differs at every character show the same. (A substring check would trip on the
        // username's escapes: a password `UUU\` is "in" `"UUU\u{5}"`.)
        let mut other = credentials.clone();
        other.password = credentials
            .password
            .chars()
            .map(|c| if c == 'a' { 'b' } else { 'a' })
            .collect::<String>()
            + "a";
        assert_eq!(
            format!("{credentials:?}"),
            format!("{other:?}"),
            "the password shows in Debug"
        );
    }
    if let Ok(item) = decode_login_item(&text) {
        assert_eq!(decode_login_item(&encode_base64(item.as_bytes())), Ok(item));
    }
    // Raw bytes as a client would send them base64-encoded.
    let encoded = encode_base64(data);
    if let Ok(credentials) = decode_plain(&encoded) {
        let parts: Vec<&[u8]> = data.split(|&b| b == 0).collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[1], credentials.username.as_bytes());
        assert_eq!(parts[2], credentials.password.as_bytes());
    }
    assert_eq!(
        decode_login_item(&encoded).ok().map(String::into_bytes),
        String::from_utf8(data.to_vec())
            .ok()
            .map(String::into_bytes)
    );
});
