//! One test per WMI rule this layer enforces (R-WMI-1 … R-WMI-15 but R-WMI-16, decoupled
//! providers), each named after its ID and listed in docs/rules.md. They drive the provider's
//! COM object through its vtables with the host simulator (`winprov_wbem::testing::Host`),
//! which also checks on every call that its sink gets exactly one final `SetStatus`, nothing
//! after it, no progress the client did not ask for, no `SetStatus` from a call that returned
//! an error, and that the provider holds a reference to the sink while it uses it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use winprov_wbem::testing::{EventLog, Host, Registered, Registrar};
use winprov_wbem::{
    BATCH_SIZE, CallFlags, Cancelled, Completed, Decoupled, DeleteCall, Delivery, EventProvider,
    EventSink, GetCall, HResult, Init, Instance, InstanceProvider, MethodCall, MethodProvider,
    ProviderInit, PutCall, Response, Value, WaitOutcome,
};

const WATCHDOG: Duration = Duration::from_secs(20);

type EnumFn = Box<dyn for<'c> Fn(Response<'c>) -> Completed<'c> + Send + Sync>;
/// What the author's late indicate and finish reported, per call.
type Seen = Arc<Mutex<Vec<(Result<(), Cancelled>, Delivery)>>>;
type MethodFn = Box<dyn for<'c> Fn(MethodCall<'c>) -> Completed<'c> + Send + Sync>;

/// A provider of entries `Entry.Name="…"`, whose enumeration and method each test chooses.
struct Directory {
    entries: Mutex<Vec<Instance>>,
    enumerate: EnumFn,
    method: MethodFn,
    events: Mutex<Option<EventSink>>,
}

fn entry(name: &str) -> Instance {
    Instance::new("Entry").with("Name", Value::Str(name.into()))
}

fn path_of(instance: &Instance) -> String {
    match instance.get("Name") {
        Some(Value::Str(name)) => format!("Entry.Name=\"{name}\""),
        _ => String::new(),
    }
}

impl Directory {
    fn new() -> Self {
        Self {
            entries: Mutex::new(vec![entry("a"), entry("b")]),
            enumerate: Box::new(|call: Response<'_>| call.finish(Ok(()))),
            method: Box::new(|call: MethodCall<'_>| call.complete(Ok(None))),
            events: Mutex::new(None),
        }
    }

    fn enumerating(
        mut self,
        f: impl for<'c> Fn(Response<'c>) -> Completed<'c> + Send + Sync + 'static,
    ) -> Self {
        self.enumerate = Box::new(f);
        self
    }

    fn with_method(
        mut self,
        f: impl for<'c> Fn(MethodCall<'c>) -> Completed<'c> + Send + Sync + 'static,
    ) -> Self {
        self.method = Box::new(f);
        self
    }
}

impl ProviderInit for Directory {}

impl InstanceProvider for Directory {
    fn get_object<'call>(&self, path: &str, call: GetCall<'call>) -> Completed<'call> {
        let entries = self.entries.lock().unwrap();
        let found = entries.iter().find(|e| path_of(e) == path).cloned();
        drop(entries);
        call.complete(Ok(found))
    }

    fn enumerate<'call>(&self, _class: &str, call: Response<'call>) -> Completed<'call> {
        (self.enumerate)(call)
    }

    fn put<'call>(&self, instance: Instance, call: PutCall<'call>) -> Completed<'call> {
        let path = path_of(&instance);
        self.entries.lock().unwrap().push(instance);
        call.complete(Ok(path))
    }

    fn delete<'call>(&self, path: &str, call: DeleteCall<'call>) -> Completed<'call> {
        let mut entries = self.entries.lock().unwrap();
        let before = entries.len();
        entries.retain(|e| path_of(e) != path);
        let removed = entries.len() < before;
        drop(entries);
        call.complete(if removed {
            Ok(())
        } else {
            Err(HResult::WBEM_E_NOT_FOUND)
        })
    }
}

impl MethodProvider for Directory {
    fn exec_method<'call>(
        &self,
        _path: &str,
        _method: &str,
        _in: Option<&Instance>,
        call: MethodCall<'call>,
    ) -> Completed<'call> {
        (self.method)(call)
    }
}

impl EventProvider for Directory {
    fn provide_events(&self, sink: EventSink, _flags: i32) -> Result<(), HResult> {
        *self.events.lock().unwrap() = Some(sink);
        Ok(())
    }
}

