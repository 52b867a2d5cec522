//! A non-IFS layer's extension functions: what `WSPIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER)`
//! hands out instead of the provider below's.
//!
//! An application calls an extension function directly, not through ws2_32, with the handles
//! it has: the layer's. The provider below's functions know only their own sockets, and would
//! complete the caller's request on them, so a non-IFS layer answers the ioctl with functions
//! of its own for `AcceptEx`, `ConnectEx` and `DisconnectEx`: each finds the layer's sockets,
//! calls the provider below's function (asked for once per socket, with the same ioctl on the
//! lower socket) on the lower sockets with a relayed request (`abi::relay`), and the caller's
//! request completes on the layer's handle like a relayed send's (R-WSP-14, R-WSP-16,
//! R-WSP-18). `GetAcceptExSockaddrs` takes no socket: the provider below's own is handed out.
//! Any other function (`TransmitFile`, `TransmitPackets`, `WSARecvMsg`, `WSASendMsg`, …) is
//! refused with `WSAEOPNOTSUPP`.
//!
//! What the author sees: `ConnectEx` goes through [`Layer::connect`] (without caller data) and,
//! with send data, through [`Layer::send`] as an overlapped send of that data; `AcceptEx` and
//! `DisconnectEx` have no hook at the call, and are told by [`Layer::completed`]
//! ([`Completion`](crate::layer::Completion)). An extension function reports its error with
//! `WSASetLastError`, as the application reads it.

use super::*;
use crate::abi::decode::decode_overlapped;
use core::ffi::c_void;
use winprov_bindings::windows_core::GUID;
use winprov_bindings::ws2spi::SOL_SOCKET;
use winprov_core::{boundary_with, ffi};

/// `SIO_GET_EXTENSION_FUNCTION_POINTER` (mswsock.h).
pub(crate) const SIO_GET_EXTENSION_FUNCTION_POINTER: u32 = 0xC800_0006;
/// `SO_UPDATE_ACCEPT_CONTEXT` (mswsock.h): its value is the listening socket's handle.
pub(crate) const SO_UPDATE_ACCEPT_CONTEXT: i32 = 0x700B;

/// `WSAID_ACCEPTEX` (mswsock.h).
pub(crate) const WSAID_ACCEPTEX: GUID = GUID::from_u128(0xb536_7df1_cbac_11cf_95ca_0080_5f48_a192);
/// `WSAID_CONNECTEX`.
pub(crate) const WSAID_CONNECTEX: GUID = GUID::from_u128(0x25a2_07b9_ddf3_4660_8ee9_76e5_8c74_063e);
/// `WSAID_DISCONNECTEX`.
pub(crate) const WSAID_DISCONNECTEX: GUID =
    GUID::from_u128(0x7fda_2e11_8630_436f_a031_f536_a6ee_c157);
/// `WSAID_GETACCEPTEXSOCKADDRS`.
pub(crate) const WSAID_GETACCEPTEXSOCKADDRS: GUID =
    GUID::from_u128(0xb536_7df2_cbac_11cf_95ca_0080_5f48_a192);

/// `LPFN_ACCEPTEX`.
pub(crate) type AcceptExFn = unsafe extern "system" fn(
    SOCKET,
    SOCKET,
    *mut c_void,
    u32,
    u32,
    u32,
    *mut u32,
    *mut OVERLAPPED,
) -> BOOL;
/// `LPFN_CONNECTEX`.
pub(crate) type ConnectExFn = unsafe extern "system" fn(
    SOCKET,
    *const SOCKADDR,
    i32,
    *const c_void,
    u32,
    *mut u32,
    *mut OVERLAPPED,
) -> BOOL;
/// `LPFN_DISCONNECTEX`.
pub(crate) type DisconnectExFn =
    unsafe extern "system" fn(SOCKET, *mut OVERLAPPED, u32, u32) -> BOOL;

/// The extension functions a non-IFS layer hands out; the index of each in a record's cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Extension {
    AcceptEx,
    ConnectEx,
    DisconnectEx,
    GetAcceptExSockaddrs,
}

/// How many [`Extension`]s there are.
pub(super) const EXTENSIONS: usize = 4;

impl Extension {
    fn of(guid: &GUID) -> Option<Self> {
        [
            Self::AcceptEx,
            Self::ConnectEx,
            Self::DisconnectEx,
            Self::GetAcceptExSockaddrs,
        ]
        .into_iter()
        .find(|e| e.guid() == *guid)
    }

