//! The `WSPPROC_TABLE` `WSPStartup` hands out: all 30 slots, none NULL, each an
//! `extern "system"` function generic over the DLL's [`Export`] that forwards to the function
//! of `exports` of the same name with the DLL's [`Process`](super::Process).
//! Each slot's signature is checked against the bindings' `LPWSP*` type by the table's field it
//! is stored in.

use super::dispatch::Dispatch;
use super::exports;
use super::startup::Export;
use core::ffi::c_void;
use winprov_bindings::windows_core::{BOOL, PCSTR, PCWSTR, PSTR, PWSTR};
use winprov_bindings::ws2spi::{
    FD_SET, HANDLE, HWND, LPCONDITIONPROC, LPWSAOVERLAPPED_COMPLETION_ROUTINE, OVERLAPPED, QOS,
    SOCKADDR, SOCKET, TIMEVAL, WSABUF, WSAEVENT, WSANETWORKEVENTS, WSAPROTOCOL_INFOW, WSATHREADID,
    WSPPROC_TABLE,
};

/// One generic slot per line, and the table that lists them all.
macro_rules! slots {
    ($($field:ident => $function:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty;)*) => {
        $(
            #[allow(clippy::too_many_arguments)]
            unsafe extern "system" fn $function<E: Export>($($arg: $ty),*) -> $ret {
                // SAFETY: ws2_32 calls the slot with the arguments ws2spi.h defines for it;
                // the body checks every pointer before use (see `exports`).
                unsafe { exports::$function(E::process(), $($arg),*) }
            }
        )*

        /// The proc table of `E`'s process: every slot filled.
        pub(crate) fn proc_table<E: Export>() -> WSPPROC_TABLE {
            let mut table = WSPPROC_TABLE {
                $($field: Some($function::<E>),)*
            };
            <E::Dispatch as Dispatch>::own_slots::<E>(&mut table);
            table
        }

        /// The slots' names, in the table's order (for host simulators and tests).
        pub const SLOT_NAMES: [&str; 30] = [$(stringify!($field)),*];

        /// The first NULL slot of `table`, by name: a lower provider's table is checked before
        /// it is used (`WSAEINVALIDPROCTABLE`).
        pub(crate) fn missing_slot(table: &WSPPROC_TABLE) -> Option<&'static str> {
            $(
                if table.$field.is_none() {
                    return Some(stringify!($field));
                }
            )*
            None
        }
    };
}

