//! TAPI's provider registry, what a TSP's installer asks the system ([`ProviderRegistry`]): add
//! a provider (`lineAddProviderW`), remove one (`lineRemoveProvider`), read the list
//! (`lineGetProviderListW`). What is added or removed, and what a failure means, is
//! [`crate::install`]'s, portable and safe; this module is only the system's calls.
//!
//! On Windows, [`System`] implements [`ProviderRegistry`] with `tapi32.dll`, loaded from the
//! system directory and its functions resolved by name when called, so an installer still
//! starts where TAPI is missing and reports [`TapiError::Unavailable`] naming the function.
//! With the feature `testing`, `testing::registry::Simulated` is a registry played in memory.

use std::fmt;
use winprov_core::LineErr;

/// A TAPI call that failed. Keeps the function and its raw `LINEERR_*` code.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TapiError {
    /// The function returned `code` (a negative `LINEERR_*`, or whatever non-zero value this
    /// system's `tapi32.dll` returned).
    Failed {
        /// The function (`lineAddProviderW` …).
        function: &'static str,
        /// What it returned.
        code: LineErr,
    },
    /// This system has no `tapi32.dll`, or it has no such function.
    Unavailable {
        /// The function.
        function: &'static str,
    },
}

impl TapiError {
    /// The function that failed or is missing.
    pub fn function(&self) -> &'static str {
        match self {
            Self::Failed { function, .. } | Self::Unavailable { function } => function,
        }
    }

    /// The code the function returned, when it was called.
    pub fn code(&self) -> Option<LineErr> {
        match self {
            Self::Failed { code, .. } => Some(*code),
            Self::Unavailable { .. } => None,
        }
    }
}

impl fmt::Display for TapiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed { function, code } => write!(f, "{function} failed: {code}"),
            Self::Unavailable { function } => {
                write!(f, "{function} is not available on this system (tapi32.dll)")
            }
        }
    }
}

impl std::error::Error for TapiError {}

/// TAPI's provider registry, which [`crate::install`] adds providers to and removes them from.
///
/// Each method is one call of `tapi32.dll`, with the documented behaviour that
/// `testing::registry::Simulated` plays.
pub trait ProviderRegistry {
    /// `lineAddProviderW(file_name, NULL, &id)`: TAPI loads the provider from the system
    /// directory, calls its `TUISPI_providerInstall` and returns the permanent provider id it
    /// gave it.
    fn add_provider(&self, file_name: &str) -> Result<u32, TapiError>;

    /// `lineRemoveProvider(id, NULL)`: TAPI calls the provider's `TUISPI_providerRemove` and
    /// forgets it.
    fn remove_provider(&self, id: u32) -> Result<(), TapiError>;

    /// `lineGetProviderListW(0x00020000, list)` (TAPI 2.0's layout): `list` is the caller's
    /// `LINEPROVIDERLIST`; its `dwTotalSize` is set to `list`'s size in bytes here, before the
    /// call. A list that does not fit leaves `dwNeededSize` above `dwTotalSize`.
    fn get_provider_list(&self, list: &mut [u32]) -> Result<(), TapiError>;
}

/// `tapi32.dll` of this system.
#[cfg(windows)]
#[derive(Clone, Copy, Debug, Default)]
pub struct System;

/// The system directory (`GetSystemDirectoryW`), where TAPI looks for a provider added by
/// file name.
#[cfg(windows)]
pub fn system_directory() -> std::io::Result<std::path::PathBuf> {
    system::directory()
}

#[cfg(windows)]
mod system {
    use super::{ProviderRegistry, System, TapiError};
    use std::ffi::{CStr, c_void};
    use std::path::PathBuf;
    use winprov_bindings::tapi::{
        FreeLibrary, GetProcAddress, GetSystemDirectoryW, HMODULE, LOAD_LIBRARY_SEARCH_SYSTEM32,
        LoadLibraryExW,
    };
    use winprov_bindings::windows_core::{PCSTR, PCWSTR};
    use winprov_core::LineErr;

    /// The `dwAPIVersion` the provider list is asked in: TAPI 2.0, whose `LINEPROVIDERLIST`
    /// is the layout `crate::install` decodes.
    const PROVIDER_LIST_VERSION: u32 = 0x0002_0000;

    // The prototypes of the functions resolved by name (tapi.h).

    /// `lineAddProviderW`.
    type LineAddProviderW =
        unsafe extern "system" fn(file: PCWSTR, owner: *mut c_void, id: *mut u32) -> i32;
    /// `lineRemoveProvider`.
    type LineRemoveProvider = unsafe extern "system" fn(id: u32, owner: *mut c_void) -> i32;
    /// `lineGetProviderListW` (`LPLINEPROVIDERLIST` as its first DWORD).
    type LineGetProviderListW = unsafe extern "system" fn(version: u32, list: *mut u32) -> i32;

    /// `tapi32.dll`, loaded for one function; freed on drop.
    struct Tapi32(HMODULE);

