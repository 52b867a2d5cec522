//! Exactly-once completion for an object that runs one operation at a time, without allocating.
//!
//! [`completion`](mod@crate::completion) makes a fresh, shared slot for every operation: right for
//! operations that overlap or outlive their call, but each costs an allocation, a boxed deliver
//! function and a few locks. Some operations come one at a time per object — an NSPv2 lookup's
//! `NextEx` calls are serialized by the lookup — and there a [`CallSlot`] embedded in the object
//! serves call after call. Its state is one atomic word; a lock is only taken when a finisher
//! has to wait for a delivery running on another thread.
//!
//! The parties are those of [`completion`](mod@crate::completion): the author (completing, or
//! dropping its guard), and the host side (ending the object, [`CallSlot::close`], or the
//! framework finishing a leaked guard after the call). Each calls [`CallSlot::claim`]; exactly
//! one gets the [`Claimed`] right to deliver, and delivers without any lock held. Every other
//! claim returns `None`, and only once the delivery has *happened*: a claim that finds a
//! delivery running on another thread waits for it (re-entering from inside one's own delivery
//! returns at once). Dropping [`Claimed`] marks the operation finished, so waiters wake even if
//! the delivery panics.
//!
//! The slot does not hold the deliver function or the outcome: the owner keeps what a delivery
//! needs (the operation's record) and the claimer runs it. A cycle is [`arm`](CallSlot::arm),
//! one delivery (the end of which makes the slot idle again), and the owner's own
//! [`claim`](CallSlot::claim) when the operation's call ends (finishing it if the guard was
//! leaked, waiting if another thread is delivering). The owner arms the next operation only
//! after that: it serializes the operations, and a slot back to idle is one whose operation
//! was delivered. [`close`](CallSlot::close) ends the cycles for good.

use crate::park::{Parking, Step};
use crate::sync::{AtomicUsize, Ordering, thread_mark};

/// No operation armed (none yet, or the last one was delivered).
const IDLE: usize = 0;
/// An operation is armed; nobody claimed its delivery yet.
const ARMED: usize = 1;
/// The delivery was claimed and is running (the claimer's [`thread_mark`] in `MARK`).
const DELIVERING: usize = 2;
const PHASE: usize = 0b11;
/// [`CallSlot::close`] ran: nothing arms again.
const CLOSED: usize = 0b100;
/// A thread sleeps until this delivery ends (announced under the parking lock).
const WAITING: usize = 0b1000;
/// The delivering thread (marks have their four low bits clear).
const MARK: usize = !0b1111;

/// See the [module documentation](self).
pub struct CallSlot {
    state: AtomicUsize,
    /// Used only by threads that wait for a delivery, and by a delivery that ends with waiters.
    parking: Parking,
}

impl Default for CallSlot {
    fn default() -> Self {
        Self::new()
    }
}

impl CallSlot {
    /// An idle, open slot.
    pub fn new() -> Self {
        Self {
            state: AtomicUsize::new(IDLE),
            parking: Parking::new(),
        }
    }

    /// Starts an operation. `false` if the slot was closed (the caller finishes the operation
    /// itself: nobody else can), or if the last operation was not delivered yet (a caller bug:
    /// the owner's [`claim`](Self::claim) at the end of each call delivers or waits).
    ///
    /// What a delivery needs must be stored before this: a claim that succeeds sees it.
    #[inline]
    pub fn arm(&self) -> bool {
        self.state
            .compare_exchange(IDLE, ARMED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Claims the armed operation's delivery. `None` when there is nothing to deliver: no
    /// operation is armed (for the owner: its operation was delivered), or its delivery was
    /// claimed by someone else — in which case this returns only after that delivery ended
    /// (unless it is this thread's own, re-entered).
    #[inline]
    pub fn claim(&self) -> Option<Claimed<'_>> {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            match state & PHASE {
                ARMED => {
                    let delivering = (state & CLOSED) | DELIVERING | thread_mark();
                    match self.state.compare_exchange_weak(
                        state,
                        delivering,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => return Some(Claimed { slot: self }),
                        Err(now) => state = now,
                    }
                }
                DELIVERING if state & MARK != thread_mark() => {
                    self.wait_finished();
                    return None;
                }
                // Idle (delivered), or re-entered from inside this thread's own delivery.
                _ => return None,
            }
        }
    }

    /// Closes the slot for good (no operation arms again) and claims the armed operation's
    /// delivery, as [`claim`](Self::claim): when this returns `None`, any delivery has happened.
    pub fn close(&self) -> Option<Claimed<'_>> {
        self.state.fetch_or(CLOSED, Ordering::AcqRel);
        self.claim()
    }

    /// Whether [`close`](Self::close) ran.
    pub fn is_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Whether an operation is armed and nobody claimed its delivery yet.
    pub fn is_armed(&self) -> bool {
        self.state.load(Ordering::Acquire) & PHASE == ARMED
    }

    /// Sleeps until the running delivery ends.
    #[cold]
    fn wait_finished(&self) {
        self.parking.wait(|| {
            let state = self.state.load(Ordering::Acquire);
            if state & PHASE != DELIVERING {
                Step::Done(())
            } else if state & WAITING != 0
                || self
                    .state
                    .compare_exchange(state, state | WAITING, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                Step::Sleep
            } else {
                Step::Again
            }
        })
    }
}

