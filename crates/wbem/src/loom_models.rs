//! loom models of `CancelAsyncCall` racing the author's `finish`, an `Indicate` with the sink, a
//! second cancel, and a guard dropped or leaked unfinished (R-WMI-3, R-WMI-11, R-WMI-12), over
//! every interleaving loom explores. Run by `cargo xtask test` as
//! `RUSTFLAGS="--cfg loom" cargo test -p winprov-wbem --lib loom_models --release`. They drive
//! the runtime itself, as the COM layer will, with a recording sink in place of the client's
//! `IWbemObjectSink`; the dropped guard is modelled on the call's `Op` (see
//! `a_dropped_guard_races_cancel`).
//!
//! Each model also collects, over all the executions loom ran, which final status each sink
//! got and on which thread, and requires every outcome the race allows to have been seen: a
//! model that no longer reaches the race fails.

use crate::host::{CallFlags, SinkMessage, WBEM_STATUS_COMPLETE};
use crate::op::{CancelOutcome, Op};
use crate::provider::{EventProvider, InstanceProvider, MethodProvider, ProviderInit, Response};
use crate::runtime::{CallSink, Runtime};
use crate::value::Instance;
use loom::sync::Mutex;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread::{self, ThreadId};
use std::collections::BTreeSet;
use std::sync::Arc as StdArc;
use winprov_core::sync::Arc;
use winprov_core::{Completed, Delivery, HResult, HostSink, call};

/// The identity every model's calls share: `CancelAsyncCall(7)` cancels them all.
const SINK: usize = 7;

/// One call's sink: what it got, in order, and who delivered the final status. It checks as
/// it goes that nothing reaches it after the final status, nor while an `Indicate` is with it.
#[derive(Default)]
struct Recorder {
    log: Mutex<Log>,
}

#[derive(Default)]
struct Log {
    messages: Vec<SinkMessage>,
    /// The thread that delivered the final status.
    finisher: Option<ThreadId>,
    /// An `Indicate` is running: entered, not yet returned.
    indicating: bool,
}

impl Log {
    fn finished(&self) -> bool {
        self.messages.iter().any(SinkMessage::is_final)
    }
}

impl HostSink<SinkMessage> for Recorder {
    fn deliver(&self, message: SinkMessage) -> HResult {
        let indicate = matches!(message, SinkMessage::Indicate { .. });
        {
            let mut log = self.log.lock().unwrap();
            assert!(
                !log.finished(),
                "R-WMI-3/11: {message:?} after the final SetStatus"
            );
            assert!(
                !log.indicating,
                "R-WMI-11: {message:?} while an Indicate was with the sink"
            );
            if message.is_final() {
                log.finisher = Some(thread::current().id());
            }
            log.indicating = indicate;
            log.messages.push(message);
        }
        if indicate {
            // The client's Indicate runs; other threads go on meanwhile. Then it returns.
            let mut log = self.log.lock().unwrap();
            assert!(
                !log.finished(),
                "R-WMI-11: the final SetStatus came while an Indicate was with the sink"
            );
            log.indicating = false;
        }
        HResult::S_OK
    }
}

impl Recorder {
    fn finished(&self) -> bool {
        self.log.lock().unwrap().finished()
    }

