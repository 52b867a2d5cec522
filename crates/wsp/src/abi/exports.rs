//! The bodies of the proc table's slots: one function per `WSPPROC_TABLE` entry, with the
//! entry's own parameters after the process. Each runs [`slot`]: `lpErrno` checked first (a
//! NULL or misaligned one: the call does nothing and returns the slot's failure value), then
//! the panic boundary (a panic stores `WSASYSCALLFAILURE` and returns the failure value), then
//! `WSANOTINITIALISED` while the process is not started, then the arguments decoded
//! ([`decode`](super::decode)), then the [`Dispatch`] method; its error goes to `*lpErrno` with
//! `SOCKET_ERROR` (`INVALID_SOCKET`, `FALSE`), its value into the out-parameters.
//!
//! A host simulator calls these functions directly, with a process of its own; the generated
//! table reaches them through [`table`](super::table).
#![allow(clippy::too_many_arguments, clippy::missing_safety_doc)]

use super::decode::{
    BufferArray, Errno, OverlappedRecv, RecvBuffers, Socket, decode_buffers, decode_fd_set,
    decode_overlapped, decode_protocol_info_opt, decode_sock_opt, decode_sockaddr, decode_timeout,
    decode_wsabuf, send_data, write_fd_set, write_sized, write_wsabuf, wsabuf_capacity,
};
use super::dispatch::{Dispatch, RecvIo, SelectSets, Transfer};
use super::startup::Process;
use super::upcalls::Host;
use core::ffi::c_void;
use winprov_bindings::windows_core::{BOOL, PCSTR, PCWSTR, PSTR, PWSTR};
use winprov_bindings::ws2spi::{
    FD_SET, HANDLE, HWND, INVALID_SOCKET, LPCONDITIONPROC, LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    OVERLAPPED, QOS, SOCKADDR, SOCKET, SOCKET_ERROR, TIMEVAL, WSABUF, WSAEVENT, WSANETWORKEVENTS,
    WSAPROTOCOL_INFOW, WSATHREADID,
};
use winprov_core::{WsaError, boundary_with, ffi};

pub(crate) use super::startup::cleanup;

/// Longest address string `WSPStringToAddress` reads, in UTF-16 units.
const MAX_ADDRESS_STRING: usize = 1024;

/// The frame of every slot. See the [module documentation](self).
pub(crate) fn slot<D: Dispatch, R: Copy>(
    process: &Process<D>,
    export: &'static str,
    lperrno: *mut i32,
    failure: R,
    body: impl FnOnce(&D, &Host<'_>) -> Result<R, WsaError>,
) -> R {
    let errno = match Errno::new(lperrno) {
        Ok(errno) => errno,
        Err(error) => {
            tracing::warn!(export, %error, "lpErrno unusable: call refused");
            return failure;
        }
    };
    boundary_with(
        export,
        |_| {
            errno.set(WsaError::WSASYSCALLFAILURE);
            failure
        },
        || {
            let Some(dispatch) = process.started() else {
                errno.set(WsaError::WSANOTINITIALISED);
                return failure;
            };
            match body(dispatch, &process.host()) {
                Ok(value) => value,
                Err(error) => {
                    errno.set(error);
                    failure
                }
            }
        },
    )
}

pub(crate) fn fault(error: winprov_core::PtrError) -> WsaError {
    tracing::debug!(%error, "bad pointer from the host");
    WsaError::WSAEFAULT
}

pub(crate) fn socket_of(s: SOCKET) -> Socket {
    Socket::from_raw(s.0)
}

/// An optional `QOS` argument (copied; its provider-specific buffer is passed as the caller's
/// pointer value).
///
/// # Safety
/// A non-null, aligned `ptr` points to a readable `QOS`.
unsafe fn read_qos(ptr: *const QOS) -> Result<Option<QOS>, WsaError> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller's contract; checked for alignment first.
    unsafe { ffi::read(ptr) }.map(Some).map_err(fault)
}

/// Checks an optional `DWORD` out-parameter: NULL is allowed only when `optional`.
pub(crate) fn out_u32(ptr: *mut u32, optional: bool) -> Result<(), WsaError> {
    if ptr.is_null() && optional {
        return Ok(());
    }
    ffi::check(ptr.cast_const()).map(|_| ()).map_err(fault)
}

/// Writes a `DWORD` out-parameter checked by [`out_u32`] (NULL: nothing).
///
/// # Safety
/// A non-null `ptr` passed [`out_u32`] and is writable.
pub(crate) unsafe fn put_u32(ptr: *mut u32, value: u32) {
    if !ptr.is_null() {
        // SAFETY: the caller's contract.
        let _ = unsafe { ffi::write(ptr, value) };
    }
}

