//! The ABI layer: the `NSPV2_ROUTINE` exports, the reading of host structures, and the Winsock
//! functions the provider side calls. With the host simulator (`testing`), which calls the
//! exports with raw pointers, the crate's only `unsafe` code lives here.
//!
//! Every export body runs inside [`winprov_core::boundary_with`]: a panic becomes the call's
//! documented failure (`SOCKET_ERROR` with `WSASYSCALLFAILURE` for the `INT` entries, a
//! completion with `WSASYSCALLFAILURE` for the `VOID` ones) and never reaches the host. Every
//! host pointer goes through [`winprov_core::ffi`] (null, alignment, terminator within a bound)
//! and bad input is answered with the documented code, never dereferenced blindly.
//!
//! The signatures are those of the SDK header and the Windows metadata: NextEx, SetServiceEx
//! and ClientSessionRundown return `VOID` and report through `WSAProviderCompleteAsyncCall`
//! (mingw-w64 declares them `int`, which is wrong).

use crate::host::{AsyncCompletion, NO_ERROR};
use crate::lookup::ResultBuffer;
use crate::query::{AfProtocol, Comparator, ControlFlags, CsAddr, Guid, Query, RegInfo, Version};
use crate::runtime::Registry;
use crate::wire::{self, BUFFER_ALIGN};
use std::ffi::c_void;
use std::sync::LazyLock;
use winprov_bindings::ws2spi::{
    AFPROTOCOLS, BLOB, CSADDR_INFO, HANDLE, NSPV2_ROUTINE, SOCKET_ERROR, WSAESETSERVICEOP,
    WSAQUERYSET2W, WSAVERSION,
};
use winprov_core::call::{self, Scope};
use winprov_core::{HostSink, PtrError, WsaError, boundary, boundary_with, ffi};

/// Longest string accepted in a query set (the `UNICODE_STRING` limit, in UTF-16 units).
const MAX_STRING_UNITS: usize = 32_767;
/// Most `AFPROTOCOLS` / `CSADDR_INFO` entries accepted in one query set.
const MAX_ENTRIES: usize = 1024;
/// Largest socket address accepted (`SOCKADDR_STORAGE`).
const MAX_SOCKADDR: usize = 128;
/// Largest blob accepted.
const MAX_BLOB: usize = 16 << 20;

// ---------------------------------------------------------------------------------------------
// The process-wide registry the routine table dispatches to.

/// The providers of this process, completing through Winsock.
pub(crate) static REGISTRY: LazyLock<Registry> =
    LazyLock::new(|| Registry::new(std::sync::Arc::new(Winsock)));

/// The routine table every provider of this process is advertised with. Calls are routed by
/// the provider GUID (Startup, Cleanup, Begin, SetServiceEx, Rundown) or by handle (NextEx, End).
/// Each entry forwards to [`exports`] with [`REGISTRY`].
pub(crate) static ROUTINE: NSPV2_ROUTINE = NSPV2_ROUTINE {
    cbSize: size_of::<NSPV2_ROUTINE>() as u32,
    dwMajorVersion: 1,
    dwMinorVersion: 0,
    NSPv2Startup: Some(nsp_startup),
    NSPv2Cleanup: Some(nsp_cleanup),
    NSPv2LookupServiceBegin: Some(nsp_lookup_service_begin),
    NSPv2LookupServiceNextEx: Some(nsp_lookup_service_next_ex),
    NSPv2LookupServiceEnd: Some(nsp_lookup_service_end),
    NSPv2SetServiceEx: Some(nsp_set_service_ex),
    NSPv2ClientSessionRundown: Some(nsp_client_session_rundown),
};

// ---------------------------------------------------------------------------------------------
// Completions and the last error.

/// The real host: completions go to `WSAProviderCompleteAsyncCall`.
struct Winsock;

impl HostSink<AsyncCompletion> for Winsock {
    fn deliver(&self, completion: AsyncCompletion) {
        complete_async_call(completion.async_call, completion.code);
    }
}

#[cfg(windows)]
fn complete_async_call(async_call: usize, code: i32) {
    let handle = HANDLE(std::ptr::without_provenance_mut(async_call));
    // SAFETY: WSAProviderCompleteAsyncCall takes the host's opaque handle by value and an int;
    // it reads no memory of ours.
    let result = unsafe { winprov_bindings::ws2spi::WSAProviderCompleteAsyncCall(handle, code) };
    if result != 0 {
        tracing::error!(code, result, "WSAProviderCompleteAsyncCall failed");
    }
}

#[cfg(not(windows))]
fn complete_async_call(async_call: usize, code: i32) {
    tracing::error!(
        async_call,
        code,
        "no Winsock on this platform and no host simulator: completion dropped"
    );
}

