//! The synchronisation types the primitives use: `std`'s normally, loom's under `--cfg loom`,
//! so the loom models in `tests/loom.rs` explore the very code that ships. The interface crates
//! build their state machines on the same types, so their loom models do too.

#[cfg(loom)]
pub use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
#[cfg(loom)]
pub use loom::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
#[cfg(loom)]
pub use loom::thread::{ThreadId, current as current_thread};

#[cfg(not(loom))]
pub use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
#[cfg(not(loom))]
pub use std::thread::{ThreadId, current as current_thread};

/// Locks, ignoring poisoning: every critical section here leaves its data consistent before any
/// code that could panic runs, so a poisoned lock carries no broken invariant.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Shares a value that may be unsized (`dyn Trait`): made as a `std` `Arc` (which coerces) and
/// converted, since loom's `Arc` cannot coerce to a trait object itself.
pub fn arc_from_std<T: ?Sized>(value: std::sync::Arc<T>) -> Arc<T> {
    #[cfg(loom)]
    return Arc::from_std(value);
    #[cfg(not(loom))]
    value
}
