//! The DLL's one export, for a host that loads the provider from `email_directory.dll` rather
//! than running the `email-directory` service: it registers the provider in this process and
//! hands out its GUID and the `NSPV2_ROUTINE` table, which the host passes to
//! `WSAAdvertiseProvider` (or calls directly, as the Wine test harness does).
//!
//! The body runs inside `winprov_core::boundary` (a panic becomes `WSASYSCALLFAILURE`); both
//! out-pointers are checked with `winprov_core::ffi` before anything happens.

use crate::{Config, EmailDirectory, identity};
use std::sync::OnceLock;
use winprov_core::{WsaError, boundary, ffi};
use winprov_nspv2::{Guid, NSPV2_ROUTINE};

/// Registers the provider once per process; every call returns the first outcome.
fn register_once() -> Result<(), WsaError> {
    static REGISTERED: OnceLock<Result<(), WsaError>> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        let provider = EmailDirectory::new(Config::from_env());
        match winprov_nspv2::register(identity::PROVIDER_ID, provider) {
            Ok(registration) => {
                // The routine table is process-wide and the host may call it until unload.
                registration.leak();
                Ok(())
            }
            Err(error) => {
                tracing::error!(%error, "registering the e-mail directory provider");
                Err(WsaError::WSAEALREADY)
            }
        }
    })
}

/// Registers the e-mail directory provider in this process (once; configured by
/// `EMAIL_DIRECTORY_FILE` and `EMAIL_DIRECTORY_DELAY_MS`), then writes its GUID to
/// `*provider_id` and the address of the routine table to `*routine`.
///
/// Returns 0, `WSAEFAULT` (10014) when an out-pointer is null or misaligned (nothing is
/// registered then), `WSAEALREADY` (10037) when another provider of this process holds the
/// GUID, or `WSASYSCALLFAILURE` (10107) after an internal error.
///
/// # Safety
/// Each pointer is null (refused) or points to memory writable as its type.
#[allow(non_snake_case)]
#[unsafe(no_mangle)]
pub unsafe extern "system" fn EmailDirectoryNspv2(
    provider_id: *mut Guid,
    routine: *mut *const NSPV2_ROUTINE,
) -> i32 {
    boundary(
        "EmailDirectoryNspv2",
        WsaError::WSASYSCALLFAILURE.raw(),
        || {
            if ffi::check(provider_id.cast_const()).is_err()
                || ffi::check(routine.cast_const()).is_err()
            {
                return WsaError::WSAEFAULT.raw();
            }
            if let Err(error) = register_once() {
                return error.raw();
            }
            let table: *const NSPV2_ROUTINE = winprov_nspv2::routine();
            // SAFETY: checked non-null and aligned above; the host passes a writable GUID.
            let id = unsafe { ffi::write(provider_id, identity::PROVIDER_ID) };
            // SAFETY: checked non-null and aligned above; the host passes a writable pointer.
            let table = unsafe { ffi::write(routine, table) };
            match id.and(table) {
                Ok(()) => 0,
                Err(_) => WsaError::WSAEFAULT.raw(),
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_out_pointers_are_refused() {
        let mut id = Guid::zeroed();
        let mut table: *const NSPV2_ROUTINE = std::ptr::null();
        // SAFETY: null pointers are what is tested; the other pointer is a valid local.
        let code = unsafe { EmailDirectoryNspv2(std::ptr::null_mut(), &mut table) };
        assert_eq!(code, WsaError::WSAEFAULT.raw());
        // SAFETY: as above.
        let code = unsafe { EmailDirectoryNspv2(&mut id, std::ptr::null_mut()) };
        assert_eq!(code, WsaError::WSAEFAULT.raw());
        assert!(table.is_null());
    }

    #[test]
    fn hands_out_the_id_and_the_routine_table_every_time() {
        for _ in 0..2 {
            let mut id = Guid::zeroed();
            let mut table: *const NSPV2_ROUTINE = std::ptr::null();
            // SAFETY: valid, writable locals.
            let code = unsafe { EmailDirectoryNspv2(&mut id, &mut table) };
            assert_eq!(code, 0);
            assert_eq!(id, identity::PROVIDER_ID);
            assert!(std::ptr::eq(table, winprov_nspv2::routine()));
        }
    }
}
