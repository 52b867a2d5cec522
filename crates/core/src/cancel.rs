//! Cancellation that a blocked provider can wait on.
//!
//! The framework owns a [`CancellationSource`] per operation and trips it from whichever thread
//! the host uses to end the operation (`NSPv2LookupServiceEnd` racing `NextEx`,
//! `TSPI_lineCloseCall`, `WSPCloseSocket`). The author's code gets a [`CancellationToken`] and
//! either polls it, blocks on it ([`CancellationToken::wait_timeout`]) or registers a callback
//! that unblocks whatever it is waiting on ([`CancellationToken::on_cancel`]).
//!
//! Cancelling is sticky and idempotent; no wake-up is lost whatever the interleaving of `cancel`
//! and `wait` (modelled with loom in `tests/loom.rs`).

use crate::sync::{Arc, AtomicBool, Condvar, Mutex, Ordering, lock};
use std::time::{Duration, Instant};

type Callback = Box<dyn FnOnce() + Send>;

struct Inner {
    /// Fast path for polling; written only under `state`'s lock.
    cancelled: AtomicBool,
    state: Mutex<Callbacks>,
    tripped: Condvar,
}

struct Callbacks {
    cancelled: bool,
    next_id: u64,
    pending: Vec<(u64, Callback)>,
}

/// The framework's side: trips the tokens it handed out.
pub struct CancellationSource {
    inner: Arc<Inner>,
}

/// The author's side: observes cancellation. Cheap to clone.
#[derive(Clone)]
pub struct CancellationToken {
    inner: Arc<Inner>,
}

/// The operation was cancelled; `?`-friendly result of [`CancellationToken::check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the operation was cancelled by the host")
    }
}

impl std::error::Error for Cancelled {}

/// How a bounded wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitOutcome {
    /// The token was (or already had been) cancelled.
    Cancelled,
    /// The time ran out first.
    TimedOut,
}

impl Default for CancellationSource {
    fn default() -> Self {
        Self::new()
    }
}

impl CancellationSource {
    /// A source that has not been cancelled.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                cancelled: AtomicBool::new(false),
                state: Mutex::new(Callbacks {
                    cancelled: false,
                    next_id: 0,
                    pending: Vec::new(),
                }),
                tripped: Condvar::new(),
            }),
        }
    }

    /// A token observing this source.
    pub fn token(&self) -> CancellationToken {
        CancellationToken {
            inner: Arc::clone(&self.inner),
        }
    }

    /// Cancels: wakes every waiter and runs every registered callback, on this thread, without
    /// holding a lock. Returns `true` for the call that cancelled, `false` afterwards.
    pub fn cancel(&self) -> bool {
        let callbacks = {
            let mut state = lock(&self.inner.state);
            if state.cancelled {
                return false;
            }
            state.cancelled = true;
            self.inner.cancelled.store(true, Ordering::Release);
            std::mem::take(&mut state.pending)
        };
        self.inner.tripped.notify_all();
        for (_, callback) in callbacks {
            // A panicking callback must not keep the others from running.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(callback));
            if result.is_err() {
                tracing::error!("a cancellation callback panicked");
            }
        }
        true
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::Acquire)
    }
}

impl CancellationToken {
    /// Whether the operation was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::Acquire)
    }

    /// `Err(Cancelled)` once cancelled, for `?` in polling loops.
    pub fn check(&self) -> Result<(), Cancelled> {
        if self.is_cancelled() {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }

    /// Blocks until cancelled.
    pub fn wait(&self) {
        let mut state = lock(&self.inner.state);
        while !state.cancelled {
            state = self
                .inner
                .tripped
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// Blocks until cancelled or until `timeout` has passed.
    pub fn wait_timeout(&self, timeout: Duration) -> WaitOutcome {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.wait_deadline(deadline),
            None => {
                self.wait();
                WaitOutcome::Cancelled
            }
        }
    }

    /// Blocks until cancelled or until `deadline`.
    pub fn wait_deadline(&self, deadline: Instant) -> WaitOutcome {
        let mut state = lock(&self.inner.state);
        loop {
            if state.cancelled {
                return WaitOutcome::Cancelled;
            }
            let now = Instant::now();
            if now >= deadline {
                return WaitOutcome::TimedOut;
            }
            state = self
                .inner
                .tripped
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// Runs `callback` once when the token is cancelled (at once, on this thread, if it already
    /// is). Dropping the returned registration before that unregisters it. Use it to unblock a
    /// wait the provider does on something else: a socket, a channel, a child process.
    pub fn on_cancel(&self, callback: impl FnOnce() + Send + 'static) -> CancelRegistration {
        let id = {
            let mut state = lock(&self.inner.state);
            if !state.cancelled {
                let id = state.next_id;
                state.next_id += 1;
                state.pending.push((id, Box::new(callback)));
                Some(id)
            } else {
                drop(state);
                callback();
                None
            }
        };
        CancelRegistration {
            inner: Arc::clone(&self.inner),
            id,
        }
    }
}

/// Keeps an [`CancellationToken::on_cancel`] callback registered; dropping it unregisters.
#[must_use = "dropping the registration unregisters the callback"]
pub struct CancelRegistration {
    inner: Arc<Inner>,
    id: Option<u64>,
}

impl Drop for CancelRegistration {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            lock(&self.inner.state)
                .pending
                .retain(|(each, _)| *each != id);
        }
    }
}

impl std::fmt::Debug for CancellationSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancellationSource")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl std::fmt::Debug for CancellationToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancellationToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl std::fmt::Debug for CancelRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelRegistration")
            .field("registered", &self.id.is_some())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc;

    #[test]
    fn a_blocked_waiter_wakes_when_another_thread_cancels() {
        let source = CancellationSource::new();
        let token = source.token();
        let (started_tx, started_rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            started_tx.send(()).unwrap();
            let start = Instant::now();
            let outcome = token.wait_timeout(Duration::from_secs(30));
            (outcome, start.elapsed())
        });
        started_rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(10));
        assert!(source.cancel());
        let (outcome, elapsed) = waiter.join().unwrap();
        assert_eq!(outcome, WaitOutcome::Cancelled);
        assert!(elapsed < Duration::from_secs(30));
    }

    #[test]
    fn waits_time_out_when_nobody_cancels() {
        let source = CancellationSource::new();
        let token = source.token();
        assert_eq!(
            token.wait_timeout(Duration::from_millis(5)),
            WaitOutcome::TimedOut
        );
        assert_eq!(token.check(), Ok(()));
    }

    #[test]
    fn cancellation_is_sticky_and_reported_once() {
        let source = CancellationSource::new();
        let token = source.token();
        assert!(source.cancel());
        assert!(!source.cancel());
        assert!(token.is_cancelled() && source.is_cancelled());
        assert_eq!(token.check(), Err(Cancelled));
        assert_eq!(token.wait_timeout(Duration::ZERO), WaitOutcome::Cancelled);
        token.wait();
    }

    #[test]
    fn callbacks_run_once_and_can_be_unregistered() {
        let source = CancellationSource::new();
        let token = source.token();
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = |runs: &Arc<AtomicUsize>| {
            let runs = Arc::clone(runs);
            move || {
                runs.fetch_add(1, Ordering::SeqCst);
            }
        };
        let kept = token.on_cancel(counted(&runs));
        let removed = token.on_cancel(counted(&runs));
        drop(removed);
        let _panicky = token.on_cancel(|| panic!("callback bug"));
        assert!(source.cancel());
        assert!(!source.cancel());
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // Registering after cancellation runs at once.
        let _late = token.on_cancel(counted(&runs));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        drop(kept);
    }
}
