//! What a layered provider asks the system to find its lower provider ([`Catalog`]): the
//! Winsock catalog, a provider's DLL path, and the DLL's `WSPStartup`.
//!
//! - [`Catalog::protocols`]: every catalog entry, the layers' hidden entries (`ChainLen` 0)
//!   included — `WSCEnumProtocols(NULL, …)`, not `WSAEnumProtocols`, which hides them. The
//!   buffer is sized the documented way: a first call with none fails with `WSAENOBUFS` and
//!   writes the size needed, the second fills it; the catalog may grow between the two, so a
//!   `WSAENOBUFS` again sizes again (a few times, then the error stands).
//! - [`Catalog::provider_path`]: `WSCGetProviderPath` for a provider GUID (a `MAX_PATH`
//!   buffer, then the longest path Windows has when that is too small), then
//!   `ExpandEnvironmentStringsW`, since the catalog keeps paths such as
//!   `%SystemRoot%\system32\mswsock.dll` unexpanded. An empty path is a failure (Wine's
//!   `WSCGetProviderPath` is a stub that succeeds with nothing written).
//! - [`Catalog::load`]: the DLL, loaded as ws2_32 loads a provider (`LoadLibraryExW` with no
//!   flags, which is `LoadLibraryW`), and its `WSPStartup` (`GetProcAddress`). The [`Module`]
//!   keeps the DLL loaded until it is dropped (`FreeLibrary`).
//!
//! On Windows, `System` asks ws2_32 and the loader. A simulator supplies its own:
//! [`InProcess`] is a catalog of `WSAPROTOCOL_INFOW`s given as values, whose providers are
//! `WSPStartup` functions of the process itself (an `LPWSPSTARTUP` each, under a path of the
//! simulator's choosing), and which counts the modules it handed out and not yet released.
//!
//! A [`Module`] is the one thing the framework calls without checking it first: its
//! `WSPStartup`, and the proc table that hands out. It is made only by the loader, or by
//! [`Module::from_startup`], whose caller vouches for the function (`unsafe`).
//!
//! Every failure keeps its raw code ([`CatalogError`]): the `lpErrno` of the `WSC*` call, the
//! Win32 error of the loader; the layer answers `WSAEPROVIDERFAILEDINIT` for all of them ("the
//! requested service provider could not be loaded or initialized").

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use winprov_bindings::windows_core::GUID;
use winprov_bindings::ws2spi::{
    LPWSPSTARTUP, WSAPROTOCOL_INFOW, WSPDATA, WSPPROC_TABLE, WSPUPCALLTABLE,
};
use winprov_core::WsaError;

/// The function an `LPWSPSTARTUP` holds: a provider DLL's `WSPStartup`.
pub type StartupFn = unsafe extern "system" fn(
    wversionrequested: u16,
    lpwspdata: *const WSPDATA,
    lpprotocolinfo: *const WSAPROTOCOL_INFOW,
    upcalltable: WSPUPCALLTABLE,
    lpproctable: *mut WSPPROC_TABLE,
) -> i32;

// `StartupFn` is the bindings' `LPWSPSTARTUP` without its `Option`.
const _: LPWSPSTARTUP = None::<StartupFn>;

/// `ERROR_MOD_NOT_FOUND`: what [`InProcess`] answers for a path it does not know.
const ERROR_MOD_NOT_FOUND: u32 = 126;
/// `ERROR_PROC_NOT_FOUND`: what [`InProcess`] answers for a provider without `WSPStartup`.
const ERROR_PROC_NOT_FOUND: u32 = 127;

/// A provider DLL's path, expanded, as UTF-16 units without the terminating NUL.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ProviderPath(Vec<u16>);

impl ProviderPath {
    /// The path of `units` (up to the first NUL, if any).
    pub fn from_wide(units: &[u16]) -> Self {
        let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
        Self(units[..end].to_vec())
    }

    /// The units, without a NUL.
    pub fn as_wide(&self) -> &[u16] {
        &self.0
    }

    /// The units with a terminating NUL, for a `PCWSTR`.
    pub fn to_wide_nul(&self) -> Vec<u16> {
        let mut units = Vec::with_capacity(self.0.len() + 1);
        units.extend_from_slice(&self.0);
        units.push(0);
        units
    }
}

