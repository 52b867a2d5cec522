//! The ws2_32 simulator of `winprov_wsp::testing::winsock`, against a small provider written on
//! the ABI layer and exported with `export_provider!` (`Echo`: what a socket sends it receives
//! itself; it makes its handles with `WPUCreateSocketHandle`, completes requests through the
//! simulator's `WPUCompleteOverlappedRequest` or an APC to the initiating thread, and notifies
//! network events through the selected event or window). Every check of the simulator is shown
//! firing, with its rule's ID, on a provider that breaks the rule in one way (a [`Fault`]), and
//! staying quiet on the correct provider, which is driven through every method of the
//! simulator.

use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use winprov_bindings::windows_core::{GUID, PWSTR};
use winprov_bindings::ws2spi::{
    FD_SET, LPBLOCKINGCALLBACK, LPWSPRECV, OVERLAPPED, SO_LINGER, SOCKET, SOCKET_ERROR, SOL_SOCKET,
    WSABUF, WSAEVENT, WSAPROTOCOL_INFOW, WSATHREADID, WSPDATA, WSPPROC_TABLE, WSPUPCALLTABLE,
    XP1_IFS_HANDLES,
};
use winprov_wsp::WsaError;
use winprov_wsp::abi::{
    Accepted, Dispatch, Host, How, Linger, NetworkEvents, Overlapped, OverlappedRecv,
    OverlappedResult, ProtocolInfo, RecvIo, SendData, SockOpt, Socket, ThreadId, Transfer, Upcalls,
};
use winprov_wsp::testing::winsock::{
    self, Completion, Delivery, Done, FIONBIO, Message, Packet, SCRIBBLE, SCRIBBLED_THREAD, Upcall,
    Via, Winsock, base_protocol,
};

const CATALOG: u32 = 0x42;
const FD_READ: i32 = 0x01;
const FD_CLOSE: i32 = 0x20;
const ABORTED: u32 = 995;
const WM_SOCKET: u32 = 0x0400 + 1;

// ---------------------------------------------------------------------------------------------
// The provider under test.

/// One way the provider breaks a rule (`None`: it breaks none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    /// An overlapped send done at once returns 0 without signalling its completion.
    ReturnBeforeSignal,
    /// A pending receive is completed twice.
    CompleteTwice,
    /// An overlapped send is completed, then fails with WSAENOBUFS.
    FailAndComplete,
    /// An overlapped send done at once is completed with one byte more than it returns.
    ImmediateWrongCount,
    /// Completions name another socket's handle (one made for the purpose).
    CompleteOnAnotherHandle,
    /// Completions pass WSS_OPERATION_IN_PROGRESS as their error.
    InProgressError,
    /// An operation with a routine is completed through WPUCompleteOverlappedRequest.
    RoutineThroughRequest,
    /// A routine is queued to the thread that completes it (WPUOpenCurrentThread), not to the
    /// one that made the call.
    ApcToCurrentThread,
    /// A routine is called at once, without an APC.
    RoutineInline,
    /// A completion sets the operation's event with WPUSetEvent.
    SetEventDirectly,
    /// A close leaves the pending receives pending.
    CloseLeavesPending,
    /// A close completes the pending receives with no error.
    CloseCompletesWithoutAbort,
    /// A close aborts the pending receives, and completes them again after it returned.
    CompleteAgainAfterClose,
    /// A close posts FD_CLOSE.
    FdCloseOnClose,
    /// Closed sockets still get network events (when another socket receives data).
    NotifyClosed,
    /// A closed socket stays in the table and keeps answering.
    ServeClosed,
    /// The final cleanup completes the pending receives with WSA_OPERATION_ABORTED.
    CleanupCompletes,
    /// The final cleanup posts FD_CLOSE.
    CleanupNotifies,
    /// The upcall table is kept past the final cleanup (for a late timer).
    KeepUpcalls,
    /// Completions name a socket handle of their own.
    ForeignHandle,
    /// A close closes its handle before it aborts the pending receives.
    CloseHandleFirst,
    /// Each socket also gets an IFS handle through WPUModifyIFSHandle.
    ModifyIfs,
}

static FAULT: Mutex<Fault> = Mutex::new(Fault::None);