slots! {
    lpWSPAccept => accept(
        s: SOCKET, addr: *mut SOCKADDR, addrlen: *mut i32, lpfncondition: LPCONDITIONPROC,
        dwcallbackdata: usize, lperrno: *mut i32) -> SOCKET;
    lpWSPAddressToString => address_to_string(
        lpsaaddress: *const SOCKADDR, dwaddresslength: u32,
        lpprotocolinfo: *const WSAPROTOCOL_INFOW, lpszaddressstring: PWSTR,
        lpdwaddressstringlength: *mut u32, lperrno: *mut i32) -> i32;
    lpWSPAsyncSelect => async_select(
        s: SOCKET, hwnd: HWND, wmsg: u32, levent: i32, lperrno: *mut i32) -> i32;
    lpWSPBind => bind(s: SOCKET, name: *const SOCKADDR, namelen: i32, lperrno: *mut i32) -> i32;
    lpWSPCancelBlockingCall => cancel_blocking_call(lperrno: *mut i32) -> i32;
    lpWSPCleanup => cleanup(lperrno: *mut i32) -> i32;
    lpWSPCloseSocket => close_socket(s: SOCKET, lperrno: *mut i32) -> i32;
    lpWSPConnect => connect(
        s: SOCKET, name: *const SOCKADDR, namelen: i32, lpcallerdata: *const WSABUF,
        lpcalleedata: *mut WSABUF, lpsqos: *const QOS, lpgqos: *const QOS,
        lperrno: *mut i32) -> i32;
    lpWSPDuplicateSocket => duplicate_socket(
        s: SOCKET, dwprocessid: u32, lpprotocolinfo: *mut WSAPROTOCOL_INFOW,
        lperrno: *mut i32) -> i32;
    lpWSPEnumNetworkEvents => enum_network_events(
        s: SOCKET, heventobject: HANDLE, lpnetworkevents: *mut WSANETWORKEVENTS,
        lperrno: *mut i32) -> i32;
    lpWSPEventSelect => event_select(
        s: SOCKET, heventobject: WSAEVENT, lnetworkevents: i32, lperrno: *mut i32) -> i32;
    lpWSPGetOverlappedResult => get_overlapped_result(
        s: SOCKET, lpoverlapped: *const OVERLAPPED, lpcbtransfer: *mut u32, fwait: BOOL,
        lpdwflags: *mut u32, lperrno: *mut i32) -> BOOL;
    lpWSPGetPeerName => get_peer_name(
        s: SOCKET, name: *mut SOCKADDR, namelen: *mut i32, lperrno: *mut i32) -> i32;
    lpWSPGetSockName => get_sock_name(
        s: SOCKET, name: *mut SOCKADDR, namelen: *mut i32, lperrno: *mut i32) -> i32;
    lpWSPGetSockOpt => get_sock_opt(
        s: SOCKET, level: i32, optname: i32, optval: PSTR, optlen: *mut i32,
        lperrno: *mut i32) -> i32;
    lpWSPGetQOSByName => get_qos_by_name(
        s: SOCKET, lpqosname: *const WSABUF, lpqos: *mut QOS, lperrno: *mut i32) -> BOOL;
    lpWSPIoctl => ioctl(
        s: SOCKET, dwiocontrolcode: u32, lpvinbuffer: *const c_void, cbinbuffer: u32,
        lpvoutbuffer: *mut c_void, cboutbuffer: u32, lpcbbytesreturned: *mut u32,
        lpoverlapped: *mut OVERLAPPED, lpcompletionroutine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
        lpthreadid: *const WSATHREADID, lperrno: *mut i32) -> i32;
    lpWSPJoinLeaf => join_leaf(
        s: SOCKET, name: *const SOCKADDR, namelen: i32, lpcallerdata: *const WSABUF,
        lpcalleedata: *mut WSABUF, lpsqos: *const QOS, lpgqos: *const QOS, dwflags: u32,
        lperrno: *mut i32) -> SOCKET;
    lpWSPListen => listen(s: SOCKET, backlog: i32, lperrno: *mut i32) -> i32;
    lpWSPRecv => recv(
        s: SOCKET, lpbuffers: *const WSABUF, dwbuffercount: u32,
        lpnumberofbytesrecvd: *mut u32, lpflags: *mut u32, lpoverlapped: *mut OVERLAPPED,
        lpcompletionroutine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
        lpthreadid: *const WSATHREADID, lperrno: *const i32) -> i32;
    lpWSPRecvDisconnect => recv_disconnect(
        s: SOCKET, lpinbounddisconnectdata: *const WSABUF, lperrno: *mut i32) -> i32;
    lpWSPRecvFrom => recv_from(
        s: SOCKET, lpbuffers: *const WSABUF, dwbuffercount: u32,
        lpnumberofbytesrecvd: *mut u32, lpflags: *mut u32, lpfrom: *mut SOCKADDR,
        lpfromlen: *mut i32, lpoverlapped: *mut OVERLAPPED,
        lpcompletionroutine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
        lpthreadid: *const WSATHREADID, lperrno: *mut i32) -> i32;
    lpWSPSelect => select(
        nfds: i32, readfds: *mut FD_SET, writefds: *mut FD_SET, exceptfds: *mut FD_SET,
        timeout: *const TIMEVAL, lperrno: *mut i32) -> i32;
    lpWSPSend => send(
        s: SOCKET, lpbuffers: *const WSABUF, dwbuffercount: u32,
        lpnumberofbytessent: *mut u32, dwflags: u32, lpoverlapped: *mut OVERLAPPED,
        lpcompletionroutine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
        lpthreadid: *const WSATHREADID, lperrno: *mut i32) -> i32;
    lpWSPSendDisconnect => send_disconnect(
        s: SOCKET, lpoutbounddisconnectdata: *const WSABUF, lperrno: *mut i32) -> i32;
    lpWSPSendTo => send_to(
        s: SOCKET, lpbuffers: *const WSABUF, dwbuffercount: u32,
        lpnumberofbytessent: *mut u32, dwflags: u32, lpto: *const SOCKADDR, itolen: i32,
        lpoverlapped: *mut OVERLAPPED, lpcompletionroutine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
        lpthreadid: *const WSATHREADID, lperrno: *mut i32) -> i32;
    lpWSPSetSockOpt => set_sock_opt(
        s: SOCKET, level: i32, optname: i32, optval: PCSTR, optlen: i32,
        lperrno: *mut i32) -> i32;
    lpWSPShutdown => shutdown(s: SOCKET, how: i32, lperrno: *mut i32) -> i32;
    lpWSPSocket => socket(
        af: i32, r#type: i32, protocol: i32, lpprotocolinfo: *const WSAPROTOCOL_INFOW, g: u32,
        dwflags: u32, lperrno: *mut i32) -> SOCKET;
    lpWSPStringToAddress => string_to_address(
        addressstring: PCWSTR, addressfamily: i32, lpprotocolinfo: *const WSAPROTOCOL_INFOW,
        lpaddress: *mut SOCKADDR, lpaddresslength: *mut i32, lperrno: *mut i32) -> i32;
}
