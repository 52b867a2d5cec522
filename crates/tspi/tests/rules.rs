//! One test per TSPI rule (R-TSP-1 … R-TSP-18 in the interface catalogue), each driving a
//! scriptable provider through the host simulator. docs/rules.md lists them.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};
use winprov_bindings::not_in_metadata::{INITIALIZE_NEGOTIATION, LINE_NEWCALL};
use winprov_bindings::tapi::{self, LINECALLSTATUS};
use winprov_tspi::testing::read_dword;
use winprov_tspi::testing::{CallRef, Host, Message, NewCallAnswer};
use winprov_tspi::{
    Call, CallEvents, CallState, CallStates, CallerId, Closed, Completed, Delivery, DisconnectMode,
    EventError, Line, LineCaps, LineErr, LineEvents, LineIndex, MakeCall, NewCallError, Pending,
    PendingCall, Request, ServiceProvider, Version,
};

const FAILED: Result<(), LineErr> = Err(LineErr::LINEERR_OPERATIONFAILED);
const OK: Result<(), LineErr> = Ok(());
const WATCHDOG: Duration = Duration::from_secs(20);

/// Runs `f` on a thread and fails the test if it does not return within the watchdog (a
/// deadlock fails the test instead of hanging it); a panic in `f` fails the test with its
/// message.
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let value = f();
        let _ = tx.send(());
        value
    });
    match rx.recv_timeout(WATCHDOG) {
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("did not return within {WATCHDOG:?} (a deadlock?)")
        }
        _ => worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
    }
}

/// A meeting point for author code running on several threads at once.
#[derive(Default)]
struct Rendezvous {
    arrived: Mutex<usize>,
    all_here: Condvar,
}

impl Rendezvous {
    /// Waits (up to 5 s) until `n` callers are here; whether they met.
    fn meet(&self, n: usize) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut arrived = self.arrived.lock().unwrap();
        *arrived += 1;
        self.all_here.notify_all();
        while *arrived < n {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            arrived = self
                .all_here
                .wait_timeout(arrived, deadline - now)
                .unwrap()
                .0;
        }
        true
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MakeMode {
    /// Keep the `PendingCall` in `Control::made`.
    Accept,
    /// Succeed at once and keep the `CallEvents`.
    Succeed,
    /// Meet another make_call inside the author's code first (`Control::rendezvous`), then
    /// succeed; reject if the other never came.
    Meet,
    Reject,
    Panic,
    PanicAfterAccept,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DropMode {
    Complete,
    /// Keep the `Pending` in `Control::pending`.
    Hold,
    Fail,
}

struct Control {
    make: Mutex<MakeMode>,
    drop: Mutex<DropMode>,
    answer: Mutex<DropMode>,
    rendezvous: Rendezvous,
    made: Mutex<Vec<PendingCall>>,
    events: Mutex<Vec<CallEvents>>,
    pending: Mutex<Vec<Pending>>,
    lines: Mutex<Vec<LineEvents<Lab>>>,
    make_calls: AtomicUsize,
    calls_closed: AtomicUsize,
    lines_closed: AtomicUsize,
    shut_down: AtomicBool,
    /// Runs inside the next `Call::close`.
    on_call_close: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    /// Runs inside the next `Line::make_call`, before it resolves the request.
    on_make: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    /// Runs inside the next `Call::drop_call` or `Call::answer`, before it resolves the request.
    on_request: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Control {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            make: Mutex::new(MakeMode::Succeed),
            drop: Mutex::new(DropMode::Complete),
            answer: Mutex::new(DropMode::Complete),
            rendezvous: Rendezvous::default(),
            made: Mutex::new(Vec::new()),
            events: Mutex::new(Vec::new()),
            pending: Mutex::new(Vec::new()),
            lines: Mutex::new(Vec::new()),
            make_calls: AtomicUsize::new(0),
            calls_closed: AtomicUsize::new(0),
            lines_closed: AtomicUsize::new(0),
            shut_down: AtomicBool::new(false),
            on_call_close: Mutex::new(None),
            on_make: Mutex::new(None),
            on_request: Mutex::new(None),
        })
    }

    fn set_make(&self, mode: MakeMode) {
        *self.make.lock().unwrap() = mode;
    }

    fn set_drop(&self, mode: DropMode) {
        *self.drop.lock().unwrap() = mode;
    }

    fn set_answer(&self, mode: DropMode) {
        *self.answer.lock().unwrap() = mode;
    }

    fn take_events(&self) -> CallEvents {
        self.events.lock().unwrap().pop().expect("a call's events")
    }
}

struct Lab(Arc<Control>);
struct LabLine(Arc<Control>);
struct LabCall(Arc<Control>);

impl ServiceProvider for Lab {
    type Line = LabLine;
    const NAME: &'static str = "Rule lab";
    fn line_count(&self) -> u32 {
        3
    }
    fn line_caps(&self, line: LineIndex) -> LineCaps {
        LineCaps::voice(format!("Lab line {}", line.0)).with_max_calls(64)
    }
    fn open(&self, _: LineIndex, events: LineEvents<Self>) -> Result<LabLine, LineErr> {
        self.0.lines.lock().unwrap().push(events);
        Ok(LabLine(Arc::clone(&self.0)))
    }
    fn shutdown(&self) {
        self.0.shut_down.store(true, Ordering::SeqCst);
    }
}

