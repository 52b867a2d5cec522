//! A layered provider's lower providers ([`Lowers`]), with the tests playing ws2_32 (the
//! layer's `WSPStartup`s and final cleanup, upcall tables of their own) and the Winsock catalog
//! (an [`InProcess`] catalog: the layer's hidden entry, chains over a base entry and over
//! another layer), and the two lower providers written here as `extern "system"` `WSPStartup`s
//! that record the `WSAPROTOCOL_INFOW`, version and upcall table they got, and hand out a proc
//! table whose `WSPSocket` and `WSPCleanup` record their calls too.
//!
//! The recorders are statics, so the tests take turns (`turn()`), each from clean recorders.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use winprov_bindings::windows_core::GUID;
use winprov_bindings::ws2spi::{
    LPWSPACCEPT, LPWSPADDRESSTOSTRING, LPWSPASYNCSELECT, LPWSPBIND, LPWSPCANCELBLOCKINGCALL,
    LPWSPCLEANUP, LPWSPCLOSESOCKET, LPWSPCONNECT, LPWSPDUPLICATESOCKET, LPWSPENUMNETWORKEVENTS,
    LPWSPEVENTSELECT, LPWSPGETOVERLAPPEDRESULT, LPWSPGETPEERNAME, LPWSPGETQOSBYNAME,
    LPWSPGETSOCKNAME, LPWSPGETSOCKOPT, LPWSPIOCTL, LPWSPJOINLEAF, LPWSPLISTEN, LPWSPRECV,
    LPWSPRECVDISCONNECT, LPWSPRECVFROM, LPWSPSELECT, LPWSPSEND, LPWSPSENDDISCONNECT, LPWSPSENDTO,
    LPWSPSETSOCKOPT, LPWSPSHUTDOWN, LPWSPSOCKET, LPWSPSTRINGTOADDRESS, SOCKET, WSAPROTOCOL_INFOW,
    WSPDATA, WSPPROC_TABLE, WSPUPCALLTABLE,
};
use winprov_wsp::WsaError;
use winprov_wsp::abi::chain::ChainError;
use winprov_wsp::abi::{
    CatalogError, InProcess, Lower, LowerError, Lowers, Start, Upcalls, Version,
};

// ---------------------------------------------------------------------------------------------
// The catalog.

/// The layer under test.
const LAYER: GUID = GUID::from_u128(0x6c61_7965_7200_4000_8000_0000_0000_0001);
/// Another layer, below ours in some chains and above it in one.
const LAYER_B: GUID = GUID::from_u128(0x6c61_7965_7200_4000_8000_0000_0000_000b);
/// The base provider.
const BASE: GUID = GUID::from_u128(0x6261_7365_0000_4000_8000_0000_0000_0001);

const LAYER_B_DLL: &str = "%SystemRoot%\\system32\\layer_b.dll";
const BASE_DLL: &str = "%SystemRoot%\\system32\\base.dll";

/// The layer's hidden entry.
const OWN: u32 = 1001;
/// Layer B's hidden entry.
const B_HIDDEN: u32 = 1002;
/// The base provider's entry.
const BASE_TCP: u32 = 1003;
/// [ours, base].
const OVER_BASE: u32 = 1004;
/// [ours, layer B, base].
const OVER_B: u32 = 1005;
/// [layer B, ours, base]: layer B above ours.
const UNDER_B: u32 = 1006;
/// [layer B, base]: without ours.
const WITHOUT: u32 = 1007;
/// [layer B, ours]: ours at the bottom.
const AT_BOTTOM: u32 = 1008;

fn entry(id: u32, provider: GUID, chain_len: i32, chain: &[u32], name: &str) -> WSAPROTOCOL_INFOW {
    let mut info = WSAPROTOCOL_INFOW {
        dwServiceFlags1: 0x0002_0066 ^ id, // distinct per entry
        dwProviderFlags: 0x8 | id << 8,
        ProviderId: provider,
        dwCatalogEntryId: id,
        iVersion: 2,
        iAddressFamily: 2,
        iMaxSockAddr: 16,
        iMinSockAddr: 16,
        iSocketType: 1,
        iProtocol: 6,
        dwMessageSize: id,
        ..WSAPROTOCOL_INFOW::default()
    };
    info.ProtocolChain.ChainLen = chain_len;
    info.ProtocolChain.ChainEntries[..chain.len()].copy_from_slice(chain);
    for (unit, out) in name.encode_utf16().zip(info.szProtocol.iter_mut()) {
        *out = unit;
    }
    info
}

