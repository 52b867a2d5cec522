//! One test per NSPv2 rule of the catalogue (R-NSP-1 … R-NSP-16), each named after its ID and
//! listed in docs/rules.md. They drive the real routine table through the host simulator
//! (`winprov_nspv2::testing::Host`), which also checks on every call that NextEx and
//! SetServiceEx complete exactly once, that results stay inside the buffer and that the legacy
//! codes never appear.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use winprov_nspv2::testing::wire::Decoded;
use winprov_nspv2::testing::{self, Buffer, Host, LookupHandle, RawQuerySet, SessionArg};
use winprov_nspv2::{
    Completed, ControlFlags, CsAddr, Delivery, Domain, Lookup, NamespaceInstall, NamespaceProvider,
    NextCall, NspError, OutputFlags, ProviderLevel, ProviderType, Query, QueryResult, RegInfo,
    SetServiceCall, SetServiceOp, WsaError,
};

const ALL: ControlFlags = ControlFlags::RETURN_ALL;
const WATCHDOG: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// A provider whose behaviour each test chooses, and which records what the framework did.

#[derive(Default)]
struct Record {
    first_startups: AtomicUsize,
    final_cleanups: AtomicUsize,
    startups: AtomicUsize,
    begins: AtomicUsize,
    nexts: AtomicUsize,
    lookups_dropped: AtomicUsize,
    saw_cancel: AtomicBool,
    /// Session ids seen by begin / set_service / rundown.
    sessions_seen: Mutex<Vec<(&'static str, u64)>>,
    /// What the author's completion of a next that ignored End delivered.
    late_delivery: Mutex<Option<Delivery>>,
    /// Makes `first_startup` / `startup` fail.
    fail_first_startup: AtomicBool,
    fail_startup: AtomicBool,
    /// The operation and addresses each set_service got from the framework.
    set_services: Mutex<Vec<(SetServiceOp, Vec<CsAddr>)>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The results for the name, then the end.
    Results,
    /// Blocks until the lookup is ended, then reports the cancellation.
    BlockUntilEnded,
    /// Ignores cancellation: returns a result once the test releases the backend.
    IgnoreEnd,
    /// Panics in next and in set_service.
    Panic,
    /// Leaks the guard (next and set_service).
    Leak,
    /// The backend stalls forever (until the test releases it) — but only in next.
    StalledBackend,
}

struct TestProvider {
    record: Arc<Record>,
    mode: Mode,
    results: Vec<QueryResult>,
    services: Mutex<HashMap<String, Vec<CsAddr>>>,
    release_backend: Arc<(Mutex<bool>, std::sync::Condvar)>,
}

struct TestSession {
    id: u64,
}

struct TestLookup {
    record: Arc<Record>,
    mode: Mode,
    queue: Vec<QueryResult>,
    release_backend: Arc<(Mutex<bool>, std::sync::Condvar)>,
}

impl Drop for TestLookup {
    fn drop(&mut self) {
        self.record.lookups_dropped.fetch_add(1, Ordering::SeqCst);
    }
}

impl TestProvider {
    fn new(mode: Mode) -> (Self, Arc<Record>) {
        let record = Arc::new(Record::default());
        let results = vec![
            QueryResult::named("alice@example.org")
                .with_comment("Alice")
                .with_context("example.org")
                .with_address(CsAddr::tcp("192.0.2.10:25".parse().unwrap()))
                .with_address(CsAddr::tcp("[2001:db8::1]:587".parse().unwrap()))
                .with_blob(b"extra".to_vec())
                .with_query_string("rest")
                .with_output_flags(OutputFlags::ADDED),
            QueryResult::named("alice.alias@example.org")
                .with_comment("Alias")
                .with_output_flags(OutputFlags::ALIAS),
        ];
        let provider = Self {
            record: Arc::clone(&record),
            mode,
            results,
            services: Mutex::new(HashMap::new()),
            release_backend: Arc::new((Mutex::new(false), std::sync::Condvar::new())),
        };
        (provider, record)
    }
}

static SESSION_IDS: AtomicUsize = AtomicUsize::new(1);

impl NamespaceProvider for TestProvider {
    type Session = TestSession;
    type Lookup = TestLookup;

    fn first_startup(&self) -> Result<(), WsaError> {
        self.record.first_startups.fetch_add(1, Ordering::SeqCst);
        if self.record.fail_first_startup.load(Ordering::SeqCst) {
            return Err(WsaError::WSASYSNOTREADY);
        }
        Ok(())
    }

    fn startup(&self) -> Result<TestSession, WsaError> {
        self.record.startups.fetch_add(1, Ordering::SeqCst);
        if self.record.fail_startup.load(Ordering::SeqCst) {
            return Err(WsaError::WSA_NOT_ENOUGH_MEMORY);
        }
        Ok(TestSession {
            id: SESSION_IDS.fetch_add(1, Ordering::SeqCst) as u64,
        })
    }

    fn lookup_begin(
        &self,
        session: &TestSession,
        query: &Query,
        _flags: ControlFlags,
    ) -> Result<TestLookup, WsaError> {
        self.record.begins.fetch_add(1, Ordering::SeqCst);
        self.record
            .sessions_seen
            .lock()
            .unwrap()
            .push(("begin", session.id));
        if query.service_instance_name.as_deref() == Some("nobody@example.org") {
            return Err(WsaError::WSASERVICE_NOT_FOUND);
        }
        if query.service_instance_name.as_deref() == Some("panic@example.org") {
            panic!("provider bug in lookup_begin");
        }
        Ok(TestLookup {
            record: Arc::clone(&self.record),
            mode: self.mode,
            queue: self.results.iter().rev().cloned().collect(),
            release_backend: Arc::clone(&self.release_backend),
        })
    }

    fn set_service<'call>(
        &self,
        session: &TestSession,
        call: SetServiceCall<'call>,
    ) -> Completed<'call> {
        self.record
            .sessions_seen
            .lock()
            .unwrap()
            .push(("set_service", session.id));
        self.record
            .set_services
            .lock()
            .unwrap()
            .push((call.operation(), call.registration().addresses.clone()));
        match self.mode {
            Mode::Panic => panic!("provider bug in set_service"),
            Mode::Leak => {
                std::mem::forget(call);
                panic!("leaked the call guard")
            }
            _ => {}
        }
        let Some(name) = call.registration().service_instance_name.clone() else {
            return call.complete(Err(WsaError::WSAEINVAL));
        };
        let addresses = call.registration().addresses.clone();
        let mut services = self.services.lock().unwrap();
        let outcome = match call.operation() {
            SetServiceOp::Register { multiple: false } => {
                services.insert(name, addresses);
                Ok(())
            }
            SetServiceOp::Register { multiple: true } => {
                services.entry(name).or_default().extend(addresses);
                Ok(())
            }
            SetServiceOp::Deregister => match services.get_mut(&name) {
                Some(known) => {
                    known.retain(|a| !addresses.contains(a));
                    Ok(())
                }
                None => Err(WsaError::WSASERVICE_NOT_FOUND),
            },
            SetServiceOp::Delete => services
                .remove(&name)
                .map(drop)
                .ok_or(WsaError::WSASERVICE_NOT_FOUND),
            _ => Err(WsaError::WSAEINVAL),
        };
        drop(services);
        call.complete(outcome)
    }

    fn client_session_rundown(&self, session: &TestSession) {
        self.record
            .sessions_seen
            .lock()
            .unwrap()
            .push(("rundown", session.id));
    }

    fn final_cleanup(&self) {
        self.record.final_cleanups.fetch_add(1, Ordering::SeqCst);
    }
}

