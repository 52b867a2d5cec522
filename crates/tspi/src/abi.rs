//! The raw side of the interface: TAPI's arguments checked and turned into typed ones, and the
//! calls back into TAPI's function pointers. The crate's `unsafe` code lives here (and in the
//! `testing` simulator, which plays TAPI's side of the same ABI). [`install`] holds the calls a
//! TSP's installer makes into `tapi32.dll`.
//!
//! Every export body runs inside [`winprov_core::boundary()`]: a panic returns
//! `LINEERR_OPERATIONFAILED` and never unwinds into TAPISRV.

use crate::dispatch::{Callback, Sink};
use crate::provider::ServiceProvider;
use crate::runtime::{Inner, RequestId, Runtime, Stats};
use winprov_bindings::not_in_metadata::LINE_NEWCALL;
use winprov_bindings::tapi::{HTAPICALL, HTAPILINE};
use winprov_bindings::windows_core::PCSTR;
use winprov_core::{HostSink, LineErr, PtrError, ffi};

pub(crate) mod install;

/// The host: calls TAPI's own function pointers.
struct Tapi;

impl HostSink<Callback> for Tapi {
    fn deliver(&self, callback: Callback) -> usize {
        match callback {
            Callback::Completion {
                proc,
                request,
                result,
            } => {
                // SAFETY: `proc` is the non-null ASYNC_COMPLETION TAPI passed to
                // TSPI_providerInit, valid until the final TSPI_providerShutdown returns (which
                // first completes every request); the dispatcher guarantees no other callback
                // runs meanwhile.
                unsafe { proc(request, result) };
                0
            }
            Callback::Event {
                proc,
                ht_line,
                ht_call,
                msg,
                params,
            } => {
                // SAFETY: `proc` is the non-null LINEEVENT TAPI passed to TSPI_lineOpen for this
                // line, valid until TSPI_lineClose returns (which closes the line's gate and
                // waits for the dispatcher first); the handles are TAPI's own values, passed
                // back unchanged.
                unsafe {
                    proc(
                        HTAPILINE(std::ptr::without_provenance_mut(ht_line)),
                        HTAPICALL(std::ptr::without_provenance_mut(ht_call)),
                        msg,
                        params[0],
                        params[1],
                        params[2],
                    )
                };
                0
            }
            Callback::NewCall {
                proc,
                ht_line,
                hd_call,
            } => {
                let mut ht_call = HTAPICALL(std::ptr::null_mut());
                let slot = std::ptr::addr_of_mut!(ht_call) as usize;
                // SAFETY: as for events; dwParam2 points at `ht_call`, a live local TAPI writes
                // its handle into (LINE_NEWCALL's documented contract) before the callback
                // returns.
                unsafe {
                    proc(
                        HTAPILINE(std::ptr::without_provenance_mut(ht_line)),
                        HTAPICALL(std::ptr::null_mut()),
                        LINE_NEWCALL,
                        hd_call,
                        slot,
                        0,
                    )
                };
                ht_call.0 as usize
            }
        }
    }
}

fn tapi() -> Sink {
    Box::new(Tapi)
}

/// The host's side of a runtime: the sink (TAPI's function pointers) is handed in here, when
/// this layer first touches the runtime.
impl<P: ServiceProvider> Runtime<P> {
    /// A runtime around `provider`, leaked so that it lives as long as the `'static` exports
    /// would (host simulators and benchmarks). Its callbacks go to TAPI's function pointers, as
    /// the generated exports' do.
    #[cfg(feature = "testing")]
    pub fn leak(provider: P) -> &'static Self {
        Box::leak(Box::new(Self::with_provider(provider, tapi())))
    }

    pub(crate) fn inner(&'static self) -> &'static Inner<P> {
        self.inner_with(tapi)
    }

    /// The provider.
    pub fn provider(&'static self) -> &'static P {
        self.inner().provider()
    }

    /// Live objects.
    pub fn stats(&'static self) -> Stats {
        self.inner().stats()
    }
}

/// The one way into a request export (`dwRequestID`): the export's panic boundary, the id
/// validated, then the runtime's request path.
fn request(export: &'static str, raw: u32, serve: impl FnOnce(RequestId) -> i32) -> i32 {
    winprov_core::boundary(export, FAILED, || match RequestId::new(raw) {
        Ok(id) => serve(id),
        Err(error) => error.raw(),
    })
}

fn pointer_error(error: PtrError) -> LineErr {
    tracing::debug!(%error, "bad pointer from the host");
    LineErr::LINEERR_INVALPOINTER
}

fn code(result: Result<(), LineErr>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(error) => error.raw(),
    }
}

