//! ws2_32 played through the real export: `export_provider!` generates this test binary's
//! `WSPStartup`, which the tests call through a function pointer of the bindings' `LPWSPSTARTUP`
//! type, with upcall tables of their own, and then every slot of the proc table it hands out,
//! as ws2_32 would. The startup count is per process, so the tests take turns (`turn()`), each
//! starting from a process with no startup.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use winprov_bindings::windows_core::{BOOL, PCSTR, PCWSTR, PSTR, PWSTR};
use winprov_bindings::ws2spi::{
    FD_SET, HANDLE, HWND, INVALID_SOCKET, LPWSPSTARTUP, OVERLAPPED, QOS, SO_LINGER, SOCKADDR,
    SOCKET, SOCKET_ERROR, SOL_SOCKET, WSABUF, WSAEVENT, WSANETWORKEVENTS, WSAPROTOCOL_INFOW,
    WSATHREADID, WSPDATA, WSPPROC_TABLE, WSPUPCALLTABLE,
};
use winprov_wsp::WsaError;
use winprov_wsp::abi::{
    Dispatch, Host, OverlappedRecv, ProtocolInfo, RecvIo, Socket, Transfer, Version, refuse,
};

// ---------------------------------------------------------------------------------------------
// The provider under test.

/// A socket the provider knows (its other slots then answer their documented error).
const KNOWN: usize = 0x1000;
/// A socket it does not know.
const UNKNOWN: usize = 0xdead;
/// A socket whose overlapped receives stay pending, their buffers kept by the provider.
const PENDING: usize = 0x2000;
/// The `listen` backlog that makes the provider panic.
const PANIC_BACKLOG: i32 = 666;
/// The address family whose `WSPSocket` makes a handle through the upcall table.
const UPCALL_FAMILY: i32 = 0x7e57;

#[derive(Default)]
struct Probe {
    first_startups: AtomicU32,
    final_cleanups: AtomicU32,
    fail_first_startup: AtomicBool,
    panic_first_startup: AtomicBool,
    /// The catalog entry id `first_startup` saw.
    catalog_entry: AtomicU32,
    pending: Mutex<Option<OverlappedRecv>>,
}

impl Dispatch for Probe {
    const LOWEST_VERSION: Version = Version::new(2, 0);
    const HIGHEST_VERSION: Version = Version::new(2, 2);
    const DESCRIPTION: &'static str = "winprov ABI probe";

    fn first_startup(&self, _: &Host<'_>, protocol: &ProtocolInfo) -> Result<(), WsaError> {
        if self.panic_first_startup.swap(false, Ordering::SeqCst) {
            panic!("first_startup panicked");
        }
        if self.fail_first_startup.swap(false, Ordering::SeqCst) {
            return Err(WsaError::WSAEPROVIDERFAILEDINIT);
        }
        self.catalog_entry
            .store(protocol.catalog_entry_id(), Ordering::SeqCst);
        self.first_startups.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn final_cleanup(&self, _: &Host<'_>) {
        self.final_cleanups.fetch_add(1, Ordering::SeqCst);
    }

    fn knows_socket(&self, socket: Socket) -> bool {
        [KNOWN, PENDING].contains(&socket.raw())
    }

    fn listen(&self, _: &Host<'_>, socket: Socket, backlog: i32) -> Result<(), WsaError> {
        if backlog == PANIC_BACKLOG {
            panic!("listen panicked");
        }
        Err(refuse(self, socket, WsaError::WSAEOPNOTSUPP))
    }

    fn recv(
        &self,
        _: &Host<'_>,
        socket: Socket,
        io: RecvIo<'_>,
        _: u32,
    ) -> Result<Transfer, WsaError> {
        match io {
            RecvIo::Overlapped(op) if socket.raw() == PENDING => {
                *self.pending.lock().unwrap() = Some(op);
                Ok(Transfer::Pending)
            }
            _ => Err(refuse(self, socket, WsaError::WSAENETDOWN)),
        }
    }

    fn socket(
        &self,
        host: &Host<'_>,
        address_family: i32,
        _: i32,
        _: i32,
        _: Option<&ProtocolInfo>,
        _: u32,
        _: u32,
    ) -> Result<Socket, WsaError> {
        if address_family != UPCALL_FAMILY {
            return Err(WsaError::WSAESOCKTNOSUPPORT);
        }
        let catalog = self.catalog_entry.load(Ordering::SeqCst);
        host.upcalls()?.create_socket_handle(catalog, 7)
    }
}

winprov_wsp::export_provider!(Probe, Probe::default);

fn probe() -> &'static Probe {
    wsp_process().dispatch().expect("made by the first startup")
}

// ---------------------------------------------------------------------------------------------
// ws2_32's side.

/// The tests share the process's startup count: one at a time, each from a process that is
/// not started.
fn turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    let guard = TURN.lock().unwrap_or_else(|p| p.into_inner());
    if wsp_process().startups() > 0 {
        let table = started(upcalls_a()).1;
        while wsp_process().startups() > 0 {
            table.cleanup();
        }
    }
    guard
}

/// Calls of the two upcall tables' `WPUCreateSocketHandle`.
static CREATED_BY_A: AtomicUsize = AtomicUsize::new(0);
static CREATED_BY_B: AtomicUsize = AtomicUsize::new(0);