impl Lookup for TestLookup {
    fn next<'call>(&mut self, call: NextCall<'call>) -> Completed<'call> {
        self.record.nexts.fetch_add(1, Ordering::SeqCst);
        match self.mode {
            Mode::Results => call.complete(Ok(self.queue.pop())),
            Mode::BlockUntilEnded => {
                call.wait();
                self.record.saw_cancel.store(true, Ordering::SeqCst);
                call.cancelled()
            }
            Mode::IgnoreEnd => {
                let (lock, cv) = &*self.release_backend;
                let mut released = lock.lock().unwrap();
                while !*released {
                    released = cv.wait(released).unwrap();
                }
                drop(released);
                let completed = call.found(QueryResult::named("late@example.org"));
                *self.record.late_delivery.lock().unwrap() = Some(completed.delivery());
                completed
            }
            Mode::Panic => panic!("provider bug in next"),
            Mode::Leak => {
                std::mem::forget(call);
                // A Completed can only come from a call; this lookup has none left, so it
                // cannot return one. Diverge instead (the framework catches the panic).
                panic!("leaked the call guard")
            }
            Mode::StalledBackend => {
                let (lock, cv) = &*self.release_backend;
                let mut released = lock.lock().unwrap();
                while !*released && !call.is_cancelled() {
                    released = cv
                        .wait_timeout(released, Duration::from_millis(10))
                        .unwrap()
                        .0;
                }
                drop(released);
                call.complete(Ok(self.queue.pop()))
            }
        }
    }
}

fn host(mode: Mode) -> (Host, Arc<Record>) {
    let (provider, record) = TestProvider::new(mode);
    (Host::advertise_new(provider), record)
}

fn alice() -> Query {
    Query::name("alice@example.org")
}

fn open(host: &Host, flags: ControlFlags) -> (SessionArg, LookupHandle) {
    let session = host.startup().expect("Startup");
    let lookup = host.begin(session, &alice(), flags).expect("Begin");
    (session, lookup)
}

fn decoded(next: &testing::Next) -> &Decoded {
    next.result.as_ref().expect("a result")
}

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

/// Lets a held backend (`StalledBackend`, `IgnoreEnd`) answer.
fn release(backend: &(Mutex<bool>, std::sync::Condvar)) {
    *backend.0.lock().unwrap() = true;
    backend.1.notify_all();
}

// ---------------------------------------------------------------------------------------------

#[test]
fn r_nsp_1_advertise_rejects_incomplete_tables() {
    // The table this crate exports, as WSAAdvertiseProvider reads it: the size it checks, and
    // every slot filled (the three it refuses NULL in, and the four others, R-NSP-13).
    let table = winprov_nspv2::routine();
    assert_eq!(
        table.cbSize as usize,
        size_of::<winprov_nspv2::NSPV2_ROUTINE>(),
        "cbSize"
    );
    let slots = [
        ("Startup", table.NSPv2Startup.map(|f| f as usize)),
        ("Cleanup", table.NSPv2Cleanup.map(|f| f as usize)),
        ("Begin", table.NSPv2LookupServiceBegin.map(|f| f as usize)),
        ("NextEx", table.NSPv2LookupServiceNextEx.map(|f| f as usize)),
        ("End", table.NSPv2LookupServiceEnd.map(|f| f as usize)),
        ("SetServiceEx", table.NSPv2SetServiceEx.map(|f| f as usize)),
        (
            "ClientSessionRundown",
            table.NSPv2ClientSessionRundown.map(|f| f as usize),
        ),
    ];
    for (name, slot) in slots {
        assert!(slot.is_some(), "the {name} slot is NULL");
    }
    let mut distinct: Vec<_> = slots.iter().map(|(_, slot)| *slot).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 7, "two slots share one function");

    // Each slot answers as its entry: the process's own table, driven as ws2_32 drives it.
    let (provider, record) = TestProvider::new(Mode::Results);
    let id = winprov_nspv2::Guid::from_u128(0x5eed_0001_0000_4000_8000_0000_0000_0002);
    let registration = winprov_nspv2::register(id, provider).expect("a fresh id");
    let run = testing::drive_routine(id, &alice(), &RegInfo::named("x@example.org").with_blob());
    assert_eq!(run.startup, Ok(()));
    assert_eq!(run.begin, Ok(()));
    assert_eq!(run.next, (0, Some("alice@example.org".to_string())));
    assert_eq!(run.end, Ok(()));
    assert_eq!(run.set_service, WsaError::WSASERVICE_NOT_FOUND.raw());
    assert_eq!(run.cleanup, Ok(()));
    let calls: Vec<_> = record
        .sessions_seen
        .lock()
        .unwrap()
        .iter()
        .map(|(what, _)| *what)
        .collect();
    assert_eq!(calls, ["begin", "set_service", "rundown"]);
    assert_eq!(record.final_cleanups.load(Ordering::SeqCst), 1);
    drop(registration);

    // The simulator refuses what Winsock refuses, so a table with a hole could not be advertised.
    assert_eq!(testing::check_routine(None), Err(WsaError::WSAEINVAL));
    for hole in 0..4 {
        let mut broken = *table;
        match hole {
            0 => broken.NSPv2LookupServiceBegin = None,
            1 => broken.NSPv2LookupServiceNextEx = None,
            2 => broken.NSPv2LookupServiceEnd = None,
            _ => broken.cbSize -= 8,
        }
        assert_eq!(
            testing::check_routine(Some(&broken)),
            Err(WsaError::WSAEINVAL)
        );
    }
    // The same id cannot be registered twice in one process's routine table.
    let (provider, _) = TestProvider::new(Mode::Results);
    let (again, _) = TestProvider::new(Mode::Results);
    let id = winprov_nspv2::Guid::from_u128(0x5eed_0001_0000_4000_8000_0000_0000_0001);
    let registration = winprov_nspv2::register(id, provider).expect("a fresh id");
    assert!(matches!(
        winprov_nspv2::register(id, again),
        Err(NspError::AlreadyRegistered { .. })
    ));
    drop(registration);
    // A real advertisement needs Winsock: off Windows it is a clear error.
    #[cfg(not(windows))]
    {
        let (provider, _) = TestProvider::new(Mode::Results);
        let error =
            winprov_nspv2::Advertisement::new(winprov_nspv2::Guid::from_u128(0xadd), provider)
                .unwrap_err();
        assert!(
            error.to_string().contains("WSAAdvertiseProvider"),
            "{error}"
        );
    }
}