#[cfg(not(windows))]
thread_local! {
    static LAST_ERROR: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

/// `WSASetLastError`.
pub(crate) fn set_last_error(code: i32) {
    #[cfg(windows)]
    // SAFETY: WSASetLastError only stores the value in thread-local state.
    unsafe {
        winprov_bindings::ws2spi::WSASetLastError(code)
    };
    #[cfg(not(windows))]
    LAST_ERROR.with(|cell| cell.set(code));
}

/// `WSAGetLastError` (for host simulators).
#[cfg_attr(not(feature = "testing"), allow(dead_code))]
pub(crate) fn last_error() -> i32 {
    #[cfg(windows)]
    // SAFETY: WSAGetLastError only reads thread-local state.
    return unsafe { winprov_bindings::ws2spi::WSAGetLastError() }.0;
    #[cfg(not(windows))]
    LAST_ERROR.with(|cell| cell.get())
}

/// An `INT` entry's return value: `NO_ERROR`, or `SOCKET_ERROR` with the last error set.
fn int_result(result: Result<(), WsaError>) -> i32 {
    match result {
        Ok(()) => NO_ERROR,
        Err(error) => {
            set_last_error(error.raw());
            SOCKET_ERROR
        }
    }
}

fn panicked() -> i32 {
    int_result(Err(WsaError::WSASYSCALLFAILURE))
}

fn fault(error: PtrError) -> WsaError {
    match error {
        PtrError::Unterminated { .. } | PtrError::TooLong => WsaError::WSAEINVAL,
        _ => WsaError::WSAEFAULT,
    }
}

// ---------------------------------------------------------------------------------------------
// The caller's result buffer.

/// Borrows the `lpdwBufferLength` / `lpqsResults` pair of one NextEx call for the call's
/// scope: `lpdwBufferLength` must be a valid pointer; `lpqsResults` may be NULL only for a zero
/// length (a size probe), must be aligned, and must not hold the length word itself.
///
/// # Safety
/// `length`, if non-null and aligned, is readable and writable, and `data` writable for
/// `*length` bytes, until the NextEx call returns, and nobody else accesses them meanwhile (the
/// host does not touch them while the call runs). `'call` is the scope of the export's body,
/// which ends before the call returns, so the borrows cannot outlive it.
unsafe fn result_buffer<'call>(
    _call: &'call Scope<'call, '_>,
    length: *mut u32,
    data: *mut u8,
) -> Result<ResultBuffer<'call>, WsaError> {
    let length_ptr = ffi::check(length).map_err(fault)?;
    // SAFETY: checked non-null and aligned; readable per the caller.
    let capacity = unsafe { length_ptr.read() } as usize;
    if capacity > 0 && (data.is_null() || !data.addr().is_multiple_of(BUFFER_ALIGN)) {
        return Err(WsaError::WSAEFAULT);
    }
    // Two `&mut` borrows must not alias: a length word inside the buffer is refused.
    let word = length.addr()..length.addr() + size_of::<u32>();
    if capacity > 0 && word.start < data.addr() + capacity && data.addr() < word.end {
        return Err(WsaError::WSAEFAULT);
    }
    // SAFETY: checked non-null and aligned, valid and exclusively ours until the call returns
    // (the caller's contract), which `'call` does not outlive; disjoint from `data`'s bytes.
    let length: &'call mut u32 = unsafe { &mut *length_ptr.as_ptr() };
    // SAFETY: `data` is writable for `capacity` bytes and exclusively ours for 'call (the
    // caller's contract); a zero capacity makes an empty slice from any pointer. Bytes may hold
    // anything; the encoder only writes them.
    let data = unsafe { ffi::slice_mut(data, capacity) }.unwrap_or(&mut []);
    Ok(ResultBuffer::new(length, data))
}

// ---------------------------------------------------------------------------------------------
// Reading host structures.

/// An optional GUID argument: NULL is `None`.
///
/// # Safety
/// A non-null, aligned `ptr` points to a readable GUID.
unsafe fn read_guid(ptr: *const Guid) -> Result<Option<Guid>, WsaError> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded to the caller's contract.
    unsafe { ffi::read(ptr) }.map(Some).map_err(fault)
}

/// # Safety
/// A non-null, aligned `ptr` is a NUL-terminated UTF-16 string (or has `MAX_STRING_UNITS`
/// readable units).
unsafe fn read_string(ptr: *const u16) -> Result<Option<String>, WsaError> {
    // SAFETY: forwarded to the caller's contract.
    match unsafe { ffi::wide_str_opt(ptr, MAX_STRING_UNITS) }.map_err(fault)? {
        None => Ok(None),
        Some(units) => String::from_utf16(units)
            .map(Some)
            .map_err(|_| WsaError::WSAEINVAL),
    }
}

