//! loom models of the End-vs-NextEx race (R-NSP-2, R-NSP-3, R-NSP-15), run by
//! `cargo xtask test` with `--cfg loom`. They drive the runtime itself (the exports only add
//! pointer checks), with a recording sink in place of `WSAProviderCompleteAsyncCall`.

use crate::provider::{Completed, Lookup, NamespaceProvider, NextCall};
use crate::query::{ControlFlags, Guid, Query, QueryResult};
use crate::runtime::{AsyncSink, Registry};
use crate::sys::ResultBuffer;
use loom::sync::Mutex;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;
use std::sync::Arc as StdArc;
use winprov_core::WsaError;
use winprov_core::sync::Arc;

/// Records every completion, and whether End had returned when it arrived.
#[derive(Default)]
struct Sink {
    completions: Mutex<Vec<(usize, i32, bool)>>,
    end_returned: AtomicBool,
}

impl AsyncSink for StdArc<Sink> {
    fn complete(&self, async_call: usize, code: i32) {
        let after_end = self.end_returned.load(Ordering::SeqCst);
        self.completions
            .lock()
            .unwrap()
            .push((async_call, code, after_end));
    }
}

#[derive(Clone, Copy)]
enum Behaviour {
    /// next waits for the cancellation.
    Blocks,
    /// next answers at once.
    Answers,
}

struct Provider(Behaviour);
struct ModelLookup(Behaviour);

impl NamespaceProvider for Provider {
    type Session = ();
    type Lookup = ModelLookup;
    fn startup(&self) -> Result<(), WsaError> {
        Ok(())
    }
    fn lookup_begin(&self, _: &(), _: &Query, _: ControlFlags) -> Result<ModelLookup, WsaError> {
        Ok(ModelLookup(self.0))
    }
}

impl Lookup for ModelLookup {
    fn next<'call>(&mut self, call: NextCall<'call>) -> Completed<'call> {
        match self.0 {
            Behaviour::Blocks => {
                call.wait();
                call.cancelled()
            }
            Behaviour::Answers => call.found(QueryResult::named("a@example.org")),
        }
    }
}

fn race(behaviour: Behaviour) {
    loom::model(move || {
        let sink = StdArc::new(Sink::default());
        let registry = Arc::new(Registry::new(std::sync::Arc::new(StdArc::clone(&sink))));
        let id = Guid::from_u128(1);
        assert!(registry.register(id, Provider(behaviour)).is_ok());
        let session = registry.startup(Some(id)).unwrap();
        let lookup = registry
            .begin(
                Some(id),
                Ok(Query::name("a@example.org")),
                ControlFlags::RETURN_ALL,
                session,
            )
            .unwrap();

        let next = thread::spawn({
            let registry = Arc::clone(&registry);
            move || {
                let mut words = vec![0u64; 64];
                let mut length = 512u32;
                // SAFETY: both live on this thread's stack/heap until next_ex returns.
                let buffer =
                    unsafe { ResultBuffer::from_host(&mut length, words.as_mut_ptr().cast()) };
                registry.next_ex(7, lookup, ControlFlags::RETURN_ALL, buffer)
            }
        });
        assert_eq!(registry.end(lookup), Ok(()));
        sink.end_returned.store(true, Ordering::SeqCst);
        let code = next.join().unwrap();

        let completions = sink.completions.lock().unwrap().clone();
        assert_eq!(
            completions.len(),
            1,
            "exactly one completion: {completions:?}"
        );
        let (async_call, delivered, after_end) = completions[0];
        assert_eq!(async_call, 7);
        assert_eq!(delivered, code, "NextEx reports the code it completed with");
        let cancelled = WsaError::WSA_E_CANCELLED.raw();
        let invalid = WsaError::WSA_INVALID_HANDLE.raw();
        match behaviour {
            Behaviour::Blocks => assert!(delivered == cancelled || delivered == invalid),
            Behaviour::Answers => {
                assert!(delivered == 0 || delivered == cancelled || delivered == invalid);
                assert!(
                    !(delivered == 0 && after_end),
                    "a result delivered after End returned"
                );
            }
        }
        // The handle is gone; the lookup was freed once, after both calls.
        assert_eq!(registry.end(lookup), Err(WsaError::WSA_INVALID_HANDLE));
        assert_eq!(registry.stats(&id).unwrap().live_lookups, 0);
    });
}

#[test]
fn end_races_a_blocked_next() {
    race(Behaviour::Blocks);
}

#[test]
fn end_races_an_answering_next() {
    race(Behaviour::Answers);
}
