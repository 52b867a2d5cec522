//! ws2_32 played through a provider DLL's real exported ABI (feature `testing`).
//!
//! Where [`testing::Host`](super::Host) drives a [`Runtime`](crate::Runtime) directly, this
//! module is the host a provider DLL meets in a process: [`Winsock::start`] calls the DLL's
//! `WSPStartup` through a function pointer (as ws2_32 calls the one `GetProcAddress` gave it)
//! with an upcall table of `extern "system"` functions implemented here, then calls the slots
//! of the `WSPPROC_TABLE` it got back, as ws2_32 does for an application's calls. What the
//! provider does with the host's mechanisms — socket handles, events, APCs, window messages,
//! completion ports and [`WPUCompleteOverlappedRequest`] — is simulated, recorded and checked.
//!
//! # One simulated ws2_32 per process
//!
//! The upcalls are plain functions that capture nothing, so the simulated ws2_32 is
//! process-wide state behind a lock, as a provider DLL's own state (its startup count) is. Tests
//! take turns: [`Winsock::start`] waits for the process's [`Turn`] and holds it until the
//! `Winsock` is dropped or [finished](Winsock::finish); every turn starts from a fresh simulated
//! ws2_32. Values handed out (sockets, events, threads, windows, ports) are never reused within
//! the process. A `Winsock` dropped without [`finish`](Winsock::finish) (a test that panicked)
//! calls the provider's `WSPCleanup` for each startup it made, raising nothing, so the next turn
//! finds the provider stopped. A thread that holds a turn waits forever for a second one: to
//! start a provider again in the same test, [`finish`](Winsock::finish) gives the turn back for
//! [`Winsock::start_in`].
//!
//! # What is simulated
//!
//! - The upcall table (15 slots): `WPUCreateSocketHandle` hands out a fresh `SOCKET` and keeps
//!   its catalog entry and context for `WPUQuerySocketHandleContext`; `WPUCloseSocketHandle`
//!   closes it (a second close, or an unknown handle, is `WSAENOTSOCK`, recorded);
//!   `WPUModifyIFSHandle` returns the proposed handle. Events (`WPUCreateEvent`, `WPUSetEvent`,
//!   `WPUResetEvent`, `WPUCloseEvent`) are values this module hands out, with their state and
//!   how often each was set ([`Winsock::event_state`]). `WPUQueueApc` queues to the simulated
//!   thread a `WSATHREADID` names; the APCs run only in that thread's alertable wait,
//!   [`Winsock::run_apcs`], in FIFO order, on the calling Rust thread. `WPUPostMessage` goes to
//!   a per-window queue ([`Winsock::take_messages`]). `WPUOpenCurrentThread` / `WPUCloseThread` hand
//!   out and close extra handles of the calling thread's simulated thread;
//!   `WPUQueryBlockingCallback`, `WPUGetProviderPath` and `WPUFDIsSet` answer as ws2_32 does.
//!   Every upcall is logged ([`Winsock::upcalls`]; the log lives as long as the turn).
//! - [`WPUCompleteOverlappedRequest`], which is a ws2_32 export, not an upcall: a provider made
//!   for this simulator is given this module's function instead of the real one. On a handle
//!   `WPUCreateSocketHandle` made, it writes `InternalHigh` (bytes), then `Internal` (the error)
//!   with release ordering, then posts the completion to the port the socket is
//!   [associated](Winsock::associate) with when `hEvent`'s low bit is clear, else sets `hEvent`
//!   (low bit masked) when it is not NULL. It writes only into operations this simulator issued.
//! - The application's calls: one typed method of [`Winsock`] per slot a test needs, each
//!   returning `Result<_, WsaError>` from `SOCKET_ERROR` and `*lpErrno`. Overlapped calls are
//!   faithful: the `WSAOVERLAPPED` and the data buffers are the simulator's and stay valid until
//!   the test [forgets](Winsock::forget) the operation; the `WSABUF` array and the `WSATHREADID`
//!   passed are the call's own and are scribbled over as soon as the call returns (each buffer
//!   pointer redirected to a trap filled with [`SCRIBBLE`], the thread id set to
//!   [`SCRIBBLED_THREAD`]), so a provider that kept the pointers instead of copies is caught
//!   rather than left to read freed memory. A completion routine is this module's own function,
//!   which records the completion with the simulated thread it ran on.
//!
//! # Checks
//!
//! Each is recorded with its rule's ID when it happens (an upcall must not panic) and raised as
//! a panic by the next call of the [`Winsock`], by [`check`](Winsock::check) or by
//! [`finish`](Winsock::finish):
//!
//! - an overlapped call that returned 0 has its completion already signalled, with no error and
//!   the count the call returned (or its routine already queued to its thread); one that
//!   returned `WSA_IO_PENDING` is completed at most once; one that failed otherwise is never
//!   completed; a completion names the socket the call was made on and an operation the
//!   simulator issued (R-WSP-16);
//! - a completion comes through the mechanism its call chose: `WPUCompleteOverlappedRequest`
//!   for an event or a port, never a direct `WPUSetEvent` of the operation's event; the routine
//!   through an APC run by its initiating thread, never called outside an alertable wait nor
//!   on another thread (R-WSP-14);
//! - once `WSPCloseSocket` returned, nothing of that socket reaches the host (completion, APC,
//!   message, selected event), the close posted no `FD_CLOSE`, every operation pending when it
//!   began has completed with `WSA_OPERATION_ABORTED` (995), and a call on the handle (until
//!   the provider hands the value out again) fails with `WSAENOTSOCK` (R-WSP-14);
//! - the final `WSPCleanup` sets no event, queues no APC, posts no message and completes no
//!   request while it runs; once it returned the DLL may be unloaded: no upcall at all arrives
//!   any more, and the APCs still queued never run (R-WSP-15);
//! - the provider copies the `WSABUF` array and the `WSATHREADID` before an overlapped call
//!   returns: nothing is written through the scribbled array, no APC is queued to the
//!   scribbled thread id (R-WSP-17);
//! - `WPUCompleteOverlappedRequest` on a handle `WPUCreateSocketHandle` did not make, or one
//!   already closed, fails with `WSAEINVAL`; its `dwError` is never `WSS_OPERATION_IN_PROGRESS`,
//!   which would leave the operation in progress (R-WSP-18);
//! - no `WPUCreateSocketHandle` for a catalog entry whose `WSAPROTOCOL_INFOW` sets
//!   `XP1_IFS_HANDLES`, and no provider that uses both `WPUCreateSocketHandle` and
//!   `WPUModifyIFSHandle` (R-WSP-19).
//!
//! # Example
//!
//! A provider with `WSPSocket` alone, through its generated export:
//!
//! ```
//! use winprov_wsp::abi::{Dispatch, Host, ProtocolInfo, Socket};
//! use winprov_wsp::testing::winsock::{Winsock, base_protocol};
//! use winprov_wsp::WsaError;
//!
//! #[derive(Default)]
//! struct Sockets;
//!
//! impl Dispatch for Sockets {
//!     fn socket(
//!         &self,
//!         host: &Host<'_>,
//!         _: i32,
//!         _: i32,
//!         _: i32,
//!         info: Option<&ProtocolInfo>,
//!         _: u32,
//!         _: u32,
//!     ) -> Result<Socket, WsaError> {
//!         let catalog = info.map_or(0, ProtocolInfo::catalog_entry_id);
//!         host.upcalls()?.create_socket_handle(catalog, 7)
//!     }
//! }
//!
//! winprov_wsp::export_provider!(Sockets, Sockets::default);
//!
//! let ws = Winsock::start(WSPStartup, base_protocol(0x42, 0)).unwrap();
//! let socket = ws.socket(2, 1, 6).unwrap();
//! let handle = ws.handle(socket).expect("made by WPUCreateSocketHandle");
//! assert_eq!((handle.catalog_entry_id, handle.context), (0x42, 7));
//! ws.finish();
//! ```

use crate::abi::{Linger, NetworkEvents, Socket};
use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, LazyLock, Mutex, MutexGuard, PoisonError};
use winprov_bindings::windows_core::{BOOL, GUID, PCSTR, PSTR, PWSTR};
use winprov_bindings::ws2spi::{
    FD_SET, HANDLE, HWND, INVALID_SOCKET, LPARAM, LPBLOCKINGCALLBACK, LPWSAUSERAPC, OVERLAPPED,
    SO_DONTLINGER, SO_LINGER, SOCKADDR, SOCKET, SOCKET_ERROR, SOL_SOCKET, WPARAM, WSABUF, WSAEVENT,
    WSANETWORKEVENTS, WSAPROTOCOL_INFOW, WSATHREADID, WSPDATA, WSPPROC_TABLE, WSPUPCALLTABLE,
    XP1_IFS_HANDLES,
};
use winprov_core::{WsaError, boundary, ffi};

/// `SIO_GET_EXTENSION_FUNCTION_POINTER` (mswsock.h).
pub const SIO_GET_EXTENSION_FUNCTION_POINTER: u32 = 0xC800_0006;
/// `WSAID_ACCEPTEX` (mswsock.h).
pub const WSAID_ACCEPTEX: GUID = crate::abi::layer::WSAID_ACCEPTEX;
/// `WSAID_CONNECTEX`.
pub const WSAID_CONNECTEX: GUID = crate::abi::layer::WSAID_CONNECTEX;
/// `WSAID_DISCONNECTEX`.
pub const WSAID_DISCONNECTEX: GUID = crate::abi::layer::WSAID_DISCONNECTEX;
/// `WSAID_GETACCEPTEXSOCKADDRS`.
pub const WSAID_GETACCEPTEXSOCKADDRS: GUID = crate::abi::layer::WSAID_GETACCEPTEXSOCKADDRS;
/// `WSAID_TRANSMITFILE` (a function no layer of this crate hands out).
pub const WSAID_TRANSMITFILE: GUID = GUID::from_u128(0xb536_7df0_cbac_11cf_95ca_0080_5f48_a192);
/// `SO_UPDATE_ACCEPT_CONTEXT` (mswsock.h).
pub const SO_UPDATE_ACCEPT_CONTEXT: i32 = crate::abi::layer::SO_UPDATE_ACCEPT_CONTEXT;

/// `WSPStartup` as ws2_32 calls it: the function type of the bindings' `LPWSPSTARTUP`, which
/// [`export_provider!`](crate::export_provider) generates.
pub type Startup = unsafe extern "system" fn(
    u16,
    *const WSPDATA,
    *const WSAPROTOCOL_INFOW,
    WSPUPCALLTABLE,
    *mut WSPPROC_TABLE,
) -> i32;

/// `WSS_OPERATION_IN_PROGRESS`: the `Internal` of an operation not completed yet (a provider's
/// convention); `WPUCompleteOverlappedRequest` never leaves it there.
pub const WSS_OPERATION_IN_PROGRESS: u32 = 0x103;
/// `FIONBIO` (winsock2.h `_IOW('f', 126, u_long)`).
pub const FIONBIO: u32 = 0x8004_667E;
/// `FD_CLOSE`.
const FD_CLOSE: u16 = 0x20;
/// `WSA_FLAG_OVERLAPPED`, which ws2_32's `socket()` passes.
const WSA_FLAG_OVERLAPPED: u32 = 0x01;
/// The byte a call's `WSABUF` array's trap is filled with once the call returned.
pub const SCRIBBLE: u8 = 0xCC;
/// `ThreadHandle` and `Reserved` of a call's `WSATHREADID` once the call returned.
pub const SCRIBBLED_THREAD: usize = usize::from_ne_bytes([SCRIBBLE; size_of::<usize>()]);
/// `WSA_OPERATION_ABORTED` (995).
const ABORTED: u32 = 995;

// ---------------------------------------------------------------------------------------------
// Values

/// A simulated thread, named by the `ThreadHandle` of the `WSATHREADID`s the simulator passes
/// (`WPUOpenCurrentThread` hands out other handles of the same thread).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Thread(usize);

impl Thread {
    /// The thread's own handle value.
    pub fn handle(self) -> usize {
        self.0
    }
}

/// A simulated event object (`WSAEVENT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Event(isize);

impl Event {
    /// The `WSAEVENT` value.
    pub fn raw(self) -> isize {
        self.0
    }

    /// An event by its value (one a provider made with `WPUCreateEvent`).
    pub fn from_raw(raw: isize) -> Self {
        Self(raw)
    }
}

/// A simulated window (`HWND`) that `WPUPostMessage` posts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Window(usize);

impl Window {
    /// The `HWND` value.
    pub fn raw(self) -> usize {
        self.0
    }
}

/// Completion ports as a layered provider uses them ([`abi::Ports`](crate::abi::Ports)), in
/// the simulated ws2_32: give them to the layer (`Layered::with_ports`). A lower socket the
/// layer binds to such a port gets its requests completed as ws2_32 does for any request
/// (`InternalHigh`, then `Internal`, then the packet) when the provider below calls
/// [`WPUCompleteOverlappedRequest`] with a `WSAOVERLAPPED` this simulator did not issue; the
/// layer's thread waits for the packets. A new turn closes every port.
#[derive(Clone, Copy, Debug, Default)]
pub struct LayerPorts;

impl crate::abi::Ports for LayerPorts {
    fn create(&self) -> Result<usize, WsaError> {
        let port = fresh();
        let mut state = state();
        state.ports.insert(port, VecDeque::new());
        state.provider_ports.insert(port);
        Ok(port)
    }

    fn associate(&self, port: usize, socket: Socket, key: usize) -> Result<(), WsaError> {
        let mut state = state();
        if !state.provider_ports.contains(&port) {
            return Err(WsaError::WSAEINVAL);
        }
        state.associations.insert(socket.raw(), (port, key));
        Ok(())
    }