#[test]
fn r_nsp_2_end_during_next_cancels() {
    bounded(|| {
        let (host, record) = host(Mode::BlockUntilEnded);
        let host = Arc::new(host);
        let entered = host.nexts_entered() + 1;
        let (session, lookup) = open(&host, ALL);
        let next = std::thread::spawn({
            let host = Arc::clone(&host);
            move || host.next(lookup, ALL, 4096)
        });
        assert!(host.wait_nexts_entered(entered, WATCHDOG), "next started");
        assert_eq!(record.lookups_dropped.load(Ordering::SeqCst), 0);
        assert_eq!(host.end(lookup), Ok(()));
        assert_eq!(
            host.uncompleted_nexts(lookup),
            0,
            "End returned before the running NextEx was completed"
        );
        let next = next.join().unwrap();
        assert_eq!(next.status(), Err(WsaError::WSA_E_CANCELLED));
        assert_eq!(next.code, 10111, "never WSAECANCELLED (10103)");
        assert!(
            record.saw_cancel.load(Ordering::SeqCst),
            "next saw the cancellation"
        );
        // Freed exactly once, after both calls.
        assert_eq!(record.lookups_dropped.load(Ordering::SeqCst), 1);
        assert_eq!(host.stats().live_lookups, 0);
        host.cleanup(session).unwrap();
    });
}

#[test]
fn r_nsp_2_end_completes_even_when_next_ignores_it() {
    // The author's next ignores the cancellation and returns a result only after End: End
    // itself delivers WSA_E_CANCELLED before it returns, and the author's late completion is a
    // no-op.
    bounded(|| {
        let (provider, record) = TestProvider::new(Mode::IgnoreEnd);
        let backend = Arc::clone(&provider.release_backend);
        let host = Arc::new(Host::advertise_new(provider));
        let entered = host.nexts_entered() + 1;
        let (session, lookup) = open(&host, ALL);
        let next = std::thread::spawn({
            let host = Arc::clone(&host);
            move || host.next(lookup, ALL, 4096)
        });
        assert!(host.wait_nexts_entered(entered, WATCHDOG), "next started");
        assert_eq!(host.uncompleted_nexts(lookup), 1, "the NextEx is running");
        host.end(lookup).unwrap();
        // The author's next is still held: only End can have completed the call.
        assert_eq!(
            host.uncompleted_nexts(lookup),
            0,
            "End returned before it completed the running NextEx"
        );
        assert!(!next.is_finished());
        release(&backend);
        let next = next.join().unwrap();
        assert_eq!(next.status(), Err(WsaError::WSA_E_CANCELLED));
        assert!(next.result.is_none());
        assert_eq!(
            *record.late_delivery.lock().unwrap(),
            Some(Delivery::AlreadyFinished),
            "the author's completion after End must be a no-op"
        );
        assert_eq!(host.stats().live_lookups, 0);
        host.cleanup(session).unwrap();
    });
}

#[test]
fn r_nsp_2_end_cancels_every_waiting_next_of_the_lookup() {
    // Several NextEx on one handle: one runs in the author's `next`, the others wait for the
    // lookup's turn inside the framework (the simulator's barriers say when); End completes
    // them all with WSA_E_CANCELLED before it returns (the simulator fails any that is
    // completed after End returned).
    bounded(|| {
        let (host, record) = host(Mode::BlockUntilEnded);
        let host = Arc::new(host);
        let (session, lookup) = open(&host, ALL);
        let calls: Vec<_> = (0..4)
            .map(|_| {
                let host = Arc::clone(&host);
                std::thread::spawn(move || host.next(lookup, ALL, 4096))
            })
            .collect();
        assert!(host.wait_nexts_entered(1, WATCHDOG), "one call in `next`");
        assert!(
            host.wait_waiting_nexts(lookup, 3, WATCHDOG),
            "three calls waiting for the turn"
        );
        host.end(lookup).unwrap();
        for call in calls {
            assert_eq!(
                call.join().unwrap().status(),
                Err(WsaError::WSA_E_CANCELLED)
            );
        }
        assert_eq!(
            record.nexts.load(Ordering::SeqCst),
            1,
            "calls never overlap"
        );
        assert_eq!(
            host.nexts_entered(),
            1,
            "End ended the lookup: no call ran after it"
        );
        host.cleanup(session).unwrap();
    });
}

#[test]
fn r_nsp_3_released_handle_is_invalid() {
    let (host, _) = host(Mode::Results);
    let (session, lookup) = open(&host, ALL);
    host.end(lookup).unwrap();
    assert_eq!(
        host.next(lookup, ALL, 4096).status(),
        Err(WsaError::WSA_INVALID_HANDLE)
    );
    assert_eq!(host.end(lookup), Err(WsaError::WSA_INVALID_HANDLE));
    for forged in [
        0,
        1,
        lookup.0 ^ 0x10000,
        lookup.0 + 1,
        usize::MAX,
        session.0,
    ] {
        assert_eq!(
            host.next(LookupHandle(forged), ALL, 4096).status(),
            Err(WsaError::WSA_INVALID_HANDLE),
            "{forged:#x}"
        );
        assert_eq!(
            host.end(LookupHandle(forged)),
            Err(WsaError::WSA_INVALID_HANDLE)
        );
    }
    // A new lookup reusing the slot gets a new value; the old one stays invalid.
    let again = host.begin(session, &alice(), ALL).unwrap();
    assert_ne!(again, lookup);
    assert_eq!(
        host.next(lookup, ALL, 4096).status(),
        Err(WsaError::WSA_INVALID_HANDLE)
    );
    assert_eq!(host.next_sized(again, ALL).status(), Ok(()));
    host.cleanup(session).unwrap();

    // While a NextEx that ignores the cancellation still holds the ended lookup, the handle is
    // already released: End and NextEx on it are refused.
    bounded(|| {
        let (provider, _) = TestProvider::new(Mode::IgnoreEnd);
        let backend = Arc::clone(&provider.release_backend);
        let host = Arc::new(Host::advertise_new(provider));
        let entered = host.nexts_entered() + 1;
        let (session, lookup) = open(&host, ALL);
        let next = std::thread::spawn({
            let host = Arc::clone(&host);
            move || host.next(lookup, ALL, 4096)
        });
        assert!(host.wait_nexts_entered(entered, WATCHDOG), "next started");
        host.end(lookup).unwrap();
        assert_eq!(host.stats().live_lookups, 1, "held by the running NextEx");
        assert_eq!(host.end(lookup), Err(WsaError::WSA_INVALID_HANDLE));
        assert_eq!(
            host.next(lookup, ALL, 4096).status(),
            Err(WsaError::WSA_INVALID_HANDLE)
        );
        release(&backend);
        assert_eq!(
            next.join().unwrap().status(),
            Err(WsaError::WSA_E_CANCELLED)
        );
        assert_eq!(host.stats().live_lookups, 0);
        assert_eq!(host.end(lookup), Err(WsaError::WSA_INVALID_HANDLE));
        host.cleanup(session).unwrap();
    });
}

