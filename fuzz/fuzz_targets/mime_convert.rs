//! MIME → provider conversion: `deliver::http::mime::rewrite_for_envelope` (Graph: the
//! message rewritten so that only envelope recipients receive it) and `sendgrid::mail_send_payload`
//! (SendGrid's JSON) on arbitrary messages. Invariants: no panic; Graph's message names
//! every envelope recipient and no one else in To/Cc/Bcc; SendGrid's personalizations
//! carry exactly the envelope recipients, each once.
//!
//! Input: the first line is the envelope recipients, comma separated; the rest the message
//! (CRLF line ends only, as every ingress stores it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sluice_core::{Envelope, validate_mailbox};
use sluice_deliver::Outbound;
use sluice_deliver::http::{mime, sendgrid};

fuzz_target!(|data: &[u8]| {
    let Some(nl) = data.iter().position(|&b| b == b'\n') else {
        return;
    };
    let Ok(first) = std::str::from_utf8(&data[..nl]) else {
        return;
    };
    let body = &data[nl + 1..];
    // What a body can be: SMTP ingress refuses bare CR, bare LF and NUL, and `compose`
    // writes none.
    if !crlf_only(body) {
        return;
    }
    let rcpts: Vec<String> = first
        .split(',')
        .map(str::trim)
        .filter(|r| validate_mailbox(r).is_ok() && r.is_ascii() && !r.starts_with('"'))
        .map(str::to_string)
        .collect();
    if rcpts.is_empty() {
        return;
    }
    let mut wanted: Vec<String> = rcpts.iter().map(|r| r.to_ascii_lowercase()).collect();
    wanted.sort();
    wanted.dedup();

    // The rewrite itself, not `for_envelope`: that one reads its result back and refuses
    // it when this invariant fails, so a slip in the rewrite would show only as a refusal.
    let graph = mime::rewrite_for_envelope(body, &rcpts);
    if let Ok(checked) = mime::for_envelope(body, &rcpts) {
        assert_eq!(checked, graph, "the check passes the rewrite on unchanged");
    }
    if let Some(parsed) = mime::parse(&graph) {
        let mut named = mime::header_recipients(&parsed);
        named.sort();
        named.dedup();
        // Only when the original parses as a message the service could read.
        if mime::parse(body).is_some() {
            // Only a mailbox can receive anything; garbage a lenient parser calls an
            // address (from a field cut off at the end of the input) cannot.
            for address in named.iter().filter(|a| validate_mailbox(a).is_ok()) {
                assert!(
                    wanted.contains(address),
                    "Graph would send to {address}, not an envelope recipient"
                );
            }
        }
    }

    let envelope = Envelope {
        mail_from: "a@example.com".into(),
        rcpt_to: rcpts.clone(),
        smtputf8: false,
        eight_bit: false,
    };
    let message = Outbound {
        id: 1,
        account_id: 1,
        envelope: &envelope,
        body: sluice_deliver::OutboundBody::Whole(body),
    };
    if let Some(payload) = sendgrid::mail_send_payload(&message, &rcpts) {
        let mut emails = Vec::new();
        for p in payload["personalizations"]
            .as_array()
            .expect("personalizations")
        {
            for field in ["to", "cc", "bcc"] {
                for entry in p[field].as_array().into_iter().flatten() {
                    emails.push(entry["email"].as_str().expect("email").to_ascii_lowercase());
                }
            }
        }
        emails.sort();
        assert_eq!(emails, wanted, "SendGrid recipients");
        let _ = serde_json::to_vec(&payload).expect("serialises");
        assert!(matches!(payload["from"], Value::Object(_)), "{payload}");
    }
});

fn crlf_only(body: &[u8]) -> bool {
    body.iter().enumerate().all(|(i, &b)| match b {
        0 => false,
        b'\r' => body.get(i + 1) == Some(&b'\n'),
        b'\n' => i > 0 && body[i - 1] == b'\r',
        _ => true,
    })
}