unsafe extern "system" fn create_a(catalog: u32, context: usize, _: *mut i32) -> SOCKET {
    CREATED_BY_A.fetch_add(1, Ordering::SeqCst);
    SOCKET(0xA_0000 + catalog as usize * 0x100 + context)
}

unsafe extern "system" fn create_b(catalog: u32, context: usize, _: *mut i32) -> SOCKET {
    CREATED_BY_B.fetch_add(1, Ordering::SeqCst);
    SOCKET(0xB_0000 + catalog as usize * 0x100 + context)
}

fn upcalls_a() -> WSPUPCALLTABLE {
    WSPUPCALLTABLE {
        lpWPUCreateSocketHandle: Some(create_a),
        ..WSPUPCALLTABLE::default()
    }
}

fn upcalls_b() -> WSPUPCALLTABLE {
    WSPUPCALLTABLE {
        lpWPUCreateSocketHandle: Some(create_b),
        ..WSPUPCALLTABLE::default()
    }
}

const CATALOG_ENTRY: u32 = 0x42;

fn protocol_info() -> WSAPROTOCOL_INFOW {
    let mut info = WSAPROTOCOL_INFOW {
        dwCatalogEntryId: CATALOG_ENTRY,
        ..WSAPROTOCOL_INFOW::default()
    };
    info.ProtocolChain.ChainLen = 1;
    info
}

/// What ws2_32 gets back from one `WSPStartup`.
struct Startup {
    code: i32,
    data: WSPDATA,
    table: Table,
}

/// `WSPStartup` through a pointer of the bindings' type, as ws2_32 calls it.
fn startup_with(version: u16, upcalls: WSPUPCALLTABLE, data_out: bool, table_out: bool) -> Startup {
    // The pointer ws2_32 gets from GetProcAddress: opaque to the optimizer.
    let entry: LPWSPSTARTUP = std::hint::black_box(Some(WSPStartup));
    let mut data = WSPDATA::default();
    let mut table = WSPPROC_TABLE::default();
    let info = protocol_info();
    let data_ptr: *mut WSPDATA = if data_out {
        &mut data
    } else {
        std::ptr::null_mut()
    };
    let table_ptr: *mut WSPPROC_TABLE = if table_out {
        &mut table
    } else {
        std::ptr::null_mut()
    };
    // SAFETY: the export's contract: live locals (or NULL, which it refuses), an upcall table
    // of functions valid for the whole test binary.
    let code = unsafe { entry.unwrap()(version, data_ptr, &info, upcalls, table_ptr) };
    Startup {
        code,
        data,
        table: Table(table),
    }
}

fn startup(version: u16, upcalls: WSPUPCALLTABLE) -> Startup {
    startup_with(version, upcalls, true, true)
}

/// A successful 2.2 startup.
fn started(upcalls: WSPUPCALLTABLE) -> (WSPDATA, Table) {
    let s = startup(0x0202, upcalls);
    assert_eq!(s.code, 0, "WSPStartup failed");
    (s.data, s.table)
}

/// A slot's outcome: whether it returned its failure value, and `*lpErrno` (when it was
/// usable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    Failed(Option<i32>),
}

fn failed(code: WsaError) -> Outcome {
    Outcome::Failed(Some(code.raw()))
}

/// Where `lpErrno` points.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Errno {
    Valid,
    Null,
    Misaligned,
}

/// A `lpErrno` for one call: the pointer, and then the value read back (when usable).
struct ErrnoSlot {
    words: [u32; 2],
    kind: Errno,
}

impl ErrnoSlot {
    const UNTOUCHED: u32 = 0x5a5a_5a5a;

    fn new(kind: Errno) -> Self {
        Self {
            words: [Self::UNTOUCHED; 2],
            kind,
        }
    }

    fn ptr(&mut self) -> *mut i32 {
        match self.kind {
            Errno::Valid => self.words.as_mut_ptr().cast(),
            Errno::Null => std::ptr::null_mut(),
            Errno::Misaligned => self.words.as_mut_ptr().cast::<u8>().wrapping_add(1).cast(),
        }
    }

    fn outcome(&self, failed: bool) -> Outcome {
        if !failed {
            return Outcome::Ok;
        }
        match self.kind {
            Errno::Valid if self.words[0] != Self::UNTOUCHED => {
                Outcome::Failed(Some(self.words[0] as i32))
            }
            Errno::Valid => Outcome::Failed(None),
            _ => {
                assert_eq!(
                    self.words,
                    [Self::UNTOUCHED; 2],
                    "an unusable lpErrno was written"
                );
                Outcome::Failed(None)
            }
        }
    }
}

/// The proc table ws2_32 got.
struct Table(WSPPROC_TABLE);

/// Arguments that are valid for every slot (a sockaddr, buffers, out-parameters).
struct Args {
    sockaddr: [u64; 2],
    text: [u16; 64],
    text_len: u32,
    len: i32,
    bytes: [u8; 64],
    buf: WSABUF,
    count: u32,
    flags: u32,
    overlapped: OVERLAPPED,
    info: WSAPROTOCOL_INFOW,
    events: WSANETWORKEVENTS,
    qos: QOS,
    fds: FD_SET,
    linger: [u8; 4],
    address: Vec<u16>,
}

