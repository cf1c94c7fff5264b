//! Counts authentication failures per client address across connections.

use std::collections::HashMap;
use std::net::IpAddr;

#[derive(Debug)]
pub struct FailureLimiter {
    max_failures: u32,
    window_ms: i64,
    entries: HashMap<IpAddr, (u32, i64)>,
}

impl FailureLimiter {
    /// `max_failures` failures inside `window_ms` block the address until the window ends.
    pub fn new(max_failures: u32, window_ms: i64) -> Self {
        FailureLimiter {
            max_failures: max_failures.max(1),
            window_ms,
            entries: HashMap::new(),
        }
    }

    pub fn is_blocked(&self, ip: IpAddr, now_ms: i64) -> bool {
        matches!(self.entries.get(&ip), Some(&(count, start))
            if count >= self.max_failures && now_ms - start < self.window_ms)
    }

    /// Records a failure; returns true when the address is now blocked.
    pub fn record_failure(&mut self, ip: IpAddr, now_ms: i64) -> bool {
        if self.entries.len() > 100_000 {
            let window = self.window_ms;
            self.entries
                .retain(|_, (_, start)| now_ms - *start < window);
        }
        let entry = self.entries.entry(ip).or_insert((0, now_ms));
        if now_ms - entry.1 >= self.window_ms {
            *entry = (0, now_ms);
        }
        entry.0 += 1;
        entry.0 >= self.max_failures
    }

    pub fn record_success(&mut self, ip: IpAddr) {
        self.entries.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_and_forgets_after_window() {
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let mut limiter = FailureLimiter::new(3, 1000);
        assert!(!limiter.record_failure(ip, 0));
        assert!(!limiter.record_failure(ip, 10));
        assert!(!limiter.is_blocked(ip, 20));
        assert!(limiter.record_failure(ip, 20));
        assert!(limiter.is_blocked(ip, 500));
        assert!(!limiter.is_blocked(other, 500));
        assert!(!limiter.is_blocked(ip, 1000));
        assert!(!limiter.record_failure(ip, 1001));
    }

    #[test]
    fn success_resets() {
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let mut limiter = FailureLimiter::new(2, 1000);
        limiter.record_failure(ip, 0);
        limiter.record_success(ip);
        assert!(!limiter.record_failure(ip, 1));
    }
}
