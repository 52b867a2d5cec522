//! A layered provider's lower providers ([`Lowers`]): found from the protocol chain, loaded,
//! started with what R-WSP-4 says, and cleaned up with the layer's own final cleanup.
//!
//! One [`Lower`] per protocol chain the layer serves (the chain entry's catalog id is its key):
//! the provider right below the layer in that chain ([`chain::resolve`] against the catalog's
//! entries, the layer's own hidden entry found by its provider GUID, [`chain::own_entry`]),
//! its DLL path and module from the [`Catalog`], and its `WSPStartup` called
//!
//! - with the version the layer negotiated with ws2_32 (what it serves); the lower provider
//!   must answer that very version (`wVersion`), else it cannot serve what the layer promised
//!   and is refused with `WSAEINVALIDPROVIDER` ("returned a version other than 2.2");
//! - with the `WSAPROTOCOL_INFOW` of [`Route::pass_down`] (R-WSP-4) — for the structure the
//!   layer's own `WSPStartup` received for that chain (or, for a chain it never saw there, the
//!   one of the call that needed the lower provider);
//! - with the upcall table the layer has then (the most recent, R-WSP-3; a later startup of
//!   the layer does not start it again: ws2_32's table is the process's);
//!
//! and its `WSPPROC_TABLE` kept once all 30 slots are non-NULL (else `WSAEINVALIDPROCTABLE`).
//!
//! When: [`Start::Lazy`] (the default) starts a chain's lower provider on the first call that
//! needs it ([`Lowers::lower`], e.g. the first `WSPSocket` of the chain); [`Start::Eager`] at
//! the layer's `WSPStartup` for that chain ([`Lowers::startup`]), whose failure is then the
//! startup's. A lower provider is started once per session (from the layer's first startup to
//! its final cleanup); a failed start leaves nothing behind (its module released) and is tried
//! again on the next need.
//!
//! Cleanup: every successful lower `WSPStartup` is paired with one `WSPCleanup` of the same
//! proc table (R-WSP-2 for the lower provider): at once when the framework refuses what the
//! startup handed back (a NULL slot, a wrong version), otherwise in [`Lowers::final_cleanup`],
//! which the layer runs in its own final cleanup — then the modules are released (the DLLs
//! unloaded once no socket holds its [`Lower`] any more) and the session is forgotten, so a
//! later `WSPStartup` finds and starts everything again.
//!
//! Errors keep their raw code ([`LowerError`]): the lower `WSPStartup`'s return value is also
//! what the layer answers.
//!
//! The session's lock is held while a lower provider is found, loaded and started, so two
//! first needs of a chain start it once. Neither the catalog nor the lower provider may call
//! back into the layer's `Lowers` (a lower provider never calls the layer above it).

use super::catalog::{Catalog, CatalogError, Module, ProviderPath};
use super::chain::{self, Call, ChainError, Route};
use super::decode::{Socket, Version};
use super::table::missing_slot;
use super::upcalls::Upcalls;
pub use crate::values::Start;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use winprov_bindings::windows_core::GUID;
use winprov_bindings::ws2spi::{INVALID_SOCKET, WSAPROTOCOL_INFOW, WSPDATA, WSPPROC_TABLE};
use winprov_core::WsaError;

/// Why a layer has no lower provider for a chain. Each case keeps the raw code it failed
/// with; [`code`](Self::code) is what the layer answers.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LowerError {
    /// The chain cannot be served ([`ChainError::code`]).
    Chain(ChainError),
    /// The catalog or the loader failed (`WSAEPROVIDERFAILEDINIT`).
    Catalog(CatalogError),
    /// The layer has no session: no `WSPStartup` since the last final cleanup
    /// (`WSANOTINITIALISED`).
    NotStarted,
    /// The lower provider's `WSPStartup` failed; it is answered as it is.
    Startup {
        /// The DLL.
        path: ProviderPath,
        /// What its `WSPStartup` returned.
        code: WsaError,
    },
    /// The lower provider's proc table has a NULL slot (`WSAEINVALIDPROCTABLE`); its startup
    /// was cleaned up.
    ProcTable {
        /// The DLL.
        path: ProviderPath,
        /// The first NULL slot (`lpWSPAccept` …).
        slot: &'static str,
    },
    /// The lower provider answered another version than the layer asked for
    /// (`WSAEINVALIDPROVIDER`); its startup was cleaned up.
    Version {
        /// The DLL.
        path: ProviderPath,
        /// What the layer asked for.
        asked: Version,
        /// `wVersion`.
        answered: Version,
    },
}