/// # Safety
/// A non-null `SOCKET_ADDRESS.lpSockaddr` has `iSockaddrLength` readable bytes.
unsafe fn read_socket_address(
    address: &winprov_bindings::ws2spi::SOCKET_ADDRESS,
) -> Result<Option<std::net::SocketAddr>, WsaError> {
    let len = usize::try_from(address.iSockaddrLength).map_err(|_| WsaError::WSAEINVAL)?;
    if address.lpSockaddr.is_null() && len == 0 {
        return Ok(None);
    }
    if len > MAX_SOCKADDR {
        return Err(WsaError::WSAEINVAL);
    }
    // SAFETY: `len` bytes are readable per the caller; u8 needs no alignment.
    let bytes =
        unsafe { ffi::slice(address.lpSockaddr.cast::<u8>().cast_const(), len) }.map_err(fault)?;
    wire::parse_sockaddr(bytes)
        .map(Some)
        .ok_or(WsaError::WSAEINVAL)
}

/// The fields of a `WSAQUERYSET2W` the framework understands, read and checked.
struct QuerySetFields {
    name: Option<String>,
    version: Option<Version>,
    comment: Option<String>,
    namespace: u32,
    provider_id: Option<Guid>,
    context: Option<String>,
    protocols: Vec<AfProtocol>,
    query_string: Option<String>,
    addresses: Vec<CsAddr>,
    blob: Option<Vec<u8>>,
}

/// Reads a `WSAQUERYSET2W` from the host.
///
/// # Safety
/// `ptr`, if non-null and aligned, points to a `WSAQUERYSET2W` whose pointer fields are NULL or
/// valid for what their counts state (`dwNumberOfProtocols`, `dwNumberOfCsAddrs`,
/// `BLOB.cbSize`, `iSockaddrLength`) and whose strings are NUL-terminated.
unsafe fn read_query_set(
    ptr: *const WSAQUERYSET2W,
    with_addresses: bool,
) -> Result<QuerySetFields, WsaError> {
    let qs = match ffi::check(ptr) {
        // SAFETY: checked; readable per the caller.
        Ok(qs) => unsafe { qs.read() },
        Err(PtrError::Null) => return Err(WsaError::WSAEINVAL),
        Err(error) => return Err(fault(error)),
    };
    if (qs.dwSize as usize) < size_of::<WSAQUERYSET2W>() {
        return Err(WsaError::WSAEINVAL);
    }
    // Each pointer below comes from the structure and is valid for its stated count per the
    // caller; the ffi helpers check null and alignment first.
    // SAFETY: a pointer field of the host's structure, valid for its stated count.
    let name = unsafe { read_string(qs.lpszServiceInstanceName.0) }?;
    // SAFETY: a pointer field of the host's structure, valid for its stated count.
    let comment = unsafe { read_string(qs.lpszComment.0) }?;
    // SAFETY: a pointer field of the host's structure, valid for its stated count.
    let context = unsafe { read_string(qs.lpszContext.0) }?;
    // SAFETY: a pointer field of the host's structure, valid for its stated count.
    let query_string = unsafe { read_string(qs.lpszQueryString.0) }?;
    // SAFETY: a pointer field of the host's structure, valid for its stated count.
    let provider_id = unsafe { read_guid(qs.lpNSProviderId) }?;
    let version = if qs.lpVersion.is_null() {
        None
    } else {
        // SAFETY: a pointer field of the host's structure, valid for its stated count.
        let raw: WSAVERSION = unsafe { ffi::read(qs.lpVersion) }.map_err(fault)?;
        let how = match raw.ecHow.0 {
            0 => Comparator::Equal,
            1 => Comparator::NotLess,
            _ => return Err(WsaError::WSAEINVAL),
        };
        Some(Version {
            version: raw.dwVersion,
            how,
        })
    };
    let count = qs.dwNumberOfProtocols as usize;
    if count > MAX_ENTRIES {
        return Err(WsaError::WSAEINVAL);
    }
    let protocols: &[AFPROTOCOLS] =
        // SAFETY: a pointer field of the host's structure, valid for its stated count.
        unsafe { ffi::slice(qs.lpafpProtocols.cast_const(), count) }.map_err(fault)?;
    let protocols = protocols
        .iter()
        .map(|p| AfProtocol {
            address_family: p.iAddressFamily,
            protocol: p.iProtocol,
        })
        .collect();
    let mut addresses = Vec::new();
    if with_addresses {
        let count = qs.dwNumberOfCsAddrs as usize;
        if count > MAX_ENTRIES {
            return Err(WsaError::WSAEINVAL);
        }
        let entries: &[CSADDR_INFO] =
            // SAFETY: a pointer field of the host's structure, valid for its stated count.
            unsafe { ffi::slice(qs.lpcsaBuffer.cast_const(), count) }.map_err(fault)?;
        for entry in entries {
            addresses.push(CsAddr {
                // SAFETY: a pointer field of the host's structure, valid for its stated count.
                local: unsafe { read_socket_address(&entry.LocalAddr) }?,
                // SAFETY: a pointer field of the host's structure, valid for its stated count.
                remote: unsafe { read_socket_address(&entry.RemoteAddr) }?,
                socket_type: entry.iSocketType,
                protocol: entry.iProtocol,
            });
        }
    }
    let blob = if qs.lpBlob.is_null() {
        None
    } else {
        // SAFETY: a pointer field of the host's structure, valid for its stated count.
        let raw: BLOB = unsafe { ffi::read(qs.lpBlob) }.map_err(fault)?;
        let len = raw.cbSize as usize;
        if len > MAX_BLOB {
            return Err(WsaError::WSAEINVAL);
        }
        // SAFETY: a pointer field of the host's structure, valid for its stated count.
        let data = unsafe { ffi::slice(raw.pBlobData.cast_const(), len) }.map_err(fault)?;
        Some(data.to_vec())
    };
    Ok(QuerySetFields {
        name,
        version,
        comment,
        namespace: qs.dwNameSpace,
        provider_id,
        context,
        protocols,
        query_string,
        addresses,
        blob,
    })
}

