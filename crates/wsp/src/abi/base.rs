//! [`Base`]: a base (transport) provider's [`Dispatch`] — the portable [`Runtime`] behind the
//! proc table, its notices routed to ws2_32's mechanisms.
//!
//! A base provider built on this crate is a *non-IFS* provider (interfaces.md §4.3): its socket
//! handles are made by ws2_32 with `WPUCreateSocketHandle`, whose context value is the runtime's
//! own handle, so every call finds its socket with one `WPUQuerySocketHandleContext` (O(1), on
//! ws2_32's side) and one lock-free lease of the runtime's table. Such a provider must not set
//! `XP1_IFS_HANDLES` in its catalog entries (R-WSP-19).
//!
//! Where each [`Notice`] goes:
//!
//! - an overlapped completion: a receive's data is first copied into the caller's buffers
//!   (kept, from the call, in the operation's entry), then the `WSAOVERLAPPED` gets the
//!   provider's half of the convention (`Offset` = flags, `OffsetHigh` = the error); then,
//!   - without a completion routine, `WPUCompleteOverlappedRequest` (an export of ws2_32, not
//!     in the upcall table) sets `InternalHigh` = bytes, `Internal` ≠
//!     `WSS_OPERATION_IN_PROGRESS`, and signals the event or posts to the completion port the
//!     handle is bound to;
//!   - with a routine, the provider writes `InternalHigh` then `Internal` itself and queues the
//!     routine to the initiating thread with `WPUQueueApc`, through the copy of its
//!     `WSATHREADID` (R-WSP-17);
//! - a network event: to the event of `WSPEventSelect` (recorded for `WSPEnumNetworkEvents`,
//!   then `WPUSetEvent`), or to the window of `WSPAsyncSelect` (`WPUPostMessage` with
//!   `WSAMAKESELECTREPLY(event, error)`).
//!
//! The runtime delivers a socket's notices in order while its turn is held, and nothing after
//! its close returned (R-WSP-14) or once the final cleanup started (R-WSP-15): the routing adds
//! no lock the runtime waits on (its own locks are leaves), so it cannot reorder or deadlock.

use super::complete::{CompleteOverlapped, Completer, mark_pending, read_result};
use super::decode::{
    How, Overlapped, OverlappedRecv, ProtocolInfo, RecvBuffers, SendData, ServiceFlags, SockOpt,
    Socket,
};
use super::dispatch::{
    Accepted, Dispatch, NetworkEvents as RawEvents, OverlappedResult, RecvIo, Transfer,
};
use super::upcalls::{Host, Upcalls};
use crate::host::{
    Linger, Mechanism, NetworkEvents, Notice, Overlapped as Request, SocketHandle, ThreadToken,
    Transfer as Outcome,
};
use crate::provider::{Address, SocketKind, Transport};
use crate::runtime::Runtime;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;
use winprov_bindings::not_in_metadata::FIONBIO;
use winprov_bindings::ws2spi::{SO_DONTLINGER, SO_LINGER, SOL_SOCKET, WSAPROTOCOL_INFOW};
use winprov_core::{HostSink, WsaError};

/// A base (transport) provider: the runtime over the author's [`Transport`], as the proc
/// table's [`Dispatch`]: a non-IFS provider whose handles are `WPUCreateSocketHandle`'s and
/// whose completions go to ws2_32's mechanisms (see the crate's documentation).
///
/// ```text
/// winprov_wsp::export_provider!(transport: MyTransport, MyTransport::new);
/// ```
pub struct Base<T: Transport> {
    runtime: Runtime<T>,
    router: Arc<Router>,
}

impl<T: Transport> Base<T> {
    /// A provider serving `transport`. Its overlapped completions go to ws2_32's
    /// `WPUCompleteOverlappedRequest` on Windows; elsewhere (and when that call fails) the
    /// provider completes the `WSAOVERLAPPED` itself and sets its event.
    pub fn new(transport: T) -> Self {
        let router = Arc::new(Router::default());
        let sink: crate::NoticeSink = Arc::clone(&router) as crate::NoticeSink;
        Self {
            runtime: Runtime::new(transport, sink),
            router,
        }
    }