impl LowerError {
    /// The code the layer answers.
    pub fn code(&self) -> WsaError {
        match self {
            Self::Chain(error) => error.code(),
            Self::Catalog(error) => error.code(),
            Self::NotStarted => WsaError::WSANOTINITIALISED,
            Self::Startup { code, .. } => *code,
            Self::ProcTable { .. } => WsaError::WSAEINVALIDPROCTABLE,
            Self::Version { .. } => WsaError::WSAEINVALIDPROVIDER,
        }
    }
}

impl fmt::Display for LowerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Chain(_) => f.write_str("the protocol chain cannot be served"),
            Self::Catalog(_) => f.write_str("the lower provider cannot be loaded"),
            Self::NotStarted => f.write_str("the layer is not started"),
            Self::Startup { path, code } => {
                write!(f, "WSPStartup of the lower provider {path} failed: {code}")
            }
            Self::ProcTable { path, slot } => write!(
                f,
                "the lower provider {path} handed out a proc table without {slot}"
            ),
            Self::Version {
                path,
                asked,
                answered,
            } => write!(
                f,
                "the lower provider {path} answered version {}.{} to a request for {}.{}",
                answered.major(),
                answered.minor(),
                asked.major(),
                asked.minor()
            ),
        }
    }
}

impl std::error::Error for LowerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Chain(error) => Some(error),
            Self::Catalog(error) => Some(error),
            _ => None,
        }
    }
}

impl From<ChainError> for LowerError {
    fn from(error: ChainError) -> Self {
        Self::Chain(error)
    }
}

impl From<CatalogError> for LowerError {
    fn from(error: CatalogError) -> Self {
        Self::Catalog(error)
    }
}

/// An `lpErrno` value, for a failure.
pub(crate) fn failed(errno: i32) -> WsaError {
    if errno == 0 {
        WsaError::WSASYSCALLFAILURE
    } else {
        WsaError::from_raw(errno)
    }
}

/// What a started lower provider handed back.
#[derive(Clone, Copy, Default)]
struct Started {
    /// Successful `WSPStartup`s not yet paired with a `WSPCleanup`.
    count: u32,
    data: WSPDATA,
    /// Every slot non-NULL while `count > 0`.
    table: WSPPROC_TABLE,
}

/// `WSPCleanup` of `table`, once; a failure is logged (there is no one to tell).
fn clean_once(table: &WSPPROC_TABLE, path: &ProviderPath) {
    let Some(cleanup) = table.lpWSPCleanup else {
        tracing::warn!(%path, "a lower provider's proc table has no WSPCleanup");
        return;
    };
    let mut errno = 0;
    // SAFETY: a slot of the table a successful WSPStartup of the module handed out (the
    // module's contract, `Module::from_startup`), not yet cleaned up; a live local.
    if unsafe { cleanup(&mut errno) } != 0 {
        tracing::warn!(%path, code = %failed(errno), "a lower provider's WSPCleanup failed");
    }
}

/// The provider below the layer in one protocol chain. See the [module documentation](self).
pub struct Lower {
    route: Route,
    path: ProviderPath,
    module: Module,
    started: Mutex<Started>,
}

impl fmt::Debug for Lower {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lower")
            .field("chain", &self.route.link().chain_entry_id())
            .field("below", &self.route.below().entry().dwCatalogEntryId)
            .field("path", &self.path)
            .field("startups", &self.startups())
            .finish_non_exhaustive()
    }
}