// ---------------------------------------------------------------------------------------------
// The exports: the routine table's entries forward to the functions of `exports` with the
// process's registry; a host simulator calls the same functions with a registry of its own.

/// One `unsafe extern "system"` entry per line: a forward to the function of [`exports`] of
/// the same arguments, with the process's registry.
macro_rules! routine_entries {
    ($($entry:ident => $function:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?;)*) => {$(
        unsafe extern "system" fn $entry($($arg: $ty),*) $(-> $ret)? {
            // SAFETY: forwarded from the host, which calls the entry with the arguments the
            // interface defines; `exports` documents the same contract.
            unsafe { exports::$function(&REGISTRY, $($arg),*) }
        }
    )*};
}

routine_entries! {
    nsp_startup => startup(
        lp_provider_id: *const Guid, ppv_client_session_arg: *mut *mut c_void) -> i32;
    nsp_cleanup => cleanup(
        lp_provider_id: *const Guid, pv_client_session_arg: *const c_void) -> i32;
    nsp_lookup_service_begin => lookup_service_begin(
        lp_provider_id: *const Guid, lpqs_restrictions: *const WSAQUERYSET2W,
        dw_control_flags: u32, lpv_client_session_arg: *const c_void,
        lph_lookup: *mut HANDLE) -> i32;
    nsp_lookup_service_next_ex => lookup_service_next_ex(
        h_async_call: HANDLE, h_lookup: HANDLE, dw_control_flags: u32,
        lpdw_buffer_length: *const u32, lpqs_results: *mut WSAQUERYSET2W);
    nsp_lookup_service_end => lookup_service_end(h_lookup: HANDLE) -> i32;
    nsp_set_service_ex => set_service_ex(
        h_async_call: HANDLE, lp_provider_id: *const Guid, lpqs_reg_info: *const WSAQUERYSET2W,
        ess_operation: WSAESETSERVICEOP, dw_control_flags: u32,
        lpv_client_session_arg: *const c_void);
    nsp_client_session_rundown => client_session_rundown(
        lp_provider_id: *const Guid, pv_client_session_arg: *const c_void);
}

/// The body of every entry of the routine table, for a given registry. Each runs inside
/// [`boundary_with`] and reads the host's arguments through [`ffi`].
///
/// # Safety
/// Every function takes the arguments of the `NSPV2_ROUTINE` entry of the same name, as the
/// interface defines them (pointers NULL or valid for what the interface says).
pub(crate) mod exports {
    use super::*;
    use crate::{Export, NamespaceProvider};

    /// The body of a DLL export made by [`export_provider!`](crate::export_provider): checks
    /// both out-pointers, registers the provider (once), writes its id and the routine table.
    ///
    /// # Safety
    /// Each pointer is null (refused) or points to memory writable as its type.
    pub unsafe fn hand_out<P: NamespaceProvider>(
        export: &Export<P>,
        name: &'static str,
        provider_id: *mut Guid,
        routine: *mut *const NSPV2_ROUTINE,
    ) -> i32 {
        boundary(name, WsaError::WSASYSCALLFAILURE.raw(), || {
            if ffi::check(provider_id.cast_const()).is_err()
                || ffi::check(routine.cast_const()).is_err()
            {
                return WsaError::WSAEFAULT.raw();
            }
            if let Err(error) = export.register() {
                return error.raw();
            }
            let table: *const NSPV2_ROUTINE = &ROUTINE;
            // SAFETY: checked non-null and aligned above; writable per the caller.
            let id = unsafe { ffi::write(provider_id, export.id()) };
            // SAFETY: as above.
            let table = unsafe { ffi::write(routine, table) };
            match id.and(table) {
                Ok(()) => 0,
                Err(_) => WsaError::WSAEFAULT.raw(),
            }
        })
    }