    /// Completes overlapped requests through `complete` instead of ws2_32's export: for a host
    /// simulator, which plays ws2_32 (`testing::winsock`).
    pub fn completing_with(self, complete: CompleteOverlapped) -> Self {
        self.router.completer.set(complete);
        self
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime<T> {
        &self.runtime
    }

    /// Host handles the provider holds (made by `WPUCreateSocketHandle`, not closed yet).
    pub fn handles(&self) -> usize {
        lock(&self.router.routes).len()
    }

    /// Overlapped operations issued and not completed yet.
    pub fn pending_operations(&self) -> usize {
        lock(&self.router.ops).len()
    }

    /// The socket behind a host handle: its `WPUCreateSocketHandle` context.
    fn resolve(&self, socket: Socket) -> Result<SocketHandle, WsaError> {
        let upcalls = self.router.upcalls()?;
        match upcalls.query_socket_handle_context(socket) {
            Ok(context) if context != 0 => Ok(SocketHandle::from_raw(context)),
            _ => Err(WsaError::WSAENOTSOCK),
        }
    }

    /// The index of the transport's protocol a `WSPSocket` asks for: by `szProtocol` when the
    /// host passes the catalog entry, else the first protocol of the socket type.
    fn protocol_index(
        &self,
        socket_type: i32,
        info: Option<&ProtocolInfo>,
    ) -> Result<usize, WsaError> {
        let protocols = self.runtime.protocols();
        if let Some(info) = info
            && let Some(index) = protocols.iter().position(|p| p.name == info.name())
        {
            return Ok(index);
        }
        let kind = match socket_type {
            1 => SocketKind::Stream,      // SOCK_STREAM
            5 | 4 => SocketKind::Message, // SOCK_SEQPACKET, SOCK_RDM
            0 => {
                return protocols
                    .first()
                    .map(|_| 0)
                    .ok_or(WsaError::WSAEPROTONOSUPPORT);
            }
            _ => return Err(WsaError::WSAESOCKTNOSUPPORT),
        };
        protocols
            .iter()
            .position(|p| p.kind == kind)
            .ok_or(WsaError::WSAESOCKTNOSUPPORT)
    }

    /// Gives the runtime's socket `handle` a host handle of catalog entry `catalog`, and its
    /// route; on failure the socket is reset and closed.
    fn publish(
        &self,
        handle: SocketHandle,
        catalog: u32,
        select: Select,
    ) -> Result<Socket, WsaError> {
        let created = self
            .router
            .upcalls()
            .and_then(|u| u.create_socket_handle(catalog, handle.raw()));
        match created {
            Ok(socket) => {
                self.router.install(handle, socket, catalog, select);
                Ok(socket)
            }
            Err(error) => {
                let _ = self
                    .runtime
                    .set_linger(handle, Linger::Linger(Duration::ZERO));
                let _ = self.runtime.close(handle);
                self.router.forget(handle);
                Err(error)
            }
        }
    }

    /// An overlapped send or receive: its entry made before the runtime sees it (its
    /// completion may come from another thread before the call returns), dropped again if the
    /// call fails (no completion will ever come, R-WSP-16).
    fn overlapped(
        &self,
        socket: Socket,
        request: Overlapped,
        buffers: Option<OverlappedRecv>,
        run: impl FnOnce(Request) -> Result<Outcome, WsaError>,
    ) -> Result<Transfer, WsaError> {
        let id = request.address();
        let seq;
        let mechanism = match (request.routine(), request.thread()) {
            (Some(routine), Some(thread)) => Mechanism::Routine {
                routine: routine as usize,
                thread: ThreadToken {
                    handle: thread.handle,
                    reserved: thread.reserved,
                },
            },
            _ => Mechanism::Signal,
        };
        {
            let mut ops = lock(&self.router.ops);
            if ops.get(&id).is_some_and(|op| !op.completing) {
                // The caller reused a `WSAOVERLAPPED` still in flight.
                return Err(WsaError::WSAEINVAL);
            }
            // SAFETY: the host's `WSAOVERLAPPED`, checked non-null and aligned by the export
            // and left to the provider until the request completes (the overlapped contract).
            unsafe { mark_pending(id) };
            seq = self.router.seq.fetch_add(1, Ordering::Relaxed);
            ops.insert(
                id,
                Op {
                    seq,
                    socket,
                    request,
                    buffers,
                    completing: false,
                },
            );
        }
        match run(Request { id, mechanism }) {
            Ok(Outcome::Complete(done)) => Ok(Transfer::Done {
                bytes: u32::try_from(done.bytes).unwrap_or(u32::MAX),
                flags: 0,
            }),
            Ok(Outcome::Pending) => Ok(Transfer::Pending),
            Err(error) => {
                self.router.settled(id, seq);
                Err(error)
            }
        }
    }
}

impl<T: Transport> std::fmt::Debug for Base<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Base")
            .field("runtime", &self.runtime)
            .field("pending_operations", &self.pending_operations())
            .finish()
    }
}

