//! The host simulator (feature `testing`): plays ws2_32 against a [`Runtime`] and checks, on
//! every step, what ws2_32's documents promise the application.
//!
//! [`Host`] makes a runtime over any transport with a recording sink, and offers the calls an
//! application makes through ws2_32 (socket, bind, listen, connect, accept, send and receive —
//! plain or overlapped —, shutdown, the disconnect calls, the linger and blocking options,
//! close, the final cleanup). Every socket it makes selects every network event, so all of them
//! are recorded. For the [`Memory`] transport, [`Host::pair`] connects two sockets.
//!
//! Each notice and each call's result is checked as it happens; a failed check is recorded
//! with the rule's ID (a panic inside the runtime's sink would unwind through the runtime) and
//! raised by the next call of the host, or by [`Host::check`] / [`Host::finish`]:
//!
//! - an overlapped call that returned 0 had its completion delivered before it returned; one
//!   that returned `WSA_IO_PENDING` gets exactly one completion; one that failed gets none,
//!   ever (R-WSP-16); a completion comes through the mechanism its call gave (R-WSP-14);
//! - nothing of a socket reaches the host after its close returned, and when the close
//!   returns every operation that was pending before it has completed (R-WSP-14); a call on
//!   a handle after its close returned gets `WSAENOTSOCK`;
//! - after a successful shutdown or disconnect call, I/O started in the shut direction gets
//!   `WSAESHUTDOWN` (R-WSP-7); `FD_CLOSE` comes at most once per socket (R-WSP-8);
//! - a byte stream never reports `WSAEDISCON`, and no socket returns data after it reported
//!   the end of its connection (R-WSP-10); a `how` outside `SD_*` never succeeds (R-WSP-5);
//! - shutdown, send-disconnect and receive-disconnect return without waiting (R-WSP-6);
//!   disconnect data succeeds only on a protocol that carries it, and never longer than the
//!   buffer (R-WSP-20);
//! - a close with `SO_DONTLINGER` or `SO_LINGER {1,0}` neither waits nor fails with
//!   `WSAEWOULDBLOCK` (R-WSP-11, R-WSP-12), a blocking close never does (R-WSP-13);
//! - the final cleanup delivers nothing while it runs, and returns with no socket state left
//!   (R-WSP-15); an operation it cancelled never completes.
//!
//! [`winsock`] plays ws2_32 one level down, through a provider DLL's exported `WSPStartup`,
//! its upcall table and its proc table.

use crate::host::{
    Linger, Mechanism, NetworkEvents, Notice, NoticeSink, SocketHandle, ThreadToken, Transfer,
    Transferred,
};
use crate::memory::{self, Memory};
use crate::provider::{Address, SocketKind, Transport};
use crate::runtime::Runtime;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use winprov_core::WsaError;

pub mod catalog;
#[allow(unsafe_code)]
pub mod stack;
#[allow(unsafe_code)]
pub mod winsock;

/// How long a call that must never wait may take before the simulator calls it a wait.
const NEVER_WAITS: Duration = Duration::from_secs(5);

/// A completion routine on thread `thread` (for [`Host::recv_overlapped`] and
/// [`Host::send_overlapped`]).
pub fn routine(thread: usize) -> Mechanism {
    Mechanism::Routine {
        routine: 0x7000_0000,
        thread: ThreadToken {
            handle: thread,
            reserved: 0,
        },
    }
}

/// One completion of an overlapped operation, as the host saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// `cbTransferred`.
    pub bytes: usize,
    /// `dwError`.
    pub error: Option<WsaError>,
    /// What a receive read.
    pub data: Vec<u8>,
}

/// An overlapped call: the operation's identity and what the call returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    /// The operation (its `WSAOVERLAPPED`'s address).
    pub id: usize,
    /// What the call returned.
    pub result: Result<Transfer, WsaError>,
}

impl Issued {
    /// Whether the call returned `WSA_IO_PENDING`.
    pub fn is_pending(&self) -> bool {
        self.result == Ok(Transfer::Pending)
    }
}

/// What the simulator counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Calls made.
    pub calls: u64,
    /// Overlapped operations issued.
    pub overlapped: u64,
    /// Overlapped completions received.
    pub completions: u64,
    /// Network events received.
    pub events: u64,
    /// Operations cancelled by the final cleanup (no completion).
    pub cancelled: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Returned {
    Complete(usize),
    Pending,
    Failed(WsaError),
}

struct OpRecord {
    socket: usize,
    mechanism: Mechanism,
    returned: Option<(u64, Returned)>,
    completions: Vec<Completion>,
    cancelled: bool,
}