fn fault() -> Fault {
    *FAULT.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `WSPEventSelect`'s event and events, `WSPAsyncSelect`'s window, message and events.
type Selected = (Option<(isize, i32)>, Option<(usize, u32, i32)>);

#[derive(Default)]
struct Sock {
    /// What the socket sent itself and has not read yet.
    queue: VecDeque<u8>,
    receives: VecDeque<OverlappedRecv>,
    /// `WSPEventSelect`'s event and events.
    select: Option<(isize, i32)>,
    /// `WSPAsyncSelect`'s window, message and events.
    window: Option<(usize, u32, i32)>,
    /// Events since the last `WSPEnumNetworkEvents`.
    happened: i32,
    linger: Linger,
    non_blocking: bool,
    results: HashMap<usize, OverlappedResult>,
}

#[derive(Default)]
struct Echo {
    catalog: AtomicU32,
    contexts: AtomicUsize,
    sockets: Mutex<HashMap<Socket, Sock>>,
    /// Closed sockets' selections (`Fault::NotifyClosed`).
    closed: Mutex<Vec<(Socket, Selected)>>,
    /// Requests a close left behind (`Fault::CompleteAgainAfterClose`).
    parked: Mutex<Vec<(Socket, Overlapped)>>,
    /// The upcall table, kept past the final cleanup (`Fault::KeepUpcalls`).
    kept: Mutex<Option<Upcalls>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A completion routine's call, queued as an APC's context.
struct ApcCall {
    routine: unsafe extern "system" fn(u32, u32, *mut OVERLAPPED, u32),
    error: u32,
    bytes: u32,
    overlapped: usize,
}

unsafe extern "system" fn run_apc(context: usize) {
    // SAFETY: the context is the box `complete` queued with this APC, which runs once.
    let call = unsafe { Box::from_raw(std::ptr::with_exposed_provenance_mut::<ApcCall>(context)) };
    // SAFETY: the caller's routine with the caller's WSAOVERLAPPED, as ws2_32 documents it.
    unsafe {
        (call.routine)(
            call.error,
            call.bytes,
            std::ptr::with_exposed_provenance_mut(call.overlapped),
            0,
        )
    };
}

/// `WPUOpenCurrentThread`, through the raw table (the safe wrappers lack it).
fn open_current_thread(upcalls: &Upcalls) -> ThreadId {
    let mut raw = WSATHREADID::default();
    let mut errno = 0;
    let open = upcalls.raw().lpWPUOpenCurrentThread.expect("in the table");
    // SAFETY: live locals.
    assert_eq!(unsafe { open(&mut raw, &mut errno) }, 0, "{errno}");
    ThreadId {
        handle: raw.ThreadHandle.0.addr(),
        reserved: raw.Reserved,
    }
}

/// Completes a request through its mechanism (as the fault has it).
fn complete(host: &Host<'_>, socket: Socket, request: &Overlapped, error: u32, bytes: u32) {
    let upcalls = host.upcalls().expect("started");
    let fault = fault();
    let overlapped = std::ptr::with_exposed_provenance_mut::<OVERLAPPED>(request.address());
    match request.routine() {
        Some(routine) if fault != Fault::RoutineThroughRequest => {
            if fault == Fault::RoutineInline {
                // SAFETY: the caller's routine and WSAOVERLAPPED (called where it must not be).
                unsafe { routine(error, bytes, overlapped, 0) };
                return;
            }
            let thread = if fault == Fault::ApcToCurrentThread {
                open_current_thread(&upcalls)
            } else {
                request.thread().expect("a routine comes with its thread")
            };
            let call = Box::into_raw(Box::new(ApcCall {
                routine,
                error,
                bytes,
                overlapped: request.address(),
            }));
            upcalls
                .queue_apc(thread, Some(run_apc), call.expose_provenance())
                .expect("WPUQueueApc");
        }
        _ if fault == Fault::SetEventDirectly && request.event() != 0 => {
            upcalls.set_event(request.event() as isize).expect("set");
        }
        _ => {
            // SAFETY: the caller's WSAOVERLAPPED stays valid until it is completed; by
            // convention OffsetHigh holds the error and Offset the flags.
            unsafe {
                (*overlapped).Anonymous.Anonymous.OffsetHigh = error;
                (*overlapped).Anonymous.Anonymous.Offset = 0;
            }
            let handle = match fault {
                Fault::ForeignHandle => socket.raw() + 1,
                Fault::CompleteOnAnotherHandle => upcalls
                    .create_socket_handle(0, 0)
                    .expect("WPUCreateSocketHandle")
                    .raw(),
                _ => socket.raw(),
            };
            let error = match fault {
                Fault::InProgressError => winsock::WSS_OPERATION_IN_PROGRESS,
                _ => error,
            };
            let mut errno = 0;
            // SAFETY: the WSAOVERLAPPED as above, a live lpErrno.
            unsafe {
                winsock::WPUCompleteOverlappedRequest(
                    SOCKET(handle),
                    overlapped,
                    error,
                    bytes,
                    &mut errno,
                )
            };
        }
    }
}

/// Tells the host about `event` on `socket`, through what it selected.
fn notify(host: &Host<'_>, socket: Socket, sock: &mut Sock, event: i32) {
    sock.happened |= event;
    notify_selected(host, socket, sock.select, sock.window, event);
}

fn notify_selected(
    host: &Host<'_>,
    socket: Socket,
    select: Option<(isize, i32)>,
    window: Option<(usize, u32, i32)>,
    event: i32,
) {
    let upcalls = host.upcalls().expect("started");
    if let Some((handle, events)) = select
        && events & event != 0
    {
        let _ = upcalls.set_event(handle);
    }
    if let Some((hwnd, message, events)) = window
        && events & event != 0
    {
        upcalls.post_message(hwnd, message, socket.raw(), event as isize);
    }
}

impl Echo {
    fn known(&self, socket: Socket) -> Result<(), WsaError> {
        match lock(&self.sockets).contains_key(&socket) {
            true => Ok(()),
            false => Err(WsaError::WSAENOTSOCK),
        }
    }

    fn with<R>(
        &self,
        socket: Socket,
        f: impl FnOnce(&mut Sock) -> Result<R, WsaError>,
    ) -> Result<R, WsaError> {
        match lock(&self.sockets).get_mut(&socket) {
            Some(sock) => f(sock),
            None => Err(WsaError::WSAENOTSOCK),
        }
    }

    fn new_socket(&self, host: &Host<'_>) -> Result<Socket, WsaError> {
        let upcalls = host.upcalls()?;
        let catalog = self.catalog.load(Ordering::SeqCst);
        let context = 0x100 + self.contexts.fetch_add(1, Ordering::SeqCst);
        let socket = upcalls.create_socket_handle(catalog, context)?;
        if fault() == Fault::ModifyIfs {
            upcalls.modify_ifs_handle(catalog, Socket::from_raw(0x4444))?;
        }
        lock(&self.sockets).insert(socket, Sock::default());
        Ok(socket)
    }

    /// Hands what the socket holds to its pending receives, then notifies what is left.
    fn deliver(host: &Host<'_>, socket: Socket, sock: &mut Sock) {
        while !sock.queue.is_empty() {
            let Some(mut op) = sock.receives.pop_front() else {
                break;
            };
            let n = op.fill(sock.queue.make_contiguous());
            sock.queue.drain(..n);
            let (request, n) = op.finish();
            let bytes = n as u32;
            sock.results
                .insert(request.address(), OverlappedResult { bytes, flags: 0 });
            complete(host, socket, &request, 0, bytes);
            if fault() == Fault::CompleteTwice {
                complete(host, socket, &request, 0, bytes);
            }
        }
        if !sock.queue.is_empty() {
            notify(host, socket, sock, FD_READ);
        }
    }

    /// What the faults do late (here: whenever a send happens).
    fn late(&self, host: &Host<'_>) {
        match fault() {
            Fault::NotifyClosed => {
                for (socket, (select, window)) in lock(&self.closed).iter() {
                    notify_selected(host, *socket, *select, *window, FD_READ);
                }
            }
            Fault::CompleteAgainAfterClose => {
                for (socket, request) in lock(&self.parked).drain(..) {
                    complete(host, socket, &request, ABORTED, 0);
                }
            }
            _ => {}
        }
    }

    /// A timer that outlives the final cleanup (`Fault::KeepUpcalls`): it sets `event`.
    fn late_timer(&self, event: isize) {
        let upcalls = lock(&self.kept).take().expect("kept by the final cleanup");
        let _ = upcalls.set_event(event);
    }
}

impl Dispatch for Echo {
    const DESCRIPTION: &'static str = "winprov echo";

    fn first_startup(&self, _: &Host<'_>, protocol: &ProtocolInfo) -> Result<(), WsaError> {
        self.catalog
            .store(protocol.catalog_entry_id(), Ordering::SeqCst);
        Ok(())
    }

    fn final_cleanup(&self, host: &Host<'_>) {
        let sockets = std::mem::take(&mut *lock(&self.sockets));
        let fault = fault();
        for (socket, mut sock) in sockets {
            match fault {
                Fault::CleanupCompletes => {
                    for op in sock.receives.drain(..) {
                        let (request, _) = op.finish();
                        complete(host, socket, &request, ABORTED, 0);
                    }
                }
                Fault::CleanupNotifies => notify(host, socket, &mut sock, FD_CLOSE),
                _ => {}
            }
            // The pending receives are dropped: cancelled without a notification (R-WSP-15).
            drop(sock);
            let _ = host.upcalls().and_then(|u| u.close_socket_handle(socket));
        }
        lock(&self.closed).clear();
        lock(&self.parked).clear();
        if fault == Fault::KeepUpcalls {
            *lock(&self.kept) = host.upcalls().ok();
        }
    }

    fn knows_socket(&self, socket: Socket) -> bool {
        lock(&self.sockets).contains_key(&socket)
    }

    fn socket(
        &self,
        host: &Host<'_>,
        _: i32,
        _: i32,
        _: i32,
        _: Option<&ProtocolInfo>,
        _: u32,
        _: u32,
    ) -> Result<Socket, WsaError> {
        self.new_socket(host)
    }

    fn accept(
        &self,
        host: &Host<'_>,
        socket: Socket,
        _: winprov_bindings::ws2spi::LPCONDITIONPROC,
        _: usize,
    ) -> Result<Accepted, WsaError> {
        self.known(socket)?;
        Ok(Accepted {
            socket: self.new_socket(host)?,
            address: b"peer".to_vec(),
        })
    }

    fn bind(&self, _: &Host<'_>, socket: Socket, _: &[u8]) -> Result<(), WsaError> {
        self.known(socket)
    }

    fn listen(&self, _: &Host<'_>, socket: Socket, _: i32) -> Result<(), WsaError> {
        self.known(socket)
    }

    fn connect(
        &self,
        _: &Host<'_>,
        socket: Socket,
        _: &[u8],
        _: Option<&[u8]>,
        _: Option<u32>,
        _: Option<winprov_bindings::ws2spi::QOS>,
        _: Option<winprov_bindings::ws2spi::QOS>,
    ) -> Result<Vec<u8>, WsaError> {
        self.known(socket).map(|()| Vec::new())
    }

    fn send(
        &self,
        host: &Host<'_>,
        socket: Socket,
        data: SendData<'_>,
        _: u32,
        overlapped: Option<Overlapped>,
    ) -> Result<Transfer, WsaError> {
        let bytes = data.to_vec();
        let len = bytes.len() as u32;
        self.with(socket, |sock| {
            if let Some(request) = &overlapped
                && fault() == Fault::FailAndComplete
            {
                complete(host, socket, request, 0, len);
                return Err(WsaError::WSAENOBUFS);
            }
            sock.queue.extend(bytes);
            Self::deliver(host, socket, sock);
            if let Some(request) = overlapped {
                sock.results.insert(
                    request.address(),
                    OverlappedResult {
                        bytes: len,
                        flags: 0,
                    },
                );
                match fault() {
                    Fault::ReturnBeforeSignal => {}
                    Fault::ImmediateWrongCount => complete(host, socket, &request, 0, len + 1),
                    _ => complete(host, socket, &request, 0, len),
                }
            }
            Ok(())
        })?;
        self.late(host);
        Ok(Transfer::Done {
            bytes: len,
            flags: 0,
        })
    }

    fn recv(
        &self,
        host: &Host<'_>,
        socket: Socket,
        io: RecvIo<'_>,
        _: u32,
    ) -> Result<Transfer, WsaError> {
        self.with(socket, |sock| match io {
            RecvIo::Blocking(mut buffers) => {
                if sock.queue.is_empty() {
                    return Err(WsaError::WSAEWOULDBLOCK);
                }
                let n = buffers.fill(sock.queue.make_contiguous());
                sock.queue.drain(..n);
                Ok(Transfer::Done {
                    bytes: n as u32,
                    flags: 0,
                })
            }
            RecvIo::Overlapped(mut op) => {
                if sock.queue.is_empty() || !sock.receives.is_empty() {
                    sock.receives.push_back(op);
                    return Ok(Transfer::Pending);
                }
                let n = op.fill(sock.queue.make_contiguous());
                sock.queue.drain(..n);
                let (request, n) = op.finish();
                let bytes = n as u32;
                sock.results
                    .insert(request.address(), OverlappedResult { bytes, flags: 0 });
                complete(host, socket, &request, 0, bytes);
                Ok(Transfer::Done { bytes, flags: 0 })
            }
        })
    }

    fn close_socket(&self, host: &Host<'_>, socket: Socket) -> Result<(), WsaError> {
        let fault = fault();
        let upcalls = host.upcalls()?;
        if fault == Fault::ServeClosed {
            return self.known(socket);
        }
        let mut sock = lock(&self.sockets)
            .remove(&socket)
            .ok_or(WsaError::WSAENOTSOCK)?;
        if fault == Fault::CloseHandleFirst {
            upcalls.close_socket_handle(socket)?;
        }
        for op in sock.receives.drain(..) {
            let (request, _) = op.finish();
            match fault {
                Fault::CloseLeavesPending => lock(&self.parked).push((socket, request)),
                Fault::CloseCompletesWithoutAbort => complete(host, socket, &request, 0, 0),
                Fault::CompleteAgainAfterClose => {
                    complete(host, socket, &request, ABORTED, 0);
                    lock(&self.parked).push((socket, request));
                }
                _ => complete(host, socket, &request, ABORTED, 0),
            }
        }
        if fault == Fault::FdCloseOnClose {
            notify(host, socket, &mut sock, FD_CLOSE);
        }
        if fault == Fault::NotifyClosed {
            lock(&self.closed).push((socket, (sock.select, sock.window)));
        }
        if fault != Fault::CloseHandleFirst {
            upcalls.close_socket_handle(socket)?;
        }
        Ok(())
    }

    fn event_select(
        &self,
        _: &Host<'_>,
        socket: Socket,
        event: isize,
        events: i32,
    ) -> Result<(), WsaError> {
        self.with(socket, |sock| {
            sock.select = (event != 0 && events != 0).then_some((event, events));
            Ok(())
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
        self.with(socket, |sock| {
            sock.window = (window != 0 && events != 0).then_some((window, message, events));
            Ok(())
        })
    }

    fn enum_network_events(
        &self,
        host: &Host<'_>,
        socket: Socket,
        event: isize,
    ) -> Result<NetworkEvents, WsaError> {
        let events = self.with(socket, |sock| Ok(std::mem::take(&mut sock.happened)))?;
        if event != 0 {
            let reset = host.upcalls()?.raw().lpWPUResetEvent.expect("in the table");
            let mut errno = 0;
            // SAFETY: the host's function, a live lpErrno.
            let _ = unsafe { reset(WSAEVENT(event), &mut errno) };
        }
        Ok(NetworkEvents {
            events,
            errors: [0; 10],
        })
    }

    fn set_sock_opt(
        &self,
        _: &Host<'_>,
        socket: Socket,
        option: SockOpt<'_>,
    ) -> Result<(), WsaError> {
        self.with(socket, |sock| match option {
            SockOpt::Linger(linger) => {
                sock.linger = linger;
                Ok(())
            }
            SockOpt::DontLinger(dont) => {
                sock.linger.on = !dont;
                Ok(())
            }
            _ => Err(WsaError::WSAENOPROTOOPT),
        })
    }

    fn get_sock_opt(
        &self,
        _: &Host<'_>,
        socket: Socket,
        level: i32,
        name: i32,
    ) -> Result<Vec<u8>, WsaError> {
        self.with(socket, |sock| match (level, name) {
            (SOL_SOCKET, SO_LINGER) => Ok(sock.linger.to_bytes().to_vec()),
            _ => Err(WsaError::WSAENOPROTOOPT),
        })
    }

    fn ioctl(
        &self,
        _: &Host<'_>,
        socket: Socket,
        code: u32,
        input: &[u8],
        _: u32,
        _: Option<Overlapped>,
    ) -> Result<Vec<u8>, WsaError> {
        self.with(socket, |sock| match (code, input) {
            (FIONBIO, [a, b, c, d]) => {
                sock.non_blocking = u32::from_ne_bytes([*a, *b, *c, *d]) != 0;
                Ok(Vec::new())
            }
            _ => Err(WsaError::WSAEOPNOTSUPP),
        })
    }

    fn shutdown(&self, _: &Host<'_>, socket: Socket, _: How) -> Result<(), WsaError> {
        self.known(socket)
    }

    fn send_disconnect(
        &self,
        _: &Host<'_>,
        socket: Socket,
        _: Option<&[u8]>,
    ) -> Result<(), WsaError> {
        self.known(socket)
    }

    fn recv_disconnect(
        &self,
        _: &Host<'_>,
        socket: Socket,
        _: Option<u32>,
    ) -> Result<Vec<u8>, WsaError> {
        self.known(socket).map(|()| b"bye".to_vec())
    }

    fn get_overlapped_result(
        &self,
        _: &Host<'_>,
        socket: Socket,
        overlapped: usize,
        _: bool,
    ) -> Result<OverlappedResult, WsaError> {
        self.with(socket, |sock| {
            sock.results
                .get(&overlapped)
                .copied()
                .ok_or(WsaError::WSA_IO_INCOMPLETE)
        })
    }
}

winprov_wsp::export_provider!(Echo, Echo::default);

fn echo() -> &'static Echo {
    wsp_process().dispatch().expect("made by the first startup")
}

/// The upcall table the provider holds.
fn upcalls() -> Upcalls {
    wsp_process().host().upcalls().expect("started")
}

// ---------------------------------------------------------------------------------------------
// A provider that keeps the caller's WSABUF array and WSATHREADID: Echo's WSPStartup, its
// WSPRecv slot wrapped by one that keeps both pointers.

static REAL_RECV: Mutex<LPWSPRECV> = Mutex::new(None);
/// The addresses of the last WSPRecv's array and thread id.
static KEPT: Mutex<(usize, usize)> = Mutex::new((0, 0));

unsafe extern "system" fn keeping_startup(
    version: u16,
    data: *const WSPDATA,
    info: *const WSAPROTOCOL_INFOW,
    upcalls: WSPUPCALLTABLE,
    table: *mut WSPPROC_TABLE,
) -> i32 {
    // SAFETY: forwarded as received.
    let code = unsafe { WSPStartup(version, data, info, upcalls, table) };
    if code == 0 {
        // SAFETY: the table WSPStartup has just written.
        unsafe {
            *lock(&REAL_RECV) = (*table).lpWSPRecv;
            (*table).lpWSPRecv = Some(keeping_recv);
        }
    }
    code
}

#[allow(clippy::too_many_arguments)]
unsafe extern "system" fn keeping_recv(
    s: SOCKET,
    lpbuffers: *const WSABUF,
    dwbuffercount: u32,
    lpnumberofbytesrecvd: *mut u32,
    lpflags: *mut u32,
    lpoverlapped: *mut OVERLAPPED,
    lpcompletionroutine: winprov_bindings::ws2spi::LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    lpthreadid: *const WSATHREADID,
    lperrno: *const i32,
) -> i32 {
    *lock(&KEPT) = (
        lpbuffers.expose_provenance(),
        lpthreadid.expose_provenance(),
    );
    let real = lock(&REAL_RECV).expect("kept by keeping_startup");
    // SAFETY: forwarded as received.
    unsafe {
        real(
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
    }
}

/// Echo's WSPStartup with a slot set to NULL.
unsafe extern "system" fn holey_startup(
    version: u16,
    data: *const WSPDATA,
    info: *const WSAPROTOCOL_INFOW,
    upcalls: WSPUPCALLTABLE,
    table: *mut WSPPROC_TABLE,
) -> i32 {
    // SAFETY: forwarded as received.
    let code = unsafe { WSPStartup(version, data, info, upcalls, table) };
    if code == 0 {
        // SAFETY: the table WSPStartup has just written.
        unsafe { (*table).lpWSPSelect = None };
    }
    code
}

// ---------------------------------------------------------------------------------------------
// Helpers.

fn start_with(fault: Fault, protocol: WSAPROTOCOL_INFOW) -> Winsock {
    let ws = Winsock::start(WSPStartup, protocol).expect("WSPStartup");
    *lock(&FAULT) = fault;
    ws
}

fn start(fault: Fault) -> Winsock {
    start_with(fault, base_protocol(CATALOG, 0))
}

/// The violations `run` raised (it must raise).
fn raised(run: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(run)).expect_err("the simulator raised nothing");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Asserts that a violation of `rule` mentioning `what` was raised.
#[track_caller]
fn assert_violation(message: &str, rule: &str, what: &str) {
    assert!(
        message
            .lines()
            .any(|line| line.starts_with(&format!("{rule}: ")) && line.contains(what)),
        "expected a {rule} violation about {what:?}, got:\n{message}"
    );
}

/// Asserts that every violation raised is of `rule`.
#[track_caller]
fn assert_only(message: &str, rule: &str) {
    for line in message.lines() {
        assert!(line.starts_with(&format!("{rule}: ")), "not {rule}: {line}");
    }
}

fn socket(ws: &Winsock) -> Socket {
    ws.socket(2, 1, 6).expect("WSPSocket")
}

fn request(socket: Socket) -> Delivery {
    Delivery::Request {
        socket,
        event: None,
        port: None,
    }
}

// ---------------------------------------------------------------------------------------------
// The correct provider: quiet, and what the simulator records.

#[test]
fn a_correct_provider_raises_nothing_through_every_call() {
    let mut ws = start(Fault::None);
    assert_eq!(ws.data().wVersion, 0x0202);
    assert_eq!(ws.startups(), 1);
    let s = socket(&ws);
    let handle = ws.handle(s).expect("made by WPUCreateSocketHandle");
    assert_eq!(handle.catalog_entry_id, CATALOG);
    assert!(!handle.closed);
    ws.bind(s, &[2, 0, 0, 80]).unwrap();
    ws.listen(s, 5).unwrap();
    let (accepted, peer) = ws.accept(s).unwrap();
    assert_eq!(peer, b"peer");
    assert_ne!(accepted, s);
    ws.connect(s, &[2, 0, 0, 81]).unwrap();

    // Options.
    ws.set_linger(
        s,
        Linger {
            on: true,
            seconds: 7,
        },
    )
    .unwrap();
    assert_eq!(
        ws.get_linger(s).unwrap(),
        Linger {
            on: true,
            seconds: 7
        }
    );
    ws.set_dont_linger(s, true).unwrap();
    assert_eq!(
        ws.get_linger(s).unwrap(),
        Linger {
            on: false,
            seconds: 7
        }
    );
    ws.set_non_blocking(s, true).unwrap();
    assert!(lock(&echo().sockets)[&s].non_blocking);
    assert_eq!(ws.ioctl(s, 0x1234, &[], 0), Err(WsaError::WSAEOPNOTSUPP));

    // Plain I/O, and the network events it makes.
    let event = ws.create_event();
    let window = ws.create_window();
    ws.event_select(s, Some(event), FD_READ | FD_CLOSE).unwrap();
    ws.async_select(s, Some(window), WM_SOCKET, FD_READ | FD_CLOSE)
        .unwrap();
    assert_eq!(ws.recv(s, 16), Err(WsaError::WSAEWOULDBLOCK));
    assert_eq!(ws.send(s, b"hello").unwrap(), 5);
    assert!(ws.event_state(event).unwrap().signalled);
    assert_eq!(
        ws.take_messages(window),
        [Message {
            message: WM_SOCKET,
            socket: s,
            event: FD_READ as u16,
            error: 0
        }]
    );
    let events = ws.enum_network_events(s, Some(event)).unwrap();
    assert_eq!(events.events, FD_READ);
    assert!(
        !ws.event_state(event).unwrap().signalled,
        "reset by the provider"
    );
    assert_eq!(ws.recv(s, 3).unwrap(), b"hel");
    assert_eq!(ws.recv(s, 16).unwrap(), b"lo");

    // Overlapped, each mechanism: pending, then completed by a send.
    let pending = ws.recv_overlapped(s, 8, Via::Event).unwrap();
    assert!(pending.is_pending());
    assert_eq!(
        ws.get_overlapped_result(s, pending.op, false),
        Err(WsaError::WSA_IO_INCOMPLETE)
    );
    ws.send(s, b"abc").unwrap();
    let [completion] = ws.completions(pending.op)[..] else {
        panic!("one completion: {:?}", ws.completions(pending.op));
    };
    assert_eq!((completion.error, completion.bytes), (0, 3));
    let Delivery::Request {
        socket: on,
        event: Some(set),
        port: None,
    } = completion.delivery
    else {
        panic!("through the event: {completion:?}");
    };
    assert_eq!(on, s);
    assert!(ws.event_state(set).unwrap().signalled);
    assert_eq!(ws.received(pending.op), b"abc");
    let status = ws.overlapped(pending.op).unwrap();
    assert_eq!((status.internal, status.internal_high), (0, 3));
    assert_eq!(status.event, set.raw() as usize);
    assert_eq!(
        ws.get_overlapped_result(s, pending.op, true).unwrap(),
        Done { bytes: 3, flags: 0 }
    );
    ws.forget(pending.op);
    assert_eq!(ws.completions(pending.op), []);

    let port = ws.create_port();
    ws.associate(s, port, 77);
    let by_port = ws.recv_overlapped(s, 8, Via::Port).unwrap();
    assert!(by_port.is_pending());
    ws.send(s, b"port").unwrap();
    assert_eq!(
        ws.dequeue(port),
        Some(Packet {
            key: 77,
            bytes: 4,
            op: by_port.op,
            error: 0
        })
    );
    assert_eq!(ws.dequeue(port), None);
    assert_eq!(ws.received(by_port.op), b"port");

    let thread = ws.new_thread();
    let by_routine = ws
        .recv_overlapped_vectored(s, &[2, 6], Via::Routine(thread))
        .unwrap();
    assert!(by_routine.is_pending());
    ws.send(s, b"routine").unwrap();
    assert_eq!(ws.completions(by_routine.op), [], "queued, not run");
    assert_eq!(ws.apcs_queued(thread), 1);
    assert_eq!(ws.run_apcs(thread), 1);
    assert_eq!(
        ws.completions(by_routine.op),
        [Completion {
            error: 0,
            bytes: 7,
            flags: 0,
            delivery: Delivery::Routine {
                thread: Some(thread)
            }
        }]
    );
    assert_eq!(ws.received(by_routine.op), b"routine");

    // Completed at once: signalled (or queued) before the call returned.
    let now = ws.send_overlapped(s, b"now", Via::EventOnly).unwrap();
    assert_eq!(now.done, Some(Done { bytes: 3, flags: 0 }));
    let [completion] = ws.completions(now.op)[..] else {
        panic!("one completion");
    };
    assert!(
        matches!(
            completion.delivery,
            Delivery::Request {
                event: Some(_),
                port: None,
                ..
            }
        ),
        "the event, not the port: {completion:?}"
    );
    let routine_now = ws.send_overlapped(s, b"r", Via::Routine(thread)).unwrap();
    assert!(!routine_now.is_pending());
    assert_eq!(ws.run_apcs(thread), 1);
    assert_eq!(ws.completions(routine_now.op).len(), 1);
    let read_now = ws.recv_overlapped(s, 16, Via::Port).unwrap();
    assert_eq!(
        read_now.done,
        Some(Done { bytes: 4, flags: 0 }),
        "'now' and 'r'"
    );
    assert_eq!(ws.received(read_now.op), b"nowr");
    assert_eq!(ws.dequeue(port).map(|packet| packet.op), Some(read_now.op));

    // The disconnect calls and shutdown.
    ws.shutdown(s, 1).unwrap();
    ws.send_disconnect(s, Some(b"bye")).unwrap();
    assert_eq!(ws.recv_disconnect(s, Some(8)).unwrap(), b"bye");

    // A close with an operation pending through each mechanism: each aborted, nothing after.
    let aborted = [
        ws.recv_overlapped(s, 8, Via::Event).unwrap(),
        ws.recv_overlapped(s, 8, Via::Port).unwrap(),
        ws.recv_overlapped(s, 8, Via::Routine(thread)).unwrap(),
    ];
    let before: Vec<i32> = ws
        .take_messages(window)
        .iter()
        .map(|message| i32::from(message.event))
        .collect();
    assert!(before.iter().all(|event| *event == FD_READ), "{before:?}");
    ws.close(s).unwrap();
    assert!(ws.handle(s).unwrap().closed);
    assert_eq!(ws.run_apcs(thread), 1);
    for issued in aborted {
        assert!(issued.is_pending());
        let [completion] = ws.completions(issued.op)[..] else {
            panic!("aborted once");
        };
        assert_eq!((completion.error, completion.bytes), (ABORTED, 0));
    }
    assert_eq!(ws.bind(s, &[2, 0, 0, 82]), Err(WsaError::WSAENOTSOCK));
    ws.send(accepted, b"x").unwrap();
    assert_eq!(ws.recv(accepted, 8).unwrap(), b"x");
    assert_eq!(ws.take_messages(window), []);

    // The final cleanup cancels what is pending on the socket still open, without a word.
    let cancelled = ws
        .recv_overlapped(accepted, 8, Via::Routine(thread))
        .unwrap();
    let cancelled = [
        cancelled,
        ws.recv_overlapped(accepted, 8, Via::Event).unwrap(),
    ];
    ws.cleanup().unwrap();
    assert_eq!(ws.startups(), 0);
    for issued in cancelled {
        assert!(issued.is_pending());
        assert_eq!(ws.completions(issued.op), []);
    }
    assert!(ws.handle(accepted).unwrap().closed);

    // Loaded again, and counted: two startups need two cleanups.
    ws.start_again().unwrap();
    ws.start_again().unwrap();
    assert_eq!(ws.startups(), 2);
    let again = socket(&ws);
    ws.cleanup().unwrap();
    assert_eq!(ws.send(again, b"still served").unwrap(), 12);
    ws.finish();
}

#[test]
fn handles_are_fresh_keep_their_context_and_close_once() {
    let ws = start(Fault::None);
    let sockets: Vec<Socket> = (0..3).map(|_| socket(&ws)).collect();
    let u = upcalls();
    let direct = u.create_socket_handle(CATALOG, 0xfeed).unwrap();
    assert!(!sockets.contains(&direct));
    assert_eq!(u.query_socket_handle_context(direct), Ok(0xfeed));
    assert_eq!(u.close_socket_handle(direct), Ok(()));
    assert_eq!(
        u.close_socket_handle(direct),
        Err(WsaError::WSAENOTSOCK),
        "closed twice"
    );
    assert_eq!(
        u.query_socket_handle_context(direct),
        Err(WsaError::WSAENOTSOCK)
    );
    assert_eq!(
        u.query_socket_handle_context(Socket::from_raw(0x13)),
        Err(WsaError::WSAENOTSOCK)
    );
    let state = ws.handle(direct).unwrap();
    assert_eq!(
        (state.context, state.closed, state.close_calls),
        (0xfeed, true, 2)
    );
    assert!(ws.upcalls().contains(&Upcall::CloseSocketHandle {
        socket: direct,
        result: Err(WsaError::WSAENOTSOCK)
    }));
    // A new turn, a fresh ws2_32: no value comes back.
    let turn = ws.finish();
    let ws = Winsock::start_in(turn, WSPStartup, base_protocol(CATALOG, 0)).unwrap();
    let again = socket(&ws);
    assert!(
        again != direct && !sockets.contains(&again),
        "a value reused"
    );
    assert_eq!(ws.handle(direct), None, "the previous turn's state kept");
    ws.finish();
}

#[test]
fn a_completion_made_on_another_thread_reaches_the_initiating_thread() {
    let ws = start(Fault::None);
    let s = socket(&ws);
    let me = ws.current_thread();
    let pending = ws.recv_overlapped(s, 8, Via::Routine(me)).unwrap();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            assert_ne!(ws.current_thread(), me);
            ws.send(s, b"across").unwrap();
        });
    });
    assert_eq!(ws.completions(pending.op), [], "no APC runs by itself");
    assert_eq!(ws.run_apcs(me), 1);
    assert_eq!(
        ws.completions(pending.op)[0].delivery,
        Delivery::Routine { thread: Some(me) }
    );
    assert_eq!(ws.received(pending.op), b"across");
    ws.forget(pending.op);
    ws.finish();
}