/// Indicates `n` entries, stopping at a cancel.
fn indicate_n(n: usize) -> impl for<'c> Fn(Response<'c>) -> Completed<'c> + Send + Sync {
    move |mut call| {
        for i in 0..n {
            if call.indicate(entry(&i.to_string())).is_err() {
                break;
            }
        }
        call.finish(Ok(()))
    }
}

/// Blocks until the call is cancelled, then tries to indicate and finish (both no-ops).
fn wait_for_cancel(seen: Seen) -> impl for<'c> Fn(Response<'c>) -> Completed<'c> + Send + Sync {
    move |mut call| {
        let cancellation = call.cancellation();
        assert!(
            cancellation.wait_timeout(WATCHDOG) == WaitOutcome::Cancelled,
            "the call's cancellation never tripped"
        );
        let indicated = call.indicate(entry("late"));
        let done = call.finish(Ok(()));
        seen.lock().unwrap().push((indicated, done.delivery()));
        done
    }
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !ready() {
        assert!(start.elapsed() < WATCHDOG, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

// ---------------------------------------------------------------------------------------------

#[test]
fn r_wmi_3_one_final_setstatus_after_every_indicate() {
    // Batched Indicates, flushed before the one final status.
    let host = Host::new(Directory::new().enumerating(indicate_n(2 * BATCH_SIZE + 5)));
    let sink = host.sink();
    let record = host.enumerate(&sink, "Entry", CallFlags::empty());
    assert_eq!(record.indicated.len(), 2 * BATCH_SIZE + 5);
    assert_eq!(record.batches, [BATCH_SIZE, BATCH_SIZE, 5]);
    assert_eq!(record.status, Some((HResult::S_OK, None)));

    // An error status, after what was indicated.
    let host = Host::new(Directory::new().enumerating(|mut call| {
        call.indicate(entry("x")).unwrap();
        call.finish(Err(HResult::WBEM_E_ACCESS_DENIED))
    }));
    let record = host.enumerate(&host.sink(), "Entry", CallFlags::empty());
    assert_eq!(record.batches, [1]);
    assert_eq!(record.status, Some((HResult::WBEM_E_ACCESS_DENIED, None)));

    // A guard dropped unfinished: one WBEM_E_FAILED (the author then has no proof to return).
    let host = Host::new(Directory::new().enumerating(|call| {
        drop(call);
        panic!("dropped the guard")
    }));
    let record = host.enumerate(&host.sink(), "Entry", CallFlags::empty());
    assert_eq!(record.status, Some((HResult::WBEM_E_FAILED, None)));

    // A guard leaked with mem::forget: the framework finishes the call once.
    let host = Host::new(Directory::new().enumerating(|call| {
        std::mem::forget(call);
        panic!("leaked the guard")
    }));
    let record = host.enumerate(&host.sink(), "Entry", CallFlags::empty());
    assert_eq!(record.status, Some((HResult::WBEM_E_FAILED, None)));
    assert_eq!(record.finals, 1);
    assert_eq!(host.runtime().in_flight(), 0);
}

#[test]
fn r_wmi_4_progress_only_when_asked() {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&sent);
    let host = Host::new(Directory::new().enumerating(move |mut call| {
        call.indicate(entry("a")).unwrap();
        log.lock().unwrap().push(call.progress(1, 2));
        call.finish(Ok(()))
    }));
    let quiet = host.enumerate(&host.sink(), "Entry", CallFlags::empty());
    assert!(quiet.progress.is_empty());
    let asked = host.enumerate(&host.sink(), "Entry", CallFlags::SEND_STATUS);
    assert_eq!(asked.progress, [HResult::from_raw(0x0002_0001)]);
    // The batched instance went out before the progress report.
    assert_eq!(asked.batches, [1]);
    assert_eq!(*sent.lock().unwrap(), [false, true]);
}

#[test]
fn r_wmi_5_never_both_an_error_return_and_setstatus() {
    // Refused up front: the error is returned and the sink is not used.
    let host = Host::new(Directory::new());
    let record = host.get_object(&host.sink(), "", CallFlags::empty());
    assert_eq!(record.returned, Some(HResult::WBEM_E_INVALID_OBJECT_PATH));
    assert_eq!(record.finals, 0);
    let record = host.exec_method(&host.sink(), "Entry", "", None, CallFlags::empty());
    assert_eq!(record.returned, Some(HResult::WBEM_E_INVALID_METHOD));
    assert_eq!(record.finals, 0);
    // Accepted: the method returns WBEM_S_NO_ERROR and the status is on the sink, even when
    // the author panics.
    let host = Host::new(Directory::new().enumerating(|_call| panic!("the backend broke")));
    let record = host.enumerate(&host.sink(), "Entry", CallFlags::empty());
    assert_eq!(record.returned, Some(HResult::S_OK));
    assert_eq!(record.status, Some((HResult::WBEM_E_FAILED, None)));
}

#[test]
fn r_wmi_6_roles_not_played_are_not_capable() {
    struct Nothing;
    impl InstanceProvider for Nothing {}
    impl MethodProvider for Nothing {}
    impl EventProvider for Nothing {}
    impl ProviderInit for Nothing {}
    let host = Host::new(Nothing);
    let sink = host.sink();
    let not_capable = Some((HResult::WBEM_E_PROVIDER_NOT_CAPABLE, None));
    assert_eq!(
        host.get_object(&sink, "Entry.Name=\"a\"", CallFlags::empty())
            .status,
        not_capable
    );
    assert_eq!(
        host.enumerate(&sink, "Entry", CallFlags::empty()).status,
        not_capable
    );
    assert_eq!(
        host.query(&sink, "SELECT * FROM Entry", CallFlags::empty())
            .status,
        not_capable
    );
    assert_eq!(
        host.put(&sink, entry("c"), CallFlags::empty()).status,
        not_capable
    );
    assert_eq!(
        host.delete(&sink, "Entry.Name=\"a\"", CallFlags::empty())
            .status,
        not_capable
    );
    assert_eq!(
        host.exec_method(&sink, "Entry", "Count", None, CallFlags::empty())
            .status,
        not_capable
    );
    let events = EventLog::answering([]);
    assert_eq!(
        host.provide_events(&events, 0),
        HResult::WBEM_E_PROVIDER_NOT_CAPABLE
    );
    // The synchronous, class and notification methods of IWbemServices are never served.
    assert_eq!(
        host.unserved_methods(),
        [HResult::WBEM_E_PROVIDER_NOT_CAPABLE; 6]
    );
}

#[test]
fn r_wmi_7_unknown_path_is_not_found_without_indicate() {
    let host = Host::new(Directory::new());
    let sink = host.sink();
    let unknown = host.get_object(&sink, "Entry.Name=\"zz\"", CallFlags::empty());
    assert_eq!(unknown.status, Some((HResult::WBEM_E_NOT_FOUND, None)));
    assert!(unknown.batches.is_empty());
    let known = host.get_object(&sink, "Entry.Name=\"a\"", CallFlags::empty());
    assert_eq!(known.indicated, [entry("a")]);
    assert_eq!(known.status, Some((HResult::S_OK, None)));
}

#[test]
fn r_wmi_8_method_out_parameters_indicated_once_before_status() {
    let host = Host::new(
        Directory::new()
            .with_method(|call| call.complete(Ok(Some(Instance::out_parameters(Value::U32(7)))))),
    );
    let record = host.exec_method(&host.sink(), "Entry", "Count", None, CallFlags::empty());
    assert_eq!(record.indicated, [Instance::out_parameters(Value::U32(7))]);
    assert_eq!(record.status, Some((HResult::S_OK, None)));
    // A method without out-parameters, and a failing one, indicate nothing.
    let host = Host::new(Directory::new());
    let record = host.exec_method(&host.sink(), "Entry", "Reload", None, CallFlags::empty());
    assert!(record.indicated.is_empty());
    assert_eq!(record.status, Some((HResult::S_OK, None)));
}

#[test]
fn r_wmi_9_put_reports_the_object_path() {
    let host = Host::new(Directory::new());
    let sink = host.sink();
    let record = host.put(&sink, entry("c"), CallFlags::empty());
    assert_eq!(
        record.status,
        Some((HResult::S_OK, Some("Entry.Name=\"c\"".to_string())))
    );
    assert!(record.batches.is_empty());
    // And the stored instance is there, then deleted.
    assert_eq!(
        host.get_object(&sink, "Entry.Name=\"c\"", CallFlags::empty())
            .indicated,
        [entry("c")]
    );
    let deleted = host.delete(&sink, "Entry.Name=\"c\"", CallFlags::empty());
    assert_eq!(deleted.status, Some((HResult::S_OK, None)));
}

#[test]
fn r_wmi_10_event_sink_only_indicates() {
    // The type half is ui/event_sink_set_status.rs; here, the sink outlives ProvideEvents and
    // indicates from another thread.
    let host = Host::new(Directory::new());
    let events = EventLog::answering([]);
    assert_eq!(host.provide_events(&events, 0), HResult::S_OK);
    let sink = host
        .runtime()
        .provider()
        .events
        .lock()
        .unwrap()
        .clone()
        .unwrap();
    std::thread::spawn(move || sink.indicate(vec![entry("changed")]))
        .join()
        .unwrap()
        .unwrap();
    assert_eq!(events.events(), [entry("changed")]);
}

#[test]
fn r_wmi_11_cancel_before_the_authors_finish_sets_cancelled_once() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let host = Host::new(Directory::new().enumerating(wait_for_cancel(Arc::clone(&seen))));
    let sink = host.sink();
    std::thread::scope(|threads| {
        let call = threads.spawn(|| host.enumerate(&sink, "Entry", CallFlags::empty()));
        assert!(host.wait_in_flight(1, WATCHDOG), "the call started");
        assert_eq!(host.cancel(&sink), 1);
        let record = call.join().unwrap();
        assert_eq!(record.status, Some((HResult::WBEM_E_CALL_CANCELLED, None)));
        assert!(record.batches.is_empty());
    });
    // The author's later indicate and finish were no-ops that said so.
    assert_eq!(
        *seen.lock().unwrap(),
        [(Err(Cancelled), Delivery::AlreadyFinished)]
    );
    // A cancel after the call finished changes nothing.
    let host = Host::new(Directory::new().enumerating(indicate_n(3)));
    let sink = host.sink();
    let record = host.enumerate(&sink, "Entry", CallFlags::empty());
    assert_eq!(host.cancel(&sink), 0);
    assert_eq!(record.status, Some((HResult::S_OK, None)));
}