struct SocketRecord {
    kind: SocketKind,
    disconnect_data: bool,
    events: Vec<(NetworkEvents, Option<WsaError>)>,
    fd_close: usize,
    closed_at: Option<u64>,
    shut_send_at: Option<u64>,
    shut_recv_at: Option<u64>,
    ended_at: Option<u64>,
    linger: Linger,
    non_blocking: bool,
    /// When `non_blocking` was last recorded, and how many `FIONBIO` calls are under way: a
    /// close that overlaps a mode change may have seen either mode.
    non_blocking_at: u64,
    mode_changes: usize,
    ops: Vec<usize>,
}

impl SocketRecord {
    fn new(kind: SocketKind, disconnect_data: bool) -> Self {
        Self {
            kind,
            disconnect_data,
            events: Vec::new(),
            fd_close: 0,
            closed_at: None,
            shut_send_at: None,
            shut_recv_at: None,
            ended_at: None,
            linger: Linger::DontLinger,
            non_blocking: false,
            non_blocking_at: 0,
            mode_changes: 0,
            ops: Vec::new(),
        }
    }
}

#[derive(Default)]
struct Records {
    seq: u64,
    keep: bool,
    notices: Vec<Notice>,
    ops: HashMap<usize, OpRecord>,
    sockets: HashMap<usize, SocketRecord>,
    /// When not keeping: the sockets whose close returned, and when (their records dropped).
    closed: HashMap<usize, u64>,
    violations: Vec<String>,
    in_flight: usize,
    cleaning: bool,
    stats: Stats,
}

impl Records {
    fn next(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// When the socket's close returned, if it did.
    fn closed_at(&self, socket: usize) -> Option<u64> {
        self.sockets
            .get(&socket)
            .and_then(|record| record.closed_at)
            .or_else(|| self.closed.get(&socket).copied())
    }

    fn violation(&mut self, message: String) {
        tracing::error!(%message, "ws2_32 simulator");
        self.violations.push(message);
    }

    /// Drops an operation's record once nothing more can happen to it (when not keeping).
    fn settle(&mut self, id: usize) {
        if self.keep {
            return;
        }
        let done = self.ops.get(&id).is_some_and(|op| match op.returned {
            Some((_, Returned::Failed(_))) => true,
            Some(_) => op.completions.len() == 1 || op.cancelled,
            None => false,
        });
        if done
            && let Some(op) = self.ops.remove(&id)
            && let Some(socket) = self.sockets.get_mut(&op.socket)
        {
            socket.ops.retain(|each| *each != id);
        }
    }

    fn record(&mut self, notice: Notice) {
        let at = self.next();
        if self.cleaning && self.in_flight == 0 {
            self.violation(format!(
                "R-WSP-15: {notice:?} delivered during the final cleanup"
            ));
        }
        let socket = notice.socket().raw();
        match self
            .sockets
            .get(&socket)
            .and_then(|record| record.closed_at)
        {
            Some(closed) if closed < at => self.violation(format!(
                "R-WSP-14: {notice:?} after the socket's close returned"
            )),
            _ => {}
        }
        match &notice {
            Notice::Overlapped {
                op,
                mechanism,
                bytes,
                error,
                data,
                ..
            } => {
                self.stats.completions += 1;
                let Some(record) = self.ops.get_mut(op) else {
                    self.violation(format!(
                        "R-WSP-16: a completion of operation {op:#x}, which is not outstanding \
                         (never issued, or already completed)"
                    ));
                    return;
                };
                let mut found = Vec::new();
                if record.socket != socket {
                    found.push(format!(
                        "R-WSP-16: operation {op:#x} completed on another socket"
                    ));
                }
                if record.mechanism != *mechanism {
                    found.push(format!(
                        "R-WSP-14: operation {op:#x} completed through {mechanism:?}, not its own \
                         {:?}",
                        record.mechanism
                    ));
                }
                if record.cancelled {
                    found.push(format!(
                        "R-WSP-15: operation {op:#x} completed after the final cleanup cancelled it"
                    ));
                }
                if let Some((_, Returned::Failed(failed))) = record.returned {
                    found.push(format!(
                        "R-WSP-16: operation {op:#x} completed although its call failed with \
                         {failed}"
                    ));
                }
                record.completions.push(Completion {
                    bytes: *bytes,
                    error: *error,
                    data: data.clone(),
                });
                if record.completions.len() > 1 {
                    found.push(format!("R-WSP-16: operation {op:#x} completed twice"));
                }
                for message in found {
                    self.violation(message);
                }
                let id = *op;
                self.settle(id);
            }
            Notice::Network { event, error, .. } => {
                self.stats.events += 1;
                let keep = self.keep;
                let mut twice = false;
                if let Some(record) = self.sockets.get_mut(&socket) {
                    if *event == NetworkEvents::CLOSE {
                        record.fd_close += 1;
                        twice = record.fd_close > 1;
                    }
                    if keep {
                        record.events.push((*event, *error));
                    }
                }
                if twice {
                    self.violation(format!(
                        "R-WSP-8: FD_CLOSE posted twice on socket {socket:#x}"
                    ));
                }
            }
        }
        if self.keep {
            self.notices.push(notice);
        }
    }
}

#[derive(Default)]
struct Log {
    records: Mutex<Records>,
}

impl Log {
    fn lock(&self) -> MutexGuard<'_, Records> {
        self.records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Starts a call: counted in flight, with its sequence number.
#[derive(Clone, Copy)]
struct Call {
    begin: u64,
    started: Instant,
}

/// See the [module documentation](self).
pub struct Host<T: Transport> {
    runtime: Runtime<T>,
    log: Arc<Log>,
    next_op: AtomicUsize,
    next_port: AtomicUsize,
}

impl<T: Transport> Host<T> {
    /// A host over a runtime of `transport` with the simulator's recording sink.
    pub fn new(transport: T) -> Self {
        let log = Arc::new(Log::default());
        log.lock().keep = true;
        let sink: NoticeSink = {
            let log = Arc::clone(&log);
            Arc::new(move |notice: Notice| log.lock().record(notice))
        };
        Self {
            runtime: Runtime::new(transport, sink),
            log,
            next_op: AtomicUsize::new(0x10_0000),
            next_port: AtomicUsize::new(1),
        }
    }