impl Args {
    fn new(socket: usize) -> Box<Self> {
        let mut args = Box::new(Self {
            sockaddr: [2, 0],
            text: [0; 64],
            text_len: 64,
            len: 16,
            bytes: [0; 64],
            buf: WSABUF::default(),
            count: 0,
            flags: 0,
            overlapped: OVERLAPPED::default(),
            info: WSAPROTOCOL_INFOW::default(),
            events: WSANETWORKEVENTS::default(),
            qos: QOS::default(),
            fds: FD_SET::default(),
            linger: [1, 0, 5, 0],
            address: winprov_core::ffi::to_wide_nul("1.2.3.4"),
        });
        args.buf = WSABUF {
            len: 64,
            buf: PSTR(args.bytes.as_mut_ptr()),
        };
        args.fds.fd_count = 1;
        args.fds.fd_array[0] = SOCKET(socket);
        args
    }

    fn sockaddr(&self) -> *const SOCKADDR {
        self.sockaddr.as_ptr().cast()
    }
}

impl Table {
    /// Every slot but `WSPCleanup`, each called once with valid arguments on `socket`.
    fn call_all(&self, socket: usize, errno: Errno) -> Vec<(&'static str, Outcome)> {
        let t = &self.0;
        let s = SOCKET(socket);
        let mut out = Vec::new();
        macro_rules! call {
            ($name:literal, $failure:expr, |$e:ident, $a:ident| $call:expr) => {{
                let mut slot = ErrnoSlot::new(errno);
                let $e = slot.ptr();
                let mut args = Args::new(socket);
                #[allow(unused_variables)]
                let $a = &mut *args;
                // SAFETY: ws2_32's side of the slot's contract: every pointer is a live,
                // aligned part of `args` (or NULL where the slot allows it), `lpErrno` is
                // valid, NULL or misaligned (what is tested).
                let ret = unsafe { $call };
                out.push(($name, slot.outcome(ret == $failure)));
            }};
        }
        call!("WSPAccept", INVALID_SOCKET, |e, a| t.lpWSPAccept.unwrap()(
            s,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            None,
            0,
            e
        ));
        call!("WSPAddressToString", SOCKET_ERROR, |e, a| t
            .lpWSPAddressToString
            .unwrap()(
            a.sockaddr(),
            16,
            std::ptr::null(),
            PWSTR(a.text.as_mut_ptr()),
            &mut a.text_len,
            e
        ));
        call!("WSPAsyncSelect", SOCKET_ERROR, |e, a| t
            .lpWSPAsyncSelect
            .unwrap()(
            s,
            HWND(std::ptr::null_mut()),
            0x400,
            0x20,
            e
        ));
        call!("WSPBind", SOCKET_ERROR, |e, a| t.lpWSPBind.unwrap()(
            s,
            a.sockaddr(),
            16,
            e
        ));
        call!("WSPCancelBlockingCall", SOCKET_ERROR, |e, a| t
            .lpWSPCancelBlockingCall
            .unwrap()(
            e
        ));
        call!("WSPCloseSocket", SOCKET_ERROR, |e, a| t
            .lpWSPCloseSocket
            .unwrap()(
            s, e
        ));
        call!("WSPConnect", SOCKET_ERROR, |e, a| t.lpWSPConnect.unwrap()(
            s,
            a.sockaddr(),
            16,
            std::ptr::null(),
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
            e
        ));
        call!("WSPDuplicateSocket", SOCKET_ERROR, |e, a| t
            .lpWSPDuplicateSocket
            .unwrap()(
            s,
            1234,
            &mut a.info,
            e
        ));
        call!("WSPEnumNetworkEvents", SOCKET_ERROR, |e, a| t
            .lpWSPEnumNetworkEvents
            .unwrap()(
            s,
            HANDLE(std::ptr::null_mut()),
            &mut a.events,
            e
        ));
        call!("WSPEventSelect", SOCKET_ERROR, |e, a| t
            .lpWSPEventSelect
            .unwrap()(
            s,
            WSAEVENT(0),
            0x20,
            e
        ));
        call!("WSPGetOverlappedResult", BOOL(0), |e, a| t
            .lpWSPGetOverlappedResult
            .unwrap()(
            s,
            &a.overlapped,
            &mut a.count,
            BOOL(0),
            &mut a.flags,
            e
        ));
        call!("WSPGetPeerName", SOCKET_ERROR, |e, a| t
            .lpWSPGetPeerName
            .unwrap()(
            s,
            a.sockaddr.as_mut_ptr().cast(),
            &mut a.len,
            e
        ));
        call!("WSPGetSockName", SOCKET_ERROR, |e, a| t
            .lpWSPGetSockName
            .unwrap()(
            s,
            a.sockaddr.as_mut_ptr().cast(),
            &mut a.len,
            e
        ));
        call!("WSPGetSockOpt", SOCKET_ERROR, |e, a| t
            .lpWSPGetSockOpt
            .unwrap()(
            s,
            SOL_SOCKET,
            SO_LINGER,
            PSTR(a.bytes.as_mut_ptr()),
            &mut a.len,
            e
        ));
        call!("WSPGetQOSByName", BOOL(0), |e, a| t
            .lpWSPGetQOSByName
            .unwrap()(
            s,
            std::ptr::null(),
            &mut a.qos,
            e
        ));
        call!("WSPIoctl", SOCKET_ERROR, |e, a| t.lpWSPIoctl.unwrap()(
            s,
            0x4004_667f,
            std::ptr::null(),
            0,
            std::ptr::null_mut(),
            0,
            &mut a.count,
            std::ptr::null_mut(),
            None,
            std::ptr::null(),
            e
        ));
        call!("WSPJoinLeaf", INVALID_SOCKET, |e, a| t
            .lpWSPJoinLeaf
            .unwrap()(
            s,
            a.sockaddr(),
            16,
            std::ptr::null(),
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
            0,
            e
        ));
        call!("WSPListen", SOCKET_ERROR, |e, a| t.lpWSPListen.unwrap()(
            s, 5, e
        ));
        call!("WSPRecv", SOCKET_ERROR, |e, a| t.lpWSPRecv.unwrap()(
            s,
            &a.buf,
            1,
            &mut a.count,
            &mut a.flags,
            std::ptr::null_mut(),
            None,
            std::ptr::null(),
            e
        ));
        call!("WSPRecvDisconnect", SOCKET_ERROR, |e, a| t
            .lpWSPRecvDisconnect
            .unwrap()(
            s,
            std::ptr::null(),
            e
        ));
        call!(
            "WSPRecvFrom",
            SOCKET_ERROR,
            |e, a| t.lpWSPRecvFrom.unwrap()(
                s,
                &a.buf,
                1,
                &mut a.count,
                &mut a.flags,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                None,
                std::ptr::null(),
                e
            )
        );
        call!("WSPSelect", SOCKET_ERROR, |e, a| t.lpWSPSelect.unwrap()(
            0,
            &mut a.fds,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null(),
            e
        ));
        call!("WSPSend", SOCKET_ERROR, |e, a| t.lpWSPSend.unwrap()(
            s,
            &a.buf,
            1,
            &mut a.count,
            0,
            std::ptr::null_mut(),
            None,
            std::ptr::null(),
            e
        ));
        call!("WSPSendDisconnect", SOCKET_ERROR, |e, a| t
            .lpWSPSendDisconnect
            .unwrap()(
            s,
            std::ptr::null(),
            e
        ));
        call!("WSPSendTo", SOCKET_ERROR, |e, a| t.lpWSPSendTo.unwrap()(
            s,
            &a.buf,
            1,
            &mut a.count,
            0,
            a.sockaddr(),
            16,
            std::ptr::null_mut(),
            None,
            std::ptr::null(),
            e
        ));
        call!("WSPSetSockOpt", SOCKET_ERROR, |e, a| t
            .lpWSPSetSockOpt
            .unwrap()(
            s,
            SOL_SOCKET,
            SO_LINGER,
            PCSTR(a.linger.as_ptr()),
            4,
            e
        ));
        call!(
            "WSPShutdown",
            SOCKET_ERROR,
            |e, a| t.lpWSPShutdown.unwrap()(s, 1, e)
        );
        call!("WSPSocket", INVALID_SOCKET, |e, a| t.lpWSPSocket.unwrap()(
            2,
            1,
            6,
            std::ptr::null(),
            0,
            0,
            e
        ));
        call!("WSPStringToAddress", SOCKET_ERROR, |e, a| t
            .lpWSPStringToAddress
            .unwrap()(
            PCWSTR(a.address.as_ptr()),
            2,
            std::ptr::null(),
            a.sockaddr.as_mut_ptr().cast(),
            &mut a.len,
            e
        ));
        out
    }