/// A catalog entry this provider may serve: its handles come from `WPUCreateSocketHandle`, so
/// an entry declaring `XP1_IFS_HANDLES` is a wrong installation, refused (R-WSP-19) rather than
/// served with handles that are not what ws2_32 was told.
fn non_ifs(protocol: &ProtocolInfo) -> Result<(), WsaError> {
    if protocol.service_flags().contains(ServiceFlags::IFS_HANDLES) {
        tracing::error!(
            catalog_entry = protocol.catalog_entry_id(),
            "a catalog entry declares XP1_IFS_HANDLES for a provider whose handles are \
             WPUCreateSocketHandle's"
        );
        return Err(WsaError::WSAEPROVIDERFAILEDINIT);
    }
    Ok(())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section below leaves its map consistent before anything can panic.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn bytes_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Where a socket's network events go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Select {
    /// Nowhere.
    #[default]
    None,
    /// `WSPEventSelect`.
    Event(isize),
    /// `WSPAsyncSelect`.
    Window { hwnd: usize, message: u32 },
}

/// A socket's host side.
#[derive(Debug)]
struct Route {
    socket: Socket,
    catalog: u32,
    select: Select,
    /// Events recorded for `WSPEnumNetworkEvents`.
    recorded: RawEvents,
    /// `l_linger` as last set, for `SO_DONTLINGER = FALSE`.
    linger_seconds: u16,
}

/// An overlapped request in flight.
#[derive(Debug)]
struct Op {
    /// Which request of this `WSAOVERLAPPED` (the caller may reuse the structure as soon as it
    /// sees the completion, before the entry of the completed request is gone).
    seq: u64,
    socket: Socket,
    request: Overlapped,
    /// A receive's buffers.
    buffers: Option<OverlappedRecv>,
    /// Its completion is being delivered: the host may see it before the entry is gone.
    completing: bool,
}

/// A network event and its error.
type Event = (NetworkEvents, Option<WsaError>);

/// The runtime's sink: routes notices to the host's mechanisms.
#[derive(Default)]
struct Router {
    host: OnceLock<Host<'static>>,
    /// The catalog entry of the first `WSPStartup`, for a `WSPSocket` that names none.
    catalog: AtomicU32,
    completer: Completer,
    routes: Mutex<HashMap<usize, Route>>,
    /// Network events of sockets whose route is not installed yet (an accepted socket's first
    /// events are reported inside `accept`).
    early: Mutex<HashMap<usize, Vec<Event>>>,
    ops: Mutex<HashMap<usize, Op>>,
    /// The next request's `Op::seq`.
    seq: AtomicU64,
    done: Condvar,
}

