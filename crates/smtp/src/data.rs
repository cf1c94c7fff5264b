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

    fn keep(&mut self, body: &mut Vec<u8>, bytes: &[u8]) {
        self.size += bytes.len();
        if self.size <= self.limit {
            body.extend_from_slice(bytes);
        }
    }

    pub fn ingest(&mut self, input: &[u8], body: &mut Vec<u8>) -> Ingested {
        for (i, &b) in input.iter().enumerate() {
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
