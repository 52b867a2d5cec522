//! [`Layered`]: a layered service provider's [`Dispatch`] — the author's [`Layer`] between
//! ws2_32 and the provider below it in each protocol chain.
//!
//! Every slot finds the layer's socket, then either runs the author's hook ([`Layer`]'s
//! methods: the call is a [`Call`] guard whose `pass` makes the call below) or passes the call
//! down as it is. What goes down is the framework's business, not the author's:
//!
//! - the provider below is the chain's ([`Lowers`]: found from the layer's own catalog entry
//!   in the chain, loaded, started lazily or eagerly with the version the layer negotiated, and
//!   cleaned up with the layer's final cleanup);
//! - its `WSAPROTOCOL_INFOW` is R-WSP-4's ([`Route::pass_down`](super::Route::pass_down)) for
//!   `WSPStartup`, `WSPSocket` and the address conversions, and comes back up through
//!   [`Route::duplicated`](super::Route::duplicated) for `WSPDuplicateSocket`;
//! - the socket is the lower provider's own handle, its proc table a copy taken when the
//!   socket was made (every slot non-NULL, checked at its `WSPStartup`).
//!
//! # Handles
//!
//! [`Layer::Handles`] decides, by type:
//!
//! - [`NonIfs`](crate::layer::NonIfs): the layer's handles are ws2_32's
//!   (`WPUCreateSocketHandle`, with the chain entry's catalog id and the socket's key in the
//!   layer's lease table as context); an entry declaring `XP1_IFS_HANDLES` is refused at
//!   `WSPStartup` (`WSAEPROVIDERFAILEDINIT`, R-WSP-19).
//! - [`Ifs`](crate::layer::Ifs): the handle is the lower provider's.
//!
//! Either way a call finds its socket through the layer's own index from the handle's value
//! (`HandleIndex`: two loads for kernel handle values, no lock; no upcall) and one lock-free
//! lease.
//!
//! Sockets live in the core `LeaseTable`: a close racing a call on another thread is safe (the
//! socket's state goes when the last call using it returns), and a closed handle is
//! `WSAENOTSOCK`.
//!
//! # What is not passed down
//!
//! - An IFS layer passes overlapped requests down as the caller made them (its
//!   `WSAOVERLAPPED`, event, completion routine and a copy of its `WSATHREADID`): the provider
//!   below completes them to the caller, and the layer sees only an immediate outcome. A
//!   non-IFS layer relays them instead (`abi::relay`): its own request goes below on the lower
//!   socket bound to the layer's completion port ([`Ports`]), and the completion is relayed to
//!   the caller's request on the layer's handle, through the caller's mechanism
//!   (`WPUCompleteOverlappedRequest` or `WPUQueueApc`, R-WSP-18), after the author's
//!   [`Layer::completed`]; a close relays every pending request as
//!   aborted before it returns (R-WSP-14), the final cleanup relays nothing (R-WSP-15).
//! - An overlapped `WSPIoctl` is refused (`WSAEOPNOTSUPP`): its output would outlive the
//!   call's copies. So is a non-IFS layer's overlapped `WSPRecvFrom` (its address would); an
//!   IFS layer's goes down as the caller made it, address out-parameters included.
//! - A non-IFS layer refuses `WSPAsyncSelect` with `WSAEOPNOTSUPP`: the provider below would
//!   report its own handle to the window. For `SIO_GET_EXTENSION_FUNCTION_POINTER` it hands
//!   out its own `AcceptEx`, `ConnectEx` and `DisconnectEx` (`extension`: the provider below's
//!   called on the lower sockets with a relayed request, as a send is) and the provider below's
//!   `GetAcceptExSockaddrs`, and refuses any other function (`TransmitFile`, `WSARecvMsg`, …)
//!   with `WSAEOPNOTSUPP`: the provider below's would be called with the layer's handles.
//!   `SO_UPDATE_ACCEPT_CONTEXT`'s value, the listener's handle, goes down translated. The
//!   accept socket of an `AcceptEx` keeps the origin it was made with
//!   ([`Origin::Created`](crate::layer::Origin)); the author learns of the accept from
//!   [`Completion::Accepted`](crate::layer::Completion), told with that socket's state.
//! - `WSPSelect` serves sockets of one lower provider per call (`WSAEINVAL` otherwise).

use super::catalog::Catalog;
use super::chain::Call as ChainCall;
use super::complete::{CompleteOverlapped, read_result};
use super::decode::{
    How, INLINE_BUFFERS, Overlapped, OverlappedRecv, ProtocolInfo, RecvBuffers, SendData, SendView,
    ServiceFlags, SockOpt, Socket, Version, view_buffers,
};
use super::dispatch::{
    Accepted, Dispatch, NetworkEvents, OverlappedResult, Ready, RecvIo, SelectSets, Transfer,
};
use super::exports;
use super::index::HandleIndex;
use super::lower::{Lower, Lowers, failed};
use super::ports::Ports;
use super::relay::{Kind, Pending, Relay, Substitute};
use super::startup::Export;
use super::upcalls::{Host, Upcalls};
use crate::layer::{
    Accepting, Call, Closing, Connecting, Disconnecting, Handles, Layer, Opened, Origin, Receiving,
    SendBuffers, Sending, SettingOption, ShuttingDown,
};
use smallvec::SmallVec;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use winprov_bindings::windows_core::{BOOL, PCSTR, PCWSTR, PSTR, PWSTR};
use winprov_bindings::ws2spi::{
    FD_SET, HANDLE, HWND, INVALID_SOCKET, LPCONDITIONPROC, OVERLAPPED, QOS, SOCKADDR, SOCKET,
    SOCKET_ERROR, TIMEVAL, WSABUF, WSAEVENT, WSANETWORKEVENTS, WSAPROTOCOL_INFOW, WSATHREADID,
    WSPPROC_TABLE,
};
use winprov_core::sync::{Mutex, lock};
use winprov_core::{LeaseTable, WsaError, boundary};

/// Room for any `SOCKADDR` a provider below writes (`SOCKADDR_STORAGE`).
const ADDRESS_ROOM: usize = 128;
/// `FD_SETSIZE` of winsock2.h.
const FD_SETSIZE: usize = 64;

/// One socket of the layer.
struct Record<S> {
    /// The handle the caller sees (set once made).
    handle: AtomicUsize,
    /// The provider below, kept loaded while the socket lives.
    lower: Arc<Lower>,
    /// Its proc table, every slot non-NULL.
    table: WSPPROC_TABLE,
    /// Its handle.
    socket: SOCKET,
    /// The chain entry the socket was made for.
    protocol: ProtocolInfo,
    /// The author's state (shared with the socket's overlapped requests in flight).
    state: Arc<S>,
    /// Non-IFS: the socket's overlapped requests not relayed yet, and whether the lower
    /// socket is bound to the layer's port.
    pending: Arc<Pending>,
    associated: Mutex<bool>,
    /// Non-IFS: the provider below's extension functions, each asked for once
    /// (`extension::Extension`'s order).
    extensions: [OnceLock<usize>; EXTENSIONS],
}

/// Calls slot `$slot` of a record's table with `$args`, then `lpErrno`: the value and the
/// error it set.
macro_rules! down {
    ($record:expr, $slot:ident($($arg:expr),* $(,)?)) => {{
        let f = $record.table.$slot.ok_or(WsaError::WSAEINVALIDPROCTABLE)?;
        let mut errno = 0;
        // SAFETY: a slot of the proc table the lower provider's successful `WSPStartup`
        // handed out (checked non-NULL), valid until its `WSPCleanup`, which runs only after
        // every socket's record is gone from the table; the arguments follow ws2spi.h: the
        // lower provider's own socket, the caller's pointers as the slot's contract allowed
        // this layer to use them, and live locals.
        let value = unsafe { f($($arg,)* &mut errno) };
        (value, errno)
    }};
}

