//! The one way the primitives put a thread to sleep until another thread's state change.
//!
//! The state lives in an atomic word of its owner (a [`CallSlot`](crate::CallSlot)'s phase, a
//! lease entry's turn); the fast paths never touch this module. A thread that must wait
//! *announces* itself in that word (a waiter bit, set under this module's lock) and sleeps; the
//! thread whose state change ends the wait sees the bit in the value its atomic operation
//! returned, and only then calls [`Parking::wake_all`]. Because the announcement is made under
//! the lock and the waker takes the lock before notifying, a wake-up cannot fall between a
//! waiter's last look at the state and its sleep.

use crate::sync::{Condvar, Mutex, lock};

/// What a waiter's look at the state decided.
pub(crate) enum Step<T> {
    /// The wait is over.
    Done(T),
    /// The state moved while looking (a failed compare-and-swap): look again.
    Again,
    /// The waiter announced itself in the state word: sleep until woken.
    Sleep,
}

/// A lock and a condition variable, taken only by waiters and by a waker that found one.
#[derive(Debug, Default)]
pub(crate) struct Parking {
    lock: Mutex<()>,
    wake: Condvar,
}

impl Parking {
    pub(crate) fn new() -> Self {
        Self {
            lock: Mutex::new(()),
            wake: Condvar::new(),
        }
    }

    /// Looks at the state with `step`, under the lock, until it says the wait is over; sleeps
    /// each time it announced this thread. Spurious wake-ups only cost another look.
    #[cold]
    pub(crate) fn wait<T>(&self, mut step: impl FnMut() -> Step<T>) -> T {
        let mut guard = lock(&self.lock);
        loop {
            match step() {
                Step::Done(value) => return value,
                Step::Again => {}
                Step::Sleep => {
                    guard = self
                        .wake
                        .wait(guard)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
            }
        }
    }

    /// Wakes every sleeper. `under_lock` runs with the lock held (an owner may clear its waiter
    /// bit there; one that cleared it with the state change itself passes `|| {}` — a waiter
    /// announcing itself afterwards then sees the new state and does not sleep). Waiters
    /// released the lock only by going to sleep: taking it means they sleep, or have not yet
    /// looked.
    #[cold]
    pub(crate) fn wake_all(&self, under_lock: impl FnOnce()) {
        let guard = lock(&self.lock);
        under_lock();
        drop(guard);
        self.wake.notify_all();
    }
}