/// Checks an address out-pair (`addr`, `addrlen`) before the call: a non-null address needs a
/// usable, non-negative length. Returns the capacity (`None` when no address is wanted).
///
/// # Safety
/// A non-null, aligned `len` is readable.
unsafe fn address_capacity(addr: *mut SOCKADDR, len: *mut i32) -> Result<Option<usize>, WsaError> {
    if addr.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller's contract; checked for null and alignment first.
    let capacity = unsafe { ffi::read(len.cast_const()) }.map_err(fault)?;
    usize::try_from(capacity)
        .map(Some)
        .map_err(|_| WsaError::WSAEFAULT)
}

/// Writes an address into a pair checked by [`address_capacity`], cut to its capacity.
///
/// # Safety
/// As checked by [`address_capacity`]: `addr` writable for the capacity, `len` writable.
unsafe fn put_address(addr: *mut SOCKADDR, len: *mut i32, capacity: Option<usize>, address: &[u8]) {
    let Some(capacity) = capacity else { return };
    let n = address.len().min(capacity);
    // SAFETY: `n` bytes fit the caller's buffer; `address` is ours.
    unsafe { std::ptr::copy_nonoverlapping(address.as_ptr(), addr.cast::<u8>(), n) };
    // SAFETY: checked by `address_capacity`.
    let _ = unsafe { ffi::write(len, n as i32) };
}

/// A transfer's outcome: `Done` writes the counts; `Pending` is `WSA_IO_PENDING` for an
/// overlapped call and a provider bug otherwise.
///
/// # Safety
/// `bytes` and `flags` passed [`out_u32`] and are writable.
pub(crate) unsafe fn finish_transfer(
    transfer: Transfer,
    overlapped: bool,
    bytes: *mut u32,
    flags: *mut u32,
) -> Result<i32, WsaError> {
    if let Transfer::Done {
        bytes: n,
        flags: out_flags,
    } = transfer
    {
        // SAFETY: the caller's contract.
        unsafe {
            put_u32(bytes, n);
            put_u32(flags, out_flags);
        }
    }
    transferred(transfer, overlapped)
}

/// The return value of a send or receive whose out-parameters are already written (by the
/// provider below a layer, which was handed the caller's).
#[inline]
pub(crate) fn transferred(transfer: Transfer, overlapped: bool) -> Result<i32, WsaError> {
    match transfer {
        Transfer::Done { .. } => Ok(0),
        Transfer::Pending if overlapped => Err(WsaError::WSA_IO_PENDING),
        Transfer::Pending => {
            tracing::error!("a non-overlapped call was answered `Transfer::Pending`");
            Err(WsaError::WSASYSCALLFAILURE)
        }
    }
}

/// A `DWORD` argument a layer hands down as the caller passed it and only looks at: its value,
/// or 0 where the pointer is NULL or misaligned (the provider below, which reads and writes
/// it, answers `WSAEFAULT` for it). Nothing is checked, or read, unless the value is used.
///
/// # Safety
/// A non-null, aligned `ptr` is readable (ws2_32's contract for the argument).
#[inline(always)]
pub(crate) unsafe fn peek_u32(ptr: *const u32) -> u32 {
    // SAFETY: the caller's contract; `read` checks null and alignment.
    unsafe { ffi::read(ptr) }.unwrap_or(0)
}

/// The receive of `WSPRecv` / `WSPRecvFrom`: buffers, flags and overlapped request decoded and
/// copied; the dispatch gets the buffers for the call or, overlapped, for the operation.
///
/// # Safety
/// ws2_32's contract for the receive's arguments.
unsafe fn receive<'call, T>(
    buffers: *const WSABUF,
    count: u32,
    received: *mut u32,
    flags: *mut u32,
    overlapped: *mut OVERLAPPED,
    routine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    thread: *const WSATHREADID,
    run: impl FnOnce(RecvIo<'call>, u32) -> Result<(Transfer, T), WsaError>,
) -> Result<(i32, Option<T>), WsaError> {
    // SAFETY: ws2_32's contract for lpBuffers / dwBufferCount.
    let array: BufferArray = unsafe { decode_buffers(buffers, count) }?;
    // SAFETY: lpFlags is an in/out DWORD; checked for null and alignment first.
    let in_flags = unsafe { ffi::read(flags.cast_const()) }.map_err(fault)?;
    // SAFETY: ws2_32's contract for the overlapped arguments.
    let overlapped = unsafe { decode_overlapped(overlapped, routine, thread) }?;
    out_u32(received, overlapped.is_some())?;
    let is_overlapped = overlapped.is_some();
    // SAFETY: the buffers are the caller's, writable and left to the provider for the call
    // (blocking) or until the overlapped request completes (overlapped, the `OverlappedRecv`
    // keeps them only until `finish` hands the request back).
    let io = unsafe {
        match overlapped {
            None => RecvIo::Blocking(RecvBuffers::new(array)),
            Some(request) => {
                RecvIo::Overlapped(OverlappedRecv::new(RecvBuffers::new(array), request))
            }
        }
    };
    let (transfer, extra) = run(io, in_flags)?;
    let done = matches!(transfer, Transfer::Done { .. });
    // SAFETY: both checked above.
    let code = unsafe { finish_transfer(transfer, is_overlapped, received, flags) }?;
    Ok((code, done.then_some(extra)))
}