// After `down!`, which it uses.
mod extension;

#[cfg(feature = "testing")]
pub(crate) use extension::{
    AcceptExFn, ConnectExFn, DisconnectExFn, SO_UPDATE_ACCEPT_CONTEXT, WSAID_ACCEPTEX,
    WSAID_CONNECTEX, WSAID_DISCONNECTEX, WSAID_GETACCEPTEXSOCKADDRS, last_error, set_last_error,
};
use extension::{EXTENSIONS, SIO_GET_EXTENSION_FUNCTION_POINTER};

/// `SOCKET_ERROR` and its `lpErrno` as an error.
fn checked((value, errno): (i32, i32)) -> Result<(), WsaError> {
    if value == SOCKET_ERROR {
        Err(failed(errno))
    } else {
        Ok(())
    }
}

/// A pointer for an optional argument.
fn opt_ptr<T>(value: Option<&T>) -> *const T {
    value.map_or(std::ptr::null(), |v| v as *const T)
}

/// A `WSABUF` borrowing `data` (for arguments the provider below only reads).
fn wsabuf(data: &[u8]) -> WSABUF {
    WSABUF {
        len: data.len() as u32,
        buf: PSTR(data.as_ptr().cast_mut()),
    }
}

/// The overlapped arguments of a request going down as the caller made it.
struct Request {
    overlapped: *mut OVERLAPPED,
    routine: winprov_bindings::ws2spi::LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    thread: Option<WSATHREADID>,
}

impl Request {
    fn of(overlapped: Option<&Overlapped>) -> Self {
        match overlapped {
            None => Self {
                overlapped: std::ptr::null_mut(),
                routine: None,
                thread: None,
            },
            Some(o) => Self {
                overlapped: std::ptr::with_exposed_provenance_mut(o.address()),
                routine: o.routine(),
                thread: o.thread().map(|t| t.to_raw()),
            },
        }
    }

    fn thread(&self) -> *const WSATHREADID {
        opt_ptr(self.thread.as_ref())
    }
}

/// How a send or receive goes down: the caller's request as it is (an IFS layer, or a call
/// without `lpOverlapped`), or a non-IFS layer's own ([`Substitute`], relayed).
enum Down<S> {
    Direct(Request),
    Relayed(Arc<Substitute<S>>),
}

impl<S> Down<S> {
    fn overlapped(&self) -> *mut OVERLAPPED {
        match self {
            Self::Direct(request) => request.overlapped,
            Self::Relayed(substitute) => substitute.overlapped(),
        }
    }

    fn routine(&self) -> winprov_bindings::ws2spi::LPWSAOVERLAPPED_COMPLETION_ROUTINE {
        match self {
            Self::Direct(request) => request.routine,
            Self::Relayed(_) => None,
        }
    }

    fn thread(&self) -> *const WSATHREADID {
        match self {
            Self::Direct(request) => request.thread(),
            Self::Relayed(_) => std::ptr::null(),
        }
    }

    /// As [`answer`](Self::answer), the answer of a relayed request that did not fail noted in
    /// `issued` (for [`keeping_issued`]).
    fn answer_noting<L: Layer<Socket = S>>(
        self,
        relay: &Relay<L>,
        (result, bytes, flags): (Result<(), WsaError>, u32, u32),
        issued: &std::cell::Cell<Option<Transfer>>,
    ) -> Result<Transfer, WsaError> {
        let relayed = matches!(self, Self::Relayed(_));
        let answer = self.answer(relay, result, bytes, flags);
        if relayed && let Ok(transfer) = &answer {
            issued.set(Some(*transfer));
        }
        answer
    }

    /// The caller's answer, once the provider below answered `result` (with `bytes` and
    /// `flags` written when it completed at once).
    fn answer<L: Layer<Socket = S>>(
        self,
        relay: &Relay<L>,
        result: Result<(), WsaError>,
        bytes: u32,
        flags: u32,
    ) -> Result<Transfer, WsaError> {
        match self {
            Self::Direct(_) => transfer(result, bytes, flags),
            Self::Relayed(substitute) => {
                let answer = match result {
                    Ok(()) => Ok(Some((bytes, flags))),
                    Err(WsaError::WSA_IO_PENDING) => Ok(None),
                    Err(error) => Err(error),
                };
                relay.answered(&substitute, answer).map(|answer| {
                    answer.map_or(Transfer::Pending, |(bytes, flags)| Transfer::Done {
                        bytes,
                        flags,
                    })
                })
            }
        }
    }
}

/// How the call on `r` goes down, for a caller's `overlapped` request (if any): a non-IFS
/// layer binds the lower socket to its port once, then issues a substitute of `kind`, whose
/// completion the author is told with `state`.
fn going_down<L: Layer>(
    relay: &Arc<Relay<L>>,
    r: &Record<L::Socket>,
    kind: Kind,
    overlapped: Option<&Overlapped>,
    state: &Arc<L::Socket>,
) -> Result<Down<L::Socket>, WsaError> {
    let Some(request) = overlapped.filter(|_| !L::Handles::IFS) else {
        return Ok(Down::Direct(Request::of(overlapped)));
    };
    {
        let mut associated = lock(&r.associated);
        if !*associated {
            relay.associate(r.socket, 0)?;
            *associated = true;
        }
    }
    let handle = Socket::from_raw(r.handle.load(Ordering::Acquire));
    Ok(Down::Relayed(relay.issue(
        kind,
        *request,
        handle,
        (r.socket, r.table),
        Arc::clone(state),
        Arc::clone(&r.pending),
    )))
}

/// Runs a hook whose call may relay a request (`issued`: the answer of one that went down): a
/// hook that panics after its request went down keeps that answer, since the caller's request
/// completes (at once, or later: R-WSP-16); one that panics before fails its call as any
/// hook's panic does (the slot's boundary takes the panic on).
fn keeping_issued(
    issued: &std::cell::Cell<Option<Transfer>>,
    hook: impl FnOnce() -> Result<Transfer, WsaError>,
) -> Result<Transfer, WsaError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(hook)) {
        Ok(outcome) => outcome,
        Err(panic) => match issued.get() {
            Some(transfer) => {
                tracing::error!("a hook panicked after its request was relayed: its answer stands");
                Ok(transfer)
            }
            None => std::panic::resume_unwind(panic),
        },
    }
}

/// How a send or receive ended below, as the export writes it back.
fn transfer(result: Result<(), WsaError>, bytes: u32, flags: u32) -> Result<Transfer, WsaError> {
    match result {
        Ok(()) => Ok(Transfer::Done { bytes, flags }),
        Err(WsaError::WSA_IO_PENDING) => Ok(Transfer::Pending),
        Err(error) => Err(error),
    }
}

/// A layered provider: `L` over the providers below it, found in the catalog `C`. See the
/// [module documentation](self).
pub struct Layered<L: Layer, C: Catalog> {
    relay: Arc<Relay<L>>,
    lowers: Lowers<C>,
    /// The chain entry of the layer's first `WSPStartup` (for an address conversion that
    /// names none).
    first: Mutex<Option<WSAPROTOCOL_INFOW>>,
    sockets: LeaseTable<Record<L::Socket>, ()>,
    /// The caller's handle (the lower provider's, IFS; ws2_32's, non-IFS) to the socket's
    /// key.
    index: HandleIndex,
}

impl<L: Layer, C: Catalog> std::fmt::Debug for Layered<L, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layered")
            .field("ifs", &L::Handles::IFS)
            .field("sockets", &self.sockets.len())
            .field("lowers", &self.lowers)
            .finish_non_exhaustive()
    }
}