    /// This host, keeping only what its checks need (no notice list, no event list, no record
    /// of a finished operation): for long runs.
    pub fn forgetful(self) -> Self {
        self.log.lock().keep = false;
        self
    }

    /// The runtime the host drives.
    pub fn runtime(&self) -> &Runtime<T> {
        &self.runtime
    }

    fn begin(&self) -> Call {
        let mut records = self.log.lock();
        records.in_flight += 1;
        records.stats.calls += 1;
        Call {
            begin: records.next(),
            started: Instant::now(),
        }
    }

    /// Ends a call: runs `check` on the records with the call's start, raises violations.
    fn end(&self, call: Call, check: impl FnOnce(&mut Records, u64, u64)) {
        let mut records = self.log.lock();
        records.in_flight -= 1;
        let at = records.next();
        check(&mut records, call.begin, at);
        self.raise(records);
    }

    fn raise(&self, mut records: MutexGuard<'_, Records>) {
        if records.violations.is_empty() {
            return;
        }
        let violations = std::mem::take(&mut records.violations);
        drop(records);
        panic!("{}", violations.join("\n"));
    }

    /// Raises the violations recorded so far (on other threads, or in notices).
    pub fn check(&self) {
        let records = self.log.lock();
        self.raise(records);
    }

    /// The checks every call on an existing socket gets: a handle used after its close
    /// returned is `WSAENOTSOCK` (R-WSP-14).
    fn after_close<R: std::fmt::Debug>(
        records: &mut Records,
        socket: SocketHandle,
        begin: u64,
        what: &str,
        result: &Result<R, WsaError>,
    ) -> bool {
        let closed = records
            .closed_at(socket.raw())
            .is_some_and(|closed| closed < begin);
        if closed && !matches!(result, Err(WsaError::WSAENOTSOCK)) {
            records.violation(format!(
                "R-WSP-14: {what} on socket {:#x} after its close returned: {result:?}, not \
                 WSAENOTSOCK",
                socket.raw()
            ));
        }
        closed
    }

    fn new_socket(&self, protocol: usize, result: &Result<SocketHandle, WsaError>) {
        let (Ok(socket), Some(protocol)) = (result, self.runtime.protocols().get(protocol)) else {
            return;
        };
        self.log.lock().sockets.insert(
            socket.raw(),
            SocketRecord::new(protocol.kind, protocol.disconnect_data),
        );
    }

    /// `WSPSocket` of the `protocol`-th protocol, selecting every network event.
    pub fn socket(&self, protocol: usize) -> Result<SocketHandle, WsaError> {
        let call = self.begin();
        let result = self.runtime.socket(protocol);
        self.new_socket(protocol, &result);
        if let Ok(socket) = result {
            let _ = self.runtime.select_events(socket, NetworkEvents::ALL);
        }
        self.end(call, |_, _, _| {});
        result
    }

    fn simple<R: std::fmt::Debug>(
        &self,
        socket: SocketHandle,
        what: &str,
        run: impl FnOnce(&Runtime<T>) -> Result<R, WsaError>,
    ) -> Result<R, WsaError> {
        let call = self.begin();
        let result = run(&self.runtime);
        self.end(call, |records, begin, _| {
            Self::after_close(records, socket, begin, what, &result);
        });
        result
    }

    /// `WSPBind`.
    pub fn bind(&self, socket: SocketHandle, address: &Address) -> Result<(), WsaError> {
        self.simple(socket, "bind", |runtime| runtime.bind(socket, address))
    }

    /// `WSPListen`.
    pub fn listen(&self, socket: SocketHandle, backlog: usize) -> Result<(), WsaError> {
        self.simple(socket, "listen", |runtime| runtime.listen(socket, backlog))
    }

