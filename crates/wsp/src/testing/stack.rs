//! A layered provider stacked on a base provider in one test process (feature `testing`): the
//! ws2_32 simulator (`testing::winsock`) starts the layer with a chain entry
//! [layer, base]; the layer finds the base in an in-process catalog ([`catalog`]) and starts it
//! with the same upcall table; the base is [`abi::Base`](crate::abi::Base) over the in-memory
//! transport ([`Memory`]), with a `WSPStartup` of its own ([`base_startup`]).
//!
//! [`layer_process!`](crate::layer_process) declares the layer's side: its process (the
//! `static` `export_provider!` would make, over this catalog instead of the system's, relaying
//! its overlapped requests through the simulator's ports) and its `WSPStartup`.
//!
//! ```
//! use winprov_wsp::layer::{GUID, NonIfs, Opened};
//! use winprov_wsp::testing::stack;
//! use winprov_wsp::testing::winsock::Winsock;
//! use winprov_wsp::Layer;
//!
//! #[derive(Default)]
//! struct Transparent;
//!
//! impl Layer for Transparent {
//!     type Handles = NonIfs;
//!     type Socket = ();
//!     const PROVIDER_ID: GUID = GUID::from_u128(0x7769_6e70_726f_7600_1a7e_0000_0000_00aa);
//!     fn open(&self, _: &Opened<'_>) {}
//! }
//!
//! winprov_wsp::layer_process!(mod transparent: Transparent = Transparent::default);
//!
//! fn main() {
//!     let entry = stack::chain_entry(Transparent::PROVIDER_ID, 0);
//!     let ws = Winsock::start(transparent::startup, entry).unwrap();
//!     let socket = ws.socket(2, 1, 6).unwrap();
//!     assert_eq!(ws.handle(socket).unwrap().catalog_entry_id, stack::CHAIN);
//!     assert_eq!(stack::base().dispatch().unwrap().handles(), 1, "one socket below");
//!     ws.close(socket).unwrap();
//!     ws.finish();
//! }
//! ```

use super::winsock::{self, Startup};
use crate::abi::{Base, Export, InProcess, Process};
use crate::memory::Memory;
use winprov_bindings::windows_core::GUID;
use winprov_bindings::ws2spi::{WSAPROTOCOL_INFOW, WSPDATA, WSPPROC_TABLE, WSPUPCALLTABLE};

/// The layer's hidden entry.
pub const HIDDEN: u32 = 2001;
/// The base provider's entry.
pub const BASE_ENTRY: u32 = 2002;
/// The chain [layer, base].
pub const CHAIN: u32 = 2003;
/// The base provider's GUID.
pub const BASE_PROVIDER: GUID = GUID::from_u128(0x7769_6e70_726f_7600_ba5e_0000_0000_0001);
/// The base provider's DLL path, as the catalog has it.
pub const BASE_DLL: &str = "%SystemRoot%\\system32\\winprov-memory-base.dll";

/// A TCP/IPv4 catalog entry: `id`, of `provider`, with the protocol chain `chain` (empty: a
/// layer's hidden entry) and the service flags `flags`.
pub fn entry(id: u32, provider: GUID, chain: &[u32], flags: u32) -> WSAPROTOCOL_INFOW {
    let mut info = WSAPROTOCOL_INFOW {
        dwServiceFlags1: flags,
        ProviderId: provider,
        dwCatalogEntryId: id,
        iVersion: 2,
        iAddressFamily: 2,
        iMaxSockAddr: 28,
        iMinSockAddr: 16,
        iSocketType: 1,
        iProtocol: 6,
        ..WSAPROTOCOL_INFOW::default()
    };
    info.ProtocolChain.ChainLen = chain.len() as i32;
    info.ProtocolChain.ChainEntries[..chain.len()].copy_from_slice(chain);
    for (unit, out) in "winprov stacked protocol"
        .encode_utf16()
        .zip(info.szProtocol.iter_mut())
    {
        *out = unit;
    }
    info
}

/// The base provider's own entry.
pub fn base_entry() -> WSAPROTOCOL_INFOW {
    entry(BASE_ENTRY, BASE_PROVIDER, &[BASE_ENTRY], 0)
}