    /// `WSPCleanup`: its return value and `*lpErrno`.
    fn cleanup(&self) -> (i32, i32) {
        let mut errno = ErrnoSlot::UNTOUCHED as i32;
        // SAFETY: a live local for lpErrno.
        let code = unsafe { self.0.lpWSPCleanup.unwrap()(&mut errno) };
        (code, errno)
    }

    /// `WSPSocket` for the family whose handle comes from the upcall table.
    fn upcall_socket(&self) -> usize {
        let mut errno = 0;
        // SAFETY: a live local for lpErrno; no protocol info.
        let s = unsafe {
            self.0.lpWSPSocket.unwrap()(UPCALL_FAMILY, 1, 6, std::ptr::null(), 0, 0, &mut errno)
        };
        assert_ne!(s, INVALID_SOCKET, "WSPSocket failed with {errno}");
        s.0
    }

    /// `WSPListen` on the known socket: its outcome.
    fn listen(&self, backlog: i32) -> Outcome {
        let mut slot = ErrnoSlot::new(Errno::Valid);
        // SAFETY: a live lpErrno.
        let ret = unsafe { self.0.lpWSPListen.unwrap()(SOCKET(KNOWN), backlog, slot.ptr()) };
        slot.outcome(ret == SOCKET_ERROR)
    }
}

/// Every slot's documented answer when the provider does not implement it, for a socket it
/// knows (the interface's own statement, independent of the code's defaults).
fn documented(slot: &str) -> WsaError {
    match slot {
        "WSPAccept" | "WSPIoctl" | "WSPListen" => WsaError::WSAEOPNOTSUPP,
        "WSPAddressToString"
        | "WSPCancelBlockingCall"
        | "WSPGetSockName"
        | "WSPGetQOSByName"
        | "WSPStringToAddress" => WsaError::WSAEINVAL,
        "WSPGetOverlappedResult" => WsaError::WSA_INVALID_PARAMETER,
        "WSPGetPeerName" => WsaError::WSAENOTCONN,
        "WSPGetSockOpt" | "WSPSetSockOpt" | "WSPSendDisconnect" | "WSPRecvDisconnect" => {
            WsaError::WSAENOPROTOOPT
        }
        "WSPSocket" => WsaError::WSAESOCKTNOSUPPORT,
        _ => WsaError::WSAENETDOWN,
    }
}