impl From<&str> for ProviderPath {
    fn from(path: &str) -> Self {
        Self::from_wide(&path.encode_utf16().collect::<Vec<_>>())
    }
}

impl fmt::Display for ProviderPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf16_lossy(&self.0))
    }
}

impl fmt::Debug for ProviderPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf16_lossy(&self.0))
    }
}

/// What keeps a [`Module`]'s code in the process.
#[derive(Debug)]
enum Keep {
    /// A DLL the loader loaded: freed on drop.
    #[cfg(windows)]
    Library {
        /// Held for its `Drop`.
        _library: system::Library,
    },
    /// An [`InProcess`] provider: counted while held.
    Counted(Arc<AtomicUsize>),
    /// Nothing: code that is always there.
    Static,
}

impl Drop for Keep {
    fn drop(&mut self) {
        if let Self::Counted(count) = self {
            count.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A lower provider's code: its `WSPStartup`, and what keeps the code loaded (released when
/// the module is dropped). See the [module documentation](self).
#[derive(Debug)]
pub struct Module {
    startup: StartupFn,
    _keep: Keep,
}

impl Module {
    /// A provider whose `WSPStartup` is `startup`, code of the process that is never unloaded.
    ///
    /// # Safety
    /// `startup` behaves as ws2spi.h's `WSPStartup`: called with a writable `WSPDATA` and
    /// `WSPPROC_TABLE`, a readable `WSAPROTOCOL_INFOW` and an upcall table, it writes nothing
    /// else, and on success (0) every non-NULL function of the proc table it writes honours
    /// its ws2spi.h prototype and contract until the matching `WSPCleanup`.
    pub unsafe fn from_startup(startup: StartupFn) -> Self {
        Self {
            startup,
            _keep: Keep::Static,
        }
    }

    /// The `WSPStartup`, under the contract of [`from_startup`](Self::from_startup).
    pub(crate) fn startup(&self) -> StartupFn {
        self.startup
    }
}

/// Why the catalog could not give the layer its lower provider. Each case keeps the raw code
/// it failed with; [`code`](Self::code) is what the layer answers.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CatalogError {
    /// `WSCEnumProtocols` failed.
    Enumerate {
        /// Its `lpErrno`.
        code: WsaError,
    },
    /// `WSCGetProviderPath` failed (`WSAEINVAL`: no such provider).
    ProviderPath {
        /// The provider asked for.
        provider: GUID,
        /// Its `lpErrno`.
        code: WsaError,
    },
    /// `WSCGetProviderPath` succeeded with an empty path (Wine's stub does, for any GUID).
    EmptyPath {
        /// The provider asked for.
        provider: GUID,
    },
    /// `ExpandEnvironmentStringsW` failed.
    Expand {
        /// The path as the catalog has it.
        path: ProviderPath,
        /// The Win32 error (`GetLastError`).
        os_error: u32,
    },
    /// The DLL could not be loaded.
    Load {
        /// The path.
        path: ProviderPath,
        /// The Win32 error (`GetLastError`): `ERROR_MOD_NOT_FOUND` (126) …
        os_error: u32,
    },
    /// The DLL has no `WSPStartup` export.
    NoStartup {
        /// The path.
        path: ProviderPath,
        /// The Win32 error (`GetLastError`): `ERROR_PROC_NOT_FOUND` (127).
        os_error: u32,
    },
}

impl CatalogError {
    /// The code the layer answers: `WSAEPROVIDERFAILEDINIT`.
    pub fn code(&self) -> WsaError {
        WsaError::WSAEPROVIDERFAILEDINIT
    }
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Enumerate { code } => write!(f, "WSCEnumProtocols failed: {code}"),
            Self::ProviderPath { provider, code } => {
                write!(f, "WSCGetProviderPath({provider:?}) failed: {code}")
            }
            Self::EmptyPath { provider } => {
                write!(f, "WSCGetProviderPath({provider:?}) answered an empty path")
            }
            Self::Expand { path, os_error } => {
                write!(
                    f,
                    "expanding the path {path:?} failed: Win32 error {os_error}"
                )
            }
            Self::Load { path, os_error } => {
                write!(f, "loading {path:?} failed: Win32 error {os_error}")
            }
            Self::NoStartup { path, os_error } => write!(
                f,
                "{path:?} has no WSPStartup export: Win32 error {os_error}"
            ),
        }
    }
}

