//! The Winsock catalog's write side, what a layered provider's installer asks the system
//! ([`CatalogWriter`]): enumerate a catalog, install the layer and its protocol chains, set its
//! LSP categories, write a catalog order, remove a provider. The installer's logic (what is
//! installed, in which order, and what a failure undoes) is [`crate::install`]'s, portable and
//! safe; this module is only the system's calls.
//!
//! # Two catalogs on 64-bit Windows
//!
//! 64-bit Windows keeps two Winsock catalogs, one for 64-bit processes ([`View::Native`]) and
//! one for 32-bit processes ([`View::Wow64`]). `WSCInstallProviderAndChains64_32` installs into
//! both at once, but "all calls not specifically designed for 32-bit (for example, all functions
//! that do not end in "32") operate on the native 64-bit catalog" (the function's page): the
//! 32-bit catalog is enumerated, ordered, categorized and cleaned with `WSCEnumProtocols32`,
//! `WSCWriteProviderOrder32`, `WSCSetProviderInfo32` and `WSCDeinstallProvider32`. An uninstaller
//! that calls only `WSCDeinstallProvider` leaves the layer in every 32-bit process. A 32-bit
//! (x86) build knows one catalog, its own, and installs with `WSCInstallProviderAndChains`.
//!
//! # Errors
//!
//! Each call's failure keeps its raw code ([`WscError::Failed`]): the `lpErrno` of the `WSC*`
//! functions, the return value itself for `WSCWriteProviderOrder` / `WSCWriteProviderOrder32`.
//! The functions Wine's `ws2_32.dll` lacks (every `…32` one, `WSCInstallProviderAndChains*`,
//! `WSCSetProviderInfo`) are resolved by name when called, so a program that can install a layer
//! still loads there, and reports [`WscError::Unavailable`]. Without `WSCEnumProtocols32` there
//! is no 32-bit catalog to reach: `abi::System`'s [`views`](CatalogWriter::views) is then
//! `[Native]` alone, so reading the catalog, and removing a layer that is not installed, work
//! there; installing fails with `WSCInstallProviderAndChains64_32` unavailable.
//!
//! On Windows, `abi::System` (the read side's [`Catalog`](crate::abi::Catalog)
//! too) implements [`CatalogWriter`] with ws2_32. With the feature `testing`,
//! `testing::catalog::Simulated` is a Winsock catalog played in memory.

use crate::abi::order::ProviderOrder;
use std::fmt;
use winprov_bindings::windows_core::GUID;
use winprov_bindings::ws2spi::WSAPROTOCOL_INFOW;
use winprov_core::WsaError;

/// Which of the system's Winsock catalogs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum View {
    /// The catalog of the process's own architecture (the 64-bit one on 64-bit Windows).
    Native,
    /// The 32-bit catalog of 64-bit Windows (the `…32` functions).
    Wow64,
}

impl fmt::Display for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Native => "native catalog",
            Self::Wow64 => "32-bit catalog",
        })
    }
}

/// The protocol an entry serves: `{iAddressFamily, iSocketType, iProtocol}`, the only members
/// `WSCInstallProviderAndChains` examines in the entries it is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProtocolKey {
    /// `iAddressFamily` (`AF_INET` 2, `AF_INET6` 23 …).
    pub address_family: i32,
    /// `iSocketType` (`SOCK_STREAM` 1, `SOCK_DGRAM` 2, `SOCK_RAW` 3 …).
    pub socket_type: i32,
    /// `iProtocol` (`IPPROTO_TCP` 6, `IPPROTO_UDP` 17 …).
    pub protocol: i32,
}

impl ProtocolKey {
    /// The key of a catalog entry.
    pub fn of(entry: &WSAPROTOCOL_INFOW) -> Self {
        Self {
            address_family: entry.iAddressFamily,
            socket_type: entry.iSocketType,
            protocol: entry.iProtocol,
        }
    }