    /// `WSPConnect`.
    pub fn connect(&self, socket: SocketHandle, address: &Address) -> Result<(), WsaError> {
        self.simple(socket, "connect", |runtime| {
            runtime.connect(socket, address)
        })
    }

    /// `WSPAccept`: the accepted socket has the listener's options and selected events.
    pub fn accept(&self, socket: SocketHandle) -> Result<SocketHandle, WsaError> {
        let call = self.begin();
        let result = self.runtime.accept(socket);
        self.end(call, |records, begin, _| {
            Self::after_close(records, socket, begin, "accept", &result);
            if let Ok(accepted) = result
                && let Some(listener) = records.sockets.get(&socket.raw())
            {
                let mut record = SocketRecord::new(listener.kind, listener.disconnect_data);
                record.linger = listener.linger;
                record.non_blocking = listener.non_blocking;
                records.sockets.insert(accepted.raw(), record);
            }
        });
        result
    }

    /// Checks a send's result against the shut directions (R-WSP-7).
    fn check_send<R: std::fmt::Debug>(
        records: &mut Records,
        socket: SocketHandle,
        begin: u64,
        result: &Result<R, WsaError>,
    ) {
        if Self::after_close(records, socket, begin, "send", result) {
            return;
        }
        let shut = records
            .sockets
            .get(&socket.raw())
            .and_then(|record| record.shut_send_at)
            .is_some_and(|shut| shut < begin);
        // (WSAENOTSOCK: a close on another thread came first.)
        let refused = matches!(result, Err(WsaError::WSAESHUTDOWN | WsaError::WSAENOTSOCK));
        if shut && !refused {
            records.violation(format!(
                "R-WSP-7: a send on socket {:#x} after its sends were shut: {result:?}, not \
                 WSAESHUTDOWN",
                socket.raw()
            ));
        }
    }

    /// Checks a receive's result against the shut directions (R-WSP-7) and the end of the
    /// connection (R-WSP-10); records an end.
    fn check_recv(
        records: &mut Records,
        socket: SocketHandle,
        begin: u64,
        at: u64,
        capacity: usize,
        result: &Result<(usize, bool), WsaError>,
    ) {
        if Self::after_close(records, socket, begin, "receive", result) {
            return;
        }
        let Some(record) = records.sockets.get_mut(&socket.raw()) else {
            return;
        };
        let shut = record.shut_recv_at.is_some_and(|shut| shut < begin);
        let ended = record.ended_at.is_some_and(|ended| ended < begin);
        let kind = record.kind;
        let mut found = Vec::new();
        let refused = matches!(result, Err(WsaError::WSAESHUTDOWN | WsaError::WSAENOTSOCK));
        if shut && !refused {
            found.push(format!(
                "R-WSP-7: a receive on socket {:#x} after its receives were shut: {result:?}, \
                 not WSAESHUTDOWN",
                socket.raw()
            ));
        }
        match (kind, result) {
            (SocketKind::Stream, Err(WsaError::WSAEDISCON)) => found.push(format!(
                "R-WSP-10: WSAEDISCON on byte-stream socket {:#x}",
                socket.raw()
            )),
            (SocketKind::Stream, Ok((0, false))) if capacity > 0 => {
                record.ended_at.get_or_insert(at);
            }
            (SocketKind::Message, Err(WsaError::WSAEDISCON)) => {
                record.ended_at.get_or_insert(at);
            }
            // A zero-length message is data; a zero-length read of a byte stream is the end.
            (_, Ok((bytes, false))) if ended && (kind == SocketKind::Message || *bytes > 0) => {
                found.push(format!(
                    "R-WSP-10: socket {:#x} read {bytes} bytes after the end of its connection",
                    socket.raw()
                ));
            }
            _ => {}
        }
        for message in found {
            records.violation(message);
        }
    }

    /// `WSPSend` without overlapped I/O.
    pub fn send(&self, socket: SocketHandle, data: &[u8]) -> Result<Transferred, WsaError> {
        let call = self.begin();
        let result = self.runtime.send(socket, data, None);
        self.end(call, |records, begin, _| {
            Self::check_send(records, socket, begin, &result);
        });
        result.map(|transfer| match transfer {
            Transfer::Complete(done) => done,
            Transfer::Pending => unreachable!("a call without overlapped I/O never pends"),
        })
    }

    /// `WSPRecv` without overlapped I/O.
    pub fn recv(&self, socket: SocketHandle, capacity: usize) -> Result<Transferred, WsaError> {
        let call = self.begin();
        let result = self.runtime.recv(socket, capacity, None);
        let summary = match &result {
            Ok(Transfer::Complete(done)) => Ok((done.bytes, false)),
            Ok(Transfer::Pending) => Ok((0, true)),
            Err(error) => Err(*error),
        };
        self.end(call, |records, begin, at| {
            Self::check_recv(records, socket, begin, at, capacity, &summary);
        });
        result.map(|transfer| match transfer {
            Transfer::Complete(done) => done,
            Transfer::Pending => unreachable!("a call without overlapped I/O never pends"),
        })
    }

