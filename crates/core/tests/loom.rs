//! Model checks of the primitives' races, over every interleaving loom explores.
//! Run by `cargo xtask test` as `RUSTFLAGS="--cfg loom" cargo test -p winprov-core --test loom`.
#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use winprov_core::sync::thread_mark;
use winprov_core::{CallSlot, CancellationSource, Delivery, HandleError, LeaseTable, completion};

fn counting_deliver(count: &Arc<AtomicUsize>) -> impl FnOnce(i32) + Send + 'static {
    let count = Arc::clone(count);
    move |_| {
        count.fetch_add(1, Ordering::SeqCst);
    }
}

/// complete vs abort vs abort: exactly one delivery, and every finisher returns only after it.
#[test]
fn complete_races_abort() {
    loom::model(|| {
        let delivered = Arc::new(AtomicUsize::new(0));
        let (guard, handle) = completion(counting_deliver(&delivered), -1);
        let second = handle.clone();
        let seen = Arc::clone(&delivered);
        let author = thread::spawn(move || {
            let _ = guard.complete(0);
            seen.load(Ordering::SeqCst)
        });
        let seen = Arc::clone(&delivered);
        let host = thread::spawn(move || {
            let _ = handle.abort(-48);
            seen.load(Ordering::SeqCst)
        });
        let _ = second.abort(-49);
        assert_eq!(delivered.load(Ordering::SeqCst), 1);
        assert_eq!(
            author.join().unwrap(),
            1,
            "complete returned before the delivery"
        );
        assert_eq!(
            host.join().unwrap(),
            1,
            "abort returned before the delivery"
        );
        assert_eq!(delivered.load(Ordering::SeqCst), 1);
    });
}

/// drop of an uncompleted guard vs abort: exactly one delivery.
#[test]
fn drop_races_abort() {
    loom::model(|| {
        let delivered = Arc::new(AtomicUsize::new(0));
        let (guard, handle) = completion(counting_deliver(&delivered), -1);
        let author = thread::spawn(move || drop(guard));
        let first = handle.abort(-48);
        author.join().unwrap();
        assert_eq!(delivered.load(Ordering::SeqCst), 1);
        assert_eq!(handle.abort(-48), Delivery::AlreadyFinished);
        let _ = first;
    });
}

/// cancel vs wait: the waiter always wakes (no lost wake-up) and sees the cancellation.
#[test]
fn cancel_races_wait() {
    loom::model(|| {
        let source = CancellationSource::new();
        let token = source.token();
        let waiter = thread::spawn(move || {
            token.wait();
            token.is_cancelled()
        });
        assert!(source.cancel());
        assert!(waiter.join().unwrap());
    });
}

/// cancel vs registering a callback: the callback runs exactly once either way.
#[test]
fn cancel_races_on_cancel() {
    loom::model(|| {
        let source = CancellationSource::new();
        let token = source.token();
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        let registrar = thread::spawn(move || {
            token.on_cancel(move || {
                counted.fetch_add(1, Ordering::SeqCst);
            })
        });
        source.cancel();
        let registration = registrar.join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        drop(registration);
    });
}

#[derive(Debug)]
struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// two removes of one handle (the host's double free on two threads): exactly one succeeds.
#[test]
fn double_remove_races() {
    loom::model(|| {
        let freed = Arc::new(AtomicUsize::new(0));
        let table = Arc::new(LeaseTable::new());
        let raw = table.insert(Tracked(Arc::clone(&freed)), ()).unwrap().raw();
        let other = Arc::clone(&table);
        let second = thread::spawn(move || other.remove(raw).is_ok());
        let first = table.remove(raw).is_ok();
        let second = second.join().unwrap();
        assert!(first ^ second, "exactly one remove succeeds");
        assert_eq!(freed.load(Ordering::SeqCst), 1);
    });
}

/// A call's lease vs the host's remove: the parts stay alive while the call holds its lease,
/// are dropped exactly once after both, and the handle is stale afterwards.
#[test]
fn lease_races_remove() {
    loom::model(|| {
        let freed = Arc::new(AtomicUsize::new(0));
        let table = Arc::new(LeaseTable::new());
        let raw = table
            .insert(Tracked(Arc::clone(&freed)), Tracked(Arc::clone(&freed)))
            .unwrap()
            .raw();
        let user_table = Arc::clone(&table);
        let user_freed = Arc::clone(&freed);
        let user = thread::spawn(move || match user_table.lease(raw) {
            Ok(mut lease) => {
                let (_, exclusive) = lease.parts();
                assert!(exclusive.is_some(), "the only call gets the turn");
                assert_eq!(user_freed.load(Ordering::SeqCst), 0);
                drop(lease);
                true
            }
            Err(error) => {
                assert_eq!(error, HandleError::Stale { raw });
                false
            }
        });
        drop(table.remove(raw).expect("the only remove succeeds"));
        user.join().unwrap();
        assert_eq!(freed.load(Ordering::SeqCst), 2, "both parts, once");
        assert!(table.is_empty());
        assert_eq!(table.lease(raw).unwrap_err(), HandleError::Stale { raw });
    });
}