    /// A `WSAPROTOCOL_INFOW` with this key and nothing else, as the list
    /// `WSCInstallProviderAndChains` takes.
    pub fn to_protocol_info(self) -> WSAPROTOCOL_INFOW {
        WSAPROTOCOL_INFOW {
            iAddressFamily: self.address_family,
            iSocketType: self.socket_type,
            iProtocol: self.protocol,
            ..WSAPROTOCOL_INFOW::default()
        }
    }
}

/// What `WSCInstallProviderAndChains64_32` (x86: `WSCInstallProviderAndChains`) is given: the
/// layer's hidden entry is made for `provider`, `name` and `service_flags`, and one protocol
/// chain over the top-most entry of each key of `over` (`None`: `lpProtocolInfoList` NULL, a
/// chain over the base provider of each distinct key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainsRequest {
    /// `lpProviderId`: the layer's GUID.
    pub provider: GUID,
    /// `lpszProviderDllPath`: the DLL (64-bit on 64-bit Windows); environment strings allowed.
    pub path: String,
    /// `lpszProviderDllPath32`: the 32-bit DLL on 64-bit Windows. `None` passes NULL: then the
    /// system requires `path` to be `%windir%\system32\<dll>` and loads the 32-bit DLL of the
    /// same name from the WOW64 system directory. Not used by an x86 build.
    pub path32: Option<String>,
    /// `lpszLspName`: the layer's name, its hidden entry's `szProtocol`.
    pub name: String,
    /// `dwServiceFlags`: `XP1_IFS_HANDLES` for an IFS layer, else 0.
    pub service_flags: u32,
    /// `lpProtocolInfoList`: the keys to layer over; `None` passes NULL.
    pub over: Option<Vec<ProtocolKey>>,
}

/// A `WSC*` call that failed. See the [module documentation](self).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WscError {
    /// The function failed with `code`.
    Failed {
        /// The function (`WSCInstallProviderAndChains64_32` …).
        function: &'static str,
        /// Its `lpErrno`, or the code it returned (`WSCWriteProviderOrder*`).
        code: WsaError,
    },
    /// This system's `ws2_32.dll` has no such function (Wine has none of the `…32` functions,
    /// nor `WSCInstallProviderAndChains*`, nor `WSCSetProviderInfo`).
    Unavailable {
        /// The function.
        function: &'static str,
    },
}

impl WscError {
    /// The function that failed or is missing.
    pub fn function(&self) -> &'static str {
        match self {
            Self::Failed { function, .. } | Self::Unavailable { function } => function,
        }
    }

    /// The Winsock code, when the function reported one.
    pub fn code(&self) -> Option<WsaError> {
        match self {
            Self::Failed { code, .. } => Some(*code),
            Self::Unavailable { .. } => None,
        }
    }
}

impl fmt::Display for WscError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed { function, code } => write!(f, "{function} failed: {code}"),
            Self::Unavailable { function } => {
                write!(f, "{function} is not available in this system's ws2_32.dll")
            }
        }
    }
}

impl std::error::Error for WscError {}

/// The Winsock catalog's write side. See the [module documentation](self).
///
/// The methods are one `WSC*` call each, in the catalog `view` names; what they mean is the
/// documented behaviour of that call, which `testing::catalog::Simulated` plays.
pub trait CatalogWriter {
    /// The catalogs this system keeps: `[Native, Wow64]` on 64-bit Windows, `[Native]` for an
    /// x86 build (and where ws2_32 has no `WSCEnumProtocols32`: Wine's). [`Native`](View::Native)
    /// comes first.
    fn views(&self) -> Vec<View>;

    /// Every entry of the catalog, layers' hidden entries included, in catalog order
    /// (`WSCEnumProtocols` / `WSCEnumProtocols32` with no protocol filter).
    fn enumerate(&self, view: View) -> Result<Vec<WSAPROTOCOL_INFOW>, WscError>;

    /// `WSCInstallProviderAndChains64_32` (x86: `WSCInstallProviderAndChains`): the layer's
    /// hidden entry and its chains, in every catalog.
    fn install_provider_and_chains(&self, request: &ChainsRequest) -> Result<(), WscError>;