    /// The final status and the thread that delivered it, checking there is exactly one.
    fn status(&self) -> (HResult, ThreadId) {
        let log = self.log.lock().unwrap();
        let finals: Vec<_> = log.messages.iter().filter(|m| m.is_final()).collect();
        assert_eq!(
            finals.len(),
            1,
            "exactly one final SetStatus: {:?}",
            log.messages
        );
        match finals[0] {
            SinkMessage::SetStatus {
                flags: WBEM_STATUS_COMPLETE,
                hresult,
                ..
            } => (*hresult, log.finisher.expect("recorded with the status")),
            other => unreachable!("{other:?}"),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Behaviour {
    /// Finishes at once.
    Finishes,
    /// Indicates one instance, then finishes: the finish sends the batch (an `Indicate`), then
    /// the final status.
    IndicatesThenFinishes,
    /// Leaks its guard and panics: the runtime finishes the call (`WBEM_E_FAILED`).
    Leaks,
}

impl Behaviour {
    /// The final status when the author's (or the runtime's) wins.
    fn authors_status(self) -> HResult {
        match self {
            Behaviour::Finishes | Behaviour::IndicatesThenFinishes => HResult::S_OK,
            Behaviour::Leaks => HResult::WBEM_E_FAILED,
        }
    }
}

/// The author's provider, counting the calls that reached it (a call is registered for
/// cancellation before) and recording what each `finish` was told about its delivery.
struct Provider {
    behaviour: Behaviour,
    entered: AtomicUsize,
    deliveries: Mutex<Vec<(ThreadId, Delivery)>>,
}

impl InstanceProvider for Provider {
    fn enumerate<'call>(&self, _class: &str, mut call: Response<'call>) -> Completed<'call> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let completed = match self.behaviour {
            Behaviour::Finishes => call.finish(Ok(())),
            Behaviour::IndicatesThenFinishes => {
                let _ = call.indicate(Instance::new("Entry"));
                call.finish(Ok(()))
            }
            Behaviour::Leaks => {
                std::mem::forget(call);
                panic!("leaked the guard")
            }
        };
        let mut deliveries = self.deliveries.lock().unwrap();
        deliveries.push((thread::current().id(), completed.delivery()));
        completed
    }
}
impl MethodProvider for Provider {}
impl EventProvider for Provider {}
impl ProviderInit for Provider {}

/// Who delivered a call's final status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum By {
    /// The thread running the call (the author, the guard's drop, the runtime, or — for a
    /// cancel that came while an `Indicate` was with the sink — the sending thread).
    CallThread,
    /// A thread in `CancelAsyncCall`.
    Canceller,
}

/// One call's outcome, as the coverage check counts it: its final status and who delivered it.
type Outcome = (i32, By);

const OK: i32 = HResult::S_OK.raw();
const FAILED: i32 = HResult::WBEM_E_FAILED.raw();
const CANCELLED: i32 = HResult::WBEM_E_CALL_CANCELLED.raw();

/// Runs `model` over every interleaving loom explores, then checks that every outcome in
/// `expected` was seen in some execution.
fn explore(expected: &[Outcome], model: impl Fn() -> Vec<Outcome> + Send + Sync + 'static) {
    let seen = StdArc::new(std::sync::Mutex::new(BTreeSet::new()));
    let tally = StdArc::clone(&seen);
    loom::model(move || {
        let outcomes = model();
        tally.lock().unwrap().extend(outcomes);
    });
    let seen = seen.lock().unwrap();
    for outcome in expected {
        assert!(seen.contains(outcome), "{outcome:?} never seen in {seen:?}");
    }
}