#[test]
fn r_wmi_11_cancel_during_an_indicate_is_delivered_after_it() {
    // The client cancels from inside its own Indicate: the Indicate is recorded, then exactly
    // one WBEM_E_CALL_CANCELLED, and the author's next indicate reports the cancel.
    let host = Arc::new(Host::new(
        Directory::new().enumerating(indicate_n(3 * BATCH_SIZE)),
    ));
    let weak = Arc::downgrade(&host);
    let cancels = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&cancels);
    let sink = host.sink();
    let identity = sink.identity();
    let sink = sink.on_indicate(move || {
        let host = weak.upgrade().unwrap();
        counted.fetch_add(host.runtime().cancel_async_call(identity), Ordering::SeqCst);
    });
    let record = host.enumerate(&sink, "Entry", CallFlags::empty());
    assert_eq!(record.batches, [BATCH_SIZE]);
    assert_eq!(record.status, Some((HResult::WBEM_E_CALL_CANCELLED, None)));
    assert_eq!(cancels.load(Ordering::SeqCst), 1);
}

#[test]
fn r_wmi_11_cancel_racing_finish_delivers_one_status_on_failing_sinks() {
    // Enumerations of 0 to 4 half-batches, an instance per yield; the cancel comes from another
    // thread once the call is in flight (or over), a few yields later.
    let host = Host::new(Directory::new().enumerating(|mut call| {
        let n = call.flags().bits() as usize;
        for i in 0..n {
            std::thread::yield_now();
            if call.indicate(entry(&i.to_string())).is_err() {
                break;
            }
        }
        call.finish(Ok(()))
    }));
    let mut outcomes = [0usize; 2];
    for round in 0..400 {
        let sink = match round % 2 {
            0 => host.sink(),
            _ => host.sink().failing(HResult::WBEM_E_FAILED),
        };
        let size = (round % 5) * BATCH_SIZE / 2;
        std::thread::scope(|threads| {
            let call = threads
                .spawn(|| host.enumerate(&sink, "Entry", CallFlags::from_bits_retain(size as i32)));
            wait_until("the call", || {
                host.runtime().in_flight() == 1 || call.is_finished()
            });
            for _ in 0..round % 11 {
                std::thread::yield_now();
            }
            host.cancel(&sink);
            // The simulator checked one final status per call; which one depends on the race.
            let record = call.join().unwrap();
            match record.status {
                Some((HResult::S_OK, None)) => outcomes[0] += 1,
                Some((HResult::WBEM_E_CALL_CANCELLED, None)) => outcomes[1] += 1,
                other => panic!("unexpected status {other:?}"),
            }
        });
    }
    assert_eq!(outcomes.iter().sum::<usize>(), 400);
    // Both sides of the race were played (empty enumerations mostly finish first, long ones
    // are mostly cancelled).
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}