    /// `WSCSetProviderInfo(ProviderInfoLspCategories)` / `WSCSetProviderInfo32`: the `LSP_*`
    /// categories of `provider`.
    fn set_lsp_categories(
        &self,
        view: View,
        provider: &GUID,
        categories: u32,
    ) -> Result<(), WscError>;

    /// `WSCWriteProviderOrder` / `WSCWriteProviderOrder32` with `order`, which lists every
    /// entry of the catalog once (R-WSP-21: it is made only from a catalog).
    fn write_order(&self, view: View, order: &ProviderOrder) -> Result<(), WscError>;

    /// `WSCDeinstallProvider` / `WSCDeinstallProvider32`: every entry of `provider`.
    fn deinstall(&self, view: View, provider: &GUID) -> Result<(), WscError>;
}

// ---------------------------------------------------------------------------------------------
// Windows: ws2_32

#[cfg(windows)]
mod system {
    use super::{ChainsRequest, View, WscError};
    use crate::abi::catalog::{Catalog, CatalogError, System};
    use crate::abi::install::CatalogWriter;
    use crate::abi::order::ProviderOrder;
    use std::ffi::CStr;
    use winprov_bindings::windows_core::{GUID, PCSTR, PCWSTR};
    use winprov_bindings::ws2spi::{
        FreeLibrary, GetProcAddress, HMODULE, LOAD_LIBRARY_SEARCH_SYSTEM32, LoadLibraryExW,
        ProviderInfoLspCategories, SOCKET_ERROR, WSAPROTOCOL_INFOW, WSC_PROVIDER_INFO_TYPE,
        WSCDeinstallProvider,
    };
    use winprov_core::WsaError;

    /// How many times `WSCEnumProtocols32`'s buffer is sized again (the catalog growing
    /// between two calls) before the error stands.
    const ATTEMPTS: usize = 4;

    // The prototypes of the functions resolved by name (ws2spi.h, sporder.h; the same
    // parameters as the metadata's declarations in `winprov_bindings::ws2spi`).

    /// `WSCEnumProtocols32`.
    type EnumProtocols32 = unsafe extern "system" fn(
        lpiprotocols: *const i32,
        lpprotocolbuffer: *mut WSAPROTOCOL_INFOW,
        lpdwbufferlength: *mut u32,
        lperrno: *mut i32,
    ) -> i32;
    /// `WSCInstallProviderAndChains64_32`.
    #[cfg(not(target_arch = "x86"))]
    type InstallProviderAndChains = unsafe extern "system" fn(
        lpproviderid: *const GUID,
        lpszproviderdllpath: PCWSTR,
        lpszproviderdllpath32: PCWSTR,
        lpszlspname: PCWSTR,
        dwserviceflags: u32,
        lpprotocolinfolist: *mut WSAPROTOCOL_INFOW,
        dwnumberofentries: u32,
        lpdwcatalogentryid: *mut u32,
        lperrno: *mut i32,
    ) -> i32;
    /// `WSCInstallProviderAndChains` (x86 only; absent from the metadata, see
    /// `winprov_bindings::not_in_metadata::x86`).
    #[cfg(target_arch = "x86")]
    type InstallProviderAndChains = unsafe extern "system" fn(
        lpproviderid: *const GUID,
        lpszproviderdllpath: PCWSTR,
        lpszlspname: PCWSTR,
        dwserviceflags: u32,
        lpprotocolinfolist: *mut WSAPROTOCOL_INFOW,
        dwnumberofentries: u32,
        lpdwcatalogentryid: *mut u32,
        lperrno: *mut i32,
    ) -> i32;
    /// `WSCSetProviderInfo` and `WSCSetProviderInfo32`.
    type SetProviderInfo = unsafe extern "system" fn(
        lpproviderid: *const GUID,
        infotype: WSC_PROVIDER_INFO_TYPE,
        info: *const u8,
        infosize: usize,
        flags: u32,
        lperrno: *mut i32,
    ) -> i32;
    /// `WSCWriteProviderOrder32`: returns the code itself.
    type WriteProviderOrder32 =
        unsafe extern "system" fn(lpwdcatalogentryid: *mut u32, dwnumberofentries: u32) -> i32;
    /// `WSCDeinstallProvider32`.
    type DeinstallProvider32 =
        unsafe extern "system" fn(lpproviderid: *const GUID, lperrno: *mut i32) -> i32;

