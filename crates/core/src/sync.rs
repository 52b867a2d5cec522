//! The synchronisation types the primitives use: `std`'s normally, loom's under `--cfg loom`,
//! so the loom models in `tests/loom.rs` explore the very code that ships. The interface crates
//! build their state machines on the same types, so their loom models do too.

#[cfg(loom)]
pub use loom::cell::UnsafeCell;
#[cfg(loom)]
pub use loom::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
#[cfg(loom)]
pub use loom::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
#[cfg(loom)]
pub use loom::thread::{ThreadId, current as current_thread};

#[cfg(not(loom))]
pub use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
#[cfg(not(loom))]
pub use std::thread::{ThreadId, current as current_thread};

/// `std`'s `UnsafeCell` with loom's access API: the pointer is handed to a closure, so that
/// under loom every access is checked against the others.
#[cfg(not(loom))]
#[derive(Debug, Default)]
pub struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    /// A cell holding `value`.
    pub const fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a pointer for reading the value.
    #[inline(always)]
    pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with a pointer for writing the value.
    #[inline(always)]
    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

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

/// A thread-local object whose address identifies the running thread.
#[cfg(not(loom))]
#[repr(align(16))]
struct Mark(#[allow(dead_code)] u8);

#[cfg(not(loom))]
std::thread_local! {
    static MARK: Mark = const { Mark(0) };
}

// Under loom, a number drawn once per thread and never drawn again. The address of a loom
// thread-local would not do: loom frees a thread's locals when it finishes and allocates them
// on first use, so a thread that starts using its mark after another finished may be given the
// finished thread's address — and loom lets it read a state word that still holds that mark (a
// load that does not see the latest store: the threads never synchronized). Whether the
// addresses coincide is up to the allocator, not the schedule, so the model would not be
// deterministic ("Reached unexpected exploration state"). On real threads a thread-local's
// address is reused only by a thread created after the old one exited, which thread creation
// orders after that thread's last store.
#[cfg(loom)]
loom::thread_local! {
    static MARK: usize = {
        // Only hands out distinct numbers; nothing synchronizes through it.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) << 4
    };
}

/// A value that tells the running thread from every other live thread: never zero, the four
/// low bits clear. Cheaper than `thread::current().id()` (no reference count): the address of
/// a thread-local (under loom, a number never given to another thread of the process).
pub fn thread_mark() -> usize {
    #[cfg(not(loom))]
    return MARK.with(|mark| std::ptr::from_ref(mark).addr());
    #[cfg(loom)]
    MARK.with(|mark| *mark)
}
