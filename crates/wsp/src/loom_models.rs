//! loom models of the runtime's races (R-WSP-14, R-WSP-15, R-WSP-16) and of a layer's relayed
//! requests (`relayed_request_is_finished_once`), run by `cargo xtask
//! test` with `--cfg loom` (by hand: `LOOM_MAX_PREEMPTIONS=3 RUSTFLAGS="--cfg loom"
//! CARGO_TARGET_DIR=target/loom cargo test --release -p winprov-wsp --lib loom_models`).
//!
//! They drive the [`Runtime`] itself — its handle table, each socket's turn, the gate that hands
//! a notification to the turn's holder, the count of socket states alive — whose locks are
//! `winprov_core::sync`'s, so loom's here. The transport is a model one ([`Wire`]): one
//! connected byte stream whose far end a thread of the model plays, changing what the wire holds
//! under its lock and then waking the socket through its [`Notifier`], as a transport's own
//! thread would. A recording sink stands in for ws2_32's mechanisms; the model thread writes a
//! mark into the same record when a call of the host's returned, so "before the call returned"
//! is a position in one sequence.
//!
//! A socket's state is shared through `std`'s `Arc` and reached by its notifier through `std`'s
//! `Weak` (loom's `Arc` has none); the provider's `Lifeline` shows loom where a notification's
//! upgrade races the state's last release. Without it loom never runs a notification before that
//! release unless something else conflicts there: `completion_races_cleanup` then never sees the
//! data arrive before cleanup, and its outcome check fails.
//!
//! Every socket's calls here are overlapped or non-blocking and no close lingers with a timeout:
//! the runtime's one timed wait (a blocking socket's lingering close) has no loom counterpart.
//!
//! | model | race | asserted |
//! | --- | --- | --- |
//! | [`close_races_completion`] | `WSPCloseSocket` while the far end delivers data, makes room and sends its FIN | the pending receive completes once, aborted or with the data; the pending send once, aborted or sent; `FD_CLOSE` only after both, no `FD_READ`; nothing after close returned; no state left, the handle `WSAENOTSOCK` (R-WSP-14) |
//! | [`close_races_cleanup`] | `WSPCloseSocket` on one thread, the final `WSPCleanup` on another, the far end's data on a third | a close that returned 0 completed the receive once (aborted or with the data) and the send once (aborted) before it returned; one that found the socket gone (cleanup took it) left the send without a completion and the receive with the data or none, nothing aborted; never `FD_READ`; `alive() == 0` when cleanup returns, nothing after it (R-WSP-14, R-WSP-15) |
//! | [`completion_races_cleanup`] | the far end delivers data, makes room and sends its FIN during the final `WSPCleanup` | each step reaches the host before cleanup took the socket or never: the receive completes with the data or not at all, the send only after it, `FD_WRITE` and `FD_CLOSE` only after the send, never `FD_READ`, never an aborted completion; `alive() == 0` when cleanup returns, nothing after it (R-WSP-15) |
//! | [`overlapped_recv_races_data`] | an overlapped `WSPRecv` while data arrives | `Complete`: its one completion was delivered before the call returned; `Pending`: exactly one completion, with the data (R-WSP-16) |
//! | [`overlapped_send_races_room`] | an overlapped `WSPSend` while the transport gets room | as above, for a send (R-WSP-16) |
//! | [`overlapped_recv_races_reset`] | an overlapped `WSPRecv` while the far end resets | an error (`WSAECONNRESET`): no completion ever; `Pending`: exactly one, with `WSAECONNRESET` (R-WSP-16) |
//! | [`overlapped_recv_races_close`] | an overlapped `WSPRecv` while another thread closes the socket | `Pending`: exactly one completion, aborted, before close returned; an error (`WSAENOTSOCK`): none (R-WSP-14, R-WSP-16) |
//!
//! Each model also checks, once loom has explored it, that every outcome it lists happened in
//! some execution: a model whose race never shows its other side proves nothing.