    #[cfg(not(target_arch = "x86"))]
    const INSTALL: &CStr = c"WSCInstallProviderAndChains64_32";
    #[cfg(target_arch = "x86")]
    const INSTALL: &CStr = c"WSCInstallProviderAndChains";

    /// The system's `ws2_32.dll`, loaded for the functions resolved by name; freed on drop.
    struct Ws2(HMODULE);

    impl Ws2 {
        /// `function` of ws2_32, or [`WscError::Unavailable`].
        ///
        /// # Safety
        /// `F` is the `unsafe extern "system" fn` type of `function`'s prototype.
        unsafe fn function<F: Copy>(function: &'static CStr) -> Result<(Self, F), WscError> {
            const { assert!(size_of::<F>() == size_of::<usize>()) };
            let unavailable = || WscError::Unavailable {
                function: function.to_str().unwrap_or("ws2_32 function"),
            };
            let name: Vec<u16> = "ws2_32.dll".encode_utf16().chain([0]).collect();
            // SAFETY: a NUL-terminated name; the system directory's copy (already loaded in
            // any process that links ws2_32, so this only takes a reference).
            let module = unsafe {
                LoadLibraryExW(PCWSTR(name.as_ptr()), None, LOAD_LIBRARY_SEARCH_SYSTEM32)
            }
            .map_err(|_| unavailable())?;
            let ws2 = Self(module);
            // SAFETY: a loaded module and a NUL-terminated name.
            let address = unsafe { GetProcAddress(module, PCSTR(function.as_ptr().cast())) }
                .ok_or_else(unavailable)?;
            // SAFETY: the caller names the export's prototype as `F`, a function pointer (its
            // size is checked above); the module stays loaded as long as `ws2`, returned with it.
            let typed = unsafe { std::mem::transmute_copy::<_, F>(&address) };
            Ok((ws2, typed))
        }
    }

    impl Drop for Ws2 {
        fn drop(&mut self) {
            // SAFETY: the handle of a successful LoadLibraryExW, freed once, here.
            if let Err(error) = unsafe { FreeLibrary(self.0) } {
                tracing::warn!(%error, "FreeLibrary of ws2_32 failed");
            }
        }
    }

    fn failed(function: &'static str, code: i32) -> WscError {
        WscError::Failed {
            function,
            code: WsaError::from_raw(code),
        }
    }

    fn wide(text: &str) -> Vec<u16> {
        text.encode_utf16().chain([0]).collect()
    }

    /// `WSCEnumProtocols32`, sized the documented way (a first call with no buffer fails with
    /// `WSAENOBUFS` and writes the size; the catalog may grow between two calls).
    fn enumerate32() -> Result<Vec<WSAPROTOCOL_INFOW>, WscError> {
        const FUNCTION: &str = "WSCEnumProtocols32";
        // SAFETY: `EnumProtocols32` is WSCEnumProtocols32's prototype.
        let (_ws2, enumerate) = unsafe { Ws2::function::<EnumProtocols32>(c"WSCEnumProtocols32")? };
        let item = size_of::<WSAPROTOCOL_INFOW>();
        let mut entries: Vec<WSAPROTOCOL_INFOW> = Vec::new();
        for _ in 0..ATTEMPTS {
            let mut bytes = u32::try_from(entries.len() * item).unwrap_or(u32::MAX);
            let buffer = if entries.is_empty() {
                std::ptr::null_mut()
            } else {
                entries.as_mut_ptr()
            };
            let mut errno = 0;
            // SAFETY: no protocol filter; the buffer is NULL with a length of 0, or `entries`,
            // writable for `bytes` bytes; live locals for the rest.
            let count = unsafe { enumerate(std::ptr::null(), buffer, &mut bytes, &mut errno) };
            if count != SOCKET_ERROR {
                let count = usize::try_from(count).unwrap_or(0).min(entries.len());
                entries.truncate(count);
                return Ok(entries);
            }
            if errno != WsaError::WSAENOBUFS.raw() {
                return Err(failed(FUNCTION, errno));
            }
            entries = vec![WSAPROTOCOL_INFOW::default(); (bytes as usize).div_ceil(item)];
        }
        Err(failed(FUNCTION, WsaError::WSAENOBUFS.raw()))
    }

