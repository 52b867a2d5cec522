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
//! [`call::Scope::completion`](crate::call::Scope::completion) makes guards tied to one call:
//! they cannot leave it, and their deliver function may borrow the call's frame.
//!
//! Every guard is one armed [`CallSlot`]: the same exactly-once engine as an object's reusable
//! slot, used once.

use crate::call_slot::CallSlot;
use crate::sync::{Arc, AtomicBool, Mutex, Ordering, lock};

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

/// What the one delivery needs: taken by whoever claims it.
struct Job<'a, O> {
    deliver: Deliver<'a, O>,
    on_drop: O,
}

/// One operation: a [`CallSlot`] armed once (the exactly-once engine every guard shares) and
/// the job its claimer runs.
struct Slot<'a, O> {
    slot: CallSlot,
    job: Mutex<Option<Job<'a, O>>>,
    aborted: AtomicBool,
}

impl<'a, O: Send + 'a> Slot<'a, O> {
    fn new(deliver: Deliver<'a, O>, on_drop: O) -> Arc<Self> {
        let slot = CallSlot::new();
        let armed = slot.arm();
        debug_assert!(armed, "a new slot arms");
        Arc::new(Self {
            slot,
            job: Mutex::new(Some(Job { deliver, on_drop })),
            aborted: AtomicBool::new(false),
        })
    }

    /// Delivers `outcome` (or the drop outcome) if nothing was delivered yet; otherwise waits
    /// until a delivery in progress on another thread has returned.
    fn finish(&self, outcome: Option<O>, path: Path) -> Delivery {
        let Some(claimed) = self.slot.claim() else {
            // Finished, or re-entered from inside our own deliver function.
            if path == Path::Completed {
                tracing::debug!("complete() after the operation finished: ignored");
            }
            return Delivery::AlreadyFinished;
        };
        let Some(Job { deliver, on_drop }) = lock(&self.job).take() else {
            unreachable!("the claimer of an armed slot finds its job");
        };
        if path == Path::Aborted {
            self.aborted.store(true, Ordering::Release);
        }
        if path != Path::Completed {
            tracing::debug!(?path, "operation finished without the author's outcome");
        }
        // Dropping the claim (also when `deliver` panics) ends the delivery and wakes waiters.
        deliver(outcome.unwrap_or(on_drop));
        drop(claimed);
        Delivery::Delivered
    }

    fn is_finished(&self) -> bool {
        !self.slot.is_armed()
    }

    fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::Acquire)
    }
}

/// The author's side of an operation: complete it exactly once.
///
/// `'call` is `'static` for guards made by [`completion`], and the call's scope for guards made
/// by [`Scope::completion`](crate::call::Scope::completion).
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

pub(crate) fn pair<'a, O: Send + 'a>(
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