impl<L: Layer, C: Catalog> Layered<L, C> {
    /// `layer`, over the providers below it in `catalog`.
    pub fn new(layer: L, catalog: C) -> Self {
        #[cfg(windows)]
        let ports: Option<Box<dyn Ports>> = Some(Box::new(super::ports::SystemPorts));
        #[cfg(not(windows))]
        let ports: Option<Box<dyn Ports>> = None;
        Self {
            relay: Arc::new(Relay::new(layer, ports)),
            lowers: Lowers::new(L::PROVIDER_ID, L::START, catalog),
            first: Mutex::new(None),
            sockets: LeaseTable::new(),
            index: HandleIndex::new(),
        }
    }

    /// A non-IFS layer relays its callers' overlapped requests through `ports` (default:
    /// the kernel's completion ports on Windows, none elsewhere: overlapped calls of a non-IFS
    /// layer are then refused with `WSAEOPNOTSUPP`). For a host simulator.
    pub fn with_ports(mut self, ports: impl Ports) -> Self {
        match Arc::get_mut(&mut self.relay) {
            Some(relay) => relay.set_ports(Box::new(ports)),
            None => tracing::error!("the layer's relay is in use: its ports are kept"),
        }
        self
    }

    /// Completes callers' requests through `complete` instead of ws2_32's export: for a host
    /// simulator, which plays ws2_32 (`testing::winsock`).
    pub fn completing_with(self, complete: CompleteOverlapped) -> Self {
        self.relay.completer.set(complete);
        self
    }

    /// The author's layer.
    pub fn layer(&self) -> &L {
        &self.relay.layer
    }

    /// Overlapped requests relayed below whose completion was not taken from the port yet.
    pub fn relayed(&self) -> usize {
        self.relay.outstanding()
    }

    /// The providers below.
    pub fn lowers(&self) -> &Lowers<C> {
        &self.lowers
    }

    /// Sockets the layer serves.
    pub fn sockets(&self) -> usize {
        self.sockets.len()
    }

    fn upcalls(&self) -> Result<Upcalls, WsaError> {
        self.relay
            .host
            .get()
            .ok_or(WsaError::WSANOTINITIALISED)?
            .upcalls()
    }

    /// The key of the socket the caller names.
    #[inline]
    fn key(&self, socket: Socket) -> Result<usize, WsaError> {
        self.index.get(socket.raw()).ok_or(WsaError::WSAENOTSOCK)
    }

    /// Runs `f` with the socket the caller names (`WSAENOTSOCK` for any other handle).
    fn with<R>(
        &self,
        socket: Socket,
        f: impl FnOnce(&Record<L::Socket>) -> Result<R, WsaError>,
    ) -> Result<R, WsaError> {
        let key = self.key(socket)?;
        let lease = self
            .sockets
            .lease_shared(key)
            .map_err(|_| WsaError::WSAENOTSOCK)?;
        f(&lease)
    }

    /// Serves the lower provider's new socket `below`: the author's state, the table entry,
    /// the caller's handle. On failure the lower socket is closed.
    fn publish(
        &self,
        lower: Arc<Lower>,
        below: SOCKET,
        protocol: ProtocolInfo,
        origin: Origin<'_>,
    ) -> Result<Socket, WsaError> {
        let table = match lower.proc_table() {
            Some(table) => table,
            None => return Err(WsaError::WSANOTINITIALISED),
        };
        let close_below = |table: &WSPPROC_TABLE| {
            if let Some(close) = table.lpWSPCloseSocket {
                let mut errno = 0;
                // SAFETY: the lower provider's started table (checked non-NULL), its own
                // socket, a live local.
                unsafe { close(below, &mut errno) };
            }
        };
        let state = self.relay.layer.open(&Opened {
            origin,
            protocol: &protocol,
        });
        let catalog = protocol.catalog_entry_id();
        let record = Record {
            handle: AtomicUsize::new(INVALID_SOCKET.0),
            lower,
            table,
            socket: below,
            protocol,
            state: Arc::new(state),
            pending: Arc::new(Pending::default()),
            associated: Mutex::new(false),
            extensions: Default::default(),
        };
        let key = match self.sockets.insert(record, ()) {
            Ok(handle) => handle.raw(),
            Err(_) => {
                close_below(&table);
                return Err(WsaError::WSAEMFILE);
            }
        };
        let handle = if L::Handles::IFS {
            Ok(Socket::from_socket(below))
        } else {
            self.upcalls()
                .and_then(|upcalls| upcalls.create_socket_handle(catalog, key))
        };
        match handle {
            Ok(handle) => {
                self.index.insert(handle.raw(), key);
                if let Ok(lease) = self.sockets.lease_shared(key) {
                    lease.handle.store(handle.raw(), Ordering::Release);
                }
                Ok(handle)
            }
            Err(error) => {
                drop(self.sockets.remove(key));
                close_below(&table);
                Err(error)
            }
        }
    }

    /// Forgets the socket `key` whose handle is `handle` (after its close below succeeded).
    fn forget(&self, key: usize, handle: Socket) {
        drop(self.sockets.remove(key));
        // Only this socket's entry: an IFS layer's provider below may already have handed the
        // same value out again, for a socket published since. A non-IFS handle is forgotten
        // before ws2_32 may hand its value out again.
        self.index.remove(handle.raw(), key);
        if !L::Handles::IFS
            && let Ok(upcalls) = self.upcalls()
            && let Err(error) = upcalls.close_socket_handle(handle)
        {
            tracing::warn!(%error, "WPUCloseSocketHandle failed");
        }
    }

    /// The lower provider and R-WSP-4's structure for an address conversion given `given`.
    fn conversion(
        &self,
        call: ChainCall,
        given: Option<&ProtocolInfo>,
    ) -> Result<(Arc<Lower>, WSAPROTOCOL_INFOW, WSPPROC_TABLE), WsaError> {
        let given = match given {
            Some(info) => *info.raw(),
            None => lock(&self.first).ok_or(WsaError::WSANOTINITIALISED)?,
        };
        let upcalls = self.upcalls()?;
        let lower = self.lowers.lower(&given, &upcalls).map_err(|e| e.code())?;
        let info = lower
            .route()
            .pass_down(call, &given)
            .map_err(|e| e.code())?;
        let table = lower.proc_table().ok_or(WsaError::WSANOTINITIALISED)?;
        Ok((lower, info, table))
    }
}

/// The table of a provider below, for a [`down!`] outside a socket.
struct Table {
    table: WSPPROC_TABLE,
}

impl<L: Layer, C: Catalog> Dispatch for Layered<L, C> {
    const DESCRIPTION: &'static str = L::DESCRIPTION;

    fn own_slots<E: Export<Dispatch = Self>>(table: &mut WSPPROC_TABLE) {
        table.lpWSPSend = Some(pass_send::<E, L, C>);
        table.lpWSPRecv = Some(pass_recv::<E, L, C>);
        table.lpWSPRecvFrom = Some(pass_recv_from::<E, L, C>);
        table.lpWSPIoctl = Some(extension::pass_ioctl::<E, L, C>);
    }

    fn first_startup(&self, host: &Host<'static>, protocol: &ProtocolInfo) -> Result<(), WsaError> {
        let _ = self.relay.host.set(*host);
        *lock(&self.first) = Some(*protocol.raw());
        Ok(())
    }

    fn each_startup(
        &self,
        host: &Host<'static>,
        protocol: &ProtocolInfo,
        version: Version,
    ) -> Result<(), WsaError> {
        if !L::Handles::IFS && protocol.service_flags().contains(ServiceFlags::IFS_HANDLES) {
            tracing::error!(
                entry = protocol.catalog_entry_id(),
                "a non-IFS layer's catalog entry declares XP1_IFS_HANDLES"
            );
            return Err(WsaError::WSAEPROVIDERFAILEDINIT);
        }
        let upcalls = host.upcalls()?;
        self.lowers
            .startup(version, protocol.raw(), &upcalls)
            .map_err(|error| {
                tracing::error!(%error, "the provider below could not be started");
                error.code()
            })
    }