const FAILED: i32 = LineErr::LINEERR_OPERATIONFAILED.raw();

/// Longest dial string read (TAPI's own limit is far below).
const MAX_ADDRESS_UNITS: usize = 4096;

/// The caller's variable-sized structure as bytes: `dwTotalSize` of them.
///
/// # Safety
/// `ptr` is null or points at a structure whose first `DWORD` is `dwTotalSize` and which is
/// writable for that many bytes (the TSPI contract).
unsafe fn var_bytes<'a, T>(ptr: *mut T) -> Result<&'a mut [u8], LineErr> {
    let header = ptr.cast::<u32>();
    // SAFETY: the caller's contract; `ffi::read` checks null and alignment.
    let total = unsafe { ffi::read(header.cast_const()) }.map_err(pointer_error)? as usize;
    if total < 12 {
        return Err(LineErr::LINEERR_STRUCTURETOOSMALL);
    }
    // SAFETY: the caller's contract: `total` bytes are writable at `ptr`.
    unsafe { ffi::slice_mut(ptr.cast::<u8>(), total) }.map_err(pointer_error)
}

/// User-user information: `size` bytes at `data`, or none.
///
/// # Safety
/// `data` is null or readable for `size` bytes.
unsafe fn uui<'a>(data: *const u8, size: u32) -> Result<&'a [u8], LineErr> {
    if data.is_null() || size == 0 {
        return Ok(&[]);
    }
    // SAFETY: the caller's contract.
    unsafe { ffi::slice(data, size as usize) }.map_err(pointer_error)
}

/// A call request that carries user-user information (`TSPI_lineDrop`, `TSPI_lineAnswer`).
///
/// # Safety
/// `user_user_info` is null or readable for `size` bytes.
unsafe fn with_uui(user_user_info: PCSTR, size: u32, request: impl FnOnce(&[u8]) -> i32) -> i32 {
    // SAFETY: the caller's contract.
    match unsafe { uui(user_user_info.0, size) } {
        Ok(info) => request(info),
        Err(error) => error.raw(),
    }
}

/// A query that fills one of TAPI's variable-sized structures.
///
/// # Safety
/// As for [`var_bytes`].
unsafe fn with_var<T>(ptr: *mut T, fill: impl FnOnce(&mut [u8]) -> Result<(), LineErr>) -> i32 {
    // SAFETY: the caller's contract.
    match unsafe { var_bytes(ptr) } {
        Ok(bytes) => code(fill(bytes)),
        Err(error) => error.raw(),
    }
}

/// The path of the module (DLL) this code is in.
#[cfg(windows)]
fn own_module_path() -> Option<Vec<u16>> {
    use winprov_bindings::tapi::{
        GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS, GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
        GetModuleFileNameW, GetModuleHandleExW, HMODULE,
    };
    use winprov_bindings::windows_core::PCWSTR;
    let mut module = HMODULE::default();
    let anchor = own_module_path as *const () as *const u16;
    // SAFETY: FROM_ADDRESS takes any address inside a loaded module (this function's);
    // UNCHANGED_REFCOUNT means nothing is to be released; `module` is a valid out pointer.
    unsafe {
        GetModuleHandleExW(
            GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
            PCWSTR(anchor),
            &mut module,
        )
    }
    .ok()?;
    let mut path = vec![0u16; 32_768];
    // SAFETY: `path` is a writable buffer of the stated length.
    let len = unsafe { GetModuleFileNameW(Some(module), &mut path) } as usize;
    (len > 0 && len < path.len()).then(|| path[..len].to_vec())
}

#[cfg(not(windows))]
fn own_module_path() -> Option<Vec<u16>> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.to_string_lossy().encode_utf16().collect())
}

/// The export bodies [`export_provider!`](crate::export_provider) forwards to (and the host
/// simulator calls). Each has the export's parameters after the runtime.
pub mod exports {
    #![allow(missing_docs, clippy::missing_safety_doc, clippy::too_many_arguments)]

    use super::*;
    use core::ffi::c_void;
    use winprov_bindings::tapi::{
        ASYNC_COMPLETION, HDRVCALL, HDRVLINE, HPROVIDER, HWND, LINEADDRESSCAPS, LINECALLINFO,
        LINECALLPARAMS, LINECALLSTATUS, LINEDEVCAPS, LINEEVENT, MAX_PATH, PHONEEVENT,
        TUISPIDLLCALLBACK,
    };
    use winprov_bindings::windows_core::{PCWSTR, PWSTR};
    use winprov_core::boundary;