static ORDER: Mutex<Vec<usize>> = Mutex::new(Vec::new());

unsafe extern "system" fn record_apc(context: usize) {
    lock(&ORDER).push(context);
}

#[test]
fn apcs_run_in_order_and_only_in_their_threads_alertable_wait() {
    let ws = start(Fault::None);
    lock(&ORDER).clear();
    let u = upcalls();
    let (a, b) = (ws.new_thread(), ws.new_thread());
    let id = |thread: winsock::Thread| ThreadId {
        handle: thread.handle(),
        reserved: 0,
    };
    for (thread, context) in [(a, 1), (b, 10), (a, 2), (a, 3)] {
        u.queue_apc(id(thread), Some(record_apc), context).unwrap();
    }
    assert_eq!(*lock(&ORDER), [], "an APC ran before an alertable wait");
    assert_eq!((ws.apcs_queued(a), ws.apcs_queued(b)), (3, 1));
    assert_eq!(ws.run_apcs(a), 3);
    assert_eq!(*lock(&ORDER), [1, 2, 3]);
    assert_eq!(ws.run_apcs(b), 1);
    assert_eq!(ws.run_apcs(a), 0);
    assert_eq!(*lock(&ORDER), [1, 2, 3, 10]);
    let unknown = ThreadId {
        handle: 0x7777_0000,
        reserved: 0,
    };
    assert_eq!(
        u.queue_apc(unknown, Some(record_apc), 0),
        Err(WsaError::WSAEINVAL)
    );

    // WPUOpenCurrentThread: another handle of the calling thread, until WPUCloseThread.
    let opened = open_current_thread(&u);
    let me = ws.current_thread();
    assert_ne!(opened.handle, me.handle());
    u.queue_apc(opened, Some(record_apc), 4).unwrap();
    assert_eq!(ws.apcs_queued(me), 1);
    assert_eq!(ws.run_apcs(me), 1);
    let close = u.raw().lpWPUCloseThread.unwrap();
    let raw = opened.to_raw();
    let mut errno = 0;
    // SAFETY: live locals.
    assert_eq!(unsafe { close(&raw, &mut errno) }, 0);
    // SAFETY: as above.
    assert_eq!(unsafe { close(&raw, &mut errno) }, SOCKET_ERROR);
    assert_eq!(errno, WsaError::WSAEINVAL.raw());
    assert_eq!(
        u.queue_apc(opened, Some(record_apc), 5),
        Err(WsaError::WSAEINVAL)
    );
    assert_eq!(*lock(&ORDER), [1, 2, 3, 10, 4]);
    ws.finish();
}