impl Line for LabLine {
    type Call = LabCall;
    fn make_call<'call>(&mut self, request: MakeCall<'call, LabCall>) -> Completed<'call> {
        self.0.make_calls.fetch_add(1, Ordering::SeqCst);
        let hook = self.0.on_make.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
        let mode = *self.0.make.lock().unwrap();
        match mode {
            MakeMode::Meet if !self.0.rendezvous.meet(2) => {
                request.reject(LineErr::LINEERR_RESOURCEUNAVAIL)
            }
            MakeMode::Reject => request.reject(LineErr::LINEERR_CALLUNAVAIL),
            MakeMode::Panic => panic!("provider bug before accepting"),
            MakeMode::PanicAfterAccept => {
                let (_pending, _reply) = request.accept(LabCall(Arc::clone(&self.0)));
                panic!("provider bug after accepting");
            }
            MakeMode::Accept => {
                let (pending, reply) = request.accept(LabCall(Arc::clone(&self.0)));
                self.0.made.lock().unwrap().push(pending);
                reply
            }
            MakeMode::Succeed | MakeMode::Meet => {
                let (pending, reply) = request.accept(LabCall(Arc::clone(&self.0)));
                let events = pending.succeed().expect("not closed");
                events.state(CallState::Dialing).unwrap();
                self.0.events.lock().unwrap().push(events);
                reply
            }
        }
    }
    fn dev_specific<'call>(&mut self, request: Request<'call>, _: &mut [u8]) -> Completed<'call> {
        let (pending, reply) = request.accept();
        self.0.pending.lock().unwrap().push(pending);
        reply
    }
    fn close(self) {
        self.0.lines_closed.fetch_add(1, Ordering::SeqCst);
    }
}

impl Call for LabCall {
    fn drop_call<'call>(&mut self, request: Request<'call>, _: &[u8]) -> Completed<'call> {
        let mode = *self.0.drop.lock().unwrap();
        self.resolve(request, mode)
    }
    fn answer<'call>(&mut self, request: Request<'call>, _: &[u8]) -> Completed<'call> {
        let mode = *self.0.answer.lock().unwrap();
        self.resolve(request, mode)
    }
    fn close(self) {
        let hook = self.0.on_call_close.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
        self.0.calls_closed.fetch_add(1, Ordering::SeqCst);
    }
}

impl LabCall {
    fn resolve<'call>(&self, request: Request<'call>, mode: DropMode) -> Completed<'call> {
        let hook = self.0.on_request.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
        match mode {
            DropMode::Complete => request.complete(Ok(())),
            DropMode::Fail => request.complete(Err(LineErr::LINEERR_OPERATIONUNAVAIL)),
            DropMode::Hold => {
                let (pending, reply) = request.accept();
                self.0.pending.lock().unwrap().push(pending);
                reply
            }
        }
    }
}

fn lab() -> (Host<Lab>, Arc<Control>) {
    let control = Control::new();
    let host = Host::new(Lab(Arc::clone(&control)));
    host.start().expect("started");
    (host, control)
}

/// A connected outbound call (its events kept in the control).
fn connected(host: &Host<Lab>, control: &Control) -> CallRef {
    // The first line not open yet (or line 2, shared by later calls).
    let line = (0..3)
        .find_map(|index| host.open(index).ok())
        .expect("a free line");
    control.set_make(MakeMode::Succeed);
    let call = host.make_call(line, Some("5551234"));
    assert_eq!(call.result(), OK);
    control
        .events
        .lock()
        .unwrap()
        .last()
        .unwrap()
        .state(CallState::Connected)
        .unwrap();
    call.value.unwrap()
}

fn finish(host: Host<Lab>) {
    assert_eq!(host.shutdown(), OK);
    host.assert_idle();
}

#[test]
fn r_tsp_1_negotiation() {
    bounded(|| {
        let host = Host::new(Lab(Control::new()));
        let (v2_0, v2_2, v3_0) = (Version::V2_0.0, Version::V2_2.0, Version::V3_0.0);
        assert_eq!(host.negotiate(INITIALIZE_NEGOTIATION, v2_0, v3_0), Ok(v2_2));
        assert_eq!(host.negotiate(INITIALIZE_NEGOTIATION, v2_0, v2_0), Ok(v2_0));
        let incompatible = LineErr::LINEERR_INCOMPATIBLEAPIVERSION;
        for (low, high) in [(v3_0, v3_0 + 1), (0x0001_0003, 0x0001_0004), (v2_2, v2_0)] {
            let got = host.negotiate(INITIALIZE_NEGOTIATION, low, high);
            assert_eq!(got, Err(incompatible), "{low:#x}..{high:#x}");
            assert_ne!(got, Err(LineErr::LINEERR_OPERATIONUNAVAIL));
        }
        // A device id needs the device base from TSPI_providerInit.
        assert!(host.negotiate(host.device(0), v2_0, v3_0).is_err());
        host.start().unwrap();
        assert_eq!(host.negotiate(host.device(2), v2_0, v3_0), Ok(v2_2));
        assert_eq!(
            host.negotiate(host.device(3), v2_0, v3_0),
            Err(LineErr::LINEERR_BADDEVICEID)
        );
        finish(host);
    });
}

#[test]
fn r_tsp_2_an_extra_init_is_absorbed() {
    bounded(|| {
        let (host, control) = lab();
        assert_eq!(host.init_at(Version::V2_2.0), OK);
        assert_eq!(host.stats().init_pairs, 2);
        assert_eq!(host.shutdown(), OK);
        assert!(!control.shut_down.load(Ordering::SeqCst));
        let line = host
            .open(0)
            .expect("still initialized after the first shutdown");
        assert_eq!(host.close(line), OK);
        finish(host);
        assert!(control.shut_down.load(Ordering::SeqCst));
    });
}