    fn issue(&self, socket: SocketHandle, mechanism: Mechanism) -> usize {
        let id = self.next_op.fetch_add(0x40, Ordering::Relaxed);
        let mut records = self.log.lock();
        records.stats.overlapped += 1;
        records.ops.insert(
            id,
            OpRecord {
                socket: socket.raw(),
                mechanism,
                returned: None,
                completions: Vec::new(),
                cancelled: false,
            },
        );
        if let Some(record) = records.sockets.get_mut(&socket.raw()) {
            record.ops.push(id);
        }
        id
    }

    /// Records what an overlapped call returned and checks it (R-WSP-16).
    fn returned(records: &mut Records, id: usize, at: u64, result: &Result<Transfer, WsaError>) {
        let returned = match result {
            Ok(Transfer::Complete(done)) => Returned::Complete(done.bytes),
            Ok(Transfer::Pending) => Returned::Pending,
            Err(error) => Returned::Failed(*error),
        };
        let Some(op) = records.ops.get_mut(&id) else {
            return;
        };
        op.returned = Some((at, returned));
        let completions = op.completions.clone();
        let found = match (returned, completions.as_slice()) {
            (Returned::Complete(bytes), [one]) if one.bytes == bytes && one.error.is_none() => None,
            (Returned::Complete(_), [one]) => Some(format!(
                "R-WSP-16: operation {id:#x} returned 0 ({returned:?}) but completed with {one:?}"
            )),
            (Returned::Complete(_), _) => Some(format!(
                "R-WSP-16: operation {id:#x} returned 0 with {} completions delivered (one is \
                 queued before the call returns)",
                completions.len()
            )),
            (Returned::Failed(error), [_, ..]) => Some(format!(
                "R-WSP-16: operation {id:#x} failed with {error} but completed"
            )),
            _ => None,
        };
        if let Some(message) = found {
            records.violation(message);
        }
        records.settle(id);
    }

    /// An overlapped `WSPSend` of `data`, completing through `mechanism`.
    pub fn send_overlapped(
        &self,
        socket: SocketHandle,
        data: &[u8],
        mechanism: Mechanism,
    ) -> Issued {
        let id = self.issue(socket, mechanism);
        let call = self.begin();
        let overlapped = crate::host::Overlapped { id, mechanism };
        let result = self.runtime.send(socket, data, Some(overlapped));
        self.end(call, |records, begin, at| {
            Self::check_send(records, socket, begin, &result);
            Self::returned(records, id, at, &result);
        });
        Issued { id, result }
    }

    /// An overlapped `WSPRecv` into a buffer of `capacity`, completing through `mechanism`.
    pub fn recv_overlapped(
        &self,
        socket: SocketHandle,
        capacity: usize,
        mechanism: Mechanism,
    ) -> Issued {
        let id = self.issue(socket, mechanism);
        let call = self.begin();
        let overlapped = crate::host::Overlapped { id, mechanism };
        let result = self.runtime.recv(socket, capacity, Some(overlapped));
        let summary = match &result {
            Ok(Transfer::Complete(done)) => Ok((done.bytes, false)),
            Ok(Transfer::Pending) => Ok((0, true)),
            Err(error) => Err(*error),
        };
        self.end(call, |records, begin, at| {
            Self::check_recv(records, socket, begin, at, capacity, &summary);
            Self::returned(records, id, at, &result);
        });
        Issued { id, result }
    }

    /// Checks a call that must never wait (R-WSP-6).
    fn never_waited(records: &mut Records, call: &Call, what: &str) {
        let took = call.started.elapsed();
        if took > NEVER_WAITS {
            records.violation(format!("R-WSP-6: {what} waited {took:?}"));
        }
    }

    /// `WSPShutdown(s, how)`.
    pub fn shutdown(&self, socket: SocketHandle, how: i32) -> Result<(), WsaError> {
        let call = self.begin();
        let result = self.runtime.shutdown(socket, how);
        let started = call.started;
        let timing = Call {
            begin: call.begin,
            started,
        };
        self.end(call, |records, begin, at| {
            Self::never_waited(records, &timing, "shutdown");
            if Self::after_close(records, socket, begin, "shutdown", &result) {
                return;
            }
            if result.is_ok() && !(0..=2).contains(&how) {
                records.violation(format!("R-WSP-5: shutdown with how = {how} succeeded"));
            }
            if let (Ok(()), Some(record)) = (&result, records.sockets.get_mut(&socket.raw())) {
                if how == 0 || how == 2 {
                    record.shut_recv_at.get_or_insert(at);
                }
                if how == 1 || how == 2 {
                    record.shut_send_at.get_or_insert(at);
                }
            }
        });
        result
    }