#[test]
fn wpu_complete_overlapped_request_writes_bytes_then_error_and_tells_port_or_event() {
    let ws = start(Fault::None);
    let s = socket(&ws);
    // Not associated: the event; a NULL hEvent: nothing but the structure.
    let by_event = ws.recv_overlapped(s, 8, Via::Event).unwrap();
    let silent = ws.recv_overlapped(s, 8, Via::Port).unwrap();
    let before = ws.overlapped(by_event.op).unwrap();
    assert_eq!((before.internal, before.internal_high), (0, 0));
    ws.send(s, b"12345678abc").unwrap();
    let [first] = ws.completions(by_event.op)[..] else {
        panic!("one completion")
    };
    assert!(matches!(
        first.delivery,
        Delivery::Request {
            event: Some(_),
            port: None,
            ..
        }
    ));
    assert_eq!(ws.completions(silent.op)[0].delivery, request(s));
    let status = ws.overlapped(silent.op).unwrap();
    assert_eq!((status.internal, status.internal_high), (0, 3));

    // Associated: the port, unless hEvent's low bit is set.
    let port = ws.create_port();
    ws.associate(s, port, 5);
    let to_port = ws.recv_overlapped(s, 4, Via::Event).unwrap();
    let to_event = ws.recv_overlapped(s, 4, Via::EventOnly).unwrap();
    ws.close(s).unwrap();
    let packet = ws.dequeue(port).expect("posted");
    assert_eq!(
        packet,
        Packet {
            key: 5,
            bytes: 0,
            op: to_port.op,
            error: ABORTED
        }
    );
    assert_eq!(
        ws.dequeue(port),
        None,
        "the low bit's event went to the port"
    );
    let [completion] = ws.completions(to_event.op)[..] else {
        panic!("one completion")
    };
    let Delivery::Request {
        event: Some(event),
        port: None,
        ..
    } = completion.delivery
    else {
        panic!("through the event: {completion:?}")
    };
    assert_eq!(
        ws.overlapped(to_event.op).unwrap().event,
        event.raw() as usize | 1
    );
    let state = ws.event_state(event).unwrap();
    assert!(state.signalled && state.sets == 1);
    // The provider's convention: OffsetHigh is the error too.
    let status = ws.overlapped(to_port.op).unwrap();
    assert_eq!((status.internal, status.offset_high), (995, 995));
    ws.finish();
}

