//! Exactly-once completion.
//!
//! Every asynchronous operation a host starts in a provider must be completed exactly once:
//! TAPI's `ASYNC_COMPLETION` for a request that returned its `dwRequestID`, Winsock's
//! `WSAProviderCompleteAsyncCall` for an NSPv2 `NextEx`, WMI's final `SetStatus`. Three parties
//! can end an operation, in any order and on any thread:
//!
//! - the author, through [`Completion::complete`], which consumes the guard (completing twice
//!   or using a completed guard does not compile);
//! - nobody: dropping the guard (an early return, a `?`, a panic) completes with the failure
//!   outcome its creator chose;
//! - the host side: the framework holds a [`CompletionHandle`] and calls
//!   [`CompletionHandle::abort`] when the documented rules end the operation first (for instance
//!   `TSPI_lineCloseCall` completing every pending request with `LINEERR_OPERATIONFAILED`).
//!
//! Exactly one of them delivers; the others are no-ops that report
//! [`Delivery::AlreadyFinished`]. When any of these calls returns, the one delivery has
//! *happened* (not merely been claimed), so "complete every pending request before
//! `TSPI_lineCloseCall` returns" holds even when the author's `complete` is delivering on
//! another thread at that moment. The deliver function runs without any lock held.
//!
//! Guards come in two flavours. [`completion`] makes an owned guard (`Completion<'static, _>`)
//! that may move to a worker thread and complete long after the export returned.
//! [`call_scope`] makes guards tied to one call: they cannot leave it, and their deliver function
//! may borrow the call's frame (the caller's buffer, say).

use crate::sync::{Arc, Condvar, Mutex, ThreadId, current_thread, lock};
use std::marker::PhantomData;

/// What a finishing call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "tells whether this call reached the host"]
pub enum Delivery {
    /// This call delivered its outcome to the host.
    Delivered,
    /// The operation had already finished through another path; nothing was sent.
    AlreadyFinished,
}

/// Which path finished an operation (reported through `tracing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    Completed,
    Dropped,
    Aborted,
}

type Deliver<'a, O> = Box<dyn FnOnce(O) + Send + 'a>;

enum State<'a, O> {
    Pending {
        deliver: Deliver<'a, O>,
        on_drop: O,
    },
    /// `waiters`: threads that went to sleep on `finished` during this delivery (counted under
    /// the lock, so the end of the delivery wakes them, and skips the wake-up when there are
    /// none — the common case, on every call's path).
    Delivering {
        by: ThreadId,
        waiters: usize,
    },
    Finished {
        aborted: bool,
    },
}

struct Slot<'a, O> {
    state: Mutex<State<'a, O>>,
    finished: Condvar,
}

impl<'a, O: Send + 'a> Slot<'a, O> {
    fn new(deliver: Deliver<'a, O>, on_drop: O) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::Pending { deliver, on_drop }),
            finished: Condvar::new(),
        })
    }

    /// Delivers `outcome` (or the drop outcome) if nothing was delivered yet; otherwise waits
    /// until a delivery in progress on another thread has returned.
    fn finish(&self, outcome: Option<O>, path: Path) -> Delivery {
        let me = current_thread().id();
        let mut state = lock(&self.state);
        loop {
            let delivering = State::Delivering { by: me, waiters: 0 };
            match std::mem::replace(&mut *state, delivering) {
                State::Pending { deliver, on_drop } => {
                    drop(state);
                    let outcome = outcome.unwrap_or(on_drop);
                    let _finished = MarkFinished {
                        slot: self,
                        aborted: path == Path::Aborted,
                    };
                    if path != Path::Completed {
                        tracing::debug!(?path, "operation finished without the author's outcome");
                    }
                    deliver(outcome);
                    return Delivery::Delivered;
                }
                State::Delivering { by, waiters } if by != me => {
                    // A spurious wake-up counts this thread again: at worst one wake-up too many.
                    *state = State::Delivering {
                        by,
                        waiters: waiters + 1,
                    };
                    state = self
                        .finished
                        .wait(state)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                }
                previous => {
                    // Finished, or re-entered from inside our own deliver function.
                    *state = previous;
                    if path == Path::Completed {
                        tracing::debug!("complete() after the operation finished: ignored");
                    }
                    return Delivery::AlreadyFinished;
                }
            }
        }
    }

    fn is_finished(&self) -> bool {
        !matches!(*lock(&self.state), State::Pending { .. })
    }

    fn is_aborted(&self) -> bool {
        matches!(*lock(&self.state), State::Finished { aborted: true })
    }
}

/// Marks a slot finished when dropped, so waiters wake even if the deliver function panics.
struct MarkFinished<'s, 'a, O> {
    slot: &'s Slot<'a, O>,
    aborted: bool,
}

impl<O> Drop for MarkFinished<'_, '_, O> {
    fn drop(&mut self) {
        let mut state = lock(&self.slot.state);
        let previous = std::mem::replace(
            &mut *state,
            State::Finished {
                aborted: self.aborted,
            },
        );
        drop(state);
        if matches!(previous, State::Delivering { waiters, .. } if waiters > 0) {
            self.slot.finished.notify_all();
        }
    }
}