#[test]
fn r_nsp_4_exhausted_is_wsa_e_no_more() {
    let (host, record) = host(Mode::Results);
    let (session, lookup) = open(&host, ALL | ControlFlags::RETURN_ALIASES);
    assert_eq!(
        host.next_sized(lookup, ALL).name(),
        Some("alice@example.org")
    );
    assert_eq!(
        host.next_sized(lookup, ALL).name(),
        Some("alice.alias@example.org")
    );
    for _ in 0..3 {
        let next = host.next_sized(lookup, ALL);
        assert_eq!(next.status(), Err(WsaError::WSA_E_NO_MORE));
        assert_eq!(next.code, 10110, "never WSAENOMORE (10102)");
    }
    assert_eq!(
        record.nexts.load(Ordering::SeqCst),
        3,
        "the author is not asked again after reporting the end"
    );
    host.end(lookup).unwrap();
    host.cleanup(session).unwrap();
}

#[test]
fn r_nsp_5_short_buffer_keeps_result() {
    let (host, record) = host(Mode::Results);
    let (session, lookup) = open(&host, ALL);
    let probe = host.next(lookup, ALL, 0);
    assert_eq!(probe.status(), Err(WsaError::WSAEFAULT));
    let needed = probe.buffer_length;
    assert!(needed > 0);
    let short = host.next(lookup, ALL, needed - 1);
    assert_eq!(short.status(), Err(WsaError::WSAEFAULT));
    assert_eq!(short.buffer_length, needed, "the same size is asked again");
    let exact = host.next(lookup, ALL, needed);
    assert_eq!(exact.status(), Ok(()));
    assert_eq!(exact.name(), Some("alice@example.org"));
    assert_eq!(
        record.nexts.load(Ordering::SeqCst),
        1,
        "the retries replay the kept result without asking the author"
    );
    let r = &decoded(&exact).result;
    assert_eq!(r.comment.as_deref(), Some("Alice"));
    assert_eq!(r.addresses.len(), 2);
    assert_eq!(r.blob.as_deref(), Some(&b"extra"[..]));
    host.end(lookup).unwrap();
    host.cleanup(session).unwrap();
}

/// A provider whose lookups return `r0@example.org`, `r1@…`, … `r{n-1}@…`, then the end.
struct Counting(usize);
struct Count {
    next: usize,
    total: usize,
}

impl NamespaceProvider for Counting {
    type Session = ();
    type Lookup = Count;
    fn startup(&self) -> Result<(), WsaError> {
        Ok(())
    }
    fn lookup_begin(&self, _: &(), _: &Query, _: ControlFlags) -> Result<Count, WsaError> {
        Ok(Count {
            next: 0,
            total: self.0,
        })
    }
}

impl Lookup for Count {
    fn next<'call>(&mut self, call: NextCall<'call>) -> Completed<'call> {
        if self.next == self.total {
            return call.no_more();
        }
        let n = self.next;
        self.next += 1;
        call.found(QueryResult::named(format!("r{n}@example.org")))
    }
}

#[test]
fn r_nsp_6_flushprevious_skips() {
    let host = Host::advertise_new(Counting(4));
    let session = host.startup().unwrap();
    let lookup = host.begin(session, &alice(), ALL).unwrap();
    let flush = ALL | ControlFlags::FLUSHPREVIOUS;
    // r0 does not fit: with the flag the next call skips it.
    assert_eq!(
        host.next(lookup, ALL, 16).status(),
        Err(WsaError::WSAEFAULT)
    );
    assert_eq!(
        host.next(lookup, flush, 4096).name(),
        Some("r1@example.org")
    );
    // Without a result that did not fit the flag skips nothing.
    assert_eq!(
        host.next(lookup, flush, 4096).name(),
        Some("r2@example.org")
    );
    // Without the flag the result that did not fit is returned (R-NSP-5).
    assert_eq!(
        host.next(lookup, ALL, 16).status(),
        Err(WsaError::WSAEFAULT)
    );
    assert_eq!(host.next(lookup, ALL, 4096).name(), Some("r3@example.org"));
    assert_eq!(
        host.next(lookup, flush, 4096).status(),
        Err(WsaError::WSA_E_NO_MORE)
    );
    host.end(lookup).unwrap();
    host.cleanup(session).unwrap();
}

#[test]
fn r_nsp_7_flags_only_narrow() {
    let (host, _) = host(Mode::Results);
    let session = host.startup().unwrap();
    let bits = [
        ControlFlags::RETURN_NAME,
        ControlFlags::RETURN_TYPE,
        ControlFlags::RETURN_VERSION,
        ControlFlags::RETURN_COMMENT,
        ControlFlags::RETURN_ADDR,
        ControlFlags::RETURN_BLOB,
        ControlFlags::RETURN_QUERY_STRING,
    ];
    let subset = |mask: u32| {
        bits.iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .fold(ControlFlags::empty(), |acc, (_, b)| acc | *b)
    };
    // Every combination of Begin and NextEx return bits.
    for begin_mask in 0..(1u32 << bits.len()) {
        let begin = subset(begin_mask);
        let lookup = host.begin(session, &alice(), begin).unwrap();
        let next_mask = begin_mask.rotate_left(3) ^ 0b101_0101;
        let next_flags = subset(next_mask & 0x7f);
        let effective = begin.narrowed_by(next_flags);
        let next = host.next_sized(lookup, next_flags);
        assert_eq!(next.status(), Ok(()), "no error for any combination");
        let r = &decoded(&next).result;
        let has = |flag| effective.contains(flag);
        assert_eq!(
            r.service_instance_name.is_some(),
            has(ControlFlags::RETURN_NAME)
        );
        assert_eq!(r.comment.is_some(), has(ControlFlags::RETURN_COMMENT));
        assert_eq!(!r.addresses.is_empty(), has(ControlFlags::RETURN_ADDR));
        assert_eq!(r.blob.is_some(), has(ControlFlags::RETURN_BLOB));
        assert_eq!(
            r.query_string.is_some(),
            has(ControlFlags::RETURN_QUERY_STRING)
        );
        // A bit absent at Begin never comes back.
        for bit in bits {
            if !begin.contains(bit) {
                assert!(!effective.contains(bit));
            }
        }
        host.end(lookup).unwrap();
    }
    host.cleanup(session).unwrap();
}