#[test]
fn the_other_upcalls_answer_as_ws2_32_does() {
    let ws = start(Fault::None);
    let table = *upcalls().raw();
    let mut errno = 0;

    // WPUGetProviderPath: the started protocol's provider only; a short buffer gets the length.
    ws.set_provider_path("C:\\provider.dll");
    let id = ws.protocol().ProviderId;
    let get_path = table.lpWPUGetProviderPath.unwrap();
    let mut path = [0u16; 64];
    let mut len = 64;
    // SAFETY: live locals.
    let code = unsafe { get_path(&id, PWSTR(path.as_mut_ptr()), &mut len, &mut errno) };
    assert_eq!(code, 0);
    assert_eq!(len, 16);
    assert_eq!(String::from_utf16_lossy(&path[..15]), "C:\\provider.dll");
    let mut short = 3;
    // SAFETY: live locals.
    let code = unsafe { get_path(&id, PWSTR(path.as_mut_ptr()), &mut short, &mut errno) };
    assert_eq!(
        (code, errno, short),
        (SOCKET_ERROR, WsaError::WSAEFAULT.raw(), 16)
    );
    let other = GUID::from_u128(1);
    // SAFETY: live locals.
    let code = unsafe { get_path(&other, PWSTR(path.as_mut_ptr()), &mut len, &mut errno) };
    assert_eq!((code, errno), (SOCKET_ERROR, WsaError::WSAEINVAL.raw()));

    // WPUFDIsSet.
    let mut set = FD_SET {
        fd_count: 2,
        ..FD_SET::default()
    };
    set.fd_array[0] = SOCKET(5);
    set.fd_array[1] = SOCKET(9);
    set.fd_array[2] = SOCKET(7);
    let is_set = table.lpWPUFDIsSet.unwrap();
    // SAFETY: a live fd_set.
    unsafe {
        assert_ne!(is_set(SOCKET(9), &set), 0);
        assert_eq!(is_set(SOCKET(7), &set), 0, "beyond fd_count");
    }

    // WPUQueryBlockingCallback: a callback that lets the call go on.
    let query = table.lpWPUQueryBlockingCallback.unwrap();
    let mut callback: LPBLOCKINGCALLBACK = None;
    let mut context = 0usize;
    assert_eq!(
        // SAFETY: live locals.
        unsafe { query(CATALOG, &mut callback, &mut context, &mut errno) },
        0
    );
    assert_eq!(context, CATALOG as usize);
    // SAFETY: the callback with its context.
    assert!(unsafe { callback.unwrap()(context) }.as_bool());
    assert_eq!(ws.blocking_callbacks(), 1);

    // Events: made, set, reset, closed.
    // SAFETY: live locals throughout.
    unsafe {
        let event = table.lpWPUCreateEvent.unwrap()(&mut errno);
        assert_ne!(event.0, 0);
        let state = || ws.event_state(winsock::Event::from_raw(event.0)).unwrap();
        assert!(table.lpWPUSetEvent.unwrap()(event, &mut errno).as_bool());
        assert_eq!((state().signalled, state().sets), (true, 1));
        assert!(table.lpWPUResetEvent.unwrap()(event, &mut errno).as_bool());
        assert_eq!((state().signalled, state().resets), (false, 1));
        assert!(table.lpWPUCloseEvent.unwrap()(event, &mut errno).as_bool());
        assert!(state().closed);
        assert!(!table.lpWPUSetEvent.unwrap()(event, &mut errno).as_bool());
        assert_eq!(errno, WsaError::WSA_INVALID_HANDLE.raw());
    }

    // A message to a window that does not exist is not posted.
    assert!(!upcalls().post_message(0x99, WM_SOCKET, 0, 0));
    let names: Vec<bool> = ws
        .upcalls()
        .iter()
        .map(|upcall| matches!(upcall, Upcall::GetProviderPath { .. }))
        .collect();
    assert_eq!(names.iter().filter(|is| **is).count(), 3);
    ws.finish();
}