    impl CatalogWriter for System {
        fn views(&self) -> Vec<View> {
            if cfg!(target_arch = "x86") {
                return vec![View::Native];
            }
            // A ws2_32 without WSCEnumProtocols32 (Wine's) gives no access to a 32-bit catalog:
            // the native one is all this system has. Every 64-bit Windows exports it.
            // SAFETY: `EnumProtocols32` is WSCEnumProtocols32's prototype; it is not called.
            let wow64 = unsafe { Ws2::function::<EnumProtocols32>(c"WSCEnumProtocols32") };
            if wow64.is_ok() {
                vec![View::Native, View::Wow64]
            } else {
                vec![View::Native]
            }
        }

        fn enumerate(&self, view: View) -> Result<Vec<WSAPROTOCOL_INFOW>, WscError> {
            match view {
                View::Native => self.protocols().map_err(|error| match error {
                    CatalogError::Enumerate { code } => WscError::Failed {
                        function: "WSCEnumProtocols",
                        code,
                    },
                    other => WscError::Failed {
                        function: "WSCEnumProtocols",
                        code: other.code(),
                    },
                }),
                View::Wow64 => enumerate32(),
            }
        }

        fn install_provider_and_chains(&self, request: &ChainsRequest) -> Result<(), WscError> {
            let function = INSTALL.to_str().unwrap_or("WSCInstallProviderAndChains");
            // SAFETY: `InstallProviderAndChains` is this target's prototype of `INSTALL`.
            let (_ws2, install) = unsafe { Ws2::function::<InstallProviderAndChains>(INSTALL)? };
            let path = wide(&request.path);
            let name = wide(&request.name);
            let mut list: Vec<WSAPROTOCOL_INFOW> = request
                .over
                .iter()
                .flatten()
                .map(|key| key.to_protocol_info())
                .collect();
            let (list_pointer, count) = match &request.over {
                None => (std::ptr::null_mut(), 0),
                Some(_) => (
                    list.as_mut_ptr(),
                    u32::try_from(list.len())
                        .map_err(|_| failed(function, WsaError::WSAEINVAL.raw()))?,
                ),
            };
            let mut errno = 0;
            #[cfg(not(target_arch = "x86"))]
            let result = {
                let path32 = request.path32.as_deref().map(wide);
                let path32_pointer = path32
                    .as_ref()
                    .map_or(PCWSTR::null(), |units| PCWSTR(units.as_ptr()));
                // SAFETY: a live GUID; NUL-terminated strings (the 32-bit path NULL when absent,
                // as documented); the list NULL with a count of 0, or `list`'s `count` entries;
                // no catalog id asked for (optional); a live `errno`. ws2_32 keeps no pointer.
                unsafe {
                    install(
                        &request.provider,
                        PCWSTR(path.as_ptr()),
                        path32_pointer,
                        PCWSTR(name.as_ptr()),
                        request.service_flags,
                        list_pointer,
                        count,
                        std::ptr::null_mut(),
                        &mut errno,
                    )
                }
            };
            #[cfg(target_arch = "x86")]
            // SAFETY: as above, without the 32-bit path x86 does not take.
            let result = unsafe {
                install(
                    &request.provider,
                    PCWSTR(path.as_ptr()),
                    PCWSTR(name.as_ptr()),
                    request.service_flags,
                    list_pointer,
                    count,
                    std::ptr::null_mut(),
                    &mut errno,
                )
            };
            match result {
                0 => Ok(()),
                _ => Err(failed(function, errno)),
            }
        }