use crate::host::{Mechanism, NetworkEvents, Notice, NoticeSink, Overlapped, SocketHandle};
use crate::host::{Transfer, Transferred};
use crate::provider::{
    Address, Notifier, Protocol, Received, RecvCall, SendCall, Sent, Socket, Termination, Transport,
};
use crate::runtime::Runtime;
use loom::thread;
use std::collections::BTreeSet;
use std::sync::Arc;
use winprov_core::sync::{Mutex, lock};
use winprov_core::{Completed, HostSink, WsaError};

/// The overlapped receive of a model.
const RECV: Overlapped = Overlapped {
    id: 0x100,
    mechanism: Mechanism::Signal,
};

/// The overlapped send of a model.
const SEND: Overlapped = Overlapped {
    id: 0x200,
    mechanism: Mechanism::Routine {
        routine: 0x9000,
        thread: crate::host::ThreadToken {
            handle: 7,
            reserved: 0,
        },
    },
};

/// What the far end sends.
const DATA: &[u8] = b"data";

/// What the host saw, in the order it saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    /// An overlapped completion.
    Completion {
        op: usize,
        bytes: usize,
        error: Option<WsaError>,
        data: Vec<u8>,
    },
    /// A network event.
    Event(NetworkEvents),
    /// The model thread's mark: a call of the host's returned.
    Returned(&'static str),
}

impl Seen {
    /// The completion of `op` with `error` and no data.
    fn failed(op: Overlapped, error: WsaError) -> Self {
        Seen::Completion {
            op: op.id,
            bytes: 0,
            error: Some(error),
            data: Vec::new(),
        }
    }

    /// The successful completion of `op` having moved `data`.
    fn moved(op: Overlapped, data: &[u8], received: bool) -> Self {
        Seen::Completion {
            op: op.id,
            bytes: data.len(),
            error: None,
            data: match received {
                true => data.to_vec(),
                false => Vec::new(),
            },
        }
    }

    fn is_of(&self, op: Overlapped) -> bool {
        matches!(self, Seen::Completion { op: id, .. } if *id == op.id)
    }
}

/// The host's side: every notice of the model's one socket, and the marks. Its lock is loom's:
/// a delivery is a step loom can schedule around, as the host's mechanisms take their time, so
/// a notice that is decided under the socket's turn but delivered after it is seen late.
#[derive(Default)]
struct Record {
    socket: std::sync::Mutex<Option<SocketHandle>>,
    seen: Mutex<Vec<Seen>>,
}

impl HostSink<Notice> for Record {
    fn deliver(&self, notice: Notice) {
        let mine = *self.socket.lock().unwrap();
        assert_eq!(Some(notice.socket()), mine, "a notice of another socket");
        let seen = match notice {
            Notice::Overlapped {
                op,
                bytes,
                error,
                data,
                ..
            } => Seen::Completion {
                op,
                bytes,
                error,
                data,
            },
            Notice::Network { event, .. } => Seen::Event(event),
        };
        lock(&self.seen).push(seen);
    }
}

impl Record {
    fn mark(&self, call: &'static str) {
        lock(&self.seen).push(Seen::Returned(call));
    }

    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *lock(&self.seen))
    }
}

/// One direction of data each way, and the end of the connection, as the far end left them.
#[derive(Default)]
struct Line {
    /// Arrived, not read yet.
    arrived: Vec<u8>,
    /// How the far end ended the connection.
    end: Option<Termination>,
    /// Bytes the transport may still take for sending.
    room: usize,
    /// What the runtime did to this end: sent its FIN, reset, closed.
    fin_sent: bool,
    reset: bool,
    closed: bool,
}

/// The wire of one connection: the far end's state, under the transport's own lock (loom's).
#[derive(Default)]
struct Wire(Mutex<Line>);

/// The far end of the model's connection, played by a thread: it changes the wire, releases its
/// lock, then wakes the socket, as the API asks of a transport.
struct FarEnd {
    wire: Arc<Wire>,
    notifier: Notifier,
}

impl FarEnd {
    fn deliver(&self, data: &[u8]) {
        lock(&self.wire.0).arrived.extend_from_slice(data);
        self.notifier.readable();
    }