#[test]
fn r_tsp_3_an_async_export_returns_its_request_id_or_a_lineerr() {
    bounded(|| {
        let (host, control) = lab();
        let line = host.open(0).unwrap();
        for (mode, expect_accept) in [
            (MakeMode::Succeed, true),
            (MakeMode::Accept, true),
            (MakeMode::Reject, false),
            (MakeMode::Panic, false),
            (MakeMode::PanicAfterAccept, true),
        ] {
            control.set_make(mode);
            let call = host.make_call(line, Some("100"));
            if expect_accept {
                assert_eq!(call.result(), OK, "{mode:?}");
            } else {
                assert!(call.ret < 0, "{mode:?}: {:#x}", call.ret);
            }
            assert_ne!(call.ret, 0);
        }
        control.made.lock().unwrap().clear();
        finish(host);
    });
}

#[test]
fn r_tsp_4_exactly_one_completion_per_accepted_request() {
    bounded(|| {
        let (host, control) = lab();
        let line = host.open(0).unwrap();

        // Completed before the export returned.
        let early = host.make_call(line, Some("1"));
        assert_eq!(host.completions_of(early.request), [OK]);

        // Rejected, or a panic before accepting: never completed.
        control.set_make(MakeMode::Reject);
        let rejected = host.make_call(line, Some("2"));
        assert_eq!(
            rejected.result(),
            Err(LineErr::LINEERR_CALLUNAVAIL),
            "the reject's LINEERR"
        );
        control.set_make(MakeMode::Panic);
        let panicked = host.make_call(line, Some("3"));
        assert_eq!(panicked.result(), FAILED);

        // A panic after accepting: the dropped guard completes it, once.
        control.set_make(MakeMode::PanicAfterAccept);
        let unwound = host.make_call(line, Some("4"));
        assert_eq!(host.completions_of(unwound.request), [FAILED]);

        // Accepted, then completed from another thread; a dropped guard fails.
        control.set_make(MakeMode::Accept);
        let later = host.make_call(line, Some("5"));
        let dropped = host.make_call(line, Some("6"));
        let mut made = std::mem::take(&mut *control.made.lock().unwrap());
        let guard = made.remove(1);
        drop(guard);
        let first = made.remove(0);
        std::thread::spawn(move || {
            let events = first.succeed().unwrap();
            events.state(CallState::Connected).unwrap();
        })
        .join()
        .unwrap();
        assert_eq!(host.completions_of(later.request), [OK]);
        assert_eq!(host.completions_of(dropped.request), [FAILED]);
        assert!(host.completions_of(rejected.request).is_empty());
        assert!(host.completions_of(panicked.request).is_empty());

        // A late completion after the host ended the request is a no-op.
        control.set_drop(DropMode::Hold);
        let call = later.value.unwrap();
        let drop = host.drop_call(call);
        assert_eq!(host.close_call(call), OK);
        let late = control.pending.lock().unwrap().pop().unwrap();
        assert!(late.is_aborted());
        assert_eq!(late.complete(Ok(())), Delivery::AlreadyFinished);
        assert_eq!(host.completions_of(drop.request), [FAILED]);
        finish(host);
    });
}

/// The author accepts a `TSPI_lineMakeCall` while `TSPI_lineClose` of its line runs on
/// another thread: the framework refuses the request synchronously (a negative return, never a
/// completion) rather than accept a call on a line that is gone, which nothing would complete.
#[test]
fn r_tsp_4_a_make_call_accepted_while_its_line_closes_is_refused() {
    bounded(|| {
        let (host, control) = lab();
        let line = host.open(0).unwrap();
        let line_events = control.lines.lock().unwrap()[0].clone();
        control.set_make(MakeMode::Accept);
        let (entered, in_make) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        *control.on_make.lock().unwrap() = Some(Box::new(move || {
            entered.send(()).unwrap();
            released.recv().unwrap();
        }));
        std::thread::scope(|scope| {
            let making = scope.spawn(|| host.make_call(line, Some("1")));
            in_make.recv().unwrap();
            let closing = scope.spawn(|| host.close(line));
            while !line_events.is_closed() {
                std::thread::sleep(Duration::from_millis(1));
            }
            release.send(()).unwrap();
            let made = making.join().unwrap();
            assert_eq!(closing.join().unwrap(), OK);
            assert_eq!(
                made.result(),
                Err(LineErr::LINEERR_INVALLINEHANDLE),
                "a make-call accepted on a closing line"
            );
            assert!(host.completions_of(made.request).is_empty());
        });
        // The author's guard of the refused request delivers nothing.
        control.made.lock().unwrap().clear();
        assert_eq!(host.stats().calls, 0);
        finish(host);
    });
}

