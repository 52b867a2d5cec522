//! The state machine between ws2_32's calls and the author's transport, portable and safe.
//!
//! Each method is one `WSP*` call, with the host's values already decoded (the ABI layer does
//! that): a [`SocketHandle`], `how`, a [`Linger`], data to send, a receive's capacity, an
//! [`Overlapped`] request. Sockets live in a core `LeaseTable` keyed by the handle the host
//! sees: a call leases its socket (O(1), no lock), so a close on one thread and I/O on another
//! are safe — the close retires the handle (later calls get `WSAENOTSOCK`) and the state is
//! freed when the last call holding it returns. Within a socket, calls and the transport's
//! notifications take turns (`entry.rs`); the protocol state and its rules are in `socket.rs`.
//!
//! Everything the host must hear leaves through the runtime's [`NoticeSink`]: overlapped
//! completions and network events, delivered in order while the socket's turn is held, so
//! nothing of a socket reaches the host after its close returned (R-WSP-14).
//!
//! What waits, and what never does:
//! - `shutdown`, `send_disconnect` and `recv_disconnect` never wait, whatever the linger option
//!   (R-WSP-6);
//! - a blocking (non-overlapped, on a blocking socket) receive, send or accept gives the
//!   socket's turn back while it waits, and a close interrupts it (`WSAEINTR`);
//! - `close` waits only for a blocking socket lingering with a timeout, up to the timeout
//!   (R-WSP-13); `cleanup` waits until no socket state is left (R-WSP-15).
//!
//! The races between a close, the final cleanup, an overlapped call and the transport's
//! notifications are explored by the loom models in `loom_models.rs` (R-WSP-14, R-WSP-15,
//! R-WSP-16), over this code with loom's locks.

mod entry;
mod socket;

use crate::host::{Linger, NetworkEvents, NoticeSink, Overlapped, SocketHandle, Transfer};
use crate::provider::{Address, Notifier, Protocol, Socket, Transport};
use entry::{Held, Shared, Turn};
use socket::{Attempt, Phase, State, guarded};
use std::sync::Arc;
use std::time::Instant;
use winprov_core::{Lease, LeaseTable, WsaError};

/// One transport and its sockets.
pub struct Runtime<T: Transport> {
    transport: T,
    protocols: Vec<Protocol>,
    table: LeaseTable<Held<T::Socket>, ()>,
    shared: Arc<Shared>,
}

type SocketLease<'t, S> = Lease<'t, Held<S>, ()>;

impl<T: Transport> Runtime<T> {
    /// A runtime serving `transport`, whose notices go to `sink`.
    pub fn new(transport: T, sink: NoticeSink) -> Self {
        let protocols = transport.protocols();
        Self {
            transport,
            protocols,
            table: LeaseTable::new(),
            shared: Shared::new(sink),
        }
    }

    /// The author's transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The transport's protocols, in catalog order.
    pub fn protocols(&self) -> &[Protocol] {
        &self.protocols
    }

    /// Open sockets (handles the host may still use).
    pub fn sockets(&self) -> usize {
        self.table.len()
    }

    /// Socket states not freed yet: the open sockets, and closed ones a call still holds.
    pub fn alive(&self) -> usize {
        self.shared.alive()
    }

    /// Threads waiting inside the runtime for a socket (feature `testing`).
    #[cfg(feature = "testing")]
    pub(crate) fn sleeping(&self) -> usize {
        self.shared.sleeping()
    }

