//! How many sessions are open, in all and per account, against limits that a config reload
//! may change while sessions run (so a counter, not a fixed-size semaphore: lowering the
//! limit refuses new sessions at once and cuts none of those already open).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sluice_core::AccountId;

#[derive(Debug, Default)]
pub(crate) struct OpenSessions {
    open: AtomicUsize,
    by_account: Mutex<HashMap<AccountId, usize>>,
}

/// One open session; counted until dropped.
#[derive(Debug)]
pub(crate) struct SessionSlot(Arc<OpenSessions>);

/// One session of an account; counted until dropped.
#[derive(Debug)]
pub(crate) struct AccountSlot(Arc<OpenSessions>, AccountId);

impl OpenSessions {
    pub(crate) fn count(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// A slot if fewer than `limit` sessions are open.
    pub(crate) fn open(self: &Arc<Self>, limit: usize) -> Option<SessionSlot> {
        let taken = self.open.fetch_add(1, Ordering::SeqCst);
        if taken >= limit {
            self.open.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        metrics::gauge!("sluice_smtp_connections_open").increment(1.0);
        Some(SessionSlot(self.clone()))
    }

    /// A slot for `account` if it holds fewer than `limit` sessions; 0 is no limit.
    pub(crate) fn claim_account(
        self: &Arc<Self>,
        account: AccountId,
        limit: usize,
    ) -> Option<AccountSlot> {
        let mut by_account = self.by_account.lock().unwrap();
        let held = by_account.entry(account).or_default();
        if limit != 0 && *held >= limit {
            return None;
        }
        *held += 1;
        Some(AccountSlot(self.clone(), account))
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
        metrics::gauge!("sluice_smtp_connections_open").decrement(1.0);
    }
}

impl Drop for AccountSlot {
    fn drop(&mut self) {
        let mut by_account = self.0.by_account.lock().unwrap();
        if let Some(held) = by_account.get_mut(&self.1) {
            *held -= 1;
            if *held == 0 {
                by_account.remove(&self.1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lowered_limit_refuses_new_sessions_and_frees_as_sessions_end() {
        let open = Arc::new(OpenSessions::default());
        let a = open.open(3).unwrap();
        let b = open.open(3).unwrap();
        let _c = open.open(3).unwrap();
        assert!(open.open(3).is_none());
        // The limit goes down to 2 with three open: nobody is cut, nobody new gets in.
        assert!(open.open(2).is_none());
        drop(a);
        assert!(open.open(2).is_none());
        drop(b);
        assert!(open.open(2).is_some());
        assert_eq!(open.count(), 1);
    }

    #[test]
    fn accounts_are_counted_apart_and_zero_is_no_limit() {
        let open = Arc::new(OpenSessions::default());
        let one = open.claim_account(1, 2).unwrap();
        let _two = open.claim_account(1, 2).unwrap();
        assert!(open.claim_account(1, 2).is_none());
        assert!(open.claim_account(2, 2).is_some());
        drop(one);
        assert!(open.claim_account(1, 2).is_some());
        let many: Vec<_> = (0..50).map(|_| open.claim_account(3, 0).unwrap()).collect();
        assert_eq!(many.len(), 50);
    }
}