    fn wait(&self, port: usize) -> Option<crate::abi::PortPacket> {
        let mut state = state();
        loop {
            let packet = state.ports.get_mut(&port)?.pop_front();
            if let Some(packet) = packet {
                return Some(crate::abi::PortPacket {
                    key: packet.key,
                    overlapped: packet.op.0,
                    bytes: packet.bytes,
                });
            }
            state = PORT_READY
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn post(&self, port: usize, key: usize) -> Result<(), WsaError> {
        let mut state = state();
        let queue = state.ports.get_mut(&port).ok_or(WsaError::WSAEINVAL)?;
        queue.push_back(Packet {
            key,
            bytes: 0,
            op: Op(0),
            error: 0,
        });
        PORT_READY.notify_all();
        Ok(())
    }

    fn close(&self, port: usize) {
        let mut state = state();
        state.ports.remove(&port);
        state.provider_ports.remove(&port);
        PORT_READY.notify_all();
    }
}

/// A simulated I/O completion port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Port(usize);

impl Port {
    /// The port's handle value.
    pub fn raw(self) -> usize {
        self.0
    }
}

/// An overlapped operation the simulator issued: the address of its `WSAOVERLAPPED`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Op(usize);

impl Op {
    /// The `WSAOVERLAPPED`'s address (what the provider sees as `lpOverlapped`).
    pub fn address(self) -> usize {
        self.0
    }
}

/// The completion mechanism an overlapped call chooses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Via {
    /// `hEvent` is a fresh event: `WPUCompleteOverlappedRequest` sets it, or posts to the port
    /// the socket is associated with instead.
    Event,
    /// `hEvent` is a fresh event with its low bit set: the event is set, a port never told.
    EventOnly,
    /// `hEvent` is NULL: the port the socket is associated with, if any, is told.
    Port,
    /// A completion routine, to be queued with `WPUQueueApc` to this (initiating) thread.
    Routine(Thread),
}

/// What an overlapped call returned when it did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Issued {
    /// The operation.
    pub op: Op,
    /// `Some` when the call returned 0 (completed at once), `None` for `WSA_IO_PENDING`.
    pub done: Option<Done>,
}

impl Issued {
    /// Whether the call returned `WSA_IO_PENDING`.
    pub fn is_pending(&self) -> bool {
        self.done.is_none()
    }
}

/// A transfer's counts: `lpNumberOfBytes…` and `lpFlags` (`WSPGetOverlappedResult`'s too).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Done {
    /// Bytes transferred.
    pub bytes: u32,
    /// Flags.
    pub flags: u32,
}

/// One completion of an operation, as the host saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// `dwError`.
    pub error: u32,
    /// `cbTransferred`.
    pub bytes: u32,
    /// The flags: `Offset` when the request was completed, `dwFlags` of the routine.
    pub flags: u32,
    /// How it came.
    pub delivery: Delivery,
}

/// How a completion reached the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// `WPUCompleteOverlappedRequest` with this socket handle, which set `event` or posted to
    /// `port` (or neither, for a NULL `hEvent` and no port).
    Request {
        /// The handle passed.
        socket: Socket,
        /// The event set.
        event: Option<Event>,
        /// The port posted to.
        port: Option<Port>,
    },
    /// The completion routine, run by an APC in `thread`'s alertable wait (`None`: called
    /// outside any).
    Routine {
        /// The simulated thread it ran on.
        thread: Option<Thread>,
    },
}

/// The `WSAOVERLAPPED` as the application reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverlappedState {
    /// `Internal` (the error once completed).
    pub internal: usize,
    /// `InternalHigh` (the bytes).
    pub internal_high: usize,
    /// `Offset` (the flags, by convention).
    pub offset: u32,
    /// `OffsetHigh` (the error, by convention).
    pub offset_high: u32,
    /// `hEvent`.
    pub event: usize,
}

/// A message `WPUPostMessage` posted (`WSPAsyncSelect`'s notification).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message {
    /// The message number.
    pub message: u32,
    /// `wParam`: the socket.
    pub socket: Socket,
    /// `WSAGETSELECTEVENT(lParam)`: the `FD_*` bit.
    pub event: u16,
    /// `WSAGETSELECTERROR(lParam)`.
    pub error: u16,
}

/// A completion packet posted to a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    /// The key the socket was associated with.
    pub key: usize,
    /// Bytes transferred.
    pub bytes: u32,
    /// The operation.
    pub op: Op,
    /// `dwError`.
    pub error: u32,
}

/// A simulated event's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct EventState {
    /// Signalled now.
    pub signalled: bool,
    /// How often it was set (by `WPUSetEvent` or a completion).
    pub sets: u64,
    /// How often it was reset.
    pub resets: u64,
    /// Closed by `WPUCloseEvent`.
    pub closed: bool,
}

/// A handle `WPUCreateSocketHandle` made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandleState {
    /// The catalog entry it was made for.
    pub catalog_entry_id: u32,
    /// The context given.
    pub context: usize,
    /// Closed by `WPUCloseSocketHandle`.
    pub closed: bool,
    /// `WPUCloseSocketHandle` calls for it (more than one: the later ones failed).
    pub close_calls: u32,
}

/// One upcall, as the provider made it (the log of [`Winsock::upcalls`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Upcall {
    /// `WPUCloseEvent`.
    CloseEvent {
        /// The event.
        event: isize,
        /// Whether it succeeded.
        ok: bool,
    },
    /// `WPUCloseSocketHandle`.
    CloseSocketHandle {
        /// The handle.
        socket: Socket,
        /// The outcome.
        result: Result<(), WsaError>,
    },
    /// `WPUCreateEvent`.
    CreateEvent {
        /// The event made.
        event: isize,
    },
    /// `WPUCreateSocketHandle`.
    CreateSocketHandle {
        /// `dwCatalogEntryId`.
        catalog_entry_id: u32,
        /// `dwContext`.
        context: usize,
        /// The handle made.
        socket: Socket,
    },
    /// `WPUFDIsSet`.
    FdIsSet {
        /// The socket asked about.
        socket: Socket,
        /// The answer.
        set: bool,
    },
    /// `WPUGetProviderPath`.
    GetProviderPath {
        /// The outcome.
        result: Result<(), WsaError>,
    },
    /// `WPUModifyIFSHandle`.
    ModifyIfsHandle {
        /// `dwCatalogEntryId`.
        catalog_entry_id: u32,
        /// `ProposedHandle`.
        proposed: Socket,
    },
    /// `WPUPostMessage`.
    PostMessage {
        /// The window.
        window: usize,
        /// The message.
        message: u32,
        /// `wParam`.
        wparam: usize,
        /// `lParam`.
        lparam: isize,
        /// Whether it was posted (the window exists).
        posted: bool,
    },
    /// `WPUQueryBlockingCallback`.
    QueryBlockingCallback {
        /// `dwCatalogEntryId`.
        catalog_entry_id: u32,
    },
    /// `WPUQuerySocketHandleContext`.
    QuerySocketHandleContext {
        /// The handle.
        socket: Socket,
        /// The context, or the error.
        result: Result<usize, WsaError>,
    },
    /// `WPUQueueApc`.
    QueueApc {
        /// `ThreadHandle` of the `WSATHREADID` passed.
        thread: usize,
        /// `dwContext`.
        context: usize,
        /// The outcome.
        result: Result<(), WsaError>,
    },
    /// `WPUResetEvent`.
    ResetEvent {
        /// The event.
        event: isize,
        /// Whether it succeeded.
        ok: bool,
    },
    /// `WPUSetEvent`.
    SetEvent {
        /// The event.
        event: isize,
        /// Whether it succeeded.
        ok: bool,
    },
    /// `WPUOpenCurrentThread`.
    OpenCurrentThread {
        /// The thread the handle names.
        thread: Thread,
        /// The handle handed out.
        handle: usize,
    },
    /// `WPUCloseThread`.
    CloseThread {
        /// The handle.
        handle: usize,
        /// The outcome.
        result: Result<(), WsaError>,
    },
    /// `WPUCompleteOverlappedRequest` (the export).
    CompleteOverlappedRequest {
        /// `s`.
        socket: Socket,
        /// `lpOverlapped`'s address.
        overlapped: usize,
        /// `dwError`.
        error: u32,
        /// `cbTransferred`.
        bytes: u32,
        /// The outcome.
        result: Result<(), WsaError>,
    },
}

/// A `WSAPROTOCOL_INFOW` for a base provider's catalog entry: `ChainLen` 1 (`BASE_PROTOCOL`),
/// the given catalog entry id and `dwServiceFlags1` (`XP1_*`), `AF_INET`, `SOCK_STREAM`,
/// `IPPROTO_TCP`, a fixed `ProviderId` and the name "winprov simulated protocol".
pub fn base_protocol(catalog_entry_id: u32, service_flags: u32) -> WSAPROTOCOL_INFOW {
    let mut info = WSAPROTOCOL_INFOW {
        dwServiceFlags1: service_flags,
        dwCatalogEntryId: catalog_entry_id,
        ProviderId: GUID::from_u128(0x7769_6e70_726f_7600_0000_0000_0000_0001),
        iVersion: 2,
        iAddressFamily: 2,
        iMaxSockAddr: 16,
        iMinSockAddr: 16,
        iSocketType: 1,
        iProtocol: 6,
        ..WSAPROTOCOL_INFOW::default()
    };
    info.ProtocolChain.ChainLen = 1;
    for (unit, out) in "winprov simulated protocol"
        .encode_utf16()
        .zip(info.szProtocol.iter_mut())
    {
        *out = unit;
    }
    info
}

// ---------------------------------------------------------------------------------------------
// The process's simulated ws2_32

static TURN: Mutex<()> = Mutex::new(());
static STATE: LazyLock<Mutex<State>> = LazyLock::new(|| Mutex::new(State::default()));
/// Signalled when a packet reaches a port of [`LayerPorts`], or one closes.
static PORT_READY: Condvar = Condvar::new();
/// Handle values: never zero, multiples of 4 (the low bits clear, as Windows handles), never
/// reused within the process.
static NEXT_VALUE: AtomicUsize = AtomicUsize::new(0x1_0000);

fn fresh() -> usize {
    NEXT_VALUE.fetch_add(4, Ordering::Relaxed)
}