#[test]
fn a_proc_table_with_a_null_slot_is_refused_and_its_startup_paired() {
    assert_eq!(
        Winsock::start(holey_startup, base_protocol(CATALOG, 0)).err(),
        Some(WsaError::WSAEINVALIDPROCTABLE)
    );
    let ws = start(Fault::None);
    assert_eq!(
        wsp_process().startups(),
        1,
        "the refused startup still counted"
    );
    ws.finish();
}

// ---------------------------------------------------------------------------------------------
// R-WSP-16

#[test]
fn r_wsp_16_a_call_that_returned_0_has_signalled_its_completion() {
    for via in [Via::Event, Via::EventOnly, Via::Port] {
        let message = raised(|| {
            let ws = start(Fault::ReturnBeforeSignal);
            let s = socket(&ws);
            ws.send_overlapped(s, b"now", via).unwrap();
        });
        assert_violation(
            &message,
            "R-WSP-16",
            "returned 0 but its completion was not",
        );
        assert_only(&message, "R-WSP-16");
    }
    let message = raised(|| {
        let ws = start(Fault::ReturnBeforeSignal);
        let s = socket(&ws);
        let thread = ws.new_thread();
        ws.send_overlapped(s, b"now", Via::Routine(thread)).unwrap();
    });
    assert_violation(&message, "R-WSP-16", "no completion routine was queued");
    assert_only(&message, "R-WSP-16");
}

#[test]
fn r_wsp_16_a_pending_operation_completes_once() {
    let message = raised(|| {
        let ws = start(Fault::CompleteTwice);
        let s = socket(&ws);
        assert!(ws.recv_overlapped(s, 8, Via::Event).unwrap().is_pending());
        ws.send(s, b"data").unwrap();
    });
    assert_violation(&message, "R-WSP-16", "completed twice");
    assert_only(&message, "R-WSP-16");
}