    fn make_room(&self, bytes: usize) {
        lock(&self.wire.0).room += bytes;
        self.notifier.writable();
    }

    fn end(&self, how: Termination) {
        lock(&self.wire.0).end = Some(how);
        self.notifier.closed(how);
    }
}

/// The model transport: one stream protocol; the far end of the socket it opened last.
struct Model {
    opened: std::sync::Mutex<Option<FarEnd>>,
}

/// The model transport's socket: its side of the wire.
struct WireSocket(Arc<Wire>);

impl Transport for Model {
    type Socket = WireSocket;

    fn protocols(&self) -> Vec<Protocol> {
        vec![Protocol::stream("model")]
    }

    fn open(&self, _: &Protocol, notifier: Notifier) -> Result<WireSocket, WsaError> {
        let wire = Arc::new(Wire::default());
        *self.opened.lock().unwrap() = Some(FarEnd {
            wire: Arc::clone(&wire),
            notifier,
        });
        Ok(WireSocket(wire))
    }
}

impl Socket for WireSocket {
    fn connect(&mut self, _: &Address) -> Result<(), WsaError> {
        Ok(())
    }

    fn send<'call>(&mut self, call: SendCall<'call>) -> Completed<'call> {
        let mut line = lock(&self.0.0);
        let taken = call.data().len().min(line.room);
        line.room -= taken;
        drop(line);
        call.complete(match taken {
            0 => Sent::WouldBlock,
            taken => Sent::Accepted(taken),
        })
    }

    fn recv<'call>(&mut self, mut call: RecvCall<'call>) -> Completed<'call> {
        let mut line = lock(&self.0.0);
        let received = if !line.arrived.is_empty() {
            let bytes = line.arrived.len().min(call.capacity());
            call.buffer()[..bytes].copy_from_slice(&line.arrived[..bytes]);
            line.arrived.drain(..bytes);
            Received::Data(bytes)
        } else if let Some(how) = line.end {
            Received::End(how)
        } else {
            Received::WouldBlock
        };
        drop(line);
        call.complete(received)
    }

    fn unread(&self) -> usize {
        lock(&self.0.0).arrived.len()
    }

    fn unsent(&self) -> usize {
        0
    }

    fn send_fin(&mut self, _: Option<&[u8]>) -> Result<(), WsaError> {
        lock(&self.0.0).fin_sent = true;
        Ok(())
    }

    fn reset(&mut self) {
        lock(&self.0.0).reset = true;
    }

    fn close(self) {
        lock(&self.0.0).closed = true;
    }
}

/// A runtime over the model transport with one connected socket selecting `events`, whose
/// transport takes `room` bytes before it blocks; the record starts empty.
struct Setup {
    record: Arc<Record>,
    runtime: Arc<Runtime<Model>>,
    socket: SocketHandle,
    far: FarEnd,
}

fn connected(room: usize, events: NetworkEvents) -> Setup {
    let record = Arc::new(Record::default());
    let sink: NoticeSink = Arc::clone(&record) as NoticeSink;
    let runtime = Arc::new(Runtime::new(
        Model {
            opened: std::sync::Mutex::new(None),
        },
        sink,
    ));
    let socket = runtime.socket(0).expect("a socket");
    *record.socket.lock().unwrap() = Some(socket);
    runtime
        .connect(socket, &Address::new(*b"far"))
        .expect("connected");
    runtime.select_events(socket, events).expect("selected");
    let far = runtime
        .transport()
        .opened
        .lock()
        .unwrap()
        .take()
        .expect("the far end");
    lock(&far.wire.0).room = room;
    record.take(); // FD_CONNECT, FD_WRITE
    Setup {
        record,
        runtime,
        socket,
        far,
    }
}