/// The chain entry of the layer `layer` (its provider GUID) over the base, with the service
/// flags `flags`: what ws2_32 starts the layer with.
pub fn chain_entry(layer: GUID, flags: u32) -> WSAPROTOCOL_INFOW {
    entry(CHAIN, layer, &[HIDDEN, BASE_ENTRY], flags)
}

/// The catalog's entries: the layer's hidden entry, the base's, the chain.
pub fn entries(layer: GUID) -> Vec<WSAPROTOCOL_INFOW> {
    vec![
        entry(HIDDEN, layer, &[], 0),
        base_entry(),
        chain_entry(layer, 0),
    ]
}

/// The in-process catalog the layer `layer` finds the base in.
pub fn catalog(layer: GUID) -> InProcess {
    // SAFETY: `memory_base_startup` is the base's generated WSPStartup (abi::startup::startup).
    unsafe {
        InProcess::new(entries(layer)).with_provider(
            BASE_PROVIDER,
            BASE_DLL,
            Some(memory_base_startup),
        )
    }
}

enum BaseExport {}

static BASE: Process<Base<Memory>> = Process::new(|| {
    Base::new(Memory::new()).completing_with(winsock::WPUCompleteOverlappedRequest)
});

impl Export for BaseExport {
    type Dispatch = Base<Memory>;
    fn process() -> &'static Process<Base<Memory>> {
        &BASE
    }
}

unsafe extern "system" fn memory_base_startup(
    version: u16,
    data: *const WSPDATA,
    info: *const WSAPROTOCOL_INFOW,
    upcalls: WSPUPCALLTABLE,
    table: *mut WSPPROC_TABLE,
) -> i32 {
    // SAFETY: forwarded from its caller, under WSPStartup's contract.
    let result =
        unsafe { crate::abi::startup::startup::<BaseExport>(version, data, info, upcalls, table) };
    if result == 0 {
        // SAFETY: the proc table the caller gave, just filled by the base's startup.
        let table = unsafe { &mut *table };
        extensions::wrap(table);
    }
    result
}

pub use extensions::{Answer, accept_contexts, answer_extensions, base_extension, held, release};

/// The base's extension functions (`AcceptEx`, `ConnectEx`, `DisconnectEx`,
/// `GetAcceptExSockaddrs`), played on its own slots for the layers above it: [`abi::Base`]
/// hands out none. Each does its work at once (connect and send, accept and receive,
/// shutdown) and answers as [`answer_extensions`] says: at once, pending until [`release`]
/// (a close of the socket aborts it first, as a provider's close must), or failed. The base's
/// `WSPIoctl`, `WSPSetSockOpt` (`SO_UPDATE_ACCEPT_CONTEXT`, recorded: [`accept_contexts`]),
/// `WSPCloseSocket` and `WSPCleanup` are wrapped for them.
///
/// [`abi::Base`]: crate::abi::Base
mod extensions {
    use super::BASE;
    use crate::abi::layer::{
        AcceptExFn, ConnectExFn, DisconnectExFn, SO_UPDATE_ACCEPT_CONTEXT, WSAID_ACCEPTEX,
        WSAID_CONNECTEX, WSAID_DISCONNECTEX, WSAID_GETACCEPTEXSOCKADDRS, set_last_error,
    };
    use crate::abi::{Dispatch, Socket};
    use crate::testing::winsock::{self, SIO_GET_EXTENSION_FUNCTION_POINTER};
    use core::ffi::c_void;
    use std::sync::Mutex;
    use winprov_bindings::windows_core::{BOOL, GUID, PCSTR, PSTR};
    use winprov_bindings::ws2spi::{
        INVALID_SOCKET, LPWSAOVERLAPPED_COMPLETION_ROUTINE, OVERLAPPED, SOCKADDR, SOCKET,
        SOCKET_ERROR, SOL_SOCKET, WSABUF, WSATHREADID, WSPPROC_TABLE,
    };
    use winprov_core::WsaError;

