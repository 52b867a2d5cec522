//! loom models of `CancelAsyncCall` racing the author's `indicate` and `finish` (R-WMI-3,
//! R-WMI-11, R-WMI-12), run by `cargo xtask test` with `--cfg loom`. They drive the runtime
//! itself, with a recording sink in place of the client's `IWbemObjectSink`.

use crate::host::{SinkMessage, WBEM_STATUS_COMPLETE};
use crate::provider::{EventProvider, InstanceProvider, MethodProvider, Response};
use crate::runtime::{CallSink, Runtime};
use crate::value::Instance;
use loom::sync::Mutex;
use loom::thread;
use std::sync::Arc as StdArc;
use winprov_core::sync::Arc;
use winprov_core::{Completed, HResult, HostSink};

/// One call's sink: records what it receives and checks the order as it goes.
#[derive(Default)]
struct Recorder {
    messages: Mutex<Vec<SinkMessage>>,
}

impl HostSink<SinkMessage> for Recorder {
    fn deliver(&self, message: SinkMessage) -> HResult {
        let mut messages = self.messages.lock().unwrap();
        assert!(
            !messages.iter().any(SinkMessage::is_final),
            "R-WMI-3/11: {message:?} after the final SetStatus"
        );
        messages.push(message);
        HResult::S_OK
    }
}

impl Recorder {
    /// The final status, checking there is exactly one and that it is last.
    fn status(&self) -> HResult {
        let messages = self.messages.lock().unwrap();
        let finals: Vec<_> = messages.iter().filter(|m| m.is_final()).collect();
        assert_eq!(finals.len(), 1, "exactly one final SetStatus: {messages:?}");
        match finals[0] {
            SinkMessage::SetStatus {
                flags: WBEM_STATUS_COMPLETE,
                hresult,
                ..
            } => *hresult,
            other => unreachable!("{other:?}"),
        }
    }
}

#[derive(Clone, Copy)]
enum Behaviour {
    /// Indicates one instance, then finishes (the finish flushes the Indicate).
    IndicatesThenFinishes,
    /// Leaks its guard and panics: the runtime finishes the call.
    Leaks,
}

struct Provider(Behaviour);

impl InstanceProvider for Provider {
    fn enumerate<'call>(&self, _class: &str, mut call: Response<'call>) -> Completed<'call> {
        match self.0 {
            Behaviour::IndicatesThenFinishes => {
                let _ = call.indicate(Instance::new("Entry"));
                call.finish(Ok(()))
            }
            Behaviour::Leaks => {
                std::mem::forget(call);
                panic!("leaked the guard")
            }
        }
    }
}
impl MethodProvider for Provider {}
impl EventProvider for Provider {}

/// `calls` enumerations on one shared sink identity, each on its own thread, and a cancel of
/// that sink on the main thread: every call's sink gets exactly one final status, last; the
/// cancel's count is the number of WBEM_E_CALL_CANCELLED statuses.
fn race(behaviour: Behaviour, calls: usize) {
    loom::model(move || {
        let runtime = Arc::new(Runtime::new(Provider(behaviour)));
        let recorders: Vec<StdArc<Recorder>> = (0..calls)
            .map(|_| StdArc::new(Recorder::default()))
            .collect();
        let threads: Vec<_> = recorders
            .iter()
            .map(|recorder| {
                let runtime = Arc::clone(&runtime);
                let sink = CallSink {
                    identity: 7,
                    sink: StdArc::clone(recorder) as _,
                };
                thread::spawn(move || runtime.create_instance_enum_async("Entry", 0, sink))
            })
            .collect();
        let won = runtime.cancel_async_call(7);
        for call in threads {
            assert_eq!(call.join().unwrap(), HResult::S_OK);
        }
        let statuses: Vec<HResult> = recorders.iter().map(|r| r.status()).collect();
        let cancelled = statuses
            .iter()
            .filter(|s| **s == HResult::WBEM_E_CALL_CANCELLED)
            .count();
        assert_eq!(cancelled, won, "{statuses:?}");
        let authors = match behaviour {
            Behaviour::IndicatesThenFinishes => HResult::S_OK,
            Behaviour::Leaks => HResult::WBEM_E_FAILED,
        };
        assert!(
            statuses
                .iter()
                .all(|s| *s == authors || *s == HResult::WBEM_E_CALL_CANCELLED)
        );
        assert_eq!(runtime.in_flight(), 0);
    });
}

#[test]
fn cancel_races_indicate_and_finish() {
    race(Behaviour::IndicatesThenFinishes, 1);
}

#[test]
fn cancel_races_a_leaked_guard() {
    race(Behaviour::Leaks, 1);
}

#[test]
fn cancel_races_two_calls_sharing_a_sink() {
    race(Behaviour::IndicatesThenFinishes, 2);
}