impl std::fmt::Debug for CallSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.load(Ordering::Acquire);
        let phase = match state & PHASE {
            ARMED => "armed",
            DELIVERING => "delivering",
            _ => "idle",
        };
        f.debug_struct("CallSlot")
            .field("phase", &phase)
            .field("closed", &(state & CLOSED != 0))
            .finish()
    }
}

/// The right to deliver the armed operation's outcome, held by exactly one claimer. Deliver,
/// then drop it: the slot is then idle again, and claims waiting on other threads return.
#[must_use = "dropping the claim finishes the operation without delivering"]
pub struct Claimed<'a> {
    slot: &'a CallSlot,
}

impl Drop for Claimed<'_> {
    #[inline]
    fn drop(&mut self) {
        let slot = self.slot;
        // Idle, keeping CLOSED (which End may be setting right now).
        let state = slot.state.fetch_and(CLOSED, Ordering::AcqRel);
        if state & WAITING != 0 {
            slot.parking.wake_all(|| {});
        }
    }
}

impl std::fmt::Debug for Claimed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claimed").finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::mpsc;

    #[test]
    fn one_claim_per_cycle_and_cycles_repeat() {
        let slot = CallSlot::new();
        for _ in 0..3 {
            assert!(slot.claim().is_none(), "nothing armed");
            assert!(slot.arm());
            assert!(!slot.arm(), "armed twice");
            let claimed = slot.claim().expect("armed");
            assert!(slot.claim().is_none(), "re-entered: no second delivery");
            assert!(!slot.arm(), "not delivered yet");
            drop(claimed);
            assert!(slot.claim().is_none(), "already delivered");
        }
    }

    #[test]
    fn close_claims_the_armed_operation_and_stops_arming() {
        let slot = CallSlot::new();
        assert!(slot.arm());
        let claimed = slot.close().expect("armed");
        drop(claimed);
        assert!(slot.claim().is_none());
        assert!(slot.is_closed());
        assert!(!slot.arm(), "closed");
        assert!(slot.close().is_none());
    }

    #[test]
    fn a_claim_waits_for_a_delivery_running_on_another_thread() {
        let slot = Arc::new(CallSlot::new());
        let delivered = Arc::new(AtomicUsize::new(0));
        let (entered_tx, entered_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        assert!(slot.arm());
        let deliverer = std::thread::spawn({
            let slot = Arc::clone(&slot);
            let delivered = Arc::clone(&delivered);
            move || {
                let claimed = slot.claim().expect("armed");
                entered_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                delivered.fetch_add(1, Ordering::SeqCst);
                drop(claimed);
            }
        });
        entered_rx.recv().unwrap();
        let closer = std::thread::spawn({
            let slot = Arc::clone(&slot);
            let delivered = Arc::clone(&delivered);
            move || {
                let claimed = slot.close();
                (claimed.is_none(), delivered.load(Ordering::SeqCst))
            }
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        release_tx.send(()).unwrap();
        deliverer.join().unwrap();
        assert_eq!(closer.join().unwrap(), (true, 1));
    }

    #[test]
    fn a_panicking_delivery_still_finishes() {
        let slot = CallSlot::new();
        assert!(slot.arm());
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _claimed = slot.claim().expect("armed");
            panic!("host callback failed");
        }));
        assert!(result.is_err());
        assert!(slot.close().is_none());
        assert!(!slot.arm(), "closed");
    }

    #[test]
    fn racing_claims_deliver_exactly_once() {
        for _ in 0..200 {
            let slot = Arc::new(CallSlot::new());
            let delivered = Arc::new(AtomicUsize::new(0));
            assert!(slot.arm());
            let threads: Vec<_> = (0..3)
                .map(|i| {
                    let slot = Arc::clone(&slot);
                    let delivered = Arc::clone(&delivered);
                    std::thread::spawn(move || {
                        let claimed = if i == 0 { slot.close() } else { slot.claim() };
                        if let Some(claimed) = claimed {
                            delivered.fetch_add(1, Ordering::SeqCst);
                            drop(claimed);
                        }
                        // Every claimer returns after the delivery.
                        assert_eq!(delivered.load(Ordering::SeqCst), 1);
                    })
                })
                .collect();
            for thread in threads {
                thread.join().unwrap();
            }
            assert_eq!(delivered.load(Ordering::SeqCst), 1);
        }
    }
}
