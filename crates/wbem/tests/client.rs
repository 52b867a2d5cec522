//! The client side (`winprov_wbem::client`) against a provider, through the simulator's WMI
//! and the provider object's real vtables: every kind of call, one final status per call
//! whatever the server sends, one sink per call (cancelling one call leaves the others
//! alone), cancel on drop and only then, refusals reported without waiting, and no deadlock
//! when the provider runs the call on the caller's own thread.

#![allow(non_snake_case, reason = "WMI's names")]

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};
use winprov_wbem::class::{KeyedClass, MethodParameters, WmiClass};
use winprov_wbem::client::{AsyncCall, ClientError, Connection};
use winprov_wbem::testing::{Dispatch, Host};
use winprov_wbem::{
    BATCH_SIZE, Cancellation, Completed, DeleteCall, EventProvider, GetCall, HResult, Instance,
    InstanceProvider, MethodCall, MethodProvider, ProviderInit, PutCall, Response, Value,
    WaitOutcome, wmi_class,
};

wmi_class! {
    /// A stored entry.
    [dynamic, provider("Test")]
    class Test_Entry {
        key {
            Name: String,
        }
        properties {
            Size: u32,
            Tags: Vec<String>,
        }
        methods {
            /// How many entries are larger than `Above`.
            [static, implemented]
            fn Count(CountIn { Above: u32 }) -> CountOut { ReturnValue: u32 };

            /// Takes no in-parameters.
            [static, implemented]
            fn Clear(ClearIn {}) -> ClearOut { ReturnValue: u32 };
        }
    }
}

// A connection is shared between threads; a call moves to another.
const _: () = {
    const fn shared<T: Send + Sync>() {}
    const fn sent<T: Send>() {}
    shared::<Connection>();
    sent::<AsyncCall>();
};

/// The class whose enumeration waits at its gate after a first batch.
const SLOW: &str = "Test_Slow";
/// The class with many instances.
const MANY: &str = "Test_Many";
/// How many objects a slow enumeration sends in all.
const SLOW_TOTAL: usize = 3 * BATCH_SIZE;
/// Longest any test waits for something that must happen.
const PATIENCE: Duration = Duration::from_secs(20);

/// How one slow enumeration ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ended {
    sent: usize,
    cancelled: bool,
}

/// Entries in a map, a slow class behind a gate, a class with many instances.
#[derive(Default)]
struct Store {
    entries: Mutex<BTreeMap<String, Test_Entry>>,
    gate_open: Mutex<bool>,
    gate: Condvar,
    ended: Mutex<Vec<Ended>>,
}

impl Store {
    fn open_gate(&self) {
        *self.gate_open.lock().unwrap() = true;
        self.gate.notify_all();
    }

    /// Waits for the gate to open: `false` when the call is cancelled first.
    fn pass_gate(&self, cancellation: Cancellation<'_>) -> bool {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if cancellation.is_cancelled() {
                return false;
            }
            let open = self.gate_open.lock().unwrap();
            let (open, _) = self
                .gate
                .wait_timeout(open, Duration::from_millis(2))
                .unwrap();
            if *open {
                return true;
            }
            drop(open);
            assert!(Instant::now() < deadline, "the gate never opened");
            if cancellation.wait_timeout(Duration::from_millis(1)) == WaitOutcome::Cancelled {
                return false;
            }
        }
    }

    fn slow<'call>(&self, mut call: Response<'call>) -> Completed<'call> {
        let mut sent = 0;
        let mut send = |call: &mut Response<'call>, n: usize| {
            let sent_now = call
                .indicate(Instance::new(SLOW).with("N", Value::Str(n.to_string())))
                .is_ok();
            sent += usize::from(sent_now);
            sent_now
        };
        // The first batch reaches the client; then the gate.
        let first = (0..BATCH_SIZE).all(|n| send(&mut call, n));
        if first && self.pass_gate(call.cancellation()) {
            let _ = (BATCH_SIZE..SLOW_TOTAL).all(|n| send(&mut call, n));
        }
        let cancelled = call.is_cancelled();
        self.ended.lock().unwrap().push(Ended { sent, cancelled });
        call.finish(Ok(()))
    }

    fn ended(&self) -> Vec<Ended> {
        self.ended.lock().unwrap().clone()
    }
}