/// The send of `WSPSend` / `WSPSendTo`.
///
/// # Safety
/// ws2_32's contract for the send's arguments.
unsafe fn transmit(
    buffers: *const WSABUF,
    count: u32,
    sent: *mut u32,
    overlapped: *mut OVERLAPPED,
    routine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    thread: *const WSATHREADID,
    run: impl FnOnce(
        super::decode::SendData<'_>,
        Option<super::decode::Overlapped>,
    ) -> Result<Transfer, WsaError>,
) -> Result<i32, WsaError> {
    // SAFETY: ws2_32's contract for lpBuffers / dwBufferCount.
    let array = unsafe { decode_buffers(buffers, count) }?;
    // SAFETY: ws2_32's contract for the overlapped arguments.
    let overlapped = unsafe { decode_overlapped(overlapped, routine, thread) }?;
    out_u32(sent, overlapped.is_some())?;
    let is_overlapped = overlapped.is_some();
    // SAFETY: the bytes are the caller's and unchanged for this call at least.
    let data = unsafe { send_data(&array) };
    let transfer = run(data, overlapped)?;
    // SAFETY: checked above; a send writes no flags.
    unsafe { finish_transfer(transfer, is_overlapped, sent, std::ptr::null_mut()) }
}

pub(crate) unsafe fn accept<D: Dispatch>(
    process: &Process<D>,
    s: SOCKET,
    addr: *mut SOCKADDR,
    addrlen: *mut i32,
    lpfncondition: LPCONDITIONPROC,
    dwcallbackdata: usize,
    lperrno: *mut i32,
) -> SOCKET {
    slot(process, "WSPAccept", lperrno, INVALID_SOCKET, |d, host| {
        // SAFETY: ws2_32's contract for addr / addrlen.
        let capacity = unsafe { address_capacity(addr, addrlen) }?;
        let accepted = d.accept(host, socket_of(s), lpfncondition, dwcallbackdata)?;
        // SAFETY: checked by `address_capacity`.
        unsafe { put_address(addr, addrlen, capacity, &accepted.address) };
        Ok(accepted.socket.to_socket())
    })
}

pub(crate) unsafe fn address_to_string<D: Dispatch>(
    process: &Process<D>,
    lpsaaddress: *const SOCKADDR,
    dwaddresslength: u32,
    lpprotocolinfo: *const WSAPROTOCOL_INFOW,
    lpszaddressstring: PWSTR,
    lpdwaddressstringlength: *mut u32,
    lperrno: *mut i32,
) -> i32 {
    slot(
        process,
        "WSPAddressToString",
        lperrno,
        SOCKET_ERROR,
        |d, host| {
            let len = i32::try_from(dwaddresslength).map_err(|_| WsaError::WSAEFAULT)?;
            // SAFETY: ws2_32's contract: `dwAddressLength` bytes at lpsaAddress.
            let address = unsafe { decode_sockaddr(lpsaaddress.cast(), len) }?;
            // SAFETY: ws2_32's contract for lpProtocolInfo.
            let protocol = unsafe { decode_protocol_info_opt(lpprotocolinfo) }?;
            let length = ffi::check(lpdwaddressstringlength.cast_const()).map_err(fault)?;
            let text = d.address_to_string(host, address, protocol.as_ref())?;
            let units = ffi::to_wide_nul(&text);
            // SAFETY: checked non-null and aligned; the caller's in/out length.
            let capacity = unsafe { length.read() } as usize;
            let needed = u32::try_from(units.len()).map_err(|_| WsaError::WSAEFAULT)?;
            if units.len() > capacity {
                // SAFETY: as above.
                unsafe { length.as_ptr().write(needed) };
                return Err(WsaError::WSAEFAULT);
            }
            // SAFETY: ws2_32's contract: the string buffer holds `capacity` units; checked for null
            // and alignment.
            let out = unsafe { ffi::slice_mut(lpszaddressstring.0, units.len()) }.map_err(fault)?;
            out.copy_from_slice(&units);
            // SAFETY: as above. The length written counts the NUL, as the length passed does.
            unsafe { length.as_ptr().write(needed) };
            Ok(0)
        },
    )
}