impl std::error::Error for CatalogError {}

/// What a layered provider asks the system. See the [module documentation](self).
pub trait Catalog: Send + Sync + 'static {
    /// Every catalog entry, layers' hidden entries included (`WSCEnumProtocols`).
    fn protocols(&self) -> Result<Vec<WSAPROTOCOL_INFOW>, CatalogError>;

    /// The DLL path of `provider` (`WSCGetProviderPath`), environment strings expanded.
    fn provider_path(&self, provider: &GUID) -> Result<ProviderPath, CatalogError>;

    /// The DLL at `path`, loaded, and its `WSPStartup`.
    fn load(&self, path: &ProviderPath) -> Result<Module, CatalogError>;
}

// ---------------------------------------------------------------------------------------------
// A catalog of the process's own providers

/// One provider of an [`InProcess`] catalog.
#[derive(Debug)]
struct Provider {
    id: GUID,
    path: ProviderPath,
    startup: LPWSPSTARTUP,
    held: Arc<AtomicUsize>,
    loads: AtomicUsize,
}

/// A catalog given as values, whose providers are `WSPStartup` functions of the process: for
/// simulators and tests. See the [module documentation](self).
#[derive(Debug, Default)]
pub struct InProcess {
    entries: Vec<WSAPROTOCOL_INFOW>,
    providers: Vec<Provider>,
}

impl InProcess {
    /// A catalog of `entries` (what [`Catalog::protocols`] answers), with no provider yet.
    pub fn new(entries: Vec<WSAPROTOCOL_INFOW>) -> Self {
        Self {
            entries,
            providers: Vec::new(),
        }
    }

    /// Adds the provider `id`, whose DLL is at `path` and exports `startup` (`None`: a DLL
    /// without `WSPStartup`, whose load fails with `ERROR_PROC_NOT_FOUND`).
    ///
    /// # Safety
    /// A non-NULL `startup` is a `WSPStartup` as [`Module::from_startup`] requires.
    pub unsafe fn with_provider(mut self, id: GUID, path: &str, startup: LPWSPSTARTUP) -> Self {
        self.providers.push(Provider {
            id,
            path: ProviderPath::from(path),
            startup,
            held: Arc::new(AtomicUsize::new(0)),
            loads: AtomicUsize::new(0),
        });
        self
    }

    fn at(&self, path: &str) -> Option<&Provider> {
        let path = ProviderPath::from(path);
        self.providers.iter().find(|p| p.path == path)
    }

    /// How many modules of the DLL at `path` are held (loaded and not yet released).
    pub fn held(&self, path: &str) -> usize {
        self.at(path).map_or(0, |p| p.held.load(Ordering::Acquire))
    }

    /// How many times the DLL at `path` was loaded.
    pub fn loads(&self, path: &str) -> usize {
        self.at(path).map_or(0, |p| p.loads.load(Ordering::Acquire))
    }
}

impl Catalog for InProcess {
    fn protocols(&self) -> Result<Vec<WSAPROTOCOL_INFOW>, CatalogError> {
        Ok(self.entries.clone())
    }

    fn provider_path(&self, provider: &GUID) -> Result<ProviderPath, CatalogError> {
        self.providers
            .iter()
            .find(|p| p.id == *provider)
            .map(|p| p.path.clone())
            .ok_or(CatalogError::ProviderPath {
                provider: *provider,
                code: WsaError::WSAEINVAL,
            })
    }