    fn final_cleanup(&self, host: &Host<'_>) {
        // Nothing is relayed from now on; the caller's handles go; the providers below then
        // cancel what they hold without notifications at their own final cleanup; then the
        // relay's thread stops and what it never got back is freed (R-WSP-15).
        self.relay.stopping();
        let upcalls = host.upcalls().ok();
        for (handle, lease) in self.sockets.snapshot() {
            let socket = Socket::from_raw(lease.handle.load(Ordering::Acquire));
            drop(lease);
            drop(self.sockets.remove(handle.raw()));
            if !L::Handles::IFS
                && socket != Socket::INVALID
                && let Some(upcalls) = &upcalls
            {
                let _ = upcalls.close_socket_handle(socket);
            }
        }
        self.index.clear();
        let cleaned = self.lowers.final_cleanup();
        self.relay.stop();
        boundary("Layer::cleanup", (), || self.relay.layer.cleanup());
        tracing::debug!(cleaned, "layer cleaned up");
    }

    fn knows_socket(&self, socket: Socket) -> bool {
        self.key(socket)
            .is_ok_and(|key| self.sockets.lease_shared(key).is_ok())
    }

    fn accept(
        &self,
        _: &Host<'_>,
        socket: Socket,
        condition: LPCONDITIONPROC,
        callback_data: usize,
    ) -> Result<Accepted, WsaError> {
        let (below, address, lower, protocol) = self.with(socket, |r| {
            let mut accepted = INVALID_SOCKET;
            let mut down_call = |_: &Accepting| {
                let mut address = [0u8; ADDRESS_ROOM];
                let mut len = ADDRESS_ROOM as i32;
                let (value, errno) = down!(
                    r,
                    lpWSPAccept(
                        r.socket,
                        address.as_mut_ptr().cast::<SOCKADDR>(),
                        &mut len,
                        condition,
                        callback_data,
                    )
                );
                if value == INVALID_SOCKET {
                    return Err(failed(errno));
                }
                accepted = value;
                Ok(address[..(len.max(0) as usize).min(ADDRESS_ROOM)].to_vec())
            };
            let passed = self
                .relay
                .layer
                .accept(&r.state, Call::new(Accepting {}, &mut down_call));
            let address = passed.into_outcome();
            if accepted != INVALID_SOCKET && address.is_err() {
                // The author refused what was accepted below: it does not live on.
                let _ = down!(r, lpWSPCloseSocket(accepted));
            }
            Ok((accepted, address?, r.lower.clone(), r.protocol.clone()))
        })?;
        let socket = self.publish(lower, below, protocol, Origin::Accepted { peer: &address })?;
        Ok(Accepted { socket, address })
    }

    fn address_to_string(
        &self,
        _: &Host<'_>,
        address: &[u8],
        protocol: Option<&ProtocolInfo>,
    ) -> Result<String, WsaError> {
        let (_lower, info, table) = self.conversion(ChainCall::AddressToString, protocol)?;
        let table = Table { table };
        let mut text = vec![0u16; 1024];
        let mut len = text.len() as u32;
        checked(down!(
            table,
            lpWSPAddressToString(
                address.as_ptr().cast::<SOCKADDR>(),
                address.len() as u32,
                &info,
                PWSTR(text.as_mut_ptr()),
                &mut len,
            )
        ))?;
        let end = text.iter().position(|&u| u == 0).unwrap_or(text.len());
        Ok(String::from_utf16_lossy(&text[..end.min(len as usize)]))
    }

    fn async_select(
        &self,
        _: &Host<'_>,
        socket: Socket,
        window: usize,
        message: u32,
        events: i32,
    ) -> Result<(), WsaError> {
        self.with(socket, |r| {
            if !L::Handles::IFS {
                return Err(WsaError::WSAEOPNOTSUPP);
            }
            checked(down!(
                r,
                lpWSPAsyncSelect(
                    r.socket,
                    HWND(std::ptr::with_exposed_provenance_mut(window)),
                    message,
                    events,
                )
            ))
        })
    }

    fn bind(&self, _: &Host<'_>, socket: Socket, name: &[u8]) -> Result<(), WsaError> {
        self.with(socket, |r| {
            checked(down!(
                r,
                lpWSPBind(
                    r.socket,
                    name.as_ptr().cast::<SOCKADDR>(),
                    name.len() as i32
                )
            ))
        })
    }

    fn cancel_blocking_call(&self, _: &Host<'_>) -> Result<(), WsaError> {
        // Winsock 2 has no blocking hooks: nothing is ever blocking in the layer's name.
        Err(WsaError::WSAEINVAL)
    }

    fn close_socket(&self, _: &Host<'_>, socket: Socket) -> Result<(), WsaError> {
        let key = self.key(socket)?;
        {
            let lease = self
                .sockets
                .lease_shared(key)
                .map_err(|_| WsaError::WSAENOTSOCK)?;
            let r = &*lease;
            // From here, a request still pending for the caller is aborted for it, not
            // relayed (R-WSP-14); a close that fails or is refused leaves them relayed.
            r.pending.closing(true);
            let mut down_call = |_: &Closing| checked(down!(r, lpWSPCloseSocket(r.socket)));
            let closed = self
                .relay
                .layer
                .close(&r.state, Call::new(Closing {}, &mut down_call))
                .into_outcome();
            if let Err(error) = closed {
                r.pending.closing(false);
                return Err(error);
            }
            // The provider below aborted the socket's pending requests: each is relayed to
            // its caller (WSA_OPERATION_ABORTED) before the close returns (R-WSP-14).
            r.pending.drain();
        }
        self.forget(key, socket);
        Ok(())
    }