fn entries() -> Vec<WSAPROTOCOL_INFOW> {
    vec![
        entry(OWN, LAYER, 0, &[], "layer (hidden)"),
        entry(B_HIDDEN, LAYER_B, 0, &[], "layer B (hidden)"),
        entry(BASE_TCP, BASE, 1, &[BASE_TCP], "base over TCP"),
        entry(OVER_BASE, LAYER, 2, &[OWN, BASE_TCP], "layer over base"),
        entry(
            OVER_B,
            LAYER,
            3,
            &[OWN, B_HIDDEN, BASE_TCP],
            "layer over B over base",
        ),
        entry(
            UNDER_B,
            LAYER_B,
            3,
            &[B_HIDDEN, OWN, BASE_TCP],
            "B over layer over base",
        ),
        entry(WITHOUT, LAYER_B, 2, &[B_HIDDEN, BASE_TCP], "B over base"),
        entry(AT_BOTTOM, LAYER_B, 2, &[B_HIDDEN, OWN], "B over layer"),
    ]
}

fn catalog_entry(id: u32) -> WSAPROTOCOL_INFOW {
    entries()
        .into_iter()
        .find(|e| e.dwCatalogEntryId == id)
        .unwrap()
}

fn catalog_of(entries: Vec<WSAPROTOCOL_INFOW>) -> InProcess {
    // SAFETY: the two functions are WSPStartups as Module::from_startup requires: they write
    // only the WSPDATA and the proc table they are given, whose slots are this file's functions
    // (the ones the tests call honour their prototypes; the others are never called).
    unsafe {
        InProcess::new(entries)
            .with_provider(LAYER_B, LAYER_B_DLL, Some(layer_b_startup))
            .with_provider(BASE, BASE_DLL, Some(base_startup))
    }
}

fn lowers(start: Start) -> Lowers<InProcess> {
    Lowers::new(LAYER, start, catalog_of(entries()))
}

/// The structure's bytes (no padding: 4-byte fields, a GUID, 2-byte units).
fn bytes(info: &WSAPROTOCOL_INFOW) -> Vec<u8> {
    // SAFETY: a live, initialised structure of plain integers, read as bytes for its size.
    unsafe {
        std::slice::from_raw_parts(
            std::ptr::from_ref(info).cast::<u8>(),
            size_of::<WSAPROTOCOL_INFOW>(),
        )
    }
    .to_vec()
}

// ---------------------------------------------------------------------------------------------
// ws2_32's upcall tables (their functions are never called here: only their identity counts).

unsafe extern "system" fn create_a(_: u32, _: usize, _: *mut i32) -> SOCKET {
    SOCKET(0xA)
}

unsafe extern "system" fn create_b(_: u32, _: usize, _: *mut i32) -> SOCKET {
    SOCKET(0xB)
}

fn table_a() -> WSPUPCALLTABLE {
    WSPUPCALLTABLE {
        lpWPUCreateSocketHandle: Some(create_a),
        ..WSPUPCALLTABLE::default()
    }
}

fn table_b() -> WSPUPCALLTABLE {
    WSPUPCALLTABLE {
        lpWPUCreateSocketHandle: Some(create_b),
        ..WSPUPCALLTABLE::default()
    }
}

fn upcalls(table: WSPUPCALLTABLE) -> Upcalls {
    // SAFETY: the table's one function is this file's and honours its prototype.
    unsafe { Upcalls::from_raw(table) }
}

/// Which upcall table a lower provider got, by its `WPUCreateSocketHandle`.
fn which(table: &WSPUPCALLTABLE) -> Option<usize> {
    table.lpWPUCreateSocketHandle.map(|f| f as usize)
}

// ---------------------------------------------------------------------------------------------
// The lower providers.

/// What a lower provider does at its next `WSPStartup`s.
#[derive(Clone, Copy, Debug)]
struct Behaviour {
    /// Returned instead of 0 (nothing written).
    fail: i32,
    /// `lpWSPRecv` left NULL.
    null_slot: bool,
    /// `wVersion` answered instead of the request.
    version: Option<u16>,
}

const NORMAL: Behaviour = Behaviour {
    fail: 0,
    null_slot: false,
    version: None,
};

#[derive(Clone, Copy, Debug)]
struct Started {
    version: u16,
    info: WSAPROTOCOL_INFOW,
    upcalls: WSPUPCALLTABLE,
}

/// What one lower provider got.
struct Recorder {
    behaviour: Mutex<Behaviour>,
    startups: Mutex<Vec<Started>>,
    sockets: Mutex<Vec<WSAPROTOCOL_INFOW>>,
    cleanups: AtomicU32,
}

impl Recorder {
    const fn new() -> Self {
        Self {
            behaviour: Mutex::new(NORMAL),
            startups: Mutex::new(Vec::new()),
            sockets: Mutex::new(Vec::new()),
            cleanups: AtomicU32::new(0),
        }
    }

    fn reset(&self) {
        *lock(&self.behaviour) = NORMAL;
        lock(&self.startups).clear();
        lock(&self.sockets).clear();
        self.cleanups.store(0, Ordering::SeqCst);
    }

    fn behave(&self, behaviour: Behaviour) {
        *lock(&self.behaviour) = behaviour;
    }

    fn startups(&self) -> Vec<Started> {
        lock(&self.startups).clone()
    }

    fn sockets(&self) -> Vec<WSAPROTOCOL_INFOW> {
        lock(&self.sockets).clone()
    }