#[test]
fn r_wsp_16_a_failed_call_never_completes() {
    let message = raised(|| {
        let ws = start(Fault::FailAndComplete);
        let s = socket(&ws);
        let _ = ws.send_overlapped(s, b"data", Via::Event);
    });
    assert_violation(&message, "R-WSP-16", "failed with WSAENOBUFS");
    assert_only(&message, "R-WSP-16");
}

#[test]
fn r_wsp_16_a_call_that_returned_0_completed_with_what_it_returned() {
    let message = raised(|| {
        let ws = start(Fault::ImmediateWrongCount);
        let s = socket(&ws);
        ws.send_overlapped(s, b"four", Via::Event).unwrap();
    });
    assert_violation(
        &message,
        "R-WSP-16",
        "returned 0 with 4 bytes but completed with",
    );
    assert_only(&message, "R-WSP-16");
}

#[test]
fn r_wsp_16_an_operation_completes_on_its_own_socket() {
    let message = raised(|| {
        let ws = start(Fault::CompleteOnAnotherHandle);
        let s = socket(&ws);
        ws.recv_overlapped(s, 8, Via::Event).unwrap();
        ws.send(s, b"data").unwrap();
    });
    assert_violation(&message, "R-WSP-16", "completed on socket");
    assert_only(&message, "R-WSP-16");
}

#[test]
fn r_wsp_16_no_completion_of_an_operation_never_issued() {
    let ws = start(Fault::None);
    let s = socket(&ws);
    let mut foreign = OVERLAPPED::default();
    let mut errno = 0;
    // SAFETY: a live WSAOVERLAPPED and lpErrno.
    let code = unsafe {
        winsock::WPUCompleteOverlappedRequest(SOCKET(s.raw()), &mut foreign, 0, 5, &mut errno)
    };
    assert_eq!((code, errno), (SOCKET_ERROR, WsaError::WSAEINVAL.raw()));
    assert_eq!(
        foreign.InternalHigh, 0,
        "written through a pointer it does not own"
    );
    let message = raised(|| ws.check());
    assert_violation(&message, "R-WSP-16", "not an outstanding operation");
}

// ---------------------------------------------------------------------------------------------
// R-WSP-14

#[test]
fn r_wsp_14_an_operation_with_a_routine_is_not_completed_through_a_request() {
    let message = raised(|| {
        let ws = start(Fault::RoutineThroughRequest);
        let s = socket(&ws);
        let thread = ws.new_thread();
        ws.recv_overlapped(s, 8, Via::Routine(thread)).unwrap();
        ws.send(s, b"data").unwrap();
    });
    assert_violation(&message, "R-WSP-14", "through WPUCompleteOverlappedRequest");
    assert_only(&message, "R-WSP-14");
}

#[test]
fn r_wsp_14_a_routine_runs_on_its_initiating_thread() {
    let message = raised(|| {
        let ws = start(Fault::ApcToCurrentThread);
        let s = socket(&ws);
        let thread = ws.new_thread();
        ws.recv_overlapped(s, 8, Via::Routine(thread)).unwrap();
        ws.send(s, b"data").unwrap();
        assert_eq!(ws.apcs_queued(thread), 0);
        ws.run_apcs(ws.current_thread());
    });
    assert_violation(&message, "R-WSP-14", "not its initiating thread");
    assert_only(&message, "R-WSP-14");
}

#[test]
fn r_wsp_14_a_routine_runs_only_from_an_apc() {
    let message = raised(|| {
        let ws = start(Fault::RoutineInline);
        let s = socket(&ws);
        let thread = ws.new_thread();
        ws.recv_overlapped(s, 8, Via::Routine(thread)).unwrap();
        ws.send(s, b"data").unwrap();
    });
    assert_violation(&message, "R-WSP-14", "outside an alertable wait");
    assert_only(&message, "R-WSP-14");
}

#[test]
fn r_wsp_14_an_operations_event_is_set_by_its_completion_only() {
    let message = raised(|| {
        let ws = start(Fault::SetEventDirectly);
        let s = socket(&ws);
        ws.recv_overlapped(s, 8, Via::Event).unwrap();
        ws.send(s, b"data").unwrap();
    });
    assert_violation(
        &message,
        "R-WSP-14",
        "WPUSetEvent on the event of operation",
    );
    assert_only(&message, "R-WSP-14");
}

#[test]
fn r_wsp_14_a_close_completes_every_pending_operation() {
    for via in [Via::Event, Via::Port] {
        let message = raised(|| {
            let ws = start(Fault::CloseLeavesPending);
            let s = socket(&ws);
            ws.recv_overlapped(s, 8, via).unwrap();
            ws.close(s).unwrap();
        });
        assert_violation(&message, "R-WSP-14", "still pending");
        assert_only(&message, "R-WSP-14");
    }
    let message = raised(|| {
        let ws = start(Fault::CloseLeavesPending);
        let s = socket(&ws);
        let thread = ws.new_thread();
        ws.recv_overlapped(s, 8, Via::Routine(thread)).unwrap();
        ws.close(s).unwrap();
    });
    assert_violation(&message, "R-WSP-14", "routines are not queued");
    assert_only(&message, "R-WSP-14");
}

#[test]
fn r_wsp_14_a_close_completes_with_wsa_operation_aborted() {
    let message = raised(|| {
        let ws = start(Fault::CloseCompletesWithoutAbort);
        let s = socket(&ws);
        ws.recv_overlapped(s, 8, Via::Event).unwrap();
        ws.close(s).unwrap();
    });
    assert_violation(&message, "R-WSP-14", "error 0, not WSA_OPERATION_ABORTED");
    assert_only(&message, "R-WSP-14");
    let message = raised(|| {
        let ws = start(Fault::CloseCompletesWithoutAbort);
        let s = socket(&ws);
        let thread = ws.new_thread();
        ws.recv_overlapped(s, 8, Via::Routine(thread)).unwrap();
        ws.close(s).unwrap();
        ws.run_apcs(thread);
    });
    assert_violation(&message, "R-WSP-14", "error 0, not WSA_OPERATION_ABORTED");
    assert_only(&message, "R-WSP-14");
}

#[test]
fn r_wsp_14_nothing_completes_after_a_close() {
    let message = raised(|| {
        let ws = start(Fault::CompleteAgainAfterClose);
        let (s, other) = (socket(&ws), socket(&ws));
        let thread = ws.new_thread();
        ws.recv_overlapped(s, 8, Via::Routine(thread)).unwrap();
        ws.close(s).unwrap();
        ws.send(other, b"late").unwrap();
        ws.run_apcs(thread);
    });
    assert_violation(&message, "R-WSP-14", "close returned");
}

#[test]
fn r_wsp_14_a_close_posts_no_fd_close() {
    let message = raised(|| {
        let ws = start(Fault::FdCloseOnClose);
        let s = socket(&ws);
        let window = ws.create_window();
        ws.async_select(s, Some(window), WM_SOCKET, FD_READ | FD_CLOSE)
            .unwrap();
        ws.close(s).unwrap();
    });
    assert_violation(&message, "R-WSP-14", "FD_CLOSE message posted");
    assert_only(&message, "R-WSP-14");
}

#[test]
fn r_wsp_14_no_network_event_after_a_close() {
    let message = raised(|| {
        let ws = start(Fault::NotifyClosed);
        let (s, other) = (socket(&ws), socket(&ws));
        let window = ws.create_window();
        ws.async_select(s, Some(window), WM_SOCKET, FD_READ)
            .unwrap();
        ws.close(s).unwrap();
        ws.send(other, b"data").unwrap();
    });
    assert_violation(&message, "R-WSP-14", "message posted for socket");
    assert_only(&message, "R-WSP-14");
    let message = raised(|| {
        let ws = start(Fault::NotifyClosed);
        let (s, other) = (socket(&ws), socket(&ws));
        let event = ws.create_event();
        ws.event_select(s, Some(event), FD_READ).unwrap();
        ws.close(s).unwrap();
        ws.send(other, b"data").unwrap();
    });
    assert_violation(&message, "R-WSP-14", "event set for socket");
    assert_only(&message, "R-WSP-14");
}