pub(crate) unsafe fn async_select<D: Dispatch>(
    process: &Process<D>,
    s: SOCKET,
    hwnd: HWND,
    wmsg: u32,
    levent: i32,
    lperrno: *mut i32,
) -> i32 {
    slot(
        process,
        "WSPAsyncSelect",
        lperrno,
        SOCKET_ERROR,
        |d, host| {
            d.async_select(host, socket_of(s), hwnd.0.expose_provenance(), wmsg, levent)
                .map(|()| 0)
        },
    )
}

pub(crate) unsafe fn bind<D: Dispatch>(
    process: &Process<D>,
    s: SOCKET,
    name: *const SOCKADDR,
    namelen: i32,
    lperrno: *mut i32,
) -> i32 {
    slot(process, "WSPBind", lperrno, SOCKET_ERROR, |d, host| {
        // SAFETY: ws2_32's contract: `namelen` bytes at name.
        let name = unsafe { decode_sockaddr(name.cast(), namelen) }?;
        d.bind(host, socket_of(s), name).map(|()| 0)
    })
}

pub(crate) unsafe fn cancel_blocking_call<D: Dispatch>(
    process: &Process<D>,
    lperrno: *mut i32,
) -> i32 {
    slot(
        process,
        "WSPCancelBlockingCall",
        lperrno,
        SOCKET_ERROR,
        |d, host| d.cancel_blocking_call(host).map(|()| 0),
    )
}

pub(crate) unsafe fn close_socket<D: Dispatch>(
    process: &Process<D>,
    s: SOCKET,
    lperrno: *mut i32,
) -> i32 {
    slot(
        process,
        "WSPCloseSocket",
        lperrno,
        SOCKET_ERROR,
        |d, host| d.close_socket(host, socket_of(s)).map(|()| 0),
    )
}

pub(crate) unsafe fn connect<D: Dispatch>(
    process: &Process<D>,
    s: SOCKET,
    name: *const SOCKADDR,
    namelen: i32,
    lpcallerdata: *const WSABUF,
    lpcalleedata: *mut WSABUF,
    lpsqos: *const QOS,
    lpgqos: *const QOS,
    lperrno: *mut i32,
) -> i32 {
    slot(process, "WSPConnect", lperrno, SOCKET_ERROR, |d, host| {
        // SAFETY: ws2_32's contract for each argument, checked before use.
        let (name, caller, callee, sqos, gqos) = unsafe {
            (
                decode_sockaddr(name.cast(), namelen)?,
                decode_wsabuf(lpcallerdata)?,
                wsabuf_capacity(lpcalleedata)?,
                read_qos(lpsqos)?,
                read_qos(lpgqos)?,
            )
        };
        let data = d.connect(host, socket_of(s), name, caller, callee, sqos, gqos)?;
        if callee.is_some() {
            // SAFETY: checked by `wsabuf_capacity`; writable per ws2_32's contract.
            unsafe { write_wsabuf(lpcalleedata, &data) }?;
        }
        Ok(0)
    })
}

pub(crate) unsafe fn duplicate_socket<D: Dispatch>(
    process: &Process<D>,
    s: SOCKET,
    dwprocessid: u32,
    lpprotocolinfo: *mut WSAPROTOCOL_INFOW,
    lperrno: *mut i32,
) -> i32 {
    slot(
        process,
        "WSPDuplicateSocket",
        lperrno,
        SOCKET_ERROR,
        |d, host| {
            let out = ffi::check(lpprotocolinfo.cast_const()).map_err(fault)?;
            let info = d.duplicate_socket(host, socket_of(s), dwprocessid)?;
            // SAFETY: checked non-null and aligned; writable per ws2_32's contract.
            unsafe { out.as_ptr().write(info) };
            Ok(0)
        },
    )
}

pub(crate) unsafe fn enum_network_events<D: Dispatch>(
    process: &Process<D>,
    s: SOCKET,
    heventobject: HANDLE,
    lpnetworkevents: *mut WSANETWORKEVENTS,
    lperrno: *mut i32,
) -> i32 {
    slot(
        process,
        "WSPEnumNetworkEvents",
        lperrno,
        SOCKET_ERROR,
        |d, host| {
            let out = ffi::check(lpnetworkevents.cast_const()).map_err(fault)?;
            let event = heventobject.0.expose_provenance() as isize;
            let events = d.enum_network_events(host, socket_of(s), event)?;
            let raw = WSANETWORKEVENTS {
                lNetworkEvents: events.events,
                iErrorCode: events.errors,
            };
            // SAFETY: checked non-null and aligned; writable per ws2_32's contract.
            unsafe { out.as_ptr().write(raw) };
            Ok(0)
        },
    )
}

