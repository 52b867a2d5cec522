//! One socket's protocol state, and every rule that depends on it: the framework's, whatever
//! the transport does.
//!
//! The state is reached only with the socket's turn (`entry.rs`). It holds the author's socket
//! (until the close consumes it), the connection's phase, the shut directions, where the FIN
//! stands, how the connection ended on either side, the linger option, the network events the
//! host selected, and the overlapped operations still pending, in posting order. Each pending
//! operation is a core `Completion` whose delivery is the one `Notice::Overlapped` of that
//! operation: it leaves its queue *before* it is completed, so it completes exactly once
//! (R-WSP-16); completed by the transport's progress, by a reset, by a close
//! (`WSA_OPERATION_ABORTED`, R-WSP-14) — or dropped by the final cleanup, whose drop outcome
//! delivers nothing (R-WSP-15).

use super::entry::{PEER_ABORT, PEER_FIN, PEER_RESET, READABLE, WRITABLE};
use crate::host::{
    How, Linger, NetworkEvents, Notice, NoticeSink, Overlapped, SocketHandle, Transfer, Transferred,
};
use crate::provider::{
    Protocol, Received, RecvCall, SendCall, Sent, Socket, SocketKind, Termination,
};
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use winprov_core::{Completion, WsaError, call};

/// Where the connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Open,
    Bound,
    Listening,
    Connected,
}

/// Where this side's FIN stands.
#[derive(Debug)]
enum Fin {
    NotSent,
    /// Asked for while overlapped sends were pending: sent when they are done, after their data.
    Deferred(Option<Vec<u8>>),
    Sent,
}

/// What an overlapped operation's one delivery carries.
pub(crate) enum Outcome {
    Done {
        bytes: usize,
        error: Option<WsaError>,
        data: Vec<u8>,
    },
    /// Cancelled by the final cleanup (the completion's drop outcome): nothing reaches the host.
    Silent,
}

type OpCompletion = Completion<'static, Outcome>;

struct PendingRecv {
    capacity: usize,
    completion: OpCompletion,
}

struct PendingSend {
    data: Vec<u8>,
    done: usize,
    completion: OpCompletion,
}

/// What a call does when it cannot finish now.
pub(crate) enum Attempt<R> {
    Done(R),
    /// Give the turn back, wait for a change, try again.
    Wait,
}

/// A receive attempt, in the host's terms.
enum Read {
    Data { data: Vec<u8>, truncated: bool },
    NotYet,
    Failed(WsaError),
}

/// Runs author code; a panic is the call's `WSASYSCALLFAILURE`.
pub(crate) fn guarded<R>(what: &'static str, f: impl FnOnce() -> R) -> Result<R, WsaError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|_| {
        tracing::error!(
            what,
            "a transport socket panicked: the call fails with WSASYSCALLFAILURE"
        );
        WsaError::WSASYSCALLFAILURE
    })
}

fn attempt_send<S: Socket>(socket: &mut S, data: &[u8]) -> Sent {
    let mut answer = None;
    let ran = guarded("send", || {
        call::scope(|scope| {
            let _ = socket
                .send(SendCall::new(data, &mut answer, scope.issuer()))
                .delivery();
        })
    });
    match (ran, answer) {
        (Err(error), _) => Sent::Failed(error),
        (Ok(()), Some(sent)) => sent,
        (Ok(()), None) => Sent::Failed(WsaError::WSASYSCALLFAILURE),
    }
}

fn attempt_recv<S: Socket>(socket: &mut S, capacity: usize) -> (Received, Vec<u8>) {
    let mut buffer = vec![0; capacity];
    let mut answer = None;
    let ran = guarded("recv", || {
        call::scope(|scope| {
            let _ = socket
                .recv(RecvCall::new(&mut buffer, &mut answer, scope.issuer()))
                .delivery();
        })
    });
    let received = match (ran, answer) {
        (Err(error), _) => Received::Failed(error),
        (Ok(()), Some(received)) => received,
        (Ok(()), None) => Received::Failed(WsaError::WSASYSCALLFAILURE),
    };
    (received, buffer)
}