#[test]
fn r_wmi_12_cancel_reaches_every_call_sharing_the_sink() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let host = Host::new(Directory::new().enumerating(wait_for_cancel(Arc::clone(&seen))));
    let shared = host.sink();
    let other = host.sink();
    std::thread::scope(|threads| {
        let on_shared: Vec<_> = (0..3)
            .map(|_| threads.spawn(|| host.enumerate(&shared, "Entry", CallFlags::empty())))
            .collect();
        let on_other = threads.spawn(|| host.enumerate(&other, "Entry", CallFlags::empty()));
        assert!(host.wait_in_flight(4, WATCHDOG), "four calls started");
        assert_eq!(host.cancel(&shared), 3);
        for call in on_shared {
            let record = call.join().unwrap();
            assert_eq!(record.status, Some((HResult::WBEM_E_CALL_CANCELLED, None)));
        }
        // The other sink's call still runs.
        assert_eq!(host.runtime().in_flight(), 1);
        assert!(!on_other.is_finished());
        assert_eq!(host.cancel(&other), 1);
        let record = on_other.join().unwrap();
        assert_eq!(record.status, Some((HResult::WBEM_E_CALL_CANCELLED, None)));
    });
    assert_eq!(seen.lock().unwrap().len(), 4);
}

#[test]
fn r_wmi_13_method_calls_are_not_cancelled() {
    let (started_tx, started) = mpsc::channel::<()>();
    let (release, release_rx) = mpsc::channel::<()>();
    let started_tx = Mutex::new(started_tx);
    let release_rx = Mutex::new(release_rx);
    let host = Host::new(Directory::new().with_method(move |call| {
        started_tx.lock().unwrap().send(()).unwrap();
        release_rx.lock().unwrap().recv_timeout(WATCHDOG).unwrap();
        call.complete(Ok(Some(Instance::out_parameters(Value::U32(1)))))
    }));
    let sink = host.sink();
    std::thread::scope(|threads| {
        let call =
            threads.spawn(|| host.exec_method(&sink, "Entry", "Reload", None, CallFlags::empty()));
        started.recv_timeout(WATCHDOG).unwrap();
        assert_eq!(host.cancel(&sink), 0);
        release.send(()).unwrap();
        let record = call.join().unwrap();
        assert_eq!(record.indicated, [Instance::out_parameters(Value::U32(1))]);
        assert_eq!(record.status, Some((HResult::S_OK, None)));
    });
}

