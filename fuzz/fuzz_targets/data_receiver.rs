//! `DataReceiver` fed DATA content in arbitrary pieces against a plain reference reading of
//! the whole input: the end is the first line that is `.` alone, a leading dot is dropped,
//! the first bare CR, bare LF or NUL before it refuses; kept bytes are the first `limit`.
//!
//! Input: limit selector, chunk length, then the content.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_smtp::data::{ContentError, DataReceiver, Ingested};

/// (outcome, unstuffed content up to the stop, its length counted).
fn reference(input: &[u8]) -> (Ingested, Vec<u8>) {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let rest = &input[at..];
        // The line up to the first CR, LF or NUL.
        let stop = rest.iter().position(|&b| matches!(b, b'\r' | b'\n' | 0));
        let Some(stop) = stop else {
            // An unfinished line: a leading dot is held back (stuffing or the end).
            body.extend_from_slice(rest.strip_prefix(b".").unwrap_or(rest));
            return (Ingested::NeedMore, body);
        };
        let line = &rest[..stop];
        let content = line.strip_prefix(b".").unwrap_or(line);
        match (rest[stop], rest.get(stop + 1)) {
            (0, _) => {
                body.extend_from_slice(content);
                return (Ingested::Refused(ContentError::Nul), body);
            }
            (b'\n', _) => {
                body.extend_from_slice(content);
                return (Ingested::Refused(ContentError::BareLf), body);
            }
            (_, None) => {
                // A CR at the end of the input: its LF may follow.
                body.extend_from_slice(content);
                return (Ingested::NeedMore, body);
            }
            (_, Some(b'\n')) => {
                if line == b"." {
                    return (Ingested::Done(at + stop + 2), body);
                }
                body.extend_from_slice(content);
                body.extend_from_slice(b"\r\n");
                at += stop + 2;
            }
            (_, Some(_)) => {
                body.extend_from_slice(content);
                return (Ingested::Refused(ContentError::BareCr), body);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let limit = [0, 1, 5, 64, 1000, usize::MAX][usize::from(data[0] % 6)];
    let step = usize::from(data[1]).max(1);
    let input = &data[2..];

    let mut receiver = DataReceiver::new(limit);
    let mut kept = Vec::new();
    let mut got = Ingested::NeedMore;
    let mut start = 0;
    while start < input.len() {
        let end = (start + step).min(input.len());
        match receiver.ingest(&input[start..end], &mut kept) {
            Ingested::NeedMore => start = end,
            Ingested::Done(n) => {
                assert!(n >= 1 && n <= end - start);
                got = Ingested::Done(start + n);
                break;
            }
            refused => {
                got = refused;
                break;
            }
        }
    }
    let (want, body) = reference(input);
    // A bare CR is only known as one when its next byte comes; a refusal may not differ.
    assert_eq!(got, want, "outcome for {input:?}");
    assert_eq!(receiver.size, body.len(), "size for {input:?}");
    assert_eq!(
        kept,
        body[..body.len().min(limit)],
        "kept bytes for {input:?}"
    );
    assert_eq!(receiver.oversized(), body.len() > limit);
});