    fn connect(
        &self,
        _: &Host<'_>,
        socket: Socket,
        name: &[u8],
        caller_data: Option<&[u8]>,
        callee_capacity: Option<u32>,
        sqos: Option<QOS>,
        gqos: Option<QOS>,
    ) -> Result<Vec<u8>, WsaError> {
        self.with(socket, |r| {
            let mut callee = vec![0u8; callee_capacity.unwrap_or(0) as usize];
            let mut callee_buf = WSABUF {
                len: callee.len() as u32,
                buf: PSTR(callee.as_mut_ptr()),
            };
            let mut down_call = |args: &Connecting<'_>| {
                let caller = args.caller_data.map(wsabuf);
                let callee_ptr = if callee_capacity.is_some() {
                    &raw mut callee_buf
                } else {
                    std::ptr::null_mut()
                };
                checked(down!(
                    r,
                    lpWSPConnect(
                        r.socket,
                        args.address.as_ptr().cast::<SOCKADDR>(),
                        args.address.len() as i32,
                        opt_ptr(caller.as_ref()),
                        callee_ptr,
                        opt_ptr(sqos.as_ref()),
                        opt_ptr(gqos.as_ref()),
                    )
                ))
            };
            let args = Connecting {
                address: name,
                caller_data,
            };
            self.relay
                .layer
                .connect(&r.state, Call::new(args, &mut down_call))
                .into_outcome()?;
            callee.truncate(callee_buf.len as usize);
            Ok(callee)
        })
    }

    fn duplicate_socket(
        &self,
        _: &Host<'_>,
        socket: Socket,
        process_id: u32,
    ) -> Result<WSAPROTOCOL_INFOW, WsaError> {
        self.with(socket, |r| {
            let mut info = WSAPROTOCOL_INFOW::default();
            checked(down!(
                r,
                lpWSPDuplicateSocket(r.socket, process_id, &mut info)
            ))?;
            r.lower
                .route()
                .duplicated(r.protocol.raw(), &info)
                .map_err(|e| e.code())
        })
    }

    fn enum_network_events(
        &self,
        _: &Host<'_>,
        socket: Socket,
        event: isize,
    ) -> Result<NetworkEvents, WsaError> {
        self.with(socket, |r| {
            let mut events = WSANETWORKEVENTS::default();
            checked(down!(
                r,
                lpWSPEnumNetworkEvents(
                    r.socket,
                    HANDLE(std::ptr::with_exposed_provenance_mut(event as usize)),
                    &mut events,
                )
            ))?;
            Ok(NetworkEvents {
                events: events.lNetworkEvents,
                errors: events.iErrorCode,
            })
        })
    }

    fn event_select(
        &self,
        _: &Host<'_>,
        socket: Socket,
        event: isize,
        events: i32,
    ) -> Result<(), WsaError> {
        self.with(socket, |r| {
            checked(down!(
                r,
                lpWSPEventSelect(r.socket, WSAEVENT(event), events,)
            ))
        })
    }

    fn get_overlapped_result(
        &self,
        _: &Host<'_>,
        socket: Socket,
        overlapped: usize,
        wait: bool,
    ) -> Result<OverlappedResult, WsaError> {
        if !L::Handles::IFS {
            // The caller's request never went down: its structure says how it ended.
            return self.with(socket, |r| {
                // SAFETY: the caller's `WSAOVERLAPPED` (ws2_32's contract: the one of an
                // overlapped call on this socket), read only.
                let read = || unsafe { read_result(overlapped) };
                let result = match read() {
                    Some(result) => result,
                    None if !wait => return Err(WsaError::WSA_IO_INCOMPLETE),
                    None => {
                        r.pending.wait_for(|| read().is_some());
                        read().ok_or(WsaError::WSA_IO_INCOMPLETE)?
                    }
                };
                match result {
                    (bytes, flags, 0) => Ok(OverlappedResult { bytes, flags }),
                    (_, _, error) => Err(WsaError::from_raw(error as i32)),
                }
            });
        }
        self.with(socket, |r| {
            let (mut bytes, mut flags) = (0u32, 0u32);
            let f = r
                .table
                .lpWSPGetOverlappedResult
                .ok_or(WsaError::WSAEINVALIDPROCTABLE)?;
            let mut errno = 0;
            // SAFETY: as in `down!`; the caller's `WSAOVERLAPPED` (its request went down as
            // it was), live locals for the results.
            let ok = unsafe {
                f(
                    r.socket,
                    std::ptr::with_exposed_provenance(overlapped),
                    &mut bytes,
                    BOOL::from(wait),
                    &mut flags,
                    &mut errno,
                )
            };
            if ok.as_bool() {
                Ok(OverlappedResult { bytes, flags })
            } else {
                Err(failed(errno))
            }
        })
    }

    fn get_peer_name(&self, _: &Host<'_>, socket: Socket) -> Result<Vec<u8>, WsaError> {
        self.with(socket, |r| {
            let mut address = [0u8; ADDRESS_ROOM];
            let mut len = ADDRESS_ROOM as i32;
            checked(down!(
                r,
                lpWSPGetPeerName(r.socket, address.as_mut_ptr().cast::<SOCKADDR>(), &mut len)
            ))?;
            Ok(address[..(len.max(0) as usize).min(ADDRESS_ROOM)].to_vec())
        })
    }

    fn get_sock_name(&self, _: &Host<'_>, socket: Socket) -> Result<Vec<u8>, WsaError> {
        self.with(socket, |r| {
            let mut address = [0u8; ADDRESS_ROOM];
            let mut len = ADDRESS_ROOM as i32;
            checked(down!(
                r,
                lpWSPGetSockName(r.socket, address.as_mut_ptr().cast::<SOCKADDR>(), &mut len)
            ))?;
            Ok(address[..(len.max(0) as usize).min(ADDRESS_ROOM)].to_vec())
        })
    }

    fn get_sock_opt(
        &self,
        _: &Host<'_>,
        socket: Socket,
        level: i32,
        name: i32,
    ) -> Result<Vec<u8>, WsaError> {
        self.with(socket, |r| {
            let mut value = vec![0u8; 1024];
            let mut len = value.len() as i32;
            checked(down!(
                r,
                lpWSPGetSockOpt(r.socket, level, name, PSTR(value.as_mut_ptr()), &mut len)
            ))?;
            value.truncate(len.max(0) as usize);
            Ok(value)
        })
    }

    fn get_qos_by_name(
        &self,
        _: &Host<'_>,
        socket: Socket,
        name: Option<&[u8]>,
    ) -> Result<QOS, WsaError> {
        self.with(socket, |r| {
            let name = name.map(wsabuf);
            let mut qos = QOS::default();
            let f = r
                .table
                .lpWSPGetQOSByName
                .ok_or(WsaError::WSAEINVALIDPROCTABLE)?;
            let mut errno = 0;
            // SAFETY: as in `down!`; the name borrows the caller's bytes for the call.
            let ok = unsafe { f(r.socket, opt_ptr(name.as_ref()), &mut qos, &mut errno) };
            if ok.as_bool() {
                Ok(qos)
            } else {
                Err(failed(errno))
            }
        })
    }

    fn ioctl(
        &self,
        _: &Host<'_>,
        socket: Socket,
        code: u32,
        input: &[u8],
        output_capacity: u32,
        overlapped: Option<Overlapped>,
    ) -> Result<Vec<u8>, WsaError> {
        self.with(socket, |r| {
            if overlapped.is_some()
                || (!L::Handles::IFS && code == SIO_GET_EXTENSION_FUNCTION_POINTER)
            {
                return Err(WsaError::WSAEOPNOTSUPP);
            }
            let mut output = vec![0u8; output_capacity as usize];
            let mut returned = 0u32;
            let input_ptr = if input.is_empty() {
                std::ptr::null()
            } else {
                input.as_ptr().cast()
            };
            let output_ptr = if output.is_empty() {
                std::ptr::null_mut()
            } else {
                output.as_mut_ptr().cast()
            };
            checked(down!(
                r,
                lpWSPIoctl(
                    r.socket,
                    code,
                    input_ptr,
                    input.len() as u32,
                    output_ptr,
                    output_capacity,
                    &mut returned,
                    std::ptr::null_mut(),
                    None,
                    std::ptr::null(),
                )
            ))?;
            output.truncate(returned as usize);
            Ok(output)
        })
    }

    fn join_leaf(
        &self,
        _: &Host<'_>,
        socket: Socket,
        name: &[u8],
        caller_data: Option<&[u8]>,
        sqos: Option<QOS>,
        flags: u32,
    ) -> Result<Socket, WsaError> {
        let (below, own, lower, protocol) = self.with(socket, |r| {
            let caller = caller_data.map(wsabuf);
            let (value, errno) = down!(
                r,
                lpWSPJoinLeaf(
                    r.socket,
                    name.as_ptr().cast::<SOCKADDR>(),
                    name.len() as i32,
                    opt_ptr(caller.as_ref()),
                    std::ptr::null_mut(),
                    opt_ptr(sqos.as_ref()),
                    std::ptr::null(),
                    flags,
                )
            );
            if value == INVALID_SOCKET {
                return Err(failed(errno));
            }
            Ok((value, r.socket, r.lower.clone(), r.protocol.clone()))
        })?;
        if below == own {
            // The same socket, joined (a c_root / d_root join returns the socket itself).
            return Ok(socket);
        }
        self.publish(lower, below, protocol, Origin::Joined)
    }

    fn listen(&self, _: &Host<'_>, socket: Socket, backlog: i32) -> Result<(), WsaError> {
        self.with(socket, |r| {
            checked(down!(r, lpWSPListen(r.socket, backlog)))
        })
    }

    fn recv(
        &self,
        _: &Host<'_>,
        socket: Socket,
        io: RecvIo<'_>,
        flags: u32,
    ) -> Result<Transfer, WsaError> {
        self.with(socket, |r| receive(&self.relay, r, io, flags, None))
    }

    fn recv_disconnect(
        &self,
        _: &Host<'_>,
        socket: Socket,
        capacity: Option<u32>,
    ) -> Result<Vec<u8>, WsaError> {
        self.with(socket, |r| {
            let mut data = vec![0u8; capacity.unwrap_or(0) as usize];
            let mut buf = WSABUF {
                len: data.len() as u32,
                buf: PSTR(data.as_mut_ptr()),
            };
            let ptr = if capacity.is_some() {
                &raw mut buf
            } else {
                std::ptr::null_mut()
            };
            checked(down!(r, lpWSPRecvDisconnect(r.socket, ptr)))?;
            data.truncate(buf.len as usize);
            Ok(data)
        })
    }

    fn recv_from(
        &self,
        _: &Host<'_>,
        socket: Socket,
        io: RecvIo<'_>,
        flags: u32,
    ) -> Result<(Transfer, Vec<u8>), WsaError> {
        self.with(socket, |r| {
            if matches!(io, RecvIo::Overlapped(_)) {
                return Err(WsaError::WSAEOPNOTSUPP);
            }
            let mut from = [0u8; ADDRESS_ROOM];
            let mut len = ADDRESS_ROOM as i32;
            let transfer = receive(&self.relay, r, io, flags, Some((&mut from, &mut len)))?;
            Ok((
                transfer,
                from[..(len.max(0) as usize).min(ADDRESS_ROOM)].to_vec(),
            ))
        })
    }

    fn select(&self, _: &Host<'_>, sets: SelectSets) -> Result<Ready, WsaError> {
        select(self, sets)
    }

    fn send(
        &self,
        _: &Host<'_>,
        socket: Socket,
        data: SendData<'_>,
        flags: u32,
        overlapped: Option<Overlapped>,
    ) -> Result<Transfer, WsaError> {
        self.with(socket, |r| {
            transmit(&self.relay, r, &data, flags, None, overlapped)
        })
    }

    fn send_disconnect(
        &self,
        _: &Host<'_>,
        socket: Socket,
        data: Option<&[u8]>,
    ) -> Result<(), WsaError> {
        self.with(socket, |r| {
            let mut down_call = |args: &Disconnecting<'_>| {
                let buf = args.data.map(wsabuf);
                checked(down!(
                    r,
                    lpWSPSendDisconnect(r.socket, opt_ptr(buf.as_ref()).cast_mut())
                ))
            };
            self.relay
                .layer
                .send_disconnect(&r.state, Call::new(Disconnecting { data }, &mut down_call))
                .into_outcome()
        })
    }

    fn send_to(
        &self,
        _: &Host<'_>,
        socket: Socket,
        data: SendData<'_>,
        flags: u32,
        to: &[u8],
        overlapped: Option<Overlapped>,
    ) -> Result<Transfer, WsaError> {
        self.with(socket, |r| {
            transmit(&self.relay, r, &data, flags, Some(to), overlapped)
        })
    }

    fn set_sock_opt(
        &self,
        _: &Host<'_>,
        socket: Socket,
        option: SockOpt<'_>,
    ) -> Result<(), WsaError> {
        self.with(socket, |r| {
            let mut down_call = |args: &SettingOption<'_>| {
                let (level, name, mut bytes) = option_bytes(args.option());
                if !L::Handles::IFS
                    && let Some(listener) = extension::accept_context(level, name, &bytes)
                {
                    // The listening socket is the layer's handle: the provider below knows
                    // its own.
                    let below = self.with(listener, |l| Ok(l.socket))?;
                    bytes = std::borrow::Cow::Owned(below.0.to_ne_bytes().to_vec());
                }
                checked(down!(
                    r,
                    lpWSPSetSockOpt(
                        r.socket,
                        level,
                        name,
                        PCSTR(bytes.as_ptr()),
                        bytes.len() as i32,
                    )
                ))
            };
            self.relay
                .layer
                .set_sock_opt(
                    &r.state,
                    Call::new(SettingOption { option: &option }, &mut down_call),
                )
                .into_outcome()
        })
    }

    fn shutdown(&self, _: &Host<'_>, socket: Socket, how: How) -> Result<(), WsaError> {
        self.with(socket, |r| {
            let mut down_call =
                |args: &ShuttingDown| checked(down!(r, lpWSPShutdown(r.socket, args.how.raw())));
            self.relay
                .layer
                .shutdown(&r.state, Call::new(ShuttingDown { how }, &mut down_call))
                .into_outcome()
        })
    }

    fn socket(
        &self,
        _: &Host<'_>,
        address_family: i32,
        socket_type: i32,
        protocol: i32,
        protocol_info: Option<&ProtocolInfo>,
        group: u32,
        flags: u32,
    ) -> Result<Socket, WsaError> {
        // ws2_32 names the chain entry the socket is for: a layer serves no other.
        let info = protocol_info.ok_or(WsaError::WSAEINVAL)?;
        let upcalls = self.upcalls()?;
        let lower = self
            .lowers
            .lower(info.raw(), &upcalls)
            .map_err(|e| e.code())?;
        let below = lower.socket(
            address_family,
            socket_type,
            protocol,
            info.raw(),
            group,
            flags,
        )?;
        self.publish(lower, below.to_socket(), info.clone(), Origin::Created)
    }

    fn string_to_address(
        &self,
        _: &Host<'_>,
        address: &str,
        address_family: i32,
        protocol: Option<&ProtocolInfo>,
    ) -> Result<Vec<u8>, WsaError> {
        let (_lower, info, table) = self.conversion(ChainCall::StringToAddress, protocol)?;
        let table = Table { table };
        let text: Vec<u16> = address.encode_utf16().chain([0]).collect();
        let mut out = [0u8; ADDRESS_ROOM];
        let mut len = ADDRESS_ROOM as i32;
        checked(down!(
            table,
            lpWSPStringToAddress(
                PCWSTR(text.as_ptr()),
                address_family,
                &info,
                out.as_mut_ptr().cast::<SOCKADDR>(),
                &mut len,
            )
        ))?;
        Ok(out[..(len.max(0) as usize).min(ADDRESS_ROOM)].to_vec())
    }
}