    impl Tapi32 {
        /// `function` of tapi32, or [`TapiError::Unavailable`].
        ///
        /// # Safety
        /// `F` is the `unsafe extern "system" fn` type of `function`'s prototype.
        unsafe fn function<F: Copy>(function: &'static CStr) -> Result<(Self, F), TapiError> {
            const { assert!(size_of::<F>() == size_of::<usize>()) };
            let unavailable = || TapiError::Unavailable {
                function: function.to_str().unwrap_or("tapi32 function"),
            };
            let name = winprov_core::ffi::to_wide_nul("tapi32.dll");
            // SAFETY: a NUL-terminated name that outlives the call; the system directory's copy.
            let module = unsafe {
                LoadLibraryExW(PCWSTR(name.as_ptr()), None, LOAD_LIBRARY_SEARCH_SYSTEM32)
            }
            .map_err(|_| unavailable())?;
            let tapi = Self(module);
            // SAFETY: a loaded module and a NUL-terminated name.
            let address = unsafe { GetProcAddress(module, PCSTR(function.as_ptr().cast())) }
                .ok_or_else(unavailable)?;
            // SAFETY: the caller names the export's prototype as `F`, a function pointer (its
            // size is checked above); the module stays loaded as long as `tapi`, returned with
            // it.
            let typed = unsafe { std::mem::transmute_copy::<_, F>(&address) };
            Ok((tapi, typed))
        }
    }

    impl Drop for Tapi32 {
        fn drop(&mut self) {
            // SAFETY: the handle of a successful LoadLibraryExW, freed once, here.
            if let Err(error) = unsafe { FreeLibrary(self.0) } {
                tracing::warn!(%error, "FreeLibrary of tapi32 failed");
            }
        }
    }

    fn outcome(function: &'static str, code: i32) -> Result<(), TapiError> {
        match code {
            0 => Ok(()),
            _ => Err(TapiError::Failed {
                function,
                code: LineErr::from_raw(code),
            }),
        }
    }

    impl ProviderRegistry for System {
        fn add_provider(&self, file_name: &str) -> Result<u32, TapiError> {
            // SAFETY: `LineAddProviderW` is lineAddProviderW's prototype.
            let (_tapi, add) =
                unsafe { Tapi32::function::<LineAddProviderW>(c"lineAddProviderW")? };
            let file = winprov_core::ffi::to_wide_nul(file_name);
            let mut id = 0u32;
            // SAFETY: a NUL-terminated file name, no owner window, a writable DWORD; all
            // outlive the call, and tapi32 stays loaded during it (`_tapi`).
            let code = unsafe { add(PCWSTR(file.as_ptr()), std::ptr::null_mut(), &mut id) };
            outcome("lineAddProviderW", code).map(|()| id)
        }

        fn remove_provider(&self, id: u32) -> Result<(), TapiError> {
            // SAFETY: `LineRemoveProvider` is lineRemoveProvider's prototype.
            let (_tapi, remove) =
                unsafe { Tapi32::function::<LineRemoveProvider>(c"lineRemoveProvider")? };
            // SAFETY: no pointer but the NULL owner window; tapi32 stays loaded.
            let code = unsafe { remove(id, std::ptr::null_mut()) };
            outcome("lineRemoveProvider", code)
        }

        fn get_provider_list(&self, list: &mut [u32]) -> Result<(), TapiError> {
            const FUNCTION: &str = "lineGetProviderListW";
            // An empty slice has no dwTotalSize to write; one past 4 GiB cannot state its size.
            let Some(total) = u32::try_from(list.len() * 4).ok().filter(|&t| t > 0) else {
                return outcome(FUNCTION, LineErr::LINEERR_STRUCTURETOOSMALL.raw());
            };
            list[0] = total;
            // SAFETY: `LineGetProviderListW` is lineGetProviderListW's prototype.
            let (_tapi, get) =
                unsafe { Tapi32::function::<LineGetProviderListW>(c"lineGetProviderListW")? };
            // SAFETY: `list` is writable and 4-aligned for `dwTotalSize` = `total` bytes, which
            // TAPI writes no further than; tapi32 stays loaded during the call.
            let code = unsafe { get(PROVIDER_LIST_VERSION, list.as_mut_ptr()) };
            outcome(FUNCTION, code)
        }
    }

    pub(super) fn directory() -> std::io::Result<PathBuf> {
        let mut buffer = vec![0u16; 261];
        loop {
            // SAFETY: `buffer` is writable for its length in UTF-16 units, which the binding
            // passes as the size.
            let length = unsafe { GetSystemDirectoryW(Some(&mut buffer)) } as usize;
            if length == 0 {
                return Err(std::io::Error::last_os_error());
            }
            if length < buffer.len() {
                return Ok(PathBuf::from(String::from_utf16_lossy(&buffer[..length])));
            }
            // Too small: `length` is the size needed, terminator included.
            buffer = vec![0u16; length];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_keeps_its_function_and_code() {
        let error = TapiError::Failed {
            function: "lineRemoveProvider",
            code: LineErr::LINEERR_INVALPARAM,
        };
        assert_eq!(error.code(), Some(LineErr::LINEERR_INVALPARAM));
        assert_eq!(error.function(), "lineRemoveProvider");
        assert_eq!(
            error.to_string(),
            "lineRemoveProvider failed: LINEERR_INVALPARAM (0x80000032)"
        );
        let missing = TapiError::Unavailable {
            function: "lineAddProviderW",
        };
        assert_eq!(missing.code(), None);
        assert!(missing.to_string().starts_with("lineAddProviderW is not"));
    }
}