/// Two calls on one object: the turn is held by one at a time (a waiting lease gets it when
/// the holder returns it), and each sees the other's writes to the exclusive part.
#[test]
fn turn_is_exclusive_and_passes_on() {
    loom::model(|| {
        let table = Arc::new(LeaseTable::new());
        let raw = table.insert((), 0usize).unwrap().raw();
        let call = move |table: &LeaseTable<(), usize>| {
            let mut lease = table.lease(raw).unwrap();
            let (_, exclusive) = lease.wait_turn();
            // A non-atomic read-modify-write: loom reports it if two turns overlap.
            *exclusive += 1;
        };
        let other = Arc::clone(&table);
        let second = thread::spawn(move || call(&other));
        call(&table);
        second.join().unwrap();
        let mut lease = table.lease(raw).unwrap();
        assert_eq!(lease.parts().1.copied(), Some(2));
    });
}

/// A handle removed and its slot reused while a stale lease attempt runs: the attempt fails,
/// it never reaches the new object.
#[test]
fn stale_lease_races_reuse() {
    loom::model(|| {
        let table = Arc::new(LeaseTable::new());
        let old = table.insert(1usize, ()).unwrap().raw();
        let stale = Arc::clone(&table);
        let attempt = thread::spawn(move || stale.lease(old).map(|lease| *lease).ok());
        drop(table.remove(old).unwrap());
        let new = table.insert(2usize, ()).unwrap().raw();
        assert_ne!(old, new);
        let seen = attempt.join().unwrap();
        assert!(
            seen.is_none() || seen == Some(1),
            "a stale lease saw {seen:?}"
        );
        assert_eq!(*table.lease(new).unwrap(), 2);
    });
}

/// Claims a slot's delivery and counts it, as a claimer does; returns the count seen after.
fn claim_and_count(
    slot: &CallSlot,
    claim: impl FnOnce(&CallSlot) -> Option<winprov_core::Claimed<'_>>,
    count: &AtomicUsize,
) -> usize {
    if let Some(claimed) = claim(slot) {
        count.fetch_add(1, Ordering::SeqCst);
        drop(claimed);
    }
    count.load(Ordering::SeqCst)
}

/// A reusable slot: the author's claim vs End's close vs the framework's claim after the call:
/// exactly one delivery, and every claimer returns only after it.
#[test]
fn call_slot_claim_races_close() {
    loom::model(|| {
        let slot = Arc::new(CallSlot::new());
        let delivered = Arc::new(AtomicUsize::new(0));
        assert!(slot.arm());
        let host = thread::spawn({
            let slot = Arc::clone(&slot);
            let delivered = Arc::clone(&delivered);
            move || claim_and_count(&slot, CallSlot::close, &delivered)
        });
        // The author completes, then the call ends.
        let author = claim_and_count(&slot, CallSlot::claim, &delivered);
        let after = claim_and_count(&slot, CallSlot::claim, &delivered);
        assert_eq!(author, 1, "claim returned before the delivery");
        assert_eq!(after, 1);
        assert_eq!(
            host.join().unwrap(),
            1,
            "close returned before the delivery"
        );
        assert_eq!(delivered.load(Ordering::SeqCst), 1);
        assert!(!slot.arm(), "closed");
    });
}

/// Successive operations in one slot vs a close: every operation that armed is delivered
/// exactly once (by its author or by the close), none arms after the close, and the close
/// returns only after the delivery it found running.
#[test]
fn call_slot_cycles_race_close() {
    loom::model(|| {
        let slot = Arc::new(CallSlot::new());
        let delivered = Arc::new(AtomicUsize::new(0));
        let host = thread::spawn({
            let slot = Arc::clone(&slot);
            let delivered = Arc::clone(&delivered);
            move || {
                let claimed = slot.close();
                if let Some(claimed) = claimed {
                    delivered.fetch_add(1, Ordering::SeqCst);
                    drop(claimed);
                }
                delivered.load(Ordering::SeqCst)
            }
        });
        let mut armed = 0;
        for _ in 0..2 {
            if !slot.arm() {
                assert!(slot.is_closed());
                continue;
            }
            armed += 1;
            let seen = claim_and_count(&slot, CallSlot::claim, &delivered);
            assert_eq!(
                seen, armed,
                "one delivery per operation, before the claim returns"
            );
            // The framework's finish after the call: a no-op once delivered.
            assert!(slot.claim().is_none());
        }
        let seen_by_close = host.join().unwrap();
        assert_eq!(delivered.load(Ordering::SeqCst), armed);
        assert!(seen_by_close <= armed);
        assert!(!slot.arm(), "closed");
    });
}

/// A thread's mark is never another thread's, also one that finished before it first asked for
/// its own: a `CallSlot` claim that reads a stale state word holding a finished thread's mark
/// must not take it for its own delivery (re-entry) — and loom frees a finished thread's locals,
/// so a mark that is an address could be handed out again, as the allocator decides.
#[test]
fn thread_marks_are_not_reused() {
    loom::model(|| {
        let first = thread::spawn(thread_mark).join().unwrap();
        let second = thread::spawn(thread_mark).join().unwrap();
        assert_ne!(first, second);
        assert_ne!(thread_mark(), first);
        assert_ne!(thread_mark(), second);
    });
}