/// The author accepts a `TSPI_lineDrop` while `TSPI_lineCloseCall` of its call runs on another
/// thread (the close already failed the call's pending requests): the request is completed
/// once, with `LINEERR_OPERATIONFAILED`, before its export returns.
#[test]
fn r_tsp_4_a_request_accepted_while_its_call_closes_is_completed_once() {
    bounded(|| {
        let (host, control) = lab();
        let call = connected(&host, &control);
        let events = control.take_events();
        control.set_drop(DropMode::Hold);
        let (entered, in_drop) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        *control.on_request.lock().unwrap() = Some(Box::new(move || {
            entered.send(()).unwrap();
            released.recv().unwrap();
        }));
        std::thread::scope(|scope| {
            let dropping = scope.spawn(|| host.drop_call(call));
            in_drop.recv().unwrap();
            let closing = scope.spawn(|| host.close_call(call));
            while !events.is_closed() {
                std::thread::sleep(Duration::from_millis(1));
            }
            release.send(()).unwrap();
            let dropped = dropping.join().unwrap();
            assert_eq!(dropped.result(), OK, "accepted");
            assert_eq!(
                host.completions_of(dropped.request),
                [FAILED],
                "accepted after its call's close began, and not completed before its export returned"
            );
            assert_eq!(closing.join().unwrap(), OK);
        });
        let late = control.pending.lock().unwrap().pop().unwrap();
        assert_eq!(late.complete(Ok(())), Delivery::AlreadyFinished);
        finish(host);
    });
}

#[test]
fn r_tsp_5_callbacks_never_overlap() {
    bounded(|| {
        let (host, control) = lab();
        let lines: Vec<_> = (0..3).map(|i| host.open(i).unwrap()).collect();
        control.set_make(MakeMode::Accept);
        let calls: Vec<_> = (0..48)
            .map(|i| host.make_call(lines[i % 3], Some("77")))
            .collect();
        let mut made = std::mem::take(&mut *control.made.lock().unwrap());
        let mut chunks = Vec::new();
        while !made.is_empty() {
            chunks.push(made.split_off(made.len().saturating_sub(6)));
        }
        std::thread::scope(|scope| {
            for chunk in chunks {
                scope.spawn(move || {
                    for pending in chunk {
                        let events = pending.succeed().unwrap();
                        for state in [
                            CallState::Proceeding,
                            CallState::Ringback,
                            CallState::Connected,
                        ] {
                            events.state(state).unwrap();
                        }
                        let _ = events.disconnected(DisconnectMode::Normal);
                    }
                });
            }
        });
        for call in &calls {
            assert_eq!(host.completions_of(call.request), [OK]);
        }
        host.assert_clean();
        finish(host);
    });
}

#[test]
fn r_tsp_6_no_event_before_the_creating_request_succeeds() {
    bounded(|| {
        let (host, control) = lab();
        let line = host.open(0).unwrap();
        control.set_make(MakeMode::Accept);
        let call = host.make_call(line, Some("5551234"));
        let hd = call.value.unwrap();
        assert_ne!(hd.hd, 0, "*lphdCall written before the export returned");
        assert!(host.states(hd).is_empty());
        assert_eq!(host.call_status(hd).unwrap().state, CallStates::UNKNOWN);
        // The only way to an event sender is the creating request's success.
        let pending = control.made.lock().unwrap().pop().unwrap();
        let events = pending.succeed().unwrap();
        events.state(CallState::Ringback).unwrap();
        let messages = host.messages();
        let completed = messages
            .iter()
            .position(|m| {
                *m == Message::Completion {
                    request: call.request,
                    result: 0,
                }
            })
            .unwrap();
        let first_event = messages
            .iter()
            .position(|m| matches!(m, Message::Event { ht_call, .. } if *ht_call == hd.ht))
            .unwrap();
        assert!(completed < first_event);

        // A call dropped before its creating request succeeded never becomes known: the
        // creating request fails and the author gets no event sender.
        let call = host.make_call(line, Some("5551234"));
        let hd = call.value.unwrap();
        let drop = host.drop_call(hd);
        assert_eq!(host.completions_of(drop.request), [OK]);
        let pending = control.made.lock().unwrap().pop().unwrap();
        assert_eq!(pending.succeed().err(), Some(Closed));
        assert_eq!(host.completions_of(call.request), [FAILED]);
        assert!(host.states(hd).is_empty());
        assert_eq!(host.close_call(hd), OK);
        finish(host);
    });
}

#[test]
fn r_tsp_7_close_call_fails_a_pending_make_call() {
    bounded(|| {
        let (host, control) = lab();
        let line = host.open(0).unwrap();
        control.set_make(MakeMode::Accept);
        let call = host.make_call(line, Some("5551234"));
        let pending = control.made.lock().unwrap().pop().unwrap();
        assert_eq!(host.close_call(call.value.unwrap()), OK);
        assert_eq!(host.completions_of(call.request), [FAILED]);
        assert!(pending.is_aborted());
        assert!(pending.cancellation().is_cancelled());
        assert_eq!(pending.succeed().err(), Some(Closed));
        assert_eq!(host.completions_of(call.request), [FAILED]);
        assert_eq!(control.calls_closed.load(Ordering::SeqCst), 1);
        finish(host);
    });
}

#[test]
fn r_tsp_8_close_call_right_after_drop_fails_the_pending_drop() {
    bounded(|| {
        let (host, control) = lab();
        let call = connected(&host, &control);
        control.set_drop(DropMode::Hold);
        let drop = host.drop_call(call);
        assert_eq!(drop.result(), OK);
        assert!(
            host.completion(drop.request).is_none(),
            "the drop is pending"
        );
        assert_eq!(host.close_call(call), OK);
        // Completed before lineCloseCall returned, with LINEERR_OPERATIONFAILED.
        assert_eq!(host.completions_of(drop.request), [FAILED]);
        let late = control.pending.lock().unwrap().pop().unwrap();
        assert_eq!(late.complete(Ok(())), Delivery::AlreadyFinished);
        assert!(!host.states(call).contains(&CallStates::IDLE));
        finish(host);
    });
}