/// The slots that take no socket.
const SOCKETLESS: [&str; 4] = [
    "WSPAddressToString",
    "WSPCancelBlockingCall",
    "WSPSocket",
    "WSPStringToAddress",
];

// ---------------------------------------------------------------------------------------------
// The rules.

/// R-WSP-1: the code is returned; below the lowest version (2.0 here) WSAVERNOTSUPPORTED with
/// nothing written or counted; else wVersion = min(requested, 2.2), wHighVersion = 2.2.
#[test]
fn r_wsp_1_startup_negotiates_and_returns_the_code() {
    let _turn = turn();
    for refused in [0x0001u16, 0x0101, 0xff01] {
        let s = startup(refused, upcalls_a());
        assert_eq!(s.code, WsaError::WSAVERNOTSUPPORTED.raw(), "{refused:#06x}");
        assert_eq!(s.data, WSPDATA::default(), "WSPDATA written on a refusal");
        assert!(
            s.table.0.lpWSPCleanup.is_none(),
            "table written on a refusal"
        );
        assert_eq!(wsp_process().startups(), 0, "a refusal counted");
    }
    // (requested, wVersion): byte order is (minor << 8 | major); 2.10 is above 2.2.
    for (requested, expected) in [
        (0x0002u16, 0x0002u16),
        (0x0102, 0x0102),
        (0x0202, 0x0202),
        (0x0a02, 0x0202),
        (0x0003, 0x0202),
        (0xffff, 0x0202),
    ] {
        let s = startup(requested, upcalls_a());
        assert_eq!(s.code, 0, "{requested:#06x}");
        assert_eq!(s.data.wVersion, expected, "wVersion for {requested:#06x}");
        assert_eq!(s.data.wHighVersion, 0x0202);
        let description = String::from_utf16_lossy(
            &s.data.szDescription[..s.data.szDescription.iter().position(|&u| u == 0).unwrap()],
        );
        assert_eq!(description, "winprov ABI probe");
        assert_eq!(s.table.cleanup(), (0, ErrnoSlot::UNTOUCHED as i32));
    }
    // Unusable out-pointers: WSAEFAULT, returned, nothing counted.
    for (data, table) in [(false, true), (true, false)] {
        let s = startup_with(0x0202, upcalls_a(), data, table);
        assert_eq!(s.code, WsaError::WSAEFAULT.raw());
        assert_eq!(wsp_process().startups(), 0);
    }
}

/// R-WSP-2: k startups need k cleanups; only the k-th runs the final cleanup; a cleanup without
/// a startup (or after the last) is WSANOTINITIALISED; a failed first startup counts nothing.
#[test]
fn r_wsp_2_startup_cleanup_pairing() {
    let _turn = turn();
    let (_, table) = started(upcalls_a());
    let (firsts, finals) = (
        probe().first_startups.load(Ordering::SeqCst),
        probe().final_cleanups.load(Ordering::SeqCst),
    );
    let more: Vec<Table> = (0..2).map(|_| started(upcalls_a()).1).collect();
    assert_eq!(wsp_process().startups(), 3);
    assert_eq!(
        probe().first_startups.load(Ordering::SeqCst),
        firsts,
        "first_startup again"
    );
    for (i, t) in more.iter().enumerate() {
        assert_eq!(t.cleanup(), (0, ErrnoSlot::UNTOUCHED as i32));
        assert_eq!(wsp_process().startups(), 2 - i as u32);
        assert_eq!(
            probe().final_cleanups.load(Ordering::SeqCst),
            finals,
            "final cleanup before the last WSPCleanup"
        );
        assert_eq!(
            table.listen(5),
            failed(WsaError::WSAEOPNOTSUPP),
            "the slots still serve"
        );
    }
    assert_eq!(table.cleanup(), (0, ErrnoSlot::UNTOUCHED as i32));
    assert_eq!(probe().final_cleanups.load(Ordering::SeqCst), finals + 1);
    assert_eq!(
        table.cleanup(),
        (SOCKET_ERROR, WsaError::WSANOTINITIALISED.raw()),
        "WSPCleanup after the last"
    );
    assert_eq!(probe().final_cleanups.load(Ordering::SeqCst), finals + 1);
    assert_eq!(table.listen(5), failed(WsaError::WSANOTINITIALISED));
    // A first startup that fails: its code returned, nothing counted, nothing to clean.
    probe().fail_first_startup.store(true, Ordering::SeqCst);
    let s = startup(0x0202, upcalls_a());
    assert_eq!(s.code, WsaError::WSAEPROVIDERFAILEDINIT.raw());
    assert_eq!(wsp_process().startups(), 0);
    assert_eq!(
        table.cleanup(),
        (SOCKET_ERROR, WsaError::WSANOTINITIALISED.raw())
    );
    // And the next one starts again from the first.
    let (_, again) = started(upcalls_a());
    assert_eq!(probe().first_startups.load(Ordering::SeqCst), firsts + 1);
    assert_eq!(again.cleanup().0, 0);
}