impl Router {
    fn upcalls(&self) -> Result<Upcalls, WsaError> {
        self.host
            .get()
            .ok_or(WsaError::WSANOTINITIALISED)?
            .upcalls()
    }

    fn install(&self, handle: SocketHandle, socket: Socket, catalog: u32, select: Select) {
        lock(&self.routes).insert(
            handle.raw(),
            Route {
                socket,
                catalog,
                select,
                recorded: RawEvents::default(),
                linger_seconds: 0,
            },
        );
        let early = lock(&self.early).remove(&handle.raw()).unwrap_or_default();
        for (event, error) in early {
            self.network(handle, event, error);
        }
    }

    fn forget(&self, handle: SocketHandle) -> Option<Route> {
        lock(&self.early).remove(&handle.raw());
        lock(&self.routes).remove(&handle.raw())
    }

    fn route<R>(&self, handle: SocketHandle, f: impl FnOnce(&mut Route) -> R) -> Option<R> {
        lock(&self.routes).get_mut(&handle.raw()).map(f)
    }

    fn network(&self, handle: SocketHandle, event: NetworkEvents, error: Option<WsaError>) {
        let code = error.map_or(0, WsaError::raw);
        let target = {
            let mut routes = lock(&self.routes);
            let Some(route) = routes.get_mut(&handle.raw()) else {
                drop(routes);
                lock(&self.early)
                    .entry(handle.raw())
                    .or_default()
                    .push((event, error));
                return;
            };
            if let Select::Event(_) = route.select {
                route.recorded.events |= event.raw() as i32;
                let bit = event.raw().trailing_zeros() as usize;
                if let Some(slot) = route.recorded.errors.get_mut(bit) {
                    *slot = code;
                }
            }
            (route.select, route.socket)
        };
        let Ok(upcalls) = self.upcalls() else {
            return;
        };
        match target {
            (Select::None, _) => {}
            (Select::Event(event_handle), _) => {
                if let Err(error) = upcalls.set_event(event_handle) {
                    tracing::warn!(%error, "WPUSetEvent failed");
                }
            }
            (Select::Window { hwnd, message }, socket) => {
                // WSAMAKESELECTREPLY(event, error).
                let lparam = ((code as u32 & 0xffff) << 16 | (event.raw() & 0xffff)) as isize;
                if !upcalls.post_message(hwnd, message, socket.raw(), lparam) {
                    tracing::warn!("WPUPostMessage failed");
                }
            }
        }
    }

    fn complete(&self, op: usize, bytes: usize, error: Option<WsaError>, data: &[u8]) {
        let Some((seq, socket, request, buffers)) = lock(&self.ops)
            .get_mut(&op)
            .filter(|entry| !entry.completing)
            .map(|entry| {
                entry.completing = true;
                (entry.seq, entry.socket, entry.request, entry.buffers.take())
            })
        else {
            tracing::error!(op, "a completion for no operation in flight");
            return;
        };
        let bytes = match buffers {
            Some(mut buffers) => {
                buffers.fill(&data[..bytes.min(data.len())]);
                let (_, filled) = buffers.finish();
                filled as usize
            }
            None => bytes,
        };
        let (code, count) = (error.map_or(0, WsaError::raw) as u32, bytes_u32(bytes));
        // SAFETY: the request's `WSAOVERLAPPED`, the provider's until this completion, which
        // the entry's `completing` makes the only one.
        unsafe {
            self.completer
                .deliver(self.upcalls(), socket, &request, code, count, 0)
        };
        self.settled(op, seq);
    }