    fn cleanups(&self) -> u32 {
        self.cleanups.load(Ordering::SeqCst)
    }

    /// Successful startups not yet cleaned up.
    fn outstanding(&self) -> i64 {
        let good = self.startups().len() as i64;
        good - i64::from(self.cleanups())
    }
}

/// Never panics (it runs inside `extern "system"` functions): a poisoned lock is still used.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

static LAYER_B_REC: Recorder = Recorder::new();
static BASE_REC: Recorder = Recorder::new();

/// A slot the tests never call.
unsafe extern "system" fn never_called() {
    std::process::abort()
}

macro_rules! every_slot {
    ($($field:ident: $ty:ident,)*) => {
        WSPPROC_TABLE {
            $(
                // SAFETY: a function pointer stored as another function pointer type, never
                // called through it (the tests call WSPSocket and WSPCleanup only, which are
                // replaced by functions of their own type).
                $field: unsafe {
                    std::mem::transmute::<unsafe extern "system" fn(), $ty>(never_called)
                },
            )*
        }
    };
}

fn proc_table(socket: LPWSPSOCKET, cleanup: LPWSPCLEANUP, null_slot: bool) -> WSPPROC_TABLE {
    let mut table = every_slot! {
        lpWSPAccept: LPWSPACCEPT,
        lpWSPAddressToString: LPWSPADDRESSTOSTRING,
        lpWSPAsyncSelect: LPWSPASYNCSELECT,
        lpWSPBind: LPWSPBIND,
        lpWSPCancelBlockingCall: LPWSPCANCELBLOCKINGCALL,
        lpWSPCleanup: LPWSPCLEANUP,
        lpWSPCloseSocket: LPWSPCLOSESOCKET,
        lpWSPConnect: LPWSPCONNECT,
        lpWSPDuplicateSocket: LPWSPDUPLICATESOCKET,
        lpWSPEnumNetworkEvents: LPWSPENUMNETWORKEVENTS,
        lpWSPEventSelect: LPWSPEVENTSELECT,
        lpWSPGetOverlappedResult: LPWSPGETOVERLAPPEDRESULT,
        lpWSPGetPeerName: LPWSPGETPEERNAME,
        lpWSPGetSockName: LPWSPGETSOCKNAME,
        lpWSPGetSockOpt: LPWSPGETSOCKOPT,
        lpWSPGetQOSByName: LPWSPGETQOSBYNAME,
        lpWSPIoctl: LPWSPIOCTL,
        lpWSPJoinLeaf: LPWSPJOINLEAF,
        lpWSPListen: LPWSPLISTEN,
        lpWSPRecv: LPWSPRECV,
        lpWSPRecvDisconnect: LPWSPRECVDISCONNECT,
        lpWSPRecvFrom: LPWSPRECVFROM,
        lpWSPSelect: LPWSPSELECT,
        lpWSPSend: LPWSPSEND,
        lpWSPSendDisconnect: LPWSPSENDDISCONNECT,
        lpWSPSendTo: LPWSPSENDTO,
        lpWSPSetSockOpt: LPWSPSETSOCKOPT,
        lpWSPShutdown: LPWSPSHUTDOWN,
        lpWSPSocket: LPWSPSOCKET,
        lpWSPStringToAddress: LPWSPSTRINGTOADDRESS,
    };
    table.lpWSPSocket = socket;
    table.lpWSPCleanup = cleanup;
    if null_slot {
        table.lpWSPRecv = None;
    }
    table
}

/// The body of both lower providers' `WSPStartup`.
///
/// # Safety
/// ws2_32's contract for `WSPStartup`'s pointers.
unsafe fn startup(
    recorder: &Recorder,
    table: WSPPROC_TABLE,
    version: u16,
    data: *const WSPDATA,
    info: *const WSAPROTOCOL_INFOW,
    upcalls: WSPUPCALLTABLE,
    table_out: *mut WSPPROC_TABLE,
) -> i32 {
    let behaviour = *lock(&recorder.behaviour);
    if behaviour.fail != 0 {
        return behaviour.fail;
    }
    // SAFETY: readable per the contract.
    let info = unsafe { info.read() };
    lock(&recorder.startups).push(Started {
        version,
        info,
        upcalls,
    });
    let mut table = table;
    if behaviour.null_slot {
        table.lpWSPRecv = None;
    }
    // SAFETY: writable per the contract (lpWSPData is the provider's out-parameter).
    unsafe {
        data.cast_mut().write(WSPDATA {
            wVersion: behaviour.version.unwrap_or(version),
            wHighVersion: 0x0202,
            ..WSPDATA::default()
        });
        table_out.write(table);
    }
    0
}

/// The body of both lower providers' `WSPSocket`: records the structure, answers a handle.
///
/// # Safety
/// `info` is readable.
unsafe fn socket(recorder: &Recorder, info: *const WSAPROTOCOL_INFOW, base: usize) -> SOCKET {
    // SAFETY: readable per the contract.
    let info = unsafe { info.read() };
    let mut sockets = lock(&recorder.sockets);
    sockets.push(info);
    SOCKET(base + sockets.len())
}

