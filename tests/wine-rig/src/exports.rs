//! The DLL's exports: raw ABI over [`crate::Rig`]. Every body runs inside the core's panic
//! boundary; every pointer from the host goes through `winprov_core::ffi`'s checks.
//!
//! Error convention (like WSPStartup's): the return value is 0 or a Winsock error code.

use crate::{Rig, live_objects};
use std::sync::OnceLock;
use std::time::Duration;
use winprov_core::{WsaError, boundary, boundary::caught_panics, ffi};

/// What a panicking export returns.
const PANIC_CODE: WsaError = WsaError::WSASYSCALLFAILURE;

/// The host's completion callback: `(context, code)`, called exactly once per `rig_wait`.
pub type RigCallback = Option<unsafe extern "system" fn(context: usize, code: i32)>;

fn rig() -> &'static Rig {
    static RIG: OnceLock<Rig> = OnceLock::new();
    RIG.get_or_init(Rig::default)
}

fn code(result: Result<(), WsaError>) -> i32 {
    result.err().map_or(0, WsaError::raw)
}

fn fault(_: ffi::PtrError) -> WsaError {
    WsaError::WSAEFAULT
}

/// Creates an object holding `value` and writes its handle to `*handle`.
///
/// # Safety
/// `handle` is null (refused) or points to a writable pointer-sized value.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn rig_open(value: u32, handle: *mut usize) -> i32 {
    boundary("rig_open", PANIC_CODE.raw(), || {
        code(ffi::check(handle).map_err(fault).and_then(|_| {
            let raw = rig().open(value)?;
            // SAFETY: `handle` was checked non-null and aligned; the host passes a writable
            // pointer-sized out parameter.
            unsafe { ffi::write(handle, raw) }.map_err(fault)
        }))
    })
}

/// Blocks for up to `timeout_ms` or until `rig_close(handle)`; calls `callback(context, code)`
/// exactly once with the code it returns.
///
/// # Safety
/// `callback` is null or a function of this signature, callable from any thread during the call.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn rig_wait(
    handle: usize,
    timeout_ms: u32,
    callback: RigCallback,
    context: usize,
) -> i32 {
    boundary("rig_wait", PANIC_CODE.raw(), || {
        let report = move |error: WsaError| {
            if let Some(callback) = callback {
                // SAFETY: the host supplies a callback with this signature, valid for the call.
                unsafe { callback(context, error.raw()) }
            }
        };
        code(rig().wait(handle, Duration::from_millis(timeout_ms.into()), report))
    })
}

/// Closes `handle`; a `rig_wait` blocked on it returns `WSA_E_CANCELLED` (10111).
#[unsafe(no_mangle)]
pub extern "system" fn rig_close(handle: usize) -> i32 {
    boundary("rig_close", PANIC_CODE.raw(), || code(rig().close(handle)))
}

/// Writes the object's description, NUL-terminated UTF-16, into `buffer`, whose capacity in
/// units is `*length`. Too small: `WSAEFAULT` with the needed length in `*length`.
///
/// # Safety
/// `length` is null (refused) or a readable, writable `u32`; `buffer` holds `*length` writable
/// units.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn rig_describe(
    handle: usize,
    buffer: *mut u16,
    length: *mut u32,
) -> i32 {
    boundary("rig_describe", PANIC_CODE.raw(), || {
        code((|| {
            // SAFETY: the host passes a readable u32 in/out parameter when non-null and aligned.
            let capacity = unsafe { ffi::read(length) }.map_err(fault)?;
            let text = ffi::to_wide_nul(&rig().describe(handle)?);
            let needed = u32::try_from(text.len()).map_err(|_| WsaError::WSAEFAULT)?;
            if capacity < needed {
                // SAFETY: `length` was read just above, so it is valid for a write too.
                unsafe { ffi::write(length, needed) }.map_err(fault)?;
                return Err(WsaError::WSAEFAULT);
            }
            // SAFETY: the host promises `capacity` writable units at `buffer`.
            let out = unsafe { ffi::slice_mut(buffer, text.len()) }.map_err(fault)?;
            out.copy_from_slice(&text);
            // SAFETY: as above, `length` is a valid u32 in/out parameter.
            unsafe { ffi::write(length, needed) }.map_err(fault)
        })())
    })
}

/// Panics inside the boundary; returns what any panicking export returns.
#[unsafe(no_mangle)]
pub extern "system" fn rig_panic(kind: u32) -> i32 {
    boundary("rig_panic", PANIC_CODE.raw(), || match kind {
        0 => panic!("rig_panic: a provider bug"),
        1 => panic!("rig_panic: formatted {}", kind),
        _ => std::panic::panic_any(kind),
    })
}

/// How many panics the boundary caught in this process.
#[unsafe(no_mangle)]
pub extern "system" fn rig_panics_caught() -> u64 {
    boundary("rig_panics_caught", u64::MAX, caught_panics)
}

/// How many rig objects are alive (handles open plus objects held by running calls).
#[unsafe(no_mangle)]
pub extern "system" fn rig_live_objects() -> u32 {
    boundary("rig_live_objects", u32::MAX, || {
        u32::try_from(live_objects()).unwrap_or(u32::MAX)
    })
}