/// `calls` enumerations on the one sink identity, each on its own thread, and `cancels`
/// `CancelAsyncCall`s of it (one on the main thread, the others each on a thread of its own).
/// In every execution: every call returns `WBEM_S_NO_ERROR` and its sink gets exactly one
/// final status, last, and never while an `Indicate` is with it; that status is the cancel's
/// `WBEM_E_CALL_CANCELLED` or the author's; the cancels together won as many calls as got
/// `WBEM_E_CALL_CANCELLED`; a won call's cancelled status is delivered by the cancelling
/// thread before its `CancelAsyncCall` returns, or by the call's thread when an `Indicate` was
/// with the sink; the author's `finish` says `Delivered` exactly when its status went out; no
/// call stays registered. Over all executions, every outcome in `expected` was seen.
fn race(behaviour: Behaviour, calls: usize, cancels: usize, expected: &[Outcome]) {
    explore(expected, move || {
        let runtime = Arc::new(Runtime::new(Provider {
            behaviour,
            entered: AtomicUsize::new(0),
            deliveries: Mutex::new(Vec::new()),
        }));
        let recorders: Vec<StdArc<Recorder>> = (0..calls)
            .map(|_| StdArc::new(Recorder::default()))
            .collect();
        let call_threads: Vec<_> = recorders
            .iter()
            .map(|recorder| {
                let runtime = Arc::clone(&runtime);
                let sink = CallSink::new(SINK, StdArc::clone(recorder) as _);
                thread::spawn(move || {
                    let returned = runtime.create_instance_enum_async("Entry", 0, sink);
                    (returned, thread::current().id())
                })
            })
            .collect();
        // Each cancel: whether every call had reached the author before it (so the cancel
        // finds them all), how many calls it won, and whether their sinks had the final status
        // when it returned.
        let cancel = {
            let runtime = Arc::clone(&runtime);
            let recorders = recorders.clone();
            move || {
                let found_all = runtime.provider().entered.load(Ordering::SeqCst) == calls;
                let won = runtime.cancel_async_call(SINK);
                let finished: Vec<bool> = recorders.iter().map(|r| r.finished()).collect();
                (found_all, won, finished)
            }
        };
        let other_cancels: Vec<_> = (1..cancels)
            .map(|_| thread::spawn(cancel.clone()))
            .collect();
        let mut cancelled = vec![cancel()];
        cancelled.extend(other_cancels.into_iter().map(|t| t.join().unwrap()));
        let call_threads: Vec<ThreadId> = call_threads
            .into_iter()
            .map(|t| {
                let (returned, id) = t.join().unwrap();
                assert_eq!(returned, HResult::S_OK);
                id
            })
            .collect();

        let authors = behaviour.authors_status();
        let mut outcomes = Vec::new();
        for (recorder, call_thread) in recorders.iter().zip(&call_threads) {
            let (status, finisher) = recorder.status();
            let by = match finisher == *call_thread {
                true => By::CallThread,
                false => By::Canceller,
            };
            match by {
                By::Canceller => assert_eq!(status, HResult::WBEM_E_CALL_CANCELLED),
                By::CallThread => assert!(
                    status == authors
                        || (status == HResult::WBEM_E_CALL_CANCELLED
                            && matches!(behaviour, Behaviour::IndicatesThenFinishes)),
                    "{status} delivered by the call's thread ({behaviour:?})"
                ),
            }
            outcomes.push((status.raw(), by));
        }
        let won: usize = cancelled.iter().map(|(_, won, _)| won).sum();
        let statuses_cancelled = outcomes
            .iter()
            .filter(|(status, _)| *status == HResult::WBEM_E_CALL_CANCELLED.raw())
            .count();
        assert_eq!(won, statuses_cancelled, "{outcomes:?}");
        // A cancel that found a call returns once its final status was delivered — the
        // cancel's own or the one it waited for — unless an Indicate was with the sink: then
        // the sending thread delivers WBEM_E_CALL_CANCELLED when the sink returns.
        let deferred = (CANCELLED, By::CallThread);
        for (found_all, won, finished) in &cancelled {
            for (index, finished) in finished.iter().enumerate() {
                if !finished && (*found_all || (calls == 1 && *won == 1)) {
                    assert_eq!(outcomes[index], deferred, "{outcomes:?}");
                }
            }
        }
        for (thread, delivery) in runtime.provider().deliveries.lock().unwrap().iter() {
            let index = call_threads.iter().position(|t| t == thread).unwrap();
            let (status, by) = outcomes[index];
            let authors_went_out = status == authors.raw() && by == By::CallThread;
            assert_eq!(
                *delivery == Delivery::Delivered,
                authors_went_out,
                "{delivery:?} for {outcomes:?}"
            );
        }
        assert_eq!(runtime.in_flight(), 0);
        outcomes
    });
}