    /// How the base's extension functions answer.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Answer {
        /// Done at once (completed through `WPUCompleteOverlappedRequest` before the call
        /// returns `TRUE`: the packet comes, as for any request on a socket bound to a port).
        AtOnce,
        /// Pending (`WSA_IO_PENDING`) until [`release`], or the socket's close.
        Pending,
        /// Failed with this error, with nothing done.
        Fail(WsaError),
    }

    /// A pending request: the socket it completes on, its `WSAOVERLAPPED`, its count.
    #[derive(Clone, Copy, Debug)]
    struct Held {
        socket: usize,
        overlapped: usize,
        bytes: u32,
    }

    static ANSWER: Mutex<Answer> = Mutex::new(Answer::AtOnce);
    static HELD: Mutex<Vec<Held>> = Mutex::new(Vec::new());
    /// The base's own table.
    static BELOW: Mutex<Option<WSPPROC_TABLE>> = Mutex::new(None);
    /// Accept sockets and the connection `AcceptEx` accepted for each (closed with them).
    static ACCEPTED: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());
    /// `SO_UPDATE_ACCEPT_CONTEXT`s: the accept socket and the listener it named.
    static CONTEXTS: Mutex<Vec<(Socket, Socket)>> = Mutex::new(Vec::new());

    fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        mutex.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How the base's extension functions answer from now on (until its final cleanup, which
    /// goes back to [`Answer::AtOnce`]).
    pub fn answer_extensions(answer: Answer) {
        *lock(&ANSWER) = answer;
    }

    /// Completes every pending request with success; how many there were.
    pub fn release() -> usize {
        let held = std::mem::take(&mut *lock(&HELD));
        for request in &held {
            complete(request.socket, request.overlapped, 0, request.bytes);
        }
        held.len()
    }

    /// Requests pending below.
    pub fn held() -> usize {
        lock(&HELD).len()
    }

    /// The `SO_UPDATE_ACCEPT_CONTEXT`s the base was given: (accept socket, listener), its
    /// own handles.
    pub fn accept_contexts() -> Vec<(Socket, Socket)> {
        lock(&CONTEXTS).clone()
    }

    /// The base's own function for an extension `guid`.
    pub fn base_extension(guid: GUID) -> Option<usize> {
        let function: *const () = match guid {
            g if g == WSAID_ACCEPTEX => accept_ex as AcceptExFn as *const (),
            g if g == WSAID_CONNECTEX => connect_ex as ConnectExFn as *const (),
            g if g == WSAID_DISCONNECTEX => disconnect_ex as DisconnectExFn as *const (),
            g if g == WSAID_GETACCEPTEXSOCKADDRS => {
                get_accept_ex_sockaddrs as GetAcceptExSockaddrsFn as *const ()
            }
            _ => return None,
        };
        Some(function.expose_provenance())
    }

    pub(super) fn wrap(table: &mut WSPPROC_TABLE) {
        *lock(&BELOW) = Some(*table);
        table.lpWSPIoctl = Some(ioctl);
        table.lpWSPSetSockOpt = Some(set_sock_opt);
        table.lpWSPCloseSocket = Some(close_socket);
        table.lpWSPCleanup = Some(cleanup);
    }

    fn below() -> WSPPROC_TABLE {
        lock(&BELOW).expect("the base was started")
    }

    /// Whether `socket` is one of the base's own handles (not a layer's, which ws2_32 also
    /// made).
    fn knows(socket: usize) -> bool {
        winsock::handle_entry(socket) == Some(super::BASE_ENTRY)
            && BASE
                .dispatch()
                .is_some_and(|base| base.knows_socket(Socket::from_raw(socket)))
    }

    /// Completes the base's request `overlapped` on `socket`, as a non-IFS provider does.
    fn complete(socket: usize, overlapped: usize, error: u32, bytes: u32) {
        let mut errno = 0;
        // SAFETY: a pending request's `WSAOVERLAPPED` (the layer's, kept until its packet
        // comes); the simulator's export, with the base's own handle.
        unsafe {
            crate::abi::write_result(overlapped, error, 0);
            winsock::WPUCompleteOverlappedRequest(
                SOCKET(socket),
                std::ptr::with_exposed_provenance_mut(overlapped),
                error,
                bytes,
                &mut errno,
            );
        }
    }

    /// Answers a request whose work is done with `bytes`, as [`Answer`] says.
    fn finish(socket: SOCKET, overlapped: *mut OVERLAPPED, bytes: u32, count: *mut u32) -> BOOL {
        let answer = *lock(&ANSWER);
        if overlapped.is_null() {
            return BOOL::from(true);
        }
        match answer {
            Answer::Pending => {
                lock(&HELD).push(Held {
                    socket: socket.0,
                    overlapped: overlapped.expose_provenance(),
                    bytes,
                });
                set_last_error(WsaError::WSA_IO_PENDING.raw());
                BOOL::from(false)
            }
            _ => {
                complete(socket.0, overlapped.expose_provenance(), 0, bytes);
                if !count.is_null() {
                    // SAFETY: the caller's out-parameter.
                    unsafe { count.write(bytes) };
                }
                BOOL::from(true)
            }
        }
    }

    /// The error a call fails with before doing anything, if [`Answer::Fail`].
    fn refused() -> Option<BOOL> {
        match *lock(&ANSWER) {
            Answer::Fail(error) => {
                set_last_error(error.raw());
                Some(BOOL::from(false))
            }
            _ => None,
        }
    }

    fn failed(errno: i32) -> BOOL {
        set_last_error(errno);
        BOOL::from(false)
    }

    unsafe extern "system" fn connect_ex(
        s: SOCKET,
        name: *const SOCKADDR,
        namelen: i32,
        send: *const c_void,
        send_len: u32,
        sent: *mut u32,
        overlapped: *mut OVERLAPPED,
    ) -> BOOL {
        if let Some(refused) = refused() {
            return refused;
        }
        let below = below();
        let mut errno = 0;
        // SAFETY: the base's own slot, with the caller's name.
        let connected = unsafe {
            below.lpWSPConnect.expect("started")(
                s,
                name,
                namelen,
                std::ptr::null(),
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
                &mut errno,
            )
        };
        if connected == SOCKET_ERROR {
            return failed(errno);
        }
        let mut bytes = 0u32;
        if send_len > 0 {
            let buffer = WSABUF {
                len: send_len,
                buf: PSTR(send.cast_mut().cast()),
            };
            // SAFETY: the base's own slot, with the caller's data, sent before it returns.
            let result = unsafe {
                below.lpWSPSend.expect("started")(
                    s,
                    &buffer,
                    1,
                    &mut bytes,
                    0,
                    std::ptr::null_mut(),
                    None,
                    std::ptr::null(),
                    &mut errno,
                )
            };
            if result == SOCKET_ERROR {
                return failed(errno);
            }
        }
        finish(s, overlapped, bytes, sent)
    }

    unsafe extern "system" fn disconnect_ex(
        s: SOCKET,
        overlapped: *mut OVERLAPPED,
        _flags: u32,
        _reserved: u32,
    ) -> BOOL {
        if let Some(refused) = refused() {
            return refused;
        }
        let mut errno = 0;
        // SAFETY: the base's own slot: the connection's FIN.
        if unsafe { below().lpWSPShutdown.expect("started")(s, 1, &mut errno) } == SOCKET_ERROR {
            return failed(errno);
        }
        finish(s, overlapped, 0, std::ptr::null_mut())
    }

    #[allow(clippy::too_many_arguments)]
    unsafe extern "system" fn accept_ex(
        listen: SOCKET,
        accept: SOCKET,
        buffer: *mut c_void,
        receive: u32,
        _local: u32,
        _remote: u32,
        received: *mut u32,
        overlapped: *mut OVERLAPPED,
    ) -> BOOL {
        if let Some(refused) = refused() {
            return refused;
        }
        if !knows(listen.0) || !knows(accept.0) {
            // A handle of the layer's, not translated.
            return failed(WsaError::WSAENOTSOCK.raw());
        }
        let below = below();
        let mut errno = 0;
        // SAFETY: the base's own slot; no address wanted, no condition.
        let connection = unsafe {
            below.lpWSPAccept.expect("started")(
                listen,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                None,
                0,
                &mut errno,
            )
        };
        if connection == INVALID_SOCKET {
            return failed(errno);
        }
        lock(&ACCEPTED).push((accept.0, connection.0));
        let mut bytes = 0u32;
        if receive > 0 {
            let buffer = WSABUF {
                len: receive,
                buf: PSTR(buffer.cast()),
            };
            let mut flags = 0u32;
            // SAFETY: the base's own slot, into the caller's buffer, before it returns.
            let result = unsafe {
                below.lpWSPRecv.expect("started")(
                    connection,
                    &buffer,
                    1,
                    &mut bytes,
                    &mut flags,
                    std::ptr::null_mut(),
                    None,
                    std::ptr::null(),
                    &mut errno,
                )
            };
            if result == SOCKET_ERROR {
                return failed(errno);
            }
        }
        finish(listen, overlapped, bytes, received)
    }

    type GetAcceptExSockaddrsFn = unsafe extern "system" fn(
        *const c_void,
        u32,
        u32,
        u32,
        *mut *mut SOCKADDR,
        *mut i32,
        *mut *mut SOCKADDR,
        *mut i32,
    );

    /// Reports no address (the base's `AcceptEx` writes none).
    #[allow(clippy::too_many_arguments)]
    unsafe extern "system" fn get_accept_ex_sockaddrs(
        _buffer: *const c_void,
        _receive: u32,
        _local: u32,
        _remote: u32,
        local_address: *mut *mut SOCKADDR,
        local_len: *mut i32,
        remote_address: *mut *mut SOCKADDR,
        remote_len: *mut i32,
    ) {
        for (address, len) in [(local_address, local_len), (remote_address, remote_len)] {
            if !address.is_null() && !len.is_null() {
                // SAFETY: the caller's out-parameters.
                unsafe {
                    address.write(std::ptr::null_mut());
                    len.write(0);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    unsafe extern "system" fn ioctl(
        s: SOCKET,
        code: u32,
        input: *const c_void,
        input_len: u32,
        output: *mut c_void,
        output_len: u32,
        returned: *mut u32,
        overlapped: *mut OVERLAPPED,
        routine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
        thread: *const WSATHREADID,
        errno: *mut i32,
    ) -> i32 {
        if code != SIO_GET_EXTENSION_FUNCTION_POINTER {
            // SAFETY: forwarded unchanged, under this function's own contract.
            return unsafe {
                below().lpWSPIoctl.expect("started")(
                    s, code, input, input_len, output, output_len, returned, overlapped, routine,
                    thread, errno,
                )
            };
        }
        // SAFETY: the caller's contract: a GUID in, a pointer's room out, a DWORD count.
        unsafe {
            let function = (input_len as usize >= size_of::<GUID>())
                .then(|| input.cast::<GUID>().read_unaligned())
                .and_then(base_extension);
            let Some(function) = function.filter(|_| output_len as usize >= size_of::<usize>())
            else {
                errno.write(WsaError::WSAEOPNOTSUPP.raw());
                return SOCKET_ERROR;
            };
            output.cast::<usize>().write_unaligned(function);
            returned.write(size_of::<usize>() as u32);
        }
        0
    }

    unsafe extern "system" fn set_sock_opt(
        s: SOCKET,
        level: i32,
        name: i32,
        value: PCSTR,
        len: i32,
        errno: *mut i32,
    ) -> i32 {
        if level == SOL_SOCKET && name == SO_UPDATE_ACCEPT_CONTEXT {
            let listener = (len as usize >= size_of::<usize>())
                // SAFETY: the caller's contract: `len` readable bytes.
                .then(|| unsafe { value.0.cast::<usize>().read_unaligned() });
            return match listener.filter(|l| knows(*l)) {
                Some(listener) => {
                    lock(&CONTEXTS).push((Socket::from_raw(s.0), Socket::from_raw(listener)));
                    0
                }
                None => {
                    // SAFETY: the caller's `lpErrno`.
                    unsafe { errno.write(WsaError::WSAENOTSOCK.raw()) };
                    SOCKET_ERROR
                }
            };
        }
        // SAFETY: forwarded unchanged, under this function's own contract.
        unsafe { below().lpWSPSetSockOpt.expect("started")(s, level, name, value, len, errno) }
    }

    unsafe extern "system" fn close_socket(s: SOCKET, errno: *mut i32) -> i32 {
        // A close aborts the socket's pending requests before it returns.
        let aborted: Vec<Held> = {
            let mut held = lock(&HELD);
            let (mine, others) = held.iter().partition(|h| h.socket == s.0);
            *held = others;
            mine
        };
        for request in aborted {
            let error = WsaError::WSA_OPERATION_ABORTED.raw() as u32;
            complete(request.socket, request.overlapped, error, 0);
        }
        let connections: Vec<usize> = {
            let mut accepted = lock(&ACCEPTED);
            let (mine, others) = accepted.iter().partition(|(a, _)| *a == s.0);
            *accepted = others;
            mine.into_iter().map(|(_, c)| c).collect()
        };
        let close = below().lpWSPCloseSocket.expect("started");
        for connection in connections {
            let mut ignored = 0;
            // SAFETY: the base's own slot, for a connection it accepted.
            unsafe { close(SOCKET(connection), &mut ignored) };
        }
        // SAFETY: forwarded unchanged, under this function's own contract.
        unsafe { close(s, errno) }
    }

    unsafe extern "system" fn cleanup(errno: *mut i32) -> i32 {
        // SAFETY: forwarded unchanged, under this function's own contract.
        let result = unsafe { below().lpWSPCleanup.expect("started")(errno) };
        if BASE.startups() == 0 {
            // The final cleanup: what is pending is dropped without notification (R-WSP-15).
            lock(&HELD).clear();
            lock(&ACCEPTED).clear();
            lock(&CONTEXTS).clear();
            *lock(&ANSWER) = Answer::AtOnce;
        }
        result
    }
}

/// The base provider's `WSPStartup` (to start it alone, with [`base_entry`]).
pub fn base_startup() -> Startup {
    memory_base_startup
}

/// The base provider's process: its startup count, and its [`Base`] once started.
pub fn base() -> &'static Process<Base<Memory>> {
    &BASE
}

/// Declares a layer's process for tests, stacked on the [`testing::stack`](crate::testing::stack)
/// base: `layer_process!(mod name: MyLayer = MyLayer::new)` makes a module `name` with, visible in
/// the enclosing module, `PROCESS` (the layer's `Process`: `abi::Layered` over `stack::catalog`, its overlapped
/// requests relayed through the simulator's `LayerPorts` and completed through its
/// `WPUCompleteOverlappedRequest`), `startup` (its `WSPStartup`, for `Winsock::start`) and
/// `layer()` (the author's layer, once started). `$make` (a path or a closure without
/// captures, resolved in the enclosing module) makes the layer at the first `WSPStartup`.
#[macro_export]
macro_rules! layer_process {
    ($(#[$meta:meta])* $vis:vis mod $name:ident: $layer:ty = $make:expr $(,)?) => {
        $(#[$meta])*
        $vis mod $name {
            #[allow(unused_imports)]
            use super::*;

            /// The layer's process.
            pub(super) static PROCESS: $crate::abi::Process<
                $crate::abi::Layered<$layer, $crate::abi::InProcess>,
            > = $crate::abi::Process::new(|| {
                $crate::abi::Layered::new(
                    ($make)(),
                    $crate::testing::stack::catalog(<$layer as $crate::Layer>::PROVIDER_ID),
                )
                .with_ports($crate::testing::winsock::LayerPorts)
                .completing_with($crate::testing::winsock::WPUCompleteOverlappedRequest)
            });

            #[doc(hidden)]
            pub(super) enum Export {}

            impl $crate::abi::Export for Export {
                type Dispatch = $crate::abi::Layered<$layer, $crate::abi::InProcess>;
                fn process() -> &'static $crate::abi::Process<Self::Dispatch> {
                    &PROCESS
                }
            }

            /// The layer's `WSPStartup`.
            ///
            /// # Safety
            /// ws2_32's contract for `WSPStartup`.
            pub(super) unsafe extern "system" fn startup(
                version: u16,
                data: *const $crate::__private::ws2spi::WSPDATA,
                info: *const $crate::__private::ws2spi::WSAPROTOCOL_INFOW,
                upcalls: $crate::__private::ws2spi::WSPUPCALLTABLE,
                table: *mut $crate::__private::ws2spi::WSPPROC_TABLE,
            ) -> i32 {
                // SAFETY: forwarded from the simulator, under WSPStartup's contract.
                unsafe {
                    $crate::abi::startup::startup::<Export>(version, data, info, upcalls, table)
                }
            }

            /// The author's layer, once the first `WSPStartup` made it.
            #[allow(dead_code)]
            pub(super) fn layer() -> &'static $layer {
                PROCESS
                    .dispatch()
                    .expect("the layer's first WSPStartup made it")
                    .layer()
            }
        }
    };
}