unsafe extern "system" fn layer_b_socket(
    _: i32,
    _: i32,
    _: i32,
    info: *const WSAPROTOCOL_INFOW,
    _: u32,
    _: u32,
    _: *mut i32,
) -> SOCKET {
    // SAFETY: the caller's (WSPSocket's) contract.
    unsafe { socket(&LAYER_B_REC, info, 0xB000) }
}

unsafe extern "system" fn base_socket(
    _: i32,
    _: i32,
    _: i32,
    info: *const WSAPROTOCOL_INFOW,
    _: u32,
    _: u32,
    _: *mut i32,
) -> SOCKET {
    // SAFETY: the caller's (WSPSocket's) contract.
    unsafe { socket(&BASE_REC, info, 0xBA5E_0000) }
}

unsafe extern "system" fn layer_b_cleanup(_: *mut i32) -> i32 {
    LAYER_B_REC.cleanups.fetch_add(1, Ordering::SeqCst);
    0
}

unsafe extern "system" fn base_cleanup(_: *mut i32) -> i32 {
    BASE_REC.cleanups.fetch_add(1, Ordering::SeqCst);
    0
}

unsafe extern "system" fn layer_b_startup(
    version: u16,
    data: *const WSPDATA,
    info: *const WSAPROTOCOL_INFOW,
    upcalls: WSPUPCALLTABLE,
    table: *mut WSPPROC_TABLE,
) -> i32 {
    let procs = proc_table(Some(layer_b_socket), Some(layer_b_cleanup), false);
    // SAFETY: forwarded under WSPStartup's contract.
    unsafe { startup(&LAYER_B_REC, procs, version, data, info, upcalls, table) }
}

unsafe extern "system" fn base_startup(
    version: u16,
    data: *const WSPDATA,
    info: *const WSAPROTOCOL_INFOW,
    upcalls: WSPUPCALLTABLE,
    table: *mut WSPPROC_TABLE,
) -> i32 {
    let procs = proc_table(Some(base_socket), Some(base_cleanup), false);
    // SAFETY: forwarded under WSPStartup's contract.
    unsafe { startup(&BASE_REC, procs, version, data, info, upcalls, table) }
}

/// One test at a time, from clean recorders.
fn turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    let guard = lock(&TURN);
    LAYER_B_REC.reset();
    BASE_REC.reset();
    guard
}

/// A socket through the lower provider, as the layer's `WSPSocket` makes it for `given`.
fn lower_socket(lower: &Lower, given: &WSAPROTOCOL_INFOW) -> Result<usize, WsaError> {
    lower
        .socket(2, 1, 6, given, 0, 0x01)
        .map(|socket| socket.raw())
}

