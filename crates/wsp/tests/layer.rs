//! A layered provider stacked on a base provider, both through their real `WSPStartup`: the
//! ws2_32 simulator (`testing::winsock`) starts the layer with a chain entry [layer, base];
//! the layer finds the base in an in-process catalog, starts it with the same upcall table and
//! passes every call down. The base is `abi::Base` over the in-memory transport
//! (`testing::stack`, whose `layer_process!` declares each layer's process).
//!
//! Two layers, one per kind of handle: `Ifs` hands out the base's handles, `NonIfs` its own
//! (`WPUCreateSocketHandle`). Each counts what its hooks see, so the tests check both what the
//! application gets (unchanged by the layer) and what the layer saw.
//!
//! The simulated ws2_32 is process-wide: the tests take turns (`Winsock::start`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use winprov_bindings::ws2spi::XP1_IFS_HANDLES;
use winprov_wsp::abi::{Base, InProcess, Layered, Process, Socket};
use winprov_wsp::layer::{
    Call, Closing, Completion, Connecting, GUID, Ifs, Linger, NonIfs, Opened, Passed, Receiving,
    Sending, ShuttingDown, Transfer,
};
use winprov_wsp::memory::Memory;
use winprov_wsp::testing::stack;
use winprov_wsp::testing::winsock::{self, Winsock};
use winprov_wsp::{Layer, WsaError};

const LAYER_ID: GUID = GUID::from_u128(0x7769_6e70_726f_7600_1a7e_0000_0000_0001);
const AF: i32 = 2;
const SOCK_STREAM: i32 = 1;
const SD_SEND: i32 = 1;

// ---------------------------------------------------------------------------------------------
// The layers: a meter, in both kinds.

/// What a meter saw.
#[derive(Default)]
struct Meter {
    opened: AtomicU64,
    connects: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
    shutdowns: AtomicU64,
    /// `completed` calls.
    completions: AtomicU64,
    /// `cleanup` calls.
    cleanups: AtomicU64,
    closed: Mutex<Vec<(u64, u64)>>,
    /// The bytes the send hook read from its buffers.
    bytes_seen: Mutex<Vec<u8>>,
    /// A send of this many bytes is refused with WSAEACCES.
    refuse_len: AtomicU64,
}

#[derive(Default)]
struct Counted {
    sent: AtomicU64,
    received: AtomicU64,
}

impl Meter {
    fn reset(&self) {
        for counter in [
            &self.opened,
            &self.connects,
            &self.sent,
            &self.received,
            &self.shutdowns,
            &self.completions,
            &self.cleanups,
            &self.refuse_len,
        ] {
            counter.store(0, Ordering::SeqCst);
        }
        self.closed.lock().unwrap().clear();
        self.bytes_seen.lock().unwrap().clear();
    }
}

/// The meter's hooks, for both kinds of handles.
macro_rules! meter_layer {
    ($name:ident, $handles:ty) => {
        #[derive(Default)]
        struct $name(Meter);

        impl Layer for $name {
            type Handles = $handles;
            type Socket = Counted;
            const PROVIDER_ID: GUID = LAYER_ID;

            fn open(&self, _: &Opened<'_>) -> Counted {
                self.0.opened.fetch_add(1, Ordering::SeqCst);
                Counted::default()
            }

            fn connect<'c>(
                &self,
                _: &Counted,
                call: Call<'c, Connecting<'c>, ()>,
            ) -> Passed<'c, ()> {
                let passed = call.pass();
                if passed.outcome().is_ok() {
                    self.0.connects.fetch_add(1, Ordering::SeqCst);
                }
                passed
            }

            fn send<'c>(
                &self,
                socket: &Counted,
                call: Call<'c, Sending<'c>, Transfer>,
            ) -> Passed<'c, Transfer> {
                self.0
                    .bytes_seen
                    .lock()
                    .unwrap()
                    .extend(call.args().buffers().flatten());
                if call.args().len() == self.0.refuse_len.load(Ordering::SeqCst) {
                    return call.refuse(WsaError::WSAEACCES);
                }
                let passed = call.pass();
                if let Ok(Transfer::Done { bytes, .. }) = passed.outcome() {
                    socket.sent.fetch_add(u64::from(*bytes), Ordering::SeqCst);
                    self.0.sent.fetch_add(u64::from(*bytes), Ordering::SeqCst);
                }
                passed
            }

            fn recv<'c>(
                &self,
                socket: &Counted,
                call: Call<'c, Receiving, Transfer>,
            ) -> Passed<'c, Transfer> {
                let passed = call.pass();
                if let Ok(Transfer::Done { bytes, .. }) = passed.outcome() {
                    socket
                        .received
                        .fetch_add(u64::from(*bytes), Ordering::SeqCst);
                    self.0
                        .received
                        .fetch_add(u64::from(*bytes), Ordering::SeqCst);
                }
                passed
            }

            fn completed(&self, socket: &Counted, completion: Completion) {
                self.0.completions.fetch_add(1, Ordering::SeqCst);
                match completion {
                    Completion::Sent { outcome: Ok(bytes) } => {
                        socket.sent.fetch_add(u64::from(bytes), Ordering::SeqCst);
                        self.0.sent.fetch_add(u64::from(bytes), Ordering::SeqCst);
                    }
                    Completion::Received {
                        outcome: Ok((bytes, _)),
                    } => {
                        socket
                            .received
                            .fetch_add(u64::from(bytes), Ordering::SeqCst);
                        self.0
                            .received
                            .fetch_add(u64::from(bytes), Ordering::SeqCst);
                    }
                    _ => {}
                }
            }

            fn cleanup(&self) {
                self.0.cleanups.fetch_add(1, Ordering::SeqCst);
            }

            fn shutdown<'c>(
                &self,
                _: &Counted,
                call: Call<'c, ShuttingDown, ()>,
            ) -> Passed<'c, ()> {
                self.0.shutdowns.fetch_add(1, Ordering::SeqCst);
                call.pass()
            }

            fn close<'c>(&self, socket: &Counted, call: Call<'c, Closing, ()>) -> Passed<'c, ()> {
                let passed = call.pass();
                if passed.outcome().is_ok() {
                    self.0.closed.lock().unwrap().push((
                        socket.sent.load(Ordering::SeqCst),
                        socket.received.load(Ordering::SeqCst),
                    ));
                }
                passed
            }
        }
    };
}