    /// Forgets request `seq` of the `WSAOVERLAPPED` at `op` (not a newer one the caller made
    /// with the same structure after seeing this one's completion), and wakes the waits.
    fn settled(&self, op: usize, seq: u64) {
        let mut ops = lock(&self.ops);
        if ops.get(&op).is_some_and(|entry| entry.seq == seq) {
            ops.remove(&op);
        }
        drop(ops);
        self.done.notify_all();
    }
}

impl HostSink<Notice> for Router {
    fn deliver(&self, notice: Notice) {
        match notice {
            Notice::Overlapped {
                op,
                bytes,
                error,
                data,
                ..
            } => self.complete(op, bytes, error, &data),
            Notice::Network {
                socket,
                event,
                error,
            } => self.network(socket, event, error),
        }
    }
}

impl<T: Transport> Dispatch for Base<T> {
    fn first_startup(&self, host: &Host<'static>, protocol: &ProtocolInfo) -> Result<(), WsaError> {
        non_ifs(protocol)?;
        let _ = self.router.host.set(*host);
        self.router
            .catalog
            .store(protocol.catalog_entry_id(), Ordering::Relaxed);
        Ok(())
    }

    fn final_cleanup(&self, _: &Host<'_>) {
        // Cancels without any completion and waits until no socket state is left (R-WSP-15);
        // the operations' buffers are dropped unwritten, the host handles released.
        self.runtime.cleanup();
        lock(&self.router.ops).clear();
        self.router.done.notify_all();
        lock(&self.router.early).clear();
        let routes: Vec<Route> = lock(&self.router.routes).drain().map(|(_, r)| r).collect();
        if let Ok(upcalls) = self.router.upcalls() {
            for route in routes {
                let _ = upcalls.close_socket_handle(route.socket);
            }
        }
    }

    fn knows_socket(&self, socket: Socket) -> bool {
        self.resolve(socket).is_ok()
    }

    fn accept(
        &self,
        _: &Host<'_>,
        socket: Socket,
        _condition: winprov_bindings::ws2spi::LPCONDITIONPROC,
        _callback_data: usize,
    ) -> Result<Accepted, WsaError> {
        let listener = self.resolve(socket)?;
        let (catalog, select) = self
            .router
            .route(listener, |r| (r.catalog, r.select))
            .ok_or(WsaError::WSAENOTSOCK)?;
        let accepted = self.runtime.accept(listener)?;
        let socket = self.publish(accepted, catalog, select)?;
        Ok(Accepted {
            socket,
            address: Vec::new(),
        })
    }

    fn async_select(
        &self,
        _: &Host<'_>,
        socket: Socket,
        window: usize,
        message: u32,
        events: i32,
    ) -> Result<(), WsaError> {
        let handle = self.resolve(socket)?;
        let select = match events {
            0 => Select::None,
            _ => Select::Window {
                hwnd: window,
                message,
            },
        };
        self.router.route(handle, |r| r.select = select);
        self.runtime.set_non_blocking(handle, true)?;
        self.runtime
            .select_events(handle, NetworkEvents::from_raw(events as u32))
    }

    fn bind(&self, _: &Host<'_>, socket: Socket, name: &[u8]) -> Result<(), WsaError> {
        self.runtime
            .bind(self.resolve(socket)?, &Address::new(name.to_vec()))
    }

    fn close_socket(&self, _: &Host<'_>, socket: Socket) -> Result<(), WsaError> {
        let handle = self.resolve(socket)?;
        self.runtime.close(handle)?;
        // Nothing of the socket reaches the sink after the close returned (R-WSP-14).
        self.router.forget(handle);
        if let Err(error) = self
            .router
            .upcalls()
            .and_then(|u| u.close_socket_handle(socket))
        {
            tracing::warn!(%error, "WPUCloseSocketHandle failed");
        }
        Ok(())
    }