/// Several pending requests of several kinds on one call (an answer, two drops), one of them
/// completed by the author on another thread while `TSPI_lineCloseCall` runs: when the close
/// returns every one was delivered exactly once (the simulator checks it at the return) —
/// `LINEERR_OPERATIONFAILED`, or the author's result if its completion got there first.
#[test]
fn r_tsp_8_close_call_completes_every_pending_request_even_one_completing_meanwhile() {
    bounded(|| {
        let mut raced = [0usize; 2];
        for round in 0..300 {
            let (host, control) = lab();
            let _line = host.open(0).unwrap();
            let line_events = control.lines.lock().unwrap()[0].clone();
            let events = line_events
                .new_call(LabCall(Arc::clone(&control)), CallerId::number("5550100"))
                .unwrap();
            let call = host.offered()[0];
            control.set_answer(DropMode::Hold);
            control.set_drop(DropMode::Hold);
            let requests = [
                host.answer(call),
                host.drop_call(call),
                host.drop_call(call),
            ];
            for request in &requests {
                assert_eq!(request.result(), OK, "accepted");
            }
            let mut pending = std::mem::take(&mut *control.pending.lock().unwrap());
            assert_eq!(pending.len(), 3);
            let racing = round % 3;
            let completing = pending.remove(racing);
            let start = std::sync::Barrier::new(2);
            let (closed, delivery) = std::thread::scope(|scope| {
                let completer = scope.spawn(|| {
                    start.wait();
                    completing.complete(Ok(()))
                });
                start.wait();
                let closed = host.close_call(call);
                (closed, completer.join().unwrap())
            });
            assert_eq!(closed, OK);
            for (i, request) in requests.iter().enumerate() {
                let expected = if i == racing && delivery == Delivery::Delivered {
                    OK
                } else {
                    FAILED
                };
                assert_eq!(
                    host.completions_of(request.request),
                    [expected],
                    "request {i} of round {round}"
                );
            }
            raced[usize::from(delivery == Delivery::Delivered)] += 1;
            for late in pending {
                assert!(late.is_aborted());
                assert_eq!(late.complete(Ok(())), Delivery::AlreadyFinished);
            }
            assert_eq!(events.state(CallState::Connected), Err(EventError::Closed));
            finish(host);
        }
        // Both orders happened, or the race was not exercised (informational on a busy machine).
        eprintln!("closed first: {}, completed first: {}", raced[0], raced[1]);
    });
}

/// `TSPI_lineCloseCall` while the call's `TSPI_lineDrop` is still in the author's method, which
/// then completes the request at once: the close waits for the method, the drop completes
/// with `LINEERR_OPERATIONFAILED` before the close returns, and no `IDLE` follows.
#[test]
fn r_tsp_8_close_call_during_a_drop_completed_at_once() {
    let (host, control) = lab();
    let call = connected(&host, &control);
    let closed = control.take_events().cancellation().clone();
    let (release, released) = mpsc::channel::<()>();
    *control.on_request.lock().unwrap() = Some(Box::new(move || {
        released.recv().unwrap();
    }));
    let before = host.requests_entered();
    std::thread::scope(|scope| {
        let dropping = scope.spawn(|| host.drop_call(call));
        // The simulator's barrier: the drop is inside the provider's method.
        assert!(host.wait_requests_entered(before + 1, WATCHDOG));
        let closing = scope.spawn(|| host.close_call(call));
        closed.wait();
        // Long enough for a lineCloseCall that does not wait for the method to have returned.
        std::thread::sleep(Duration::from_millis(200));
        let early = closing.is_finished();
        release.send(()).unwrap();
        assert!(
            !early,
            "lineCloseCall returned while a request of the call was in the author's method"
        );
        assert_eq!(closing.join().unwrap(), OK);
        let at_close = host.messages();
        let drop = dropping.join().unwrap();
        assert_eq!(drop.result(), OK);
        assert_eq!(host.completions_of(drop.request), [FAILED]);
        assert!(
            at_close.contains(&Message::Completion {
                request: drop.request,
                result: LineErr::LINEERR_OPERATIONFAILED.raw(),
            }),
            "the drop completed before lineCloseCall returned"
        );
    });
    assert!(!host.states(call).contains(&CallStates::IDLE));
    assert_eq!(control.calls_closed.load(Ordering::SeqCst), 1);
    finish(host);
}

#[test]
fn r_tsp_9_no_event_after_close_call() {
    bounded(|| {
        for _ in 0..50 {
            let (host, control) = lab();
            let call = connected(&host, &control);
            let events = control.take_events();
            let worker = std::thread::spawn(move || {
                loop {
                    match events.state(CallState::OnHold) {
                        Ok(()) => {}
                        Err(EventError::Closed) => break,
                        Err(other) => panic!("{other:?}"),
                    }
                }
                events.is_closed()
            });
            // The worker is reporting states when the close comes.
            assert!(host.wait_state(call, CallStates::ONHOLD, WATCHDOG));
            assert_eq!(host.close_call(call), OK);
            let count = host.states(call).len();
            // The worker stops by itself once a report finds the call closed.
            assert!(worker.join().unwrap());
            assert_eq!(
                host.states(call).len(),
                count,
                "an event arrived after close"
            );
            finish(host);
        }
    });
}