meter_layer!(IfsMeter, Ifs);
meter_layer!(NonIfsMeter, NonIfs);

winprov_wsp::layer_process!(mod ifs: IfsMeter = IfsMeter::default);
winprov_wsp::layer_process!(mod non_ifs: NonIfsMeter = NonIfsMeter::default);

/// One of the two layers, for tests run on both.
trait Kind: 'static {
    const IFS: bool;
    type L: Layer;
    fn startup() -> winsock::Startup;
    fn process() -> &'static Process<Layered<Self::L, InProcess>>;
    fn meter() -> &'static Meter;
}

enum IfsKind {}
enum NonIfsKind {}

impl Kind for IfsKind {
    const IFS: bool = true;
    type L = IfsMeter;
    fn startup() -> winsock::Startup {
        ifs::startup
    }
    fn process() -> &'static Process<Layered<IfsMeter, InProcess>> {
        &ifs::PROCESS
    }
    fn meter() -> &'static Meter {
        &ifs::layer().0
    }
}

impl Kind for NonIfsKind {
    const IFS: bool = false;
    type L = NonIfsMeter;
    fn startup() -> winsock::Startup {
        non_ifs::startup
    }
    fn process() -> &'static Process<Layered<NonIfsMeter, InProcess>> {
        &non_ifs::PROCESS
    }
    fn meter() -> &'static Meter {
        &non_ifs::layer().0
    }
}

fn start<K: Kind>() -> Winsock {
    let ws = Winsock::start(K::startup(), stack::chain_entry(LAYER_ID, 0))
        .expect("the layer's WSPStartup");
    K::meter().reset();
    ws
}

/// Two connected sockets (client, server) through a listener on `port`, closed again.
fn pair(ws: &Winsock, port: u16) -> (Socket, Socket) {
    let name = port.to_be_bytes();
    let listener = ws.socket(AF, SOCK_STREAM, 6).expect("socket");
    ws.bind(listener, &name).expect("bind");
    ws.listen(listener, 1).expect("listen");
    let client = ws.socket(AF, SOCK_STREAM, 6).expect("socket");
    ws.connect(client, &name).expect("connect");
    let (server, _) = ws.accept(listener).expect("accept");
    ws.close(listener).expect("close the listener");
    (client, server)
}

fn base() -> &'static Base<Memory> {
    stack::base().dispatch().expect("started by the layer")
}

// ---------------------------------------------------------------------------------------------

