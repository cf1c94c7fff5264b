//! Properties of the DATA and BDAT receivers (proptest): the outcome and the content kept
//! do not depend on how the input is cut into reads, and what is kept is what an
//! independent reading of RFC 5321 gives.

use proptest::prelude::*;

use super::{BareNewlineCheck, ContentError, DataReceiver, Ingested};

/// Bytes rich in the ones that matter: CR, LF, dots, NUL.
fn wire() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            4 => Just(b'\r'),
            4 => Just(b'\n'),
            4 => Just(b'.'),
            1 => Just(0u8),
            6 => any::<u8>(),
        ],
        0..120,
    )
}

/// The receiver fed `input` in pieces cut at `cuts`: outcome (end offset in the whole
/// input), bytes kept, bytes counted.
fn feed(input: &[u8], cuts: &[usize], limit: usize) -> (Ingested, Vec<u8>, usize) {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.push(input.len());
    points.sort_unstable();
    let mut receiver = DataReceiver::new(limit);
    let mut body = Vec::new();
    let mut start = 0;
    for end in points {
        match receiver.ingest(&input[start..end], &mut body) {
            Ingested::NeedMore => start = end,
            Ingested::Done(n) => return (Ingested::Done(start + n), body, receiver.size),
            refused => return (refused, body, receiver.size),
        }
    }
    (Ingested::NeedMore, body, receiver.size)
}

/// RFC 5321 4.5.2 read line by line: content ends at the first line that is `.` alone; a
/// line's leading dot is dropped; a CR not before LF, an LF not after CR, or a NUL refuses
/// (what came before it is kept).
fn reference(input: &[u8]) -> (Ingested, Vec<u8>) {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        // The line up to the first CR, LF or NUL.
        let stop = input[at..]
            .iter()
            .position(|&b| matches!(b, b'\r' | b'\n' | 0))
            .map(|p| at + p);
        let line_end = stop.unwrap_or(input.len());
        let line = &input[at..line_end];
        let unstuffed = line.strip_prefix(b".").unwrap_or(line);
        let Some(stop) = stop else {
            body.extend_from_slice(unstuffed);
            return (Ingested::NeedMore, body);
        };
        match (input[stop], input.get(stop + 1)) {
            (0, _) => {
                body.extend_from_slice(unstuffed);
                return (Ingested::Refused(ContentError::Nul), body);
            }
            (b'\n', _) => {
                body.extend_from_slice(unstuffed);
                return (Ingested::Refused(ContentError::BareLf), body);
            }
            (b'\r', None) => {
                body.extend_from_slice(unstuffed);
                return (Ingested::NeedMore, body);
            }
            (b'\r', Some(b'\n')) if line == b"." => return (Ingested::Done(stop + 2), body),
            (b'\r', Some(b'\n')) => {
                body.extend_from_slice(unstuffed);
                body.extend_from_slice(b"\r\n");
                at = stop + 2;
            }
            _ => {
                body.extend_from_slice(unstuffed);
                return (Ingested::Refused(ContentError::BareCr), body);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn data_is_read_the_same_however_it_is_cut(
        input in wire(),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        let whole = feed(&input, &[], usize::MAX);
        prop_assert_eq!(&whole, &feed(&input, &cuts, usize::MAX));
        let every: Vec<usize> = (1..input.len()).collect();
        prop_assert_eq!(&whole, &feed(&input, &every, usize::MAX));
        let (outcome, body, size) = whole;
        prop_assert_eq!(size, body.len());
        prop_assert_eq!((outcome, body), reference(&input));
    }

    /// Over the limit: the first `limit` bytes kept, all counted, the same outcome.
    #[test]
    fn the_limit_keeps_a_prefix_and_counts_everything(
        input in wire(),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
        limit in 0usize..100,
    ) {
        let (outcome, body, size) = feed(&input, &[], usize::MAX);
        let (limited, kept, counted) = feed(&input, &cuts, limit);
        prop_assert_eq!(limited, outcome);
        prop_assert_eq!(counted, size);
        prop_assert_eq!(kept.as_slice(), &body[..body.len().min(limit)]);
    }

    /// BDAT: refused exactly when the whole has a NUL, a bare LF or a CR not before LF,
    /// however it is cut into chunks.
    #[test]
    fn bdat_checks_the_same_however_it_is_cut(
        input in wire(),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        points.push(input.len());
        points.sort_unstable();
        let mut check = BareNewlineCheck::default();
        let mut start = 0;
        let mut result = Ok(());
        for end in points {
            result = check.check(&input[start..end]);
            if result.is_err() {
                break;
            }
            start = end;
        }
        let result = result.and_then(|()| check.finish());
        let bad = input.iter().enumerate().any(|(i, &b)| {
            b == 0
                || (b == b'\n' && (i == 0 || input[i - 1] != b'\r'))
                || (b == b'\r' && input.get(i + 1) != Some(&b'\n'))
        });
        prop_assert_eq!(result.is_err(), bad);
    }
}