#[test]
fn r_tsp_10_idle_after_a_successful_drop() {
    bounded(|| {
        let (host, control) = lab();
        let call = connected(&host, &control);
        let drop = host.drop_call(call);
        assert_eq!(host.completions_of(drop.request), [OK]);
        let states = host.states(call);
        assert_eq!(states.last(), Some(&CallStates::IDLE));
        assert_eq!(states.iter().filter(|&&s| s == CallStates::IDLE).count(), 1);
        let events = control.take_events();
        assert_eq!(events.state(CallState::Connected), Err(EventError::Idle));
        assert_eq!(host.close_call(call), OK);

        // A failed drop leaves the call as it was; a drop ended by lineCloseCall has no IDLE.
        let call = connected(&host, &control);
        control.set_drop(DropMode::Fail);
        let failed = host.drop_call(call);
        assert_eq!(
            host.completions_of(failed.request),
            [Err(LineErr::LINEERR_OPERATIONUNAVAIL)]
        );
        assert!(!host.states(call).contains(&CallStates::IDLE));
        control.set_drop(DropMode::Hold);
        host.drop_call(call);
        assert_eq!(host.close_call(call), OK);
        let late = control.pending.lock().unwrap().pop().unwrap();
        let _ = late.complete(Ok(()));
        assert!(!host.states(call).contains(&CallStates::IDLE));
        control.events.lock().unwrap().clear();
        finish(host);
    });
}

#[test]
fn r_tsp_11_remote_hangup_is_disconnected_then_idle_after_the_drop() {
    bounded(|| {
        let (host, control) = lab();
        let call = connected(&host, &control);
        let events = control.take_events();
        events.disconnected(DisconnectMode::Normal).unwrap();
        let disconnected = host.messages().into_iter().rev().find_map(|m| match m {
            Message::Event {
                ht_call, params, ..
            } if ht_call == call.ht => Some(params),
            _ => None,
        });
        assert_eq!(
            disconnected.map(|p| (p[0] as u32, p[1] as u32)),
            Some((
                tapi::LINECALLSTATE_DISCONNECTED,
                tapi::LINEDISCONNECTMODE_NORMAL
            ))
        );
        assert!(!host.states(call).contains(&CallStates::IDLE));
        host.drop_call(call);
        assert_eq!(host.states(call).last(), Some(&CallStates::IDLE));
        assert_eq!(host.close_call(call), OK);
        finish(host);
    });
}

#[test]
fn r_tsp_12_drop_of_an_idle_or_unknown_call() {
    bounded(|| {
        let (host, control) = lab();
        let call = connected(&host, &control);
        host.drop_call(call);
        let again = host.drop_call(call);
        assert_eq!(again.result(), Err(LineErr::LINEERR_INVALCALLSTATE));
        let forged = host.drop_call(CallRef {
            hd: 0x1234_5678,
            ht: 1,
        });
        assert_eq!(forged.result(), Err(LineErr::LINEERR_INVALCALLHANDLE));
        let null = host.drop_call(CallRef { hd: 0, ht: 1 });
        assert_eq!(null.result(), Err(LineErr::LINEERR_INVALCALLHANDLE));
        assert_eq!(host.close_call(call), OK);
        let stale = host.drop_call(call);
        assert_eq!(stale.result(), Err(LineErr::LINEERR_INVALCALLHANDLE));
        assert_eq!(host.close_call(call), Err(LineErr::LINEERR_INVALCALLHANDLE));
        for request in [again.request, forged.request, null.request, stale.request] {
            assert!(host.completions_of(request).is_empty());
        }
        control.events.lock().unwrap().clear();
        finish(host);
    });
}

#[test]
fn r_tsp_13_line_close_completes_everything_and_silences_the_line() {
    bounded(|| {
        let (host, control) = lab();
        let line = host.open(0).unwrap();
        let call_less = host.dev_specific(line, &mut [1, 2, 3]);
        control.set_make(MakeMode::Accept);
        let dialling = host.make_call(line, Some("1"));
        control.set_make(MakeMode::Succeed);
        let talking = host.make_call(line, Some("2"));
        control.set_drop(DropMode::Hold);
        let drop = host.drop_call(talking.value.unwrap());
        let events = control.take_events();
        assert_eq!(host.close(line), OK);
        for request in [call_less.request, dialling.request, drop.request] {
            assert_eq!(host.completions_of(request), [FAILED], "{request:#x}");
        }
        assert_eq!(events.state(CallState::Connected), Err(EventError::Closed));
        assert!(control.lines.lock().unwrap()[0].is_closed());
        assert_eq!(
            host.close_call(talking.value.unwrap()),
            Err(LineErr::LINEERR_INVALCALLHANDLE)
        );
        assert_eq!(host.close(line), Err(LineErr::LINEERR_INVALLINEHANDLE));
        assert_eq!(control.calls_closed.load(Ordering::SeqCst), 2);
        assert_eq!(control.lines_closed.load(Ordering::SeqCst), 1);
        for late in control.pending.lock().unwrap().drain(..) {
            assert_eq!(late.complete(Ok(())), Delivery::AlreadyFinished);
        }
        control.made.lock().unwrap().clear();
        finish(host);
    });
}