    fn guid(self) -> GUID {
        match self {
            Self::AcceptEx => WSAID_ACCEPTEX,
            Self::ConnectEx => WSAID_CONNECTEX,
            Self::DisconnectEx => WSAID_DISCONNECTEX,
            Self::GetAcceptExSockaddrs => WSAID_GETACCEPTEXSOCKADDRS,
        }
    }
}

#[cfg(not(windows))]
thread_local! {
    static LAST_ERROR: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

/// `WSASetLastError` (a thread-local of the crate's own where there is no ws2_32).
pub(crate) fn set_last_error(code: i32) {
    #[cfg(windows)]
    // SAFETY: WSASetLastError only stores the value in thread-local state.
    unsafe {
        winprov_bindings::ws2spi::WSASetLastError(code)
    };
    #[cfg(not(windows))]
    LAST_ERROR.with(|cell| cell.set(code));
}

/// `WSAGetLastError`.
pub(crate) fn last_error() -> i32 {
    #[cfg(windows)]
    // SAFETY: WSAGetLastError only reads thread-local state.
    return unsafe { winprov_bindings::ws2spi::WSAGetLastError() }.0;
    #[cfg(not(windows))]
    LAST_ERROR.with(|cell| cell.get())
}

/// An extension function of the provider below answered `ok`: its error is the last error.
fn below_result(ok: BOOL) -> Result<(), WsaError> {
    if ok.as_bool() {
        Ok(())
    } else {
        Err(failed(last_error()))
    }
}

/// The listening socket a `SO_UPDATE_ACCEPT_CONTEXT` names (the layer's handle, which
/// `WSPSetSockOpt` translates to the provider below's).
pub(super) fn accept_context(level: i32, name: i32, value: &[u8]) -> Option<Socket> {
    const SIZE: usize = size_of::<usize>();
    if level != SOL_SOCKET || name != SO_UPDATE_ACCEPT_CONTEXT || value.len() < SIZE {
        return None;
    }
    let mut raw = [0u8; SIZE];
    raw.copy_from_slice(&value[..SIZE]);
    Some(Socket::from_raw(usize::from_ne_bytes(raw)))
}

impl<L: Layer, C: Catalog> Layered<L, C> {
    /// The provider below's extension function `which`, asked for on `r`'s lower socket once.
    fn below_extension(&self, r: &Record<L::Socket>, which: Extension) -> Result<usize, WsaError> {
        let cached = &r.extensions[which as usize];
        if let Some(function) = cached.get() {
            return Ok(*function);
        }
        let guid = which.guid();
        let (mut function, mut returned) = (0usize, 0u32);
        checked(down!(
            r,
            lpWSPIoctl(
                r.socket,
                SIO_GET_EXTENSION_FUNCTION_POINTER,
                (&raw const guid).cast(),
                size_of::<GUID>() as u32,
                (&raw mut function).cast(),
                size_of::<usize>() as u32,
                &mut returned,
                std::ptr::null_mut(),
                None,
                std::ptr::null(),
            )
        ))?;
        if function == 0 {
            return Err(WsaError::WSAEOPNOTSUPP);
        }
        Ok(*cached.get_or_init(|| function))
    }

    /// `ConnectEx` on `r`: the connect hook, the send hook for `data`, the provider below's
    /// `ConnectEx` with a relayed request.
    fn connect_ex(
        &self,
        r: &Record<L::Socket>,
        name: &[u8],
        data: Option<&[u8]>,
        request: Overlapped,
    ) -> Result<Transfer, WsaError> {
        let function = self.below_extension(r, Extension::ConnectEx)?;
        // SAFETY: what the provider below answered for WSAID_CONNECTEX (non-NULL): its
        // `LPFN_CONNECTEX`, valid while its socket's record keeps it loaded.
        let connect_ex = unsafe {
            std::mem::transmute::<*const (), ConnectExFn>(std::ptr::with_exposed_provenance(
                function,
            ))
        };
        let relay = &self.relay;
        let issued = std::cell::Cell::new(None);
        let issue = |address: &[u8], data: Option<&[u8]>, kind: Kind| {
            let down = going_down(relay, r, kind, Some(&request), &r.state)?;
            let (buffer, len) = data.map_or((std::ptr::null(), 0), |d| (d.as_ptr(), d.len()));
            let mut sent = 0u32;
            // SAFETY: the provider below's function on its own socket; the address and the
            // data are the caller's (readable until its request completes, which comes after
            // this one's), the count a live local, the request the layer's substitute.
            let ok = unsafe {
                connect_ex(
                    r.socket,
                    address.as_ptr().cast(),
                    address.len() as i32,
                    buffer.cast(),
                    len as u32,
                    &mut sent,
                    down.overlapped(),
                )
            };
            down.answer_noting(relay, (below_result(ok), sent, 0), &issued)
        };
        let transfer = std::cell::Cell::new(None);
        let mut down_connect = |args: &Connecting<'_>| {
            let done = match data {
                None => issue(args.address, None, Kind::Connect)?,
                Some(data) => {
                    let slices = [data];
                    let mut down_send =
                        |_: &Sending<'_>| issue(args.address, Some(data), Kind::Send);
                    let sending = Sending {
                        buffers: SendBuffers::Slices(&slices),
                        flags: 0,
                        to: None,
                        overlapped: true,
                    };
                    relay
                        .layer
                        .send(&r.state, Call::new(sending, &mut down_send))
                        .into_outcome()?
                }
            };
            transfer.set(Some(done));
            Ok(())
        };
        let connecting = Connecting {
            address: name,
            caller_data: None,
        };
        keeping_issued(&issued, || {
            relay
                .layer
                .connect(&r.state, Call::new(connecting, &mut down_connect))
                .into_outcome()?;
            // A connect hook that passed the call saw it go down.
            transfer.get().ok_or(WsaError::WSAEINVAL)
        })
    }

    /// `DisconnectEx` on `r` (overlapped or not): the provider below's, relayed.
    fn disconnect_ex(
        &self,
        r: &Record<L::Socket>,
        request: Option<Overlapped>,
        flags: u32,
    ) -> Result<Transfer, WsaError> {
        let function = self.below_extension(r, Extension::DisconnectEx)?;
        // SAFETY: as in `connect_ex`, for WSAID_DISCONNECTEX.
        let disconnect_ex = unsafe {
            std::mem::transmute::<*const (), DisconnectExFn>(std::ptr::with_exposed_provenance(
                function,
            ))
        };
        let down = going_down(&self.relay, r, Kind::Disconnect, request.as_ref(), &r.state)?;
        // SAFETY: the provider below's function on its own socket, with the layer's substitute
        // (or no request).
        let ok = unsafe { disconnect_ex(r.socket, down.overlapped(), flags, 0) };
        let result = below_result(ok);
        if request.is_none() && result.is_ok() {
            // Not relayed: the author is told here.
            let completion = Kind::Disconnect.completion(Ok((0, 0)));
            boundary("Layer::completed", (), || {
                self.relay.layer.completed(&r.state, completion)
            });
        }
        down.answer(&self.relay, result, 0, 0)
    }

    /// `AcceptEx` on listener `l` into `a`: the provider below's on their lower sockets,
    /// relayed on the listener, told with the accept socket's state.
    fn accept_ex(
        &self,
        l: &Record<L::Socket>,
        a: &Record<L::Socket>,
        (buffer, receive, local, remote): (*mut c_void, u32, u32, u32),
        request: Overlapped,
    ) -> Result<Transfer, WsaError> {
        if !Arc::ptr_eq(&l.lower, &a.lower) {
            // Sockets of two providers below: neither's AcceptEx knows the other's.
            return Err(WsaError::WSAEINVAL);
        }
        let function = self.below_extension(l, Extension::AcceptEx)?;
        // SAFETY: as in `connect_ex`, for WSAID_ACCEPTEX.
        let accept_ex = unsafe {
            std::mem::transmute::<*const (), AcceptExFn>(std::ptr::with_exposed_provenance(
                function,
            ))
        };
        let down = going_down(&self.relay, l, Kind::Accept, Some(&request), &a.state)?;
        let mut received = 0u32;
        // SAFETY: the provider below's function on its own sockets; the buffer is the
        // caller's (writable until its request completes, which comes after this one's), the
        // count a live local, the request the layer's substitute.
        let ok = unsafe {
            accept_ex(
                l.socket,
                a.socket,
                buffer,
                receive,
                local,
                remote,
                &mut received,
                down.overlapped(),
            )
        };
        down.answer(&self.relay, below_result(ok), received, 0)
    }
}

