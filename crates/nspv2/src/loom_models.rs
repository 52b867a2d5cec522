//! loom models of the End-vs-NextEx race (R-NSP-2, R-NSP-3, R-NSP-15), run by
//! `cargo xtask test` with `--cfg loom`. They drive the runtime itself (the exports only add
//! pointer checks), with a recording sink in place of `WSAProviderCompleteAsyncCall`.

use crate::host::AsyncCompletion;
use crate::lookup::ResultBuffer;
use crate::provider::{Lookup, NamespaceProvider, NextCall};
use crate::query::{ControlFlags, Guid, Query, QueryResult};
use crate::runtime::Registry;
use loom::sync::Mutex;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;
use std::sync::Arc as StdArc;
use winprov_core::sync::Arc;
use winprov_core::{Completed, HostSink, WsaError};

/// Records every completion, and whether End had returned when it arrived.
#[derive(Default)]
struct Sink {
    completions: Mutex<Vec<(usize, i32, bool)>>,
    end_returned: AtomicBool,
}

impl HostSink<AsyncCompletion> for StdArc<Sink> {
    fn deliver(&self, completion: AsyncCompletion) {
        let after_end = self.end_returned.load(Ordering::SeqCst);
        self.completions
            .lock()
            .unwrap()
            .push((completion.async_call, completion.code, after_end));
    }
}

#[derive(Clone, Copy)]
enum Behaviour {
    /// next waits for the cancellation.
    Blocks,
    /// next answers at once.
    Answers,
    /// next leaks its guard (and panics, having no `Completed` to return).
    Leaks,
}

struct Provider(Behaviour, StdArc<AtomicBool>);
/// The behaviour, and a flag set when `next` is entered.
struct ModelLookup(Behaviour, StdArc<AtomicBool>);

impl NamespaceProvider for Provider {
    type Session = ();
    type Lookup = ModelLookup;
    fn startup(&self) -> Result<(), WsaError> {
        Ok(())
    }
    fn lookup_begin(&self, _: &(), _: &Query, _: ControlFlags) -> Result<ModelLookup, WsaError> {
        Ok(ModelLookup(self.0, StdArc::clone(&self.1)))
    }
}

impl Lookup for ModelLookup {
    fn next<'call>(&mut self, call: NextCall<'call>) -> Completed<'call> {
        self.1.store(true, Ordering::SeqCst);
        match self.0 {
            Behaviour::Blocks => {
                call.wait();
                call.cancelled()
            }
            Behaviour::Answers => call.found(QueryResult::named("a@example.org")),
            Behaviour::Leaks => {
                std::mem::forget(call);
                panic!("leaked the call guard")
            }
        }
    }
}

/// A registry with one provider of `behaviour`, one session and one lookup begun on it.
struct Setup {
    sink: StdArc<Sink>,
    registry: Arc<Registry>,
    id: Guid,
    entered: StdArc<AtomicBool>,
    lookup: usize,
}

fn setup(behaviour: Behaviour) -> Setup {
    let sink = StdArc::new(Sink::default());
    let registry = Arc::new(Registry::new(std::sync::Arc::new(StdArc::clone(&sink))));
    let id = Guid::from_u128(1);
    let entered = StdArc::new(AtomicBool::new(false));
    assert!(
        registry
            .register(id, Provider(behaviour, StdArc::clone(&entered)))
            .is_ok()
    );
    let session = registry.startup(Some(id)).unwrap();
    let lookup = registry
        .begin(
            Some(id),
            Ok(Query::name("a@example.org")),
            ControlFlags::RETURN_ALL,
            session,
        )
        .unwrap();
    Setup {
        sink,
        registry,
        id,
        entered,
        lookup,
    }
}