    fn lease(&self, socket: SocketHandle) -> Result<SocketLease<'_, T::Socket>, WsaError> {
        self.table
            .lease_shared(socket.raw())
            .map_err(|_| WsaError::WSAENOTSOCK)
    }

    /// Runs `body` with the socket's turn.
    fn with<R>(
        &self,
        socket: SocketHandle,
        body: impl FnOnce(&mut Turn<'_, T::Socket>) -> Result<R, WsaError>,
    ) -> Result<R, WsaError> {
        let lease = self.lease(socket)?;
        let mut turn = lease.enter();
        body(&mut turn)
    }

    /// Runs `attempt` with the socket's turn until it is done, giving the turn back and
    /// waiting for a change in between. `attempt` is told whether it waited before.
    fn blocking<R>(
        &self,
        socket: SocketHandle,
        mut attempt: impl FnMut(&mut Turn<'_, T::Socket>, bool) -> Attempt<Result<R, WsaError>>,
    ) -> Result<R, WsaError> {
        let lease = self.lease(socket)?;
        let mut retried = false;
        loop {
            let mut turn = lease.enter();
            if let Attempt::Done(result) = attempt(&mut turn, retried) {
                return result;
            }
            let released = turn.release();
            if !released.processed {
                lease.wait_changed(released.epoch, None);
            }
            retried = true;
        }
    }

    /// A new entry whose turn is held, and the notifier its socket will use.
    fn entry(&self, protocol: &Protocol) -> (Held<T::Socket>, Notifier) {
        let entry = Held::new(
            Arc::clone(&self.shared),
            State::new(protocol, Arc::clone(&self.shared.sink)),
        );
        let notifier = entry.notifier();
        (entry, notifier)
    }

    /// Gives `socket` a handle and installs it in its entry (whose turn `turn` is).
    fn install(
        &self,
        entry: &Held<T::Socket>,
        turn: &mut Turn<'_, T::Socket>,
        socket: T::Socket,
    ) -> Result<SocketHandle, WsaError> {
        match self.table.insert(entry.clone(), ()) {
            Ok(handle) => {
                let handle = SocketHandle::from_raw(handle.raw());
                turn.handle = handle;
                turn.socket = Some(socket);
                Ok(handle)
            }
            Err(_) => {
                let mut socket = socket;
                let _ = guarded("reset", || socket.reset());
                let _ = guarded("close", || socket.close());
                turn.closed = true;
                Err(WsaError::WSAEMFILE)
            }
        }
    }

    /// `WSPSocket`: a socket of the `protocol`-th protocol.
    pub fn socket(&self, protocol: usize) -> Result<SocketHandle, WsaError> {
        let protocol = self
            .protocols
            .get(protocol)
            .ok_or(WsaError::WSAEPROTONOSUPPORT)?;
        let (entry, notifier) = self.entry(protocol);
        let mut turn = entry.adopt();
        let socket = match guarded("open", || self.transport.open(protocol, notifier)) {
            Ok(Ok(socket)) => socket,
            Ok(Err(error)) | Err(error) => return Err(error),
        };
        self.install(&entry, &mut turn, socket)
    }

    /// `WSPBind`.
    pub fn bind(&self, socket: SocketHandle, address: &Address) -> Result<(), WsaError> {
        self.with(socket, |turn| {
            turn.check_open()?;
            if turn.phase != Phase::Open {
                return Err(WsaError::WSAEINVAL);
            }
            let socket = turn.socket.as_mut().ok_or(WsaError::WSAENOTSOCK)?;
            guarded("bind", || socket.bind(address))??;
            turn.phase = Phase::Bound;
            Ok(())
        })
    }

    /// `WSPListen`.
    pub fn listen(&self, socket: SocketHandle, backlog: usize) -> Result<(), WsaError> {
        self.with(socket, |turn| {
            turn.check_open()?;
            match turn.phase {
                Phase::Bound | Phase::Listening => {}
                Phase::Connected => return Err(WsaError::WSAEISCONN),
                _ => return Err(WsaError::WSAEINVAL),
            }
            let socket = turn.socket.as_mut().ok_or(WsaError::WSAENOTSOCK)?;
            guarded("listen", || socket.listen(backlog))??;
            turn.phase = Phase::Listening;
            turn.accept_armed();
            Ok(())
        })
    }

    /// `WSPConnect`: connected when it returns `Ok` (`FD_CONNECT` and `FD_WRITE` follow, if
    /// selected).
    pub fn connect(&self, socket: SocketHandle, address: &Address) -> Result<(), WsaError> {
        self.with(socket, |turn| {
            turn.check_open()?;
            match turn.phase {
                Phase::Open | Phase::Bound => {}
                Phase::Connected => return Err(WsaError::WSAEISCONN),
                _ => return Err(WsaError::WSAEINVAL),
            }
            let socket = turn.socket.as_mut().ok_or(WsaError::WSAENOTSOCK)?;
            guarded("connect", || socket.connect(address))??;
            turn.connected();
            Ok(())
        })
    }

    /// `WSPAccept`: a connected socket with the listener's options and selected events. A
    /// non-blocking listener with nothing to accept: `WSAEWOULDBLOCK`; a blocking one waits.
    pub fn accept(&self, socket: SocketHandle) -> Result<SocketHandle, WsaError> {
        self.blocking(socket, |listener, retried| {
            if listener.closed {
                return Attempt::Done(Err(State::<T::Socket>::closed_error(retried)));
            }
            if listener.phase != Phase::Listening {
                return Attempt::Done(Err(WsaError::WSAEINVAL));
            }
            listener.accept_armed();
            // The protocol of the listener: the accepted socket's kind and options are its.
            let protocol = listener.protocol().clone();
            let (entry, notifier) = self.entry(&protocol);
            let mut turn = entry.adopt();
            let Some(socket) = listener.socket.as_mut() else {
                return Attempt::Done(Err(WsaError::WSAENOTSOCK));
            };
            let accepted = match guarded("accept", || socket.accept(notifier)) {
                Ok(Ok(Some(accepted))) => accepted,
                Ok(Ok(None)) => {
                    return match listener.non_blocking {
                        true => Attempt::Done(Err(WsaError::WSAEWOULDBLOCK)),
                        false => Attempt::Wait,
                    };
                }
                Ok(Err(error)) | Err(error) => return Attempt::Done(Err(error)),
            };
            turn.inherit(listener);
            let installed = self.install(&entry, &mut turn, accepted);
            if installed.is_ok() {
                turn.connected();
            }
            Attempt::Done(installed)
        })
    }

    /// `WSPSend` of `data` (copied before this returns). Overlapped: [`Transfer::Complete`]
    /// with the completion already delivered, or [`Transfer::Pending`] and exactly one
    /// completion; any error, no completion ever (R-WSP-16). Otherwise a non-blocking socket
    /// sends what it can (`WSAEWOULDBLOCK` for nothing), a blocking one all of it.
    pub fn send(
        &self,
        socket: SocketHandle,
        data: &[u8],
        overlapped: Option<Overlapped>,
    ) -> Result<Transfer, WsaError> {
        let mut offset = 0;
        self.blocking(socket, |turn, retried| {
            turn.send(data, &mut offset, overlapped, retried)
        })
    }

    /// `WSPRecv` into a buffer of `capacity` bytes. Overlapped: as [`send`](Self::send).
    /// Otherwise a non-blocking socket answers `WSAEWOULDBLOCK` when nothing has arrived, a
    /// blocking one waits. The end of the connection reads as 0 bytes on a byte stream and
    /// `WSAEDISCON` on a message-oriented socket, `WSAECONNRESET` after a reset (R-WSP-10); a
    /// message longer than the buffer is [`Transferred::truncated`](crate::Transferred).
    pub fn recv(
        &self,
        socket: SocketHandle,
        capacity: usize,
        overlapped: Option<Overlapped>,
    ) -> Result<Transfer, WsaError> {
        self.blocking(socket, |turn, retried| {
            turn.recv(capacity, overlapped, retried)
        })
    }

    /// `WSPShutdown(s, how)`: `WSAEINVAL` for a `how` outside `SD_*`, `WSAENOTCONN` on a socket
    /// that is not connected (R-WSP-5); never waits (R-WSP-6).
    pub fn shutdown(&self, socket: SocketHandle, how: i32) -> Result<(), WsaError> {
        self.with(socket, |turn| turn.shutdown(how))
    }

    /// `WSPSendDisconnect(s, data)`: `WSAENOPROTOOPT` for data the protocol cannot carry
    /// (R-WSP-20); never waits (R-WSP-6).
    pub fn send_disconnect(
        &self,
        socket: SocketHandle,
        data: Option<&[u8]>,
    ) -> Result<(), WsaError> {
        self.with(socket, |turn| turn.send_disconnect(data))
    }

    /// `WSPRecvDisconnect(s, buffer)`: the peer's disconnect data, if a buffer of `capacity`
    /// was given and holds it (`WSAEFAULT` if it is too short, `WSAENOPROTOOPT` if the protocol
    /// has none, R-WSP-20); never waits (R-WSP-6).
    pub fn recv_disconnect(
        &self,
        socket: SocketHandle,
        capacity: Option<usize>,
    ) -> Result<Vec<u8>, WsaError> {
        self.with(socket, |turn| turn.recv_disconnect(capacity))
    }

    /// `SO_LINGER` / `SO_DONTLINGER`.
    pub fn set_linger(&self, socket: SocketHandle, linger: Linger) -> Result<(), WsaError> {
        self.with(socket, |turn| {
            turn.check_open()?;
            turn.linger = linger;
            Ok(())
        })
    }

    /// The linger option.
    pub fn linger(&self, socket: SocketHandle) -> Result<Linger, WsaError> {
        self.with(socket, |turn| {
            turn.check_open()?;
            Ok(turn.linger)
        })
    }

    /// `FIONBIO`.
    pub fn set_non_blocking(
        &self,
        socket: SocketHandle,
        non_blocking: bool,
    ) -> Result<(), WsaError> {
        self.with(socket, |turn| {
            turn.check_open()?;
            turn.non_blocking = non_blocking;
            Ok(())
        })
    }

    /// The network events the host wants (`WSPEventSelect` / `WSPAsyncSelect`'s `lNetworkEvents`;
    /// the ABI layer keeps where they go). Conditions that already hold are reported at once.
    pub fn select_events(
        &self,
        socket: SocketHandle,
        events: NetworkEvents,
    ) -> Result<(), WsaError> {
        self.with(socket, |turn| turn.select(events))
    }

    /// Overlapped operations pending on the socket.
    pub fn pending(&self, socket: SocketHandle) -> Result<usize, WsaError> {
        self.with(socket, |turn| {
            turn.check_open()?;
            Ok(turn.pending())
        })
    }

    /// `WSPCloseSocket`, by the linger option:
    ///
    /// - a non-blocking socket lingering with a timeout whose data has not all left:
    ///   `WSAEWOULDBLOCK`, and nothing changes — the handle stays valid, nothing starts
    ///   (R-WSP-13);
    /// - otherwise the handle is retired (later use: `WSAENOTSOCK`), every pending overlapped
    ///   operation completes with `WSA_OPERATION_ABORTED` through its own mechanism, and no
    ///   network event of the socket follows (R-WSP-14); then
    /// - `SO_DONTLINGER`: a graceful close (FIN after the data already taken) that the
    ///   transport finishes in the background; returns at once (R-WSP-12);
    /// - `SO_LINGER {1, 0}`: a reset; returns at once (R-WSP-11);
    /// - `SO_LINGER {1, n}` on a blocking socket: a graceful close, waiting up to `n` for the
    ///   data to leave, then a reset if it has not (R-WSP-13).
    pub fn close(&self, socket: SocketHandle) -> Result<(), WsaError> {
        let lease = self.lease(socket)?;
        let mut turn = lease.enter();
        turn.check_open()?;
        if turn.close_would_block() {
            return Err(WsaError::WSAEWOULDBLOCK);
        }
        let _ = self.table.remove(socket.raw());
        turn.closed = true;
        turn.abort_pending();
        if turn.connection_live() {
            match turn.linger {
                Linger::DontLinger => {
                    let _ = turn.fin_now();
                }
                linger if linger.is_abortive() => turn.reset_connection(),
                Linger::Linger(timeout) => {
                    let _ = turn.fin_now();
                    let deadline = Instant::now() + timeout;
                    while turn.unsent() > 0 {
                        if !turn.wait_ready(deadline) {
                            turn.reset_connection();
                            break;
                        }
                    }
                }
            }
        }
        if let Some(socket) = turn.socket.take() {
            let _ = guarded("close", || socket.close());
        }
        Ok(())
    }

    /// The final `WSPCleanup` of the process: every open socket is reset and freed as if
    /// closed, its pending overlapped operations cancelled without any completion (no event, no
    /// completion routine) and its blocking calls interrupted; returns when no socket state is
    /// left, so the DLL may be unloaded (R-WSP-15). The runtime can be used again afterwards.
    pub fn cleanup(&self) {
        // Every socket is closed first, so that no reset of one connection reaches the other
        // end as anything but a closed socket: blocked calls see the cleanup (`WSAEINTR`).
        let mut closed = Vec::new();
        for (handle, lease) in self.table.snapshot() {
            if self.table.remove(handle.raw()).is_err() {
                continue; // closed meanwhile
            }
            let mut turn = lease.enter();
            if turn.closed {
                continue;
            }
            turn.closed = true;
            turn.drop_pending();
            let live = turn.connection_live();
            if let Some(socket) = turn.socket.take() {
                closed.push((live, socket));
            }
        }
        for (live, mut socket) in closed {
            if live {
                let _ = guarded("reset", || socket.reset());
            }
            let _ = guarded("close", || socket.close());
        }
        self.shared.wait_until_gone();
    }
}

impl<T: Transport> std::fmt::Debug for Runtime<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("sockets", &self.sockets())
            .field("alive", &self.alive())
            .finish_non_exhaustive()
    }
}
