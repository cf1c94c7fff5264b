//! Receiving message content without smuggling: only `<CRLF>.<CRLF>` ends DATA, and a bare
//! CR, a bare LF or a NUL anywhere ends the session instead of being guessed at.

/// Why content was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentError {
    BareLf,
    BareCr,
    Nul,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DotState {
    LineStart,
    Mid,
    /// A CR inside a line; only LF may follow.
    Cr,
    /// A `.` at the start of a line.
    Dot,
    /// `.` CR at the start of a line; only LF (the end) may follow.
    DotCr,
}

/// Reads DATA content (dot-stuffed, ended by `.` alone on a line), unstuffing into `body`.
#[derive(Debug)]
pub struct DataReceiver {
    state: DotState,
    /// Bytes seen after unstuffing, including those not kept because of the size limit.
    pub size: usize,
    limit: usize,
}

/// What one call to `ingest` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Ingested {
    /// All input consumed; the message goes on.
    NeedMore,
    /// The end marker was found after this many input bytes.
    Done(usize),
    Refused(ContentError),
}

impl DataReceiver {
    pub fn new(limit: usize) -> Self {
        DataReceiver {
            state: DotState::LineStart,
            size: 0,
            limit,
        }
    }

    pub fn oversized(&self) -> bool {
        self.size > self.limit
    }

    /// Keeps what fits under the limit; counts everything.
    fn keep(&mut self, body: &mut Vec<u8>, bytes: &[u8]) {
        let room = self.limit.saturating_sub(self.size);
        body.extend_from_slice(&bytes[..bytes.len().min(room)]);
        self.size += bytes.len();
    }

    pub fn ingest(&mut self, input: &[u8], body: &mut Vec<u8>) -> Ingested {
        let mut i = 0;
        while i < input.len() {
            if self.state == DotState::Mid {
                // Inside a line only CR, LF and NUL matter: the bytes up to the next one are
                // kept in one copy.
                let run = memchr::memchr3(b'\r', b'\n', 0, &input[i..]).unwrap_or(input.len() - i);
                if run > 0 {
                    self.keep(body, &input[i..i + run]);
                    i += run;
                    continue;
                }
            }
            let b = input[i];
            self.state = match self.state {
                DotState::Cr if b == b'\n' => {
                    self.keep(body, b"\r\n");
                    DotState::LineStart
                }
                DotState::DotCr if b == b'\n' => return Ingested::Done(i + 1),
                DotState::Cr | DotState::DotCr => return Ingested::Refused(ContentError::BareCr),
                _ if b == 0 => return Ingested::Refused(ContentError::Nul),
                _ if b == b'\n' => return Ingested::Refused(ContentError::BareLf),
                DotState::LineStart if b == b'.' => DotState::Dot,
                DotState::Dot if b == b'\r' => DotState::DotCr,
                _ if b == b'\r' => DotState::Cr,
                _ => {
                    // After a line-start dot (DotState::Dot) the dot is dropped: unstuffing.
                    self.keep(body, &[b]);
                    DotState::Mid
                }
            };
            i += 1;
        }
        Ingested::NeedMore
    }
}

/// Checks BDAT chunks (no dot-stuffing) for bare CR, bare LF and NUL across chunk boundaries.
#[derive(Debug, Default)]
pub struct BareNewlineCheck {
    pending_cr: bool,
}

impl BareNewlineCheck {
    pub fn check(&mut self, chunk: &[u8]) -> Result<(), ContentError> {
        for &b in chunk {
            match b {
                0 => return Err(ContentError::Nul),
                b'\n' if !self.pending_cr => return Err(ContentError::BareLf),
                _ if self.pending_cr && b != b'\n' => return Err(ContentError::BareCr),
                _ => {}
            }
            self.pending_cr = b == b'\r';
        }
        Ok(())
    }

    /// The message may not end in the middle of a CRLF.
    pub fn finish(&self) -> Result<(), ContentError> {
        if self.pending_cr {
            Err(ContentError::BareCr)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
#[path = "data_props.rs"]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces cut at `cuts`; the outcome and what was kept.
    fn feed(input: &[u8], cuts: &[usize], limit: usize) -> (Ingested, Vec<u8>, usize) {
        let mut receiver = DataReceiver::new(limit);
        let mut body = Vec::new();
        let mut start = 0;
        for &end in cuts.iter().chain([&input.len()]) {
            match receiver.ingest(&input[start..end], &mut body) {
                Ingested::NeedMore => start = end,
                Ingested::Done(n) => return (Ingested::Done(start + n), body, receiver.size),
                refused => return (refused, body, receiver.size),
            }
        }
        (Ingested::NeedMore, body, receiver.size)
    }

    #[test]
    fn content_is_the_same_however_it_is_cut() {
        let cases: [(&[u8], Ingested, &[u8]); 8] = [
            (
                b"a line\r\n..dot\r\n.\r\nMAIL",
                Ingested::Done(18),
                b"a line\r\n.dot\r\n",
            ),
            (b".\r\n", Ingested::Done(3), b""),
            (b"x\r\n.\r\n", Ingested::Done(6), b"x\r\n"),
            (
                b"long text without end",
                Ingested::NeedMore,
                b"long text without end",
            ),
            (
                b"ab\ncd\r\n.\r\n",
                Ingested::Refused(ContentError::BareLf),
                b"ab",
            ),
            (
                b"ab\rcd\r\n.\r\n",
                Ingested::Refused(ContentError::BareCr),
                b"ab",
            ),
            (
                b"ab\0cd\r\n.\r\n",
                Ingested::Refused(ContentError::Nul),
                b"ab",
            ),
            (
                b"x\r\n.\r\r\n",
                Ingested::Refused(ContentError::BareCr),
                b"x\r\n",
            ),
        ];
        for (input, outcome, kept) in cases {
            // Cut once at every place, then into single bytes.
            let mut cuts: Vec<Vec<usize>> = (0..=input.len()).map(|cut| vec![cut]).collect();
            cuts.push((1..input.len()).collect());
            for cut in cuts {
                let (got, body, _) = feed(input, &cut, 1000);
                assert_eq!(
                    (&got, body.as_slice()),
                    (&outcome, kept),
                    "{input:?} cut at {cut:?}"
                );
            }
        }
    }

    #[test]
    fn over_the_limit_keeps_the_first_bytes_and_counts_all() {
        let input = b"0123456789\r\nabcdef\r\n.\r\n";
        for cut in 0..=input.len() {
            let (got, body, size) = feed(input, &[cut], 8);
            assert_eq!(got, Ingested::Done(input.len()));
            assert_eq!(body, b"01234567", "cut at {cut}");
            assert_eq!(size, 20, "cut at {cut}");
        }
    }
}