/// The author's side of an operation: complete it exactly once.
///
/// `'call` is `'static` for guards made by [`completion`], and the call's scope for guards made
/// by [`CallScope::completion`].
#[must_use = "dropping a Completion completes the operation with its failure outcome"]
pub struct Completion<'call, O: Send + 'call> {
    slot: Option<Arc<Slot<'call, O>>>,
}

impl<'call, O: Send + 'call> Completion<'call, O> {
    /// Completes the operation with `outcome`, unless the host side already finished it.
    pub fn complete(mut self, outcome: O) -> Delivery {
        match self.slot.take() {
            Some(slot) => slot.finish(Some(outcome), Path::Completed),
            None => Delivery::AlreadyFinished,
        }
    }

    /// Whether the host side already ended the operation ([`CompletionHandle::abort`]); an
    /// author doing long work may stop early. `complete` stays safe to call either way.
    pub fn is_aborted(&self) -> bool {
        self.slot.as_ref().is_some_and(|slot| slot.is_aborted())
    }
}

impl<'call, O: Send + 'call> Drop for Completion<'call, O> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            let _ = slot.finish(None, Path::Dropped);
        }
    }
}

impl<'call, O: Send + 'call> std::fmt::Debug for Completion<'call, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completion")
            .field("aborted", &self.is_aborted())
            .finish_non_exhaustive()
    }
}

/// The framework's side of an operation: end it from the host's side.
pub struct CompletionHandle<'call, O: Send + 'call> {
    slot: Arc<Slot<'call, O>>,
}

impl<'call, O: Send + 'call> CompletionHandle<'call, O> {
    /// Delivers `outcome` unless the operation already finished. Either way, when this returns
    /// the operation's one delivery has happened (a delivery running on another thread is
    /// waited for).
    pub fn abort(&self, outcome: O) -> Delivery {
        self.slot.finish(Some(outcome), Path::Aborted)
    }

    /// Whether the operation was delivered (or is being delivered).
    pub fn is_finished(&self) -> bool {
        self.slot.is_finished()
    }
}

impl<'call, O: Send + 'call> Clone for CompletionHandle<'call, O> {
    fn clone(&self) -> Self {
        Self {
            slot: Arc::clone(&self.slot),
        }
    }
}

impl<'call, O: Send + 'call> std::fmt::Debug for CompletionHandle<'call, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompletionHandle")
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}

/// An owned guard and its handle. `deliver` is called exactly once, with the author's outcome,
/// `on_drop` if the guard is dropped uncompleted, or the outcome passed to `abort`.
pub fn completion<O: Send + 'static>(
    deliver: impl FnOnce(O) + Send + 'static,
    on_drop: O,
) -> (Completion<'static, O>, CompletionHandle<'static, O>) {
    pair(Box::new(deliver), on_drop)
}

fn pair<'a, O: Send + 'a>(
    deliver: Deliver<'a, O>,
    on_drop: O,
) -> (Completion<'a, O>, CompletionHandle<'a, O>) {
    let slot = Slot::new(deliver, on_drop);
    (
        Completion {
            slot: Some(Arc::clone(&slot)),
        },
        CompletionHandle { slot },
    )
}

/// The extent of one call from the host; see [`call_scope`]. It carries only lifetimes: guards
/// made from it cannot outlive the call.
pub struct CallScope<'scope, 'env: 'scope> {
    _scope: PhantomData<&'scope mut &'scope ()>,
    _env: PhantomData<&'env mut &'env ()>,
}

impl<'scope, 'env> CallScope<'scope, 'env> {
    /// A guard that cannot outlive this call. Its `deliver` may borrow the call's environment.
    pub fn completion<O: Send + 'scope>(
        &'scope self,
        deliver: impl FnOnce(O) + Send + 'scope,
        on_drop: O,
    ) -> (Completion<'scope, O>, CompletionHandle<'scope, O>) {
        pair(Box::new(deliver), on_drop)
    }
}

impl std::fmt::Debug for CallScope<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallScope").finish_non_exhaustive()
    }
}