    fn connect(
        &self,
        _: &Host<'_>,
        socket: Socket,
        name: &[u8],
        caller_data: Option<&[u8]>,
        _callee_capacity: Option<u32>,
        _sqos: Option<winprov_bindings::ws2spi::QOS>,
        _gqos: Option<winprov_bindings::ws2spi::QOS>,
    ) -> Result<Vec<u8>, WsaError> {
        let handle = self.resolve(socket)?;
        if caller_data.is_some_and(|d| !d.is_empty()) {
            // Connect data is not part of the transport API.
            return Err(WsaError::WSAENOPROTOOPT);
        }
        self.runtime.connect(handle, &Address::new(name.to_vec()))?;
        Ok(Vec::new())
    }

    fn enum_network_events(
        &self,
        _: &Host<'_>,
        socket: Socket,
        event: isize,
    ) -> Result<RawEvents, WsaError> {
        let handle = self.resolve(socket)?;
        let recorded = self
            .router
            .route(handle, |r| std::mem::take(&mut r.recorded))
            .ok_or(WsaError::WSAENOTSOCK)?;
        if event != 0 {
            self.router.upcalls()?.reset_event(event)?;
        }
        Ok(recorded)
    }

    fn event_select(
        &self,
        _: &Host<'_>,
        socket: Socket,
        event: isize,
        events: i32,
    ) -> Result<(), WsaError> {
        let handle = self.resolve(socket)?;
        let select = match events {
            0 => Select::None,
            _ => Select::Event(event),
        };
        self.router.route(handle, |r| {
            r.select = select;
            r.recorded = RawEvents::default();
        });
        self.runtime.set_non_blocking(handle, true)?;
        self.runtime
            .select_events(handle, NetworkEvents::from_raw(events as u32))
    }

    fn get_overlapped_result(
        &self,
        _: &Host<'_>,
        socket: Socket,
        overlapped: usize,
        wait: bool,
    ) -> Result<OverlappedResult, WsaError> {
        self.resolve(socket)?;
        let mut ops = lock(&self.router.ops);
        let (bytes, flags, error) = loop {
            // A request whose completion is being delivered is complete as soon as its
            // structure says so (the host may see the completion, and ask, before the entry
            // is gone).
            let pending = ops.get(&overlapped).is_some_and(|entry| !entry.completing);
            if !pending {
                // SAFETY: the caller's `WSAOVERLAPPED`, checked non-null and aligned by the
                // export.
                match unsafe { read_result(overlapped) } {
                    Some(result) => break result,
                    // Not a request of this provider, or not completed by it.
                    None if !ops.contains_key(&overlapped) => {
                        return Err(WsaError::WSA_IO_INCOMPLETE);
                    }
                    None => {}
                }
            }
            if !wait {
                return Err(WsaError::WSA_IO_INCOMPLETE);
            }
            ops = self
                .router
                .done
                .wait(ops)
                .unwrap_or_else(|p| p.into_inner());
        };
        drop(ops);
        match error {
            0 => Ok(OverlappedResult { bytes, flags }),
            code => Err(WsaError::from_raw(code as i32)),
        }
    }

    fn get_sock_opt(
        &self,
        _: &Host<'_>,
        socket: Socket,
        level: i32,
        name: i32,
    ) -> Result<Vec<u8>, WsaError> {
        let handle = self.resolve(socket)?;
        if level != SOL_SOCKET || (name != SO_LINGER && name != SO_DONTLINGER) {
            return Err(WsaError::WSAENOPROTOOPT);
        }
        let linger = self.runtime.linger(handle)?;
        match (level, name) {
            (SOL_SOCKET, SO_LINGER) => {
                let seconds = self.router.route(handle, |r| r.linger_seconds).unwrap_or(0);
                let raw = match linger {
                    Linger::DontLinger => super::decode::Linger { on: false, seconds },
                    Linger::Linger(timeout) => super::decode::Linger {
                        on: true,
                        seconds: u16::try_from(timeout.as_secs()).unwrap_or(u16::MAX),
                    },
                };
                Ok(raw.to_bytes().to_vec())
            }
            (SOL_SOCKET, SO_DONTLINGER) => Ok(i32::from(linger == Linger::DontLinger)
                .to_ne_bytes()
                .to_vec()),
            _ => Err(WsaError::WSAENOPROTOOPT),
        }
    }