/// A send through the author's hook.
fn transmit<L: Layer>(
    relay: &Arc<Relay<L>>,
    r: &Record<L::Socket>,
    data: &SendData<'_>,
    flags: u32,
    to: Option<&[u8]>,
    overlapped: Option<Overlapped>,
) -> Result<Transfer, WsaError> {
    let issued = std::cell::Cell::new(None);
    let mut down_call = |args: &Sending<'_>| {
        let mut buffers: SmallVec<[WSABUF; INLINE_BUFFERS]> = data.to_wsabufs();
        let request = going_down(relay, r, Kind::Send, overlapped.as_ref(), &r.state)?;
        let mut sent = 0u32;
        let result = match args.to {
            None => checked(down!(
                r,
                lpWSPSend(
                    r.socket,
                    buffers.as_mut_ptr(),
                    buffers.len() as u32,
                    &raw mut sent,
                    args.flags,
                    request.overlapped(),
                    request.routine(),
                    request.thread(),
                )
            )),
            Some(to) => checked(down!(
                r,
                lpWSPSendTo(
                    r.socket,
                    buffers.as_mut_ptr(),
                    buffers.len() as u32,
                    &raw mut sent,
                    args.flags,
                    to.as_ptr().cast::<SOCKADDR>(),
                    to.len() as i32,
                    request.overlapped(),
                    request.routine(),
                    request.thread(),
                )
            )),
        };
        request.answer_noting(relay, (result, sent, 0), &issued)
    };
    let args = Sending {
        buffers: SendBuffers::Slices(data.slices()),
        flags,
        to,
        overlapped: overlapped.is_some(),
    };
    keeping_issued(&issued, || {
        relay
            .layer
            .send(&r.state, Call::new(args, &mut down_call))
            .into_outcome()
    })
}