    /// `NSPv2Startup`.
    ///
    /// # Safety
    /// See the [module documentation](self).
    pub(crate) unsafe fn startup(
        registry: &Registry,
        lp_provider_id: *const Guid,
        ppv_client_session_arg: *mut *mut c_void,
    ) -> i32 {
        boundary_with(
            "NSPv2Startup",
            |_| panicked(),
            || {
                int_result((|| {
                    // SAFETY: the host passes a GUID pointer (or NULL).
                    let id = unsafe { read_guid(lp_provider_id) }?;
                    let out = ffi::check(ppv_client_session_arg).map_err(fault)?;
                    let session = registry.startup(id)?;
                    // SAFETY: checked non-null and aligned; the host passes a writable slot.
                    unsafe { out.write(std::ptr::without_provenance_mut(session)) };
                    Ok(())
                })())
            },
        )
    }

    /// `NSPv2Cleanup`.
    ///
    /// # Safety
    /// See the [module documentation](self).
    pub(crate) unsafe fn cleanup(
        registry: &Registry,
        lp_provider_id: *const Guid,
        pv_client_session_arg: *const c_void,
    ) -> i32 {
        boundary_with(
            "NSPv2Cleanup",
            |_| panicked(),
            || {
                int_result((|| {
                    // SAFETY: the host passes a GUID pointer (or NULL).
                    let id = unsafe { read_guid(lp_provider_id) }?;
                    registry.cleanup(id, pv_client_session_arg.addr())
                })())
            },
        )
    }

    /// `NSPv2LookupServiceBegin`.
    ///
    /// # Safety
    /// See the [module documentation](self).
    pub(crate) unsafe fn lookup_service_begin(
        registry: &Registry,
        lp_provider_id: *const Guid,
        lpqs_restrictions: *const WSAQUERYSET2W,
        dw_control_flags: u32,
        lpv_client_session_arg: *const c_void,
        lph_lookup: *mut HANDLE,
    ) -> i32 {
        boundary_with(
            "NSPv2LookupServiceBegin",
            |_| panicked(),
            || {
                int_result((|| {
                    // SAFETY: the host passes a GUID pointer (or NULL).
                    let id = unsafe { read_guid(lp_provider_id) }?;
                    let out = ffi::check(lph_lookup).map_err(fault)?;
                    // SAFETY: the host passes a WSAQUERYSET2W as the interface defines it.
                    let query =
                        unsafe { read_query_set(lpqs_restrictions, false) }.map(|f| Query {
                            service_instance_name: f.name,
                            version: f.version,
                            namespace: f.namespace,
                            provider_id: f.provider_id,
                            context: f.context,
                            protocols: f.protocols,
                            query_string: f.query_string,
                            blob: f.blob,
                        });
                    let lookup = registry.begin(
                        id,
                        query,
                        ControlFlags::from_bits_retain(dw_control_flags),
                        lpv_client_session_arg.addr(),
                    )?;
                    // SAFETY: checked non-null and aligned; the host passes a writable slot.
                    unsafe { out.write(HANDLE(std::ptr::without_provenance_mut(lookup))) };
                    Ok(())
                })())
            },
        )
    }

    /// `NSPv2LookupServiceNextEx`.
    ///
    /// # Safety
    /// See the [module documentation](self).
    pub(crate) unsafe fn lookup_service_next_ex(
        registry: &Registry,
        h_async_call: HANDLE,
        h_lookup: HANDLE,
        dw_control_flags: u32,
        lpdw_buffer_length: *const u32,
        lpqs_results: *mut WSAQUERYSET2W,
    ) {
        let async_call = h_async_call.0.addr();
        boundary_with(
            "NSPv2LookupServiceNextEx",
            |_| set_last_error(WsaError::WSASYSCALLFAILURE.raw()),
            || {
                // The metadata types lpdwBufferLength as `const DWORD*`; it is an in/out
                // LPDWORD.
                let code = call::scope(|scope| {
                    // SAFETY: the host passes the in/out length and the buffer it describes,
                    // valid and left alone by the host until this call returns; the borrows
                    // end with this scope.
                    let buffer = unsafe {
                        result_buffer(scope, lpdw_buffer_length.cast_mut(), lpqs_results.cast())
                    };
                    registry.next_ex(
                        async_call,
                        h_lookup.0.addr(),
                        ControlFlags::from_bits_retain(dw_control_flags),
                        buffer,
                    )
                });
                set_last_error(code);
            },
        )
    }