/// `TSPI_lineCloseCall` and `TSPI_lineClose` of the call's line on two threads: the line's
/// close does not return (nor close the line) before the call's close is over, so no event of
/// the call can follow it.
#[test]
fn r_tsp_13_line_close_waits_for_a_call_closing_on_another_thread() {
    bounded(|| {
        let (host, control) = lab();
        let line = host.open(0).unwrap();
        control.set_make(MakeMode::Succeed);
        let call = host.make_call(line, Some("1")).value.unwrap();
        let events = control.take_events();
        let (entered, in_close) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        *control.on_call_close.lock().unwrap() = Some(Box::new(move || {
            entered.send(()).unwrap();
            released.recv().unwrap();
        }));
        std::thread::scope(|scope| {
            let closing_call = scope.spawn(|| host.close_call(call));
            in_close.recv().unwrap();
            let closing_line = scope.spawn(|| host.close(line));
            // Long enough for a lineClose that does not wait to have returned.
            std::thread::sleep(Duration::from_millis(300));
            let early =
                closing_line.is_finished() || control.lines_closed.load(Ordering::SeqCst) > 0;
            release.send(()).unwrap();
            assert!(
                !early,
                "lineClose returned (or closed the line) while a call of the line was being closed"
            );
            assert_eq!(closing_call.join().unwrap(), OK);
            assert_eq!(closing_line.join().unwrap(), OK);
        });
        assert_eq!(events.state(CallState::Connected), Err(EventError::Closed));
        assert_eq!(control.calls_closed.load(Ordering::SeqCst), 1);
        assert_eq!(control.lines_closed.load(Ordering::SeqCst), 1);
        finish(host);
    });
}

#[test]
fn r_tsp_14_new_call_then_call_state_and_a_null_htcall() {
    bounded(|| {
        let (host, control) = lab();
        let _line = host.open(0).unwrap();
        let line_events = control.lines.lock().unwrap()[0].clone();
        let events = line_events
            .new_call(LabCall(Arc::clone(&control)), CallerId::number("5550100"))
            .unwrap();
        let call = host.offered()[0];
        let messages = host.messages();
        let newcall = messages
            .iter()
            .position(|m| matches!(m, Message::Event { msg, .. } if *msg == LINE_NEWCALL))
            .unwrap();
        assert_eq!(
            messages[newcall + 1],
            Message::Event {
                ht_line: _line.ht,
                ht_call: call.ht,
                msg: tapi::LINE_CALLSTATE as u32,
                params: [
                    tapi::LINECALLSTATE_OFFERING as usize,
                    0,
                    tapi::LINEMEDIAMODE_INTERACTIVEVOICE as usize
                ],
            }
        );
        assert_eq!(host.caller_id(call).as_deref(), Some("5550100"));
        let answer = host.answer(call);
        assert_eq!(host.completions_of(answer.request), [OK]);
        events.state(CallState::Connected).unwrap();

        host.answer_new_calls(NewCallAnswer::Null);
        let before = host.stats().calls;
        let refused = line_events.new_call(LabCall(Arc::clone(&control)), CallerId::default());
        assert_eq!(refused.err(), Some(NewCallError::Refused));
        assert_eq!(host.stats().calls, before);
        assert_eq!(host.close_call(call), OK);
        finish(host);
    });
}