pub(crate) unsafe fn event_select<D: Dispatch>(
    process: &Process<D>,
    s: SOCKET,
    heventobject: WSAEVENT,
    lnetworkevents: i32,
    lperrno: *mut i32,
) -> i32 {
    slot(
        process,
        "WSPEventSelect",
        lperrno,
        SOCKET_ERROR,
        |d, host| {
            d.event_select(host, socket_of(s), heventobject.0, lnetworkevents)
                .map(|()| 0)
        },
    )
}

pub(crate) unsafe fn get_overlapped_result<D: Dispatch>(
    process: &Process<D>,
    s: SOCKET,
    lpoverlapped: *const OVERLAPPED,
    lpcbtransfer: *mut u32,
    fwait: BOOL,
    lpdwflags: *mut u32,
    lperrno: *mut i32,
) -> BOOL {
    slot(
        process,
        "WSPGetOverlappedResult",
        lperrno,
        BOOL(0),
        |d, host| {
            ffi::check(lpoverlapped).map_err(fault)?;
            out_u32(lpcbtransfer, false)?;
            out_u32(lpdwflags, false)?;
            let result = d.get_overlapped_result(
                host,
                socket_of(s),
                lpoverlapped.expose_provenance(),
                fwait.as_bool(),
            )?;
            // SAFETY: both checked above.
            unsafe {
                put_u32(lpcbtransfer, result.bytes);
                put_u32(lpdwflags, result.flags);
            }
            Ok(BOOL(1))
        },
    )
}

pub(crate) unsafe fn get_peer_name<D: Dispatch>(
    process: &Process<D>,
    s: SOCKET,
    name: *mut SOCKADDR,
    namelen: *mut i32,
    lperrno: *mut i32,
) -> i32 {
    slot(
        process,
        "WSPGetPeerName",
        lperrno,
        SOCKET_ERROR,
        |d, host| {
            let address = d.get_peer_name(host, socket_of(s))?;
            // SAFETY: ws2_32's contract: `*namelen` writable bytes at name.
            unsafe { write_sized(name.cast(), namelen, &address, false) }.map(|()| 0)
        },
    )
}

pub(crate) unsafe fn get_sock_name<D: Dispatch>(
    process: &Process<D>,
    s: SOCKET,
    name: *mut SOCKADDR,
    namelen: *mut i32,
    lperrno: *mut i32,
) -> i32 {
    slot(
        process,
        "WSPGetSockName",
        lperrno,
        SOCKET_ERROR,
        |d, host| {
            let address = d.get_sock_name(host, socket_of(s))?;
            // SAFETY: ws2_32's contract: `*namelen` writable bytes at name.
            unsafe { write_sized(name.cast(), namelen, &address, false) }.map(|()| 0)
        },
    )
}

pub(crate) unsafe fn get_sock_opt<D: Dispatch>(
    process: &Process<D>,
    s: SOCKET,
    level: i32,
    optname: i32,
    optval: PSTR,
    optlen: *mut i32,
    lperrno: *mut i32,
) -> i32 {
    slot(
        process,
        "WSPGetSockOpt",
        lperrno,
        SOCKET_ERROR,
        |d, host| {
            ffi::check(optlen.cast_const()).map_err(fault)?;
            let value = d.get_sock_opt(host, socket_of(s), level, optname)?;
            // SAFETY: ws2_32's contract: `*optlen` writable bytes at optval.
            unsafe { write_sized(optval.0, optlen, &value, false) }.map(|()| 0)
        },
    )
}

pub(crate) unsafe fn get_qos_by_name<D: Dispatch>(
    process: &Process<D>,
    s: SOCKET,
    lpqosname: *const WSABUF,
    lpqos: *mut QOS,
    lperrno: *mut i32,
) -> BOOL {
    slot(process, "WSPGetQOSByName", lperrno, BOOL(0), |d, host| {
        // SAFETY: ws2_32's contract for lpQOSName.
        let name = unsafe { decode_wsabuf(lpqosname) }?;
        let out = ffi::check(lpqos.cast_const()).map_err(fault)?;
        let qos = d.get_qos_by_name(host, socket_of(s), name)?;
        // SAFETY: checked non-null and aligned; writable per ws2_32's contract.
        unsafe { out.as_ptr().write(qos) };
        Ok(BOOL(1))
    })
}