/// R-WSP-3: the upcall table used is the most recent startup's, also after a cleanup that
/// leaves the process started, and the one of a later startup replaces it again.
#[test]
fn r_wsp_3_latest_upcall_table() {
    let _turn = turn();
    let (_, a) = started(upcalls_a());
    let base = 0x100 * CATALOG_ENTRY as usize + 7;
    assert_eq!(a.upcall_socket(), 0xA_0000 + base);
    let (_, b) = started(upcalls_b());
    let before = CREATED_BY_A.load(Ordering::SeqCst);
    assert_eq!(a.upcall_socket(), 0xB_0000 + base, "the first table kept");
    assert_eq!(b.cleanup().0, 0);
    assert_eq!(wsp_process().startups(), 1);
    assert_eq!(
        a.upcall_socket(),
        0xB_0000 + base,
        "the table went back on a cleanup"
    );
    assert_eq!(
        CREATED_BY_A.load(Ordering::SeqCst),
        before,
        "table A called after B's startup"
    );
    let (_, a2) = started(upcalls_a());
    assert_eq!(b.upcall_socket(), 0xA_0000 + base);
    assert_eq!(a2.cleanup().0, 0);
    assert_eq!(a.cleanup().0, 0);
    assert!(CREATED_BY_B.load(Ordering::SeqCst) >= 2);
}

/// R-WSP-17: an overlapped WSPRecv that stays pending keeps a copy of the WSABUF array and of
/// the WSATHREADID: the caller reuses both as soon as the call returns, and the data still
/// lands in the buffers the array described, and the thread id is the one passed.
#[test]
fn r_wsp_17_buffers_and_thread_id_copied() {
    let _turn = turn();
    let (_, table) = started(upcalls_a());
    unsafe extern "system" fn routine(_: u32, _: u32, _: *mut OVERLAPPED, _: u32) {}
    let mut first = [0u8; 5];
    let mut second = [0u8; 16];
    let mut overlapped = OVERLAPPED::default();
    let (mut count, mut flags, mut errno) = (0u32, 0u32, 0i32);
    let code = {
        // The array and the thread id live in this block only, like a caller's stack frame.
        let mut array = [
            WSABUF {
                len: 5,
                buf: PSTR(first.as_mut_ptr()),
            },
            WSABUF {
                len: 16,
                buf: PSTR(second.as_mut_ptr()),
            },
        ];
        let mut thread = WSATHREADID {
            ThreadHandle: HANDLE(std::ptr::without_provenance_mut(0x7777)),
            Reserved: 0x8888,
        };
        // SAFETY: the buffers and the WSAOVERLAPPED outlive the operation (the test keeps them
        // until the provider is done); the array and the thread id are valid for the call.
        let code = unsafe {
            table.0.lpWSPRecv.unwrap()(
                SOCKET(PENDING),
                array.as_ptr(),
                2,
                &mut count,
                &mut flags,
                &mut overlapped,
                Some(routine),
                &thread,
                &mut errno,
            )
        };
        // The caller reuses both at once.
        array = [WSABUF::default(); 2];
        thread = WSATHREADID::default();
        std::hint::black_box((&array, &thread));
        code
    };
    assert_eq!(
        (code, errno),
        (SOCKET_ERROR, WsaError::WSA_IO_PENDING.raw())
    );
    let mut op = probe()
        .pending
        .lock()
        .unwrap()
        .take()
        .expect("kept by the provider");
    assert_eq!(op.capacity(), 21);
    assert_eq!(op.fill(b"hello, overlapped world!"), 21);
    let (request, filled) = op.finish();
    assert_eq!(filled, 21);
    assert_eq!(&first, b"hello");
    assert_eq!(&second, b", overlapped wor");
    assert_eq!(request.address(), std::ptr::addr_of!(overlapped).addr());
    let thread = request.thread().expect("copied");
    assert_eq!((thread.handle, thread.reserved), (0x7777, 0x8888));
    assert!(request.routine().is_some());
    assert_eq!(table.cleanup().0, 0);
}

// ---------------------------------------------------------------------------------------------
// Every slot, and bad input.

#[test]
fn every_slot_is_filled_and_answers_its_documented_error() {
    let _turn = turn();
    let (_, table) = started(upcalls_a());
    let t = &table.0;
    let filled = [
        t.lpWSPAccept.is_some(),
        t.lpWSPAddressToString.is_some(),
        t.lpWSPAsyncSelect.is_some(),
        t.lpWSPBind.is_some(),
        t.lpWSPCancelBlockingCall.is_some(),
        t.lpWSPCleanup.is_some(),
        t.lpWSPCloseSocket.is_some(),
        t.lpWSPConnect.is_some(),
        t.lpWSPDuplicateSocket.is_some(),
        t.lpWSPEnumNetworkEvents.is_some(),
        t.lpWSPEventSelect.is_some(),
        t.lpWSPGetOverlappedResult.is_some(),
        t.lpWSPGetPeerName.is_some(),
        t.lpWSPGetSockName.is_some(),
        t.lpWSPGetSockOpt.is_some(),
        t.lpWSPGetQOSByName.is_some(),
        t.lpWSPIoctl.is_some(),
        t.lpWSPJoinLeaf.is_some(),
        t.lpWSPListen.is_some(),
        t.lpWSPRecv.is_some(),
        t.lpWSPRecvDisconnect.is_some(),
        t.lpWSPRecvFrom.is_some(),
        t.lpWSPSelect.is_some(),
        t.lpWSPSend.is_some(),
        t.lpWSPSendDisconnect.is_some(),
        t.lpWSPSendTo.is_some(),
        t.lpWSPSetSockOpt.is_some(),
        t.lpWSPShutdown.is_some(),
        t.lpWSPSocket.is_some(),
        t.lpWSPStringToAddress.is_some(),
    ];
    assert_eq!(filled.len(), winprov_wsp::abi::table::SLOT_NAMES.len());
    assert!(filled.iter().all(|&f| f), "a NULL slot: {filled:?}");
    assert_eq!(size_of::<WSPPROC_TABLE>(), 30 * size_of::<usize>());

    let known = table.call_all(KNOWN, Errno::Valid);
    assert_eq!(known.len(), 29, "every slot but WSPCleanup");
    for (slot, outcome) in &known {
        assert_eq!(
            *outcome,
            failed(documented(slot)),
            "{slot} on a known socket"
        );
    }
    for (slot, outcome) in table.call_all(UNKNOWN, Errno::Valid) {
        let expected = if SOCKETLESS.contains(&slot) {
            documented(slot)
        } else {
            WsaError::WSAENOTSOCK
        };
        assert_eq!(outcome, failed(expected), "{slot} on an unknown socket");
    }
    assert_eq!(table.cleanup().0, 0);
    // Not started: every slot answers WSANOTINITIALISED.
    for (slot, outcome) in table.call_all(KNOWN, Errno::Valid) {
        assert_eq!(outcome, failed(WsaError::WSANOTINITIALISED), "{slot}");
    }
}