    pub unsafe fn line_negotiate_tspi_version<P: ServiceProvider>(
        runtime: &'static Runtime<P>,
        device: u32,
        low: u32,
        high: u32,
        version: *mut u32,
    ) -> i32 {
        boundary("TSPI_lineNegotiateTSPIVersion", FAILED, || {
            let negotiated = match runtime.inner().negotiate(device, low, high) {
                Ok(negotiated) => negotiated,
                Err(error) => return error.raw(),
            };
            // SAFETY: `version` is TAPI's out parameter; checked for null and alignment.
            code(unsafe { ffi::write(version, negotiated) }.map_err(pointer_error))
        })
    }

    pub unsafe fn provider_enum_devices<P: ServiceProvider>(
        runtime: &'static Runtime<P>,
        _provider_id: u32,
        lines: *mut u32,
        phones: *mut u32,
        _provider: HPROVIDER,
        _line_create: LINEEVENT,
        _phone_create: PHONEEVENT,
    ) -> i32 {
        boundary("TSPI_providerEnumDevices", FAILED, || {
            let count = runtime.inner().enum_devices();
            // SAFETY: TAPI's out parameters; checked for null and alignment.
            let written =
                unsafe { ffi::write(lines, count) }.and_then(|()| unsafe { ffi::write(phones, 0) });
            code(written.map_err(pointer_error))
        })
    }

    pub unsafe fn provider_init<P: ServiceProvider>(
        runtime: &'static Runtime<P>,
        version: u32,
        provider_id: u32,
        line_base: u32,
        _phone_base: u32,
        lines: usize,
        _phones: usize,
        completion: ASYNC_COMPLETION,
        options: *mut u32,
    ) -> i32 {
        boundary("TSPI_providerInit", FAILED, || {
            if !options.is_null() {
                // No LINETSPIOPTION_NONREENTRANT: every entry point is reentrant (R-TSP-15).
                // SAFETY: TAPI's out parameter; checked for alignment.
                if let Err(error) = unsafe { ffi::write(options, 0) } {
                    return pointer_error(error).raw();
                }
            }
            let lines = u32::try_from(lines).unwrap_or(u32::MAX);
            code(
                runtime
                    .inner()
                    .init(version, provider_id, line_base, lines, completion),
            )
        })
    }

    pub unsafe fn provider_shutdown<P: ServiceProvider>(
        runtime: &'static Runtime<P>,
        _version: u32,
        _provider_id: u32,
    ) -> i32 {
        boundary("TSPI_providerShutdown", FAILED, || {
            code(runtime.inner().shutdown())
        })
    }

    pub unsafe fn provider_ui_identify<P: ServiceProvider>(
        _runtime: &'static Runtime<P>,
        name: PWSTR,
    ) -> i32 {
        boundary("TSPI_providerUIIdentify", FAILED, || {
            let Some(mut path) = own_module_path() else {
                return FAILED;
            };
            if path.len() >= MAX_PATH as usize {
                return LineErr::LINEERR_NOMEM.raw();
            }
            path.push(0);
            // SAFETY: TAPI passes a buffer of at least MAX_PATH units (tspi.h); checked for
            // null and alignment, and `path` is shorter than MAX_PATH.
            match unsafe { ffi::slice_mut(name.0, path.len()) } {
                Ok(out) => {
                    out.copy_from_slice(&path);
                    0
                }
                Err(error) => pointer_error(error).raw(),
            }
        })
    }

    pub unsafe fn provider_generic_dialog_data<P: ServiceProvider>(
        _runtime: &'static Runtime<P>,
        _object: usize,
        _object_type: u32,
        _params: *mut c_void,
        _size: u32,
    ) -> i32 {
        boundary("TSPI_providerGenericDialogData", FAILED, || {
            LineErr::LINEERR_OPERATIONUNAVAIL.raw()
        })
    }

    pub unsafe fn line_get_dev_caps<P: ServiceProvider>(
        runtime: &'static Runtime<P>,
        device: u32,
        version: u32,
        _ext_version: u32,
        caps: *mut LINEDEVCAPS,
    ) -> i32 {
        boundary("TSPI_lineGetDevCaps", FAILED, || {
            // SAFETY: TAPI's structure, with dwTotalSize set.
            unsafe {
                with_var(caps, |bytes| {
                    runtime.inner().dev_caps(device, version, bytes)
                })
            }
        })
    }