fn data_passes_through_unchanged_and_the_layer_sees_it<K: Kind>() {
    let ws = start::<K>();
    let (client, server) = pair(&ws, 1);
    assert_eq!(ws.send(client, b"hello").unwrap(), 5);
    assert_eq!(ws.send(server, b"back again").unwrap(), 10);
    assert_eq!(ws.recv(server, 64).unwrap(), b"hello");
    assert_eq!(ws.recv(client, 4).unwrap(), b"back");
    assert_eq!(ws.recv(client, 64).unwrap(), b" again");
    ws.shutdown(client, SD_SEND).unwrap();
    assert_eq!(
        ws.recv(server, 64).unwrap(),
        b"",
        "the FIN reads as 0 bytes"
    );
    ws.close(client).unwrap();
    ws.close(server).unwrap();
    let meter = K::meter();
    assert_eq!(
        meter.opened.load(Ordering::SeqCst),
        3,
        "listener, client, accepted"
    );
    assert_eq!(meter.connects.load(Ordering::SeqCst), 1);
    assert_eq!(meter.sent.load(Ordering::SeqCst), 15);
    assert_eq!(
        *meter.bytes_seen.lock().unwrap(),
        b"helloback again",
        "the send hook reads the caller's buffers"
    );
    assert_eq!(meter.received.load(Ordering::SeqCst), 15);
    assert_eq!(meter.shutdowns.load(Ordering::SeqCst), 1);
    let mut closed = meter.closed.lock().unwrap().clone();
    closed.sort();
    assert_eq!(closed, vec![(0, 0), (5, 10), (10, 5)]);
    assert_eq!(K::process().dispatch().unwrap().sockets(), 0);
    assert_eq!(base().runtime().alive(), 0, "every socket closed below too");
    ws.finish();
}

#[test]
fn ifs_data_passes_through_unchanged_and_the_layer_sees_it() {
    data_passes_through_unchanged_and_the_layer_sees_it::<IfsKind>();
}

#[test]
fn non_ifs_data_passes_through_unchanged_and_the_layer_sees_it() {
    data_passes_through_unchanged_and_the_layer_sees_it::<NonIfsKind>();
}

#[test]
fn r_wsp_4_an_ifs_layer_hands_out_the_handles_the_base_made_for_its_own_entry() {
    let ws = start::<IfsKind>();
    let socket = ws.socket(AF, SOCK_STREAM, 6).unwrap();
    let handle = ws
        .handle(socket)
        .expect("made by the base's WPUCreateSocketHandle");
    assert_eq!(
        handle.catalog_entry_id,
        stack::BASE_ENTRY,
        "R-WSP-4: the base was started, and makes its sockets, with its own entry"
    );
    ws.close(socket).unwrap();
    assert!(ws.handle(socket).unwrap().closed);
    ws.finish();
}

#[test]
fn a_non_ifs_layer_hands_out_handles_of_its_own_for_the_chain_entry() {
    let ws = start::<NonIfsKind>();
    let socket = ws.socket(AF, SOCK_STREAM, 6).unwrap();
    let handle = ws
        .handle(socket)
        .expect("made by the layer's WPUCreateSocketHandle");
    assert_eq!(handle.catalog_entry_id, stack::CHAIN);
    let handles_before = ws.upcalls().len();
    assert!(handles_before > 0);
    assert_eq!(base().handles(), 1, "the base holds its own handle below");
    ws.close(socket).unwrap();
    let handle = ws.handle(socket).unwrap();
    assert!(handle.closed, "the layer's handle released");
    assert_eq!(handle.close_calls, 1);
    assert_eq!(base().handles(), 0, "and the base's");
    assert_eq!(ws.send(socket, b"x"), Err(WsaError::WSAENOTSOCK));
    ws.finish();
}

#[test]
fn r_wsp_19_a_non_ifs_layer_refuses_an_entry_declaring_ifs_handles() {
    let refused = Winsock::start(
        non_ifs::startup,
        stack::chain_entry(LAYER_ID, XP1_IFS_HANDLES),
    );
    assert_eq!(refused.err(), Some(WsaError::WSAEPROVIDERFAILEDINIT));
    assert_eq!(non_ifs::PROCESS.startups(), 0);
    assert_eq!(stack::base().startups(), 0, "nothing was started below");
}

#[test]
fn a_hook_that_refuses_answers_its_error_and_nothing_goes_down() {
    let ws = start::<NonIfsKind>();
    let (client, server) = pair(&ws, 2);
    NonIfsKind::meter().refuse_len.store(3, Ordering::SeqCst);
    assert_eq!(ws.send(client, b"abc"), Err(WsaError::WSAEACCES));
    assert_eq!(ws.send(client, b"abcd").unwrap(), 4);
    assert_eq!(
        ws.recv(server, 64).unwrap(),
        b"abcd",
        "the refused bytes never left"
    );
    ws.close(client).unwrap();
    ws.close(server).unwrap();
    ws.finish();
}