#[test]
fn a_null_or_misaligned_lperrno_is_never_written_and_the_call_fails() {
    let _turn = turn();
    let (_, table) = started(upcalls_a());
    for errno in [Errno::Null, Errno::Misaligned] {
        for (slot, outcome) in table.call_all(KNOWN, errno) {
            assert_eq!(
                outcome,
                Outcome::Failed(None),
                "{slot} with {errno:?} lpErrno"
            );
        }
        let mut words = [0x5a5a_5a5au32; 2];
        let ptr = match errno {
            Errno::Null => std::ptr::null_mut(),
            _ => words.as_mut_ptr().cast::<u8>().wrapping_add(1).cast(),
        };
        // SAFETY: NULL / misaligned lpErrno is what is tested; nothing is written.
        let code = unsafe { table.0.lpWSPCleanup.unwrap()(ptr) };
        assert_eq!(code, SOCKET_ERROR);
        assert_eq!(words, [0x5a5a_5a5a; 2]);
        assert_eq!(wsp_process().startups(), 1, "a refused WSPCleanup counted");
    }
    assert_eq!(table.cleanup().0, 0);
}

/// One call of `WSPRecv` / `WSPSend` / `WSPShutdown` / `WSPSetSockOpt` with the given raw
/// arguments: its outcome.
fn errno_of(call: impl FnOnce(*mut i32) -> bool) -> Outcome {
    let mut slot = ErrnoSlot::new(Errno::Valid);
    let failed = call(slot.ptr());
    slot.outcome(failed)
}

#[test]
fn bad_buffers_counts_flags_and_how_get_their_documented_codes() {
    let _turn = turn();
    let (_, table) = started(upcalls_a());
    let t = &table.0;
    let mut bytes = [0u8; 8];
    let good = [WSABUF {
        len: 8,
        buf: PSTR(bytes.as_mut_ptr()),
    }; 2];
    let null_data = [WSABUF {
        len: 8,
        buf: PSTR(std::ptr::null_mut()),
    }];
    let wrapping = [WSABUF {
        len: 8,
        buf: PSTR(std::ptr::without_provenance_mut(usize::MAX - 3)),
    }];
    let words = [0u64; 8];
    let misaligned = words.as_ptr().cast::<u8>().wrapping_add(1).cast::<WSABUF>();
    let (mut count, mut flags) = (0u32, 0u32);
    let recv = |buffers: *const WSABUF, n: u32, flags: *mut u32, count: *mut u32| {
        errno_of(|e| {
            // SAFETY: every non-null, aligned pointer is a live local valid for what it states
            // (the bad ones are refused before use, which is what is tested).
            let r = unsafe {
                t.lpWSPRecv.unwrap()(
                    SOCKET(KNOWN),
                    buffers,
                    n,
                    count,
                    flags,
                    std::ptr::null_mut(),
                    None,
                    std::ptr::null(),
                    e,
                )
            };
            r == SOCKET_ERROR
        })
    };
    let efault = failed(WsaError::WSAEFAULT);
    assert_eq!(
        recv(std::ptr::null(), 1, &mut flags, &mut count),
        efault,
        "NULL array"
    );
    assert_eq!(
        recv(misaligned, 1, &mut flags, &mut count),
        efault,
        "misaligned array"
    );
    assert_eq!(
        recv(null_data.as_ptr(), 1, &mut flags, &mut count),
        efault,
        "NULL buffer"
    );
    assert_eq!(
        recv(wrapping.as_ptr(), 1, &mut flags, &mut count),
        efault,
        "wrapping buffer"
    );
    assert_eq!(
        recv(good.as_ptr(), u32::MAX, &mut flags, &mut count),
        failed(WsaError::WSAEINVAL),
        "a count past the limit"
    );
    assert_eq!(
        recv(good.as_ptr(), 2, std::ptr::null_mut(), &mut count),
        efault,
        "NULL lpFlags"
    );
    assert_eq!(
        recv(good.as_ptr(), 2, &mut flags, std::ptr::null_mut()),
        efault,
        "NULL count"
    );
    // Zero-length buffers and an empty array are fine: the provider answers.
    let zero = [WSABUF {
        len: 0,
        buf: PSTR(std::ptr::null_mut()),
    }];
    let netdown = failed(WsaError::WSAENETDOWN);
    assert_eq!(recv(zero.as_ptr(), 1, &mut flags, &mut count), netdown);
    assert_eq!(recv(std::ptr::null(), 0, &mut flags, &mut count), netdown);

    // Overlapped: a misaligned WSAOVERLAPPED, a routine without a thread id.
    let mut overlapped = [OVERLAPPED::default(); 2];
    let odd = overlapped
        .as_mut_ptr()
        .cast::<u8>()
        .wrapping_add(4)
        .cast::<OVERLAPPED>();
    unsafe extern "system" fn routine(_: u32, _: u32, _: *mut OVERLAPPED, _: u32) {}
    for (ov, r) in [(odd, None), (overlapped.as_mut_ptr(), Some(routine as _))] {
        let outcome = errno_of(|e| {
            // SAFETY: live locals; the bad pointers are refused before use.
            let r = unsafe {
                t.lpWSPSend.unwrap()(
                    SOCKET(KNOWN),
                    good.as_ptr(),
                    1,
                    &mut count,
                    0,
                    ov,
                    r,
                    std::ptr::null(),
                    e,
                )
            };
            r == SOCKET_ERROR
        });
        assert_eq!(outcome, efault);
    }

    // `how` out of range is WSAEINVAL even on a socket the provider knows; an unknown socket
    // with a valid `how` is WSAENOTSOCK.
    for how in [-1, 3, i32::MIN, i32::MAX] {
        let outcome = errno_of(|e| {
            // SAFETY: a live lpErrno.
            unsafe { t.lpWSPShutdown.unwrap()(SOCKET(KNOWN), how, e) == SOCKET_ERROR }
        });
        assert_eq!(outcome, failed(WsaError::WSAEINVAL), "how = {how}");
    }
    let outcome = errno_of(|e| {
        // SAFETY: a live lpErrno.
        unsafe { t.lpWSPShutdown.unwrap()(SOCKET(UNKNOWN), 2, e) == SOCKET_ERROR }
    });
    assert_eq!(outcome, failed(WsaError::WSAENOTSOCK));

    // SO_LINGER shorter than a LINGER, a negative length, NULL with a length: WSAEFAULT.
    let linger = [1u8, 0, 5, 0];
    for (ptr, len) in [
        (linger.as_ptr(), 2),
        (linger.as_ptr(), -1),
        (std::ptr::null(), 4),
    ] {
        let outcome = errno_of(|e| {
            // SAFETY: `linger` is readable for the lengths given; the rest is refused.
            unsafe {
                t.lpWSPSetSockOpt.unwrap()(SOCKET(KNOWN), SOL_SOCKET, SO_LINGER, PCSTR(ptr), len, e)
                    == SOCKET_ERROR
            }
        });
        assert_eq!(outcome, efault, "SO_LINGER with {len} bytes");
    }
    assert_eq!(table.cleanup().0, 0);
}