/// A receive through the author's hook; `from` is `WSPRecvFrom`'s address room.
fn receive<L: Layer>(
    relay: &Arc<Relay<L>>,
    r: &Record<L::Socket>,
    io: RecvIo<'_>,
    flags: u32,
    mut from: Option<(&mut [u8; ADDRESS_ROOM], &mut i32)>,
) -> Result<Transfer, WsaError> {
    let (array, request) = match &io {
        RecvIo::Blocking(buffers) => (RecvBuffers::array(buffers), None),
        RecvIo::Overlapped(recv) => (OverlappedRecv::array(recv), Some(*recv.overlapped())),
    };
    let is_from = from.is_some();
    let issued = std::cell::Cell::new(None);
    let mut down_call = |args: &Receiving| {
        let mut buffers = array.to_wsabufs();
        let request = going_down(relay, r, Kind::Receive, request.as_ref(), &r.state)?;
        let (mut received, mut out_flags) = (0u32, args.flags);
        // Given for an overlapped call too: a request that completes at once reports its
        // count here (the export writes it back for the caller).
        let bytes_ptr = &raw mut received;
        let result = match from.as_mut() {
            None => checked(down!(
                r,
                lpWSPRecv(
                    r.socket,
                    buffers.as_mut_ptr(),
                    buffers.len() as u32,
                    bytes_ptr,
                    &mut out_flags,
                    request.overlapped(),
                    request.routine(),
                    request.thread(),
                )
            )),
            Some((address, len)) => checked(down!(
                r,
                lpWSPRecvFrom(
                    r.socket,
                    buffers.as_mut_ptr(),
                    buffers.len() as u32,
                    bytes_ptr,
                    &mut out_flags,
                    address.as_mut_ptr().cast::<SOCKADDR>(),
                    &mut **len,
                    request.overlapped(),
                    request.routine(),
                    request.thread(),
                )
            )),
        };
        request.answer_noting(relay, (result, received, out_flags), &issued)
    };
    let args = Receiving {
        capacity: array.capacity(),
        flags,
        overlapped: request.is_some(),
        from: is_from,
    };
    keeping_issued(&issued, || {
        relay
            .layer
            .recv(&r.state, Call::new(args, &mut down_call))
            .into_outcome()
    })
}

/// The bytes of a decoded option, as `WSPSetSockOpt` passes them down.
fn option_bytes<'a>(option: &'a SockOpt<'a>) -> (i32, i32, std::borrow::Cow<'a, [u8]>) {
    use winprov_bindings::ws2spi::{SO_DONTLINGER, SO_LINGER, SOL_SOCKET};
    match option {
        SockOpt::Linger(linger) => (
            SOL_SOCKET,
            SO_LINGER,
            std::borrow::Cow::Owned(linger.to_bytes().to_vec()),
        ),
        SockOpt::DontLinger(on) => (
            SOL_SOCKET,
            SO_DONTLINGER,
            std::borrow::Cow::Owned(i32::from(*on).to_ne_bytes().to_vec()),
        ),
        SockOpt::Other { level, name, value } => (*level, *name, std::borrow::Cow::Borrowed(value)),
    }
}

/// `WSPSelect` over the sockets of one provider below.
fn select<L: Layer, C: Catalog>(
    layered: &Layered<L, C>,
    sets: SelectSets,
) -> Result<Ready, WsaError> {
    // Each set's sockets, translated to the provider below's handles.
    let mut table: Option<(Arc<Lower>, WSPPROC_TABLE)> = None;
    let mut map: Vec<(SOCKET, Socket)> = Vec::new();
    let mut translate = |set: &Option<Vec<Socket>>| -> Result<Option<FD_SET>, WsaError> {
        let Some(set) = set else { return Ok(None) };
        if set.len() > FD_SETSIZE {
            return Err(WsaError::WSAEINVAL);
        }
        let mut raw = FD_SET::default();
        for (i, socket) in set.iter().enumerate() {
            let (below, lower, lower_table) =
                layered.with(*socket, |r| Ok((r.socket, r.lower.clone(), r.table)))?;
            match &table {
                None => table = Some((lower, lower_table)),
                Some((first, _)) if Arc::ptr_eq(first, &lower) => {}
                Some(_) => return Err(WsaError::WSAEINVAL),
            }
            raw.fd_array[i] = below;
            raw.fd_count = i as u32 + 1;
            map.push((below, *socket));
        }
        Ok(Some(raw))
    };
    let mut read = translate(&sets.read)?;
    let mut write = translate(&sets.write)?;
    let mut except = translate(&sets.except)?;
    let table = Table {
        table: table.ok_or(WsaError::WSAEINVAL)?.1,
    };
    let timeout = sets.timeout.map(|d| TIMEVAL {
        tv_sec: d.as_secs().min(i32::MAX as u64) as i32,
        tv_usec: d.subsec_micros() as i32,
    });
    let ptr = |set: &mut Option<FD_SET>| {
        set.as_mut()
            .map_or(std::ptr::null_mut(), |s| s as *mut FD_SET)
    };
    let (value, errno) = down!(
        table,
        lpWSPSelect(
            0,
            ptr(&mut read),
            ptr(&mut write),
            ptr(&mut except),
            opt_ptr(timeout.as_ref()),
        )
    );
    checked((value, errno))?;
    let back = |set: &Option<FD_SET>| -> Vec<Socket> {
        set.as_ref().map_or_else(Vec::new, |s| {
            s.fd_array[..(s.fd_count as usize).min(FD_SETSIZE)]
                .iter()
                .filter_map(|below| map.iter().find(|(b, _)| b == below).map(|(_, s)| *s))
                .collect()
        })
    };
    Ok(Ready {
        read: back(&read),
        write: back(&write),
        except: back(&except),
    })
}

// ---------------------------------------------------------------------------------------------
// The pass-through slots: WSPSend and WSPRecv on the caller's arguments as they are

/// `WSPSend`, in the layer's proc table ([`Dispatch::own_slots`]): the export's frame
/// (`lpErrno`, the panic boundary, `WSANOTINITIALISED`), the caller's `WSABUF` array checked
/// but not copied, the author's hook, and the call below with the caller's own array,
/// out-parameters and request (what the provider below writes there is the answer). A non-IFS layer's overlapped send is relayed: the generated slot takes it.
#[allow(clippy::too_many_arguments)]
unsafe extern "system" fn pass_send<E, L, C>(
    s: SOCKET,
    lpbuffers: *const WSABUF,
    dwbuffercount: u32,
    lpnumberofbytessent: *mut u32,
    dwflags: u32,
    lpoverlapped: *mut OVERLAPPED,
    lpcompletionroutine: winprov_bindings::ws2spi::LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    lpthreadid: *const WSATHREADID,
    lperrno: *mut i32,
) -> i32
where
    E: Export<Dispatch = Layered<L, C>>,
    L: Layer,
    C: Catalog,
{
    let overlapped = !lpoverlapped.is_null();
    if overlapped && !L::Handles::IFS {
        // SAFETY: forwarded unchanged, under this function's own contract (ws2_32's).
        return unsafe {
            exports::send(
                E::process(),
                s,
                lpbuffers,
                dwbuffercount,
                lpnumberofbytessent,
                dwflags,
                lpoverlapped,
                lpcompletionroutine,
                lpthreadid,
                lperrno,
            )
        };
    }
    exports::slot(E::process(), "WSPSend", lperrno, SOCKET_ERROR, |d, _| {
        // SAFETY: ws2_32's contract: the array and its buffers are the caller's, readable and
        // unchanged for the call.
        let data = unsafe { SendView::new(view_buffers(lpbuffers, dwbuffercount)) };
        let transfer = d.with(exports::socket_of(s), |r| {
            let mut down_call = |args: &Sending<'_>| {
                let result = checked(down!(
                    r,
                    lpWSPSend(
                        r.socket,
                        lpbuffers,
                        dwbuffercount,
                        lpnumberofbytessent,
                        args.flags,
                        lpoverlapped,
                        lpcompletionroutine,
                        lpthreadid,
                    )
                ));
                // SAFETY: ws2_32's contract for the out-parameter, which the provider below
                // wrote if the call succeeded.
                transfer(result, unsafe { exports::peek_u32(lpnumberofbytessent) }, 0)
            };
            let args = Sending {
                buffers: SendBuffers::View(&data),
                flags: dwflags,
                to: None,
                overlapped,
            };
            d.relay
                .layer
                .send(&r.state, Call::new(args, &mut down_call))
                .into_outcome()
        })?;
        // A passed call's count is the provider below's; a refused one writes none.
        exports::transferred(transfer, overlapped)
    })
}