#[test]
fn r_tsp_15_concurrent_calls_to_one_entry_point() {
    bounded(|| {
        let (host, control) = lab();
        let lines: Vec<_> = (0..3).map(|i| host.open(i).unwrap()).collect();
        // Two TSPI_lineMakeCall on two lines at once are inside the author's make_call together:
        // each waits there for the other, so they only both succeed if the calls overlap.
        control.set_make(MakeMode::Meet);
        let met = std::thread::scope(|scope| {
            let calls: Vec<_> = [lines[0], lines[1]]
                .into_iter()
                .map(|line| {
                    scope.spawn({
                        let host = &host;
                        move || host.make_call(line, Some("42"))
                    })
                })
                .collect();
            calls
                .into_iter()
                .map(|call| call.join().unwrap())
                .collect::<Vec<_>>()
        });
        for call in &met {
            assert_eq!(
                call.result(),
                OK,
                "the two make-calls never ran at the same time"
            );
            assert_eq!(host.close_call(call.value.unwrap()), OK);
        }
        control.set_make(MakeMode::Succeed);
        let results = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..6)
                .map(|t| {
                    let host = &host;
                    let line = lines[t % 3];
                    scope.spawn(move || {
                        (0..40)
                            .map(|_| {
                                let call = host.make_call(line, Some("42"));
                                let ref_ = call.value.unwrap();
                                let drop = host.drop_call(ref_);
                                assert_eq!(host.close_call(ref_), OK);
                                (call.request, drop.request)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect::<Vec<_>>()
        });
        for (make, drop) in results {
            assert_eq!(host.completions_of(make), [OK]);
            assert_eq!(host.completions_of(drop), [OK]);
        }
        control.events.lock().unwrap().clear();
        finish(host);
    });
}

#[test]
fn r_tsp_16_call_status_leaves_tapis_members_alone() {
    bounded(|| {
        let (host, control) = lab();
        let call = connected(&host, &control);
        let total = size_of::<LINECALLSTATUS>() + 64;
        let (ret, bytes) = host.call_status_bytes(call, total, 0xAB);
        assert_eq!(ret, 0);
        assert_eq!(read_dword(&bytes, 0), Some(total as u32), "dwTotalSize");
        let privilege = std::mem::offset_of!(LINECALLSTATUS, dwCallPrivilege);
        assert_eq!(
            read_dword(&bytes, privilege),
            Some(0xABAB_ABAB),
            "dwCallPrivilege"
        );
        let state = std::mem::offset_of!(LINECALLSTATUS, dwCallState);
        assert_eq!(
            read_dword(&bytes, state),
            Some(tapi::LINECALLSTATE_CONNECTED)
        );
        let used = read_dword(&bytes, 8).unwrap() as usize;
        assert!(used <= total && read_dword(&bytes, 4).unwrap() as usize <= total);
        // Smaller than the fixed part: refused, untouched.
        let (ret, bytes) = host.call_status_bytes(call, 16, 0xCD);
        assert_eq!(ret, LineErr::LINEERR_STRUCTURETOOSMALL.raw());
        assert!(bytes[4..].iter().all(|&b| b == 0xCD));
        // LINEDEVCAPS too small for its strings: needed reported, nothing past dwTotalSize.
        let fixed = size_of::<tapi::LINEDEVCAPS>();
        let (ret, bytes) = host.dev_caps_bytes(0, fixed + 4);
        assert_eq!(ret, 0);
        assert!(read_dword(&bytes, 4).unwrap() as usize > fixed + 4);
        assert_eq!(read_dword(&bytes, 8), Some(fixed as u32));
        assert_eq!(host.line_name(0).as_deref(), Some("Lab line 0"));
        control.events.lock().unwrap().clear();
        finish(host);
    });
}

#[test]
fn r_tsp_17_undiallable_strings_fail_synchronously() {
    bounded(|| {
        let (host, control) = lab();
        let line = host.open(0).unwrap();
        for (dial, error) in [
            ("9W5551234", LineErr::LINEERR_DIALDIALTONE),
            ("555@1", LineErr::LINEERR_DIALQUIET),
            ("555$1", LineErr::LINEERR_DIALBILLING),
            ("555?", LineErr::LINEERR_DIALPROMPT),
            ("55x5", LineErr::LINEERR_INVALADDRESS),
        ] {
            let call = host.make_call(line, Some(dial));
            assert_eq!(call.result(), Err(error), "{dial}");
            assert!(host.completions_of(call.request).is_empty());
        }
        // Unterminated within the limit the framework reads is refused too, not overrun.
        let long = vec![u16::from(b'5'); 5000];
        let call = host.make_call_raw(line.hd, Some(&long));
        assert_eq!(call.result(), Err(LineErr::LINEERR_INVALADDRESS));
        assert_eq!(
            control.make_calls.load(Ordering::SeqCst),
            0,
            "never reached the author"
        );
        assert_eq!(host.stats().calls, 0);
        finish(host);
    });
}

#[test]
fn r_tsp_18_nothing_before_init_and_nothing_after_the_final_shutdown() {
    bounded(|| {
        let control = Control::new();
        let host = Host::new(Lab(Arc::clone(&control)));
        assert_eq!(host.open(0).err(), Some(LineErr::LINEERR_NODRIVER));
        assert_eq!(
            host.dev_caps_bytes(0, 1024).0,
            LineErr::LINEERR_NODRIVER.raw()
        );
        assert!(
            host.negotiate(INITIALIZE_NEGOTIATION, Version::V2_0.0, Version::V2_2.0)
                .is_ok()
        );
        host.start().unwrap();
        let line = host.open(0).unwrap();
        control.set_make(MakeMode::Accept);
        let pending = host.make_call(line, Some("1"));
        // The final shutdown closes what TAPI left open, completing its requests.
        assert_eq!(host.shutdown(), OK);
        assert_eq!(host.completions_of(pending.request), [FAILED]);
        assert_eq!(host.open(0).err(), Some(LineErr::LINEERR_NODRIVER));
        assert_eq!(host.close(line), Err(LineErr::LINEERR_INVALLINEHANDLE));
        control.made.lock().unwrap().clear();
        host.assert_idle();
    });
}

#[test]
fn forged_line_handles_and_bad_pointers_are_refused() {
    let (host, _control) = lab();
    let call = host.make_call_raw(0xDEAD_BEEF, Some(&winprov_core::ffi::to_wide_nul("1")));
    assert_eq!(call.result(), Err(LineErr::LINEERR_INVALLINEHANDLE));
    let line = host.open(0).unwrap();
    assert_eq!(host.open(0).err(), Some(LineErr::LINEERR_ALLOCATED));
    assert_eq!(host.close(line), OK);
    finish(host);
}

/// What a run leaves unfinished is named by the simulator: the request by its export, id and
/// call, the call by its handles; once the host closes the call, nothing is left.
#[test]
fn assert_idle_names_what_is_left() {
    bounded(|| {
        let (host, control) = lab();
        let call = connected(&host, &control);
        control.set_drop(DropMode::Hold);
        let drop = host.drop_call(call);
        assert_eq!(drop.result(), OK);
        let left = host.leftovers();
        assert!(
            left.contains(&format!(
                "TSPI_lineDrop request {:#x} of call HDRVCALL {:#x} (HTAPICALL {:#x}): accepted, \
                 never completed",
                drop.request, call.hd, call.ht
            )),
            "{left:#?}"
        );
        assert!(
            left.contains(&format!(
                "call HDRVCALL {:#x} (HTAPICALL {:#x}): never closed with TSPI_lineCloseCall",
                call.hd, call.ht
            )),
            "{left:#?}"
        );
        let idle = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| host.assert_idle()));
        let message = idle.expect_err("a pending drop is not idle");
        let message = message
            .downcast_ref::<String>()
            .expect("a formatted message");
        assert!(message.contains("TSPI_lineDrop request"), "{message}");
        assert_eq!(host.close_call(call), OK);
        assert!(
            host.leftovers()
                .iter()
                .all(|left| left.starts_with("line ")),
            "{:#?}",
            host.leftovers()
        );
        control.pending.lock().unwrap().clear();
        finish(host);
    });
}
