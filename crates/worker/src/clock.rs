//! Noticing jumps of the wall clock: the wall clock read against a monotonic one. Pure:
//! both readings are arguments.

/// Jumps smaller than this are drift, scheduling delay or NTP slewing, not jumps.
pub const JUMP_TOLERANCE_MS: i64 = 2_000;

/// The wall clock's offset from a monotonic clock, as last seen.
#[derive(Debug, Clone, Copy)]
pub struct ClockWatch {
    offset_ms: i64,
}

impl ClockWatch {
    pub fn new(wall_ms: i64, monotonic_ms: i64) -> Self {
        ClockWatch {
            offset_ms: wall_ms - monotonic_ms,
        }
    }

    /// How far the wall clock jumped since the last reading (negative: backwards), when
    /// it jumped by more than [`JUMP_TOLERANCE_MS`].
    pub fn observe(&mut self, wall_ms: i64, monotonic_ms: i64) -> Option<i64> {
        let offset = wall_ms - monotonic_ms;
        let jump = offset - self.offset_ms;
        self.offset_ms = offset;
        (jump.abs() > JUMP_TOLERANCE_MS).then_some(jump)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_are_told_apart_from_drift() {
        let hour = 3_600_000;
        let mut watch = ClockWatch::new(10 * hour, 5_000);
        // Both clocks moved a second: nothing.
        assert_eq!(watch.observe(10 * hour + 1_000, 6_000), None);
        // Drift of a second and a half: nothing.
        assert_eq!(watch.observe(10 * hour + 3_500, 7_000), None);
        // Three hours back while a second passed.
        assert_eq!(watch.observe(7 * hour + 4_500, 8_000), Some(-3 * hour));
        // Seen once: the next reading is steady again.
        assert_eq!(watch.observe(7 * hour + 5_500, 9_000), None);
        assert_eq!(watch.observe(10 * hour + 5_500, 9_000), Some(3 * hour));
    }
}