        fn set_lsp_categories(
            &self,
            view: View,
            provider: &GUID,
            categories: u32,
        ) -> Result<(), WscError> {
            let function = match view {
                View::Native => c"WSCSetProviderInfo",
                View::Wow64 => c"WSCSetProviderInfo32",
            };
            // SAFETY: both have `SetProviderInfo`'s prototype.
            let (_ws2, set) = unsafe { Ws2::function::<SetProviderInfo>(function)? };
            let info = categories.to_ne_bytes();
            let mut errno = 0;
            // SAFETY: a live GUID; `info` is a DWORD of `info.len()` bytes, as
            // ProviderInfoLspCategories takes; no flags; a live `errno`.
            let result = unsafe {
                set(
                    provider,
                    ProviderInfoLspCategories,
                    info.as_ptr(),
                    info.len(),
                    0,
                    &mut errno,
                )
            };
            match result {
                0 => Ok(()),
                _ => Err(failed(
                    function.to_str().unwrap_or("WSCSetProviderInfo"),
                    errno,
                )),
            }
        }

        fn write_order(&self, view: View, order: &ProviderOrder) -> Result<(), WscError> {
            match view {
                View::Native => order.write().map_err(|code| WscError::Failed {
                    function: "WSCWriteProviderOrder",
                    code,
                }),
                View::Wow64 => {
                    const FUNCTION: &str = "WSCWriteProviderOrder32";
                    // SAFETY: `WriteProviderOrder32` is its prototype.
                    let (_ws2, write) = unsafe {
                        Ws2::function::<WriteProviderOrder32>(c"WSCWriteProviderOrder32")?
                    };
                    let mut ids = order.ids().to_vec();
                    let count = u32::try_from(ids.len())
                        .map_err(|_| failed(FUNCTION, WsaError::WSAEINVAL.raw()))?;
                    // SAFETY: `ids` is a live, writable array of `count` catalog ids for the
                    // call; ws2_32 reads it and keeps no pointer to it.
                    match unsafe { write(ids.as_mut_ptr(), count) } {
                        0 => Ok(()),
                        code => Err(failed(FUNCTION, code)),
                    }
                }
            }
        }

        fn deinstall(&self, view: View, provider: &GUID) -> Result<(), WscError> {
            let mut errno = 0;
            let (function, result) = match view {
                // SAFETY: a live GUID and `errno`.
                View::Native => ("WSCDeinstallProvider", unsafe {
                    WSCDeinstallProvider(provider, &mut errno)
                }),
                View::Wow64 => {
                    // SAFETY: `DeinstallProvider32` is its prototype.
                    let (_ws2, deinstall) =
                        unsafe { Ws2::function::<DeinstallProvider32>(c"WSCDeinstallProvider32")? };
                    // SAFETY: a live GUID and `errno`.
                    ("WSCDeinstallProvider32", unsafe {
                        deinstall(provider, &mut errno)
                    })
                }
            };
            match result {
                0 => Ok(()),
                _ => Err(failed(function, errno)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_the_three_members_the_system_examines() {
        let entry = WSAPROTOCOL_INFOW {
            iAddressFamily: 23,
            iSocketType: 1,
            iProtocol: 6,
            dwCatalogEntryId: 1001,
            ..WSAPROTOCOL_INFOW::default()
        };
        let key = ProtocolKey::of(&entry);
        assert_eq!(
            key,
            ProtocolKey {
                address_family: 23,
                socket_type: 1,
                protocol: 6
            }
        );
        let info = key.to_protocol_info();
        assert_eq!(ProtocolKey::of(&info), key);
        assert_eq!(info.dwCatalogEntryId, 0);
    }

    #[test]
    fn an_error_keeps_its_function_and_code() {
        let error = WscError::Failed {
            function: "WSCDeinstallProvider32",
            code: WsaError::WSANO_RECOVERY,
        };
        assert_eq!(error.code(), Some(WsaError::WSANO_RECOVERY));
        assert_eq!(
            error.to_string(),
            "WSCDeinstallProvider32 failed: WSANO_RECOVERY (11003)"
        );
        let missing = WscError::Unavailable {
            function: "WSCSetProviderInfo",
        };
        assert_eq!(missing.code(), None);
        assert_eq!(missing.function(), "WSCSetProviderInfo");
    }
}