    fn load(&self, path: &ProviderPath) -> Result<Module, CatalogError> {
        let Some(provider) = self.providers.iter().find(|p| p.path == *path) else {
            return Err(CatalogError::Load {
                path: path.clone(),
                os_error: ERROR_MOD_NOT_FOUND,
            });
        };
        let Some(startup) = provider.startup else {
            return Err(CatalogError::NoStartup {
                path: path.clone(),
                os_error: ERROR_PROC_NOT_FOUND,
            });
        };
        provider.loads.fetch_add(1, Ordering::AcqRel);
        provider.held.fetch_add(1, Ordering::AcqRel);
        Ok(Module {
            startup,
            _keep: Keep::Counted(provider.held.clone()),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Windows: ws2_32 and the loader

#[cfg(windows)]
pub use system::System;

/// The system's catalog, where there is none (a build of a provider for another platform than
/// Windows, for its tests): every request fails (its code `WSASYSNOTREADY`; a layered
/// provider answers the catalog's failure with `WSAEPROVIDERFAILEDINIT`), so a layered provider
/// built here starts nothing below it.
#[cfg(not(windows))]
#[derive(Clone, Copy, Debug, Default)]
pub struct System;

#[cfg(not(windows))]
impl Catalog for System {
    fn protocols(&self) -> Result<Vec<WSAPROTOCOL_INFOW>, CatalogError> {
        Err(CatalogError::Enumerate {
            code: WsaError::WSASYSNOTREADY,
        })
    }

    fn provider_path(&self, provider: &GUID) -> Result<ProviderPath, CatalogError> {
        Err(CatalogError::ProviderPath {
            provider: *provider,
            code: WsaError::WSASYSNOTREADY,
        })
    }

    fn load(&self, path: &ProviderPath) -> Result<Module, CatalogError> {
        Err(CatalogError::Load {
            path: path.clone(),
            os_error: 0,
        })
    }
}

#[cfg(windows)]
mod system {
    use super::{Catalog, CatalogError, Keep, Module, ProviderPath, StartupFn};
    use winprov_bindings::windows_core::{self, GUID, PCSTR, PCWSTR, PWSTR};
    use winprov_bindings::ws2spi::{
        ExpandEnvironmentStringsW, FreeLibrary, GetProcAddress, HMODULE, LOAD_LIBRARY_FLAGS,
        LoadLibraryExW, SOCKET_ERROR, WSAPROTOCOL_INFOW, WSCEnumProtocols, WSCGetProviderPath,
    };
    use winprov_core::WsaError;

    /// How many times a buffer is sized again (the catalog, or an environment variable,
    /// growing between two calls) before the error stands.
    const ATTEMPTS: usize = 4;
    /// `ERROR_INSUFFICIENT_BUFFER`: an expansion that kept growing.
    const ERROR_INSUFFICIENT_BUFFER: u32 = 122;
    /// `MAX_PATH`, then the longest path Windows has (`UNICODE_STRING`).
    const PATH_CAPACITIES: [usize; 2] = [260, 32_767];

    /// The system's catalog: ws2_32's `WSCEnumProtocols` and `WSCGetProviderPath`, the loader.
    /// See the [module documentation](super).
    #[derive(Clone, Copy, Debug, Default)]
    pub struct System;

    /// A DLL the loader loaded, freed on drop.
    #[derive(Debug)]
    pub(super) struct Library(HMODULE);

    // SAFETY: a module handle is a process-wide value, usable and freeable from any thread.
    unsafe impl Send for Library {}
    // SAFETY: as above; the handle is never written.
    unsafe impl Sync for Library {}

    impl Drop for Library {
        fn drop(&mut self) {
            // SAFETY: the handle of a successful LoadLibraryExW, freed once, here.
            if let Err(error) = unsafe { FreeLibrary(self.0) } {
                tracing::warn!(%error, "FreeLibrary of a lower provider failed");
            }
        }
    }

    /// The Win32 error of a `windows_core::Error` made from `GetLastError`.
    fn os_error(error: &windows_core::Error) -> u32 {
        let hresult = error.code().0 as u32;
        if hresult & 0xFFFF_0000 == 0x8007_0000 {
            hresult & 0xFFFF
        } else {
            hresult
        }
    }

    /// `ExpandEnvironmentStringsW`, with a buffer as large as it asks for.
    fn expand(path: &[u16]) -> Result<Vec<u16>, u32> {
        let mut source = path.to_vec();
        source.push(0);
        let mut capacity = PATH_CAPACITIES[0].max(source.len());
        for _ in 0..ATTEMPTS {
            let mut out = vec![0u16; capacity];
            // SAFETY: a NUL-terminated source; the wrapper passes `out`'s own length.
            let needed =
                unsafe { ExpandEnvironmentStringsW(PCWSTR(source.as_ptr()), Some(&mut out)) };
            let needed = needed as usize;
            if needed == 0 {
                return Err(os_error(&windows_core::Error::from_thread()));
            }
            if needed <= capacity {
                // `needed` counts the terminating NUL.
                out.truncate(needed - 1);
                return Ok(out);
            }
            capacity = needed;
        }
        Err(ERROR_INSUFFICIENT_BUFFER)
    }

    impl Catalog for System {
        fn protocols(&self) -> Result<Vec<WSAPROTOCOL_INFOW>, CatalogError> {
            let item = size_of::<WSAPROTOCOL_INFOW>();
            let mut entries: Vec<WSAPROTOCOL_INFOW> = Vec::new();
            for _ in 0..ATTEMPTS {
                let mut bytes = u32::try_from(entries.len() * item).unwrap_or(u32::MAX);
                let buffer = (!entries.is_empty()).then_some(entries.as_mut_ptr());
                let mut errno = 0;
                // SAFETY: no protocol filter (every entry); the buffer is NULL with a length of
                // 0, or `entries`, writable for `bytes` bytes; live locals for the rest.
                let count = unsafe { WSCEnumProtocols(None, buffer, &mut bytes, &mut errno) };
                if count != SOCKET_ERROR {
                    let count = usize::try_from(count).unwrap_or(0).min(entries.len());
                    entries.truncate(count);
                    return Ok(entries);
                }
                if errno != WsaError::WSAENOBUFS.raw() {
                    return Err(CatalogError::Enumerate {
                        code: WsaError::from_raw(errno),
                    });
                }
                entries = vec![WSAPROTOCOL_INFOW::default(); (bytes as usize).div_ceil(item)];
            }
            Err(CatalogError::Enumerate {
                code: WsaError::WSAENOBUFS,
            })
        }

        fn provider_path(&self, provider: &GUID) -> Result<ProviderPath, CatalogError> {
            let mut code = WsaError::WSAEFAULT;
            for capacity in PATH_CAPACITIES {
                let mut buffer = vec![0u16; capacity];
                let mut len = capacity as i32;
                let mut errno = 0;
                // SAFETY: a live GUID; `buffer` is writable for `len` units; live locals.
                let result = unsafe {
                    WSCGetProviderPath(provider, PWSTR(buffer.as_mut_ptr()), &mut len, &mut errno)
                };
                if result == 0 {
                    let raw = ProviderPath::from_wide(&buffer);
                    if raw.as_wide().is_empty() {
                        return Err(CatalogError::EmptyPath {
                            provider: *provider,
                        });
                    }
                    return expand(raw.as_wide())
                        .map(|units| ProviderPath::from_wide(&units))
                        .map_err(|os_error| CatalogError::Expand {
                            path: raw,
                            os_error,
                        });
                }
                code = WsaError::from_raw(errno);
                // WSAEFAULT: the buffer is too small (or a pointer is bad: not ours).
                if code != WsaError::WSAEFAULT {
                    break;
                }
            }
            Err(CatalogError::ProviderPath {
                provider: *provider,
                code,
            })
        }

        fn load(&self, path: &ProviderPath) -> Result<Module, CatalogError> {
            let wide = path.to_wide_nul();
            // SAFETY: a NUL-terminated path; no flags: LoadLibraryW's search, as ws2_32 loads a
            // provider.
            let module =
                unsafe { LoadLibraryExW(PCWSTR(wide.as_ptr()), None, LOAD_LIBRARY_FLAGS(0)) }
                    .map_err(|error| CatalogError::Load {
                        path: path.clone(),
                        os_error: os_error(&error),
                    })?;
            // Freed on every path from here.
            let library = Library(module);
            // SAFETY: a loaded module and a NUL-terminated name.
            let Some(address) =
                (unsafe { GetProcAddress(module, PCSTR(c"WSPStartup".as_ptr().cast())) })
            else {
                return Err(CatalogError::NoStartup {
                    path: path.clone(),
                    os_error: os_error(&windows_core::Error::from_thread()),
                });
            };
            // SAFETY: a provider DLL's `WSPStartup` export has ws2spi.h's prototype (WSPAPI is
            // the system ABI); the module stays loaded as long as `library`, kept with it.
            let startup: StartupFn = unsafe {
                std::mem::transmute::<unsafe extern "system" fn() -> isize, StartupFn>(address)
            };
            Ok(Module {
                startup,
                _keep: Keep::Library { _library: library },
            })
        }
    }
}