fn race(behaviour: Behaviour) {
    loom::model(move || {
        let Setup {
            sink,
            registry,
            id,
            entered: _,
            lookup,
        } = setup(behaviour);

        let next = thread::spawn({
            let registry = Arc::clone(&registry);
            move || next_ex(&registry, 7, lookup)
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
        // End completes every call it can see before it returns; a call completed afterwards
        // reached the lookup only after End (it leased it just before): the handle is released.
        assert!(
            !after_end || delivered == invalid,
            "completed with {delivered} after End returned"
        );
        match behaviour {
            Behaviour::Blocks => assert!(delivered == cancelled || delivered == invalid),
            Behaviour::Leaks => unreachable!("panics: see race_calls"),
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

/// One raw NextEx on `lookup` with its own buffer, completing `async_call`.
fn next_ex(registry: &Registry, async_call: usize, lookup: usize) -> i32 {
    let mut bytes = vec![0u8; 512];
    let mut length = 512u32;
    let buffer = ResultBuffer::new(&mut length, &mut bytes);
    registry.next_ex(async_call, lookup, ControlFlags::RETURN_ALL, Ok(buffer))
}

/// End vs NextEx calls of one lookup: `threads` lists, per thread, the `hAsyncCall`s it issues
/// one after the other. Every call is completed exactly once, before it returns, with the code
/// it returns (a call that panicked returns none); nothing is delivered as a result after End
/// returned, and the lookup is freed once.
fn race_calls(behaviour: Behaviour, threads: &'static [&'static [usize]]) {
    loom::model(move || {
        let Setup {
            sink,
            registry,
            id,
            entered,
            lookup,
        } = setup(behaviour);
        let callers: Vec<_> = threads
            .iter()
            .map(|calls| {
                let registry = Arc::clone(&registry);
                let sink = StdArc::clone(&sink);
                thread::spawn(move || {
                    let mut returned = Vec::new();
                    for &call in calls.iter() {
                        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            next_ex(&registry, call, lookup)
                        }));
                        let completed =
                            sink.completions.lock().unwrap().iter().any(|c| c.0 == call);
                        assert!(completed, "NextEx {call} returned uncompleted");
                        returned.push((call, code.ok()));
                    }
                    returned
                })
            })
            .collect();
        // A call blocked in `next` when End starts is completed when End returns.
        let blocked = matches!(behaviour, Behaviour::Blocks) && entered.load(Ordering::SeqCst);
        assert_eq!(registry.end(lookup), Ok(()));
        sink.end_returned.store(true, Ordering::SeqCst);
        let returned: Vec<_> = callers
            .into_iter()
            .flat_map(|caller| caller.join().unwrap())
            .collect();

        let mut completions = sink.completions.lock().unwrap().clone();
        completions.sort_unstable();
        assert_eq!(
            completions.len(),
            returned.len(),
            "one completion per call: {completions:?}"
        );
        assert!(
            !blocked || completions.iter().any(|c| !c.2),
            "End returned before the blocked call was completed"
        );
        let cancelled = WsaError::WSA_E_CANCELLED.raw();
        let invalid = WsaError::WSA_INVALID_HANDLE.raw();
        let failed = WsaError::WSASYSCALLFAILURE.raw();
        for (call, code) in returned {
            let at = completions.binary_search_by_key(&call, |c| c.0);
            let (_, delivered, after_end) = completions[at.expect("completed")];
            match code {
                Some(code) => {
                    assert_eq!(delivered, code, "NextEx reports the code it completed with")
                }
                None => assert!(matches!(behaviour, Behaviour::Leaks)),
            }
            assert!(
                [0, cancelled, invalid, failed].contains(&delivered),
                "{delivered}"
            );
            assert!(delivered != failed || matches!(behaviour, Behaviour::Leaks));
            assert!(
                !(delivered == 0 && (after_end || matches!(behaviour, Behaviour::Blocks))),
                "a result delivered after End returned"
            );
        }
        assert_eq!(registry.end(lookup), Err(WsaError::WSA_INVALID_HANDLE));
        assert_eq!(registry.stats(&id).unwrap().live_lookups, 0);
    });
}

/// Successive calls reuse the lookup's slot; End closes it between or during them.
#[test]
fn end_races_successive_nexts() {
    race_calls(Behaviour::Answers, &[&[7, 8]]);
}

/// A guard leaked by the author is finished by the framework before NextEx returns, racing
/// End's close of the slot.
#[test]
fn end_races_a_leaked_guard() {
    race_calls(Behaviour::Leaks, &[&[7]]);
}

/// A second call finds the lookup busy and waits with its own completion, which End aborts.
#[test]
fn end_races_two_nexts_of_one_lookup() {
    race_calls(Behaviour::Blocks, &[&[7], &[8]]);
}

#[test]
fn end_races_a_blocked_next() {
    race(Behaviour::Blocks);
}

#[test]
fn end_races_an_answering_next() {
    race(Behaviour::Answers);
}
