//! One call from the host: its lifetime, the guards that cannot leave it, and the proof that it
//! was completed.
//!
//! Every interface hands its author a guard per asynchronous call (an NSPv2 `NextCall`, a TSPI
//! `Request`, …) whose consuming methods are the only way to finish the trait method: they
//! return a [`Completed`] proof, and the method must return it. Two properties make that a
//! compile-time rule rather than a convention:
//!
//! - **The proof cannot be forged.** Its only constructor is [`Issuer::completed`], and an
//!   [`Issuer`] comes only from a [`Scope`], which only [`scope`] makes — with a fresh
//!   lifetime each time, like `std::thread::scope`. An author who opens a scope of their own gets
//!   proofs of *that* scope, which the compiler refuses as the proof of the framework's call.
//! - **The proof belongs to one call.** `Completed<'call>` is invariant in `'call`, so a proof
//!   from one call (kept from an earlier one, or made for another guard) does not stand in for
//!   another's.
//!
//! `'call` is the one name of this lifetime in every interface crate: the guards, the
//! cancellation they lend and the host buffers they borrow are all `'call`, so none of them can
//! outlive the call (scoped threads may use them). [`Scope::completion`] makes exactly-once
//! completion guards of the same lifetime, whose deliver function may borrow the call's frame.

use crate::completion::{Completion, CompletionHandle, Delivery};
use std::marker::PhantomData;

/// Makes a lifetime invariant: `'call` can neither grow nor shrink. Guards and what they lend
/// (a call's cancellation, say) carry it, so nothing of one call passes for another's.
pub type Brand<'call> = PhantomData<fn(&'call ()) -> &'call ()>;

/// The extent of one call; see [`scope`]. It carries only lifetimes.
pub struct Scope<'call, 'env> {
    _brand: Brand<'call>,
    _env: PhantomData<&'call mut &'env ()>,
}

/// Runs `body` with the scope of one call: a lifetime `'call` that nothing made inside can
/// outlive (compare `std::thread::scope`), and that no other scope shares.
///
/// A framework runs each trait method of the author inside one, and reads the returned
/// [`Completed`] before leaving it.
#[inline(always)]
pub fn scope<'env, R>(body: impl for<'call> FnOnce(&'call Scope<'call, 'env>) -> R) -> R {
    body(&Scope {
        _brand: PhantomData,
        _env: PhantomData,
    })
}

impl<'call, 'env> Scope<'call, 'env> {
    /// An issuer of one [`Completed`] proof for this call: the framework puts it in the guard
    /// it hands the author (one issuer per guard; the author never sees the scope).
    #[inline(always)]
    pub fn issuer(&'call self) -> Issuer<'call> {
        Issuer {
            _brand: PhantomData,
        }
    }

    /// An exactly-once completion guard that cannot outlive this call; its `deliver` may borrow
    /// the call's environment. The framework keeps the [`CompletionHandle`] and aborts through
    /// it before the call returns: a no-op for a guard that finished, the end of a guard the
    /// author leaked with `mem::forget`.
    pub fn completion<O: Send + 'call>(
        &'call self,
        deliver: impl FnOnce(O) + Send + 'call,
        on_drop: O,
    ) -> (Completion<'call, O>, CompletionHandle<'call, O>) {
        crate::completion::pair(Box::new(deliver), on_drop)
    }
}

impl std::fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope").finish_non_exhaustive()
    }
}

/// The right to make one [`Completed`] proof for the call `'call`. Neither `Clone` nor
/// constructible outside [`Scope::issuer`]: a guard holds it privately and spends it in its
/// consuming method.
#[must_use = "a guard spends its issuer when it completes"]
pub struct Issuer<'call> {
    _brand: Brand<'call>,
}

impl<'call> Issuer<'call> {
    /// The proof that the call was completed, carrying what the completion did.
    #[inline(always)]
    pub fn completed(self, delivery: Delivery) -> Completed<'call> {
        Completed {
            delivery,
            _brand: PhantomData,
        }
    }
}

impl std::fmt::Debug for Issuer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer").finish_non_exhaustive()
    }
}

/// Proof that the call `'call` was completed (or resolved); only the consuming methods of the
/// call's guard make one. Return it from the trait method.
#[must_use = "return it from the trait method"]
#[derive(Debug)]
pub struct Completed<'call> {
    delivery: Delivery,
    _brand: Brand<'call>,
}

impl Completed<'_> {
    /// Whether this completion reached the host, or the host side had already ended the call.
    #[inline(always)]
    pub fn delivery(&self) -> Delivery {
        self.delivery
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn an_issuer_makes_a_proof_carrying_the_delivery() {
        let delivery = scope(|call| call.issuer().completed(Delivery::Delivered).delivery());
        assert_eq!(delivery, Delivery::Delivered);
    }

    #[test]
    fn scoped_guards_may_borrow_the_call_and_leaked_ones_end_through_their_handle() {
        let mut written = Vec::new();
        let sink = std::sync::Mutex::new(&mut written);
        scope(|call| {
            let (kept, kept_handle) = call.completion(|v: i32| sink.lock().unwrap().push(v), -1);
            let (leaked, leaked_handle) =
                call.completion(|v: i32| sink.lock().unwrap().push(v), -1);
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
        scope(|call| {
            let (guard, _) = call.completion(
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
}