    /// `WSPSendDisconnect(s, data)`.
    pub fn send_disconnect(
        &self,
        socket: SocketHandle,
        data: Option<&[u8]>,
    ) -> Result<(), WsaError> {
        let call = self.begin();
        let result = self.runtime.send_disconnect(socket, data);
        let timing = Call {
            begin: call.begin,
            started: call.started,
        };
        self.end(call, |records, begin, at| {
            Self::never_waited(records, &timing, "send-disconnect");
            if Self::after_close(records, socket, begin, "send-disconnect", &result) {
                return;
            }
            let Some(record) = records.sockets.get_mut(&socket.raw()) else {
                return;
            };
            let carries = record.disconnect_data;
            if result.is_ok() {
                record.shut_send_at.get_or_insert(at);
            }
            if result.is_ok() && !carries && data.is_some_and(|data| !data.is_empty()) {
                records.violation(format!(
                    "R-WSP-20: disconnect data sent on socket {:#x}, whose protocol cannot carry \
                     it",
                    socket.raw()
                ));
            }
        });
        result
    }

    /// `WSPRecvDisconnect(s, buffer)`, with a buffer of `capacity` (or none).
    pub fn recv_disconnect(
        &self,
        socket: SocketHandle,
        capacity: Option<usize>,
    ) -> Result<Vec<u8>, WsaError> {
        let call = self.begin();
        let result = self.runtime.recv_disconnect(socket, capacity);
        let timing = Call {
            begin: call.begin,
            started: call.started,
        };
        self.end(call, |records, begin, at| {
            Self::never_waited(records, &timing, "receive-disconnect");
            if Self::after_close(records, socket, begin, "receive-disconnect", &result) {
                return;
            }
            let Some(record) = records.sockets.get_mut(&socket.raw()) else {
                return;
            };
            let carries = record.disconnect_data;
            if result.is_ok() {
                record.shut_recv_at.get_or_insert(at);
            }
            let mut found = None;
            if let Ok(data) = &result {
                if capacity.is_some() && !carries {
                    found = Some(format!(
                        "R-WSP-20: disconnect data received on socket {:#x}, whose protocol \
                         cannot carry it",
                        socket.raw()
                    ));
                } else if capacity.is_some_and(|capacity| data.len() > capacity) {
                    found = Some(format!(
                        "R-WSP-20: {} bytes of disconnect data for a buffer of {capacity:?}",
                        data.len()
                    ));
                }
            }
            if let Some(message) = found {
                records.violation(message);
            }
        });
        result
    }

    /// `SO_LINGER` / `SO_DONTLINGER`.
    pub fn set_linger(&self, socket: SocketHandle, linger: Linger) -> Result<(), WsaError> {
        let result = self.simple(socket, "setsockopt", |runtime| {
            runtime.set_linger(socket, linger)
        });
        if result.is_ok()
            && let Some(record) = self.log.lock().sockets.get_mut(&socket.raw())
        {
            record.linger = linger;
        }
        result
    }

    /// `FIONBIO`.
    pub fn set_non_blocking(
        &self,
        socket: SocketHandle,
        non_blocking: bool,
    ) -> Result<(), WsaError> {
        if let Some(record) = self.log.lock().sockets.get_mut(&socket.raw()) {
            record.mode_changes += 1;
        }
        let result = self.simple(socket, "ioctlsocket", |runtime| {
            runtime.set_non_blocking(socket, non_blocking)
        });
        let mut records = self.log.lock();
        let at = records.next();
        if let Some(record) = records.sockets.get_mut(&socket.raw()) {
            record.mode_changes -= 1;
            if result.is_ok() {
                record.non_blocking = non_blocking;
                record.non_blocking_at = at;
            }
        }
        result
    }

    /// The network events the socket selects (every one, by default).
    pub fn select_events(
        &self,
        socket: SocketHandle,
        events: NetworkEvents,
    ) -> Result<(), WsaError> {
        self.simple(socket, "select", |runtime| {
            runtime.select_events(socket, events)
        })
    }

