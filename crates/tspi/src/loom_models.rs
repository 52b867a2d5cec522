//! loom models of the termination race (`RUSTFLAGS="--cfg loom" cargo test -p winprov-tspi
//! --lib loom_models --release`): the author completing a request on its worker thread while
//! TAPI's `TSPI_lineCloseCall` runs on another.

use crate::dispatch::{Callback, Dispatcher};
use crate::provider::{CallLink, CallerId, Pending};
use crate::runtime::CallShared;
use loom::sync::Mutex;
use std::sync::Arc;
use winprov_bindings::tapi::{self, HTAPICALL, HTAPILINE};
use winprov_core::{HostSink, LineErr};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Completion(u32, i32),
    State(u32),
    /// `TSPI_lineCloseCall` returned.
    Closed,
}

#[derive(Clone, Default)]
struct Recorder(loom::sync::Arc<Mutex<Vec<Seen>>>);

impl HostSink<Callback> for Recorder {
    fn deliver(&self, callback: Callback) -> usize {
        let seen = match callback {
            Callback::Completion {
                request, result, ..
            } => Seen::Completion(request, result),
            Callback::Event { params, .. } => Seen::State(params[0] as u32),
            Callback::NewCall { .. } => return 0,
        };
        self.0.lock().unwrap().push(seen);
        0
    }
}

extern "system" fn no_completion(_: u32, _: i32) {}
extern "system" fn no_event(_: HTAPILINE, _: HTAPICALL, _: u32, _: usize, _: usize, _: usize) {}

fn check(seen: &[Seen]) {
    let completions: Vec<_> = seen
        .iter()
        .filter(|s| matches!(s, Seen::Completion(..)))
        .collect();
    assert_eq!(
        completions.len(),
        1,
        "exactly one ASYNC_COMPLETION: {seen:?}"
    );
    let closed = seen
        .iter()
        .position(|s| *s == Seen::Closed)
        .expect("close returned");
    let completed = seen
        .iter()
        .position(|s| matches!(s, Seen::Completion(..)))
        .unwrap();
    assert!(
        completed < closed,
        "completed before lineCloseCall returned: {seen:?}"
    );
    assert!(
        seen[closed + 1..].is_empty(),
        "nothing for the call after lineCloseCall returned: {seen:?}"
    );
    match completions[0] {
        Seen::Completion(7, 0) => {}
        Seen::Completion(7, code) => assert_eq!(*code, LineErr::LINEERR_OPERATIONFAILED.raw()),
        other => panic!("unexpected {other:?}"),
    }
}

/// A call in `state` whose host side records into the returned recorder, with an accepted
/// `TSPI_lineDrop` (request 7) pending.
fn call_with_pending_drop(state: u32) -> (Recorder, Arc<CallShared>, Pending) {
    let recorder = Recorder::default();
    let dispatch = Arc::new(Dispatcher::new(Box::new(recorder.clone())));
    let call = CallShared::new(
        dispatch,
        no_event,
        1,
        2,
        state,
        tapi::LINECALLORIGIN_OUTBOUND,
        CallerId::default(),
    );
    let live: &'static _ = Box::leak(Box::new(winprov_core::sync::AtomicUsize::new(0)));
    let pending = CallShared::accept_drop(&call, 7, no_completion, live);
    (recorder, call, pending)
}

/// A drop request completed by the author (success, which also sends IDLE) races
/// `TSPI_lineCloseCall`: one completion, delivered before close returns, and no event after.
#[test]
fn complete_races_line_close_call() {
    loom::model(|| {
        let (recorder, call, pending) = call_with_pending_drop(tapi::LINECALLSTATE_CONNECTED);
        let author = loom::thread::spawn(move || {
            let _ = pending.complete(Ok(()));
        });
        call.terminate();
        recorder.0.lock().unwrap().push(Seen::Closed);
        author.join().unwrap();
        check(&recorder.0.lock().unwrap());
    });
}

/// The author reports a state while `TSPI_lineCloseCall` runs: the event is either delivered
/// before close returns or not at all.
#[test]
fn event_races_line_close_call() {
    loom::model(|| {
        let (recorder, call, pending) = call_with_pending_drop(tapi::LINECALLSTATE_DIALING);
        let worker = {
            let call = Arc::clone(&call);
            loom::thread::spawn(move || {
                let _ = call.report_state(tapi::LINECALLSTATE_CONNECTED, 0);
            })
        };
        call.terminate();
        recorder.0.lock().unwrap().push(Seen::Closed);
        worker.join().unwrap();
        drop(pending);
        check(&recorder.0.lock().unwrap());
    });
}