    fn ioctl(
        &self,
        _: &Host<'_>,
        socket: Socket,
        code: u32,
        input: &[u8],
        _output_capacity: u32,
        overlapped: Option<Overlapped>,
    ) -> Result<Vec<u8>, WsaError> {
        let handle = self.resolve(socket)?;
        if overlapped.is_some() {
            // No ioctl of this provider is overlapped.
            return Err(WsaError::WSAEOPNOTSUPP);
        }
        match code {
            FIONBIO => {
                let raw = input.get(..4).ok_or(WsaError::WSAEFAULT)?;
                let non_blocking = u32::from_ne_bytes([raw[0], raw[1], raw[2], raw[3]]) != 0;
                let selected = self
                    .router
                    .route(handle, |r| r.select != Select::None)
                    .unwrap_or(false);
                if !non_blocking && selected {
                    // "WSAEINVAL: the socket has an outstanding WSPAsyncSelect or
                    // WSPEventSelect" (documented for FIONBIO).
                    return Err(WsaError::WSAEINVAL);
                }
                self.runtime.set_non_blocking(handle, non_blocking)?;
                Ok(Vec::new())
            }
            _ => Err(WsaError::WSAEOPNOTSUPP),
        }
    }

    fn listen(&self, _: &Host<'_>, socket: Socket, backlog: i32) -> Result<(), WsaError> {
        let backlog = usize::try_from(backlog.max(1)).unwrap_or(1);
        self.runtime.listen(self.resolve(socket)?, backlog)
    }

    fn recv(
        &self,
        _: &Host<'_>,
        socket: Socket,
        io: RecvIo<'_>,
        _flags: u32,
    ) -> Result<Transfer, WsaError> {
        let handle = self.resolve(socket)?;
        match io {
            RecvIo::Blocking(buffers) => self.recv_now(handle, buffers),
            RecvIo::Overlapped(op) => {
                let capacity = usize::try_from(op.capacity()).unwrap_or(usize::MAX);
                let request = *op.overlapped();
                self.overlapped(socket, request, Some(op), |request| {
                    self.runtime.recv(handle, capacity, Some(request))
                })
            }
        }
    }

    fn recv_disconnect(
        &self,
        _: &Host<'_>,
        socket: Socket,
        capacity: Option<u32>,
    ) -> Result<Vec<u8>, WsaError> {
        self.runtime
            .recv_disconnect(self.resolve(socket)?, capacity.map(|c| c as usize))
    }

    fn recv_from(
        &self,
        host: &Host<'_>,
        socket: Socket,
        io: RecvIo<'_>,
        flags: u32,
    ) -> Result<(Transfer, Vec<u8>), WsaError> {
        // Connection-oriented: the sender is the peer, whose address the transport keeps.
        self.recv(host, socket, io, flags).map(|t| (t, Vec::new()))
    }