#[test]
fn r_nsp_8_pointers_inside_buffer() {
    let (host, _) = host(Mode::Results);
    let (session, lookup) = open(&host, ALL);
    // The simulator decodes the result and fails on any pointer outside the buffer.
    let next = host.next(lookup, ALL, 64 * 1024);
    assert_eq!(next.status(), Ok(()));
    let d = decoded(&next);
    assert_eq!(d.namespace, winprov_bindings::ws2spi::NS_EMAIL);
    assert_eq!(d.provider_id, Some(host.id()));
    assert_eq!(d.protocols, 0);
    let remote: Vec<SocketAddr> = d.result.addresses.iter().filter_map(|a| a.remote).collect();
    assert_eq!(
        remote,
        [
            "192.0.2.10:25".parse::<SocketAddr>().unwrap(),
            "[2001:db8::1]:587".parse().unwrap()
        ]
    );
    // Buffers the provider must refuse: no length, no data with a length, misaligned.
    for buffer in [
        Buffer::NullLength,
        Buffer::NullData(4096),
        Buffer::Misaligned(4096),
    ] {
        assert_eq!(
            host.next_with(lookup, ALL, buffer).status(),
            Err(WsaError::WSAEFAULT),
            "{buffer:?}"
        );
    }
    host.end(lookup).unwrap();
    host.cleanup(session).unwrap();
}

#[test]
fn r_nsp_9_begin_is_bounded() {
    bounded(|| {
        // The backend stalls until released; Begin must still return (the waiting is in next,
        // which End can cancel).
        let (provider, record) = TestProvider::new(Mode::StalledBackend);
        let release = Arc::clone(&provider.release_backend);
        let host = Arc::new(Host::advertise_new(provider));
        let (session, lookup) = bounded({
            let host = Arc::clone(&host);
            move || open(&host, ALL)
        });
        assert_eq!(record.begins.load(Ordering::SeqCst), 1);
        // next is stalled; End cancels it.
        let entered = host.nexts_entered() + 1;
        let next = std::thread::spawn({
            let host = Arc::clone(&host);
            move || host.next(lookup, ALL, 4096)
        });
        assert!(host.wait_nexts_entered(entered, WATCHDOG), "next started");
        host.end(lookup).unwrap();
        assert_eq!(
            next.join().unwrap().status(),
            Err(WsaError::WSA_E_CANCELLED)
        );
        // Released, the backend answers the next lookup.
        *release.0.lock().unwrap() = true;
        release.1.notify_all();
        let lookup = host.begin(session, &alice(), ALL).unwrap();
        assert_eq!(host.next_sized(lookup, ALL).status(), Ok(()));
        host.end(lookup).unwrap();
        host.cleanup(session).unwrap();
    });
}

struct WithContainers;
struct NoResults;

impl NamespaceProvider for WithContainers {
    type Session = ();
    type Lookup = NoResults;
    const SUPPORTS_CONTAINERS: bool = true;
    fn startup(&self) -> Result<(), WsaError> {
        Ok(())
    }
    fn lookup_begin(&self, _: &(), _: &Query, _: ControlFlags) -> Result<NoResults, WsaError> {
        Ok(NoResults)
    }
}

impl Lookup for NoResults {
    fn next<'call>(&mut self, call: NextCall<'call>) -> Completed<'call> {
        call.no_more()
    }
}

#[test]
fn r_nsp_10_containers_without_support() {
    let (host, record) = host(Mode::Results);
    let session = host.startup().unwrap();
    assert_eq!(
        host.begin(session, &alice(), ALL | ControlFlags::CONTAINERS),
        Err(WsaError::WSANO_DATA)
    );
    assert_eq!(
        record.begins.load(Ordering::SeqCst),
        0,
        "the author is not asked"
    );
    host.cleanup(session).unwrap();

    let host = Host::advertise_new(WithContainers);
    let session = host.startup().unwrap();
    let lookup = host
        .begin(session, &alice(), ALL | ControlFlags::CONTAINERS)
        .unwrap();
    assert_eq!(
        host.next(lookup, ALL, 4096).status(),
        Err(WsaError::WSA_E_NO_MORE)
    );
    host.end(lookup).unwrap();
    host.cleanup(session).unwrap();
}

#[test]
fn r_nsp_11_session_value_round_trips() {
    let (host, record) = host(Mode::Results);
    let a = host.startup().unwrap();
    let b = host.startup().unwrap();
    assert_ne!(a, b);
    assert_ne!(a.0, 0);
    let la = host.begin(a, &alice(), ALL).unwrap();
    let lb = host.begin(b, &alice(), ALL).unwrap();
    host.set_service(
        a,
        &RegInfo::named("x@example.org").with_blob(),
        SetServiceOp::Register { multiple: false },
    )
    .unwrap();
    host.rundown(b);
    let seen = record.sessions_seen.lock().unwrap().clone();
    let ids: HashMap<&str, Vec<u64>> = seen.iter().fold(HashMap::new(), |mut map, (what, id)| {
        map.entry(*what).or_default().push(*id);
        map
    });
    let (a_id, b_id) = (ids["begin"][0], ids["begin"][1]);
    assert_ne!(a_id, b_id);
    assert_eq!(
        ids["set_service"],
        [a_id],
        "SetServiceEx got session A's value"
    );
    assert_eq!(ids["rundown"], [b_id], "Rundown got session B's value");
    // Rundown ended B's lookup; A's is untouched.
    assert_eq!(
        host.next(lb, ALL, 4096).status(),
        Err(WsaError::WSA_INVALID_HANDLE)
    );
    assert_eq!(host.next_sized(la, ALL).status(), Ok(()));
    // Forged and foreign session values are refused.
    assert_eq!(
        host.begin(SessionArg(a.0 ^ 0x10000), &alice(), ALL),
        Err(WsaError::WSAEINVAL)
    );
    let (provider, _) = TestProvider::new(Mode::Results);
    let other = host.advertise_beside(provider);
    assert_eq!(
        other.begin(a, &alice(), ALL),
        Err(WsaError::WSAEINVALIDPROVIDER),
        "a session of another provider"
    );
    host.cleanup(a).unwrap();
    host.cleanup(b).unwrap();
    assert_eq!(host.stats().open_sessions, 0);
}

trait WithBlob {
    fn with_blob(self) -> Self;
}

impl WithBlob for RegInfo {
    fn with_blob(mut self) -> Self {
        self.blob = Some(b"data".to_vec());
        self
    }
}