pub(crate) unsafe fn ioctl<D: Dispatch>(
    process: &Process<D>,
    s: SOCKET,
    dwiocontrolcode: u32,
    lpvinbuffer: *const c_void,
    cbinbuffer: u32,
    lpvoutbuffer: *mut c_void,
    cboutbuffer: u32,
    lpcbbytesreturned: *mut u32,
    lpoverlapped: *mut OVERLAPPED,
    lpcompletionroutine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    lpthreadid: *const WSATHREADID,
    lperrno: *mut i32,
) -> i32 {
    slot(process, "WSPIoctl", lperrno, SOCKET_ERROR, |d, host| {
        let input: &[u8] = if cbinbuffer == 0 {
            &[]
        } else if lpvinbuffer.is_null() {
            return Err(WsaError::WSAEFAULT);
        } else {
            // SAFETY: ws2_32's contract: `cbInBuffer` readable bytes.
            unsafe { ffi::slice(lpvinbuffer.cast::<u8>(), cbinbuffer as usize) }.map_err(fault)?
        };
        if cboutbuffer > 0 && lpvoutbuffer.is_null() {
            return Err(WsaError::WSAEFAULT);
        }
        // SAFETY: ws2_32's contract for the overlapped arguments.
        let overlapped =
            unsafe { decode_overlapped(lpoverlapped, lpcompletionroutine, lpthreadid) }?;
        out_u32(lpcbbytesreturned, overlapped.is_some())?;
        let output = d.ioctl(
            host,
            socket_of(s),
            dwiocontrolcode,
            input,
            cboutbuffer,
            overlapped,
        )?;
        if output.len() > cboutbuffer as usize {
            return Err(WsaError::WSAEFAULT);
        }
        if !output.is_empty() {
            // SAFETY: `cbOutBuffer >= output.len()` writable bytes per ws2_32's contract,
            // checked non-null.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    output.as_ptr(),
                    lpvoutbuffer.cast::<u8>(),
                    output.len(),
                )
            };
        }
        // SAFETY: checked by `out_u32`.
        unsafe { put_u32(lpcbbytesreturned, output.len() as u32) };
        Ok(0)
    })
}

pub(crate) unsafe fn join_leaf<D: Dispatch>(
    process: &Process<D>,
    s: SOCKET,
    name: *const SOCKADDR,
    namelen: i32,
    lpcallerdata: *const WSABUF,
    lpcalleedata: *mut WSABUF,
    lpsqos: *const QOS,
    lpgqos: *const QOS,
    dwflags: u32,
    lperrno: *mut i32,
) -> SOCKET {
    slot(
        process,
        "WSPJoinLeaf",
        lperrno,
        INVALID_SOCKET,
        |d, host| {
            // SAFETY: ws2_32's contract for each argument, checked before use.
            let (name, caller, callee, sqos) = unsafe {
                (
                    decode_sockaddr(name.cast(), namelen)?,
                    decode_wsabuf(lpcallerdata)?,
                    wsabuf_capacity(lpcalleedata)?,
                    read_qos(lpsqos)?,
                )
            };
            // SAFETY: as above (lpGQOS is reserved; only checked).
            unsafe { read_qos(lpgqos) }?;
            let joined = d.join_leaf(host, socket_of(s), name, caller, sqos, dwflags)?;
            if callee.is_some() {
                // SAFETY: checked by `wsabuf_capacity`: no callee data.
                unsafe { write_wsabuf(lpcalleedata, &[]) }?;
            }
            Ok(joined.to_socket())
        },
    )
}

pub(crate) unsafe fn listen<D: Dispatch>(
    process: &Process<D>,
    s: SOCKET,
    backlog: i32,
    lperrno: *mut i32,
) -> i32 {
    slot(process, "WSPListen", lperrno, SOCKET_ERROR, |d, host| {
        d.listen(host, socket_of(s), backlog).map(|()| 0)
    })
}

/// `WSPRecv`. The metadata types `lpErrno` as `const int*` here; it is the usual out-pointer.
pub(crate) unsafe fn recv<D: Dispatch>(
    process: &Process<D>,
    s: SOCKET,
    lpbuffers: *const WSABUF,
    dwbuffercount: u32,
    lpnumberofbytesrecvd: *mut u32,
    lpflags: *mut u32,
    lpoverlapped: *mut OVERLAPPED,
    lpcompletionroutine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    lpthreadid: *const WSATHREADID,
    lperrno: *const i32,
) -> i32 {
    slot(
        process,
        "WSPRecv",
        lperrno.cast_mut(),
        SOCKET_ERROR,
        |d, host| {
            // SAFETY: ws2_32's contract for the receive's arguments.
            let (code, _) = unsafe {
                receive(
                    lpbuffers,
                    dwbuffercount,
                    lpnumberofbytesrecvd,
                    lpflags,
                    lpoverlapped,
                    lpcompletionroutine,
                    lpthreadid,
                    |io, flags| Ok((d.recv(host, socket_of(s), io, flags)?, ())),
                )
            }?;
            Ok(code)
        },
    )
}