/// The frame of an extension function: the panic boundary, `WSANOTINITIALISED`, the count
/// written back when the request completed at once, the error set with `WSASetLastError`.
fn frame<E, L, C>(
    name: &'static str,
    count: *mut u32,
    body: impl FnOnce(&Layered<L, C>) -> Result<Transfer, WsaError>,
) -> BOOL
where
    E: Export<Dispatch = Layered<L, C>>,
    L: Layer,
    C: Catalog,
{
    let fail = |error: WsaError| {
        set_last_error(error.raw());
        BOOL::from(false)
    };
    boundary_with(
        name,
        |_| fail(WsaError::WSASYSCALLFAILURE),
        || {
            let Some(layered) = E::process().started() else {
                return fail(WsaError::WSANOTINITIALISED);
            };
            if let Err(error) = exports::out_u32(count, true) {
                return fail(error);
            }
            match body(layered) {
                Ok(Transfer::Done { bytes, .. }) => {
                    // SAFETY: checked by `out_u32` (NULL is skipped).
                    unsafe { exports::put_u32(count, bytes) };
                    BOOL::from(true)
                }
                Ok(Transfer::Pending) => fail(WsaError::WSA_IO_PENDING),
                Err(error) => fail(error),
            }
        },
    )
}

/// The caller's `WSAOVERLAPPED` of an extension function (no routine, no thread).
///
/// # Safety
/// A non-null, aligned `overlapped` points to a readable `WSAOVERLAPPED`.
unsafe fn request(overlapped: *mut OVERLAPPED) -> Result<Option<Overlapped>, WsaError> {
    // SAFETY: the caller's contract.
    unsafe { decode_overlapped(overlapped, None, std::ptr::null()) }
}