/// What a receive that reached the end of the connection reports, in one place (R-WSP-10): 0
/// bytes on a byte stream and `WSAEDISCON` on a message-oriented socket for a graceful end,
/// `WSAECONNRESET` / `WSAECONNABORTED` for an abortive one.
pub(crate) fn end_of_stream(kind: SocketKind, how: Termination) -> Result<(), WsaError> {
    match (how.error(), kind) {
        (None, SocketKind::Stream) => Ok(()),
        (None, SocketKind::Message) => Err(WsaError::WSAEDISCON),
        (Some(error), _) => Err(error),
    }
}

/// See the [module documentation](self).
pub(crate) struct State<S> {
    sink: NoticeSink,
    pub(crate) handle: SocketHandle,
    pub(crate) socket: Option<S>,
    protocol: Protocol,
    kind: SocketKind,
    disconnect_data: bool,
    pub(crate) phase: Phase,
    /// Closed by the host or by the final cleanup: every later call is `WSAENOTSOCK`, and
    /// nothing of the socket reaches the host any more.
    pub(crate) closed: bool,
    shut_send: bool,
    shut_recv: bool,
    /// `shutdown(SD_RECEIVE)` on a byte stream: data queued or arriving resets (R-WSP-9).
    reset_on_data: bool,
    fin: Fin,
    /// This side reset the connection.
    local_reset: bool,
    /// How the peer ended the connection, once the transport said.
    peer: Option<Termination>,
    pub(crate) linger: Linger,
    pub(crate) non_blocking: bool,
    selected: NetworkEvents,
    close_posted: bool,
    read_armed: bool,
    write_blocked: bool,
    accept_armed: bool,
    recvs: VecDeque<PendingRecv>,
    sends: VecDeque<PendingSend>,
}

impl<S: Socket> State<S> {
    pub(crate) fn new(protocol: &Protocol, sink: NoticeSink) -> Self {
        Self {
            sink,
            handle: SocketHandle::from_raw(0),
            socket: None,
            protocol: protocol.clone(),
            kind: protocol.kind,
            disconnect_data: protocol.disconnect_data,
            phase: Phase::Open,
            closed: false,
            shut_send: false,
            shut_recv: false,
            reset_on_data: false,
            fin: Fin::NotSent,
            local_reset: false,
            peer: None,
            linger: Linger::default(),
            non_blocking: false,
            selected: NetworkEvents::NONE,
            close_posted: false,
            read_armed: true,
            write_blocked: false,
            accept_armed: true,
            recvs: VecDeque::new(),
            sends: VecDeque::new(),
        }
    }

    /// Installs a socket accepted on `listener`, which it takes its options from.
    pub(crate) fn inherit(&mut self, listener: &State<S>) {
        self.linger = listener.linger;
        self.non_blocking = listener.non_blocking;
        self.selected = listener.selected;
    }

    /// The socket's protocol.
    pub(crate) fn protocol(&self) -> &Protocol {
        &self.protocol
    }

    pub(crate) fn check_open(&self) -> Result<(), WsaError> {
        match self.closed {
            true => Err(WsaError::WSAENOTSOCK),
            false => Ok(()),
        }
    }

    /// The error of a call interrupted by a close while it waited (a blocking call), or made
    /// after it.
    pub(crate) fn closed_error(retried: bool) -> WsaError {
        match retried {
            true => WsaError::WSAEINTR,
            false => WsaError::WSAENOTSOCK,
        }
    }

    fn socket(&mut self) -> Result<&mut S, WsaError> {
        self.socket.as_mut().ok_or(WsaError::WSAENOTSOCK)
    }

    fn post(&self, event: NetworkEvents, error: Option<WsaError>) {
        if self.selected.contains(event) {
            self.sink.deliver(Notice::Network {
                socket: self.handle,
                event,
                error,
            });
        }
    }