fn the_last_cleanup_cleans_up_below_and_a_new_startup_starts_again<K: Kind>() {
    let mut ws = start::<K>();
    let (client, server) = pair(&ws, 4);
    assert_eq!(
        stack::base().startups(),
        1,
        "started lazily, at the first socket"
    );
    ws.start_again().unwrap();
    ws.cleanup().unwrap();
    assert_eq!(stack::base().startups(), 1, "not the last cleanup");
    assert_eq!(K::meter().cleanups.load(Ordering::SeqCst), 0);
    ws.cleanup().unwrap();
    assert_eq!(
        K::meter().cleanups.load(Ordering::SeqCst),
        1,
        "the layer's cleanup ran at the last WSPCleanup"
    );
    assert_eq!(
        stack::base().startups(),
        0,
        "the base's startup paired with one cleanup"
    );
    assert_eq!(K::process().dispatch().unwrap().sockets(), 0);
    assert_eq!(base().runtime().alive(), 0);
    let _ = (client, server);
    ws.start_again().unwrap();
    let socket = ws.socket(AF, SOCK_STREAM, 6).unwrap();
    assert_eq!(
        stack::base().startups(),
        1,
        "started again for the new session"
    );
    ws.close(socket).unwrap();
    ws.finish();
}

#[test]
fn ifs_the_last_cleanup_cleans_up_below() {
    the_last_cleanup_cleans_up_below_and_a_new_startup_starts_again::<IfsKind>();
}

#[test]
fn non_ifs_the_last_cleanup_cleans_up_below() {
    the_last_cleanup_cleans_up_below_and_a_new_startup_starts_again::<NonIfsKind>();
}

#[test]
fn an_ifs_overlapped_receive_completes_through_the_base_to_the_caller() {
    let ws = start::<IfsKind>();
    let (client, server) = pair(&ws, 5);
    let issued = ws.recv_overlapped(server, 16, winsock::Via::Event).unwrap();
    assert!(issued.is_pending());
    ws.send(client, b"late").unwrap();
    assert_eq!(ws.received(issued.op), b"late");
    assert_eq!(
        ws.completions(issued.op).len(),
        1,
        "completed once, to the caller"
    );
    ws.close(client).unwrap();
    ws.close(server).unwrap();
    ws.finish();
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) % n
    }
}

/// Randomized calls through the layer — pairs made and closed in any order, sends, receives,
/// shutdowns, linger options, overlapped I/O by every mechanism where the layer passes the
/// caller's request down as it is (`overlapped`) — then nothing is left in the layer or below
/// it, every handle ws2_32 made was released once, and what the layer counted equals what the
/// application sent and received; the simulator checked R-WSP-14 to R-WSP-19 on every call.
fn randomized_calls_leave_nothing_behind<K: Kind>(overlapped: bool) {
    use winsock::Via;
    const ROUNDS: usize = 20_000;
    let ws = start::<K>();
    let mut rng = Rng(0x5eed_cafe_f00d_0002);
    let thread = ws.new_thread();
    let port = ws.create_port();
    let mut sockets: Vec<Socket> = Vec::new();
    let mut made: Vec<Socket> = Vec::new();
    let mut ops = Vec::new();
    let mut next_port = 100u16;
    let (mut sent, mut received, mut relayed, mut aborted) = (0u64, 0u64, 0u64, 0u64);
    for _ in 0..ROUNDS {
        match rng.below(10) {
            0 if sockets.len() < 16 => {
                next_port += 1;
                let (a, b) = pair(&ws, next_port);
                for s in [a, b] {
                    // FIONBIO, passed down: a receive with nothing to read does not wait.
                    ws.set_non_blocking(s, true).unwrap();
                }
                ws.associate(b, port, b.raw());
                made.extend([a, b]);
                sockets.extend([a, b]);
            }
            1 | 2 if !sockets.is_empty() => {
                let s = sockets[rng.below(sockets.len() as u64) as usize];
                if let Ok(n) = ws.send(s, &[rng.below(256) as u8; 5]) {
                    sent += u64::from(n);
                }
            }
            3 | 4 if !sockets.is_empty() => {
                let s = sockets[rng.below(sockets.len() as u64) as usize];
                if let Ok(data) = ws.recv(s, 1 + rng.below(16) as u32) {
                    received += data.len() as u64;
                }
            }
            5 if overlapped && !sockets.is_empty() => {
                let s = sockets[rng.below(sockets.len() as u64) as usize];
                let via = match rng.below(4) {
                    0 => Via::Event,
                    1 => Via::EventOnly,
                    2 => Via::Port,
                    _ => Via::Routine(thread),
                };
                if let Ok(issued) = ws.recv_overlapped(s, 1 + rng.below(16) as u32, via) {
                    // One that completed at once is seen by the layer; a pending one
                    // completes to the caller from below.
                    received += issued.done.map_or(0, |done| u64::from(done.bytes));
                    ops.push((issued.op, issued.is_pending()));
                }
            }
            6 if !sockets.is_empty() => {
                let s = sockets[rng.below(sockets.len() as u64) as usize];
                let _ = ws.shutdown(s, rng.below(3) as i32);
            }
            7 if !sockets.is_empty() => {
                let s = sockets[rng.below(sockets.len() as u64) as usize];
                let linger = Linger {
                    on: rng.below(2) == 0,
                    seconds: 0,
                };
                let _ = ws.set_linger(s, linger);
            }
            8 if !sockets.is_empty() => {
                let i = rng.below(sockets.len() as u64) as usize;
                let s = sockets.swap_remove(i);
                ws.close(s)
                    .expect("a close that neither lingers nor blocks");
            }
            _ => {
                ws.run_apcs(thread);
                while ws.dequeue(port).is_some() {}
                ops.retain(|(op, pending)| {
                    let completions = ws.completions(*op);
                    let Some(completion) = completions.first() else {
                        return true;
                    };
                    if *pending && completion.error == 0 {
                        relayed += u64::from(completion.bytes);
                    }
                    aborted += u64::from(*pending && completion.error == 995);
                    ws.forget(*op);
                    false
                });
            }
        }
    }
    for s in sockets.drain(..) {
        ws.close(s).unwrap();
    }
    ws.run_apcs(thread);
    for (op, pending) in ops.drain(..) {
        let completions = ws.completions(op);
        assert_eq!(completions.len(), 1, "every operation completed once");
        if pending && completions[0].error == 0 {
            relayed += u64::from(completions[0].bytes);
        }
        aborted += u64::from(pending && completions[0].error == 995);
        ws.forget(op);
    }
    assert_eq!(
        K::process().dispatch().unwrap().sockets(),
        0,
        "no socket left in the layer"
    );
    assert_eq!(base().runtime().alive(), 0, "no socket state left below");
    assert_eq!(base().pending_operations(), 0, "no request kept below");
    assert_eq!(base().handles(), 0);
    for s in made {
        let handle = ws.handle(s).unwrap();
        assert!(
            handle.closed && handle.close_calls == 1,
            "{s:?} released once"
        );
    }
    let meter = K::meter();
    if !K::IFS {
        // A non-IFS layer relays pending requests and sees their completions too.
        received += relayed;
    }
    assert!(sent > 0 && received > 0);
    assert_eq!(
        meter.sent.load(Ordering::SeqCst),
        sent,
        "the layer saw every byte sent"
    );
    let seen = meter.received.load(Ordering::SeqCst);
    if K::IFS {
        assert_eq!(
            seen, received,
            "and every byte received by a call that completed at once"
        );
    } else {
        // A receive that completed below while its socket's close began is aborted for the
        // application (R-WSP-14), but the layer was told what it received (at most its 16
        // bytes of room).
        assert!(
            (received..=received + 16 * aborted).contains(&seen),
            "the layer saw every byte received ({seen} for {received} delivered, {aborted} aborted)"
        );
    }
    ws.finish();
}