/// The layer's `ConnectEx`.
unsafe extern "system" fn connect_ex<E, L, C>(
    s: SOCKET,
    name: *const SOCKADDR,
    namelen: i32,
    send: *const c_void,
    send_len: u32,
    sent: *mut u32,
    overlapped: *mut OVERLAPPED,
) -> BOOL
where
    E: Export<Dispatch = Layered<L, C>>,
    L: Layer,
    C: Catalog,
{
    frame::<E, L, C>("ConnectEx", sent, |layered| {
        if name.is_null() || namelen <= 0 {
            return Err(WsaError::WSAEFAULT);
        }
        // SAFETY: the application's contract: `namelen` readable bytes.
        let name =
            unsafe { ffi::slice(name.cast::<u8>(), namelen as usize) }.map_err(exports::fault)?;
        let data = match (send.is_null(), send_len) {
            (_, 0) => None,
            (true, _) => return Err(WsaError::WSAEFAULT),
            // SAFETY: the application's contract: `dwSendDataLength` readable bytes, until
            // the request completes.
            (false, len) => Some(
                unsafe { ffi::slice(send.cast::<u8>(), len as usize) }.map_err(exports::fault)?,
            ),
        };
        // SAFETY: the application's contract for `lpOverlapped` (required).
        let request = unsafe { request(overlapped) }?.ok_or(WsaError::WSAEINVAL)?;
        layered.with(exports::socket_of(s), |r| {
            layered.connect_ex(r, name, data, request)
        })
    })
}

/// The layer's `DisconnectEx`.
unsafe extern "system" fn disconnect_ex<E, L, C>(
    s: SOCKET,
    overlapped: *mut OVERLAPPED,
    flags: u32,
    reserved: u32,
) -> BOOL
where
    E: Export<Dispatch = Layered<L, C>>,
    L: Layer,
    C: Catalog,
{
    frame::<E, L, C>("DisconnectEx", std::ptr::null_mut(), |layered| {
        if reserved != 0 {
            return Err(WsaError::WSAEINVAL);
        }
        // SAFETY: the application's contract for `lpOverlapped` (optional).
        let request = unsafe { request(overlapped) }?;
        layered.with(exports::socket_of(s), |r| {
            layered.disconnect_ex(r, request, flags)
        })
    })
}