    /// A completion for `overlapped`, delivering its one `Notice` through its own mechanism.
    fn completion(&self, overlapped: Overlapped) -> OpCompletion {
        let sink = Arc::clone(&self.sink);
        let socket = self.handle;
        let Overlapped { id, mechanism } = overlapped;
        let (completion, _handle) = winprov_core::completion(
            move |outcome| {
                if let Outcome::Done { bytes, error, data } = outcome {
                    sink.deliver(Notice::Overlapped {
                        socket,
                        op: id,
                        mechanism,
                        bytes,
                        error,
                        data,
                    });
                }
            },
            Outcome::Silent,
        );
        completion
    }

    fn complete_now(
        &self,
        overlapped: Overlapped,
        bytes: usize,
        error: Option<WsaError>,
        data: Vec<u8>,
    ) {
        let _ = self
            .completion(overlapped)
            .complete(Outcome::Done { bytes, error, data });
    }

    /// Whether the connection is up, not reset by either side.
    pub(crate) fn connection_live(&self) -> bool {
        self.phase == Phase::Connected
            && !self.local_reset
            && !matches!(self.peer, Some(Termination::Reset | Termination::Aborted))
    }

    /// How the connection ended abortively, if it did (reset by either side, or aborted).
    fn broken_by(&self) -> Option<Termination> {
        match self.local_reset {
            true => Some(Termination::Reset),
            false => self.peer.filter(|how| *how != Termination::Graceful),
        }
    }

    /// The error every send gets once the connection ended abortively.
    fn broken(&self) -> Option<WsaError> {
        self.broken_by().and_then(Termination::error)
    }

