//! A keyed sliding-window-free rate limit: at most `limit` requests per key in any fixed
//! window of `window_ms`, time passed in. Good enough for per-key API quotas.

use std::collections::HashMap;

#[derive(Debug)]
pub struct WindowLimiter {
    limit: u32,
    window_ms: i64,
    windows: HashMap<String, (i64, u32)>,
}

impl WindowLimiter {
    pub fn new(limit: u32, window_ms: i64) -> Self {
        WindowLimiter {
            limit: limit.max(1),
            window_ms: window_ms.max(1),
            windows: HashMap::new(),
        }
    }

    /// Changes the limit (run-time settings); counts so far are kept.
    pub fn set_limit(&mut self, limit: u32) {
        self.limit = limit.max(1);
    }

    /// Counts one request; `Err(ms)` is how long until the key may try again.
    pub fn check(&mut self, key: &str, now_ms: i64) -> Result<(), i64> {
        let start = now_ms - now_ms.rem_euclid(self.window_ms);
        if self.windows.len() > 100_000 {
            self.windows.retain(|_, (s, _)| *s == start);
        }
        let entry = self.windows.entry(key.to_string()).or_insert((start, 0));
        if entry.0 != start {
            *entry = (start, 0);
        }
        if entry.1 >= self.limit {
            return Err(start + self.window_ms - now_ms);
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_per_window_per_key() {
        let mut limiter = WindowLimiter::new(2, 60_000);
        assert_eq!(limiter.check("a", 1_000), Ok(()));
        assert_eq!(limiter.check("a", 2_000), Ok(()));
        assert_eq!(limiter.check("a", 3_000), Err(57_000));
        assert_eq!(limiter.check("b", 3_000), Ok(()));
        assert_eq!(limiter.check("a", 60_000), Ok(()));
    }
}