impl ProviderInit for Store {}

impl InstanceProvider for Store {
    fn get_object<'call>(&self, path: &str, call: GetCall<'call>) -> Completed<'call> {
        let name = match Test_Entry::parse_path(path) {
            Ok((name,)) => name,
            Err(error) => return call.fail(error.hresult()),
        };
        match self.entries.lock().unwrap().get(&name) {
            Some(entry) => call.found(entry.to_instance()),
            None => call.not_found(),
        }
    }

    fn enumerate<'call>(&self, class: &str, mut call: Response<'call>) -> Completed<'call> {
        match class {
            SLOW => self.slow(call),
            MANY => {
                let all = (0..20 * BATCH_SIZE).all(|n| {
                    call.indicate(Instance::new(MANY).with("N", Value::I32(n as i32)))
                        .is_ok()
                });
                call.finish(if all {
                    Ok(())
                } else {
                    Err(HResult::WBEM_E_CALL_CANCELLED)
                })
            }
            _ => {
                let entries: Vec<Instance> = self
                    .entries
                    .lock()
                    .unwrap()
                    .values()
                    .map(WmiClass::to_instance)
                    .collect();
                for entry in entries {
                    if call.indicate(entry).is_err() {
                        break;
                    }
                }
                call.finish(Ok(()))
            }
        }
    }

    fn query<'call>(
        &self,
        _language: &str,
        query: &str,
        call: Response<'call>,
    ) -> Completed<'call> {
        match query.strip_prefix("SELECT * FROM ") {
            Some(class) => self.enumerate(class, call),
            None => call.finish(Err(HResult::WBEM_E_INVALID_QUERY)),
        }
    }

    fn put<'call>(&self, instance: Instance, call: PutCall<'call>) -> Completed<'call> {
        let entry = match Test_Entry::from_instance(&instance) {
            Ok(entry) => entry,
            Err(error) => return call.complete(Err(error.hresult())),
        };
        let path = entry.path();
        self.entries
            .lock()
            .unwrap()
            .insert(entry.Name.clone(), entry);
        call.complete(Ok(path))
    }

    fn delete<'call>(&self, path: &str, call: DeleteCall<'call>) -> Completed<'call> {
        let name = match Test_Entry::parse_path(path) {
            Ok((name,)) => name,
            Err(error) => return call.complete(Err(error.hresult())),
        };
        match self.entries.lock().unwrap().remove(&name) {
            Some(_) => call.complete(Ok(())),
            None => call.complete(Err(HResult::WBEM_E_NOT_FOUND)),
        }
    }
}

impl MethodProvider for Store {
    fn exec_method<'call>(
        &self,
        _path: &str,
        method: &str,
        in_parameters: Option<&Instance>,
        call: MethodCall<'call>,
    ) -> Completed<'call> {
        let out = match method {
            "Count" => match CountIn::from_parameters(in_parameters) {
                Ok(CountIn { Above }) => {
                    let entries = self.entries.lock().unwrap();
                    let larger = entries.values().filter(|e| e.Size > Above).count();
                    Ok(CountOut {
                        ReturnValue: larger as u32,
                    }
                    .to_instance())
                }
                Err(error) => Err(error.hresult()),
            },
            _ => Err(HResult::WBEM_E_INVALID_METHOD),
        };
        call.complete(out.map(Some))
    }
}

impl EventProvider for Store {}

/// WMI with the test class, serving a new store.
fn host() -> Host<Store> {
    let host = Host::new(Store::default());
    host.declare_class::<Test_Entry>();
    host
}

fn entry(name: &str, size: u32) -> Test_Entry {
    Test_Entry {
        Name: name.into(),
        Size: size,
        Tags: vec!["a".into(), name.into()],
    }
}