impl Lower {
    fn new(route: Route, path: ProviderPath, module: Module) -> Self {
        Self {
            route,
            path,
            module,
            started: Mutex::new(Started::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Started> {
        // Nothing panics while it is held.
        self.started.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The chain, where the layer is in it, and what is below.
    pub fn route(&self) -> &Route {
        &self.route
    }

    /// The DLL.
    pub fn path(&self) -> &ProviderPath {
        &self.path
    }

    /// Successful `WSPStartup`s of this lower provider not yet paired with a `WSPCleanup`.
    pub fn startups(&self) -> u32 {
        self.lock().count
    }

    /// `wVersion` of its `WSPStartup`, while started.
    pub fn version(&self) -> Option<Version> {
        let started = self.lock();
        (started.count > 0).then(|| Version::from_raw(started.data.wVersion))
    }

    /// `wHighVersion` of its `WSPStartup`, while started.
    pub fn high_version(&self) -> Option<Version> {
        let started = self.lock();
        (started.count > 0).then(|| Version::from_raw(started.data.wHighVersion))
    }

    /// Its proc table (every slot non-NULL), while started.
    pub fn proc_table(&self) -> Option<WSPPROC_TABLE> {
        let started = self.lock();
        (started.count > 0).then_some(started.table)
    }

    /// Its `WSPStartup`: R-WSP-4's structure for `startup_info`, the version the layer
    /// serves, the layer's upcall table; the table checked, the version checked. See the
    /// [module documentation](self).
    fn start(
        &self,
        version: Version,
        startup_info: &WSAPROTOCOL_INFOW,
        upcalls: &Upcalls,
    ) -> Result<(), LowerError> {
        let info = self.route.pass_down(Call::Startup, startup_info)?;
        let mut data = WSPDATA::default();
        let mut table = WSPPROC_TABLE::default();
        let startup = self.module.startup();
        // SAFETY: the module's contract (`Module::from_startup`, or a provider DLL's export):
        // lpWSPData (typed `const` by the metadata, written by the provider) and lpProcTable are
        // live locals it may write, lpProtocolInfo a live local it reads; the upcall table's
        // functions are valid as long as the layer's (`Upcalls`' contract).
        let code = unsafe {
            startup(
                version.raw(),
                (&raw mut data).cast_const(),
                &info,
                *upcalls.raw(),
                &mut table,
            )
        };
        if code != 0 {
            return Err(LowerError::Startup {
                path: self.path.clone(),
                code: WsaError::from_raw(code),
            });
        }
        if let Some(slot) = missing_slot(&table) {
            clean_once(&table, &self.path);
            return Err(LowerError::ProcTable {
                path: self.path.clone(),
                slot,
            });
        }
        let answered = Version::from_raw(data.wVersion);
        if answered != version {
            clean_once(&table, &self.path);
            return Err(LowerError::Version {
                path: self.path.clone(),
                asked: version,
                answered,
            });
        }
        let mut started = self.lock();
        started.count += 1;
        started.data = data;
        started.table = table;
        Ok(())
    }

    /// Pairs every startup with a `WSPCleanup` (the last one last); returns how many ran.
    fn clean_all(&self) -> u32 {
        let started = std::mem::take(&mut *self.lock());
        for _ in 0..started.count {
            clean_once(&started.table, &self.path);
        }
        started.count
    }

    /// The lower provider's `WSPSocket` for a socket of this chain the layer was asked for
    /// with `given`: R-WSP-4's structure ([`Route::pass_down`]) goes down; the lower
    /// provider's socket, or its `lpErrno`, comes back. `WSANOTINITIALISED` once cleaned up.
    pub fn socket(
        &self,
        address_family: i32,
        socket_type: i32,
        protocol: i32,
        given: &WSAPROTOCOL_INFOW,
        group: u32,
        flags: u32,
    ) -> Result<Socket, WsaError> {
        let info = self
            .route
            .pass_down(Call::Socket, given)
            .map_err(|error| error.code())?;
        let table = self.proc_table().ok_or(WsaError::WSANOTINITIALISED)?;
        let wsp_socket = table.lpWSPSocket.ok_or(WsaError::WSAEINVALIDPROCTABLE)?;
        let mut errno = 0;
        // SAFETY: a slot of a started lower provider's table (the module's contract); values,
        // a live local structure it reads and a live local for lpErrno.
        let socket = unsafe {
            wsp_socket(
                address_family,
                socket_type,
                protocol,
                &info,
                group,
                flags,
                &mut errno,
            )
        };
        if socket == INVALID_SOCKET {
            return Err(failed(errno));
        }
        Ok(Socket::from_socket(socket))
    }
}

/// A session: from the layer's first `WSPStartup` to its final cleanup.
struct Session {
    /// The version the layer negotiated at its latest `WSPStartup`.
    version: Option<Version>,
    /// The structure the layer's `WSPStartup` received, per chain (the first of the session).
    startups: Vec<WSAPROTOCOL_INFOW>,
    /// One per chain, started.
    lowers: Vec<Arc<Lower>>,
}

impl Session {
    const NEW: Self = Self {
        version: None,
        startups: Vec::new(),
        lowers: Vec::new(),
    };
}

/// A layered provider's lower providers. See the [module documentation](self).
pub struct Lowers<C: Catalog> {
    provider: GUID,
    start: Start,
    catalog: C,
    session: Mutex<Session>,
}

impl<C: Catalog> fmt::Debug for Lowers<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lowers")
            .field("provider", &self.provider)
            .field("start", &self.start)
            .field("started", &self.started())
            .finish_non_exhaustive()
    }
}

impl<C: Catalog> Lowers<C> {
    /// The lower providers of the layer installed with the provider GUID `provider` (its
    /// hidden entry's `ProviderId`, the one GUID the layer is known by), found in `catalog`,
    /// started as `start` says.
    pub const fn new(provider: GUID, start: Start, catalog: C) -> Self {
        Self {
            provider,
            start,
            catalog,
            session: Mutex::new(Session::NEW),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Session> {
        // The session changes only after everything that can fail or panic.
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The layer's provider GUID.
    pub fn provider(&self) -> &GUID {
        &self.provider
    }

    /// The catalog.
    pub fn catalog(&self) -> &C {
        &self.catalog
    }

    /// When lower providers are started.
    pub fn start_mode(&self) -> Start {
        self.start
    }

    /// The lower providers started in this session.
    pub fn started(&self) -> Vec<Arc<Lower>> {
        self.lock().lowers.clone()
    }

    /// The layer's `WSPStartup` for the chain of `given`, once it negotiated `version`: the
    /// session records both; [`Start::Eager`] also starts the chain's lower provider now, and
    /// its error is then the startup's (the session is left as it was).
    pub fn startup(
        &self,
        version: Version,
        given: &WSAPROTOCOL_INFOW,
        upcalls: &Upcalls,
    ) -> Result<(), LowerError> {
        let mut session = self.lock();
        let before = (session.version, session.startups.len());
        session.version = Some(version);
        let chain = given.dwCatalogEntryId;
        if !session.startups.iter().any(|s| s.dwCatalogEntryId == chain) {
            session.startups.push(*given);
        }
        if self.start == Start::Lazy {
            return Ok(());
        }
        match self.find_or_start(&mut session, given, upcalls) {
            Ok(_) => Ok(()),
            Err(error) => {
                session.version = before.0;
                session.startups.truncate(before.1);
                Err(error)
            }
        }
    }

    /// The lower provider of the chain of `given` (a structure the layer was called with:
    /// `WSPSocket`'s, an address conversion's), started now if it is not yet. `upcalls` is the
    /// layer's current upcall table. `NotStarted` outside a session.
    pub fn lower(
        &self,
        given: &WSAPROTOCOL_INFOW,
        upcalls: &Upcalls,
    ) -> Result<Arc<Lower>, LowerError> {
        let mut session = self.lock();
        self.find_or_start(&mut session, given, upcalls)
    }

    fn find_or_start(
        &self,
        session: &mut Session,
        given: &WSAPROTOCOL_INFOW,
        upcalls: &Upcalls,
    ) -> Result<Arc<Lower>, LowerError> {
        let version = session.version.ok_or(LowerError::NotStarted)?;
        let chain = given.dwCatalogEntryId;
        if let Some(lower) = session
            .lowers
            .iter()
            .find(|l| l.route.link().chain_entry_id() == chain)
        {
            return Ok(lower.clone());
        }
        let startup_info = session
            .startups
            .iter()
            .find(|s| s.dwCatalogEntryId == chain)
            .copied()
            .unwrap_or(*given);
        let catalog = self.catalog.protocols()?;
        let own = chain::own_entry(&catalog, &self.provider)?;
        let route = chain::resolve(&startup_info, own, &catalog)?;
        let path = self.catalog.provider_path(&route.lower_provider_id())?;
        let module = self.catalog.load(&path)?;
        let lower = Arc::new(Lower::new(route, path, module));
        lower.start(version, &startup_info, upcalls)?;
        tracing::debug!(chain, path = %lower.path, "lower provider started");
        session.lowers.push(lower.clone());
        Ok(lower)
    }

    /// The layer's final cleanup: each lower provider's `WSPCleanup` as many times as it was
    /// started, then the session forgotten (the modules released with the last [`Lower`]
    /// held). Returns how many `WSPCleanup`s ran.
    pub fn final_cleanup(&self) -> u32 {
        let session = std::mem::replace(&mut *self.lock(), Session::NEW);
        session.lowers.iter().map(|lower| lower.clean_all()).sum()
    }
}