#[test]
fn ifs_randomized_calls_leave_nothing_behind() {
    randomized_calls_leave_nothing_behind::<IfsKind>(true);
}

#[test]
fn non_ifs_randomized_calls_leave_nothing_behind() {
    randomized_calls_leave_nothing_behind::<NonIfsKind>(true);
}

// ---------------------------------------------------------------------------------------------
// A non-IFS layer relays its callers' overlapped requests: its own request goes below, on the
// lower socket bound to the layer's port; the completion is relayed on the layer's handle.

fn relayed_receive_completes_on_the_layer_handle(via: winsock::Via) {
    let ws = start::<NonIfsKind>();
    let (client, server) = pair(&ws, 20);
    let issued = ws.recv_overlapped(server, 16, via).unwrap();
    assert!(issued.is_pending());
    assert_eq!(
        ws.get_overlapped_result(server, issued.op, false),
        Err(WsaError::WSA_IO_INCOMPLETE)
    );
    ws.send(client, b"relayed").unwrap();
    // Waits for the relay (the layer's thread) with fWait: no sleep.
    let done = ws.get_overlapped_result(server, issued.op, true).unwrap();
    assert_eq!(done.bytes, 7);
    let completions = ws.completions(issued.op);
    assert_eq!(completions.len(), 1, "relayed once");
    assert_eq!((completions[0].error, completions[0].bytes), (0, 7));
    assert_eq!(ws.received(issued.op), b"relayed");
    let meter = NonIfsKind::meter();
    assert_eq!(
        meter.completions.load(Ordering::SeqCst),
        1,
        "the author was told"
    );
    assert_eq!(meter.received.load(Ordering::SeqCst), 7);
    ws.forget(issued.op);
    ws.close(client).unwrap();
    ws.close(server).unwrap();
    assert_eq!(non_ifs::PROCESS.dispatch().unwrap().relayed(), 0);
    ws.finish();
}

#[test]
fn r_wsp_18_a_relayed_receive_completes_by_event_on_the_layer_handle() {
    relayed_receive_completes_on_the_layer_handle(winsock::Via::Event);
}