#[test]
fn r_wsp_14_a_closed_handle_is_not_a_socket() {
    let message = raised(|| {
        let ws = start(Fault::ServeClosed);
        let s = socket(&ws);
        ws.close(s).unwrap();
        let _ = ws.bind(s, &[2, 0, 0, 80]);
    });
    assert_violation(&message, "R-WSP-14", "not WSAENOTSOCK");
    assert_only(&message, "R-WSP-14");
}

// ---------------------------------------------------------------------------------------------
// R-WSP-15

#[test]
fn r_wsp_15_the_final_cleanup_completes_nothing() {
    let message = raised(|| {
        let ws = start(Fault::CleanupCompletes);
        let s = socket(&ws);
        ws.recv_overlapped(s, 8, Via::Event).unwrap();
        let _ = ws.cleanup();
    });
    assert_violation(
        &message,
        "R-WSP-15",
        "WPUCompleteOverlappedRequest during the final",
    );
    assert_only(&message, "R-WSP-15");
    let message = raised(|| {
        let ws = start(Fault::CleanupCompletes);
        let s = socket(&ws);
        let thread = ws.new_thread();
        ws.recv_overlapped(s, 8, Via::Routine(thread)).unwrap();
        let _ = ws.cleanup();
    });
    assert_violation(&message, "R-WSP-15", "WPUQueueApc during the final");
    assert_only(&message, "R-WSP-15");
}

#[test]
fn r_wsp_15_the_final_cleanup_notifies_nothing() {
    let message = raised(|| {
        let ws = start(Fault::CleanupNotifies);
        let s = socket(&ws);
        let (window, event) = (ws.create_window(), ws.create_event());
        ws.async_select(s, Some(window), WM_SOCKET, FD_CLOSE)
            .unwrap();
        ws.event_select(s, Some(event), FD_CLOSE).unwrap();
        let _ = ws.cleanup();
    });
    assert_violation(&message, "R-WSP-15", "WPUPostMessage during the final");
    assert_violation(&message, "R-WSP-15", "WPUSetEvent during the final");
    assert_only(&message, "R-WSP-15");
}

#[test]
fn r_wsp_15_no_upcall_once_the_final_cleanup_returned() {
    let message = raised(|| {
        let ws = start(Fault::KeepUpcalls);
        let event = ws.create_event();
        ws.cleanup().unwrap();
        ws.check();
        echo().late_timer(event.raw());
        ws.check();
    });
    assert_violation(
        &message,
        "R-WSP-15",
        "WPUSetEvent after the final WSPCleanup",
    );
    assert_only(&message, "R-WSP-15");
}

// ---------------------------------------------------------------------------------------------
// R-WSP-17

/// A receive through the provider that keeps the pointers: pending, then `stale` uses them.
fn keeping(stale: impl FnOnce(&Winsock, usize, usize)) {
    let ws = Winsock::start(keeping_startup, base_protocol(CATALOG, 0)).unwrap();
    *lock(&FAULT) = Fault::None;
    let s = socket(&ws);
    let thread = ws.new_thread();
    assert!(
        ws.recv_overlapped(s, 8, Via::Routine(thread))
            .unwrap()
            .is_pending()
    );
    ws.check();
    let (array, thread_id) = *lock(&KEPT);
    stale(&ws, array, thread_id);
    ws.check();
}

#[test]
fn r_wsp_17_the_wsabuf_array_is_the_callers_for_the_call_only() {
    let message = raised(|| {
        keeping(|_, array, _| {
            // SAFETY: the simulator keeps the array's memory while the operation lives; what
            // it holds now is the scribble.
            let buffer = unsafe { *std::ptr::with_exposed_provenance::<WSABUF>(array) };
            assert_eq!(buffer.len, 8);
            // SAFETY: the scribbled buffer is the trap, as long as the original.
            let trap = unsafe { std::slice::from_raw_parts(buffer.buf.0, 8) };
            assert!(trap.iter().all(|b| *b == SCRIBBLE));
            // SAFETY: as above: the late write the provider makes through what it kept.
            unsafe { std::ptr::copy_nonoverlapping(b"late".as_ptr(), buffer.buf.0, 4) };
        })
    });
    assert_violation(&message, "R-WSP-17", "WSABUF array");
    assert_only(&message, "R-WSP-17");
}

#[test]
fn r_wsp_17_the_wsathreadid_is_the_callers_for_the_call_only() {
    let message = raised(|| {
        keeping(|_, _, thread_id| {
            let kept = std::ptr::with_exposed_provenance::<WSATHREADID>(thread_id);
            // SAFETY: the simulator keeps the structure's memory while the operation lives.
            assert_eq!(unsafe { (*kept).ThreadHandle.0.addr() }, SCRIBBLED_THREAD);
            let queue = upcalls().raw().lpWPUQueueApc.unwrap();
            let mut errno = 0;
            // SAFETY: the kept pointer, still readable; a live lpErrno.
            let code = unsafe { queue(kept, Some(record_apc), 0, &mut errno) };
            assert_eq!((code, errno), (SOCKET_ERROR, WsaError::WSAEINVAL.raw()));
        })
    });
    assert_violation(&message, "R-WSP-17", "WSATHREADID");
    assert_only(&message, "R-WSP-17");
}

// ---------------------------------------------------------------------------------------------
// R-WSP-18

#[test]
fn r_wsp_18_completions_name_a_handle_of_wpu_create_socket_handle() {
    let ws = start(Fault::ForeignHandle);
    let s = socket(&ws);
    let issued = ws.recv_overlapped(s, 8, Via::Event).unwrap();
    let message = raised(|| {
        let _ = ws.send(s, b"data");
    });
    assert_violation(&message, "R-WSP-18", "WPUCreateSocketHandle did not make");
    assert_only(&message, "R-WSP-18");
    assert_eq!(ws.completions(issued.op), []);
    assert_eq!(ws.overlapped(issued.op).unwrap().internal_high, 0);
    assert!(ws.upcalls().iter().any(|upcall| matches!(
        upcall,
        Upcall::CompleteOverlappedRequest {
            result: Err(WsaError::WSAEINVAL),
            ..
        }
    )));
}

#[test]
fn r_wsp_18_a_completion_leaves_no_operation_in_progress() {
    let message = raised(|| {
        let ws = start(Fault::InProgressError);
        let s = socket(&ws);
        ws.recv_overlapped(s, 8, Via::Event).unwrap();
        ws.send(s, b"data").unwrap();
    });
    assert_violation(&message, "R-WSP-18", "WSS_OPERATION_IN_PROGRESS");
    assert_only(&message, "R-WSP-18");
}

#[test]
fn r_wsp_18_completions_name_a_handle_still_open() {
    let message = raised(|| {
        let ws = start(Fault::CloseHandleFirst);
        let s = socket(&ws);
        ws.recv_overlapped(s, 8, Via::Event).unwrap();
        ws.close(s).unwrap();
    });
    assert_violation(&message, "R-WSP-18", "WPUCloseSocketHandle closed");
}

// ---------------------------------------------------------------------------------------------
// R-WSP-19

#[test]
fn r_wsp_19_no_wpu_create_socket_handle_for_an_ifs_entry() {
    let message = raised(|| {
        let ws = start_with(Fault::None, base_protocol(CATALOG, XP1_IFS_HANDLES));
        socket(&ws);
    });
    assert_violation(&message, "R-WSP-19", "XP1_IFS_HANDLES");
    assert_only(&message, "R-WSP-19");
}

#[test]
fn r_wsp_19_no_ifs_handles_beside_wpu_create_socket_handle() {
    let message = raised(|| {
        let ws = start(Fault::ModifyIfs);
        socket(&ws);
    });
    assert_violation(&message, "R-WSP-19", "WPUModifyIFSHandle");
    assert_only(&message, "R-WSP-19");
}