fn chain_error(error: LowerError) -> ChainError {
    match error {
        LowerError::Chain(error) => error,
        other => panic!("not a chain error: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// R-WSP-4: what goes down.

#[test]
fn r_wsp_4_a_lower_layer_gets_the_chain_entry_unmodified_at_startup_and_for_sockets() {
    let _turn = turn();
    let lowers = lowers(Start::Eager);
    let given = catalog_entry(OVER_B);
    lowers
        .startup(Version::V2_2, &given, &upcalls(table_a()))
        .unwrap();

    let started = LAYER_B_REC.startups();
    assert_eq!(
        started.len(),
        1,
        "layer B started once, at the layer's startup"
    );
    assert_eq!(
        bytes(&started[0].info),
        bytes(&given),
        "the chain entry, byte for byte"
    );
    assert_eq!(started[0].version, Version::V2_2.raw());
    assert_eq!(which(&started[0].upcalls), which(&table_a()));
    assert!(
        BASE_REC.startups().is_empty(),
        "the base is layer B's to start"
    );

    // A duplicated socket's structure carries the base's token: it goes down as it is.
    let lower = lowers.lower(&given, &upcalls(table_a())).unwrap();
    let socket_info = WSAPROTOCOL_INFOW {
        dwProviderReserved: 0x77,
        ..given
    };
    assert_eq!(lower_socket(&lower, &socket_info), Ok(0xB001));
    let sockets = LAYER_B_REC.sockets();
    assert_eq!(sockets.len(), 1);
    assert_eq!(bytes(&sockets[0]), bytes(&socket_info));
    drop(lower);
    assert_eq!(lowers.final_cleanup(), 1);
}

#[test]
fn r_wsp_4_the_base_gets_its_own_entry_at_startup_and_for_sockets() {
    let _turn = turn();
    let lowers = lowers(Start::Lazy);
    let given = catalog_entry(OVER_BASE);
    lowers
        .startup(Version::V2_2, &given, &upcalls(table_a()))
        .unwrap();
    assert!(
        BASE_REC.startups().is_empty(),
        "lazy: nothing before the first need"
    );

    let lower = lowers.lower(&given, &upcalls(table_b())).unwrap();
    let started = BASE_REC.startups();
    assert_eq!(started.len(), 1);
    let own = catalog_entry(BASE_TCP);
    assert_eq!(
        bytes(&started[0].info),
        bytes(&own),
        "the base's own entry, byte for byte"
    );
    assert_eq!(started[0].info.ProtocolChain.ChainLen, 1);
    assert_eq!(started[0].info.dwCatalogEntryId, BASE_TCP);
    assert_eq!(
        which(&started[0].upcalls),
        which(&table_b()),
        "the upcall table the layer has when the need comes"
    );

    let socket_info = WSAPROTOCOL_INFOW {
        dwProviderReserved: 0x77,
        ..given
    };
    assert_eq!(lower_socket(&lower, &socket_info), Ok(0xBA5E_0001));
    let sockets = BASE_REC.sockets();
    assert_eq!(sockets.len(), 1);
    let expected = WSAPROTOCOL_INFOW {
        dwProviderReserved: 0x77,
        ..own
    };
    assert_eq!(
        bytes(&sockets[0]),
        bytes(&expected),
        "the base's own entry, with the caller's dwProviderReserved"
    );
    drop(lower);
    assert_eq!(lowers.final_cleanup(), 1);
}

#[test]
fn r_wsp_4_a_layer_in_the_middle_hands_the_base_its_own_entry() {
    let _turn = turn();
    let lowers = lowers(Start::Eager);
    // Layer B, above ours, started us with its chain entry, unmodified.
    let given = catalog_entry(UNDER_B);
    lowers
        .startup(Version::V2_2, &given, &upcalls(table_a()))
        .unwrap();
    let started = BASE_REC.startups();
    assert_eq!(started.len(), 1);
    assert_eq!(bytes(&started[0].info), bytes(&catalog_entry(BASE_TCP)));
    assert!(LAYER_B_REC.startups().is_empty(), "layer B is above ours");

    let lower = &lowers.started()[0];
    assert_eq!(lower.route().link().index(), 1);
    assert_eq!(lower_socket(lower, &given), Ok(0xBA5E_0001));
    assert_eq!(
        bytes(&BASE_REC.sockets()[0]),
        bytes(&catalog_entry(BASE_TCP))
    );
    assert_eq!(lowers.final_cleanup(), 1);
}

#[test]
fn r_wsp_4_a_structure_of_another_chain_does_not_go_down() {
    let _turn = turn();
    let lowers = lowers(Start::Eager);
    let given = catalog_entry(OVER_B);
    lowers
        .startup(Version::V2_2, &given, &upcalls(table_a()))
        .unwrap();
    let lower = lowers.lower(&given, &upcalls(table_a())).unwrap();
    assert_eq!(
        lower_socket(&lower, &catalog_entry(OVER_BASE)),
        Err(WsaError::WSAEINVALIDPROVIDER)
    );
    assert!(LAYER_B_REC.sockets().is_empty());
    drop(lower);
    lowers.final_cleanup();
}

// ---------------------------------------------------------------------------------------------
// Chains the layer cannot serve.

#[test]
fn a_chain_without_the_layer_is_refused_and_nothing_is_loaded() {
    let _turn = turn();
    let lowers = lowers(Start::Lazy);
    let a = upcalls(table_a());
    lowers
        .startup(Version::V2_2, &catalog_entry(OVER_BASE), &a)
        .unwrap();
    let error = lowers.lower(&catalog_entry(WITHOUT), &a).unwrap_err();
    assert_eq!(error.code(), WsaError::WSAEINVALIDPROVIDER);
    assert_eq!(
        chain_error(error),
        ChainError::NotInChain {
            entry: WITHOUT,
            own: OWN
        }
    );
    assert_eq!(lowers.catalog().loads(LAYER_B_DLL), 0);
    assert_eq!(lowers.catalog().loads(BASE_DLL), 0);
    assert!(LAYER_B_REC.startups().is_empty() && BASE_REC.startups().is_empty());
    assert_eq!(lowers.final_cleanup(), 0);
}

#[test]
fn an_eager_startup_refused_for_its_chain_leaves_the_session_as_it_was() {
    let _turn = turn();
    let lowers = lowers(Start::Eager);
    let a = upcalls(table_a());
    let error = lowers
        .startup(Version::V2_2, &catalog_entry(WITHOUT), &a)
        .unwrap_err();
    assert_eq!(error.code(), WsaError::WSAEINVALIDPROVIDER);
    // The failed startup did not start a session.
    assert_eq!(
        lowers.lower(&catalog_entry(OVER_BASE), &a).unwrap_err(),
        LowerError::NotStarted
    );
    assert!(BASE_REC.startups().is_empty());
}

#[test]
fn a_layer_at_the_bottom_is_refused() {
    let _turn = turn();
    let lowers = lowers(Start::Eager);
    let error = lowers
        .startup(
            Version::V2_2,
            &catalog_entry(AT_BOTTOM),
            &upcalls(table_a()),
        )
        .unwrap_err();
    assert_eq!(error.code(), WsaError::WSAEINVALIDPROVIDER);
    assert_eq!(
        chain_error(error),
        ChainError::AtBottom {
            entry: AT_BOTTOM,
            own: OWN
        }
    );
    assert_eq!(lowers.catalog().loads(LAYER_B_DLL), 0);
    assert!(LAYER_B_REC.startups().is_empty() && BASE_REC.startups().is_empty());
}

#[test]
fn a_chain_len_out_of_range_is_refused() {
    let _turn = turn();
    let lowers = lowers(Start::Eager);
    for len in [-1, 8, i32::MAX] {
        let mut given = catalog_entry(OVER_BASE);
        given.ProtocolChain.ChainLen = len;
        let error = lowers
            .startup(Version::V2_2, &given, &upcalls(table_a()))
            .unwrap_err();
        assert_eq!(error.code(), WsaError::WSAEINVAL, "ChainLen {len}");
    }
    for (id, len) in [(OWN, 0), (BASE_TCP, 1)] {
        let error = lowers
            .startup(Version::V2_2, &catalog_entry(id), &upcalls(table_a()))
            .unwrap_err();
        assert_eq!(
            chain_error(error),
            ChainError::NotAChain { entry: id, len },
            "a hidden or base entry is no chain"
        );
    }
    assert!(BASE_REC.startups().is_empty());
}

#[test]
fn the_layer_finds_itself_by_its_provider_guid() {
    let _turn = turn();
    // The catalog without the layer's hidden entry.
    let without: Vec<_> = entries()
        .into_iter()
        .filter(|e| e.dwCatalogEntryId != OWN)
        .collect();
    let lowers = Lowers::new(LAYER, Start::Eager, catalog_of(without));
    let error = lowers
        .startup(
            Version::V2_2,
            &catalog_entry(OVER_BASE),
            &upcalls(table_a()),
        )
        .unwrap_err();
    assert_eq!(error.code(), WsaError::WSAEINVALIDPROVIDER);
    assert_eq!(
        chain_error(error),
        ChainError::NotInstalled { provider: LAYER }
    );

    // Under another GUID, the same catalog's chains are not the layer's.
    let stranger = Lowers::new(LAYER_B, Start::Eager, catalog_of(entries()));
    let error = stranger
        .startup(
            Version::V2_2,
            &catalog_entry(OVER_BASE),
            &upcalls(table_a()),
        )
        .unwrap_err();
    assert_eq!(
        chain_error(error),
        ChainError::NotInChain {
            entry: OVER_BASE,
            own: B_HIDDEN
        }
    );
    assert!(BASE_REC.startups().is_empty());
}

// ---------------------------------------------------------------------------------------------
// When lower providers start, and their cleanup.

#[test]
fn lazy_starts_a_lower_provider_on_its_first_need_only() {
    let _turn = turn();
    let lowers = lowers(Start::Lazy);
    let a = upcalls(table_a());
    let given = catalog_entry(OVER_BASE);
    assert_eq!(
        lowers.lower(&given, &a).unwrap_err(),
        LowerError::NotStarted,
        "no need is served before the layer's WSPStartup"
    );
    lowers.startup(Version::V2_2, &given, &a).unwrap();
    lowers.startup(Version::V2_2, &given, &a).unwrap();
    assert_eq!(lowers.catalog().loads(BASE_DLL), 0);
    let first = lowers.lower(&given, &a).unwrap();
    let second = lowers.lower(&given, &a).unwrap();
    assert!(std::sync::Arc::ptr_eq(&first, &second));
    assert_eq!(BASE_REC.startups().len(), 1);
    assert_eq!(lowers.catalog().loads(BASE_DLL), 1);
    assert_eq!(first.startups(), 1);
    assert_eq!(first.version(), Some(Version::V2_2));
    assert_eq!(first.high_version(), Some(Version::V2_2));
    drop((first, second));
    assert_eq!(lowers.final_cleanup(), 1);
}

#[test]
fn eager_starts_a_lower_provider_at_the_layer_startup_once() {
    let _turn = turn();
    let lowers = lowers(Start::Eager);
    let a = upcalls(table_a());
    let given = catalog_entry(OVER_BASE);
    lowers.startup(Version::V2_2, &given, &a).unwrap();
    assert_eq!(BASE_REC.startups().len(), 1);
    lowers.startup(Version::V2_2, &given, &a).unwrap();
    let lower = lowers.lower(&given, &a).unwrap();
    assert_eq!(BASE_REC.startups().len(), 1, "one start per session");
    assert_eq!(lower.startups(), 1);
    drop(lower);
    assert_eq!(lowers.final_cleanup(), 1);
}

#[test]
fn the_lower_provider_gets_the_version_the_layer_negotiated() {
    let _turn = turn();
    let lowers = lowers(Start::Eager);
    let v2_0 = Version::new(2, 0);
    lowers
        .startup(v2_0, &catalog_entry(OVER_BASE), &upcalls(table_a()))
        .unwrap();
    assert_eq!(BASE_REC.startups()[0].version, v2_0.raw());
    assert_eq!(lowers.started()[0].version(), Some(v2_0));
    lowers.final_cleanup();
}

#[test]
fn every_lower_startup_is_paired_with_a_cleanup_at_the_layer_final_cleanup() {
    let _turn = turn();
    let lowers = lowers(Start::Lazy);
    let a = upcalls(table_a());
    // Three chains: layer B started for one, the base (one DLL) for two.
    for id in [OVER_B, OVER_BASE, UNDER_B] {
        lowers
            .startup(Version::V2_2, &catalog_entry(id), &a)
            .unwrap();
        drop(lowers.lower(&catalog_entry(id), &a).unwrap());
        drop(lowers.lower(&catalog_entry(id), &a).unwrap());
    }
    assert_eq!(LAYER_B_REC.startups().len(), 1);
    assert_eq!(BASE_REC.startups().len(), 2);
    assert_eq!(lowers.catalog().held(BASE_DLL), 2);
    assert_eq!(lowers.catalog().held(LAYER_B_DLL), 1);
    assert_eq!(
        (LAYER_B_REC.cleanups(), BASE_REC.cleanups()),
        (0, 0),
        "nothing is cleaned up before the layer's final cleanup"
    );

    // A socket holds its chain's lower provider across the final cleanup.
    let held = lowers.lower(&catalog_entry(OVER_BASE), &a).unwrap();
    assert_eq!(lowers.final_cleanup(), 3);
    assert_eq!(LAYER_B_REC.outstanding(), 0);
    assert_eq!(BASE_REC.outstanding(), 0);
    assert_eq!(LAYER_B_REC.cleanups(), 1);
    assert_eq!(BASE_REC.cleanups(), 2);
    assert_eq!(
        lowers.catalog().held(LAYER_B_DLL),
        0,
        "released with the session"
    );
    assert_eq!(
        lowers.catalog().held(BASE_DLL),
        1,
        "the held one stays loaded"
    );
    assert_eq!(held.startups(), 0);
    assert_eq!(held.proc_table().map(|_| ()), None);
    assert_eq!(
        lower_socket(&held, &catalog_entry(OVER_BASE)),
        Err(WsaError::WSANOTINITIALISED),
        "a cleaned-up lower provider is not called"
    );
    drop(held);
    assert_eq!(lowers.catalog().held(BASE_DLL), 0);
    assert_eq!(lowers.final_cleanup(), 0, "nothing twice");
    assert_eq!(BASE_REC.cleanups(), 2);

    // The session is over; the next one finds and starts everything again.
    assert_eq!(
        lowers.lower(&catalog_entry(OVER_BASE), &a).unwrap_err(),
        LowerError::NotStarted
    );
    lowers
        .startup(Version::V2_2, &catalog_entry(OVER_BASE), &a)
        .unwrap();
    drop(lowers.lower(&catalog_entry(OVER_BASE), &a).unwrap());
    assert_eq!(BASE_REC.startups().len(), 3);
    assert_eq!(lowers.catalog().loads(BASE_DLL), 3);
    assert_eq!(lowers.final_cleanup(), 1);
    assert_eq!(BASE_REC.outstanding(), 0);
}

#[test]
fn a_lower_proc_table_with_a_null_slot_is_refused_and_its_startup_cleaned_up() {
    let _turn = turn();
    let lowers = lowers(Start::Lazy);
    let a = upcalls(table_a());
    let given = catalog_entry(OVER_BASE);
    lowers.startup(Version::V2_2, &given, &a).unwrap();
    BASE_REC.behave(Behaviour {
        null_slot: true,
        ..NORMAL
    });
    let error = lowers.lower(&given, &a).unwrap_err();
    assert_eq!(error.code(), WsaError::WSAEINVALIDPROCTABLE);
    assert!(matches!(
        error,
        LowerError::ProcTable {
            slot: "lpWSPRecv",
            ..
        }
    ));
    assert_eq!(BASE_REC.startups().len(), 1);
    assert_eq!(BASE_REC.cleanups(), 1, "the startup is paired at once");
    assert_eq!(
        lowers.catalog().held(BASE_DLL),
        0,
        "and the module released"
    );
    assert!(lowers.started().is_empty());

    // The next need tries again.
    BASE_REC.behave(NORMAL);
    drop(lowers.lower(&given, &a).unwrap());
    assert_eq!(BASE_REC.startups().len(), 2);
    assert_eq!(lowers.final_cleanup(), 1);
    assert_eq!(BASE_REC.outstanding(), 0);
}

#[test]
fn a_lower_startup_error_keeps_its_code() {
    let _turn = turn();
    let lowers = lowers(Start::Eager);
    BASE_REC.behave(Behaviour {
        fail: WsaError::WSASYSNOTREADY.raw(),
        ..NORMAL
    });
    let error = lowers
        .startup(
            Version::V2_2,
            &catalog_entry(OVER_BASE),
            &upcalls(table_a()),
        )
        .unwrap_err();
    assert_eq!(error.code(), WsaError::WSASYSNOTREADY);
    assert!(matches!(error, LowerError::Startup { code, .. } if code == WsaError::WSASYSNOTREADY));
    assert_eq!(BASE_REC.cleanups(), 0, "a failed startup is not cleaned up");
    assert_eq!(lowers.catalog().held(BASE_DLL), 0);
}

#[test]
fn a_lower_answering_another_version_is_refused_and_cleaned_up() {
    let _turn = turn();
    let lowers = lowers(Start::Eager);
    BASE_REC.behave(Behaviour {
        version: Some(Version::new(2, 0).raw()),
        ..NORMAL
    });
    let error = lowers
        .startup(
            Version::V2_2,
            &catalog_entry(OVER_BASE),
            &upcalls(table_a()),
        )
        .unwrap_err();
    assert_eq!(error.code(), WsaError::WSAEINVALIDPROVIDER);
    assert!(matches!(
        error,
        LowerError::Version { asked, answered, .. }
            if asked == Version::V2_2 && answered == Version::new(2, 0)
    ));
    assert_eq!(BASE_REC.outstanding(), 0);
    assert_eq!(BASE_REC.cleanups(), 1);
    assert_eq!(lowers.catalog().held(BASE_DLL), 0);
}

#[test]
fn a_lower_provider_that_cannot_be_loaded_fails_to_initialise_with_its_code_kept() {
    let _turn = turn();
    let a = upcalls(table_a());
    // The base's DLL has no WSPStartup.
    // SAFETY: no function is given.
    let no_export = unsafe { InProcess::new(entries()).with_provider(BASE, BASE_DLL, None) };
    let lowers = Lowers::new(LAYER, Start::Eager, no_export);
    let error = lowers
        .startup(Version::V2_2, &catalog_entry(OVER_BASE), &a)
        .unwrap_err();
    assert_eq!(error.code(), WsaError::WSAEPROVIDERFAILEDINIT);
    assert!(matches!(
        error,
        LowerError::Catalog(CatalogError::NoStartup { os_error: 127, .. })
    ));

    // The catalog knows no path for the base provider.
    let lowers = Lowers::new(LAYER, Start::Eager, InProcess::new(entries()));
    let error = lowers
        .startup(Version::V2_2, &catalog_entry(OVER_BASE), &a)
        .unwrap_err();
    assert_eq!(error.code(), WsaError::WSAEPROVIDERFAILEDINIT);
    assert_eq!(
        error,
        LowerError::Catalog(CatalogError::ProviderPath {
            provider: BASE,
            code: WsaError::WSAEINVAL
        })
    );
    assert!(BASE_REC.startups().is_empty());
}

// ---------------------------------------------------------------------------------------------
// The system's catalog (Windows only: `cargo test --target x86_64-pc-windows-gnu`, e.g. with
// `cargo xtask wine` as the runner). What holds on Windows and under Wine alike.

#[cfg(windows)]
#[test]
fn the_system_catalog_enumerates_every_entry_and_keeps_the_loader_codes() {
    use winprov_wsp::abi::{Catalog, ProviderPath, System};

    // Two calls at least: the size first (WSAENOBUFS), then the entries.
    let entries = System.protocols().unwrap();
    assert!(
        entries.iter().any(|e| e.ProtocolChain.ChainLen == 1),
        "a base provider in {} entries",
        entries.len()
    );
    assert!(
        entries
            .iter()
            .all(|e| (0..=7).contains(&e.ProtocolChain.ChainLen))
    );

    // Windows knows the base's DLL; Wine's WSCGetProviderPath succeeds with an empty path,
    // which is refused.
    let base = entries
        .iter()
        .find(|e| e.ProtocolChain.ChainLen == 1)
        .unwrap();
    match System.provider_path(&base.ProviderId) {
        Ok(path) => {
            let path = path.to_string();
            assert!(!path.is_empty() && !path.contains('%'), "expanded: {path}");
        }
        Err(error) => assert_eq!(
            error,
            CatalogError::EmptyPath {
                provider: base.ProviderId
            }
        ),
    }
    let unknown = GUID::from_u128(0x0bad_0000_0000_4000_8000_0000_0000_0001);
    let error = System.provider_path(&unknown).unwrap_err();
    assert!(
        matches!(
            error,
            CatalogError::ProviderPath { provider, code: WsaError::WSAEINVAL } if provider == unknown
        ) || error == CatalogError::EmptyPath { provider: unknown },
        "{error:?}"
    );

    let missing = ProviderPath::from("C:\\winprov\\no such provider.dll");
    assert!(matches!(
        System.load(&missing),
        Err(CatalogError::Load { os_error: 126, .. })
    ));
    // A DLL without the export.
    let ws2 = ProviderPath::from("ws2_32.dll");
    assert!(matches!(
        System.load(&ws2),
        Err(CatalogError::NoStartup { os_error: 127, .. })
    ));
}