#[test]
fn r_wsp_18_a_relayed_receive_completes_through_the_port_of_the_layer_handle() {
    let ws = start::<NonIfsKind>();
    let (client, server) = pair(&ws, 21);
    let port = ws.create_port();
    ws.associate(server, port, 0x5e);
    let issued = ws.recv_overlapped(server, 16, winsock::Via::Port).unwrap();
    ws.send(client, b"to the port").unwrap();
    ws.get_overlapped_result(server, issued.op, true).unwrap();
    let packet = ws.dequeue(port).expect("the caller's port got the packet");
    assert_eq!((packet.key, packet.op, packet.bytes), (0x5e, issued.op, 11));
    ws.forget(issued.op);
    ws.close(client).unwrap();
    ws.close(server).unwrap();
    ws.finish();
}

#[test]
fn r_wsp_18_a_relayed_receive_with_a_routine_is_an_apc_of_its_thread() {
    let ws = start::<NonIfsKind>();
    let thread = ws.new_thread();
    let (client, server) = pair(&ws, 22);
    let issued = ws
        .recv_overlapped(server, 16, winsock::Via::Routine(thread))
        .unwrap();
    ws.send(client, b"by apc").unwrap();
    ws.get_overlapped_result(server, issued.op, true).unwrap();
    assert_eq!(
        ws.run_apcs(thread),
        1,
        "the routine ran as an APC of its thread"
    );
    assert_eq!(ws.received(issued.op), b"by apc");
    ws.forget(issued.op);
    ws.close(client).unwrap();
    ws.close(server).unwrap();
    ws.finish();
}

#[test]
fn r_wsp_16_a_relayed_send_that_completes_at_once_is_complete_when_the_call_returns() {
    let ws = start::<NonIfsKind>();
    let (client, server) = pair(&ws, 23);
    let issued = ws
        .send_overlapped(client, b"at once", winsock::Via::Event)
        .unwrap();
    let done = issued.done.expect("the base takes it at once");
    assert_eq!(done.bytes, 7);
    assert_eq!(ws.completions(issued.op).len(), 1, "already signalled");
    let meter = NonIfsKind::meter();
    assert_eq!(
        meter.sent.load(Ordering::SeqCst),
        7,
        "counted once, by the send hook"
    );
    assert_eq!(meter.completions.load(Ordering::SeqCst), 0);
    assert_eq!(ws.recv(server, 64).unwrap(), b"at once");
    ws.forget(issued.op);
    ws.close(client).unwrap();
    ws.close(server).unwrap();
    ws.finish();
}

#[test]
fn r_wsp_14_closing_a_non_ifs_layer_socket_aborts_its_relayed_requests_before_it_returns() {
    let ws = start::<NonIfsKind>();
    let thread = ws.new_thread();
    let (client, server) = pair(&ws, 24);
    let by_event = ws.recv_overlapped(server, 16, winsock::Via::Event).unwrap();
    let by_routine = ws
        .recv_overlapped(server, 16, winsock::Via::Routine(thread))
        .unwrap();
    ws.close(server).unwrap();
    // The simulator checks that each completed with 995 before the close returned.
    assert_eq!(ws.completions(by_event.op)[0].error, 995);
    assert_eq!(ws.run_apcs(thread), 1);
    assert_eq!(ws.completions(by_routine.op)[0].error, 995);
    assert_eq!(non_ifs::PROCESS.dispatch().unwrap().relayed(), 0);
    ws.forget(by_event.op);
    ws.forget(by_routine.op);
    ws.close(client).unwrap();
    ws.finish();
}

#[test]
fn r_wsp_15_the_final_cleanup_relays_nothing_and_keeps_nothing() {
    let ws = start::<NonIfsKind>();
    let (_client, server) = pair(&ws, 25);
    let issued = ws.recv_overlapped(server, 16, winsock::Via::Event).unwrap();
    assert!(issued.is_pending());
    assert_eq!(non_ifs::PROCESS.dispatch().unwrap().relayed(), 1);
    ws.cleanup().unwrap();
    // The simulator checks that nothing was notified during the cleanup or after it.
    assert!(ws.completions(issued.op).is_empty());
    assert_eq!(non_ifs::PROCESS.dispatch().unwrap().relayed(), 0, "freed");
    assert_eq!(non_ifs::PROCESS.dispatch().unwrap().sockets(), 0);
    assert_eq!(stack::base().startups(), 0);
    ws.finish();
}

// ---------------------------------------------------------------------------------------------
// The documented connection shutdown through the layer: what either end sees is what it sees
// without one (crates/wsp/tests/graceful_shutdown.rs plays the same table on the runtime).

const FD_READ: i32 = 0x01;
const FD_CLOSE: i32 = 0x20;
const FD_CLOSE_BIT: usize = 5;