/// Runs `body` with a scope whose guards cannot escape it (compare `std::thread::scope`).
///
/// The framework keeps each guard's [`CompletionHandle`] and aborts through it before the call
/// returns: a no-op for guards that finished, and the end of guards the author leaked with
/// `mem::forget` (which no destructor will ever finish).
pub fn call_scope<'env, R>(
    body: impl for<'scope> FnOnce(&'scope CallScope<'scope, 'env>) -> R,
) -> R {
    body(&CallScope {
        _scope: PhantomData,
        _env: PhantomData,
    })
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    /// A host that records every delivery.
    fn recorder() -> (
        impl FnOnce(i32) + Send + 'static + Clone,
        mpsc::Receiver<i32>,
    ) {
        let (tx, rx) = mpsc::channel();
        (move |v| tx.send(v).expect("receiver alive"), rx)
    }

    #[test]
    fn complete_delivers_once() {
        let (deliver, rx) = recorder();
        let (guard, handle) = completion(deliver, -1);
        assert!(!handle.is_finished());
        assert_eq!(guard.complete(7), Delivery::Delivered);
        assert!(handle.is_finished());
        assert_eq!(handle.abort(-2), Delivery::AlreadyFinished);
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [7]);
    }

    #[test]
    fn drop_delivers_the_creators_failure_outcome() {
        let (deliver, rx) = recorder();
        let (guard, _handle) = completion(deliver, -1);
        drop(guard);
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [-1]);
    }

    #[test]
    fn abort_first_makes_complete_a_no_op() {
        let (deliver, rx) = recorder();
        let (guard, handle) = completion(deliver, -1);
        assert_eq!(handle.abort(-48), Delivery::Delivered);
        assert!(guard.is_aborted());
        assert_eq!(guard.complete(0), Delivery::AlreadyFinished);
        assert_eq!(rx.try_iter().collect::<Vec<_>>(), [-48]);
    }

    #[test]
    fn abort_waits_for_a_delivery_running_on_another_thread() {
        let (entered_tx, entered_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let delivered = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&delivered);
        let (guard, handle) = completion(
            move |_: i32| {
                entered_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                seen.fetch_add(1, Ordering::SeqCst);
            },
            -1,
        );
        let author = std::thread::spawn(move || guard.complete(1));
        entered_rx.recv().unwrap();
        let aborter = std::thread::spawn(move || {
            let delivery = handle.abort(-48);
            (delivery, delivered.load(Ordering::SeqCst))
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        release_tx.send(()).unwrap();
        assert_eq!(author.join().unwrap(), Delivery::Delivered);
        // abort returned only after the author's delivery had run to its end.
        assert_eq!(aborter.join().unwrap(), (Delivery::AlreadyFinished, 1));
    }

    #[test]
    fn a_deliver_function_that_re_enters_does_not_deadlock() {
        let handle_cell = Arc::new(std::sync::Mutex::new(
            None::<CompletionHandle<'static, i32>>,
        ));
        let inner = Arc::clone(&handle_cell);
        let (tx, rx) = mpsc::channel();
        let (guard, handle) = completion(
            move |v| {
                let again = inner.lock().unwrap().as_ref().map(|h| h.abort(-2));
                tx.send((v, again)).unwrap();
            },
            -1,
        );
        *handle_cell.lock().unwrap() = Some(handle);
        assert_eq!(guard.complete(3), Delivery::Delivered);
        assert_eq!(rx.recv().unwrap(), (3, Some(Delivery::AlreadyFinished)));
    }

    #[test]
    fn a_panicking_deliver_function_still_finishes_the_slot() {
        let (guard, handle) = completion(|_: i32| panic!("host callback failed"), -1);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| guard.complete(1)));
        assert!(result.is_err());
        assert!(handle.is_finished());
        assert_eq!(handle.abort(-2), Delivery::AlreadyFinished);
    }

    #[test]
    fn scoped_guards_may_borrow_the_call_and_leaked_ones_end_through_their_handle() {
        let mut written = Vec::new();
        let sink = std::sync::Mutex::new(&mut written);
        call_scope(|scope| {
            let (kept, kept_handle) = scope.completion(|v: i32| sink.lock().unwrap().push(v), -1);
            let (leaked, leaked_handle) =
                scope.completion(|v: i32| sink.lock().unwrap().push(v), -1);
            assert_eq!(kept.complete(5), Delivery::Delivered);
            std::mem::forget(leaked);
            assert!(!leaked_handle.is_finished());
            // What a framework does before the export returns:
            assert_eq!(kept_handle.abort(-99), Delivery::AlreadyFinished);
            assert_eq!(leaked_handle.abort(-99), Delivery::Delivered);
        });
        assert_eq!(written, [5, -99]);
    }

    #[test]
    fn scoped_guards_can_complete_on_scoped_threads() {
        let count = AtomicUsize::new(0);
        call_scope(|scope| {
            let (guard, _) = scope.completion(
                |v: usize| {
                    count.fetch_add(v, Ordering::SeqCst);
                },
                0,
            );
            std::thread::scope(|threads| {
                threads.spawn(move || guard.complete(4));
            });
        });
        assert_eq!(count.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn racing_finishers_deliver_exactly_once() {
        for round in 0..200 {
            let delivered = Arc::new(AtomicUsize::new(0));
            let seen = Arc::clone(&delivered);
            let (guard, handle) = completion(
                move |_: i32| {
                    seen.fetch_add(1, Ordering::SeqCst);
                },
                -1,
            );
            let second = handle.clone();
            let threads = [
                std::thread::spawn(move || {
                    let _ = if round % 2 == 0 {
                        guard.complete(0)
                    } else {
                        drop(guard);
                        Delivery::Delivered
                    };
                }),
                std::thread::spawn(move || {
                    let _ = handle.abort(-48);
                }),
                std::thread::spawn(move || {
                    let _ = second.abort(-49);
                }),
            ];
            for thread in threads {
                thread.join().unwrap();
            }
            assert_eq!(delivered.load(Ordering::SeqCst), 1, "round {round}");
        }
    }
}