    /// `WSPCloseSocket`.
    pub fn close(&self, socket: SocketHandle) -> Result<(), WsaError> {
        let call = self.begin();
        let result = self.runtime.close(socket);
        let took = call.started.elapsed();
        self.end(call, |records, begin, at| {
            if Self::after_close(records, socket, begin, "close", &result) {
                return;
            }
            let Some(record) = records.sockets.get_mut(&socket.raw()) else {
                return;
            };
            let (linger, non_blocking) = (record.linger, record.non_blocking);
            // The close may have seen either mode when a FIONBIO overlapped it.
            let mode_known = record.mode_changes == 0 && record.non_blocking_at < begin;
            let mut found = Vec::new();
            match &result {
                Err(WsaError::WSAEWOULDBLOCK) => {
                    if linger == Linger::DontLinger {
                        found.push("R-WSP-12: an SO_DONTLINGER close returned WSAEWOULDBLOCK");
                    } else if linger.is_abortive() {
                        found.push("R-WSP-11: an SO_LINGER {1,0} close returned WSAEWOULDBLOCK");
                    } else if !non_blocking && mode_known {
                        found.push("R-WSP-13: a blocking close returned WSAEWOULDBLOCK");
                    }
                }
                Ok(()) => {
                    record.closed_at = Some(at);
                    if took > NEVER_WAITS && linger == Linger::DontLinger {
                        found.push("R-WSP-12: an SO_DONTLINGER close waited");
                    } else if took > NEVER_WAITS && linger.is_abortive() {
                        found.push("R-WSP-11: an SO_LINGER {1,0} close waited");
                    }
                }
                Err(_) => {}
            }
            let ops = record.ops.clone();
            for message in found {
                records.violation(format!("{message} (socket {:#x})", socket.raw()));
            }
            if result.is_ok() {
                for id in ops {
                    let Some(op) = records.ops.get(&id) else {
                        continue;
                    };
                    let pending_before = matches!(op.returned, Some((returned, Returned::Pending)) if returned < begin);
                    if pending_before && op.completions.is_empty() {
                        records.violation(format!(
                            "R-WSP-14: close of socket {:#x} returned with operation {id:#x} \
                             still pending",
                            socket.raw()
                        ));
                    }
                }
                if !records.keep {
                    records.sockets.remove(&socket.raw());
                    records.closed.insert(socket.raw(), at);
                }
            }
        });
        result
    }

    /// The final `WSPCleanup`.
    pub fn cleanup(&self) {
        let call = self.begin();
        self.log.lock().cleaning = true;
        self.runtime.cleanup();
        let (alive, sockets) = (self.runtime.alive(), self.runtime.sockets());
        self.end(call, |records, _, at| {
            records.cleaning = false;
            if alive > 0 || sockets > 0 {
                records.violation(format!(
                    "R-WSP-15: the final cleanup returned with {alive} socket states ({sockets} \
                     handles) left"
                ));
            }
            let mut cancelled = 0;
            for op in records.ops.values_mut() {
                let pending = matches!(op.returned, Some((_, Returned::Pending)));
                if pending && op.completions.is_empty() && !op.cancelled {
                    op.cancelled = true;
                    cancelled += 1;
                }
            }
            records.stats.cancelled += cancelled;
            for record in records.sockets.values_mut() {
                record.closed_at.get_or_insert(at);
            }
            let ids: Vec<usize> = records.ops.keys().copied().collect();
            for id in ids {
                records.settle(id);
            }
        });
    }

    /// The final cleanup, then the end-of-run checks: every operation that returned
    /// `WSA_IO_PENDING` completed exactly once or was cancelled by the cleanup (R-WSP-16), and
    /// no socket state is left (R-WSP-15).
    pub fn finish(&self) {
        self.cleanup();
        let mut records = self.log.lock();
        let mut found = Vec::new();
        for (id, op) in &records.ops {
            let (socket, mechanism) = (op.socket, &op.mechanism);
            match op.returned {
                None => found.push(format!(
                    "operation {id:#x} of socket {socket:#x} ({mechanism:?}) is still in its \
                     call at the end of the run"
                )),
                Some((_, Returned::Pending)) if op.completions.is_empty() && !op.cancelled => found
                    .push(format!(
                        "R-WSP-16: operation {id:#x} of socket {socket:#x} ({mechanism:?}) \
                         returned WSA_IO_PENDING and never completed"
                    )),
                _ => {}
            }
        }
        for message in found {
            records.violation(message);
        }
        self.raise(records);
    }

    /// The network events the socket received, in order.
    pub fn events(&self, socket: SocketHandle) -> Vec<(NetworkEvents, Option<WsaError>)> {
        self.log
            .lock()
            .sockets
            .get(&socket.raw())
            .map(|record| record.events.clone())
            .unwrap_or_default()
    }

    /// Whether the socket received `FD_CLOSE`, and with which error.
    pub fn fd_close(&self, socket: SocketHandle) -> Option<Option<WsaError>> {
        self.events(socket)
            .into_iter()
            .find(|(event, _)| *event == NetworkEvents::CLOSE)
            .map(|(_, error)| error)
    }

    /// The completions the operation received.
    pub fn completions(&self, op: usize) -> Vec<Completion> {
        self.log
            .lock()
            .ops
            .get(&op)
            .map(|record| record.completions.clone())
            .unwrap_or_default()
    }

    /// The operation's one completion, if it came.
    pub fn completion(&self, op: usize) -> Option<Completion> {
        let completions = self.completions(op);
        match completions.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        }
    }