fn state() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The catalog entry a live handle `WPUCreateSocketHandle` made is for (for a provider
/// simulated alongside, checking whose handle it was given).
pub(crate) fn handle_entry(socket: usize) -> Option<u32> {
    state()
        .handles
        .get(&socket)
        .filter(|h| h.closed_at.is_none())
        .map(|h| h.catalog_entry_id)
}

thread_local! {
    /// The APC being run on this Rust thread: its simulated thread and when it was queued.
    static RUNNING: Cell<Option<(usize, u64)>> = const { Cell::new(None) };
    /// The sockets whose close ran on another thread when the running APC was queued.
    static RUNNING_RACING: std::cell::RefCell<Vec<usize>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The process's simulated ws2_32, held: see the [module documentation](self).
#[derive(Debug)]
pub struct Turn {
    _guard: MutexGuard<'static, ()>,
}

/// Waits for the process's simulated ws2_32 and resets it. [`Winsock::start`] takes it; hold one
/// yourself to start several providers in a row ([`Winsock::start_in`]) without another test
/// coming between.
pub fn turn() -> Turn {
    let guard = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    state().reset();
    Turn { _guard: guard }
}

/// The memory of one overlapped call: the `WSAOVERLAPPED` and data buffers (the simulator's,
/// valid until the operation is forgotten), the call's `WSABUF` array and `WSATHREADID` (the
/// call's, scribbled when it returns) and the trap the scribbled array points to. Reached only
/// through raw pointers: the provider writes into it under ws2_32's contract.
/// The pointers of an operation's memory, for the call that issues it.
struct OpCall {
    overlapped: *mut OVERLAPPED,
    array: *const WSABUF,
    count: u32,
    thread: *const WSATHREADID,
    routine: winprov_bindings::ws2spi::LPWSAOVERLAPPED_COMPLETION_ROUTINE,
}

struct OpMemory {
    overlapped: NonNull<OVERLAPPED>,
    buffers: NonNull<[u8]>,
    lens: Vec<u32>,
    array: NonNull<[WSABUF]>,
    thread: NonNull<WSATHREADID>,
    trap: NonNull<[u8]>,
}

// SAFETY: the memory belongs to the record that holds this value (allocated by `new`, freed
// by `free`); it is reached through raw pointers only, by whoever holds the state's lock or by
// the provider, which ws2_32's contract lets use it until the operation completes.
unsafe impl Send for OpMemory {}

fn leak<T: ?Sized>(value: Box<T>) -> NonNull<T> {
    NonNull::from(Box::leak(value))
}

impl OpMemory {
    fn new(lens: &[u32], data: Option<&[u8]>, event: usize, thread: WSATHREADID) -> Self {
        let total = lens.iter().map(|len| *len as usize).sum();
        let mut bytes = vec![0u8; total];
        if let Some(data) = data {
            bytes[..data.len()].copy_from_slice(data);
        }
        let buffers = leak(bytes.into_boxed_slice());
        let base = buffers.as_ptr().cast::<u8>();
        base.expose_provenance();
        let mut at = 0;
        let array: Vec<WSABUF> = lens
            .iter()
            .map(|&len| {
                let buf = base.wrapping_add(at);
                at += len as usize;
                WSABUF {
                    len,
                    buf: PSTR(buf),
                }
            })
            .collect();
        let overlapped = leak(Box::new(OVERLAPPED {
            hEvent: HANDLE(std::ptr::without_provenance_mut(event)),
            ..OVERLAPPED::default()
        }));
        overlapped.as_ptr().expose_provenance();
        let trap_len = lens.iter().copied().max().unwrap_or(0) as usize;
        Self {
            overlapped,
            buffers,
            lens: lens.to_vec(),
            array: leak(array.into_boxed_slice()),
            thread: leak(Box::new(thread)),
            trap: leak(vec![SCRIBBLE; trap_len].into_boxed_slice()),
        }
    }

    fn address(&self) -> usize {
        self.overlapped.as_ptr().addr()
    }

    /// Frees the memory.
    ///
    /// # Safety
    /// Nobody, the provider included, uses it any more.
    unsafe fn free(self) {
        // SAFETY: each pointer came from `Box::leak` in `new` and is freed once, here; the
        // caller's contract says nobody uses them.
        unsafe {
            drop(Box::from_raw(self.overlapped.as_ptr()));
            drop(Box::from_raw(self.buffers.as_ptr()));
            drop(Box::from_raw(self.array.as_ptr()));
            drop(Box::from_raw(self.thread.as_ptr()));
            drop(Box::from_raw(self.trap.as_ptr()));
        }
    }

    /// What the caller does with its stack frame once the call returned: the array's buffers
    /// now point into the trap (their lengths kept, so a late write lands there), the thread
    /// id is garbage.
    fn scribble(&self) {
        let trap = PSTR(self.trap.as_ptr().cast::<u8>());
        let array = self.array.as_ptr().cast::<WSABUF>();
        for i in 0..self.array.len() {
            // SAFETY: `i` is within the array this value allocated and still owns; the call
            // that was lent it has returned.
            unsafe { (*array.add(i)).buf = trap };
        }
        let garbage = WSATHREADID {
            ThreadHandle: HANDLE(std::ptr::without_provenance_mut(SCRIBBLED_THREAD)),
            Reserved: SCRIBBLED_THREAD,
        };
        // SAFETY: as above, for the thread id.
        unsafe { self.thread.as_ptr().write(garbage) };
    }

    fn trap_intact(&self) -> bool {
        let len = self.trap.len();
        let base = self.trap.as_ptr().cast::<u8>();
        // SAFETY: the trap is ours and alive; read byte by byte (volatile: a stale writer is
        // what is looked for).
        (0..len).all(|i| unsafe { base.add(i).read_volatile() } == SCRIBBLE)
    }

    /// `WPUCompleteOverlappedRequest`'s writes: `InternalHigh`, then `Internal` (release).
    fn complete(&self, error: u32, bytes: u32) {
        let ptr = self.overlapped.as_ptr();
        // SAFETY: ours and alive (the caller holds the state's lock, without which it is not
        // freed); both fields are `usize`-aligned parts of the structure.
        unsafe {
            AtomicUsize::from_ptr(&raw mut (*ptr).InternalHigh)
                .store(bytes as usize, Ordering::Relaxed);
            AtomicUsize::from_ptr(&raw mut (*ptr).Internal)
                .store(error as usize, Ordering::Release);
        }
    }

    fn status(&self) -> OverlappedState {
        let ptr = self.overlapped.as_ptr();
        // SAFETY: ours and alive; `Internal` read first (acquire), then the rest, as an
        // application reads it.
        unsafe {
            let internal = AtomicUsize::from_ptr(&raw mut (*ptr).Internal).load(Ordering::Acquire);
            let internal_high =
                AtomicUsize::from_ptr(&raw mut (*ptr).InternalHigh).load(Ordering::Relaxed);
            let offsets = (&raw const (*ptr).Anonymous.Anonymous).read_volatile();
            let event = (&raw const (*ptr).hEvent).read_volatile();
            OverlappedState {
                internal,
                internal_high,
                offset: offsets.Offset,
                offset_high: offsets.OffsetHigh,
                event: event.0.addr(),
            }
        }
    }

    /// The first `n` bytes of the buffers, in order.
    fn data(&self, n: usize) -> Vec<u8> {
        let n = n.min(self.buffers.len());
        let base = self.buffers.as_ptr().cast::<u8>();
        // SAFETY: ours and alive; `n` is within the allocation. Read once the operation
        // completed (the provider writes no more).
        (0..n)
            .map(|i| unsafe { base.add(i).read_volatile() })
            .collect()
    }

    fn pointers(&self) -> (*mut OVERLAPPED, *const WSABUF, u32, *const WSATHREADID) {
        (
            self.overlapped.as_ptr(),
            self.array.as_ptr().cast::<WSABUF>(),
            self.lens.len() as u32,
            self.thread.as_ptr(),
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mechanism {
    /// Completed by `WPUCompleteOverlappedRequest`; `hEvent` as passed.
    Request { event: usize },
    /// A completion routine for this simulated thread.
    Routine { thread: usize },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Returned {
    Done(Done),
    Pending,
    Failed(WsaError),
}

struct OpRecord {
    socket: usize,
    what: &'static str,
    mechanism: Mechanism,
    memory: OpMemory,
    returned: Option<(u64, Returned)>,
    /// Each completion, with when it was signalled (the request made, the APC queued).
    completions: Vec<(u64, Completion)>,
    /// Pending when the final cleanup returned (no completion may follow).
    cancelled: bool,
    /// When its socket's close began and returned, if it was pending at the begin.
    close: Option<(u64, u64)>,
    /// Its completion was signalled, while its socket's close ran, by another thread than
    /// the close's: it raced with the close, and may have ended either way.
    raced_close: bool,
    trap_reported: bool,
}

impl OpRecord {
    /// Whether the provider can no longer touch the operation's memory.
    fn settled(&self) -> bool {
        match self.returned {
            Some((_, Returned::Failed(_))) => true,
            Some(_) => !self.completions.is_empty(),
            None => false,
        }
    }
}

#[derive(Default)]
struct SocketRecord {
    /// The Rust thread a close of it runs on (until it returns).
    closing: Option<std::thread::ThreadId>,
    closed_at: Option<u64>,
    /// The event `WSPEventSelect` gave it.
    event: Option<isize>,
    /// The window `WSPAsyncSelect` gave it.
    window: Option<usize>,
    ops: Vec<usize>,
}

struct EventRecord {
    state: EventState,
    /// The operation whose `hEvent` it is.
    op: Option<usize>,
}

struct Apc {
    function: LPWSAUSERAPC,
    context: usize,
    queued_at: u64,
    /// Sockets whose close ran on another thread when it was queued.
    racing: Vec<usize>,
}

struct HandleRecord {
    catalog_entry_id: u32,
    context: usize,
    closed_at: Option<u64>,
    close_calls: u32,
}

struct ThreadHandle {
    thread: usize,
    /// Made by `WPUOpenCurrentThread` (and closable by `WPUCloseThread`).
    opened: bool,
    closed: bool,
}

#[derive(Default)]
struct State {
    live: bool,
    seq: u64,
    protocol: Option<WSAPROTOCOL_INFOW>,
    provider_path: Vec<u16>,
    startups: u32,
    cleaning: bool,
    unloaded: bool,
    created_handles: u64,
    modified_handles: u64,
    handles: HashMap<usize, HandleRecord>,
    events: HashMap<isize, EventRecord>,
    thread_handles: HashMap<usize, ThreadHandle>,
    apcs: HashMap<usize, VecDeque<Apc>>,
    rust_threads: HashMap<std::thread::ThreadId, usize>,
    windows: HashMap<usize, Vec<Message>>,
    ports: HashMap<usize, VecDeque<Packet>>,
    /// Ports a layered provider made through [`LayerPorts`].
    provider_ports: std::collections::HashSet<usize>,
    associations: HashMap<usize, (usize, usize)>,
    sockets: HashMap<usize, SocketRecord>,
    ops: HashMap<usize, OpRecord>,
    upcalls: Vec<Upcall>,
    violations: Vec<String>,
    blocking_callbacks: u64,
}

impl State {
    fn next(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn violation(&mut self, message: String) {
        tracing::error!(%message, "ws2_32 simulator");
        self.violations.push(message);
    }

    /// Back to a fresh ws2_32. Operations the provider may still write into are leaked rather
    /// than freed.
    fn reset(&mut self) {
        let unloaded = self.unloaded || self.startups == 0;
        for (_, op) in self.ops.drain() {
            if unloaded || op.settled() {
                // SAFETY: the provider's final cleanup returned (nothing of it runs any more)
                // or the operation is over (failed, or completed): nobody uses its memory.
                unsafe { op.memory.free() };
            }
        }
        *self = State::default();
    }

    /// Every upcall's first check (R-WSP-15): nothing after the final cleanup returned, no
    /// notification while it runs.
    fn arrived(&mut self, name: &str, notifies: bool) {
        if self.unloaded {
            self.violation(format!(
                "R-WSP-15: {name} after the final WSPCleanup returned (the DLL may be unloaded \
                 by then)"
            ));
        } else if self.cleaning && notifies {
            self.violation(format!(
                "R-WSP-15: {name} during the final WSPCleanup, which cancels without \
                 notifications"
            ));
        }
    }

    /// The sockets whose close runs now on another thread than the caller's.
    fn racing_closes(&self) -> Vec<usize> {
        let me = std::thread::current().id();
        self.sockets
            .iter()
            .filter(|(_, record)| record.closing.is_some_and(|closing| closing != me))
            .map(|(socket, _)| *socket)
            .collect()
    }

    fn new_thread(&mut self) -> usize {
        let thread = fresh();
        self.thread_handles.insert(
            thread,
            ThreadHandle {
                thread,
                opened: false,
                closed: false,
            },
        );
        self.apcs.insert(thread, VecDeque::new());
        thread
    }

    /// The simulated thread the calling Rust thread is: the one whose APC it runs, else its
    /// own (made on first use).
    fn current_thread(&mut self) -> usize {
        if let Some((thread, _)) = RUNNING.get() {
            return thread;
        }
        let id = std::thread::current().id();
        if let Some(thread) = self.rust_threads.get(&id) {
            return *thread;
        }
        let thread = self.new_thread();
        self.rust_threads.insert(id, thread);
        thread
    }

    fn new_event(&mut self, op: Option<usize>) -> isize {
        let event = fresh() as isize;
        self.events.insert(
            event,
            EventRecord {
                state: EventState::default(),
                op,
            },
        );
        event
    }

    fn closed_at(&self, socket: usize) -> Option<u64> {
        self.sockets
            .get(&socket)
            .and_then(|record| record.closed_at)
    }

    /// The check of a call on an existing socket: after its close returned, `WSAENOTSOCK`
    /// (R-WSP-14).
    fn after_close<R: std::fmt::Debug>(
        &mut self,
        socket: Socket,
        begin: u64,
        what: &str,
        result: &Result<R, WsaError>,
    ) {
        let closed = self
            .closed_at(socket.raw())
            .is_some_and(|closed| closed < begin);
        if closed && !matches!(result, Err(WsaError::WSAENOTSOCK)) {
            self.violation(format!(
                "R-WSP-14: {what} on socket {:#x} after its close returned: {result:?}, not \
                 WSAENOTSOCK",
                socket.raw()
            ));
        }
    }

    /// Checks and records a completion of operation `id`, signalled at `at`.
    fn completed(&mut self, id: usize, at: u64, completion: Completion) {
        let Some(op) = self.ops.get(&id) else {
            self.violation(format!(
                "R-WSP-16: a completion of {id:#x}, which is not an outstanding operation \
                 (never issued, or forgotten)"
            ));
            return;
        };
        let mut found = Vec::new();
        let what = op.what;
        if let Some((_, Returned::Failed(error))) = op.returned {
            found.push(format!(
                "R-WSP-16: {what} {id:#x} completed although its call failed with {error}"
            ));
        }
        if !op.completions.is_empty() {
            found.push(format!("R-WSP-16: {what} {id:#x} completed twice"));
        }
        if op.cancelled {
            found.push(format!(
                "R-WSP-15: {what} {id:#x} completed after the final WSPCleanup cancelled it"
            ));
        }
        // Signalled from another thread while the close ran: a completion racing with the close
        // (the provider completed it before the close reached it), not one of the close's.
        let raced = self
            .sockets
            .get(&op.socket)
            .and_then(|record| record.closing)
            .is_some_and(|closing| closing != std::thread::current().id())
            || RUNNING_RACING.with_borrow(|racing| racing.contains(&op.socket));
        match (op.close, self.closed_at(op.socket)) {
            (_, Some(closed)) if closed < at => found.push(format!(
                "R-WSP-14: {what} {id:#x} completed after its socket {:#x}'s close returned",
                op.socket
            )),
            (Some((begin, end)), _)
                if begin < at && at <= end && completion.error != ABORTED && !raced =>
            {
                found.push(format!(
                    "R-WSP-14: {what} {id:#x} ended by its socket's close with error {}, not \
                     WSA_OPERATION_ABORTED (995)",
                    completion.error
                ))
            }
            _ => {}
        }
        let trap = !op.trap_reported && !op.memory.trap_intact();
        if let Some(op) = self.ops.get_mut(&id) {
            op.raced_close |= raced && op.completions.is_empty();
            op.completions.push((at, completion));
            op.trap_reported |= trap;
        }
        if trap {
            found.push(stale_array(what, id));
        }
        for message in found {
            self.violation(message);
        }
    }

    /// The R-WSP-17 check of every operation's trap.
    fn check_traps(&mut self) {
        let mut found = Vec::new();
        for (id, op) in &mut self.ops {
            if !op.trap_reported && !op.memory.trap_intact() {
                op.trap_reported = true;
                found.push(stale_array(op.what, *id));
            }
        }
        for message in found {
            self.violation(message);
        }
    }

    /// Whether a network event for `socket` may still reach the host at `at` (R-WSP-14):
    /// nothing after its close returned, no `FD_CLOSE` from the close itself (posted on the
    /// thread that runs it; one from another thread may race with it).
    fn network_event(&mut self, socket: usize, at: u64, event: Option<u16>, how: &str) {
        let Some(record) = self.sockets.get(&socket) else {
            return;
        };
        if record.closed_at.is_some_and(|closed| closed < at) {
            self.violation(format!(
                "R-WSP-14: {how} for socket {socket:#x} after its close returned"
            ));
        } else if record.closing == Some(std::thread::current().id())
            && event.is_some_and(|e| e & FD_CLOSE != 0)
        {
            self.violation(format!(
                "R-WSP-14: FD_CLOSE {how} for socket {socket:#x} by its close"
            ));
        }
    }
}

fn stale_array(what: &str, id: usize) -> String {
    format!(
        "R-WSP-17: bytes written through the WSABUF array of {what} {id:#x} after its call \
         returned (the array is the caller's for the call only: copy it)"
    )
}

fn set_errno(lperrno: *mut i32, error: WsaError) {
    // SAFETY: the provider passes its lpErrno for the call; checked for NULL and alignment.
    let _ = unsafe { ffi::write(lperrno, error.raw()) };
}

/// Every upcall's frame: the panic boundary, the state's lock, `lpErrno` on failure. With no
/// simulated ws2_32 running, the call fails with `WSANOTINITIALISED`.
fn upcall<R: Copy>(
    name: &'static str,
    failure: R,
    lperrno: *mut i32,
    body: impl FnOnce(&mut State) -> Result<R, WsaError>,
) -> R {
    boundary(name, failure, || {
        let result = {
            let mut state = state();
            if state.live {
                body(&mut state)
            } else {
                Err(WsaError::WSANOTINITIALISED)
            }
        };
        match result {
            Ok(value) => value,
            Err(error) => {
                set_errno(lperrno, error);
                failure
            }
        }
    })
}

fn bool_of(ok: bool) -> BOOL {
    BOOL(i32::from(ok))
}

// ---------------------------------------------------------------------------------------------
// The upcall table

unsafe extern "system" fn wpu_close_event(event: WSAEVENT, lperrno: *mut i32) -> BOOL {
    upcall("WPUCloseEvent", BOOL(0), lperrno, |state| {
        state.arrived("WPUCloseEvent", false);
        let ok = match state.events.get_mut(&event.0) {
            Some(record) if !record.state.closed => {
                record.state.closed = true;
                true
            }
            _ => false,
        };
        state
            .upcalls
            .push(Upcall::CloseEvent { event: event.0, ok });
        if ok {
            Ok(BOOL(1))
        } else {
            Err(WsaError::WSA_INVALID_HANDLE)
        }
    })
}

unsafe extern "system" fn wpu_close_socket_handle(s: SOCKET, lperrno: *mut i32) -> i32 {
    upcall("WPUCloseSocketHandle", SOCKET_ERROR, lperrno, |state| {
        state.arrived("WPUCloseSocketHandle", false);
        let at = state.next();
        let result = match state.handles.get_mut(&s.0) {
            Some(handle) => {
                handle.close_calls += 1;
                match handle.closed_at {
                    Some(_) => Err(WsaError::WSAENOTSOCK),
                    None => {
                        handle.closed_at = Some(at);
                        Ok(())
                    }
                }
            }
            None => Err(WsaError::WSAENOTSOCK),
        };
        state.upcalls.push(Upcall::CloseSocketHandle {
            socket: Socket::from_raw(s.0),
            result,
        });
        result.map(|()| 0)
    })
}

unsafe extern "system" fn wpu_create_event(lperrno: *mut i32) -> WSAEVENT {
    upcall("WPUCreateEvent", WSAEVENT(0), lperrno, |state| {
        state.arrived("WPUCreateEvent", false);
        let event = state.new_event(None);
        state.upcalls.push(Upcall::CreateEvent { event });
        Ok(WSAEVENT(event))
    })
}

unsafe extern "system" fn wpu_create_socket_handle(
    catalog_entry_id: u32,
    context: usize,
    lperrno: *mut i32,
) -> SOCKET {
    upcall("WPUCreateSocketHandle", INVALID_SOCKET, lperrno, |state| {
        state.arrived("WPUCreateSocketHandle", false);
        let socket = fresh();
        state.handles.insert(
            socket,
            HandleRecord {
                catalog_entry_id,
                context,
                closed_at: None,
                close_calls: 0,
            },
        );
        state.created_handles += 1;
        let ifs = state.protocol.is_some_and(|info| {
            info.dwCatalogEntryId == catalog_entry_id && info.dwServiceFlags1 & XP1_IFS_HANDLES != 0
        });
        if ifs {
            state.violation(format!(
                "R-WSP-19: WPUCreateSocketHandle for catalog entry {catalog_entry_id}, whose \
                 WSAPROTOCOL_INFOW sets XP1_IFS_HANDLES"
            ));
        }
        if state.modified_handles > 0 {
            state.violation(
                "R-WSP-19: WPUCreateSocketHandle by a provider that also makes IFS handles \
                 (WPUModifyIFSHandle)"
                    .to_string(),
            );
        }
        state.upcalls.push(Upcall::CreateSocketHandle {
            catalog_entry_id,
            context,
            socket: Socket::from_raw(socket),
        });
        Ok(SOCKET(socket))
    })
}

unsafe extern "system" fn wpu_fd_is_set(s: SOCKET, fdset: *const FD_SET) -> i32 {
    upcall("WPUFDIsSet", 0, std::ptr::null_mut(), |state| {
        state.arrived("WPUFDIsSet", false);
        // SAFETY: the provider passes an fd_set it lets ws2_32 read; checked for NULL and
        // alignment.
        let set = match unsafe { ffi::read(fdset) } {
            Ok(raw) => raw.fd_array[..(raw.fd_count as usize).min(raw.fd_array.len())].contains(&s),
            Err(_) => false,
        };
        state.upcalls.push(Upcall::FdIsSet {
            socket: Socket::from_raw(s.0),
            set,
        });
        Ok(i32::from(set))
    })
}

unsafe extern "system" fn wpu_get_provider_path(
    lpproviderid: *const GUID,
    lpszproviderdllpath: PWSTR,
    lpproviderdllpathlen: *mut i32,
    lperrno: *mut i32,
) -> i32 {
    upcall("WPUGetProviderPath", SOCKET_ERROR, lperrno, |state| {
        state.arrived("WPUGetProviderPath", false);
        let result = (|| {
            // SAFETY: the provider's GUID and in/out length; checked for NULL and alignment.
            let id = unsafe { ffi::read(lpproviderid) }.map_err(|_| WsaError::WSAEFAULT)?;
            // SAFETY: as above.
            let len =
                unsafe { ffi::read(lpproviderdllpathlen) }.map_err(|_| WsaError::WSAEFAULT)?;
            if state.protocol.is_none_or(|info| info.ProviderId != id) {
                return Err(WsaError::WSAEINVAL);
            }
            let needed = state.provider_path.len();
            if usize::try_from(len).unwrap_or(0) < needed {
                // SAFETY: checked above.
                let _ = unsafe { ffi::write(lpproviderdllpathlen, needed as i32) };
                return Err(WsaError::WSAEFAULT);
            }
            // SAFETY: the provider's buffer of `len >= needed` units; checked for NULL and
            // alignment.
            let out = unsafe { ffi::slice_mut(lpszproviderdllpath.0, needed) }
                .map_err(|_| WsaError::WSAEFAULT)?;
            out.copy_from_slice(&state.provider_path);
            // SAFETY: checked above.
            let _ = unsafe { ffi::write(lpproviderdllpathlen, needed as i32) };
            Ok(())
        })();
        state.upcalls.push(Upcall::GetProviderPath { result });
        result.map(|()| 0)
    })
}

unsafe extern "system" fn wpu_modify_ifs_handle(
    catalog_entry_id: u32,
    proposed: SOCKET,
    lperrno: *mut i32,
) -> SOCKET {
    upcall("WPUModifyIFSHandle", INVALID_SOCKET, lperrno, |state| {
        state.arrived("WPUModifyIFSHandle", false);
        state.upcalls.push(Upcall::ModifyIfsHandle {
            catalog_entry_id,
            proposed: Socket::from_raw(proposed.0),
        });
        if proposed == INVALID_SOCKET {
            return Err(WsaError::WSAEINVAL);
        }
        state.modified_handles += 1;
        if state.created_handles > 0 {
            state.violation(
                "R-WSP-19: WPUModifyIFSHandle by a provider that makes its handles with \
                 WPUCreateSocketHandle"
                    .to_string(),
            );
        }
        Ok(proposed)
    })
}

unsafe extern "system" fn wpu_post_message(
    hwnd: HWND,
    msg: u32,
    wparam: WPARAM,
    lparam: LPARAM,
) -> BOOL {
    upcall("WPUPostMessage", BOOL(0), std::ptr::null_mut(), |state| {
        state.arrived("WPUPostMessage", true);
        let at = state.next();
        let window = hwnd.0.addr();
        let event = lparam.0 as u16;
        state.network_event(wparam.0, at, Some(event), "message posted");
        let message = Message {
            message: msg,
            socket: Socket::from_raw(wparam.0),
            event,
            error: (lparam.0 >> 16) as u16,
        };
        let posted = match state.windows.get_mut(&window) {
            Some(queue) => {
                queue.push(message);
                true
            }
            None => false,
        };
        state.upcalls.push(Upcall::PostMessage {
            window,
            message: msg,
            wparam: wparam.0,
            lparam: lparam.0,
            posted,
        });
        Ok(bool_of(posted))
    })
}

/// The blocking hook `WPUQueryBlockingCallback` hands out: counts its calls, never cancels.
unsafe extern "system" fn blocking_callback(_context: usize) -> BOOL {
    boundary("blocking callback", BOOL(1), || {
        let mut state = state();
        state.arrived("the blocking callback", false);
        state.blocking_callbacks += 1;
        BOOL(1)
    })
}

unsafe extern "system" fn wpu_query_blocking_callback(
    catalog_entry_id: u32,
    lplpfncallback: *mut LPBLOCKINGCALLBACK,
    lpdwcontext: *mut usize,
    lperrno: *mut i32,
) -> i32 {
    upcall("WPUQueryBlockingCallback", SOCKET_ERROR, lperrno, |state| {
        state.arrived("WPUQueryBlockingCallback", false);
        state
            .upcalls
            .push(Upcall::QueryBlockingCallback { catalog_entry_id });
        // SAFETY: the provider's out-parameters; checked for NULL and alignment.
        unsafe {
            ffi::write(lplpfncallback, Some(blocking_callback)).map_err(|_| WsaError::WSAEFAULT)?;
            ffi::write(lpdwcontext, catalog_entry_id as usize).map_err(|_| WsaError::WSAEFAULT)?;
        }
        Ok(0)
    })
}

unsafe extern "system" fn wpu_query_socket_handle_context(
    s: SOCKET,
    lpcontext: *mut usize,
    lperrno: *mut i32,
) -> i32 {
    upcall(
        "WPUQuerySocketHandleContext",
        SOCKET_ERROR,
        lperrno,
        |state| {
            state.arrived("WPUQuerySocketHandleContext", false);
            let result = match state.handles.get(&s.0) {
                Some(handle) if handle.closed_at.is_none() => Ok(handle.context),
                _ => Err(WsaError::WSAENOTSOCK),
            };
            state.upcalls.push(Upcall::QuerySocketHandleContext {
                socket: Socket::from_raw(s.0),
                result,
            });
            let context = result?;
            // SAFETY: the provider's out-parameter; checked for NULL and alignment.
            unsafe { ffi::write(lpcontext, context) }.map_err(|_| WsaError::WSAEFAULT)?;
            Ok(0)
        },
    )
}

unsafe extern "system" fn wpu_queue_apc(
    lpthreadid: *const WSATHREADID,
    lpfnuserapc: LPWSAUSERAPC,
    dwcontext: usize,
    lperrno: *mut i32,
) -> i32 {
    upcall("WPUQueueApc", SOCKET_ERROR, lperrno, |state| {
        state.arrived("WPUQueueApc", true);
        let at = state.next();
        // SAFETY: the provider's WSATHREADID; checked for NULL and alignment.
        let raw = unsafe { ffi::read(lpthreadid) }.map_err(|_| WsaError::WSAEFAULT)?;
        let handle = raw.ThreadHandle.0.addr();
        let result = if handle == SCRIBBLED_THREAD {
            state.violation(
                "R-WSP-17: WPUQueueApc with the WSATHREADID of a call that has returned (the \
                 structure is the caller's for the call only: copy it)"
                    .to_string(),
            );
            Err(WsaError::WSAEINVAL)
        } else {
            match state.thread_handles.get(&handle) {
                Some(known) if !known.closed && lpfnuserapc.is_some() => {
                    let thread = known.thread;
                    let racing = state.racing_closes();
                    state.apcs.entry(thread).or_default().push_back(Apc {
                        function: lpfnuserapc,
                        context: dwcontext,
                        queued_at: at,
                        racing,
                    });
                    Ok(())
                }
                Some(_) if lpfnuserapc.is_none() => Err(WsaError::WSAEFAULT),
                _ => Err(WsaError::WSAEINVAL),
            }
        };
        state.upcalls.push(Upcall::QueueApc {
            thread: handle,
            context: dwcontext,
            result,
        });
        result.map(|()| 0)
    })
}

unsafe extern "system" fn wpu_reset_event(event: WSAEVENT, lperrno: *mut i32) -> BOOL {
    upcall("WPUResetEvent", BOOL(0), lperrno, |state| {
        state.arrived("WPUResetEvent", false);
        let ok = match state.events.get_mut(&event.0) {
            Some(record) if !record.state.closed => {
                record.state.signalled = false;
                record.state.resets += 1;
                true
            }
            _ => false,
        };
        state
            .upcalls
            .push(Upcall::ResetEvent { event: event.0, ok });
        if ok {
            Ok(BOOL(1))
        } else {
            Err(WsaError::WSA_INVALID_HANDLE)
        }
    })
}

unsafe extern "system" fn wpu_set_event(event: WSAEVENT, lperrno: *mut i32) -> BOOL {
    upcall("WPUSetEvent", BOOL(0), lperrno, |state| {
        state.arrived("WPUSetEvent", true);
        let at = state.next();
        let op = match state.events.get(&event.0) {
            Some(record) if !record.state.closed => Some(record.op),
            _ => None,
        };
        let Some(op) = op else {
            state.upcalls.push(Upcall::SetEvent {
                event: event.0,
                ok: false,
            });
            return Err(WsaError::WSA_INVALID_HANDLE);
        };
        if let Some(op) = op {
            state.violation(format!(
                "R-WSP-14: WPUSetEvent on the event of operation {op:#x}: its completion goes \
                 through WPUCompleteOverlappedRequest"
            ));
        }
        // The event of a closed socket's WSPEventSelect, selected by no open socket.
        let selectors: Vec<usize> = state
            .sockets
            .iter()
            .filter(|(_, record)| record.event == Some(event.0))
            .map(|(socket, _)| *socket)
            .collect();
        if !selectors.is_empty() && selectors.iter().all(|s| state.closed_at(*s).is_some()) {
            for socket in selectors {
                state.network_event(socket, at, None, "event set");
            }
        }
        if let Some(record) = state.events.get_mut(&event.0) {
            record.state.signalled = true;
            record.state.sets += 1;
        }
        state.upcalls.push(Upcall::SetEvent {
            event: event.0,
            ok: true,
        });
        Ok(BOOL(1))
    })
}

unsafe extern "system" fn wpu_open_current_thread(
    lpthreadid: *mut WSATHREADID,
    lperrno: *mut i32,
) -> i32 {
    upcall("WPUOpenCurrentThread", SOCKET_ERROR, lperrno, |state| {
        state.arrived("WPUOpenCurrentThread", false);
        let thread = state.current_thread();
        let handle = fresh();
        let raw = WSATHREADID {
            ThreadHandle: HANDLE(std::ptr::without_provenance_mut(handle)),
            Reserved: thread,
        };
        // SAFETY: the provider's out-parameter; checked for NULL and alignment.
        unsafe { ffi::write(lpthreadid, raw) }.map_err(|_| WsaError::WSAEFAULT)?;
        state.thread_handles.insert(
            handle,
            ThreadHandle {
                thread,
                opened: true,
                closed: false,
            },
        );
        state.upcalls.push(Upcall::OpenCurrentThread {
            thread: Thread(thread),
            handle,
        });
        Ok(0)
    })
}

unsafe extern "system" fn wpu_close_thread(
    lpthreadid: *const WSATHREADID,
    lperrno: *mut i32,
) -> i32 {
    upcall("WPUCloseThread", SOCKET_ERROR, lperrno, |state| {
        state.arrived("WPUCloseThread", false);
        // SAFETY: the provider's WSATHREADID; checked for NULL and alignment.
        let raw = unsafe { ffi::read(lpthreadid) }.map_err(|_| WsaError::WSAEFAULT)?;
        let handle = raw.ThreadHandle.0.addr();
        let result = match state.thread_handles.get_mut(&handle) {
            Some(known) if known.opened && !known.closed => {
                known.closed = true;
                Ok(())
            }
            _ => Err(WsaError::WSAEINVAL),
        };
        state.upcalls.push(Upcall::CloseThread { handle, result });
        result.map(|()| 0)
    })
}

/// The upcall table the simulator passes to `WSPStartup`: every slot filled.
fn upcall_table() -> WSPUPCALLTABLE {
    WSPUPCALLTABLE {
        lpWPUCloseEvent: Some(wpu_close_event),
        lpWPUCloseSocketHandle: Some(wpu_close_socket_handle),
        lpWPUCreateEvent: Some(wpu_create_event),
        lpWPUCreateSocketHandle: Some(wpu_create_socket_handle),
        lpWPUFDIsSet: Some(wpu_fd_is_set),
        lpWPUGetProviderPath: Some(wpu_get_provider_path),
        lpWPUModifyIFSHandle: Some(wpu_modify_ifs_handle),
        lpWPUPostMessage: Some(wpu_post_message),
        lpWPUQueryBlockingCallback: Some(wpu_query_blocking_callback),
        lpWPUQuerySocketHandleContext: Some(wpu_query_socket_handle_context),
        lpWPUQueueApc: Some(wpu_queue_apc),
        lpWPUResetEvent: Some(wpu_reset_event),
        lpWPUSetEvent: Some(wpu_set_event),
        lpWPUOpenCurrentThread: Some(wpu_open_current_thread),
        lpWPUCloseThread: Some(wpu_close_thread),
    }
}

// ---------------------------------------------------------------------------------------------
// Completions

/// ws2_32's `WPUCompleteOverlappedRequest`, simulated: give it to a provider in place of the
/// real export. See the [module documentation](self) for what it does and checks (R-WSP-14,
/// R-WSP-15, R-WSP-16, R-WSP-18). It writes only into a `WSAOVERLAPPED` of an operation this
/// simulator issued and has not forgotten; any other is `WSAEINVAL`.
///
/// # Safety
/// ws2_32's contract: `lperrno` is NULL or writable. `lpoverlapped` is only compared with the
/// operations the simulator issued, never dereferenced otherwise.
#[allow(non_snake_case)]
pub unsafe extern "system" fn WPUCompleteOverlappedRequest(
    s: SOCKET,
    lpoverlapped: *mut OVERLAPPED,
    dwerror: u32,
    cbtransferred: u32,
    lperrno: *mut i32,
) -> i32 {
    upcall(
        "WPUCompleteOverlappedRequest",
        SOCKET_ERROR,
        lperrno,
        |state| {
            state.arrived("WPUCompleteOverlappedRequest", true);
            let at = state.next();
            let (socket, id) = (s.0, lpoverlapped.addr());
            let result = complete_request(state, at, socket, id, dwerror, cbtransferred);
            state.upcalls.push(Upcall::CompleteOverlappedRequest {
                socket: Socket::from_raw(socket),
                overlapped: id,
                error: dwerror,
                bytes: cbtransferred,
                result,
            });
            result.map(|()| 0)
        },
    )
}

fn complete_request(
    state: &mut State,
    at: u64,
    socket: usize,
    id: usize,
    error: u32,
    bytes: u32,
) -> Result<(), WsaError> {
    match state.handles.get(&socket) {
        None => {
            state.violation(format!(
                "R-WSP-18: WPUCompleteOverlappedRequest on socket {socket:#x}, a handle \
                 WPUCreateSocketHandle did not make"
            ));
            return Err(WsaError::WSAEINVAL);
        }
        Some(handle) if handle.closed_at.is_some() => {
            state.violation(format!(
                "R-WSP-18: WPUCompleteOverlappedRequest on socket {socket:#x}, whose handle \
                 WPUCloseSocketHandle closed"
            ));
            return Err(WsaError::WSAEINVAL);
        }
        Some(_) => {}
    }
    if error == WSS_OPERATION_IN_PROGRESS {
        state.violation(format!(
            "R-WSP-18: WPUCompleteOverlappedRequest of {id:#x} with dwError \
             WSS_OPERATION_IN_PROGRESS, which leaves it in progress"
        ));
    }
    let provider_port = state
        .associations
        .get(&socket)
        .copied()
        .filter(|(port, _)| state.provider_ports.contains(port));
    if let (None, Some((port, key))) = (state.ops.get(&id), provider_port) {
        // A layered provider's own request to the provider below, on a lower socket the layer
        // bound to its port (`LayerPorts`): completed as ws2_32 completes any request.
        // SAFETY: the layer's `WSAOVERLAPPED`, which it keeps until it takes this packet;
        // the two fields are aligned usizes of the structure.
        unsafe {
            let overlapped: *mut OVERLAPPED = std::ptr::with_exposed_provenance_mut(id);
            (&raw mut (*overlapped).InternalHigh).write(bytes as usize);
            AtomicUsize::from_ptr(&raw mut (*overlapped).Internal)
                .store(error as usize, Ordering::Release);
        }
        if let Some(queue) = state.ports.get_mut(&port) {
            queue.push_back(Packet {
                key,
                bytes,
                op: Op(id),
                error,
            });
        }
        PORT_READY.notify_all();
        return Ok(());
    }
    let Some(op) = state.ops.get(&id) else {
        state.violation(format!(
            "R-WSP-16: WPUCompleteOverlappedRequest of {id:#x}, which is not an outstanding \
             operation (never issued, or forgotten)"
        ));
        return Err(WsaError::WSAEINVAL);
    };
    op.memory.complete(error, bytes);
    let status = op.memory.status();
    let (what, issued_on, mechanism) = (op.what, op.socket, op.mechanism);
    let mut delivery = Delivery::Request {
        socket: Socket::from_raw(socket),
        event: None,
        port: None,
    };
    let association = state.associations.get(&socket).copied();
    match association {
        Some((port, key)) if status.event & 1 == 0 => {
            state.ports.entry(port).or_default().push_back(Packet {
                key,
                bytes,
                op: Op(id),
                error,
            });
            if let Delivery::Request { port: p, .. } = &mut delivery {
                *p = Some(Port(port));
            }
        }
        _ if status.event & !1 != 0 => {
            let event = (status.event & !1) as isize;
            if let Some(record) = state.events.get_mut(&event) {
                record.state.signalled = true;
                record.state.sets += 1;
            }
            if let Delivery::Request { event: e, .. } = &mut delivery {
                *e = Some(Event(event));
            }
        }
        _ => {}
    }
    if let Mechanism::Routine { .. } = mechanism {
        state.violation(format!(
            "R-WSP-14: {what} {id:#x} has a completion routine, and was completed through \
             WPUCompleteOverlappedRequest instead of an APC to its thread"
        ));
    }
    if issued_on != socket {
        state.violation(format!(
            "R-WSP-16: {what} {id:#x}, issued on socket {issued_on:#x}, completed on socket \
             {socket:#x}"
        ));
    }
    state.completed(
        id,
        at,
        Completion {
            error,
            bytes,
            flags: status.offset,
            delivery,
        },
    );
    Ok(())
}

/// The completion routine every overlapped call with [`Via::Routine`] passes: records the
/// completion with the simulated thread whose APC runs it.
unsafe extern "system" fn completion_routine(
    dwerror: u32,
    cbtransferred: u32,
    lpoverlapped: *mut OVERLAPPED,
    dwflags: u32,
) {
    boundary("the completion routine", (), || {
        let running = RUNNING.get();
        let mut state = state();
        if !state.live {
            return;
        }
        let id = lpoverlapped.addr();
        let at = match running {
            Some((_, queued_at)) => queued_at,
            None => state.next(),
        };
        if state.unloaded {
            state.violation(format!(
                "R-WSP-15: the completion routine of {id:#x} ran after the final WSPCleanup \
                 returned"
            ));
        }
        if let Some(op) = state.ops.get(&id) {
            let (what, mechanism) = (op.what, op.mechanism);
            let message = match (mechanism, running) {
                (_, None) => Some(format!(
                    "R-WSP-14: the completion routine of {what} {id:#x} was called outside an \
                     alertable wait of its thread (a routine is queued with WPUQueueApc)"
                )),
                (Mechanism::Request { .. }, _) => Some(format!(
                    "R-WSP-14: {what} {id:#x}, which has no completion routine, completed \
                     through one"
                )),
                (Mechanism::Routine { thread }, Some((ran, _))) if thread != ran => Some(format!(
                    "R-WSP-14: the completion routine of {what} {id:#x} ran on thread \
                         {ran:#x}, not its initiating thread {thread:#x}"
                )),
                _ => None,
            };
            if let Some(message) = message {
                state.violation(message);
            }
        }
        state.completed(
            id,
            at,
            Completion {
                error: dwerror,
                bytes: cbtransferred,
                flags: dwflags,
                delivery: Delivery::Routine {
                    thread: running.map(|(thread, _)| Thread(thread)),
                },
            },
        );
    });
}

// ---------------------------------------------------------------------------------------------
// The driver

/// Raises the violations recorded so far, or gives the lock back.
fn raise(mut state: MutexGuard<'static, State>) -> MutexGuard<'static, State> {
    if state.violations.is_empty() {
        return state;
    }
    let violations = std::mem::take(&mut state.violations);
    drop(state);
    panic!("{}", violations.join("\n"));
}

/// An extension function's `BOOL`: `FALSE` with the last error (`WSASetLastError`).
fn bool_result(ok: BOOL) -> Result<(), WsaError> {
    if ok.as_bool() {
        Ok(())
    } else {
        Err(WsaError::from_raw(crate::abi::layer::last_error()))
    }
}

fn result_of(ret: i32, errno: i32) -> Result<(), WsaError> {
    if ret == SOCKET_ERROR {
        Err(WsaError::from_raw(errno))
    } else {
        Ok(())
    }
}

macro_rules! slot {
    ($self:ident . $field:ident) => {
        $self
            .table
            .$field
            .expect(concat!(stringify!($field), " checked by Winsock::start"))
    };
}

/// ws2_32, for one provider DLL: see the [module documentation](self).
#[derive(Debug)]
pub struct Winsock {
    startup: Startup,
    protocol: WSAPROTOCOL_INFOW,
    table: WSPPROC_TABLE,
    data: WSPDATA,
    finished: bool,
    turn: Option<Turn>,
}

impl Winsock {
    /// Takes the process's [`turn`], then `WSPStartup(2.2, …, protocol, upcalls, …)` through
    /// `startup`. A failed startup returns its code; a proc table with a NULL slot is
    /// `WSAEINVALIDPROCTABLE` (and the startup is paired with a `WSPCleanup`).
    pub fn start(startup: Startup, protocol: WSAPROTOCOL_INFOW) -> Result<Self, WsaError> {
        Self::start_in(turn(), startup, protocol)
    }

    /// [`start`](Self::start) in a turn already held.
    pub fn start_in(
        turn: Turn,
        startup: Startup,
        protocol: WSAPROTOCOL_INFOW,
    ) -> Result<Self, WsaError> {
        {
            let mut state = state();
            state.reset();
            state.live = true;
            state.protocol = Some(protocol);
            state.provider_path = ffi::to_wide_nul("%SystemRoot%\\system32\\winprov-provider.dll");
        }
        // A layer's thread still waiting on a port of the previous turn finds it gone.
        PORT_READY.notify_all();
        let (data, table) = Self::call_startup(startup, &protocol)?;
        Ok(Self {
            startup,
            protocol,
            table,
            data,
            finished: false,
            turn: Some(turn),
        })
    }

    fn call_startup(
        startup: Startup,
        protocol: &WSAPROTOCOL_INFOW,
    ) -> Result<(WSPDATA, WSPPROC_TABLE), WsaError> {
        let mut data = WSPDATA::default();
        let mut table = WSPPROC_TABLE::default();
        // The pointer ws2_32 got from GetProcAddress: opaque to the optimizer.
        let entry = std::hint::black_box(startup);
        // (The metadata types lpWSPData `const`; it is the provider's out-parameter.)
        let data_out = (&raw mut data).cast_const();
        // SAFETY: WSPStartup's contract: live locals for the out-parameters and the protocol
        // info, an upcall table whose functions live as long as the process.
        let code = unsafe { entry(0x0202, data_out, protocol, upcall_table(), &mut table) };
        if code != 0 {
            return Err(WsaError::from_raw(code));
        }
        // SAFETY: WSPPROC_TABLE is 30 `Option<fn>` fields, each a nullable pointer
        // (`Option<fn>` has the size of `usize`, NULL for `None`).
        let slots: [usize; 30] = unsafe { std::mem::transmute(table) };
        if slots.contains(&0) {
            let missing: Vec<&str> = crate::abi::table::SLOT_NAMES
                .iter()
                .zip(slots)
                .filter(|(_, slot)| *slot == 0)
                .map(|(name, _)| *name)
                .collect();
            tracing::error!(?missing, "WSPStartup returned a proc table with NULL slots");
            if let Some(cleanup) = table.lpWSPCleanup {
                let mut errno = 0;
                // SAFETY: the provider's own slot, with a live lpErrno.
                unsafe { cleanup(&mut errno) };
            }
            return Err(WsaError::WSAEINVALIDPROCTABLE);
        }
        {
            let mut state = state();
            state.startups += 1;
            state.unloaded = false;
        }
        Ok((data, table))
    }

    /// `WSPStartup` again, with the same upcall table and protocol: one more startup to pair
    /// with a [`cleanup`](Self::cleanup), or, after the final one, the DLL loaded again.
    pub fn start_again(&mut self) -> Result<(), WsaError> {
        let begin = self.begin_with(|_, _| {}, true);
        let started = Self::call_startup(self.startup, &self.protocol);
        if let Ok((data, table)) = started {
            self.data = data;
            self.table = table;
        }
        self.end(begin, |_, _, _| {});
        started.map(|_| ())
    }

    /// The `WSPDATA` of the last startup.
    pub fn data(&self) -> &WSPDATA {
        &self.data
    }

    /// The proc table of the last startup, for slots this type has no method for (call them
    /// between [`check`](Self::check)s).
    pub fn table(&self) -> &WSPPROC_TABLE {
        &self.table
    }

    /// The protocol info the provider was started with.
    pub fn protocol(&self) -> &WSAPROTOCOL_INFOW {
        &self.protocol
    }

    /// Startups not paired with a cleanup yet.
    pub fn startups(&self) -> u32 {
        state().startups
    }

    /// What `WPUGetProviderPath` answers for the started protocol's `ProviderId`.
    pub fn set_provider_path(&self, path: &str) {
        state().provider_path = ffi::to_wide_nul(path);
    }

    /// A call begins: raises what was recorded; `prepare` runs with the state and the call's
    /// number. The provider must be loaded, unless `unloaded_ok`.
    fn begin_with(&self, prepare: impl FnOnce(&mut State, u64), unloaded_ok: bool) -> u64 {
        let mut state = raise(state());
        if state.unloaded && !unloaded_ok {
            drop(state);
            panic!(
                "ws2_32 simulator: the provider was unloaded by its final WSPCleanup (start it \
                 again before calling it)"
            );
        }
        let begin = state.next();
        prepare(&mut state, begin);
        begin
    }

    fn begin(&self) -> u64 {
        self.begin_with(|_, _| {}, false)
    }

    /// A call ends: `check` runs with the state, the call's begin and end; then raises.
    fn end(&self, begin: u64, check: impl FnOnce(&mut State, u64, u64)) {
        let mut state = state();
        let at = state.next();
        check(&mut state, begin, at);
        drop(raise(state));
    }

    /// A call of an `int` slot on `socket`.
    fn simple(
        &self,
        socket: Socket,
        what: &'static str,
        call: impl FnOnce(*mut i32) -> i32,
    ) -> Result<(), WsaError> {
        let begin = self.begin();
        let mut errno = 0;
        let result = result_of(call(&mut errno), errno);
        self.end(begin, |state, begin, _| {
            state.after_close(socket, begin, what, &result);
        });
        result
    }

    /// `WSPSocket(af, type, protocol, <the protocol info>, 0, WSA_FLAG_OVERLAPPED)`.
    pub fn socket(&self, af: i32, kind: i32, protocol: i32) -> Result<Socket, WsaError> {
        let begin = self.begin();
        let mut errno = 0;
        // SAFETY: the slot's contract: the protocol info and lpErrno are live.
        let s = unsafe {
            slot!(self.lpWSPSocket)(
                af,
                kind,
                protocol,
                &self.protocol,
                0,
                WSA_FLAG_OVERLAPPED,
                &mut errno,
            )
        };
        let result = if s == INVALID_SOCKET {
            Err(WsaError::from_raw(errno))
        } else {
            Ok(Socket::from_raw(s.0))
        };
        self.end(begin, |state, _, _| {
            if let Ok(socket) = result {
                state.sockets.insert(socket.raw(), SocketRecord::default());
            }
        });
        result
    }

    /// `WSPBind(s, name)`.
    pub fn bind(&self, socket: Socket, name: &[u8]) -> Result<(), WsaError> {
        self.simple(socket, "bind", |errno| {
            // SAFETY: the slot's contract: `name` is readable for its length.
            unsafe {
                slot!(self.lpWSPBind)(
                    SOCKET(socket.raw()),
                    name.as_ptr().cast::<SOCKADDR>(),
                    name.len() as i32,
                    errno,
                )
            }
        })
    }

    /// `WSPListen(s, backlog)`.
    pub fn listen(&self, socket: Socket, backlog: i32) -> Result<(), WsaError> {
        self.simple(socket, "listen", |errno| {
            // SAFETY: the slot's contract: a live lpErrno.
            unsafe { slot!(self.lpWSPListen)(SOCKET(socket.raw()), backlog, errno) }
        })
    }

    /// `WSPConnect(s, name)`, without connect data or QoS.
    pub fn connect(&self, socket: Socket, name: &[u8]) -> Result<(), WsaError> {
        self.simple(socket, "connect", |errno| {
            // SAFETY: the slot's contract: `name` is readable for its length; NULL for the
            // optional arguments.
            unsafe {
                slot!(self.lpWSPConnect)(
                    SOCKET(socket.raw()),
                    name.as_ptr().cast::<SOCKADDR>(),
                    name.len() as i32,
                    std::ptr::null(),
                    std::ptr::null_mut(),
                    std::ptr::null(),
                    std::ptr::null(),
                    errno,
                )
            }
        })
    }

    /// `WSPAccept(s, addr, addrlen)` without a condition function: the new socket and the
    /// peer's address.
    pub fn accept(&self, socket: Socket) -> Result<(Socket, Vec<u8>), WsaError> {
        let begin = self.begin();
        let mut address = [0u8; 128];
        let mut len = address.len() as i32;
        let mut errno = 0;
        // SAFETY: the slot's contract: `address` is writable for `len` bytes.
        let s = unsafe {
            slot!(self.lpWSPAccept)(
                SOCKET(socket.raw()),
                address.as_mut_ptr().cast::<SOCKADDR>(),
                &mut len,
                None,
                0,
                &mut errno,
            )
        };
        let result = if s == INVALID_SOCKET {
            Err(WsaError::from_raw(errno))
        } else {
            let len = usize::try_from(len).unwrap_or(0).min(address.len());
            Ok((Socket::from_raw(s.0), address[..len].to_vec()))
        };
        self.end(begin, |state, begin, _| {
            state.after_close(socket, begin, "accept", &result);
            if let Ok((accepted, _)) = &result {
                state
                    .sockets
                    .insert(accepted.raw(), SocketRecord::default());
            }
        });
        result
    }

    /// `WSPSend` without overlapped I/O: the bytes sent.
    pub fn send(&self, socket: Socket, data: &[u8]) -> Result<u32, WsaError> {
        let begin = self.begin();
        let array = [WSABUF {
            len: data.len() as u32,
            buf: PSTR(data.as_ptr().cast_mut()),
        }];
        let (mut sent, mut errno) = (0u32, 0);
        // SAFETY: the slot's contract: the array and its buffer are readable for the call.
        let ret = unsafe {
            slot!(self.lpWSPSend)(
                SOCKET(socket.raw()),
                array.as_ptr(),
                1,
                &mut sent,
                0,
                std::ptr::null_mut(),
                None,
                std::ptr::null(),
                &mut errno,
            )
        };
        let result = result_of(ret, errno).map(|()| sent);
        self.end(begin, |state, begin, _| {
            state.after_close(socket, begin, "send", &result);
        });
        result
    }

    /// `WSPRecv` without overlapped I/O, into a buffer of `capacity`: the bytes read.
    pub fn recv(&self, socket: Socket, capacity: u32) -> Result<Vec<u8>, WsaError> {
        let begin = self.begin();
        let mut buffer = vec![0u8; capacity as usize];
        let array = [WSABUF {
            len: capacity,
            buf: PSTR(buffer.as_mut_ptr()),
        }];
        let (mut received, mut flags, mut errno) = (0u32, 0u32, 0);
        // SAFETY: the slot's contract: the array is readable and its buffer writable for the
        // call.
        let ret = unsafe {
            slot!(self.lpWSPRecv)(
                SOCKET(socket.raw()),
                array.as_ptr(),
                1,
                &mut received,
                &mut flags,
                std::ptr::null_mut(),
                None,
                std::ptr::null(),
                &mut errno,
            )
        };
        let result = result_of(ret, errno).map(|()| {
            buffer.truncate((received as usize).min(buffer.len()));
            buffer
        });
        self.end(begin, |state, begin, _| {
            state.after_close(socket, begin, "receive", &result);
        });
        result
    }

    /// An overlapped `WSPSend` of `data` (one buffer), completing [`via`](Via).
    pub fn send_overlapped(
        &self,
        socket: Socket,
        data: &[u8],
        via: Via,
    ) -> Result<Issued, WsaError> {
        self.issue(socket, "send", &[data.len() as u32], Some(data), via)
    }

    /// An overlapped `WSPRecv` into one buffer of `capacity`, completing [`via`](Via).
    pub fn recv_overlapped(
        &self,
        socket: Socket,
        capacity: u32,
        via: Via,
    ) -> Result<Issued, WsaError> {
        self.issue(socket, "receive", &[capacity], None, via)
    }

    /// An overlapped `WSPRecv` into buffers of the given lengths (scatter), completing
    /// [`via`](Via).
    pub fn recv_overlapped_vectored(
        &self,
        socket: Socket,
        lens: &[u32],
        via: Via,
    ) -> Result<Issued, WsaError> {
        self.issue(socket, "receive", lens, None, via)
    }

    fn issue(
        &self,
        socket: Socket,
        what: &'static str,
        lens: &[u32],
        data: Option<&[u8]>,
        via: Via,
    ) -> Result<Issued, WsaError> {
        self.issue_with(socket, what, lens, data, via, |call| {
            let (mut bytes, mut flags, mut errno) = (0u32, 0u32, 0);
            // SAFETY: the slot's contract: the WSAOVERLAPPED and the buffers are the
            // simulator's and stay valid until the operation is forgotten; the array and the
            // thread id are valid for the call (and scribbled right after).
            let ret = unsafe {
                match data {
                    Some(_) => slot!(self.lpWSPSend)(
                        SOCKET(socket.raw()),
                        call.array,
                        call.count,
                        &mut bytes,
                        0,
                        call.overlapped,
                        call.routine,
                        call.thread,
                        &mut errno,
                    ),
                    None => slot!(self.lpWSPRecv)(
                        SOCKET(socket.raw()),
                        call.array,
                        call.count,
                        &mut bytes,
                        &mut flags,
                        call.overlapped,
                        call.routine,
                        call.thread,
                        &mut errno,
                    ),
                }
            };
            (result_of(ret, errno), Done { bytes, flags })
        })
    }

    /// An overlapped call on `socket` made by `call` with a new operation's memory (buffers of
    /// `lens`, the first filled with `data`), completing [`via`](Via), and checked as every
    /// overlapped call is (R-WSP-16).
    fn issue_with(
        &self,
        socket: Socket,
        what: &'static str,
        lens: &[u32],
        data: Option<&[u8]>,
        via: Via,
        call: impl FnOnce(OpCall) -> (Result<(), WsaError>, Done),
    ) -> Result<Issued, WsaError> {
        let mut pointers = None;
        let begin = self.begin_with(
            |state, _| {
                let thread = match via {
                    Via::Routine(thread) => thread.0,
                    _ => state.current_thread(),
                };
                let thread_id = WSATHREADID {
                    ThreadHandle: HANDLE(std::ptr::without_provenance_mut(thread)),
                    Reserved: thread,
                };
                let event = match via {
                    Via::Event => state.new_event(None) as usize,
                    Via::EventOnly => state.new_event(None) as usize | 1,
                    Via::Port | Via::Routine(_) => 0,
                };
                let memory = OpMemory::new(lens, data, event, thread_id);
                let id = memory.address();
                if let Some(record) = state.events.get_mut(&((event & !1) as isize)) {
                    record.op = Some(id);
                }
                let mechanism = match via {
                    Via::Routine(_) => Mechanism::Routine { thread },
                    _ => Mechanism::Request { event },
                };
                pointers = Some((memory.pointers(), id));
                state.ops.insert(
                    id,
                    OpRecord {
                        socket: socket.raw(),
                        what,
                        mechanism,
                        memory,
                        returned: None,
                        completions: Vec::new(),
                        cancelled: false,
                        close: None,
                        raced_close: false,
                        trap_reported: false,
                    },
                );
                state.sockets.entry(socket.raw()).or_default().ops.push(id);
            },
            false,
        );
        let ((overlapped, array, count, thread), id) = pointers.expect("made when the call began");
        let routine = match via {
            Via::Routine(_) => Some(completion_routine as _),
            _ => None,
        };
        let (result, done) = call(OpCall {
            overlapped,
            array,
            count,
            thread,
            routine,
        });
        let returned = match result {
            Ok(()) => Returned::Done(done),
            Err(WsaError::WSA_IO_PENDING) => Returned::Pending,
            Err(error) => Returned::Failed(error),
        };
        {
            let state = state();
            if let Some(op) = state.ops.get(&id) {
                op.memory.scribble();
            }
        }
        let result = match returned {
            Returned::Done(done) => Ok(Issued {
                op: Op(id),
                done: Some(done),
            }),
            Returned::Pending => Ok(Issued {
                op: Op(id),
                done: None,
            }),
            Returned::Failed(error) => Err(error),
        };
        self.end(begin, |state, begin, at| {
            state.after_close(socket, begin, what, &result);
            returned_check(state, id, begin, at, returned);
        });
        result
    }

    /// `WSPGetOverlappedResult(s, op, fWait)`.
    pub fn get_overlapped_result(
        &self,
        socket: Socket,
        op: Op,
        wait: bool,
    ) -> Result<Done, WsaError> {
        let begin = self.begin();
        let overlapped = {
            let state = state();
            state
                .ops
                .get(&op.0)
                .map(|record| record.memory.pointers().0.cast_const())
        };
        let overlapped = overlapped.expect("an operation the simulator issued and still holds");
        let (mut bytes, mut flags, mut errno) = (0u32, 0u32, 0);
        // SAFETY: the slot's contract: the WSAOVERLAPPED is alive (held by the record),
        // the out-parameters are live locals.
        let ok = unsafe {
            slot!(self.lpWSPGetOverlappedResult)(
                SOCKET(socket.raw()),
                overlapped,
                &mut bytes,
                bool_of(wait),
                &mut flags,
                &mut errno,
            )
        };
        let result = if ok.as_bool() {
            Ok(Done { bytes, flags })
        } else {
            Err(WsaError::from_raw(errno))
        };
        self.end(begin, |state, begin, _| {
            state.after_close(socket, begin, "WSPGetOverlappedResult", &result);
        });
        result
    }

    /// `WSPShutdown(s, how)`.
    pub fn shutdown(&self, socket: Socket, how: i32) -> Result<(), WsaError> {
        self.simple(socket, "shutdown", |errno| {
            // SAFETY: the slot's contract: a live lpErrno.
            unsafe { slot!(self.lpWSPShutdown)(SOCKET(socket.raw()), how, errno) }
        })
    }

    /// `WSPSendDisconnect(s, data)`.
    pub fn send_disconnect(&self, socket: Socket, data: Option<&[u8]>) -> Result<(), WsaError> {
        let buffer = data.map(|data| WSABUF {
            len: data.len() as u32,
            buf: PSTR(data.as_ptr().cast_mut()),
        });
        self.simple(socket, "send-disconnect", |errno| {
            let ptr = buffer.as_ref().map_or(std::ptr::null(), std::ptr::from_ref);
            // SAFETY: the slot's contract: the WSABUF and its bytes are readable.
            unsafe { slot!(self.lpWSPSendDisconnect)(SOCKET(socket.raw()), ptr, errno) }
        })
    }

    /// `WSPRecvDisconnect(s, buffer)`, with a buffer of `capacity` (or none): the data.
    pub fn recv_disconnect(
        &self,
        socket: Socket,
        capacity: Option<u32>,
    ) -> Result<Vec<u8>, WsaError> {
        let mut bytes = vec![0u8; capacity.unwrap_or(0) as usize];
        let mut buffer = capacity.map(|len| WSABUF {
            len,
            buf: PSTR(bytes.as_mut_ptr()),
        });
        let result = self.simple(socket, "receive-disconnect", |errno| {
            let ptr = buffer
                .as_mut()
                .map_or(std::ptr::null_mut(), std::ptr::from_mut);
            // SAFETY: the slot's contract: the WSABUF is writable, its buffer for its length.
            unsafe { slot!(self.lpWSPRecvDisconnect)(SOCKET(socket.raw()), ptr, errno) }
        });
        result.map(|()| {
            let len = buffer.map_or(0, |b| b.len as usize).min(bytes.len());
            bytes.truncate(len);
            bytes
        })
    }

    /// `WSPSetSockOpt(s, level, name, value)`.
    pub fn set_sock_opt(
        &self,
        socket: Socket,
        level: i32,
        name: i32,
        value: &[u8],
    ) -> Result<(), WsaError> {
        self.simple(socket, "WSPSetSockOpt", |errno| {
            // SAFETY: the slot's contract: `value` readable for its length.
            unsafe {
                slot!(self.lpWSPSetSockOpt)(
                    SOCKET(socket.raw()),
                    level,
                    name,
                    PCSTR(value.as_ptr()),
                    value.len() as i32,
                    errno,
                )
            }
        })
    }

    /// `WSPGetSockOpt(s, level, name)` with a buffer of `capacity`: the value.
    pub fn get_sock_opt(
        &self,
        socket: Socket,
        level: i32,
        name: i32,
        capacity: usize,
    ) -> Result<Vec<u8>, WsaError> {
        let mut value = vec![0u8; capacity];
        let mut len = capacity as i32;
        let result = self.simple(socket, "WSPGetSockOpt", |errno| {
            // SAFETY: the slot's contract: `value` writable for `len` bytes.
            unsafe {
                slot!(self.lpWSPGetSockOpt)(
                    SOCKET(socket.raw()),
                    level,
                    name,
                    PSTR(value.as_mut_ptr()),
                    &mut len,
                    errno,
                )
            }
        });
        result.map(|()| {
            value.truncate(usize::try_from(len).unwrap_or(0).min(capacity));
            value
        })
    }

    /// `SO_LINGER` (`LINGER {l_onoff, l_linger}`).
    pub fn set_linger(&self, socket: Socket, linger: Linger) -> Result<(), WsaError> {
        self.set_sock_opt(socket, SOL_SOCKET, SO_LINGER, &linger.to_bytes())
    }

    /// `SO_DONTLINGER` (`BOOL`): `true` turns lingering off.
    pub fn set_dont_linger(&self, socket: Socket, dont: bool) -> Result<(), WsaError> {
        self.set_sock_opt(
            socket,
            SOL_SOCKET,
            SO_DONTLINGER,
            &i32::from(dont).to_ne_bytes(),
        )
    }

    /// `SO_LINGER`, read back.
    pub fn get_linger(&self, socket: Socket) -> Result<Linger, WsaError> {
        let bytes = self.get_sock_opt(socket, SOL_SOCKET, SO_LINGER, 4)?;
        let [a, b, c, d] = bytes[..] else {
            return Err(WsaError::WSAEFAULT);
        };
        Ok(Linger {
            on: u16::from_ne_bytes([a, b]) != 0,
            seconds: u16::from_ne_bytes([c, d]),
        })
    }

    /// `WSPIoctl(s, code, input, output)` without overlapped I/O: the output bytes.
    pub fn ioctl(
        &self,
        socket: Socket,
        code: u32,
        input: &[u8],
        capacity: u32,
    ) -> Result<Vec<u8>, WsaError> {
        let mut output = vec![0u8; capacity as usize];
        let mut returned = 0u32;
        let result = self.simple(socket, "WSPIoctl", |errno| {
            // SAFETY: the slot's contract: `input` readable and `output` writable for their
            // lengths; no overlapped request.
            unsafe {
                slot!(self.lpWSPIoctl)(
                    SOCKET(socket.raw()),
                    code,
                    input.as_ptr().cast(),
                    input.len() as u32,
                    output.as_mut_ptr().cast(),
                    capacity,
                    &mut returned,
                    std::ptr::null_mut(),
                    None,
                    std::ptr::null(),
                    errno,
                )
            }
        });
        result.map(|()| {
            output.truncate((returned as usize).min(output.len()));
            output
        })
    }

    /// The function `WSPIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER)` answers for `guid` on
    /// `socket` (its address).
    pub fn extension_function(&self, socket: Socket, guid: GUID) -> Result<usize, WsaError> {
        // SAFETY: a GUID is plain data; its bytes are the ioctl's input.
        let input: [u8; 16] = unsafe { std::mem::transmute(guid) };
        let output = self.ioctl(
            socket,
            SIO_GET_EXTENSION_FUNCTION_POINTER,
            &input,
            size_of::<usize>() as u32,
        )?;
        let raw: [u8; size_of::<usize>()] = output
            .as_slice()
            .try_into()
            .map_err(|_| WsaError::WSAEFAULT)?;
        Ok(usize::from_ne_bytes(raw))
    }

    /// `ConnectEx(socket, name, data)` as an application calls it, through `function` (what
    /// [`extension_function`](Self::extension_function) answered for [`WSAID_CONNECTEX`]),
    /// completing [`via`](Via) (an event or a port: `ConnectEx` takes no routine).
    pub fn connect_ex(
        &self,
        function: usize,
        socket: Socket,
        name: &[u8],
        data: &[u8],
        via: Via,
    ) -> Result<Issued, WsaError> {
        assert!(
            !matches!(via, Via::Routine(_)),
            "ConnectEx takes no routine"
        );
        // SAFETY: what the provider answered for WSAID_CONNECTEX: an `LPFN_CONNECTEX`.
        let connect_ex: crate::abi::layer::ConnectExFn =
            unsafe { std::mem::transmute(std::ptr::with_exposed_provenance::<()>(function)) };
        self.issue_with(
            socket,
            "ConnectEx",
            &[data.len() as u32],
            Some(data),
            via,
            |call| {
                let mut sent = 0u32;
                // SAFETY: `lpSendBuffer` is the operation's buffer, valid (as the WSAOVERLAPPED)
                // until the operation is forgotten; `name` and the count live for the call.
                let ok = unsafe {
                    connect_ex(
                        SOCKET(socket.raw()),
                        name.as_ptr().cast(),
                        name.len() as i32,
                        if data.is_empty() {
                            std::ptr::null()
                        } else {
                            (*call.array).buf.0.cast_const().cast()
                        },
                        data.len() as u32,
                        &mut sent,
                        call.overlapped,
                    )
                };
                (
                    bool_result(ok),
                    Done {
                        bytes: sent,
                        flags: 0,
                    },
                )
            },
        )
    }

    /// `AcceptEx(listener, accept)` through `function` (for [`WSAID_ACCEPTEX`]), receiving up
    /// to `capacity` bytes of the connection's first data (read with
    /// [`received`](Self::received)), with 32 bytes for each address after them.
    pub fn accept_ex(
        &self,
        function: usize,
        listener: Socket,
        accept: Socket,
        capacity: u32,
        via: Via,
    ) -> Result<Issued, WsaError> {
        assert!(!matches!(via, Via::Routine(_)), "AcceptEx takes no routine");
        // SAFETY: what the provider answered for WSAID_ACCEPTEX: an `LPFN_ACCEPTEX`.
        let accept_ex: crate::abi::layer::AcceptExFn =
            unsafe { std::mem::transmute(std::ptr::with_exposed_provenance::<()>(function)) };
        const ADDRESS: u32 = 32;
        let lens = [capacity + 2 * ADDRESS];
        self.issue_with(listener, "AcceptEx", &lens, None, via, |call| {
            let mut received = 0u32;
            // SAFETY: the output buffer is the operation's, valid (as the WSAOVERLAPPED)
            // until the operation is forgotten; the count lives for the call.
            let ok = unsafe {
                accept_ex(
                    SOCKET(listener.raw()),
                    SOCKET(accept.raw()),
                    (*call.array).buf.0.cast(),
                    capacity,
                    ADDRESS,
                    ADDRESS,
                    &mut received,
                    call.overlapped,
                )
            };
            (
                bool_result(ok),
                Done {
                    bytes: received,
                    flags: 0,
                },
            )
        })
    }

    /// `DisconnectEx(socket, flags)` through `function` (for [`WSAID_DISCONNECTEX`]):
    /// overlapped, completing [`via`](Via), or not (`None`).
    pub fn disconnect_ex(
        &self,
        function: usize,
        socket: Socket,
        flags: u32,
        via: Option<Via>,
    ) -> Result<Option<Issued>, WsaError> {
        // SAFETY: what the provider answered for WSAID_DISCONNECTEX: an `LPFN_DISCONNECTEX`.
        let disconnect_ex: crate::abi::layer::DisconnectExFn =
            unsafe { std::mem::transmute(std::ptr::with_exposed_provenance::<()>(function)) };
        let Some(via) = via else {
            let begin = self.begin();
            // SAFETY: no request: a call that returns when it is done.
            let result = bool_result(unsafe {
                disconnect_ex(SOCKET(socket.raw()), std::ptr::null_mut(), flags, 0)
            });
            self.end(begin, |state, begin, _| {
                state.after_close(socket, begin, "DisconnectEx", &result);
            });
            return result.map(|()| None);
        };
        assert!(
            !matches!(via, Via::Routine(_)),
            "DisconnectEx takes no routine"
        );
        self.issue_with(socket, "DisconnectEx", &[], None, via, |call| {
            // SAFETY: the WSAOVERLAPPED is the operation's, valid until it is forgotten.
            let ok = unsafe { disconnect_ex(SOCKET(socket.raw()), call.overlapped, flags, 0) };
            (bool_result(ok), Done::default())
        })
        .map(Some)
    }

    /// `FIONBIO`: non-blocking mode on or off.
    pub fn set_non_blocking(&self, socket: Socket, non_blocking: bool) -> Result<(), WsaError> {
        self.ioctl(socket, FIONBIO, &u32::from(non_blocking).to_ne_bytes(), 0)
            .map(|_| ())
    }

    /// `WSPEventSelect(s, event, events)` (`None`, or no events: the selection cancelled).
    pub fn event_select(
        &self,
        socket: Socket,
        event: Option<Event>,
        events: i32,
    ) -> Result<(), WsaError> {
        let raw = event.map_or(0, |e| e.0);
        let result = self.simple(socket, "WSPEventSelect", |errno| {
            // SAFETY: the slot's contract: a live lpErrno.
            unsafe {
                slot!(self.lpWSPEventSelect)(SOCKET(socket.raw()), WSAEVENT(raw), events, errno)
            }
        });
        if result.is_ok()
            && let Some(record) = state().sockets.get_mut(&socket.raw())
        {
            record.event = (raw != 0 && events != 0).then_some(raw);
        }
        result
    }

    /// `WSPAsyncSelect(s, window, message, events)` (`None`, or no events: cancelled).
    pub fn async_select(
        &self,
        socket: Socket,
        window: Option<Window>,
        message: u32,
        events: i32,
    ) -> Result<(), WsaError> {
        let raw = window.map_or(0, |w| w.0);
        let result = self.simple(socket, "WSPAsyncSelect", |errno| {
            // SAFETY: the slot's contract: a live lpErrno; the window is a value.
            unsafe {
                slot!(self.lpWSPAsyncSelect)(
                    SOCKET(socket.raw()),
                    HWND(std::ptr::without_provenance_mut(raw)),
                    message,
                    events,
                    errno,
                )
            }
        });
        if result.is_ok()
            && let Some(record) = state().sockets.get_mut(&socket.raw())
        {
            record.window = (raw != 0 && events != 0).then_some(raw);
        }
        result
    }

    /// `WSPEnumNetworkEvents(s, event)`: the events recorded since the last call (the provider
    /// resets `event`).
    pub fn enum_network_events(
        &self,
        socket: Socket,
        event: Option<Event>,
    ) -> Result<NetworkEvents, WsaError> {
        let raw = event.map_or(0, |e| e.0);
        let mut out = WSANETWORKEVENTS {
            lNetworkEvents: 0,
            iErrorCode: [0; 10],
        };
        let result = self.simple(socket, "WSPEnumNetworkEvents", |errno| {
            // SAFETY: the slot's contract: `out` is a live local; the event is a value.
            unsafe {
                slot!(self.lpWSPEnumNetworkEvents)(
                    SOCKET(socket.raw()),
                    HANDLE(std::ptr::without_provenance_mut(raw as usize)),
                    &mut out,
                    errno,
                )
            }
        });
        result.map(|()| NetworkEvents {
            events: out.lNetworkEvents,
            errors: out.iErrorCode,
        })
    }

    /// `WSPCloseSocket(s)`. When it returns, every operation pending when it began has
    /// completed with `WSA_OPERATION_ABORTED` (its routine queued, for a routine), and nothing
    /// of the socket may reach the host any more (R-WSP-14).
    pub fn close(&self, socket: Socket) -> Result<(), WsaError> {
        let begin = self.begin_with(
            |state, _| {
                let record = state.sockets.entry(socket.raw()).or_default();
                record.closing = Some(std::thread::current().id());
            },
            false,
        );
        let mut errno = 0;
        // SAFETY: the slot's contract: a live lpErrno.
        let ret = unsafe { slot!(self.lpWSPCloseSocket)(SOCKET(socket.raw()), &mut errno) };
        let result = result_of(ret, errno);
        self.end(begin, |state, begin, at| {
            state.after_close(socket, begin, "close", &result);
            if let Some(record) = state.sockets.get_mut(&socket.raw()) {
                record.closing = None;
            }
            if result.is_ok() {
                closed(state, socket.raw(), begin, at);
            }
        });
        result
    }

    /// `WSPCleanup`. The one that pairs with the first startup is the final cleanup (R-WSP-15):
    /// it may notify nothing while it runs and, once it returned, the DLL may be unloaded (no
    /// upcall may arrive, the queued APCs never run, its operations still pending are
    /// cancelled).
    pub fn cleanup(&self) -> Result<(), WsaError> {
        let mut last = false;
        let begin = self.begin_with(
            |state, _| {
                last = state.startups == 1;
                state.cleaning = last;
            },
            false,
        );
        let mut errno = 0;
        // SAFETY: the slot's contract: a live lpErrno.
        let ret = unsafe { slot!(self.lpWSPCleanup)(&mut errno) };
        let result = result_of(ret, errno);
        self.end(begin, |state, _, _| {
            state.cleaning = false;
            if result.is_err() {
                return;
            }
            state.startups = state.startups.saturating_sub(1);
            if last {
                unload(state);
            }
        });
        result
    }

    /// Raises what was recorded (R-WSP-17's traps are checked now too).
    pub fn check(&self) {
        let mut state = state();
        state.check_traps();
        drop(raise(state));
    }

    /// The final cleanup (a `WSPCleanup` per startup still counted), then the last checks;
    /// gives the turn back for [`start_in`](Self::start_in).
    pub fn finish(mut self) -> Turn {
        while self.startups() > 0 {
            self.cleanup().expect("WSPCleanup");
        }
        self.check();
        self.finished = true;
        self.turn.take().expect("held until finished")
    }

    // -- The host's side of the mechanisms.

    /// A fresh simulated thread (an initiating thread for [`Via::Routine`]).
    pub fn new_thread(&self) -> Thread {
        Thread(state().new_thread())
    }

    /// The calling Rust thread's simulated thread (what `WPUOpenCurrentThread` names).
    pub fn current_thread(&self) -> Thread {
        Thread(state().current_thread())
    }

    /// `thread`'s alertable wait: runs the APCs queued to it, in order, on this Rust thread
    /// (those they queue too); returns how many ran. After the final cleanup returned the
    /// provider may be unloaded: its APCs are dropped without running.
    pub fn run_apcs(&self, thread: Thread) -> usize {
        drop(raise(state()));
        let mut ran = 0;
        loop {
            let apc = {
                let mut state = state();
                let unloaded = state.unloaded;
                let queue = state.apcs.entry(thread.0).or_default();
                if unloaded {
                    queue.clear();
                }
                queue.pop_front()
            };
            let Some(apc) = apc else { break };
            let previous = RUNNING.replace(Some((thread.0, apc.queued_at)));
            let racing = RUNNING_RACING.replace(apc.racing);
            if let Some(function) = apc.function {
                // SAFETY: the provider's APC with the context it queued, run in the simulated
                // thread's alertable wait as Windows runs it.
                unsafe { function(apc.context) };
            }
            RUNNING.set(previous);
            RUNNING_RACING.set(racing);
            ran += 1;
        }
        // Raised now; the traps (R-WSP-17) are checked when an operation is forgotten and by
        // `check` / `finish`, not on every wait (a scan of every operation in flight).
        drop(raise(state()));
        ran
    }

    /// APCs queued to `thread` and not run yet.
    pub fn apcs_queued(&self, thread: Thread) -> usize {
        state().apcs.get(&thread.0).map_or(0, VecDeque::len)
    }

    /// A fresh event (`WSACreateEvent`), not signalled.
    pub fn create_event(&self) -> Event {
        Event(state().new_event(None))
    }

    /// An event's state (`None`: not an event of this simulator).
    pub fn event_state(&self, event: Event) -> Option<EventState> {
        state().events.get(&event.0).map(|record| record.state)
    }

    /// `WSAResetEvent`, by the application.
    pub fn reset_event(&self, event: Event) {
        if let Some(record) = state().events.get_mut(&event.0) {
            record.state.signalled = false;
        }
    }

    /// A fresh window, for [`async_select`](Self::async_select).
    pub fn create_window(&self) -> Window {
        let window = fresh();
        state().windows.insert(window, Vec::new());
        Window(window)
    }

    /// The messages posted to `window`, in order, taken out of its queue.
    pub fn take_messages(&self, window: Window) -> Vec<Message> {
        state()
            .windows
            .get_mut(&window.0)
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// A fresh completion port.
    pub fn create_port(&self) -> Port {
        let port = fresh();
        state().ports.insert(port, VecDeque::new());
        Port(port)
    }

    /// Binds `socket` to `port` with `key` (`CreateIoCompletionPort`): its completions with a
    /// `hEvent` whose low bit is clear go to the port.
    pub fn associate(&self, socket: Socket, port: Port, key: usize) {
        state().associations.insert(socket.raw(), (port.0, key));
    }

    /// The next packet of `port` (`GetQueuedCompletionStatus` without waiting).
    pub fn dequeue(&self, port: Port) -> Option<Packet> {
        state().ports.get_mut(&port.0).and_then(VecDeque::pop_front)
    }

    // -- What happened.

    /// The operation's completions, in order.
    pub fn completions(&self, op: Op) -> Vec<Completion> {
        state()
            .ops
            .get(&op.0)
            .map(|record| record.completions.iter().map(|(_, c)| *c).collect())
            .unwrap_or_default()
    }

    /// What a receive read: the first bytes of its buffers, as many as its call returned or
    /// its completion reported.
    pub fn received(&self, op: Op) -> Vec<u8> {
        let state = state();
        let Some(record) = state.ops.get(&op.0) else {
            return Vec::new();
        };
        let bytes = match (record.completions.last(), record.returned) {
            (Some((_, completion)), _) => completion.bytes,
            (None, Some((_, Returned::Done(done)))) => done.bytes,
            _ => 0,
        };
        record.memory.data(bytes as usize)
    }

    /// The operation's `WSAOVERLAPPED`, as the application reads it.
    pub fn overlapped(&self, op: Op) -> Option<OverlappedState> {
        state().ops.get(&op.0).map(|record| record.memory.status())
    }

    /// Frees an operation's memory. Panics for an operation the provider may still complete
    /// or whose routine has not run yet (no completion recorded, the provider not unloaded).
    pub fn forget(&self, op: Op) {
        let mut state = state();
        let unloaded = state.unloaded;
        let Some(record) = state.ops.get_mut(&op.0) else {
            return;
        };
        // Its trap, last: nothing may write into the operation's memory once it is freed (the
        // others' are checked when they are forgotten, and by `check`).
        if !record.trap_reported && !record.memory.trap_intact() {
            record.trap_reported = true;
            let message = stale_array(record.what, op.0);
            state.violation(message);
        }
        let Some(record) = state.ops.get(&op.0) else {
            return;
        };
        assert!(
            unloaded || record.settled(),
            "ws2_32 simulator: {op:?} may still be completed: it cannot be forgotten yet"
        );
        let record = state.ops.remove(&op.0).expect("found above");
        if let Some(socket) = state.sockets.get_mut(&record.socket) {
            socket.ops.retain(|id| *id != op.0);
        }
        // SAFETY: settled (or the provider unloaded): nothing writes into it any more.
        unsafe { record.memory.free() };
        drop(raise(state));
    }

    /// The state of a handle `WPUCreateSocketHandle` made (`None`: it made no such handle).
    pub fn handle(&self, socket: Socket) -> Option<HandleState> {
        state().handles.get(&socket.raw()).map(|h| HandleState {
            catalog_entry_id: h.catalog_entry_id,
            context: h.context,
            closed: h.closed_at.is_some(),
            close_calls: h.close_calls,
        })
    }

    /// Every upcall so far, in order.
    pub fn upcalls(&self) -> Vec<Upcall> {
        state().upcalls.clone()
    }

    /// Forgets the upcalls logged so far, keeping the log's memory (for a benchmark that makes
    /// millions of calls, each logging its `WPUQuerySocketHandleContext`).
    pub fn clear_upcalls(&self) {
        state().upcalls.clear();
    }

    /// Calls of the blocking callback `WPUQueryBlockingCallback` handed out.
    pub fn blocking_callbacks(&self) -> u64 {
        state().blocking_callbacks
    }
}

impl Drop for Winsock {
    /// Without [`finish`](Winsock::finish): a `WSPCleanup` per startup still counted, raising
    /// nothing (the next turn starts from a fresh ws2_32 and a stopped provider).
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let Some(cleanup) = self.table.lpWSPCleanup else {
            return;
        };
        loop {
            let last = {
                let mut state = state();
                if state.startups == 0 || state.unloaded {
                    break;
                }
                state.cleaning = state.startups == 1;
                state.cleaning
            };
            let mut errno = 0;
            // SAFETY: the provider's slot, with a live lpErrno.
            let ret = unsafe { cleanup(&mut errno) };
            let mut state = state();
            state.cleaning = false;
            if ret == SOCKET_ERROR {
                break;
            }
            state.startups -= 1;
            if last {
                unload(&mut state);
            }
        }
    }
}

/// What a returned overlapped call is checked for (R-WSP-16).
fn returned_check(state: &mut State, id: usize, begin: u64, at: u64, returned: Returned) {
    let Some(op) = state.ops.get_mut(&id) else {
        return;
    };
    op.returned = Some((at, returned));
    let (what, mechanism) = (op.what, op.mechanism);
    let completions: Vec<Completion> = op.completions.iter().map(|(_, c)| *c).collect();
    let message = match (returned, mechanism) {
        (Returned::Done(done), Mechanism::Request { .. }) => match completions.as_slice() {
            [] => Some(format!(
                "R-WSP-16: {what} {id:#x} returned 0 but its completion was not signalled \
                 before the call returned"
            )),
            [one] if one.error != 0 || one.bytes != done.bytes => Some(format!(
                "R-WSP-16: {what} {id:#x} returned 0 with {} bytes but completed with {one:?}",
                done.bytes
            )),
            _ => None,
        },
        (Returned::Done(_), Mechanism::Routine { thread }) => {
            let queued = state
                .apcs
                .get(&thread)
                .is_some_and(|queue| queue.iter().any(|apc| apc.queued_at > begin));
            (!queued && completions.is_empty()).then(|| {
                format!(
                    "R-WSP-16: {what} {id:#x} returned 0 but no completion routine was queued \
                     to its thread before the call returned"
                )
            })
        }
        (Returned::Failed(error), _) if !completions.is_empty() => Some(format!(
            "R-WSP-16: {what} {id:#x} failed with {error} but completed"
        )),
        _ => None,
    };
    if let Some(message) = message {
        state.violation(message);
    }
}

/// What a close that returned is checked for (R-WSP-14): every operation pending when it began
/// has completed with `WSA_OPERATION_ABORTED`, or has its routine queued.
fn closed(state: &mut State, socket: usize, begin: u64, at: u64) {
    let ops = match state.sockets.get_mut(&socket) {
        Some(record) => {
            record.closed_at = Some(at);
            record.ops.clone()
        }
        None => return,
    };
    let mut found = Vec::new();
    let mut routines: HashMap<usize, usize> = HashMap::new();
    for id in ops {
        let Some(op) = state.ops.get_mut(&id) else {
            continue;
        };
        let pending = matches!(op.returned, Some((returned, Returned::Pending)) if returned < begin)
            && op.completions.iter().all(|(t, _)| *t > begin);
        if !pending {
            continue;
        }
        op.close = Some((begin, at));
        let what = op.what;
        match op.mechanism {
            Mechanism::Request { .. } => match op.completions.first() {
                None => found.push(format!(
                    "R-WSP-14: the close of socket {socket:#x} returned with {what} {id:#x} \
                     still pending (not completed with WSA_OPERATION_ABORTED)"
                )),
                Some((_, completion)) if completion.error != ABORTED && !op.raced_close => found
                    .push(format!(
                        "R-WSP-14: {what} {id:#x} ended by the close of socket {socket:#x} with \
                     error {}, not WSA_OPERATION_ABORTED (995)",
                        completion.error
                    )),
                Some(_) => {}
            },
            Mechanism::Routine { thread } => {
                if op.completions.is_empty() {
                    *routines.entry(thread).or_default() += 1;
                }
            }
        }
    }
    // Each routine still to run needs an APC queued to its thread before the close returned.
    for (thread, needed) in routines {
        let queued = state.apcs.get(&thread).map_or(0, |queue| {
            queue.iter().filter(|apc| apc.queued_at < at).count()
        });
        if queued < needed {
            found.push(format!(
                "R-WSP-14: the close of socket {socket:#x} returned with operations pending \
                 whose routines are not queued to thread {thread:#x} ({needed} to queue, \
                 {queued} APCs queued)"
            ));
        }
    }
    for message in found {
        state.violation(message);
    }
}

/// The final cleanup returned: the DLL may be unloaded; what was pending is cancelled.
fn unload(state: &mut State) {
    state.unloaded = true;
    for op in state.ops.values_mut() {
        let pending = matches!(op.returned, Some((_, Returned::Pending)));
        if pending && op.completions.is_empty() {
            op.cancelled = true;
        }
    }
    for queue in state.apcs.values_mut() {
        queue.clear();
    }
}