#[test]
fn r_nsp_12_startup_cleanup_pairing() {
    let (host, record) = host(Mode::Results);
    let sessions: Vec<_> = (0..3).map(|_| host.startup().unwrap()).collect();
    assert_eq!(record.first_startups.load(Ordering::SeqCst), 1);
    assert_eq!(host.stats().open_sessions, 3);
    host.cleanup(sessions[0]).unwrap();
    host.cleanup(sessions[1]).unwrap();
    assert_eq!(record.final_cleanups.load(Ordering::SeqCst), 0);
    // The remaining session still works.
    let lookup = host.begin(sessions[2], &alice(), ALL).unwrap();
    assert_eq!(host.next_sized(lookup, ALL).status(), Ok(()));
    host.cleanup(sessions[2]).unwrap();
    assert_eq!(record.final_cleanups.load(Ordering::SeqCst), 1);
    assert_eq!(
        host.stats().live_lookups,
        0,
        "Cleanup ended the open lookup"
    );
    assert_eq!(host.cleanup(sessions[2]), Err(WsaError::WSAEINVAL));
    // Rundown releases a session once, whatever follows.
    let s = host.startup().unwrap();
    assert_eq!(record.first_startups.load(Ordering::SeqCst), 2);
    host.rundown(s);
    assert_eq!(record.final_cleanups.load(Ordering::SeqCst), 2);
    host.rundown(s);
    assert_eq!(host.cleanup(s), Ok(()), "Cleanup after Rundown is accepted");
    assert_eq!(record.final_cleanups.load(Ordering::SeqCst), 2);
    assert_eq!(host.stats().open_sessions, 0);

    // A failed Startup leaves no session behind, whichever of the author's steps failed.
    let (host, record) = self::host(Mode::Results);
    let count = |n: &AtomicUsize| n.load(Ordering::SeqCst);
    record.fail_first_startup.store(true, Ordering::SeqCst);
    assert_eq!(host.startup(), Err(WsaError::WSASYSNOTREADY));
    assert_eq!(
        host.stats().open_sessions,
        0,
        "failed first_startup counted"
    );
    assert_eq!(count(&record.startups), 0);
    assert_eq!(count(&record.final_cleanups), 0);
    record.fail_first_startup.store(false, Ordering::SeqCst);
    record.fail_startup.store(true, Ordering::SeqCst);
    assert_eq!(host.startup(), Err(WsaError::WSA_NOT_ENOUGH_MEMORY));
    assert_eq!(host.stats().open_sessions, 0, "failed startup counted");
    assert_eq!(count(&record.first_startups), 2, "first_startup is retried");
    assert_eq!(
        count(&record.final_cleanups),
        1,
        "a first_startup that succeeded is undone"
    );
    record.fail_startup.store(false, Ordering::SeqCst);
    let s = host.startup().unwrap();
    assert_eq!(count(&record.first_startups), 3);
    // With a session open, a failed Startup changes nothing: its Cleanup is still the last.
    record.fail_startup.store(true, Ordering::SeqCst);
    assert_eq!(host.startup(), Err(WsaError::WSA_NOT_ENOUGH_MEMORY));
    assert_eq!(host.stats().open_sessions, 1);
    assert_eq!(count(&record.first_startups), 3);
    assert_eq!(count(&record.final_cleanups), 1);
    host.cleanup(s).unwrap();
    assert_eq!(count(&record.final_cleanups), 2);
    assert_eq!(host.stats().open_sessions, 0);
}

#[test]
fn r_nsp_13_unimplemented_is_eopnotsupp() {
    let host = Host::advertise_new(WithContainers);
    let session = host.startup().unwrap();
    assert_eq!(
        host.set_service(
            session,
            &RegInfo::named("a@example.org").with_blob(),
            SetServiceOp::Register { multiple: false }
        ),
        Err(WsaError::WSAEOPNOTSUPP)
    );
    assert_eq!(WsaError::WSAEOPNOTSUPP.raw(), 10045);
    host.cleanup(session).unwrap();
}

#[test]
fn r_nsp_14_set_service_semantics() {
    let (host, record) = host(Mode::Results);
    let session = host.startup().unwrap();
    // The framework's part: the operation and SERVICE_MULTIPLE are decoded from the raw
    // arguments, and the CSADDR_INFO array into the addresses the author gets.
    let addresses = vec![
        CsAddr::tcp("192.0.2.7:25".parse().unwrap()),
        CsAddr {
            local: Some("[2001:db8::2]:0".parse().unwrap()),
            remote: Some("[2001:db8::1]:587".parse().unwrap()),
            socket_type: 2,
            protocol: winprov_nspv2::IPROTOCOL_ANY,
        },
    ];
    let mut registration = RegInfo::named("decoded@example.org").with_blob();
    registration.addresses = addresses.clone();
    let raw = RawQuerySet::reg_info(&registration);
    for (operation, flags, expected) in [
        (0, 0, SetServiceOp::Register { multiple: false }),
        (0, 1, SetServiceOp::Register { multiple: true }),
        (0, 0x11, SetServiceOp::Register { multiple: true }),
        (0, 0x10, SetServiceOp::Register { multiple: false }),
        (1, 0, SetServiceOp::Deregister),
        (2, 0, SetServiceOp::Delete),
    ] {
        let _ = host.set_service_raw(session, Some(&raw), operation, flags);
        let seen = record.set_services.lock().unwrap().pop();
        assert_eq!(
            seen,
            Some((expected, addresses.clone())),
            "operation {operation}, flags {flags:#x}"
        );
    }
    // The author's part (its store): NOT_FOUND for unknown services, REGISTER replaces the
    // address set or, with SERVICE_MULTIPLE, adds to it.
    let a1: SocketAddr = "192.0.2.1:25".parse().unwrap();
    let a2: SocketAddr = "192.0.2.2:25".parse().unwrap();
    let reg = |addresses: &[SocketAddr]| {
        let mut reg = RegInfo::named("svc@example.org").with_blob();
        reg.addresses = addresses.iter().map(|a| CsAddr::tcp(*a)).collect();
        reg
    };
    for op in [SetServiceOp::Deregister, SetServiceOp::Delete] {
        assert_eq!(
            host.set_service(session, &reg(&[a1]), op),
            Err(WsaError::WSASERVICE_NOT_FOUND)
        );
    }
    let register = |multiple| SetServiceOp::Register { multiple };
    host.set_service(session, &reg(&[a1]), register(false))
        .unwrap();
    host.set_service(session, &reg(&[a2]), register(true))
        .unwrap();
    host.set_service(session, &reg(&[a2]), register(false))
        .unwrap();
    host.set_service(session, &reg(&[a2]), SetServiceOp::Deregister)
        .unwrap();
    host.set_service(session, &reg(&[]), SetServiceOp::Delete)
        .unwrap();
    let seen: Vec<_> = record.set_services.lock().unwrap().drain(..).collect();
    assert_eq!(seen.len(), 7);
    assert_eq!(
        seen[3],
        (
            SetServiceOp::Register { multiple: true },
            vec![CsAddr::tcp(a2)]
        )
    );
    assert_eq!(
        seen[4],
        (
            SetServiceOp::Register { multiple: false },
            vec![CsAddr::tcp(a2)]
        )
    );
    assert_eq!(
        host.set_service(session, &reg(&[]), SetServiceOp::Delete),
        Err(WsaError::WSASERVICE_NOT_FOUND)
    );
    // The framework's part: NS_EMAIL registrations carry a blob; the operation is checked;
    // the registration is parsed and checked.
    let mut no_blob = reg(&[a1]);
    no_blob.blob = None;
    assert_eq!(
        host.set_service(session, &no_blob, register(false)),
        Err(WsaError::WSAEINVAL)
    );
    assert_eq!(
        host.set_service_raw(session, Some(&RawQuerySet::reg_info(&reg(&[a1]))), 7, 0),
        Err(WsaError::WSAEINVAL)
    );
    assert_eq!(
        host.set_service_raw(session, None, 0, 0),
        Err(WsaError::WSAEINVAL)
    );
    let mut bad_addr = RawQuerySet::reg_info(&reg(&[a1]));
    claim_oversized_sockaddr(&mut bad_addr);
    assert_eq!(
        host.set_service_raw(session, Some(&bad_addr), 0, 0),
        Err(WsaError::WSAEINVAL)
    );
    host.cleanup(session).unwrap();
}