    /// Every notice, in the order the runtime delivered them.
    pub fn notices(&self) -> Vec<Notice> {
        self.log.lock().notices.clone()
    }

    /// Waits up to `timeout` until `n` threads wait inside the runtime for a socket — a
    /// blocking call waiting for readiness, a lingering close waiting for its data to leave —;
    /// whether they did. The barrier of a race with a blocked call: what the test does next
    /// happens while the call waits.
    pub fn wait_blocked(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.runtime.sleeping() < n {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::yield_now();
        }
        true
    }

    /// Calls of this host in progress (on any thread).
    pub fn in_flight(&self) -> usize {
        self.log.lock().in_flight
    }

    /// What the simulator counted.
    pub fn stats(&self) -> Stats {
        self.log.lock().stats
    }
}

impl Host<Memory> {
    /// Two connected sockets of `protocol` (client, server), through a listener on a fresh
    /// address that is closed again.
    pub fn pair(&self, protocol: usize) -> (SocketHandle, SocketHandle) {
        let port = self.next_port.fetch_add(1, Ordering::Relaxed) as u16;
        let address = memory::address(port);
        let listener = self.socket(protocol).expect("socket");
        self.bind(listener, &address).expect("bind");
        self.listen(listener, 1).expect("listen");
        let client = self.socket(protocol).expect("socket");
        self.connect(client, &address).expect("connect");
        let server = self.accept(listener).expect("accept");
        self.close(listener).expect("close the listener");
        (client, server)
    }
}

impl<T: Transport> std::fmt::Debug for Host<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("runtime", &self.runtime)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    //! The simulator's checks, fed notices the runtime never sends.
    use super::*;

    fn records() -> Records {
        let mut records = Records {
            keep: true,
            ..Records::default()
        };
        records
            .sockets
            .insert(7, SocketRecord::new(SocketKind::Stream, false));
        records.ops.insert(
            0x40,
            OpRecord {
                socket: 7,
                mechanism: Mechanism::Signal,
                returned: Some((1, Returned::Pending)),
                completions: Vec::new(),
                cancelled: false,
            },
        );
        records
    }

    fn completion(op: usize, mechanism: Mechanism) -> Notice {
        Notice::Overlapped {
            socket: SocketHandle::from_raw(7),
            op,
            mechanism,
            bytes: 0,
            error: None,
            data: Vec::new(),
        }
    }

    fn close_event() -> Notice {
        Notice::Network {
            socket: SocketHandle::from_raw(7),
            event: NetworkEvents::CLOSE,
            error: None,
        }
    }

    fn ids(records: &Records) -> Vec<&str> {
        records
            .violations
            .iter()
            .map(|message| message.split(':').next().unwrap_or_default())
            .collect()
    }

    #[test]
    fn one_completion_per_operation_through_its_own_mechanism() {
        let mut records = records();
        records.record(completion(0x40, Mechanism::Signal));
        assert!(records.violations.is_empty(), "{:?}", records.violations);
        records.record(completion(0x40, Mechanism::Signal));
        assert_eq!(ids(&records), ["R-WSP-16"], "twice");
        let mut records = super::tests::records();
        records.record(completion(0x40, routine(1)));
        assert_eq!(ids(&records), ["R-WSP-14"], "another mechanism");
        let mut records = super::tests::records();
        records.record(completion(0x80, Mechanism::Signal));
        assert_eq!(ids(&records), ["R-WSP-16"], "never issued");
    }

    #[test]
    fn no_completion_after_a_failed_call_or_the_final_cleanup() {
        let mut records = records();
        records.ops.get_mut(&0x40).unwrap().returned =
            Some((1, Returned::Failed(WsaError::WSAESHUTDOWN)));
        records.record(completion(0x40, Mechanism::Signal));
        assert_eq!(ids(&records), ["R-WSP-16"]);
        let mut records = super::tests::records();
        records.ops.get_mut(&0x40).unwrap().cancelled = true;
        records.record(completion(0x40, Mechanism::Signal));
        assert_eq!(ids(&records), ["R-WSP-15"]);
        let mut records = super::tests::records();
        records.cleaning = true;
        records.record(close_event());
        assert_eq!(ids(&records), ["R-WSP-15"]);
    }

    #[test]
    fn nothing_after_a_close_and_fd_close_once() {
        let mut records = records();
        records.record(close_event());
        assert!(records.violations.is_empty());
        records.record(close_event());
        assert_eq!(ids(&records), ["R-WSP-8"]);
        let mut records = super::tests::records();
        let closed = records.next();
        records.sockets.get_mut(&7).unwrap().closed_at = Some(closed);
        records.record(close_event());
        records.record(completion(0x40, Mechanism::Signal));
        assert_eq!(ids(&records), ["R-WSP-14", "R-WSP-14"]);
    }
}