    /// What a receive reads at the end of the connection (R-WSP-10).
    fn end(&self, how: Termination) -> Read {
        match end_of_stream(self.kind, how) {
            Ok(()) => Read::Data {
                data: Vec::new(),
                truncated: false,
            },
            Err(error) => Read::Failed(error),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Readiness from the transport.

    /// Processes readiness the transport reported: serves the pending operations it may let
    /// finish and posts the network events it means.
    pub(crate) fn process(&mut self, ready: u8) {
        if self.closed {
            // Nothing of a closed socket reaches the host (R-WSP-14).
            return;
        }
        let ended = if ready & PEER_ABORT != 0 {
            Some(Termination::Aborted)
        } else if ready & PEER_RESET != 0 {
            Some(Termination::Reset)
        } else if ready & PEER_FIN != 0 {
            Some(Termination::Graceful)
        } else {
            None
        };
        if let Some(how) = ended {
            self.peer_ended(how);
        }
        if ready & (READABLE | PEER_FIN | PEER_RESET | PEER_ABORT) != 0 {
            self.readable(ready & READABLE != 0);
        }
        if let Some(how) = ended {
            // After the data that came with it: FD_CLOSE follows the last data (R-WSP-8).
            self.post_close(how);
        }
        if ready & WRITABLE != 0 {
            self.serve_sends();
            if self.write_blocked && self.sends.is_empty() && self.connection_live() {
                self.write_blocked = false;
                self.post(NetworkEvents::WRITE, None);
            }
        }
    }

    fn peer_ended(&mut self, how: Termination) {
        // A reset after a FIN replaces it; a FIN after a reset changes nothing.
        if self.peer.is_none() || how != Termination::Graceful {
            self.peer = Some(how);
        }
        if let Some(error) = how.error() {
            self.fail_sends(error);
        }
    }

    /// `FD_CLOSE` once, with the way the peer ended (R-WSP-8, R-WSP-10); none after this side
    /// reset the connection.
    fn post_close(&mut self, how: Termination) {
        if !self.close_posted && !self.local_reset {
            self.close_posted = true;
            self.post(NetworkEvents::CLOSE, how.error());
        }
    }

    /// The socket may have something to read: `fresh` when the transport said so (not only
    /// that the peer ended the connection).
    fn readable(&mut self, fresh: bool) {
        match self.phase {
            Phase::Listening if self.accept_armed => {
                self.accept_armed = false;
                self.post(NetworkEvents::ACCEPT, None);
            }
            Phase::Connected => {
                if self.reset_on_data && self.connection_live() && self.unread() > 0 {
                    // Data arrived after shutdown(SD_RECEIVE): reset (R-WSP-9).
                    self.reset_connection();
                    return;
                }
                let served = self.serve_recvs();
                if fresh
                    && self.read_armed
                    && self.recvs.is_empty()
                    && (self.unread() > 0 || served == 0)
                {
                    self.read_armed = false;
                    self.post(NetworkEvents::READ, None);
                }
            }
            _ => {}
        }
    }

    pub(crate) fn unread(&self) -> usize {
        self.socket.as_ref().map_or(0, |socket| socket.unread())
    }

    pub(crate) fn unsent(&self) -> usize {
        self.socket.as_ref().map_or(0, |socket| socket.unsent())
    }

    /// Resets the connection from this side; pending transfers fail with `WSAECONNRESET`.
    pub(crate) fn reset_connection(&mut self) {
        if self.local_reset {
            return;
        }
        self.local_reset = true;
        if let Some(socket) = self.socket.as_mut() {
            let _ = guarded("reset", || socket.reset());
        }
        self.fail_sends(WsaError::WSAECONNRESET);
        self.fail_recvs(WsaError::WSAECONNRESET);
    }

    fn fail_sends(&mut self, error: WsaError) {
        for op in std::mem::take(&mut self.sends) {
            let _ = op.completion.complete(Outcome::Done {
                bytes: op.done,
                error: Some(error),
                data: Vec::new(),
            });
        }
    }

    fn fail_recvs(&mut self, error: WsaError) {
        for op in std::mem::take(&mut self.recvs) {
            let _ = op.completion.complete(Outcome::Done {
                bytes: 0,
                error: Some(error),
                data: Vec::new(),
            });
        }
    }

    /// One receive from the transport, in the host's terms (R-WSP-10).
    fn read(&mut self, capacity: usize) -> Read {
        if let Some(how) = self.broken_by() {
            return self.end(how);
        }
        let socket = match self.socket() {
            Ok(socket) => socket,
            Err(error) => return Read::Failed(error),
        };
        let (received, mut buffer) = attempt_recv(socket, capacity);
        match received {
            Received::Data(bytes) => {
                buffer.truncate(bytes.min(capacity));
                Read::Data {
                    data: buffer,
                    truncated: false,
                }
            }
            Received::Truncated => Read::Data {
                data: buffer,
                truncated: true,
            },
            Received::WouldBlock => Read::NotYet,
            Received::End(how) => self.end(how),
            Received::Failed(error) => Read::Failed(error),
        }
    }

    /// Serves pending receives in posting order, while the transport has something for them;
    /// returns how many it completed.
    fn serve_recvs(&mut self) -> usize {
        let mut served = 0;
        while let Some(front) = self.recvs.front() {
            let capacity = front.capacity;
            let (bytes, error, data) = match self.read(capacity) {
                Read::NotYet => break,
                Read::Data { data, truncated } => {
                    (data.len(), truncated.then_some(WsaError::WSAEMSGSIZE), data)
                }
                Read::Failed(error) => (0, Some(error), Vec::new()),
            };
            if let Some(op) = self.recvs.pop_front() {
                let _ = op.completion.complete(Outcome::Done { bytes, error, data });
                served += 1;
            }
        }
        served
    }

    /// One send attempt of `data`: the bytes taken, or `None` for "not now".
    fn write(&mut self, data: &[u8]) -> Result<Option<usize>, WsaError> {
        if let Some(error) = self.broken() {
            return Err(error);
        }
        let kind = self.kind;
        match attempt_send(self.socket()?, data) {
            Sent::Accepted(0) if !data.is_empty() => Ok(None),
            Sent::Accepted(bytes) if kind == SocketKind::Message && bytes != data.len() => {
                tracing::error!(
                    bytes,
                    len = data.len(),
                    "a message transport took part of a message"
                );
                Err(WsaError::WSAEMSGSIZE)
            }
            Sent::Accepted(bytes) => Ok(Some(bytes.min(data.len()))),
            Sent::WouldBlock => Ok(None),
            Sent::Failed(error) => Err(error),
        }
    }

    /// Serves pending sends in posting order, then a FIN that waited for them.
    fn serve_sends(&mut self) {
        while let Some(front) = self.sends.front_mut() {
            let data = std::mem::take(&mut front.data);
            let done = front.done;
            let attempt = self.write(&data[done..]);
            let Some(front) = self.sends.front_mut() else {
                break;
            };
            front.data = data;
            match attempt {
                Ok(None) => {
                    self.write_blocked = true;
                    break;
                }
                Ok(Some(bytes)) => {
                    front.done += bytes;
                    if front.done < front.data.len() {
                        continue;
                    }
                }
                Err(error) => {
                    if let Some(op) = self.sends.pop_front() {
                        let _ = op.completion.complete(Outcome::Done {
                            bytes: op.done,
                            error: Some(error),
                            data: Vec::new(),
                        });
                    }
                    continue;
                }
            }
            if let Some(op) = self.sends.pop_front() {
                let _ = op.completion.complete(Outcome::Done {
                    bytes: op.data.len(),
                    error: None,
                    data: Vec::new(),
                });
            }
        }
        if self.sends.is_empty() && matches!(self.fin, Fin::Deferred(_)) {
            let _ = self.fin_now();
        }
    }

    // -----------------------------------------------------------------------------------------
    // The host's calls (the runtime holds the turn).

    pub(crate) fn select(&mut self, events: NetworkEvents) -> Result<(), WsaError> {
        self.check_open()?;
        self.selected = events;
        // What already holds is reported at once, as Winsock records it when selected.
        if self.phase == Phase::Connected {
            if self.read_armed && self.unread() > 0 {
                self.read_armed = false;
                self.post(NetworkEvents::READ, None);
            }
            if self.connection_live() && !self.shut_send && self.sends.is_empty() {
                self.post(NetworkEvents::WRITE, None);
            }
            if let (Some(how), false) = (self.peer, self.close_posted) {
                self.close_posted = true;
                self.post(NetworkEvents::CLOSE, how.error());
            }
        }
        Ok(())
    }

    pub(crate) fn connected(&mut self) {
        self.phase = Phase::Connected;
        self.post(NetworkEvents::CONNECT, None);
        self.post(NetworkEvents::WRITE, None);
    }

    pub(crate) fn accept_armed(&mut self) {
        self.accept_armed = true;
    }

    /// `WSPRecv`.
    pub(crate) fn recv(
        &mut self,
        capacity: usize,
        overlapped: Option<Overlapped>,
        retried: bool,
    ) -> Attempt<Result<Transfer, WsaError>> {
        if self.closed {
            return Attempt::Done(Err(Self::closed_error(retried)));
        }
        if self.shut_recv {
            return Attempt::Done(Err(WsaError::WSAESHUTDOWN)); // R-WSP-7
        }
        if self.phase != Phase::Connected {
            return Attempt::Done(Err(WsaError::WSAENOTCONN));
        }
        self.read_armed = true;
        let read = match self.recvs.is_empty() {
            true => self.read(capacity),
            // Buffers fill in posting order: behind the pending ones.
            false => Read::NotYet,
        };
        let done = match (read, overlapped) {
            (Read::Failed(error), _) => Err(error),
            (Read::NotYet, Some(overlapped)) => {
                let completion = self.completion(overlapped);
                self.recvs.push_back(PendingRecv {
                    capacity,
                    completion,
                });
                Ok(Transfer::Pending)
            }
            (Read::NotYet, None) if self.non_blocking => Err(WsaError::WSAEWOULDBLOCK),
            (Read::NotYet, None) => return Attempt::Wait,
            (Read::Data { data, truncated }, None) => Ok(Transfer::Complete(Transferred {
                bytes: data.len(),
                data,
                truncated,
            })),
            (Read::Data { data, truncated }, Some(overlapped)) => {
                let bytes = data.len();
                match truncated {
                    // A completion with an error: pending, already completed.
                    true => {
                        self.complete_now(overlapped, bytes, Some(WsaError::WSAEMSGSIZE), data);
                        Ok(Transfer::Pending)
                    }
                    false => {
                        self.complete_now(overlapped, bytes, None, data.clone());
                        Ok(Transfer::Complete(Transferred {
                            bytes,
                            data,
                            truncated: false,
                        }))
                    }
                }
            }
        };
        Attempt::Done(done)
    }

    /// `WSPSend`. `offset`: what a blocking send already sent of `data`.
    pub(crate) fn send(
        &mut self,
        data: &[u8],
        offset: &mut usize,
        overlapped: Option<Overlapped>,
        retried: bool,
    ) -> Attempt<Result<Transfer, WsaError>> {
        if self.closed {
            return Attempt::Done(Err(Self::closed_error(retried)));
        }
        if self.shut_send {
            return Attempt::Done(Err(WsaError::WSAESHUTDOWN)); // R-WSP-7
        }
        if self.phase != Phase::Connected {
            return Attempt::Done(Err(WsaError::WSAENOTCONN));
        }
        if let Some(overlapped) = overlapped {
            let taken = match self.sends.is_empty() {
                true => self.write(data),
                false => Ok(None),
            };
            return Attempt::Done(match taken {
                Err(error) => Err(error),
                Ok(Some(bytes)) if bytes == data.len() => {
                    self.complete_now(overlapped, bytes, None, Vec::new());
                    Ok(Transfer::Complete(Transferred {
                        bytes,
                        ..Transferred::default()
                    }))
                }
                Ok(taken) => {
                    if taken.is_none() {
                        self.write_blocked = true;
                    }
                    let completion = self.completion(overlapped);
                    self.sends.push_back(PendingSend {
                        data: data.to_vec(),
                        done: taken.unwrap_or(0),
                        completion,
                    });
                    Ok(Transfer::Pending)
                }
            });
        }
        loop {
            let taken = match self.sends.is_empty() {
                true => self.write(&data[*offset..]),
                false => Ok(None),
            };
            return match taken {
                Err(error) if *offset == 0 => Attempt::Done(Err(error)),
                Err(_) => Attempt::Done(Ok(self.sent(*offset))),
                Ok(Some(bytes)) => {
                    *offset += bytes;
                    match self.non_blocking || *offset == data.len() {
                        true => Attempt::Done(Ok(self.sent(*offset))),
                        // Progress: the transport may take more at once.
                        false => continue,
                    }
                }
                Ok(None) => {
                    self.write_blocked = true;
                    match self.non_blocking {
                        true if *offset == 0 => Attempt::Done(Err(WsaError::WSAEWOULDBLOCK)),
                        true => Attempt::Done(Ok(self.sent(*offset))),
                        false => Attempt::Wait,
                    }
                }
            };
        }
    }

    fn sent(&self, bytes: usize) -> Transfer {
        Transfer::Complete(Transferred {
            bytes,
            ..Transferred::default()
        })
    }

    /// Sends the FIN now, or after the pending sends.
    fn start_fin(&mut self, disconnect_data: Option<Vec<u8>>) -> Result<(), WsaError> {
        if !matches!(self.fin, Fin::NotSent) || !self.connection_live() {
            return Ok(());
        }
        self.fin = Fin::Deferred(disconnect_data);
        match self.sends.is_empty() {
            true => self.fin_now(),
            false => Ok(()),
        }
    }

    /// Sends the FIN (the deferred one, or a plain one) unless it was sent.
    pub(crate) fn fin_now(&mut self) -> Result<(), WsaError> {
        let disconnect_data = match std::mem::replace(&mut self.fin, Fin::Sent) {
            Fin::Sent => return Ok(()),
            Fin::NotSent => None,
            Fin::Deferred(data) => data,
        };
        if !self.connection_live() {
            return Ok(());
        }
        let socket = self.socket()?;
        guarded("send_fin", || socket.send_fin(disconnect_data.as_deref()))?
    }

    /// `WSPShutdown` (R-WSP-5 … R-WSP-9). Never waits: a FIN that must follow pending sends is
    /// deferred, whatever the linger option (R-WSP-6).
    pub(crate) fn shutdown(&mut self, how: i32) -> Result<(), WsaError> {
        self.check_open()?;
        let how = How::from_raw(how).ok_or(WsaError::WSAEINVAL)?;
        if self.phase != Phase::Connected {
            return Err(WsaError::WSAENOTCONN);
        }
        if how.receive() {
            self.shut_recv = true;
            if self.kind == SocketKind::Stream {
                self.reset_on_data = true;
                if self.connection_live() && self.unread() > 0 {
                    // Data queued: reset (R-WSP-9).
                    self.reset_connection();
                }
            }
        }
        if how.send() {
            self.shut_send = true;
            self.start_fin(None)?;
        }
        Ok(())
    }

    /// `WSPSendDisconnect`: sends shut, the FIN with the disconnect data (R-WSP-20). Never
    /// waits (R-WSP-6).
    pub(crate) fn send_disconnect(&mut self, data: Option<&[u8]>) -> Result<(), WsaError> {
        self.check_open()?;
        let data = data.filter(|data| !data.is_empty());
        if data.is_some() && !self.disconnect_data {
            return Err(WsaError::WSAENOPROTOOPT);
        }
        if self.phase != Phase::Connected {
            return Err(WsaError::WSAENOTCONN);
        }
        self.shut_send = true;
        self.start_fin(data.map(<[u8]>::to_vec))
    }

    /// `WSPRecvDisconnect`: receives shut, the peer's disconnect data returned if the buffer
    /// (`capacity`) holds it (`WSAEFAULT` otherwise, R-WSP-20). Never waits (R-WSP-6).
    pub(crate) fn recv_disconnect(&mut self, capacity: Option<usize>) -> Result<Vec<u8>, WsaError> {
        self.check_open()?;
        if capacity.is_some() && !self.disconnect_data {
            return Err(WsaError::WSAENOPROTOOPT);
        }
        if self.phase != Phase::Connected {
            return Err(WsaError::WSAENOTCONN);
        }
        let data = match (capacity, self.socket.as_ref()) {
            (Some(_), Some(socket)) => {
                guarded("disconnect_data", || socket.disconnect_data())?.unwrap_or_default()
            }
            _ => Vec::new(),
        };
        if capacity.is_some_and(|capacity| data.len() > capacity) {
            return Err(WsaError::WSAEFAULT);
        }
        self.shut_recv = true;
        Ok(data)
    }

    /// Whether a close must fail with `WSAEWOULDBLOCK` and change nothing: a non-blocking
    /// socket lingering with a timeout whose data has not all left (R-WSP-13).
    pub(crate) fn close_would_block(&self) -> bool {
        matches!(self.linger, Linger::Linger(timeout) if !timeout.is_zero())
            && self.non_blocking
            && self.connection_live()
            && self.unsent() > 0
    }

    /// Completes every pending operation with `WSA_OPERATION_ABORTED`, each through its own
    /// mechanism (R-WSP-14).
    pub(crate) fn abort_pending(&mut self) {
        self.fail_recvs(WsaError::WSA_OPERATION_ABORTED);
        self.fail_sends(WsaError::WSA_OPERATION_ABORTED);
    }

    /// Drops every pending operation: their completions' drop outcome delivers nothing
    /// (R-WSP-15).
    pub(crate) fn drop_pending(&mut self) {
        self.recvs.clear();
        self.sends.clear();
    }

    /// How many overlapped operations are pending.
    pub(crate) fn pending(&self) -> usize {
        self.recvs.len() + self.sends.len()
    }
}