    pub unsafe fn line_get_address_caps<P: ServiceProvider>(
        runtime: &'static Runtime<P>,
        device: u32,
        address: u32,
        _version: u32,
        _ext_version: u32,
        caps: *mut LINEADDRESSCAPS,
    ) -> i32 {
        boundary("TSPI_lineGetAddressCaps", FAILED, || {
            // SAFETY: TAPI's structure, with dwTotalSize set.
            unsafe {
                with_var(caps, |bytes| {
                    runtime.inner().address_caps(device, address, bytes)
                })
            }
        })
    }

    pub unsafe fn line_open<P: ServiceProvider>(
        runtime: &'static Runtime<P>,
        device: u32,
        ht_line: HTAPILINE,
        hd_line: *mut HDRVLINE,
        version: u32,
        event_proc: LINEEVENT,
    ) -> i32 {
        boundary("TSPI_lineOpen", FAILED, || {
            if let Err(error) = ffi::check(hd_line) {
                return pointer_error(error).raw();
            }
            let publish = |raw: usize| {
                // SAFETY: checked above for null and alignment; TAPI's out parameter.
                unsafe { ffi::write(hd_line, HDRVLINE(std::ptr::without_provenance_mut(raw))) }
                    .map_err(pointer_error)
            };
            code(
                runtime
                    .inner()
                    .open(device, ht_line.0 as usize, version, event_proc, &publish),
            )
        })
    }

    pub unsafe fn line_close<P: ServiceProvider>(
        runtime: &'static Runtime<P>,
        hd_line: HDRVLINE,
    ) -> i32 {
        boundary("TSPI_lineClose", FAILED, || {
            code(runtime.inner().close_line(hd_line.0 as usize))
        })
    }

    pub unsafe fn line_make_call<P: ServiceProvider>(
        runtime: &'static Runtime<P>,
        request_id: u32,
        hd_line: HDRVLINE,
        ht_call: HTAPICALL,
        hd_call: *mut HDRVCALL,
        destination: PCWSTR,
        country_code: u32,
        _params: *const LINECALLPARAMS,
    ) -> i32 {
        request("TSPI_lineMakeCall", request_id, |id| {
            if let Err(error) = ffi::check(hd_call) {
                return pointer_error(error).raw();
            }
            // SAFETY: a NUL-terminated string or null (tspi.h); the terminator is searched
            // within MAX_ADDRESS_UNITS.
            let destination = match unsafe { ffi::wide_str_opt(destination.0, MAX_ADDRESS_UNITS) } {
                Ok(None) => None,
                Ok(Some(units)) => match String::from_utf16(units) {
                    Ok(text) => Some(text),
                    Err(_) => return LineErr::LINEERR_INVALADDRESS.raw(),
                },
                Err(PtrError::Unterminated { .. }) => {
                    return LineErr::LINEERR_INVALADDRESS.raw();
                }
                Err(error) => return pointer_error(error).raw(),
            };
            let out = hd_call as usize;
            let publish = move |raw: usize| {
                let out = out as *mut HDRVCALL;
                // SAFETY: checked above for null and alignment; TAPI's out parameter, valid
                // for the duration of this call (publish runs inside it).
                let _ = unsafe { ffi::write(out, HDRVCALL(std::ptr::without_provenance_mut(raw))) };
            };
            runtime.inner().make_call(
                id,
                hd_line.0 as usize,
                ht_call.0 as usize,
                destination.as_deref(),
                country_code,
                &publish,
            )
        })
    }

    pub unsafe fn line_drop<P: ServiceProvider>(
        runtime: &'static Runtime<P>,
        request_id: u32,
        hd_call: HDRVCALL,
        user_user_info: PCSTR,
        size: u32,
    ) -> i32 {
        request("TSPI_lineDrop", request_id, |id| {
            // SAFETY: `size` bytes at `user_user_info`, or null (tspi.h).
            unsafe {
                with_uui(user_user_info, size, |info| {
                    runtime.inner().drop_call(id, hd_call.0 as usize, info)
                })
            }
        })
    }

    pub unsafe fn line_answer<P: ServiceProvider>(
        runtime: &'static Runtime<P>,
        request_id: u32,
        hd_call: HDRVCALL,
        user_user_info: PCSTR,
        size: u32,
    ) -> i32 {
        request("TSPI_lineAnswer", request_id, |id| {
            // SAFETY: `size` bytes at `user_user_info`, or null (tspi.h).
            unsafe {
                with_uui(user_user_info, size, |info| {
                    runtime.inner().answer(id, hd_call.0 as usize, info)
                })
            }
        })
    }