pub(crate) unsafe fn recv_disconnect<D: Dispatch>(
    process: &Process<D>,
    s: SOCKET,
    lpinbounddisconnectdata: *const WSABUF,
    lperrno: *mut i32,
) -> i32 {
    slot(
        process,
        "WSPRecvDisconnect",
        lperrno,
        SOCKET_ERROR,
        |d, host| {
            // SAFETY: ws2_32's contract for the inbound WSABUF.
            let capacity = unsafe { wsabuf_capacity(lpinbounddisconnectdata) }?;
            let data = d.recv_disconnect(host, socket_of(s), capacity)?;
            if capacity.is_some() {
                // SAFETY: checked by `wsabuf_capacity`; the metadata's `const` is the header's
                // LPWSABUF, which the provider fills.
                unsafe { write_wsabuf(lpinbounddisconnectdata.cast_mut(), &data) }?;
            }
            Ok(0)
        },
    )
}

pub(crate) unsafe fn recv_from<D: Dispatch>(
    process: &Process<D>,
    s: SOCKET,
    lpbuffers: *const WSABUF,
    dwbuffercount: u32,
    lpnumberofbytesrecvd: *mut u32,
    lpflags: *mut u32,
    lpfrom: *mut SOCKADDR,
    lpfromlen: *mut i32,
    lpoverlapped: *mut OVERLAPPED,
    lpcompletionroutine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    lpthreadid: *const WSATHREADID,
    lperrno: *mut i32,
) -> i32 {
    slot(process, "WSPRecvFrom", lperrno, SOCKET_ERROR, |d, host| {
        // SAFETY: ws2_32's contract for lpFrom / lpFromlen.
        let capacity = unsafe { address_capacity(lpfrom, lpfromlen) }?;
        // SAFETY: ws2_32's contract for the receive's arguments.
        let (code, from) = unsafe {
            receive(
                lpbuffers,
                dwbuffercount,
                lpnumberofbytesrecvd,
                lpflags,
                lpoverlapped,
                lpcompletionroutine,
                lpthreadid,
                |io, flags| d.recv_from(host, socket_of(s), io, flags),
            )
        }?;
        if let Some(from) = from {
            // SAFETY: checked by `address_capacity`.
            unsafe { put_address(lpfrom, lpfromlen, capacity, &from) };
        }
        Ok(code)
    })
}

pub(crate) unsafe fn select<D: Dispatch>(
    process: &Process<D>,
    _nfds: i32,
    readfds: *mut FD_SET,
    writefds: *mut FD_SET,
    exceptfds: *mut FD_SET,
    timeout: *const TIMEVAL,
    lperrno: *mut i32,
) -> i32 {
    slot(process, "WSPSelect", lperrno, SOCKET_ERROR, |d, host| {
        // SAFETY: ws2_32's contract for each set and the timeout.
        let sets = unsafe {
            SelectSets {
                read: decode_fd_set(readfds)?,
                write: decode_fd_set(writefds)?,
                except: decode_fd_set(exceptfds)?,
                timeout: decode_timeout(timeout)?,
            }
        };
        if sets.read.is_none() && sets.write.is_none() && sets.except.is_none() {
            return Err(WsaError::WSAEINVAL);
        }
        let asked = sets.clone();
        let ready = d.select(host, sets)?;
        let mut total = 0;
        for (ptr, asked, ready) in [
            (readfds, &asked.read, &ready.read),
            (writefds, &asked.write, &ready.write),
            (exceptfds, &asked.except, &ready.except),
        ] {
            if let Some(asked) = asked {
                total += asked.iter().filter(|s| ready.contains(s)).count();
                // SAFETY: decoded by `decode_fd_set`; writable per ws2_32's contract.
                unsafe { write_fd_set(ptr, asked, ready) };
            }
        }
        Ok(total as i32)
    })
}

pub(crate) unsafe fn send<D: Dispatch>(
    process: &Process<D>,
    s: SOCKET,
    lpbuffers: *const WSABUF,
    dwbuffercount: u32,
    lpnumberofbytessent: *mut u32,
    dwflags: u32,
    lpoverlapped: *mut OVERLAPPED,
    lpcompletionroutine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    lpthreadid: *const WSATHREADID,
    lperrno: *mut i32,
) -> i32 {
    slot(process, "WSPSend", lperrno, SOCKET_ERROR, |d, host| {
        // SAFETY: ws2_32's contract for the send's arguments.
        unsafe {
            transmit(
                lpbuffers,
                dwbuffercount,
                lpnumberofbytessent,
                lpoverlapped,
                lpcompletionroutine,
                lpthreadid,
                |data, overlapped| d.send(host, socket_of(s), data, dwflags, overlapped),
            )
        }
    })
}