/// Reads until the end of the connection (0 bytes): what it read.
fn drain(ws: &Winsock, socket: Socket) -> Vec<u8> {
    let mut all = Vec::new();
    loop {
        let read = ws.recv(socket, 64).expect("data, then the end");
        if read.is_empty() {
            return all;
        }
        all.extend_from_slice(&read);
    }
}

fn graceful_shutdown_through_the_layer<K: Kind>() {
    let ws = start::<K>();
    let (a, b) = pair(&ws, 30);
    let (event_a, event_b) = (ws.create_event(), ws.create_event());
    ws.event_select(a, Some(event_a), FD_READ | FD_CLOSE)
        .unwrap();
    ws.event_select(b, Some(event_b), FD_READ | FD_CLOSE)
        .unwrap();
    // A sends its request, then shutdown(SD_SEND).
    ws.send(a, b"request").unwrap();
    ws.shutdown(a, SD_SEND).unwrap();
    // B gets FD_READ and FD_CLOSE(0), reads the request, then the end.
    let seen = ws.enum_network_events(b, Some(event_b)).unwrap();
    assert_eq!(seen.events & (FD_READ | FD_CLOSE), FD_READ | FD_CLOSE);
    assert_eq!(seen.errors[FD_CLOSE_BIT], 0, "a graceful close");
    assert_eq!(drain(&ws, b), b"request");
    // B sends the rest, then shutdown(SD_SEND); A gets FD_CLOSE(0) and reads it all.
    ws.send(b, b"the rest").unwrap();
    ws.shutdown(b, SD_SEND).unwrap();
    let seen = ws.enum_network_events(a, Some(event_a)).unwrap();
    assert_eq!(seen.events & (FD_READ | FD_CLOSE), FD_READ | FD_CLOSE);
    assert_eq!(seen.errors[FD_CLOSE_BIT], 0);
    assert_eq!(drain(&ws, a), b"the rest");
    assert_eq!(ws.send(a, b"late"), Err(WsaError::WSAESHUTDOWN));
    ws.close(a).unwrap();
    ws.close(b).unwrap();
    let meter = K::meter();
    assert_eq!(meter.shutdowns.load(Ordering::SeqCst), 2);
    assert_eq!(meter.sent.load(Ordering::SeqCst), 15);
    assert_eq!(meter.received.load(Ordering::SeqCst), 15);
    ws.finish();
}

#[test]
fn ifs_graceful_shutdown_as_documented() {
    graceful_shutdown_through_the_layer::<IfsKind>();
}

#[test]
fn non_ifs_graceful_shutdown_as_documented() {
    graceful_shutdown_through_the_layer::<NonIfsKind>();
}

fn abortive_close_is_a_reset_for_the_peer<K: Kind>() {
    let ws = start::<K>();
    let (a, b) = pair(&ws, 31);
    let event_b = ws.create_event();
    ws.event_select(b, Some(event_b), FD_READ | FD_CLOSE)
        .unwrap();
    let abortive = Linger {
        on: true,
        seconds: 0,
    };
    ws.set_linger(a, abortive).unwrap();
    assert_eq!(
        ws.get_linger(a).unwrap(),
        abortive,
        "options pass both ways"
    );
    ws.send(a, b"never read").unwrap();
    ws.close(a).unwrap();
    let seen = ws.enum_network_events(b, Some(event_b)).unwrap();
    assert_ne!(seen.events & FD_CLOSE, 0);
    assert_eq!(
        seen.errors[FD_CLOSE_BIT],
        WsaError::WSAECONNRESET.raw(),
        "FD_CLOSE carries the reset"
    );
    assert_eq!(ws.recv(b, 64), Err(WsaError::WSAECONNRESET));
    ws.close(b).unwrap();
    ws.finish();
}

#[test]
fn ifs_abortive_close_is_a_reset_for_the_peer() {
    abortive_close_is_a_reset_for_the_peer::<IfsKind>();
}

#[test]
fn non_ifs_abortive_close_is_a_reset_for_the_peer() {
    abortive_close_is_a_reset_for_the_peer::<NonIfsKind>();
}

