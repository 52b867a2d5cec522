//! A miniature provider, used to prove the Wine rig end to end.
//!
//! It mimics the shape of an NSPv2 lookup on purpose: `open` creates an object behind a
//! host-visible handle; `wait` blocks on the object until it times out or until `close`, called
//! from another thread, cancels it; every `wait` reports its outcome exactly once through a
//! callback the host supplies (as NextEx does through `WSAProviderCompleteAsyncCall`). The
//! exports in [`exports`] are the raw ABI; the logic here is safe and portable, and is unit-tested
//! on Linux as well.
#![deny(unsafe_code)]

#[allow(unsafe_code)]
pub mod exports;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use winprov_core::{CancellationSource, HandleError, LeaseTable, WaitOutcome, WsaError, call};

/// Objects alive in the process, including those only kept alive by a call still running.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// One open object.
#[derive(Debug)]
pub struct Object {
    value: u32,
    cancel: CancellationSource,
    /// `wait` calls running on the object.
    waiting: AtomicUsize,
}

impl Object {
    fn new(value: u32) -> Self {
        LIVE.fetch_add(1, Ordering::SeqCst);
        Self {
            value,
            cancel: CancellationSource::new(),
            waiting: AtomicUsize::new(0),
        }
    }
}

impl Drop for Object {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How many objects are alive.
pub fn live_objects() -> usize {
    LIVE.load(Ordering::SeqCst)
}

/// The provider's state: its handle table.
#[derive(Debug, Default)]
pub struct Rig {
    objects: LeaseTable<Object, ()>,
}

/// Null, stale, forged: the interface has one code for every bad handle.
fn handle_error(_: HandleError) -> WsaError {
    WsaError::WSA_INVALID_HANDLE
}

impl Rig {
    /// Creates an object; returns its handle.
    pub fn open(&self, value: u32) -> Result<usize, WsaError> {
        self.objects
            .insert(Object::new(value), ())
            .map(|handle| handle.raw())
            .map_err(|_| WsaError::WSA_NOT_ENOUGH_MEMORY)
    }

    /// Blocks until `timeout` or until the object is closed; reports the outcome exactly once
    /// through `report` (also when the handle is bad) and returns it.
    pub fn wait(
        &self,
        raw: usize,
        timeout: Duration,
        report: impl FnOnce(WsaError) + Send,
    ) -> Result<(), WsaError> {
        call::scope(|scope| {
            let (guard, handle) = scope.completion(
                |outcome: Result<(), WsaError>| {
                    report(outcome.err().unwrap_or(WsaError::from_raw(0)));
                },
                Err(WsaError::WSASYSCALLFAILURE),
            );
            let outcome = match self.objects.lease_shared(raw) {
                Err(error) => Err(handle_error(error)),
                Ok(object) => {
                    object.waiting.fetch_add(1, Ordering::SeqCst);
                    let outcome = match object.cancel.token().wait_timeout(timeout) {
                        WaitOutcome::Cancelled => Err(WsaError::WSA_E_CANCELLED),
                        WaitOutcome::TimedOut => Ok(()),
                    };
                    object.waiting.fetch_sub(1, Ordering::SeqCst);
                    outcome
                }
            };
            let _ = guard.complete(outcome);
            // The framework's end-of-call sweep: a no-op here, since the guard completed.
            let _ = handle.abort(Err(WsaError::WSASYSCALLFAILURE));
            outcome
        })
    }

    /// Closes a handle; a `wait` running on it finishes with `WSA_E_CANCELLED`.
    pub fn close(&self, raw: usize) -> Result<(), WsaError> {
        let object = self.objects.remove(raw).map_err(handle_error)?;
        object.cancel.cancel();
        Ok(())
    }

    /// The object's description, as a host would ask for it into its own buffer.
    pub fn describe(&self, raw: usize) -> Result<String, WsaError> {
        let object = self.objects.lease_shared(raw).map_err(handle_error)?;
        Ok(format!("rig object {}", object.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn close_during_wait_cancels_it_and_frees_the_object_once() {
        let rig = Rig::default();
        let before = live_objects();
        let raw = rig.open(7).unwrap();
        let reports = Mutex::new(Vec::new());
        std::thread::scope(|threads| {
            let waiter = threads.spawn(|| {
                rig.wait(raw, Duration::from_secs(30), |code| {
                    reports.lock().unwrap().push(code)
                })
            });
            // Close only once the waiter holds the object; cancellation is sticky, so it need
            // not be blocked yet.
            while rig
                .objects
                .lease_shared(raw)
                .map_or(0, |object| object.waiting.load(Ordering::SeqCst))
                < 1
            {
                std::thread::yield_now();
            }
            rig.close(raw).unwrap();
            assert_eq!(waiter.join().unwrap(), Err(WsaError::WSA_E_CANCELLED));
        });
        assert_eq!(*reports.lock().unwrap(), [WsaError::WSA_E_CANCELLED]);
        assert_eq!(live_objects(), before);
        assert_eq!(rig.close(raw), Err(WsaError::WSA_INVALID_HANDLE));
    }

    #[test]
    fn bad_handles_are_reported_once_too() {
        let rig = Rig::default();
        let reports = Mutex::new(Vec::new());
        let result = rig.wait(0x4242, Duration::ZERO, |code| {
            reports.lock().unwrap().push(code)
        });
        assert_eq!(result, Err(WsaError::WSA_INVALID_HANDLE));
        assert_eq!(*reports.lock().unwrap(), [WsaError::WSA_INVALID_HANDLE]);
    }
}