    /// `NSPv2LookupServiceEnd`.
    ///
    /// # Safety
    /// None needed (the handle is a value); `unsafe` like the other entries of the table.
    pub(crate) unsafe fn lookup_service_end(registry: &Registry, h_lookup: HANDLE) -> i32 {
        boundary_with(
            "NSPv2LookupServiceEnd",
            |_| panicked(),
            || int_result(registry.end(h_lookup.0.addr())),
        )
    }

    /// `NSPv2SetServiceEx`.
    ///
    /// # Safety
    /// See the [module documentation](self).
    pub(crate) unsafe fn set_service_ex(
        registry: &Registry,
        h_async_call: HANDLE,
        lp_provider_id: *const Guid,
        lpqs_reg_info: *const WSAQUERYSET2W,
        ess_operation: WSAESETSERVICEOP,
        dw_control_flags: u32,
        lpv_client_session_arg: *const c_void,
    ) {
        let async_call = h_async_call.0.addr();
        boundary_with(
            "NSPv2SetServiceEx",
            |_| set_last_error(WsaError::WSASYSCALLFAILURE.raw()),
            || {
                // SAFETY: the host passes a GUID pointer (or NULL).
                let id = match unsafe { read_guid(lp_provider_id) } {
                    Ok(id) => id,
                    Err(error) => return set_last_error(registry.fail(async_call, error)),
                };
                // SAFETY: the host passes a WSAQUERYSET2W as the interface defines it.
                let reg = unsafe { read_query_set(lpqs_reg_info, true) }.map(|f| RegInfo {
                    service_instance_name: f.name,
                    version: f.version,
                    comment: f.comment,
                    namespace: f.namespace,
                    provider_id: f.provider_id,
                    context: f.context,
                    addresses: f.addresses,
                    blob: f.blob,
                });
                let code = registry.set_service(
                    async_call,
                    id,
                    reg,
                    ess_operation.0,
                    dw_control_flags,
                    lpv_client_session_arg.addr(),
                );
                set_last_error(code);
            },
        )
    }

