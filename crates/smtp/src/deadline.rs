//! How long the driver waits for the client's next bytes, so a trickle cannot hold a
//! connection slot: Postfix 3.7's `smtpd_per_request_deadline` and `smtpd_min_data_rate`.
//!
//! - Waiting for a new command: the idle timeout, per read (nothing is half-received).
//! - A command (or SASL line) whose first byte arrived: it must be complete within the idle
//!   timeout of that first byte, however the bytes are spread (one a second does not help).
//! - Message content (DATA/BDAT): the idle timeout from the content's start, plus one second
//!   for every `min_data_rate` bytes received, so a fast sender of a large message is never
//!   cut off and a sender below the rate is, whatever its read pattern. The idle timeout per
//!   read applies on top.
//!
//! Pure: the caller passes the instants.

use std::time::{Duration, Instant};

/// What the session is waiting for, as [`crate::Session::input_phase`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputPhase {
    /// Between requests: nothing of the next one has arrived.
    Idle,
    /// Part of a command line (or a SASL response, or an over-long line being discarded).
    Request,
    /// Message content; `received` bytes of it so far.
    Content { received: u64 },
}

/// Tracks when the current request or content began, across reads.
#[derive(Debug, Default)]
pub struct RequestClock {
    /// The phase and when it began, while it is not `Idle`.
    started: Option<(Phase, Instant)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Request,
    Content,
}

impl RequestClock {
    /// When the wait for the next bytes must end. `now` is when the session's phase was
    /// read (just after its last input was fed and its replies written).
    pub fn read_deadline(
        &mut self,
        phase: InputPhase,
        now: Instant,
        idle: Duration,
        min_data_rate: u64,
    ) -> Instant {
        let per_read = now + idle;
        let (kind, allowance) = match phase {
            InputPhase::Idle => {
                self.started = None;
                return per_read;
            }
            InputPhase::Request => (Phase::Request, Duration::ZERO),
            InputPhase::Content { received } => {
                let rate = min_data_rate.max(1);
                (
                    Phase::Content,
                    Duration::from_secs_f64(received as f64 / rate as f64),
                )
            }
        };
        let began = match self.started {
            Some((k, at)) if k == kind => at,
            _ => {
                self.started = Some((kind, now));
                now
            }
        };
        per_read.min(began + idle + allowance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(3);

    #[test]
    fn idle_waits_the_idle_timeout_from_each_read() {
        let mut clock = RequestClock::default();
        let t0 = Instant::now();
        assert_eq!(
            clock.read_deadline(InputPhase::Idle, t0, IDLE, 500),
            t0 + IDLE
        );
        let t1 = t0 + Duration::from_secs(100);
        assert_eq!(
            clock.read_deadline(InputPhase::Idle, t1, IDLE, 500),
            t1 + IDLE
        );
    }

    #[test]
    fn a_trickled_command_ends_at_its_first_byte_plus_the_timeout() {
        let mut clock = RequestClock::default();
        let t0 = Instant::now();
        // `EHLO ` then one byte a second: every read is still "part of a request".
        let mut deadlines = Vec::new();
        for second in 0..10 {
            let now = t0 + Duration::from_secs(second);
            deadlines.push(clock.read_deadline(InputPhase::Request, now, IDLE, 500));
        }
        assert!(deadlines.iter().all(|&d| d == t0 + IDLE), "{deadlines:?}");
        // The command completes; the next one gets a fresh deadline from its own first byte.
        let t5 = t0 + Duration::from_secs(2);
        assert_eq!(
            clock.read_deadline(InputPhase::Idle, t5, IDLE, 500),
            t5 + IDLE
        );
        let t6 = t0 + Duration::from_secs(4);
        assert_eq!(
            clock.read_deadline(InputPhase::Request, t6, IDLE, 500),
            t6 + IDLE
        );
    }

    #[test]
    fn content_earns_time_at_the_minimum_rate() {
        let mut clock = RequestClock::default();
        let t0 = Instant::now();
        let start = clock.read_deadline(InputPhase::Content { received: 0 }, t0, IDLE, 500);
        assert_eq!(start, t0 + IDLE);
        // 1,000 bytes after 1 s: 2 s earned, the deadline is 5 s from the start (the per-read
        // limit, 4 s from now, is nearer).
        let t1 = t0 + Duration::from_secs(1);
        let d = clock.read_deadline(InputPhase::Content { received: 1000 }, t1, IDLE, 500);
        assert_eq!(d, t1 + IDLE);
        // A trickle: 10 bytes after 20 s earned 20 ms; the deadline passed long ago.
        let t20 = t0 + Duration::from_secs(20);
        let d = clock.read_deadline(InputPhase::Content { received: 10 }, t20, IDLE, 500);
        assert_eq!(d, t0 + IDLE + Duration::from_millis(20));
        assert!(d < t20);
        // A fast sender of a big message: 50 MB in 10 s is far above the rate.
        let t10 = t0 + Duration::from_secs(10);
        let d = clock.read_deadline(
            InputPhase::Content {
                received: 50_000_000,
            },
            t10,
            IDLE,
            500,
        );
        assert_eq!(d, t10 + IDLE);
    }

    #[test]
    fn a_new_phase_restarts_the_clock() {
        let mut clock = RequestClock::default();
        let t0 = Instant::now();
        clock.read_deadline(InputPhase::Request, t0, IDLE, 500);
        // DATA's content begins at t0 + 1: its clock starts there, not at the command's.
        let t1 = t0 + Duration::from_secs(1);
        let d = clock.read_deadline(InputPhase::Content { received: 0 }, t1, IDLE, 500);
        assert_eq!(d, t1 + IDLE);
    }
}
