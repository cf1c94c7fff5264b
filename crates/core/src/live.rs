//! A value the running process may replace (config hot reload): readers take the current
//! one as an `Arc`, cheaply, and keep it for as long as they work with it.

use std::sync::{Arc, RwLock};

/// A shared, replaceable value. Clones share the same cell.
#[derive(Debug)]
pub struct Live<T: ?Sized> {
    cell: Arc<RwLock<Arc<T>>>,
}

impl<T: ?Sized> Clone for Live<T> {
    fn clone(&self) -> Self {
        Live {
            cell: self.cell.clone(),
        }
    }
}

impl<T: Default> Default for Live<T> {
    fn default() -> Self {
        Live::new(T::default())
    }
}

impl<T> Live<T> {
    pub fn new(value: T) -> Self {
        Live::from_arc(Arc::new(value))
    }
}

impl<T: ?Sized> Live<T> {
    pub fn from_arc(value: Arc<T>) -> Self {
        Live {
            cell: Arc::new(RwLock::new(value)),
        }
    }

    /// The value now.
    pub fn get(&self) -> Arc<T> {
        // A writer cannot panic while holding the lock (it only swaps an Arc), so a poisoned
        // lock still holds a whole value.
        self.cell
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Replaces the value for every later `get`; those holding the old one keep it.
    pub fn set_arc(&self, value: Arc<T>) {
        *self
            .cell
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = value;
    }
}

impl<T> Live<T> {
    pub fn set(&self, value: T) {
        self.set_arc(Arc::new(value));
    }
}

#[cfg(test)]
mod tests {
    use super::Live;

    #[test]
    fn a_reader_keeps_what_it_took_and_later_readers_see_the_new_value() {
        let live = Live::new(3);
        let shared = live.clone();
        let taken = live.get();
        shared.set(5);
        assert_eq!(*taken, 3);
        assert_eq!(*live.get(), 5);
    }
}