#[test]
fn r_wmi_15_server_too_busy_is_returned_to_the_author() {
    let host = Host::new(Directory::new());
    let events = EventLog::answering([HResult::WBEM_E_SERVER_TOO_BUSY]);
    assert_eq!(host.provide_events(&events, 0), HResult::S_OK);
    let sink = host
        .runtime()
        .provider()
        .events
        .lock()
        .unwrap()
        .clone()
        .unwrap();
    assert_eq!(
        sink.indicate(vec![entry("changed")]),
        Err(HResult::WBEM_E_SERVER_TOO_BUSY)
    );
    assert!(events.events().is_empty());
    // Fired again, it is taken.
    assert_eq!(sink.indicate(vec![entry("changed")]), Ok(()));
    assert_eq!(events.events(), [entry("changed")]);
}

/// A provider whose initialization each test chooses.
struct Starting(fn() -> Result<(), HResult>);

impl ProviderInit for Starting {
    fn init(&self, init: &Init<'_>) -> Result<(), HResult> {
        assert_eq!(init.namespace, "root\\cimv2");
        (self.0)()
    }
}
impl InstanceProvider for Starting {
    fn get_object<'call>(&self, _path: &str, call: GetCall<'call>) -> Completed<'call> {
        call.found(entry("a"))
    }
}
impl MethodProvider for Starting {}
impl EventProvider for Starting {}