/// `WSPRecv`, in the layer's proc table: as [`pass_send`], the caller's buffers handed down
/// as they are (the layer never writes them).
#[allow(clippy::too_many_arguments)]
unsafe extern "system" fn pass_recv<E, L, C>(
    s: SOCKET,
    lpbuffers: *const WSABUF,
    dwbuffercount: u32,
    lpnumberofbytesrecvd: *mut u32,
    lpflags: *mut u32,
    lpoverlapped: *mut OVERLAPPED,
    lpcompletionroutine: winprov_bindings::ws2spi::LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    lpthreadid: *const WSATHREADID,
    lperrno: *const i32,
) -> i32
where
    E: Export<Dispatch = Layered<L, C>>,
    L: Layer,
    C: Catalog,
{
    if !lpoverlapped.is_null() && !L::Handles::IFS {
        // SAFETY: forwarded unchanged, under this function's own contract (ws2_32's).
        return unsafe {
            exports::recv(
                E::process(),
                s,
                lpbuffers,
                dwbuffercount,
                lpnumberofbytesrecvd,
                lpflags,
                lpoverlapped,
                lpcompletionroutine,
                lpthreadid,
                lperrno,
            )
        };
    }
    let below = |r: &Record<L::Socket>| {
        Ok(down!(
            r,
            lpWSPRecv(
                r.socket,
                lpbuffers,
                dwbuffercount,
                lpnumberofbytesrecvd,
                lpflags,
                lpoverlapped,
                lpcompletionroutine,
                lpthreadid,
            )
        ))
    };
    // SAFETY: this function's contract (ws2_32's for `WSPRecv`).
    unsafe {
        pass_receive::<E, L, C>(
            s,
            lpbuffers,
            dwbuffercount,
            lpnumberofbytesrecvd,
            lpflags,
            false,
            !lpoverlapped.is_null(),
            lperrno.cast_mut(),
            below,
        )
    }
}

/// `WSPRecvFrom`, in the layer's proc table: as [`pass_recv`], with the caller's `lpFrom` /
/// `lpFromlen` handed down too, so an IFS layer passes an overlapped receive down as the caller
/// made it (the provider below writes the address when it completes). A non-IFS layer's
/// overlapped one goes to the generated slot (refused: its address would outlive the relay's
/// copies).
#[allow(clippy::too_many_arguments)]
unsafe extern "system" fn pass_recv_from<E, L, C>(
    s: SOCKET,
    lpbuffers: *const WSABUF,
    dwbuffercount: u32,
    lpnumberofbytesrecvd: *mut u32,
    lpflags: *mut u32,
    lpfrom: *mut SOCKADDR,
    lpfromlen: *mut i32,
    lpoverlapped: *mut OVERLAPPED,
    lpcompletionroutine: winprov_bindings::ws2spi::LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    lpthreadid: *const WSATHREADID,
    lperrno: *mut i32,
) -> i32
where
    E: Export<Dispatch = Layered<L, C>>,
    L: Layer,
    C: Catalog,
{
    if !lpoverlapped.is_null() && !L::Handles::IFS {
        // SAFETY: forwarded unchanged, under this function's own contract (ws2_32's).
        return unsafe {
            exports::recv_from(
                E::process(),
                s,
                lpbuffers,
                dwbuffercount,
                lpnumberofbytesrecvd,
                lpflags,
                lpfrom,
                lpfromlen,
                lpoverlapped,
                lpcompletionroutine,
                lpthreadid,
                lperrno,
            )
        };
    }
    let below = |r: &Record<L::Socket>| {
        Ok(down!(
            r,
            lpWSPRecvFrom(
                r.socket,
                lpbuffers,
                dwbuffercount,
                lpnumberofbytesrecvd,
                lpflags,
                lpfrom,
                lpfromlen,
                lpoverlapped,
                lpcompletionroutine,
                lpthreadid,
            )
        ))
    };
    // SAFETY: this function's contract (ws2_32's for `WSPRecvFrom`).
    unsafe {
        pass_receive::<E, L, C>(
            s,
            lpbuffers,
            dwbuffercount,
            lpnumberofbytesrecvd,
            lpflags,
            true,
            !lpoverlapped.is_null(),
            lperrno,
            below,
        )
    }
}

/// The body of [`pass_recv`] and [`pass_recv_from`] (`from`: `WSPRecvFrom`): the export's
/// frame, the author's hook, and `below`, the call below with the caller's own array,
/// out-parameters and request (its return value and `lpErrno`).
///
/// # Safety
/// ws2_32's contract for `WSPRecv` / `WSPRecvFrom`'s arguments.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn pass_receive<E, L, C>(
    s: SOCKET,
    lpbuffers: *const WSABUF,
    dwbuffercount: u32,
    lpnumberofbytesrecvd: *mut u32,
    lpflags: *mut u32,
    from: bool,
    overlapped: bool,
    lperrno: *mut i32,
    below: impl Fn(&Record<L::Socket>) -> Result<(i32, i32), WsaError>,
) -> i32
where
    E: Export<Dispatch = Layered<L, C>>,
    L: Layer,
    C: Catalog,
{
    let export = if from { "WSPRecvFrom" } else { "WSPRecv" };
    exports::slot(E::process(), export, lperrno, SOCKET_ERROR, |d, _| {
        // SAFETY: ws2_32's contract for the array (its buffers are only measured here).
        let view = unsafe { view_buffers(lpbuffers, dwbuffercount) };
        // SAFETY: lpFlags is an in/out DWORD (ws2_32's contract).
        let in_flags = unsafe { exports::peek_u32(lpflags) };
        let transfer = d.with(exports::socket_of(s), |r| {
            // The hook cannot change the arguments: the caller's go down as they are.
            let mut down_call = |_: &Receiving| {
                let result = checked(below(r)?);
                // SAFETY: ws2_32's contract for the out-parameters, which the provider below
                // wrote if the call succeeded.
                let (received, flags) = unsafe {
                    (
                        exports::peek_u32(lpnumberofbytesrecvd),
                        exports::peek_u32(lpflags),
                    )
                };
                transfer(result, received, flags)
            };
            let args = Receiving {
                capacity: view.capacity(),
                flags: in_flags,
                overlapped,
                from,
            };
            d.relay
                .layer
                .recv(&r.state, Call::new(args, &mut down_call))
                .into_outcome()
        })?;
        // A passed call's count, flags and address are the provider below's; a refused one
        // writes none.
        exports::transferred(transfer, overlapped)
    })
}