/// A panic inside a slot is WSASYSCALLFAILURE for that call, the process goes on and so does
/// the slot; a panic in the first startup is returned as WSASYSCALLFAILURE and counts nothing.
#[test]
fn a_panic_in_a_slot_is_wsasyscallfailure_and_the_process_lives() {
    let _turn = turn();
    let (_, table) = started(upcalls_a());
    let before = winprov_core::boundary::caught_panics();
    assert_eq!(
        table.listen(PANIC_BACKLOG),
        failed(WsaError::WSASYSCALLFAILURE)
    );
    assert_eq!(winprov_core::boundary::caught_panics(), before + 1);
    assert_eq!(table.listen(5), failed(WsaError::WSAEOPNOTSUPP));
    assert_eq!(table.cleanup().0, 0);

    probe().panic_first_startup.store(true, Ordering::SeqCst);
    let s = startup(0x0202, upcalls_b());
    assert_eq!(s.code, WsaError::WSASYSCALLFAILURE.raw());
    assert_eq!(wsp_process().startups(), 0);
    assert!(
        wsp_process().host().upcalls().is_err(),
        "the upcall table of a failed startup kept"
    );
    let (_, again) = started(upcalls_a());
    assert_eq!(again.cleanup().0, 0);
}

/// An upcall that fails passes its `lpErrno` on; a slot ws2_32 left NULL is
/// WSASYSCALLFAILURE, never a call through NULL.
#[test]
fn a_failing_or_missing_upcall_is_an_error_code() {
    unsafe extern "system" fn exhausted(_: u32, _: usize, errno: *mut i32) -> SOCKET {
        // SAFETY: the provider passes a live lpErrno.
        unsafe { errno.write(WsaError::WSAEMFILE.raw()) };
        INVALID_SOCKET
    }
    let _turn = turn();
    let failing = WSPUPCALLTABLE {
        lpWPUCreateSocketHandle: Some(exhausted),
        ..WSPUPCALLTABLE::default()
    };
    for (upcalls, expected) in [
        (failing, WsaError::WSAEMFILE),
        (WSPUPCALLTABLE::default(), WsaError::WSASYSCALLFAILURE),
    ] {
        let (_, table) = started(upcalls);
        let outcome = errno_of(|e| {
            // SAFETY: a live lpErrno; no protocol info.
            let s = unsafe {
                table.0.lpWSPSocket.unwrap()(UPCALL_FAMILY, 1, 6, std::ptr::null(), 0, 0, e)
            };
            s == INVALID_SOCKET
        });
        assert_eq!(outcome, failed(expected));
        assert_eq!(table.cleanup().0, 0);
    }
}