    pub unsafe fn line_dev_specific<P: ServiceProvider>(
        runtime: &'static Runtime<P>,
        request_id: u32,
        hd_line: HDRVLINE,
        _address: u32,
        hd_call: HDRVCALL,
        params: *mut c_void,
        size: u32,
    ) -> i32 {
        request("TSPI_lineDevSpecific", request_id, |id| {
            let params: &mut [u8] = if params.is_null() || size == 0 {
                &mut []
            } else {
                // SAFETY: `size` writable bytes at `params` (tspi.h).
                match unsafe { ffi::slice_mut(params.cast::<u8>(), size as usize) } {
                    Ok(params) => params,
                    Err(error) => return pointer_error(error).raw(),
                }
            };
            runtime
                .inner()
                .dev_specific(id, hd_line.0 as usize, hd_call.0 as usize, params)
        })
    }

    pub unsafe fn line_close_call<P: ServiceProvider>(
        runtime: &'static Runtime<P>,
        hd_call: HDRVCALL,
    ) -> i32 {
        boundary("TSPI_lineCloseCall", FAILED, || {
            code(runtime.inner().close_call(hd_call.0 as usize))
        })
    }

    pub unsafe fn line_get_call_status<P: ServiceProvider>(
        runtime: &'static Runtime<P>,
        hd_call: HDRVCALL,
        status: *mut LINECALLSTATUS,
    ) -> i32 {
        boundary("TSPI_lineGetCallStatus", FAILED, || {
            // SAFETY: TAPI's structure, with dwTotalSize set.
            unsafe {
                with_var(status, |bytes| {
                    runtime.inner().call_status(hd_call.0 as usize, bytes)
                })
            }
        })
    }

    pub unsafe fn line_get_call_info<P: ServiceProvider>(
        runtime: &'static Runtime<P>,
        hd_call: HDRVCALL,
        info: *mut LINECALLINFO,
    ) -> i32 {
        boundary("TSPI_lineGetCallInfo", FAILED, || {
            // SAFETY: TAPI's structure, with dwTotalSize set.
            unsafe {
                with_var(info, |bytes| {
                    runtime.inner().call_info(hd_call.0 as usize, bytes)
                })
            }
        })
    }

    pub unsafe fn line_get_num_address_ids<P: ServiceProvider>(
        runtime: &'static Runtime<P>,
        hd_line: HDRVLINE,
        count: *mut u32,
    ) -> i32 {
        boundary("TSPI_lineGetNumAddressIDs", FAILED, || {
            match runtime.inner().num_address_ids(hd_line.0 as usize) {
                // SAFETY: TAPI's out parameter; checked for null and alignment.
                Ok(n) => code(unsafe { ffi::write(count, n) }.map_err(pointer_error)),
                Err(error) => error.raw(),
            }
        })
    }

    pub unsafe fn line_set_default_media_detection<P: ServiceProvider>(
        runtime: &'static Runtime<P>,
        hd_line: HDRVLINE,
        media_modes: u32,
    ) -> i32 {
        boundary("TSPI_lineSetDefaultMediaDetection", FAILED, || {
            code(
                runtime
                    .inner()
                    .set_default_media_detection(hd_line.0 as usize, media_modes),
            )
        })
    }

    pub unsafe fn tuispi_provider_install<P: ServiceProvider>(
        runtime: &'static Runtime<P>,
        _callback: TUISPIDLLCALLBACK,
        _owner: HWND,
        provider_id: u32,
    ) -> i32 {
        boundary("TUISPI_providerInstall", FAILED, || {
            code(runtime.inner().provider().ui_install(provider_id))
        })
    }

    pub unsafe fn tuispi_provider_remove<P: ServiceProvider>(
        runtime: &'static Runtime<P>,
        _callback: TUISPIDLLCALLBACK,
        _owner: HWND,
        provider_id: u32,
    ) -> i32 {
        boundary("TUISPI_providerRemove", FAILED, || {
            code(runtime.inner().provider().ui_remove(provider_id))
        })
    }

    pub unsafe fn tuispi_provider_config<P: ServiceProvider>(
        runtime: &'static Runtime<P>,
        _callback: TUISPIDLLCALLBACK,
        _owner: HWND,
        provider_id: u32,
    ) -> i32 {
        boundary("TUISPI_providerConfig", FAILED, || {
            code(runtime.inner().provider().ui_configure(provider_id))
        })
    }
}

#[cfg(test)]
#[path = "abi_props.rs"]
mod props;