/// Replaces the addresses with one whose `iSockaddrLength` exceeds `SOCKADDR_STORAGE`: the
/// framework must refuse the length before following the pointer (which points nowhere).
fn claim_oversized_sockaddr(set: &mut RawQuerySet) {
    let mut entry = winprov_bindings::ws2spi::CSADDR_INFO::default();
    entry.RemoteAddr.lpSockaddr =
        std::ptr::NonNull::<winprov_bindings::ws2spi::SOCKADDR>::dangling().as_ptr();
    entry.RemoteAddr.iSockaddrLength = 4096;
    let raw = set.raw_mut();
    raw.lpcsaBuffer = Box::leak(Box::new(entry));
    raw.dwNumberOfCsAddrs = 1;
}

#[test]
fn r_nsp_15_completed_exactly_once() {
    let before = testing::stray_completions();
    // Success, end, short buffer, invalid handle: the simulator checks each call completes
    // exactly once.
    let (host, _) = host(Mode::Results);
    let (session, lookup) = open(&host, ALL);
    host.next(lookup, ALL, 0);
    host.next_sized(lookup, ALL);
    host.next_sized(lookup, ALL);
    host.next_sized(lookup, ALL);
    host.end(lookup).unwrap();
    host.next(lookup, ALL, 0);
    host.cleanup(session).unwrap();
    // A panicking next completes once, with WSASYSCALLFAILURE, and the host survives.
    for mode in [Mode::Panic, Mode::Leak] {
        let (host, record) = self::host(mode);
        let (session, lookup) = open(&host, ALL);
        assert_eq!(
            host.next(lookup, ALL, 4096).status(),
            Err(WsaError::WSASYSCALLFAILURE)
        );
        assert_eq!(record.nexts.load(Ordering::SeqCst), 1);
        host.end(lookup).unwrap();
        host.cleanup(session).unwrap();
        assert_eq!(host.stats().live_lookups, 0);
    }
    // A SetServiceEx whose author panics: completed once.
    set_service_fails_once(Mode::Panic);
    // A NULL hAsyncCall cannot be completed: the code is only the last error.
    let (host, _) = self::host(Mode::Results);
    let (session, lookup) = open(&host, ALL);
    assert_eq!(
        host.next_without_async_call(lookup),
        WsaError::WSAEFAULT.raw()
    );
    host.cleanup(session).unwrap();
    assert_eq!(testing::stray_completions(), before);
}

/// A SetServiceEx whose author ends as `mode` says completes once, with WSASYSCALLFAILURE.
fn set_service_fails_once(mode: Mode) {
    let (host, _) = self::host(mode);
    let session = host.startup().unwrap();
    assert_eq!(
        host.set_service(
            session,
            &RegInfo::named("x@example.org").with_blob(),
            SetServiceOp::Register { multiple: false }
        ),
        Err(WsaError::WSASYSCALLFAILURE)
    );
    host.cleanup(session).unwrap();
}

/// An author that leaks the SetServiceEx guard (`mem::forget`) can only diverge (it has no
/// `Completed` to return): the framework must still complete the call once.
#[test]
fn r_nsp_15_set_service_guard_leaked_then_panic_is_completed_once() {
    set_service_fails_once(Mode::Leak);
}

#[test]
fn r_nsp_16_install_blob_layout() {
    let description = NamespaceInstall {
        id: winprov_nspv2::Guid::from_u128(0x1234),
        identifier: "Example directory".into(),
        version: 1,
        provider_type: ProviderType::Service,
        supports_wildcard: false,
        domains: vec![
            Domain {
                name: "example.org".into(),
                level: ProviderLevel::Primary,
            },
            Domain {
                name: "ex.net".into(),
                level: ProviderLevel::Secondary,
            },
            Domain {
                name: "x.io".into(),
                level: ProviderLevel::Primary,
            },
        ],
    };
    let blob = description.blob().unwrap();
    let u32_at = |at: usize| u32::from_ne_bytes(blob[at..at + 4].try_into().unwrap());
    // NAPI_PROVIDER_INSTALLATION_BLOB: version, type, wildcard, count, first offset.
    assert_eq!(u32_at(0), 1);
    assert_eq!(u32_at(4), 2, "ProviderType_Service");
    assert_eq!(u32_at(8), 0);
    assert_eq!(u32_at(12), 3);
    let mut offset = u32_at(16) as usize;
    let mut names = Vec::new();
    let mut levels = Vec::new();
    // Names of 12, 7 and 5 UTF-16 units: what follows an odd-sized one must be realigned.
    for i in 0..3 {
        assert_eq!(offset % 4, 0, "domain {i} at a 4-byte aligned offset");
        levels.push(u32_at(offset));
        let cch = u32_at(offset + 4) as usize;
        let next = u32_at(offset + 8) as usize;
        let name_at = u32_at(offset + 12) as usize;
        assert_eq!(name_at % 4, 0);
        let units: Vec<u16> = (0..cch)
            .map(|k| u16::from_ne_bytes([blob[name_at + 2 * k], blob[name_at + 2 * k + 1]]))
            .collect();
        assert_eq!(units.last(), Some(&0), "cchDomainName counts the NUL");
        names.push(String::from_utf16(&units[..cch - 1]).unwrap());
        assert_eq!(next == 0, i == 2, "only the last domain has no next");
        offset = next;
    }
    assert_eq!(names, ["example.org", "ex.net", "x.io"]);
    assert_eq!(
        levels,
        [2, 1, 2],
        "ProviderLevel_Primary, ProviderLevel_Secondary"
    );
    assert!(matches!(
        NamespaceInstall {
            domains: Vec::new(),
            ..description.clone()
        }
        .blob(),
        Err(NspError::InvalidDescription(_))
    ));
    // Installing needs Winsock's catalog: off Windows a clear error, never a crash. The
    // privilege half of the rule is Windows' own (docs/rules.md): nothing here can check it.
    #[cfg(not(windows))]
    {
        let error = winprov_nspv2::install(&description).unwrap_err();
        assert!(error.to_string().contains("WSCInstallNameSpaceEx"));
        let error = winprov_nspv2::uninstall(description.id).unwrap_err();
        assert!(error.to_string().contains("WSCUnInstallNameSpace"));
    }
}

// ---------------------------------------------------------------------------------------------
// Malformed input from the host: documented codes, never a crash.

