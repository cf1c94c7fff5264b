//! Property tests (proptest) of core's pure parts: the retry schedule, the router, the
//! egress policy and sealing. One test binary; each module holds one part's properties.

mod egress;
mod retry;
mod router;
mod sealed;

/// Few enough cases that each suite runs in a few seconds in a debug build.
pub fn config() -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases: 256,
        ..proptest::test_runner::Config::default()
    }
}