/// The layer's `AcceptEx`.
#[allow(clippy::too_many_arguments)]
unsafe extern "system" fn accept_ex<E, L, C>(
    listen: SOCKET,
    accept: SOCKET,
    buffer: *mut c_void,
    receive: u32,
    local: u32,
    remote: u32,
    received: *mut u32,
    overlapped: *mut OVERLAPPED,
) -> BOOL
where
    E: Export<Dispatch = Layered<L, C>>,
    L: Layer,
    C: Catalog,
{
    frame::<E, L, C>("AcceptEx", received, |layered| {
        if buffer.is_null() {
            return Err(WsaError::WSAEFAULT);
        }
        // SAFETY: the application's contract for `lpOverlapped` (required).
        let request = unsafe { request(overlapped) }?.ok_or(WsaError::WSAEINVAL)?;
        layered.with(exports::socket_of(listen), |l| {
            layered.with(exports::socket_of(accept), |a| {
                layered.accept_ex(l, a, (buffer, receive, local, remote), request)
            })
        })
    })
}

/// `WSPIoctl`, in a layer's proc table: a non-IFS layer answers
/// `SIO_GET_EXTENSION_FUNCTION_POINTER` itself (see the [module documentation](self)); every
/// other call goes to the generated slot.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe extern "system" fn pass_ioctl<E, L, C>(
    s: SOCKET,
    code: u32,
    input: *const c_void,
    input_len: u32,
    output: *mut c_void,
    output_len: u32,
    returned: *mut u32,
    overlapped: *mut OVERLAPPED,
    routine: winprov_bindings::ws2spi::LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    thread: *const WSATHREADID,
    lperrno: *mut i32,
) -> i32
where
    E: Export<Dispatch = Layered<L, C>>,
    L: Layer,
    C: Catalog,
{
    if L::Handles::IFS || code != SIO_GET_EXTENSION_FUNCTION_POINTER {
        // SAFETY: forwarded unchanged, under this function's own contract (ws2_32's).
        return unsafe {
            exports::ioctl(
                E::process(),
                s,
                code,
                input,
                input_len,
                output,
                output_len,
                returned,
                overlapped,
                routine,
                thread,
                lperrno,
            )
        };
    }
    exports::slot(
        E::process(),
        "WSPIoctl",
        lperrno,
        SOCKET_ERROR,
        |layered, _| {
            if !overlapped.is_null() {
                // As any overlapped ioctl of a layer.
                return Err(WsaError::WSAEOPNOTSUPP);
            }
            const POINTER: usize = size_of::<usize>();
            if input.is_null() || (input_len as usize) < size_of::<GUID>() {
                return Err(WsaError::WSAEFAULT);
            }
            if output.is_null() || (output_len as usize) < POINTER {
                return Err(WsaError::WSAEFAULT);
            }
            exports::out_u32(returned, false)?;
            // SAFETY: ws2_32's contract: `cbInBuffer` (at least a GUID's) readable bytes.
            let raw = unsafe { ffi::slice(input.cast::<u8>(), size_of::<GUID>()) }
                .map_err(exports::fault)?;
            let word = |at: usize| [raw[at], raw[at + 1]];
            let guid = GUID::from_values(
                u32::from_ne_bytes([raw[0], raw[1], raw[2], raw[3]]),
                u16::from_ne_bytes(word(4)),
                u16::from_ne_bytes(word(6)),
                [
                    raw[8], raw[9], raw[10], raw[11], raw[12], raw[13], raw[14], raw[15],
                ],
            );
            let function = layered.with(exports::socket_of(s), |r| {
                let which = Extension::of(&guid).ok_or(WsaError::WSAEOPNOTSUPP)?;
                let below = layered.below_extension(r, which)?;
                let own: *const () = match which {
                    Extension::AcceptEx => accept_ex::<E, L, C> as AcceptExFn as *const (),
                    Extension::ConnectEx => connect_ex::<E, L, C> as ConnectExFn as *const (),
                    Extension::DisconnectEx => {
                        disconnect_ex::<E, L, C> as DisconnectExFn as *const ()
                    }
                    // Takes no socket: the provider below's own.
                    Extension::GetAcceptExSockaddrs => return Ok(below),
                };
                Ok(own.expose_provenance())
            })?;
            // SAFETY: `cbOutBuffer` (at least a pointer's) writable bytes per ws2_32's contract,
            // checked non-null.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    function.to_ne_bytes().as_ptr(),
                    output.cast::<u8>(),
                    POINTER,
                )
            };
            // SAFETY: checked by `out_u32`.
            unsafe { exports::put_u32(returned, POINTER as u32) };
            Ok(0)
        },
    )
}