#[test]
fn r_wmi_1_initialize_reports_once_through_the_init_sink() {
    const FAILED: i32 = HResult::WBEM_E_FAILED.raw();
    // Before Initialize, calls are refused without touching their sink.
    let host = Host::uninitialized(Starting(|| Ok(())));
    let early = host.get_object(&host.sink(), "Entry.Name=\"a\"", CallFlags::empty());
    assert_eq!(early.returned, Some(HResult::WBEM_E_FAILED));
    assert_eq!(host.cancel_without_sink(), HResult::WBEM_E_FAILED);
    // A successful Initialize: WBEM_S_INITIALIZED once, lFlags 0, and WBEM_S_NO_ERROR returned.
    let init = host.initialize("root\\cimv2");
    assert_eq!(
        (init.returned, init.statuses),
        (HResult::S_OK, vec![(0, 0)])
    );
    let served = host.get_object(&host.sink(), "Entry.Name=\"a\"", CallFlags::empty());
    assert_eq!(served.indicated, [entry("a")]);
    // A second Initialize is a failure reported the same way; the provider keeps serving.
    let again = host.initialize("root\\cimv2");
    assert_eq!(
        (again.returned, again.statuses),
        (HResult::S_OK, vec![(FAILED, 0)])
    );
    assert_eq!(
        host.get_object(&host.sink(), "Entry.Name=\"a\"", CallFlags::empty())
            .finals,
        1
    );
    // An author's refusal and an author's panic: WBEM_E_FAILED once, then every call refused.
    for provider in [
        Starting(|| Err(HResult::WBEM_E_ACCESS_DENIED)),
        Starting(|| panic!("init broke")),
    ] {
        let host = Host::uninitialized(provider);
        let init = host.initialize("root\\cimv2");
        assert_eq!(
            (init.returned, init.statuses),
            (HResult::S_OK, vec![(FAILED, 0)])
        );
        let refused = host.get_object(&host.sink(), "Entry.Name=\"a\"", CallFlags::empty());
        assert_eq!(refused.returned, Some(HResult::WBEM_E_FAILED));
        assert_eq!(
            host.provide_events(&EventLog::answering([]), 0),
            HResult::WBEM_E_FAILED
        );
    }
    // No init sink to report to: WBEM_E_INVALID_PARAMETER, and the object stays uninitialized.
    let host = Host::uninitialized(Starting(|| Ok(())));
    assert_eq!(
        host.initialize_without_sink(),
        HResult::WBEM_E_INVALID_PARAMETER
    );
    assert_eq!(host.initialize("root\\cimv2").statuses, [(0, 0)]);
}

#[test]
fn r_wmi_2_the_provider_holds_each_sink_while_it_uses_it() {
    // The simulator checks, on every Indicate and SetStatus, that the provider holds a
    // reference of its own to the call's sink, and that it holds none once the call returned:
    // here on a call finished by the author, one finished by a cancel from another thread, and
    // an event sink the client released at once.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let host = Host::new(Directory::new().enumerating(wait_for_cancel(Arc::clone(&seen))));
    let sink = host.sink();
    assert_eq!(
        host.get_object(&sink, "Entry.Name=\"a\"", CallFlags::empty())
            .finals,
        1
    );
    std::thread::scope(|threads| {
        let call = threads.spawn(|| host.enumerate(&sink, "Entry", CallFlags::empty()));
        assert!(host.wait_in_flight(1, WATCHDOG), "the call started");
        assert_eq!(host.cancel(&sink), 1);
        let record = call.join().unwrap();
        assert_eq!(record.status, Some((HResult::WBEM_E_CALL_CANCELLED, None)));
    });
    let events = EventLog::answering([]);
    assert_eq!(host.provide_events(&events, 0), HResult::S_OK);
    let events_sink = host
        .runtime()
        .provider()
        .events
        .lock()
        .unwrap()
        .clone()
        .unwrap();
    std::thread::spawn(move || events_sink.indicate(vec![entry("later")]))
        .join()
        .unwrap()
        .unwrap();
    assert_eq!(events.events(), [entry("later")]);
    // Released with the provider: nothing of either side is left.
    drop(sink);
    let left = host.release();
    assert_eq!((left.provider, left.simulator), (0, 0));
}

