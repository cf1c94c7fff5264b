//! Login throttling for panel/API users: after `max_failures` failed logins within
//! `window_ms` the user is locked for `lock_ms`. Pure; the store keeps the state.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginState {
    pub failed_logins: i64,
    pub first_failed_at: Option<i64>,
    pub locked_until: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
pub struct LoginThrottle {
    pub max_failures: i64,
    pub window_ms: i64,
    pub lock_ms: i64,
}

impl LoginThrottle {
    pub fn is_locked(&self, state: &LoginState, now_ms: i64) -> bool {
        state.locked_until.is_some_and(|until| now_ms < until)
    }

    /// The state after one more failed login at `now_ms`.
    pub fn after_failure(&self, state: &LoginState, now_ms: i64) -> LoginState {
        let in_window = state
            .first_failed_at
            .is_some_and(|first| now_ms - first < self.window_ms);
        let (failed, first) = if in_window {
            (state.failed_logins + 1, state.first_failed_at)
        } else {
            (1, Some(now_ms))
        };
        if failed >= self.max_failures {
            LoginState {
                failed_logins: 0,
                first_failed_at: None,
                locked_until: Some(now_ms + self.lock_ms),
            }
        } else {
            LoginState {
                failed_logins: failed,
                first_failed_at: first,
                locked_until: state.locked_until,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_in_the_window_lock_for_the_lock_time() {
        let throttle = LoginThrottle {
            max_failures: 5,
            window_ms: 900_000,
            lock_ms: 900_000,
        };
        let mut state = LoginState::default();
        for i in 0..4 {
            state = throttle.after_failure(&state, i * 1000);
            assert!(!throttle.is_locked(&state, i * 1000));
        }
        state = throttle.after_failure(&state, 5000);
        assert!(throttle.is_locked(&state, 5000));
        assert!(throttle.is_locked(&state, 904_999));
        assert!(!throttle.is_locked(&state, 905_000));
        // Failures spread beyond the window do not add up.
        let mut slow = LoginState::default();
        for i in 0..10 {
            slow = throttle.after_failure(&slow, i * 300_000);
        }
        assert!(!throttle.is_locked(&slow, 3_000_000));
    }
}