    /// `NSPv2ClientSessionRundown`.
    ///
    /// # Safety
    /// See the [module documentation](self).
    pub(crate) unsafe fn client_session_rundown(
        registry: &Registry,
        lp_provider_id: *const Guid,
        pv_client_session_arg: *const c_void,
    ) {
        boundary_with(
            "NSPv2ClientSessionRundown",
            |_| (),
            || {
                // SAFETY: the host passes a GUID pointer (or NULL).
                match unsafe { read_guid(lp_provider_id) } {
                    Ok(id) => registry.rundown(id, pv_client_session_arg.addr()),
                    Err(error) => {
                        tracing::warn!(%error, "NSPv2ClientSessionRundown: bad provider id")
                    }
                }
            },
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Winsock functions resolved at run time: they may be missing (Wine has no
// WSAAdvertiseProvider), which must be an error, not an abort.

/// Calls a `ws2_32.dll` function by name; `Err(None)` when it does not exist there.
#[cfg(windows)]
pub(crate) mod ws2 {
    use super::Guid;
    use winprov_bindings::windows_core::{PCSTR, PCWSTR};
    use winprov_bindings::ws2spi::{BLOB, NSPV2_ROUTINE};

    /// A `ws2_32.dll` export, or `None` when this Winsock has no such function.
    fn proc(name: &'static std::ffi::CStr) -> Option<unsafe extern "system" fn() -> isize> {
        let library: Vec<u16> = winprov_core::ffi::to_wide_nul("ws2_32.dll");
        // SAFETY: a NUL-terminated name; LOAD_LIBRARY_SEARCH_SYSTEM32 loads the system copy
        // (already loaded in any Winsock process, so this only takes a reference).
        let module = unsafe {
            winprov_bindings::ws2spi::LoadLibraryExW(
                PCWSTR(library.as_ptr()),
                None,
                winprov_bindings::ws2spi::LOAD_LIBRARY_SEARCH_SYSTEM32,
            )
        }
        .ok()?;
        // SAFETY: a loaded module and a NUL-terminated name.
        unsafe { winprov_bindings::ws2spi::GetProcAddress(module, PCSTR(name.as_ptr().cast())) }
    }

    macro_rules! ws2_fn {
        ($(fn $name:ident($($arg:ident: $ty:ty),*) -> i32;)*) => {$(
            /// Calls the function of the same name, or `None` when ws2_32 lacks it.
            ///
            /// # Safety
            /// The arguments satisfy the function's documented contract.
            #[allow(non_snake_case)]
            pub(crate) unsafe fn $name($($arg: $ty),*) -> Option<i32> {
                let address = proc(
                    // SAFETY: the literal ends with a NUL and has no other.
                    unsafe {
                        std::ffi::CStr::from_bytes_with_nul_unchecked(
                            concat!(stringify!($name), "\0").as_bytes(),
                        )
                    },
                )?;
                let function: unsafe extern "system" fn($($ty),*) -> i32 =
                    // SAFETY: the export has this documented prototype (WSAAPI = system).
                    unsafe { std::mem::transmute(address) };
                // SAFETY: forwarded to the caller's contract.
                Some(unsafe { function($($arg),*) })
            }
        )*};
    }

    ws2_fn! {
        fn WSAAdvertiseProvider(id: *const Guid, routine: *const NSPV2_ROUTINE) -> i32;
        fn WSAUnadvertiseProvider(id: *const Guid) -> i32;
        fn WSCInstallNameSpaceEx(
            identifier: PCWSTR,
            path: PCWSTR,
            namespace: u32,
            version: u32,
            id: *const Guid,
            blob: *const BLOB
        ) -> i32;
        fn WSCUnInstallNameSpace(id: *const Guid) -> i32;
    }

    /// `WSAStartup(2.2)`; the matching `WSACleanup` is [`cleanup`].
    pub(crate) fn startup() -> Result<(), i32> {
        let mut data = winprov_bindings::ws2spi::WSADATA::default();
        // SAFETY: a valid out-pointer for the duration of the call.
        match unsafe { winprov_bindings::ws2spi::WSAStartup(0x0202, &mut data) } {
            0 => Ok(()),
            code => Err(code),
        }
    }

    /// `WSACleanup`.
    pub(crate) fn cleanup() {
        // SAFETY: paired with a successful `startup`.
        unsafe { winprov_bindings::ws2spi::WSACleanup() };
    }
}

// ---------------------------------------------------------------------------------------------
// Advertising and catalog registration.

#[cfg(windows)]
fn ws2_outcome(function: &'static str, result: Option<i32>) -> Result<(), crate::NspError> {
    match result {
        None => Err(crate::NspError::Unavailable { function }),
        Some(0) => Ok(()),
        Some(_) => Err(crate::NspError::Failed {
            function,
            code: WsaError::from_raw(last_error()),
        }),
    }
}

/// `WSAStartup` then `WSAAdvertiseProvider(id, ROUTINE)`.
#[cfg(windows)]
pub(crate) fn advertise(id: Guid) -> Result<(), crate::NspError> {
    ws2::startup().map_err(|code| crate::NspError::Failed {
        function: "WSAStartup",
        code: WsaError::from_raw(code),
    })?;
    // SAFETY: a GUID on our stack and the static routine table, which outlives the
    // advertisement.
    let result = unsafe { ws2::WSAAdvertiseProvider(&id, &ROUTINE) };
    let outcome = ws2_outcome("WSAAdvertiseProvider", result);
    if outcome.is_err() {
        ws2::cleanup();
    }
    outcome
}

/// `WSAUnadvertiseProvider(id)` then `WSACleanup`.
#[cfg(windows)]
pub(crate) fn unadvertise(id: Guid) {
    // SAFETY: a GUID on our stack.
    let result = unsafe { ws2::WSAUnadvertiseProvider(&id) };
    if let Err(error) = ws2_outcome("WSAUnadvertiseProvider", result) {
        tracing::error!(%error, "withdrawing the provider");
    }
    ws2::cleanup();
}

/// `WSCInstallNameSpaceEx` with an empty DLL path.
#[cfg(windows)]
pub(crate) fn install_namespace(
    identifier: &str,
    namespace: u32,
    version: u32,
    id: Guid,
    mut blob: Vec<u8>,
) -> Result<(), crate::NspError> {
    use winprov_bindings::windows_core::PCWSTR;
    let identifier = ffi::to_wide_nul(identifier);
    let path = [0u16];
    let raw = BLOB {
        cbSize: blob.len() as u32,
        pBlobData: blob.as_mut_ptr(),
    };
    // SAFETY: NUL-terminated strings, a GUID and a BLOB describing `blob`, all alive for the
    // duration of the call.
    let result = unsafe {
        ws2::WSCInstallNameSpaceEx(
            PCWSTR(identifier.as_ptr()),
            PCWSTR(path.as_ptr()),
            namespace,
            version,
            &id,
            &raw,
        )
    };
    ws2_outcome("WSCInstallNameSpaceEx", result)
}

/// `WSCUnInstallNameSpace`.
#[cfg(windows)]
pub(crate) fn uninstall_namespace(id: Guid) -> Result<(), crate::NspError> {
    // SAFETY: a GUID alive for the call.
    ws2_outcome("WSCUnInstallNameSpace", unsafe {
        ws2::WSCUnInstallNameSpace(&id)
    })
}

#[cfg(not(windows))]
pub(crate) fn advertise(_: Guid) -> Result<(), crate::NspError> {
    Err(crate::NspError::Unavailable {
        function: "WSAAdvertiseProvider",
    })
}

#[cfg(not(windows))]
pub(crate) fn unadvertise(_: Guid) {}

#[cfg(not(windows))]
pub(crate) fn install_namespace(
    _: &str,
    _: u32,
    _: u32,
    _: Guid,
    _: Vec<u8>,
) -> Result<(), crate::NspError> {
    Err(crate::NspError::Unavailable {
        function: "WSCInstallNameSpaceEx",
    })
}

#[cfg(not(windows))]
pub(crate) fn uninstall_namespace(_: Guid) -> Result<(), crate::NspError> {
    Err(crate::NspError::Unavailable {
        function: "WSCUnInstallNameSpace",
    })
}

#[cfg(all(test, not(loom)))]
#[path = "abi_props.rs"]
mod props;

#[cfg(all(test, not(loom)))]
mod tests {
    use super::exports::hand_out;
    use super::*;
    use crate::provider::{Lookup, NamespaceProvider, NextCall};
    use crate::{Completed, Export};

    struct Quiet;
    struct Nothing;

    impl NamespaceProvider for Quiet {
        type Session = ();
        type Lookup = Nothing;
        fn startup(&self) -> Result<(), WsaError> {
            Ok(())
        }
        fn lookup_begin(&self, _: &(), _: &Query, _: ControlFlags) -> Result<Nothing, WsaError> {
            Ok(Nothing)
        }
    }

    impl Lookup for Nothing {
        fn next<'call>(&mut self, call: NextCall<'call>) -> Completed<'call> {
            call.no_more()
        }
    }

    #[test]
    fn a_length_word_inside_the_result_buffer_is_refused() {
        let mut words = [0u64; 8];
        let base = words.as_mut_ptr().cast::<u8>();
        for at in [0usize, 8, 60] {
            let length = base.wrapping_add(at).cast::<u32>();
            // SAFETY: `length` is an aligned word inside `words`, which is 64 bytes: readable.
            unsafe { length.write(64) };
            let refused = call::scope(|scope| {
                // SAFETY: both pointers are into `words`, valid for the scope; the overlap is
                // what is tested (refused before any borrow is made).
                unsafe { result_buffer(scope, length, base) }.err()
            });
            assert_eq!(refused, Some(WsaError::WSAEFAULT), "length word at {at}");
        }
        let mut length = 64u32;
        let accepted = call::scope(|scope| {
            // SAFETY: a separate length word and 64 writable bytes, valid for the scope.
            unsafe { result_buffer(scope, &mut length, base) }.is_ok()
        });
        assert!(accepted);
    }

    const ID: Guid = Guid::from_u128(0x5eed_0002_0000_4000_8000_0000_0000_0001);
    static EXPORT: Export<Quiet> = Export::new(ID, || Quiet);

    #[test]
    fn an_export_refuses_null_out_pointers_then_hands_out_the_id_and_table_every_time() {
        let mut id = Guid::zeroed();
        let mut table: *const NSPV2_ROUTINE = std::ptr::null();
        // SAFETY: null pointers are what is tested; the other pointer is a valid local.
        let code = unsafe { hand_out(&EXPORT, "Test", std::ptr::null_mut(), &mut table) };
        assert_eq!(code, WsaError::WSAEFAULT.raw());
        // SAFETY: as above.
        let code = unsafe { hand_out(&EXPORT, "Test", &mut id, std::ptr::null_mut()) };
        assert_eq!(code, WsaError::WSAEFAULT.raw());
        assert!(table.is_null());
        assert_eq!(REGISTRY.stats(&ID), None, "nothing registered on a refusal");
        for _ in 0..2 {
            // SAFETY: valid, writable locals.
            let code = unsafe { hand_out(&EXPORT, "Test", &mut id, &mut table) };
            assert_eq!(code, 0);
            assert_eq!(id, ID);
            assert!(std::ptr::eq(table, &ROUTINE));
        }
        assert!(REGISTRY.stats(&ID).is_some(), "registered in the process");
    }

    #[test]
    fn an_export_whose_id_is_taken_says_so() {
        const TAKEN: Guid = Guid::from_u128(0x5eed_0002_0000_4000_8000_0000_0000_0002);
        static SECOND: Export<Quiet> = Export::new(TAKEN, || Quiet);
        let first = crate::register(TAKEN, Quiet).expect("a fresh id");
        let (mut id, mut table) = (Guid::zeroed(), std::ptr::null());
        // SAFETY: valid, writable locals.
        let code = unsafe { hand_out(&SECOND, "Test", &mut id, &mut table) };
        assert_eq!(code, WsaError::WSAEALREADY.raw());
        drop(first);
    }
}