/// Answers GetObject with what a dependent request of the namespace returns.
struct Dependent;

impl ProviderInit for Dependent {}
impl InstanceProvider for Dependent {
    fn get_object<'call>(&self, path: &str, call: GetCall<'call>) -> Completed<'call> {
        let owner = call.context().get_object("Owner.Name=\"root\"");
        match owner {
            Ok(owner) => call.found(entry(path).with("Owner", owner.get("Name").unwrap().clone())),
            Err(error) => call.fail(error),
        }
    }
}
impl MethodProvider for Dependent {}
impl EventProvider for Dependent {
    fn provide_events(&self, sink: EventSink, _flags: i32) -> Result<(), HResult> {
        sink.indicate(vec![entry("started")])
    }
}

#[test]
fn r_wmi_14_dependent_requests_reuse_the_calls_context() {
    let host = Host::new(Dependent);
    host.serve_instance(
        "Owner.Name=\"root\"",
        Instance::new("Owner").with("Name", Value::Str("root".into())),
    );
    let record = host.get_object(&host.sink(), "x", CallFlags::empty());
    assert_eq!(
        record.indicated,
        [entry("x").with("Owner", Value::Str("root".into()))]
    );
    // The author's request and the framework's class lookup both went with the call's context.
    let requests = host.requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["Owner.Name=\"root\"", "Entry"]);
    assert!(
        requests.iter().all(|r| r.context == Some(record.context)),
        "{requests:?} vs context {:#x}",
        record.context
    );
    // A second call's requests carry the second call's context.
    let second = host.get_object(&host.sink(), "y", CallFlags::empty());
    assert!(
        host.requests()[2..]
            .iter()
            .all(|r| r.context == Some(second.context))
    );
    // Events are the provider's own: independent requests, without a client's context.
    let events = EventLog::answering([]);
    assert_eq!(host.provide_events(&events, 0), HResult::S_OK);
    assert_eq!(events.events(), [entry("started")]);
    let last = host.requests().pop().unwrap();
    assert_eq!((last.path.as_str(), last.context), ("Entry", None));
}

#[test]
fn r_wmi_16_a_decoupled_provider_is_registered_while_it_serves() {
    let registrar = Registrar::new();
    let registration = registrar
        .register(Starting(|| Ok(())), "root\\cimv2", "WinprovTest")
        .expect("Register");
    // Register(0, NULL, NULL, NULL, scope, name, punk), once, with an object that serves.
    assert_eq!(
        registrar.registrations(),
        [Registered {
            flags: 0,
            context: false,
            user: None,
            locale: None,
            scope: Some("root\\cimv2".into()),
            name: Some("WinprovTest".into()),
            serves: true,
        }]
    );
    assert!(registrar.holds_object());
    // WMI initializes the registered object and calls it as it would a DLL's.
    let host = Host::serving(&registrar, &registration);
    let served = host.get_object(&host.sink(), "Entry.Name=\"a\"", CallFlags::empty());
    assert_eq!(served.indicated, [entry("a")]);
    assert_eq!(registrar.unregistrations(), 0, "unregistered while serving");
    // The registration's end is UnRegister, once; WMI lets the object go, and with WMI's last
    // reference the provider object releases everything WMI gave it.
    drop(registration);
    assert_eq!(registrar.unregistrations(), 1);
    assert!(!registrar.holds_object());
    let left = host.release();
    assert_eq!((left.provider, left.simulator), (0, 0));
    // A registration WMI refuses is an error and unregisters nothing.
    let first = registrar
        .register(Starting(|| Ok(())), "root\\cimv2", "WinprovTest")
        .expect("Register");
    let refused = registrar.register(Starting(|| Ok(())), "root\\cimv2", "WinprovTest");
    assert_eq!(refused.err(), Some(HResult::WBEM_E_ALREADY_EXISTS));
    assert_eq!(registrar.unregistrations(), 1);
    drop(first);
    assert_eq!(registrar.unregistrations(), 2);
    // Off Windows there is no WMI registrar to register with.
    if !cfg!(windows) {
        let alone = Decoupled::register(Starting(|| Ok(())), "root\\cimv2", "WinprovTest");
        assert_eq!(alone.err(), Some(HResult::REGDB_E_CLASSNOTREG));
    }
}
