//! Properties of `dot_stuffed` (proptest): what the SMTP provider puts on the wire, read
//! back by Sluice's own DATA receiver (`sluice_smtp::data::DataReceiver`) however the
//! bytes are cut, is the body again, ended by CRLF (a body ending in CRLF gets no extra
//! empty line); and the end-of-data mark appears only at the end.

use proptest::prelude::*;
use sluice_smtp::data::{DataReceiver, Ingested};

use super::dot_stuffed;

/// Bodies a client may send: lines of any bytes but CR, LF and NUL, each ended by CRLF,
/// the last maybe not; dots and empty lines made likely.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let line = proptest::collection::vec(
        prop_oneof![
            3 => Just(b'.'),
            1 => Just(b' '),
            6 => any::<u8>().prop_filter("no CR, LF, NUL", |b| !matches!(b, b'\r' | b'\n' | 0)),
        ],
        0..12,
    );
    (proptest::collection::vec(line, 0..10), any::<bool>()).prop_map(|(lines, crlf_end)| {
        let mut body = Vec::new();
        let count = lines.len();
        for (i, line) in lines.into_iter().enumerate() {
            body.extend(line);
            if i + 1 < count || crlf_end {
                body.extend(b"\r\n");
            }
        }
        body
    })
}

/// The receiver fed `wire` in pieces cut at `cuts`: the body it kept and where it ended.
fn receive(wire: &[u8], cuts: &[usize]) -> (Vec<u8>, Option<usize>) {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    points.push(wire.len());
    points.sort_unstable();
    let mut receiver = DataReceiver::new(usize::MAX);
    let mut body = Vec::new();
    let mut start = 0;
    for end in points {
        match receiver.ingest(&wire[start..end], &mut body) {
            Ingested::NeedMore => start = end,
            Ingested::Done(n) => return (body, Some(start + n)),
            Ingested::Refused(why) => panic!("refused ({why:?}) at {start}..{end}"),
        }
    }
    (body, None)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn stuffed_bodies_come_back_whole_however_they_are_cut(
        body in body(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let wire = dot_stuffed(&body);
        let (received, end) = receive(&wire, &cuts);
        prop_assert_eq!(end, Some(wire.len()), "the end mark is the wire's end");
        let mut expected = body.clone();
        if !expected.ends_with(b"\r\n") {
            expected.extend(b"\r\n");
        }
        prop_assert_eq!(received, expected);
        // Byte by byte, the same.
        let every: Vec<usize> = (1..wire.len()).collect();
        prop_assert_eq!(receive(&wire, &every).1, Some(wire.len()));
    }

    /// For any bytes at all (bare CR and LF, NUL): the end-of-data mark only at the end,
    /// the body's bytes all there in order (only dots added), ended by the mark.
    #[test]
    fn the_end_mark_appears_only_at_the_end(
        body in proptest::collection::vec(
            prop_oneof![Just(b'.'), Just(b'\r'), Just(b'\n'), any::<u8>()],
            0..200,
        ),
    ) {
        let wire = dot_stuffed(&body);
        prop_assert!(wire.ends_with(b"\r\n.\r\n"));
        let first = wire.windows(5).position(|w| w == b"\r\n.\r\n");
        prop_assert_eq!(first, Some(wire.len() - 5), "{:?}", String::from_utf8_lossy(&wire));
        // Nor does the wire start with a lone dot line (DATA content starts a line).
        prop_assert!(!wire.starts_with(b".\r\n"));
        // Dropping the dots that start a line gives the body back (less one final CRLF).
        let content = &wire[..wire.len() - 5];
        let mut unstuffed = Vec::new();
        let mut line_start = true;
        for &b in content {
            if line_start && b == b'.' {
                line_start = false;
                continue;
            }
            unstuffed.push(b);
            line_start = b == b'\n';
        }
        let trimmed = body.strip_suffix(b"\r\n").unwrap_or(&body);
        prop_assert_eq!(unstuffed, trimmed);
    }
}