    fn send(
        &self,
        _: &Host<'_>,
        socket: Socket,
        data: SendData<'_>,
        _flags: u32,
        overlapped: Option<Overlapped>,
    ) -> Result<Transfer, WsaError> {
        let handle = self.resolve(socket)?;
        // The runtime copies what it keeps before the call returns (R-WSP-17); only a gather of
        // several buffers is joined here.
        let data: std::borrow::Cow<'_, [u8]> = match data.slices() {
            [one] => std::borrow::Cow::Borrowed(one),
            _ => std::borrow::Cow::Owned(data.to_vec()),
        };
        match overlapped {
            None => match self.runtime.send(handle, &data, None)? {
                Outcome::Complete(done) => Ok(Transfer::Done {
                    bytes: bytes_u32(done.bytes),
                    flags: 0,
                }),
                Outcome::Pending => Err(WsaError::WSASYSCALLFAILURE),
            },
            Some(request) => self.overlapped(socket, request, None, |request| {
                self.runtime.send(handle, &data, Some(request))
            }),
        }
    }

    fn send_disconnect(
        &self,
        _: &Host<'_>,
        socket: Socket,
        data: Option<&[u8]>,
    ) -> Result<(), WsaError> {
        self.runtime.send_disconnect(self.resolve(socket)?, data)
    }

    fn send_to(
        &self,
        host: &Host<'_>,
        socket: Socket,
        data: SendData<'_>,
        flags: u32,
        _to: &[u8],
        overlapped: Option<Overlapped>,
    ) -> Result<Transfer, WsaError> {
        // Connection-oriented: the destination is ignored, as for TCP.
        self.send(host, socket, data, flags, overlapped)
    }

    fn set_sock_opt(
        &self,
        _: &Host<'_>,
        socket: Socket,
        option: SockOpt<'_>,
    ) -> Result<(), WsaError> {
        let handle = self.resolve(socket)?;
        match option {
            SockOpt::Linger(linger) => {
                self.router
                    .route(handle, |r| r.linger_seconds = linger.seconds);
                self.runtime
                    .set_linger(handle, Linger::from_raw(linger.on.into(), linger.seconds))
            }
            SockOpt::DontLinger(true) => self.runtime.set_linger(handle, Linger::DontLinger),
            SockOpt::DontLinger(false) => {
                let seconds = self.router.route(handle, |r| r.linger_seconds).unwrap_or(0);
                self.runtime
                    .set_linger(handle, Linger::from_raw(1, seconds))
            }
            _ => Err(WsaError::WSAENOPROTOOPT),
        }
    }

    fn shutdown(&self, _: &Host<'_>, socket: Socket, how: How) -> Result<(), WsaError> {
        self.runtime.shutdown(self.resolve(socket)?, how.raw())
    }

    fn socket(
        &self,
        _: &Host<'_>,
        _address_family: i32,
        socket_type: i32,
        _protocol: i32,
        protocol_info: Option<&ProtocolInfo>,
        _group: u32,
        _flags: u32,
    ) -> Result<Socket, WsaError> {
        if let Some(info) = protocol_info {
            non_ifs(info)?;
        }
        let index = self.protocol_index(socket_type, protocol_info)?;
        let catalog = protocol_info.map_or_else(
            || self.router.catalog.load(Ordering::Relaxed),
            ProtocolInfo::catalog_entry_id,
        );
        let handle = self.runtime.socket(index)?;
        self.publish(handle, catalog, Select::None)
    }

    fn duplicate_socket(
        &self,
        _: &Host<'_>,
        socket: Socket,
        _process_id: u32,
    ) -> Result<WSAPROTOCOL_INFOW, WsaError> {
        // A socket of this provider lives in its process's runtime.
        self.resolve(socket)?;
        Err(WsaError::WSAEINVAL)
    }
}

impl<T: Transport> Base<T> {
    /// A receive without `lpOverlapped`: the data copied into the caller's buffers; a message
    /// longer than them fills them and is `WSAEMSGSIZE`.
    fn recv_now(
        &self,
        handle: SocketHandle,
        mut buffers: RecvBuffers<'_>,
    ) -> Result<Transfer, WsaError> {
        let capacity = usize::try_from(buffers.capacity()).unwrap_or(usize::MAX);
        match self.runtime.recv(handle, capacity, None)? {
            Outcome::Complete(done) => {
                let copied = buffers.fill(&done.data);
                if done.truncated {
                    return Err(WsaError::WSAEMSGSIZE);
                }
                Ok(Transfer::Done {
                    bytes: bytes_u32(copied),
                    flags: 0,
                })
            }
            Outcome::Pending => Err(WsaError::WSASYSCALLFAILURE),
        }
    }
}