pub(crate) unsafe fn send_disconnect<D: Dispatch>(
    process: &Process<D>,
    s: SOCKET,
    lpoutbounddisconnectdata: *const WSABUF,
    lperrno: *mut i32,
) -> i32 {
    slot(
        process,
        "WSPSendDisconnect",
        lperrno,
        SOCKET_ERROR,
        |d, host| {
            // SAFETY: ws2_32's contract for the outbound WSABUF.
            let data = unsafe { decode_wsabuf(lpoutbounddisconnectdata) }?;
            d.send_disconnect(host, socket_of(s), data).map(|()| 0)
        },
    )
}

pub(crate) unsafe fn send_to<D: Dispatch>(
    process: &Process<D>,
    s: SOCKET,
    lpbuffers: *const WSABUF,
    dwbuffercount: u32,
    lpnumberofbytessent: *mut u32,
    dwflags: u32,
    lpto: *const SOCKADDR,
    itolen: i32,
    lpoverlapped: *mut OVERLAPPED,
    lpcompletionroutine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    lpthreadid: *const WSATHREADID,
    lperrno: *mut i32,
) -> i32 {
    slot(process, "WSPSendTo", lperrno, SOCKET_ERROR, |d, host| {
        // SAFETY: ws2_32's contract: `iTolen` bytes at lpTo.
        let to = unsafe { decode_sockaddr(lpto.cast(), itolen) }?;
        // SAFETY: ws2_32's contract for the send's arguments.
        unsafe {
            transmit(
                lpbuffers,
                dwbuffercount,
                lpnumberofbytessent,
                lpoverlapped,
                lpcompletionroutine,
                lpthreadid,
                |data, overlapped| d.send_to(host, socket_of(s), data, dwflags, to, overlapped),
            )
        }
    })
}

pub(crate) unsafe fn set_sock_opt<D: Dispatch>(
    process: &Process<D>,
    s: SOCKET,
    level: i32,
    optname: i32,
    optval: PCSTR,
    optlen: i32,
    lperrno: *mut i32,
) -> i32 {
    slot(
        process,
        "WSPSetSockOpt",
        lperrno,
        SOCKET_ERROR,
        |d, host| {
            // SAFETY: ws2_32's contract: `optlen` readable bytes at optval.
            let option = unsafe { decode_sock_opt(level, optname, optval.0, optlen) }?;
            d.set_sock_opt(host, socket_of(s), option).map(|()| 0)
        },
    )
}

pub(crate) unsafe fn shutdown<D: Dispatch>(
    process: &Process<D>,
    s: SOCKET,
    how: i32,
    lperrno: *mut i32,
) -> i32 {
    slot(process, "WSPShutdown", lperrno, SOCKET_ERROR, |d, host| {
        let how = super::decode::How::decode(how)?;
        d.shutdown(host, socket_of(s), how).map(|()| 0)
    })
}

pub(crate) unsafe fn socket<D: Dispatch>(
    process: &Process<D>,
    af: i32,
    r#type: i32,
    protocol: i32,
    lpprotocolinfo: *const WSAPROTOCOL_INFOW,
    g: u32,
    dwflags: u32,
    lperrno: *mut i32,
) -> SOCKET {
    slot(process, "WSPSocket", lperrno, INVALID_SOCKET, |d, host| {
        // SAFETY: ws2_32's contract for lpProtocolInfo.
        let info = unsafe { decode_protocol_info_opt(lpprotocolinfo) }?;
        let socket = d.socket(host, af, r#type, protocol, info.as_ref(), g, dwflags)?;
        Ok(socket.to_socket())
    })
}

pub(crate) unsafe fn string_to_address<D: Dispatch>(
    process: &Process<D>,
    addressstring: PCWSTR,
    addressfamily: i32,
    lpprotocolinfo: *const WSAPROTOCOL_INFOW,
    lpaddress: *mut SOCKADDR,
    lpaddresslength: *mut i32,
    lperrno: *mut i32,
) -> i32 {
    slot(
        process,
        "WSPStringToAddress",
        lperrno,
        SOCKET_ERROR,
        |d, host| {
            // SAFETY: ws2_32's contract: a NUL-terminated string; searched within a bound.
            let text = match unsafe { ffi::wide_str(addressstring.0, MAX_ADDRESS_STRING) } {
                Ok(units) => String::from_utf16(units).map_err(|_| WsaError::WSAEINVAL)?,
                Err(winprov_core::PtrError::Unterminated { .. }) => {
                    return Err(WsaError::WSAEINVAL);
                }
                Err(error) => return Err(fault(error)),
            };
            // SAFETY: ws2_32's contract for lpProtocolInfo.
            let protocol = unsafe { decode_protocol_info_opt(lpprotocolinfo) }?;
            let address = d.string_to_address(host, &text, addressfamily, protocol.as_ref())?;
            // SAFETY: ws2_32's contract: `*lpAddressLength` writable bytes at lpAddress.
            unsafe { write_sized(lpaddress.cast(), lpaddresslength, &address, true) }.map(|()| 0)
        },
    )
}