/// The outcomes a model's executions showed, checked against the ones it lists once loom is
/// done.
#[derive(Clone, Default)]
struct Outcomes(Arc<std::sync::Mutex<BTreeSet<&'static str>>>);

impl Outcomes {
    fn saw(&self, outcome: &'static str) {
        self.0.lock().unwrap().insert(outcome);
    }

    fn expect(&self, all: &[&'static str]) {
        let seen = self.0.lock().unwrap();
        let all: BTreeSet<_> = all.iter().copied().collect();
        assert_eq!(*seen, all, "the outcomes loom explored");
    }
}

/// The completions of `op` in `seen`.
fn completions(seen: &[Seen], op: Overlapped) -> Vec<&Seen> {
    seen.iter().filter(|s| s.is_of(op)).collect()
}

/// Everything after the mark of `call` (which must be there).
fn after<'s>(seen: &'s [Seen], call: &'static str) -> &'s [Seen] {
    let at = seen
        .iter()
        .position(|s| *s == Seen::Returned(call))
        .unwrap_or_else(|| panic!("no mark for {call}: {seen:?}"));
    &seen[at + 1..]
}

/// A close races the far end's data and FIN: the transport wakes the socket from its own thread
/// while `WSPCloseSocket` runs (R-WSP-14).
#[test]
fn close_races_completion() {
    let outcomes = Outcomes::default();
    let explored = outcomes.clone();
    loom::model(move || {
        let Setup {
            record,
            runtime,
            socket,
            far,
        } = connected(0, NetworkEvents::READ.union(NetworkEvents::CLOSE));
        assert_eq!(runtime.recv(socket, 8, Some(RECV)), Ok(Transfer::Pending));
        assert_eq!(
            runtime.send(socket, DATA, Some(SEND)),
            Ok(Transfer::Pending)
        );
        let network = thread::spawn(move || {
            far.deliver(DATA);
            far.make_room(DATA.len());
            far.end(Termination::Graceful);
        });
        assert_eq!(runtime.close(socket), Ok(()));
        record.mark("close");
        network.join().unwrap();
        let seen = record.take();

        assert_eq!(
            after(&seen, "close"),
            [],
            "nothing of the socket after close returned: {seen:?}"
        );
        let recv = completions(&seen, RECV);
        assert_eq!(recv.len(), 1, "one completion of the receive: {seen:?}");
        let got_data = *recv[0] == Seen::moved(RECV, DATA, true);
        assert!(
            got_data || *recv[0] == Seen::failed(RECV, WsaError::WSA_OPERATION_ABORTED),
            "the receive is aborted or has the data: {seen:?}"
        );
        let send = completions(&seen, SEND);
        assert_eq!(send.len(), 1, "one completion of the send: {seen:?}");
        let sent = *send[0] == Seen::moved(SEND, DATA, false);
        assert!(
            sent || *send[0] == Seen::failed(SEND, WsaError::WSA_OPERATION_ABORTED),
            "the send is aborted or sent: {seen:?}"
        );
        let events: Vec<_> = seen
            .iter()
            .filter(|s| matches!(s, Seen::Event(_)))
            .collect();
        match events[..] {
            [] => {}
            // The FIN was processed before the close, which only the data's arrival and the
            // room precede.
            [Seen::Event(NetworkEvents::CLOSE)] if got_data && sent => outcomes.saw("FD_CLOSE"),
            _ => panic!("no FD_READ with a receive pending, FD_CLOSE only last: {seen:?}"),
        }
        outcomes.saw(match got_data {
            true => "received",
            false => "receive aborted",
        });
        outcomes.saw(match sent {
            true => "sent",
            false => "send aborted",
        });
        assert_eq!(runtime.alive(), 0, "no socket state is left");
        assert_eq!(runtime.sockets(), 0);
        assert_eq!(
            runtime.recv(socket, 8, Some(RECV)),
            Err(WsaError::WSAENOTSOCK)
        );
    });
    explored.expect(&[
        "FD_CLOSE",
        "receive aborted",
        "received",
        "send aborted",
        "sent",
    ]);
}

/// A close on one thread races the final cleanup on another, while the far end's data arrives
/// on a third (R-WSP-14, R-WSP-15).
#[test]
fn close_races_cleanup() {
    let outcomes = Outcomes::default();
    let explored = outcomes.clone();
    loom::model(move || {
        let Setup {
            record,
            runtime,
            socket,
            far,
        } = connected(0, NetworkEvents::READ);
        assert_eq!(runtime.recv(socket, 8, Some(RECV)), Ok(Transfer::Pending));
        assert_eq!(
            runtime.send(socket, DATA, Some(SEND)),
            Ok(Transfer::Pending)
        );
        let network = thread::spawn(move || far.deliver(DATA));
        let closer = {
            let runtime = Arc::clone(&runtime);
            let record = Arc::clone(&record);
            thread::spawn(move || {
                let closed = runtime.close(socket);
                record.mark("close");
                closed
            })
        };
        runtime.cleanup();
        assert_eq!(runtime.alive(), 0, "cleanup returns when no state is left");
        record.mark("cleanup");
        let closed = closer.join().unwrap();
        network.join().unwrap();
        let seen = record.take();

        assert!(
            after(&seen, "cleanup")
                .iter()
                .all(|s| matches!(s, Seen::Returned(_))),
            "nothing after cleanup returned: {seen:?}"
        );
        assert!(
            !seen.contains(&Seen::Event(NetworkEvents::READ)),
            "no FD_READ with a receive pending, nor once the socket is gone: {seen:?}"
        );
        let recv = completions(&seen, RECV);
        let received = recv == [&Seen::moved(RECV, DATA, true)];
        match closed {
            Ok(()) => {
                // The close took the socket: the receive completed once, with the data or
                // aborted, the send aborted, before close returned.
                let before_close = &seen[..seen.len() - after(&seen, "close").len()];
                assert!(
                    received || recv == [&Seen::failed(RECV, WsaError::WSA_OPERATION_ABORTED)],
                    "the receive completes once, aborted or with the data: {seen:?}"
                );
                assert_eq!(
                    completions(&seen, SEND),
                    [&Seen::failed(SEND, WsaError::WSA_OPERATION_ABORTED)],
                    "the send is aborted once: {seen:?}"
                );
                assert_eq!(
                    completions(before_close, RECV).len() + completions(before_close, SEND).len(),
                    2,
                    "completed before close returned: {seen:?}"
                );
                outcomes.saw("closed");
            }
            Err(WsaError::WSAENOTSOCK) => {
                // The cleanup took it: the receive completed with the data before, or never;
                // the send never; nothing aborted.
                assert!(
                    recv.is_empty() || received,
                    "the receive completes with the data, or not at all: {seen:?}"
                );
                assert_eq!(
                    completions(&seen, SEND),
                    [] as [&Seen; 0],
                    "no completion of an operation cleanup cancelled: {seen:?}"
                );
                outcomes.saw("cleaned up");
            }
            Err(error) => panic!("close failed with {error:?}"),
        }
        outcomes.saw(match received {
            true => "received",
            false => "not received",
        });
        assert_eq!(runtime.sockets(), 0);
    });
    explored.expect(&["cleaned up", "closed", "not received", "received"]);
}

/// The far end's data and FIN arrive during the final cleanup (R-WSP-15).
#[test]
fn completion_races_cleanup() {
    let outcomes = Outcomes::default();
    let explored = outcomes.clone();
    loom::model(move || {
        let Setup {
            record,
            runtime,
            socket,
            far,
        } = connected(0, NetworkEvents::ALL);
        assert_eq!(runtime.recv(socket, 8, Some(RECV)), Ok(Transfer::Pending));
        assert_eq!(
            runtime.send(socket, DATA, Some(SEND)),
            Ok(Transfer::Pending)
        );
        let network = thread::spawn(move || {
            far.deliver(DATA);
            far.make_room(DATA.len());
            far.end(Termination::Graceful);
        });
        runtime.cleanup();
        assert_eq!(runtime.alive(), 0, "cleanup returns when no state is left");
        record.mark("cleanup");
        network.join().unwrap();
        let seen = record.take();

        assert_eq!(
            after(&seen, "cleanup"),
            [],
            "nothing after cleanup returned: {seen:?}"
        );
        // The far end's steps were processed in order, each before cleanup took the socket or
        // not at all: the receive completes with the data or not at all, the send (whose room
        // comes next) only after it, the FIN's FD_CLOSE only after both.
        let recv = completions(&seen, RECV);
        let received = match recv[..] {
            [] => false,
            [completion] => *completion == Seen::moved(RECV, DATA, true),
            _ => false,
        };
        assert!(
            recv.is_empty() || received,
            "the receive completes once with the data, or not at all: {seen:?}"
        );
        let send = completions(&seen, SEND);
        let sent = match send[..] {
            [] => false,
            [completion] => *completion == Seen::moved(SEND, DATA, false),
            _ => false,
        };
        assert!(
            send.is_empty() || (sent && received),
            "the send completes once, after the receive, or not at all: {seen:?}"
        );
        // FD_WRITE once the send has gone, FD_CLOSE; never FD_READ (a receive was pending, then
        // cancelled: a socket that still reported would say the data is there).
        for event in seen.iter().filter(|s| matches!(s, Seen::Event(_))) {
            match event {
                Seen::Event(NetworkEvents::WRITE) if sent => outcomes.saw("FD_WRITE"),
                Seen::Event(NetworkEvents::CLOSE) if sent => outcomes.saw("FD_CLOSE"),
                _ => panic!("nothing once cleanup took the socket: {seen:?}"),
            }
        }
        outcomes.saw(match (received, sent) {
            (false, _) => "cancelled",
            (true, false) => "received",
            (true, true) => "sent",
        });
        assert_eq!(runtime.sockets(), 0);
    });
    explored.expect(&["FD_CLOSE", "FD_WRITE", "cancelled", "received", "sent"]);
}

/// What an overlapped call returned, checked against its completions (R-WSP-16): `Complete`
/// had its completion (`done`) delivered before the call returned, `Pending` gets exactly
/// `pending`, an error none. Returns the outcome's name.
fn check_overlapped(
    returned: Result<Transfer, WsaError>,
    seen: &[Seen],
    op: Overlapped,
    done: Seen,
    pending: Seen,
) -> &'static str {
    let all = completions(seen, op);
    let after_return = completions(after(seen, "call"), op);
    match returned {
        Ok(Transfer::Complete(transferred)) => {
            assert_eq!(all, [&done], "one completion: {seen:?}");
            assert_eq!(
                after_return,
                [] as [&Seen; 0],
                "delivered before the call returned: {seen:?}"
            );
            if let Seen::Completion { bytes, data, .. } = done {
                assert_eq!(
                    transferred,
                    Transferred {
                        bytes,
                        data,
                        truncated: false
                    }
                );
            }
            "complete"
        }
        Ok(Transfer::Pending) => {
            assert_eq!(all, [&pending], "exactly one completion: {seen:?}");
            "pending"
        }
        Err(_) => {
            assert_eq!(
                all,
                [] as [&Seen; 0],
                "no completion after an error: {seen:?}"
            );
            "failed"
        }
    }
}

/// An overlapped receive while data arrives on the far end's thread (R-WSP-16).
#[test]
fn overlapped_recv_races_data() {
    let outcomes = Outcomes::default();
    let explored = outcomes.clone();
    loom::model(move || {
        let Setup {
            record,
            runtime,
            socket,
            far,
        } = connected(0, NetworkEvents::NONE);
        let network = thread::spawn(move || far.deliver(DATA));
        let returned = runtime.recv(socket, 8, Some(RECV));
        record.mark("call");
        network.join().unwrap();
        let seen = record.take();
        let data = Seen::moved(RECV, DATA, true);
        outcomes.saw(check_overlapped(returned, &seen, RECV, data.clone(), data));
    });
    explored.expect(&["complete", "pending"]);
}

/// An overlapped send while the transport gets room on its own thread (R-WSP-16).
#[test]
fn overlapped_send_races_room() {
    let outcomes = Outcomes::default();
    let explored = outcomes.clone();
    loom::model(move || {
        let Setup {
            record,
            runtime,
            socket,
            far,
        } = connected(0, NetworkEvents::NONE);
        let network = thread::spawn(move || far.make_room(DATA.len()));
        let returned = runtime.send(socket, DATA, Some(SEND));
        record.mark("call");
        network.join().unwrap();
        let seen = record.take();
        let sent = Seen::moved(SEND, DATA, false);
        outcomes.saw(check_overlapped(returned, &seen, SEND, sent.clone(), sent));
    });
    explored.expect(&["complete", "pending"]);
}

/// An overlapped receive while the far end resets the connection (R-WSP-16): the call that
/// fails has no completion.
#[test]
fn overlapped_recv_races_reset() {
    let outcomes = Outcomes::default();
    let explored = outcomes.clone();
    loom::model(move || {
        let Setup {
            record,
            runtime,
            socket,
            far,
        } = connected(0, NetworkEvents::NONE);
        let network = thread::spawn(move || far.end(Termination::Reset));
        let returned = runtime.recv(socket, 8, Some(RECV));
        record.mark("call");
        network.join().unwrap();
        let seen = record.take();
        if let Err(error) = &returned {
            assert_eq!(*error, WsaError::WSAECONNRESET);
        }
        let reset = Seen::failed(RECV, WsaError::WSAECONNRESET);
        outcomes.saw(check_overlapped(
            returned,
            &seen,
            RECV,
            reset.clone(),
            reset,
        ));
    });
    explored.expect(&["failed", "pending"]);
}

/// An overlapped receive on one thread while the socket is closed on another (R-WSP-14,
/// R-WSP-16): the receive that the close found pending completes once, aborted, before the
/// close returned; one that came after the close fails and never completes.
#[test]
fn overlapped_recv_races_close() {
    let outcomes = Outcomes::default();
    let explored = outcomes.clone();
    loom::model(move || {
        let Setup {
            record,
            runtime,
            socket,
            far: _far,
        } = connected(0, NetworkEvents::NONE);
        let closer = {
            let runtime = Arc::clone(&runtime);
            let record = Arc::clone(&record);
            thread::spawn(move || {
                assert_eq!(runtime.close(socket), Ok(()));
                record.mark("close");
            })
        };
        let returned = runtime.recv(socket, 8, Some(RECV));
        record.mark("call");
        closer.join().unwrap();
        let seen = record.take();
        if let Err(error) = &returned {
            assert_eq!(*error, WsaError::WSAENOTSOCK);
        } else {
            assert_eq!(
                completions(after(&seen, "close"), RECV),
                [] as [&Seen; 0],
                "aborted before close returned: {seen:?}"
            );
        }
        let aborted = Seen::failed(RECV, WsaError::WSA_OPERATION_ABORTED);
        outcomes.saw(check_overlapped(
            returned,
            &seen,
            RECV,
            aborted.clone(),
            aborted,
        ));
        assert_eq!(runtime.alive(), 0);
    });
    explored.expect(&["failed", "pending"]);
}

/// A layer's relayed request (`abi::relay`): the call learns what the provider below answered
/// while the pump takes the request's packet, in any order. The caller's request is finished
/// by exactly one of them when it went pending (R-WSP-16: one completion), by neither when it
/// was answered at once (the call completed it itself before returning), and the packet of a
/// failed call finishes nothing.
#[test]
fn relayed_request_is_finished_once() {
    use crate::abi::relay::Handoff;
    for answer in ["pending", "at once", "failed"] {
        loom::model(move || {
            let handoff = winprov_core::sync::Arc::new(Handoff::default());
            let pump = {
                let handoff = handoff.clone();
                loom::thread::spawn(move || handoff.packet())
            };
            let by_call = match answer {
                "pending" => handoff.answered(false),
                "at once" => handoff.answered(true),
                _ => {
                    handoff.failed();
                    false
                }
            };
            let by_pump = pump.join().unwrap();
            let finished = usize::from(by_call) + usize::from(by_pump);
            let expected = usize::from(answer == "pending");
            assert_eq!(finished, expected, "{answer}: finished {finished} times");
        });
    }
}