/// The author's finish against the cancel: one final status, the author's or the cancel's.
#[test]
fn cancel_races_finish() {
    race(
        Behaviour::Finishes,
        1,
        1,
        &[(OK, By::CallThread), (CANCELLED, By::Canceller)],
    );
}

/// A cancel while the finish's `Indicate` is with the sink: nothing after the final status,
/// and the Indicate's thread delivers `WBEM_E_CALL_CANCELLED` when the sink returns.
#[test]
fn cancel_races_an_indicate_in_flight() {
    race(
        Behaviour::IndicatesThenFinishes,
        1,
        1,
        &[
            (OK, By::CallThread),
            (CANCELLED, By::Canceller),
            (CANCELLED, By::CallThread),
        ],
    );
}

/// Two `CancelAsyncCall`s of the same sink against the finish: at most one of them wins.
#[test]
fn two_cancels_race_finish() {
    race(
        Behaviour::Finishes,
        1,
        2,
        &[(OK, By::CallThread), (CANCELLED, By::Canceller)],
    );
}

/// A guard dropped unfinished against the cancel: the guard's drop reports `WBEM_E_FAILED`
/// (and logs an error), or the cancel's `WBEM_E_CALL_CANCELLED` goes out; one of them, once.
///
/// Modelled on the call's `Op` with a `Response` dropped in a call scope, not through an author
/// that panics: a guard is dropped unfinished only while its thread unwinds, and loom cannot
/// follow that race. Its threads are coroutines on one OS thread, so while one unwinds
/// `std::thread::panicking()` is true for all of them; a loom `Mutex` another thread releases
/// then is poisoned inside loom (it keeps its data in a `std` mutex), and the unwinding
/// thread's next lock of it panics in a destructor. A real thread that is not panicking
/// poisons nothing (and the framework's locks ignore poisoning). The runtime's catching of the
/// panic is the leaked-guard model's, which unwinds without taking a lock.
#[test]
fn a_dropped_guard_races_cancel() {
    explore(
        &[(FAILED, By::CallThread), (CANCELLED, By::Canceller)],
        || {
            let recorder = StdArc::new(Recorder::default());
            let op = Arc::new(Op::new(StdArc::clone(&recorder) as _, CallFlags::empty()));
            let author = thread::spawn({
                let op = Arc::clone(&op);
                move || {
                    call::scope(|scope| drop(Response::new(&op, scope.issuer())));
                    thread::current().id()
                }
            });
            let cancelled = op.cancel();
            // Either way the final status went out before the cancel returned: its own, or
            // the drop's, which it waited for.
            assert!(
                recorder.finished(),
                "{cancelled:?} returned before the status"
            );
            let author = author.join().unwrap();
            let (status, finisher) = recorder.status();
            let by = match finisher == author {
                true => By::CallThread,
                false => By::Canceller,
            };
            match cancelled {
                CancelOutcome::Cancelled => assert_eq!(status, HResult::WBEM_E_CALL_CANCELLED),
                CancelOutcome::AlreadyFinished => assert_eq!(status, HResult::WBEM_E_FAILED),
            }
            assert_eq!(by == By::Canceller, cancelled == CancelOutcome::Cancelled);
            assert_eq!(
                op.token().is_cancelled(),
                cancelled == CancelOutcome::Cancelled
            );
            vec![(status.raw(), by)]
        },
    );
}

/// A guard leaked with `mem::forget` (the runtime finishes the call) against the cancel.
#[test]
fn cancel_races_a_leaked_guard() {
    race(
        Behaviour::Leaks,
        1,
        1,
        &[(FAILED, By::CallThread), (CANCELLED, By::Canceller)],
    );
}

/// Two calls sharing the sink, each indicating then finishing, against one cancel (R-WMI-12).
#[test]
fn cancel_races_two_calls_sharing_a_sink() {
    race(
        Behaviour::IndicatesThenFinishes,
        2,
        1,
        &[
            (OK, By::CallThread),
            (CANCELLED, By::Canceller),
            (CANCELLED, By::CallThread),
        ],
    );
}