/// Runs `body` on a thread of its own and fails if it takes longer than [`PATIENCE`] (a call
/// that waits forever fails the test instead of hanging it).
fn within<T: Send + 'static>(what: &str, body: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let _ = done.send(body());
    });
    match result.recv_timeout(2 * PATIENCE) {
        Ok(value) => {
            thread.join().unwrap();
            value
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(thread.join().unwrap_err())
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: still waiting after {:?}", 2 * PATIENCE)
        }
    }
}

/// Waits until `condition` holds (it must, soon).
fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not after {PATIENCE:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn names(instances: &[Instance]) -> Vec<String> {
    instances
        .iter()
        .map(|i| Test_Entry::from_instance(i).unwrap().Name)
        .collect()
}

/// Every kind of call, with `dispatch`.
fn every_call(dispatch: Dispatch) {
    let host = host();
    let wmi = host.client_with(dispatch);

    // Put: the final status carries the new instance's path.
    for (name, size) in [("a", 1), ("b", 5), ("c", 9)] {
        let status = wmi.put(&entry(name, size).to_instance()).finish().unwrap();
        assert_eq!(status.hresult, HResult::S_OK);
        assert_eq!(status.param, Some(entry(name, size).path()));
        assert_eq!(status.ignored, 0);
    }

    // Enumerate and query: every instance, typed as declared.
    let mut call = wmi.enumerate("Test_Entry");
    let all: Vec<Instance> = call.by_ref().collect();
    assert_eq!(call.finish().unwrap().hresult, HResult::S_OK);
    assert_eq!(names(&all), ["a", "b", "c"]);
    assert_eq!(Test_Entry::from_instance(&all[1]).unwrap(), entry("b", 5));
    let mut call = wmi.query("SELECT * FROM Test_Entry");
    assert_eq!(call.by_ref().count(), 3);
    call.finish().unwrap();

    // Get: the one instance; a path nobody knows is the final status WBEM_E_NOT_FOUND.
    let mut call = wmi.get(&entry("b", 0).path());
    let got: Vec<Instance> = call.by_ref().collect();
    call.finish().unwrap();
    assert_eq!(got, [entry("b", 5).to_instance()]);
    let mut call = wmi.get(&entry("z", 0).path());
    assert_eq!(call.next(), None);
    assert!(matches!(
        call.finish(),
        Err(ClientError::Failed {
            hresult: HResult::WBEM_E_NOT_FOUND,
            ..
        })
    ));

    // A static method with in-parameters: its out-parameters are the call's one object.
    let parameters = CountIn { Above: 2 }.to_instance();
    let mut call = wmi.exec_method(Test_Entry::NAME, "Count", Some(&parameters));
    let out: Vec<Instance> = call.by_ref().collect();
    call.finish().unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(CountOut::from_instance(&out[0]).unwrap().ReturnValue, 2);
    // In-parameters for a method that takes none: refused before the call.
    let call = wmi.exec_method(Test_Entry::NAME, "Clear", Some(&parameters));
    assert_eq!(
        call.finish(),
        Err(ClientError::Refused {
            hresult: HResult::WBEM_E_INVALID_METHOD_PARAMETERS
        })
    );
    // A put of a value of the wrong type: refused before the call.
    let wrong = Instance::new("Test_Entry")
        .with("Name", Value::Str("w".into()))
        .with("Size", Value::Bool(true));
    assert_eq!(
        wmi.put(&wrong).finish(),
        Err(ClientError::Refused {
            hresult: HResult::WBEM_E_TYPE_MISMATCH
        })
    );

    // Delete, then the entry is gone.
    wmi.delete(&entry("a", 0).path()).finish().unwrap();
    let mut call = wmi.enumerate("Test_Entry");
    assert_eq!(names(&call.by_ref().collect::<Vec<_>>()), ["b", "c"]);
    call.finish().unwrap();
    assert_eq!(
        wmi.delete(&entry("a", 0).path())
            .finish()
            .unwrap_err()
            .hresult(),
        HResult::WBEM_E_NOT_FOUND
    );

    // Every call ran to its end: nothing was cancelled, every sink is gone.
    assert_eq!(host.client_cancels(), 0);
    eventually("every sink released", || wmi.live_sinks() == 0);
    drop(wmi);
    let left = host.release();
    assert_eq!((left.provider, left.simulator), (0, 0));
}

#[test]
fn every_call_reaches_the_provider_in_process() {
    every_call(Dispatch::Inline);
}

#[test]
fn every_call_reaches_the_provider_through_wmi_threads() {
    within("every call, threaded", || every_call(Dispatch::Threaded));
}

#[test]
fn a_provider_on_the_callers_thread_does_not_deadlock_the_iterator() {
    // The provider indicates everything inside CreateInstanceEnumAsync, before the caller
    // reads anything: the sink's channel must take it all without blocking.
    within("an in-process enumeration", || {
        let host = host();
        let wmi = host.client();
        let mut call = wmi.enumerate(MANY);
        let all: Vec<Instance> = call.by_ref().collect();
        call.finish().unwrap();
        assert_eq!(all.len(), 20 * BATCH_SIZE);
        assert_eq!(all[7].get("N"), Some(&Value::I32(7)));
        drop(wmi);
        host.release();
    });
}

#[test]
fn a_call_has_one_final_status_whatever_the_server_sends() {
    // The simulator's WMI sends a second final status (WBEM_E_FAILED) and an object after
    // the provider's own final status, on every call.
    let host = host();
    let wmi = host.client_with(Dispatch::Repeating);
    let status = wmi.put(&entry("a", 1).to_instance()).finish().unwrap();
    assert_eq!(status.hresult, HResult::S_OK);
    assert_eq!(status.param, Some(entry("a", 1).path()));
    assert_eq!(status.ignored, 2, "the second status and the late object");

    let mut call = wmi.enumerate("Test_Entry");
    let all: Vec<Instance> = call.by_ref().collect();
    let status = call.finish().unwrap();
    assert_eq!(names(&all), ["a"], "nothing after the final status");
    assert_eq!((status.hresult, status.ignored), (HResult::S_OK, 2));

    let mut call = wmi.get(&entry("z", 0).path());
    assert_eq!(call.next(), None);
    assert_eq!(
        call.finish().unwrap_err(),
        ClientError::Failed {
            hresult: HResult::WBEM_E_NOT_FOUND,
            param: None
        }
    );
    drop(wmi);
    host.release();
}

#[test]
fn a_call_refused_up_front_reports_its_error_without_waiting() {
    // A provider object that was never initialized refuses every call from its *Async
    // method, without touching the sink.
    let host = Host::uninitialized(Store::default());
    let wmi = host.client();
    let mut call = wmi.enumerate("Test_Entry");
    let moved = wmi.clone();
    let outcome = within("a refused call's finish", move || {
        assert_eq!(call.next(), None);
        let outcome = call.finish();
        drop(moved);
        outcome
    });
    assert_eq!(
        outcome,
        Err(ClientError::Refused {
            hresult: HResult::WBEM_E_FAILED
        })
    );
    // Dropped unfinished, a refused call cancels nothing: there is nothing to cancel.
    drop(wmi.get("Test_Entry.Name=\"a\""));
    assert_eq!(host.client_cancels(), 0);
    assert_eq!(wmi.live_sinks(), 0);
    drop(wmi);
    host.release();
}

#[test]
fn a_refusal_after_wmi_accepted_the_call_is_its_final_status() {
    // WMI returned at once; the provider refused on WMI's thread: the sink gets the error.
    let host = Host::uninitialized(Store::default());
    let wmi = host.client_with(Dispatch::Threaded);
    let call = wmi.enumerate("Test_Entry");
    let outcome = within("the final status", move || call.finish());
    assert_eq!(
        outcome,
        Err(ClientError::Failed {
            hresult: HResult::WBEM_E_FAILED,
            param: None
        })
    );
    drop(wmi);
    host.release();
}

/// Reads the first batch of `call`, which the provider sends before its gate.
fn first_batch(call: &mut AsyncCall) {
    let first: Vec<Instance> = call.by_ref().take(BATCH_SIZE).collect();
    assert_eq!(first.len(), BATCH_SIZE);
}

#[test]
fn dropping_a_call_cancels_it_alone() {
    let host = std::sync::Arc::new(host());
    let wmi = host.client_with(Dispatch::Threaded);
    let (kept, dropped) = {
        let (host, wmi) = (std::sync::Arc::clone(&host), wmi.clone());
        within("two calls at once", move || {
            // Two enumerations at once, each with its own sink, both waiting at the gate.
            let mut dropped = wmi.enumerate(SLOW);
            let mut kept = wmi.enumerate(SLOW);
            first_batch(&mut dropped);
            first_batch(&mut kept);
            assert!(host.runtime().provider().ended().is_empty());

            // Dropped mid-call: CancelAsyncCall with its sink, and no wait for its status.
            drop(dropped);
            assert_eq!(host.client_cancels(), 1);
            let store = host.runtime().provider();
            let ended_cancelled = || {
                store.ended()
                    == [Ended {
                        sent: BATCH_SIZE,
                        cancelled: true,
                    }]
            };
            eventually("the dropped call cancelled", ended_cancelled);

            // The other call was not cancelled: past the gate, it sends everything.
            store.open_gate();
            let rest: Vec<Instance> = kept.by_ref().collect();
            assert_eq!(rest.len(), SLOW_TOTAL - BATCH_SIZE);
            let status = kept.finish().unwrap();
            assert_eq!(status.hresult, HResult::S_OK);
            let ended = store.ended();
            (ended[1], ended[0])
        })
    };
    assert_eq!(
        kept,
        Ended {
            sent: SLOW_TOTAL,
            cancelled: false
        }
    );
    assert_eq!(
        dropped,
        Ended {
            sent: BATCH_SIZE,
            cancelled: true
        }
    );
    assert_eq!(host.client_cancels(), 1);
    // The dropped call's sink, which nobody read any more, is gone with its last Release.
    eventually("both sinks released", || wmi.live_sinks() == 0);
    drop(wmi);
    let host = std::sync::Arc::try_unwrap(host).expect("the only host");
    let left = host.release();
    assert_eq!((left.provider, left.simulator), (0, 0));
}

#[test]
fn a_finished_call_is_not_cancelled_when_dropped() {
    for dispatch in [Dispatch::Inline, Dispatch::Threaded] {
        let host = host();
        host.runtime().provider().open_gate();
        let wmi = host.client_with(dispatch);
        within("finished calls", {
            let wmi = wmi.clone();
            move || {
                // Finished: `finish` consumed it.
                wmi.enumerate(SLOW).finish().unwrap();
                // Read to its end (its final status received), then dropped.
                let mut call = wmi.enumerate(SLOW);
                assert_eq!(call.by_ref().count(), SLOW_TOTAL);
                drop(call);
                // A put dropped unread once its final status is there.
                let mut call = wmi.put(&entry("a", 1).to_instance());
                assert_eq!(call.next(), None);
                drop(call);
            }
        });
        assert_eq!(host.client_cancels(), 0, "{dispatch:?}");
        assert_eq!(
            host.runtime().provider().ended(),
            [Ended {
                sent: SLOW_TOTAL,
                cancelled: false
            }; 2],
            "{dispatch:?}"
        );
        eventually("every sink released", || wmi.live_sinks() == 0);
        drop(wmi);
        host.release();
    }
}

#[test]
fn in_process_a_call_dropped_unread_has_finished_and_cancels_nothing() {
    // The provider ran the whole call inside the *Async method: its final status is there
    // before the caller reads anything, so dropping it unread cancels nothing.
    let host = host();
    host.runtime().provider().open_gate();
    let wmi: Connection = host.client();
    drop(wmi.enumerate(SLOW));
    assert_eq!(host.client_cancels(), 0);
    assert_eq!(wmi.live_sinks(), 0);
    drop(wmi);
    host.release();
}