#[test]
fn malformed_restrictions_are_refused() {
    let (host, record) = host(Mode::Results);
    let session = host.startup().unwrap();
    let refuse = |set: Option<&RawQuerySet>, expected: WsaError| {
        assert_eq!(host.begin_raw(session, set, ALL), Err(expected));
    };
    refuse(None, WsaError::WSAEINVAL);

    let mut small = RawQuerySet::query(&alice());
    small.raw_mut().dwSize = 8;
    refuse(Some(&small), WsaError::WSAEINVAL);

    let mut unterminated = RawQuerySet::query(&alice());
    let long = unterminated.keep_wide(vec![u16::from(b'a'); 40_000]);
    unterminated.raw_mut().lpszServiceInstanceName = long;
    refuse(Some(&unterminated), WsaError::WSAEINVAL);

    let mut surrogate = RawQuerySet::query(&alice());
    let bad = surrogate.keep_wide(vec![0xD800, u16::from(b'x'), 0]);
    surrogate.raw_mut().lpszServiceInstanceName = bad;
    refuse(Some(&surrogate), WsaError::WSAEINVAL);

    let mut too_many = RawQuerySet::query(&alice());
    too_many.raw_mut().dwNumberOfProtocols = 1_000_000;
    refuse(Some(&too_many), WsaError::WSAEINVAL);

    let mut null_protocols = RawQuerySet::query(&alice());
    null_protocols.raw_mut().dwNumberOfProtocols = 2;
    refuse(Some(&null_protocols), WsaError::WSAEFAULT);

    let mut misaligned = RawQuerySet::query(&alice());
    let units = misaligned.keep_wide(vec![u16::from(b'a'), u16::from(b'b'), 0, 0]);
    misaligned.raw_mut().lpszContext =
        winprov_bindings::windows_core::PWSTR(units.0.cast::<u8>().wrapping_add(1).cast());
    refuse(Some(&misaligned), WsaError::WSAEFAULT);

    let mut other_namespace = RawQuerySet::query(&alice());
    other_namespace.raw_mut().dwNameSpace = 12; // NS_DNS
    refuse(Some(&other_namespace), WsaError::WSAEINVAL);

    let mut blob = RawQuerySet::query(&alice());
    blob.set_blob(vec![1, 2, 3]);
    assert!(host.begin_raw(session, Some(&blob), ALL).is_ok());

    assert_eq!(
        record.begins.load(Ordering::SeqCst),
        1,
        "the author only saw the well-formed one"
    );
    // A panicking Begin is an error, not a crash.
    assert_eq!(
        host.begin(session, &Query::name("panic@example.org"), ALL),
        Err(WsaError::WSASYSCALLFAILURE)
    );
    // The author's own refusal passes through.
    assert_eq!(
        host.begin(session, &Query::name("nobody@example.org"), ALL),
        Err(WsaError::WSASERVICE_NOT_FOUND)
    );
    host.cleanup(session).unwrap();
}

#[test]
fn the_simulator_runs_its_own_conformance_suite() {
    bounded(|| {
        let (host, _) = host(Mode::Results);
        testing::conformance(&host, &alice());
    });
}

#[test]
fn withdrawing_the_provider_cancels_running_lookups() {
    bounded(|| {
        let (provider, record) = TestProvider::new(Mode::BlockUntilEnded);
        let host = Arc::new(Host::advertise_new(provider));
        let entered = host.nexts_entered() + 1;
        let (session, lookup) = open(&host, ALL);
        let next = std::thread::spawn({
            let host = Arc::clone(&host);
            move || host.next(lookup, ALL, 4096)
        });
        assert!(host.wait_nexts_entered(entered, WATCHDOG), "next started");
        host.withdraw();
        assert_eq!(
            next.join().unwrap().status(),
            Err(WsaError::WSA_E_CANCELLED)
        );
        assert_eq!(record.lookups_dropped.load(Ordering::SeqCst), 1);
        assert_eq!(record.final_cleanups.load(Ordering::SeqCst), 1);
        assert_eq!(host.startup(), Err(WsaError::WSAEINVALIDPROVIDER));
        assert_eq!(host.cleanup(session), Err(WsaError::WSAEINVAL));
    });
}

/// The simulator routes as Winsock does for an installed provider: a name of one of its
/// primary or secondary domains reaches it, any other does not (its `lookup_begin` is never
/// called) unless it supports wildcards or the query names it.
#[test]
fn lookups_are_routed_by_the_installed_domains() {
    let (host, record) = host(Mode::Results);
    let mut description = NamespaceInstall {
        id: host.id(),
        identifier: "Routing".into(),
        version: 1,
        provider_type: ProviderType::Service,
        supports_wildcard: false,
        domains: vec![
            Domain {
                name: "example.org".into(),
                level: ProviderLevel::Primary,
            },
            Domain {
                name: "ex.net".into(),
                level: ProviderLevel::Secondary,
            },
            Domain {
                name: "listed.io".into(),
                level: ProviderLevel::None,
            },
        ],
    };
    host.install(&description);
    let session = host.startup().unwrap();
    let begins = || record.begins.load(Ordering::SeqCst);
    for routed in ["alice@example.org", "bob@EX.net"] {
        let before = begins();
        let lookup = host.begin(session, &Query::name(routed), ALL).unwrap();
        assert_eq!(begins(), before + 1, "{routed} reaches the provider");
        host.end(lookup).unwrap();
    }
    for elsewhere in ["carol@other.org", "dave@listed.io", "erin@sub.example.org"] {
        let before = begins();
        assert_eq!(
            host.begin(session, &Query::name(elsewhere), ALL).err(),
            Some(WsaError::WSASERVICE_NOT_FOUND),
            "{elsewhere}"
        );
        assert_eq!(begins(), before, "{elsewhere} never reaches the provider");
    }
    // Named by id, the provider is asked whatever the domain.
    let mut named = Query::name("carol@other.org");
    named.provider_id = Some(host.id());
    host.end(host.begin(session, &named, ALL).unwrap()).unwrap();
    // A wildcard provider is asked for the domains no other provider serves.
    description.supports_wildcard = true;
    host.install(&description);
    let before = begins();
    host.end(
        host.begin(session, &Query::name("carol@other.org"), ALL)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(begins(), before + 1);
    host.cleanup(session).unwrap();
}

/// What a run leaves unfinished is named by the simulator: the lookup by its handle and
/// session, the session by its value; once they are ended and cleaned up, nothing is left.
#[test]
fn assert_idle_names_what_is_left() {
    let (host, _) = host(Mode::Results);
    let (session, lookup) = open(&host, ALL);
    assert_eq!(
        host.leftovers(),
        [
            format!(
                "session {:#x}: never cleaned up (NSPv2Cleanup) nor run down",
                session.0
            ),
            format!(
                "lookup {:#x} of session {:#x}: never ended (NSPv2LookupServiceEnd)",
                lookup.0, session.0
            ),
        ]
    );
    let idle = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| host.assert_idle()));
    let message = idle.expect_err("an open lookup is not idle");
    let message = message
        .downcast_ref::<String>()
        .expect("a formatted message");
    assert!(
        message.contains("never ended (NSPv2LookupServiceEnd)"),
        "{message}"
    );
    host.end(lookup).unwrap();
    host.cleanup(session).unwrap();
    host.assert_idle();
}
