//! Model checks of the primitives' races, over every interleaving loom explores.
//! Run by `cargo xtask test` as `RUSTFLAGS="--cfg loom" cargo test -p winprov-core --test loom`.
#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use winprov_core::{CancellationSource, Delivery, HandleError, HandleTable, completion};

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

/// free vs in-flight use: a call that got the object keeps it alive across a concurrent remove;
/// the object is freed exactly once, after both; the handle is stale afterwards.
#[test]
fn remove_races_in_flight_use() {
    loom::model(|| {
        let freed = Arc::new(AtomicUsize::new(0));
        let table = Arc::new(HandleTable::new());
        let raw = table.insert(Tracked(Arc::clone(&freed))).unwrap().raw();
        let user_table = Arc::clone(&table);
        let user_freed = Arc::clone(&freed);
        let user = thread::spawn(move || match user_table.get(raw) {
            Ok(object) => {
                // While the call holds it, the object is alive whatever the host did.
                assert_eq!(user_freed.load(Ordering::SeqCst), 0);
                drop(object);
                true
            }
            Err(error) => {
                assert_eq!(error, HandleError::Stale { raw });
                false
            }
        });
        let removed = table.remove(raw).expect("the only remove succeeds");
        drop(removed);
        user.join().unwrap();
        assert_eq!(freed.load(Ordering::SeqCst), 1);
        assert_eq!(table.get(raw).unwrap_err(), HandleError::Stale { raw });
        assert_eq!(table.remove(raw).unwrap_err(), HandleError::Stale { raw });
    });
}

/// two removes of one handle (the host's double free on two threads): exactly one succeeds.
#[test]
fn double_remove_races() {
    loom::model(|| {
        let freed = Arc::new(AtomicUsize::new(0));
        let table = Arc::new(HandleTable::new());
        let raw = table.insert(Tracked(Arc::clone(&freed))).unwrap().raw();
        let other = Arc::clone(&table);
        let second = thread::spawn(move || other.remove(raw).is_ok());
        let first = table.remove(raw).is_ok();
        let second = second.join().unwrap();
        assert!(first ^ second, "exactly one remove succeeds");
        assert_eq!(freed.load(Ordering::SeqCst), 1);
    });
}