fn unusable_arguments_are_refused_below_and_read_as_empty<K: Kind>() {
    use winprov_bindings::windows_core::PSTR;
    use winprov_bindings::ws2spi::{SOCKET, SOCKET_ERROR, WSABUF};
    let ws = start::<K>();
    let (client, server) = pair(&ws, 11);
    let mut bytes = *b"ok";
    let array = [
        WSABUF {
            len: 2,
            buf: PSTR(bytes.as_mut_ptr()),
        },
        WSABUF {
            len: 5,
            buf: PSTR(std::ptr::null_mut()),
        },
    ];
    let send = ws.table().lpWSPSend.expect("a started table");
    let (mut sent, mut errno) = (77u32, 0);
    // SAFETY: a slot of the started table; a live socket of the layer; the first buffer is
    // readable for the call, the second is NULL with a length (what the test is about); live
    // locals for the out-parameters; no overlapped request.
    let ret = unsafe {
        send(
            SOCKET(client.raw()),
            array.as_ptr(),
            2,
            &mut sent,
            0,
            std::ptr::null_mut(),
            None,
            std::ptr::null(),
            &mut errno,
        )
    };
    assert_eq!(
        (ret, errno),
        (SOCKET_ERROR, WsaError::WSAEFAULT.raw()),
        "the provider below refuses the NULL buffer"
    );
    assert_eq!(sent, 77, "a failed send writes no count");
    assert_eq!(
        *K::meter().bytes_seen.lock().unwrap(),
        b"ok",
        "the hook read the valid buffer, and the NULL one as empty"
    );
    assert_eq!(K::meter().sent.load(Ordering::SeqCst), 0);
    // The out-parameters go down as they are: the provider below refuses unusable ones, and
    // the layer reads nothing through them.
    let ret = unsafe {
        // SAFETY: as above, with a readable buffer and a NULL count (refused below).
        send(
            SOCKET(client.raw()),
            array.as_ptr(),
            1,
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
            None,
            std::ptr::null(),
            &mut errno,
        )
    };
    assert_eq!((ret, errno), (SOCKET_ERROR, WsaError::WSAEFAULT.raw()));
    assert_eq!(ws.send(client, b"next").unwrap(), 4);
    let recv = ws.table().lpWSPRecv.expect("a started table");
    let mut into = [0u8; 8];
    let into_array = [WSABUF {
        len: 8,
        buf: PSTR(into.as_mut_ptr()),
    }];
    let mut received = 77u32;
    // SAFETY: a slot of the started table, a live socket, a writable buffer, live locals, and
    // a NULL lpFlags (refused below).
    let ret = unsafe {
        recv(
            SOCKET(server.raw()),
            into_array.as_ptr(),
            1,
            &mut received,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            None,
            std::ptr::null(),
            &raw mut errno,
        )
    };
    assert_eq!((ret, errno), (SOCKET_ERROR, WsaError::WSAEFAULT.raw()));
    assert_eq!(received, 77, "a failed receive writes no count");
    assert_eq!(K::meter().received.load(Ordering::SeqCst), 0);
    assert_eq!(ws.recv(server, 64).unwrap(), b"next", "nothing of it left");
    ws.close(client).unwrap();
    ws.close(server).unwrap();
    ws.finish();
}

#[test]
fn ifs_unusable_arguments_are_refused_below_and_read_as_empty() {
    unusable_arguments_are_refused_below_and_read_as_empty::<IfsKind>();
}

#[test]
fn non_ifs_unusable_arguments_are_refused_below_and_read_as_empty() {
    unusable_arguments_are_refused_below_and_read_as_empty::<NonIfsKind>();
}

fn a_receive_from_passes_through_with_the_address_below<K: Kind>() {
    use winprov_bindings::windows_core::PSTR;
    use winprov_bindings::ws2spi::{SOCKADDR, SOCKET, WSABUF};
    let ws = start::<K>();
    let (client, server) = pair(&ws, 12);
    assert_eq!(ws.send(client, b"datagram").unwrap(), 8);
    let recv_from = ws.table().lpWSPRecvFrom.expect("a started table");
    let mut into = [0u8; 16];
    let array = [WSABUF {
        len: 16,
        buf: PSTR(into.as_mut_ptr()),
    }];
    let mut from = [0xAAu8; 128];
    let (mut received, mut flags, mut fromlen, mut errno) = (0u32, 0u32, 128i32, 0);
    // SAFETY: a slot of the started table, a live socket of the layer, a writable buffer and
    // address, live locals, no overlapped request.
    let ret = unsafe {
        recv_from(
            SOCKET(server.raw()),
            array.as_ptr(),
            1,
            &mut received,
            &mut flags,
            from.as_mut_ptr().cast::<SOCKADDR>(),
            &mut fromlen,
            std::ptr::null_mut(),
            None,
            std::ptr::null(),
            &mut errno,
        )
    };
    assert_eq!((ret, errno), (0, 0));
    assert_eq!(&into[..received as usize], b"datagram");
    assert!(
        (0..=128).contains(&fromlen),
        "the provider below wrote the address length: {fromlen}"
    );
    assert_eq!(
        K::meter().received.load(Ordering::SeqCst),
        8,
        "the receive hook saw the outcome"
    );
    ws.close(client).unwrap();
    ws.close(server).unwrap();
    ws.finish();
}

#[test]
fn ifs_a_receive_from_passes_through_with_the_address_below() {
    a_receive_from_passes_through_with_the_address_below::<IfsKind>();
}

#[test]
fn non_ifs_a_receive_from_passes_through_with_the_address_below() {
    a_receive_from_passes_through_with_the_address_below::<NonIfsKind>();
}
