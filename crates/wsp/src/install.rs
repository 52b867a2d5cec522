//! Installing and removing a layered provider (LSP) in the Winsock catalog, as safe functions
//! over the catalog's write side ([`CatalogWriter`]: ws2_32 on Windows, a simulated catalog
//! with the feature `testing`).
//!
//! A layer is known by one GUID, its provider id. [`install`] asks the system for its hidden
//! entry (`ChainLen` 0, named after the layer) and one protocol chain `[layer, …, base]` over
//! each protocol chosen ([`Over`]) in one call, `WSCInstallProviderAndChains64_32` (x86:
//! `WSCInstallProviderAndChains`), which installs into the 32-bit catalog of 64-bit Windows
//! too; then sets its LSP categories (`WSCSetProviderInfo`, [`LspCategories`]) and writes a
//! catalog order with its chains first ([`Placement`]; R-WSP-21: only an
//! [`abi::ProviderOrder`](crate::abi::ProviderOrder), made from the catalog, is written), in
//! every catalog. [`uninstall`] removes its chains, then its hidden entry, from every catalog.
//! [`find`] and [`list`] read what is installed.
//!
//! # What the system does, and what is checked here
//!
//! - A provider id or a layer name already in a catalog is refused by the system (R-WSP-22).
//!   Its page lists `WSAEINVAL` for "a duplicate provider ID or the layered service provider
//!   name" and `WSANO_RECOVERY` for "the provider is already installed"; both codes mean other
//!   things too (bad arguments, no match, not an administrator), so a refusal with either is
//!   [`InstallError::AlreadyInstalled`], with the raw code, exactly when the catalogs read before
//!   the call held that id or name. The catalogs are unchanged.
//! - The system layers over "the top-most entry in the configuration information that matches"
//!   each `{address family, socket type, protocol}` given, not over an entry chosen by id: a
//!   selection by provider ([`BaseMatch::provider`]) is checked afterwards, each new chain must
//!   end at a selected base entry, or the install is undone ([`InstallError::Unexpected`]).
//! - A failure after the system installed the layer (finding it, categories, order) undoes the
//!   install: the layer and its chains are removed from every catalog before the error is
//!   returned, and the error says whether that worked ([`Undo`]). An install abandoned by a
//!   panic is undone when its guard is dropped. A failed install call that left entries of the
//!   layer behind (one catalog written, not the other) is cleaned the same way, when no catalog
//!   had the layer's id before the call (what was there is not the call's to remove).
//! - The pages do not say which provider id the chains get. Microsoft's LSP sample installer
//!   gives chains ids of their own and removes "the dummy entry" and then each id its chains
//!   carry; [`uninstall`] does the same, chains first (so no chain is left pointing at a
//!   removed hidden entry), and removes a chains' id only when it names nothing but this
//!   layer's chains. It refuses, removing nothing, a GUID that names a base provider, and a
//!   layer that other layers' chains run through.
//! - Uninstalling a layer that is not installed succeeds and says so
//!   ([`Uninstalled::NotInstalled`]): an MSI's uninstall must succeed then.

use crate::abi::install::{CatalogWriter, ChainsRequest, ProtocolKey, View, WscError};
use crate::abi::order::ProviderOrder;
use std::fmt;
use winprov_bindings::windows_core::GUID;
use winprov_bindings::ws2spi::{
    AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP, LSP_CRYPTO_COMPRESS, LSP_FIREWALL,
    LSP_INBOUND_MODIFY, LSP_INSPECTOR, LSP_LOCAL_CACHE, LSP_OUTBOUND_MODIFY, LSP_PROXY,
    LSP_REDIRECTOR, LSP_SYSTEM, MAX_PATH, SOCK_DGRAM, SOCK_STREAM, WSAPROTOCOL_INFOW,
    WSAPROTOCOL_LEN, XP1_IFS_HANDLES,
};
use winprov_core::WsaError;

bitflags::bitflags! {
    /// The `LSP_*` categories of a layer (`WSCSetProviderInfo` with
    /// `ProviderInfoLspCategories`). A layer with none is in the "All Other" category, which
    /// services and system processes do not load.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct LspCategories: u32 {
        /// `LSP_INSPECTOR`: inspects or filters data.
        const INSPECTOR = LSP_INSPECTOR;
        /// `LSP_REDIRECTOR`: a network redirector.
        const REDIRECTOR = LSP_REDIRECTOR;
        /// `LSP_PROXY`: acts as a proxy and redirects packets.
        const PROXY = LSP_PROXY;
        /// `LSP_FIREWALL`: a firewall.
        const FIREWALL = LSP_FIREWALL;
        /// `LSP_INBOUND_MODIFY`: modifies inbound data.
        const INBOUND_MODIFY = LSP_INBOUND_MODIFY;
        /// `LSP_OUTBOUND_MODIFY`: modifies outbound data.
        const OUTBOUND_MODIFY = LSP_OUTBOUND_MODIFY;
        /// `LSP_CRYPTO_COMPRESS`: cryptography or compression.
        const CRYPTO_COMPRESS = LSP_CRYPTO_COMPRESS;
        /// `LSP_LOCAL_CACHE`: a local cache.
        const LOCAL_CACHE = LSP_LOCAL_CACHE;
        /// `LSP_SYSTEM`: acceptable in services and system processes.
        const SYSTEM = LSP_SYSTEM;
    }
}

/// The handles the layer's sockets are: the `dwServiceFlags` of its hidden entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Handles {
    /// ws2_32's handles (`WPUCreateSocketHandle`), as this crate's providers make: no
    /// `XP1_IFS_HANDLES` (R-WSP-19).
    #[default]
    NonIfs,
    /// The base provider's own IFS handles, passed through: `XP1_IFS_HANDLES`.
    Ifs,
}

impl Handles {
    /// The `dwServiceFlags` this means.
    pub fn service_flags(self) -> u32 {
        match self {
            Self::NonIfs => 0,
            Self::Ifs => XP1_IFS_HANDLES,
        }
    }
}

/// Which base entries (`ChainLen` 1) to layer over: those whose members equal every one set
/// here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BaseMatch {
    address_family: Option<i32>,
    socket_type: Option<i32>,
    protocol: Option<i32>,
    provider: Option<GUID>,
}

impl BaseMatch {
    /// Every base entry.
    pub fn any() -> Self {
        Self::default()
    }

    /// The base entries of one protocol.
    pub fn key(key: ProtocolKey) -> Self {
        Self::any()
            .address_family(key.address_family)
            .socket_type(key.socket_type)
            .protocol(key.protocol)
    }

    /// TCP over IPv4.
    pub fn tcp_ipv4() -> Self {
        Self::any()
            .address_family(i32::from(AF_INET.0))
            .socket_type(SOCK_STREAM.0)
            .protocol(IPPROTO_TCP.0)
    }

    /// TCP over IPv6.
    pub fn tcp_ipv6() -> Self {
        Self::tcp_ipv4().address_family(i32::from(AF_INET6.0))
    }

    /// UDP over IPv4.
    pub fn udp_ipv4() -> Self {
        Self::any()
            .address_family(i32::from(AF_INET.0))
            .socket_type(SOCK_DGRAM.0)
            .protocol(IPPROTO_UDP.0)
    }

    /// UDP over IPv6.
    pub fn udp_ipv6() -> Self {
        Self::udp_ipv4().address_family(i32::from(AF_INET6.0))
    }

    /// Only entries of `iAddressFamily` `family`.
    pub fn address_family(mut self, family: i32) -> Self {
        self.address_family = Some(family);
        self
    }

    /// Only entries of `iSocketType` `socket_type`.
    pub fn socket_type(mut self, socket_type: i32) -> Self {
        self.socket_type = Some(socket_type);
        self
    }

    /// Only entries of `iProtocol` `protocol`.
    pub fn protocol(mut self, protocol: i32) -> Self {
        self.protocol = Some(protocol);
        self
    }

    /// Only entries of the provider `provider` (`ProviderId`).
    pub fn provider(mut self, provider: GUID) -> Self {
        self.provider = Some(provider);
        self
    }

    /// Whether `entry` is a base entry this selects.
    pub fn matches(&self, entry: &WSAPROTOCOL_INFOW) -> bool {
        let equal = |wanted: Option<i32>, value: i32| wanted.is_none_or(|w| w == value);
        entry.ProtocolChain.ChainLen == 1
            && equal(self.address_family, entry.iAddressFamily)
            && equal(self.socket_type, entry.iSocketType)
            && equal(self.protocol, entry.iProtocol)
            && self.provider.is_none_or(|p| p == entry.ProviderId)
    }
}

/// What the layer's chains go over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Over {
    /// The base provider of every distinct `{address family, socket type, protocol}` of the
    /// catalog (`lpProtocolInfoList` NULL).
    EveryBase,
    /// The protocols of the base entries any of these match, each once, in catalog order.
    Bases(Vec<BaseMatch>),
}

impl Over {
    /// TCP over IPv4 and IPv6.
    pub fn tcp() -> Self {
        Self::Bases(vec![BaseMatch::tcp_ipv4(), BaseMatch::tcp_ipv6()])
    }
}

/// Where the layer's chains go in the catalog order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Placement {
    /// First (`abi::ProviderOrder::chains_first`, written with `WSCWriteProviderOrder*`), so
    /// applications taking the first entry of a protocol get the layer. The system's install
    /// call is documented to put them first already; this writes it, in every catalog.
    #[default]
    ChainsFirst,
    /// Where the system's install call put them; no order is written.
    AsInstalled,
}

/// A layer to install. See the [module documentation](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerInstall {
    provider: GUID,
    name: String,
    path: String,
    path32: Option<String>,
    handles: Handles,
    over: Over,
    categories: LspCategories,
    placement: Placement,
    /// Whether the layer stays in the 32-bit catalog of 64-bit Windows.
    wow64: bool,
}

impl LayerInstall {
    /// The layer `provider` (its hidden entry's `ProviderId`, the one GUID it is known by),
    /// named `name` (its hidden entry's `szProtocol`, and the start of each chain's), whose DLL
    /// is at `path` (64-bit on 64-bit Windows; environment strings such as `%SystemRoot%` are
    /// kept and expanded by ws2_32 when it loads the DLL). Non-IFS handles, over TCP on IPv4
    /// and IPv6, no category, chains first.
    pub fn new(provider: GUID, name: impl Into<String>, path: impl Into<String>) -> Self {
        Self {
            provider,
            name: name.into(),
            path: path.into(),
            path32: None,
            handles: Handles::NonIfs,
            over: Over::tcp(),
            categories: LspCategories::empty(),
            placement: Placement::ChainsFirst,
            wow64: true,
        }
    }

    /// For a layer shipped without a 32-bit DLL: on 64-bit Windows the system's install call
    /// writes both catalogs, and a 32-bit process would then fail every socket of the layer's
    /// protocols, its DLL missing from the WOW64 system directory. The layer's entries are
    /// removed from the 32-bit catalog right after the call (and the install is undone if that
    /// fails), so 32-bit processes keep the catalog they had.
    pub fn native_only(mut self) -> Self {
        self.wow64 = false;
        self
    }

    /// The 32-bit DLL, for 32-bit processes on 64-bit Windows. Without one, the system requires
    /// the path to be `%windir%\system32\<dll>` and loads the 32-bit DLL of that name from the
    /// WOW64 system directory.
    pub fn path32(mut self, path: impl Into<String>) -> Self {
        self.path32 = Some(path.into());
        self
    }

    /// The handles the layer's sockets are.
    pub fn handles(mut self, handles: Handles) -> Self {
        self.handles = handles;
        self
    }

    /// What the chains go over.
    pub fn over(mut self, over: Over) -> Self {
        self.over = over;
        self
    }

    /// The layer's LSP categories.
    pub fn categories(mut self, categories: LspCategories) -> Self {
        self.categories = categories;
        self
    }

    /// Where the chains go in the catalog order.
    pub fn placement(mut self, placement: Placement) -> Self {
        self.placement = placement;
        self
    }

    /// The layer's provider id.
    pub fn provider(&self) -> GUID {
        self.provider
    }

    /// The layer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn validate(&self) -> Result<(), InstallError> {
        let invalid = |reason| Err(InstallError::InvalidDescription(reason));
        let units = |text: &str| text.encode_utf16().count();
        if self.provider == GUID::default() {
            return invalid("the provider id is the null GUID");
        }
        if self.name.is_empty() || self.name.contains('\0') {
            return invalid("the layer's name is empty or holds a NUL");
        }
        if units(&self.name) > WSAPROTOCOL_LEN as usize {
            return invalid("the layer's name is longer than WSAPROTOCOL_LEN (255) units");
        }
        for path in std::iter::once(&self.path).chain(&self.path32) {
            if path.is_empty() || path.contains('\0') {
                return invalid("a DLL path is empty or holds a NUL");
            }
            if units(path) >= MAX_PATH as usize {
                return invalid("a DLL path is not shorter than MAX_PATH (260) units");
            }
        }
        if self.over == Over::Bases(Vec::new()) {
            return invalid("no base entry is selected");
        }
        Ok(())
    }

    fn request(&self, over: Option<Vec<ProtocolKey>>) -> ChainsRequest {
        ChainsRequest {
            provider: self.provider,
            path: self.path.clone(),
            path32: self.path32.clone(),
            name: self.name.clone(),
            service_flags: self.handles.service_flags(),
            over,
        }
    }

    /// What in `catalog` already has this layer's provider id or name (R-WSP-22).
    fn duplicate_in(&self, catalog: &[WSAPROTOCOL_INFOW]) -> Option<Duplicate> {
        if catalog.iter().any(|e| e.ProviderId == self.provider) {
            return Some(Duplicate::ProviderId);
        }
        catalog
            .iter()
            .any(|e| e.ProtocolChain.ChainLen == 0 && entry_name(e) == self.name)
            .then_some(Duplicate::Name)
    }
}

/// An entry's `szProtocol`, up to its NUL.
pub fn entry_name(entry: &WSAPROTOCOL_INFOW) -> String {
    let end = entry
        .szProtocol
        .iter()
        .position(|&u| u == 0)
        .unwrap_or(entry.szProtocol.len());
    String::from_utf16_lossy(&entry.szProtocol[..end])
}

/// The units of a chain, `ChainEntries[..ChainLen]` (none when `ChainLen` is out of range).
fn chain_of(entry: &WSAPROTOCOL_INFOW) -> &[u32] {
    usize::try_from(entry.ProtocolChain.ChainLen)
        .ok()
        .and_then(|len| entry.ProtocolChain.ChainEntries.get(..len))
        .unwrap_or(&[])
}

/// Whether `entry` is a protocol chain whose top is the hidden entry `layer`.
fn is_chain_of(entry: &WSAPROTOCOL_INFOW, layer: u32) -> bool {
    let chain = chain_of(entry);
    chain.len() > 1 && chain[0] == layer
}

/// A layer as a catalog holds it: its hidden entry and the chains whose top it is.
#[derive(Clone, Debug, PartialEq)]
pub struct InstalledLayer {
    /// The catalog.
    pub view: View,
    /// The hidden entry (`ChainLen` 0).
    pub entry: WSAPROTOCOL_INFOW,
    /// Its protocol chains, in catalog order.
    pub chains: Vec<WSAPROTOCOL_INFOW>,
}

impl InstalledLayer {
    /// The layer `provider` in `catalog` (the entries of the catalog `view`, in order): its
    /// hidden entry and chains, or `None`.
    pub fn find_in(view: View, catalog: &[WSAPROTOCOL_INFOW], provider: &GUID) -> Option<Self> {
        catalog
            .iter()
            .find(|e| e.ProtocolChain.ChainLen == 0 && e.ProviderId == *provider)
            .map(|entry| Self::of(view, catalog, entry))
    }

    /// Every layer of `catalog`.
    pub fn all_in(view: View, catalog: &[WSAPROTOCOL_INFOW]) -> Vec<Self> {
        catalog
            .iter()
            .filter(|e| e.ProtocolChain.ChainLen == 0)
            .map(|entry| Self::of(view, catalog, entry))
            .collect()
    }

    fn of(view: View, catalog: &[WSAPROTOCOL_INFOW], entry: &WSAPROTOCOL_INFOW) -> Self {
        Self {
            view,
            entry: *entry,
            chains: catalog
                .iter()
                .filter(|e| is_chain_of(e, entry.dwCatalogEntryId))
                .copied()
                .collect(),
        }
    }

    /// The provider id.
    pub fn provider(&self) -> GUID {
        self.entry.ProviderId
    }

    /// The name.
    pub fn name(&self) -> String {
        entry_name(&self.entry)
    }

    /// The hidden entry's catalog id, the top of each chain.
    pub fn catalog_id(&self) -> u32 {
        self.entry.dwCatalogEntryId
    }

    /// Whether the hidden entry declares `XP1_IFS_HANDLES`.
    pub fn ifs(&self) -> bool {
        self.entry.dwServiceFlags1 & XP1_IFS_HANDLES != 0
    }

    /// The provider ids the chains carry, each once, in catalog order.
    pub fn chain_providers(&self) -> Vec<GUID> {
        let mut ids: Vec<GUID> = Vec::new();
        for chain in &self.chains {
            if !ids.contains(&chain.ProviderId) {
                ids.push(chain.ProviderId);
            }
        }
        ids
    }
}

/// What [`install`] installed: the layer in each catalog.
#[derive(Clone, Debug, PartialEq)]
pub struct Installed {
    /// One per catalog, the native one first.
    pub layers: Vec<InstalledLayer>,
}

/// What [`uninstall`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum Uninstalled {
    /// These entries were removed.
    Removed {
        /// Each with its catalog.
        entries: Vec<(View, WSAPROTOCOL_INFOW)>,
    },
    /// No catalog has an entry of the layer: nothing to do.
    NotInstalled,
}

/// What a catalog already had (R-WSP-22).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Duplicate {
    /// An entry with the layer's provider id.
    ProviderId,
    /// A layer's hidden entry with the layer's name.
    Name,
}

/// What became of a failed install's work.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Undo {
    /// Nothing of the layer was in a catalog: nothing to undo.
    NothingInstalled,
    /// The layer and its chains were removed: the catalogs are as they were (their order
    /// aside, when the error came after an order was written).
    Undone,
    /// Removing them failed: part of the layer is still installed ([`uninstall`] removes it).
    Incomplete(UninstallError),
}

/// Why [`install`] failed. Each case keeps the raw code it failed with.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InstallError {
    /// The description cannot be installed (what is wrong with it); nothing was asked.
    InvalidDescription(&'static str),
    /// No base entry of the native catalog matches the selection; nothing was asked.
    NothingToLayerOver,
    /// The system refused the install because a catalog already has the layer's provider id
    /// or name (R-WSP-22); nothing changed.
    AlreadyInstalled {
        /// The catalog that has it.
        view: View,
        /// What it has.
        duplicate: Duplicate,
        /// What the system answered: `WSAEINVAL` or `WSANO_RECOVERY`.
        code: WsaError,
    },
    /// A call failed.
    Failed {
        /// The call and its code.
        error: WscError,
        /// What became of what was installed.
        undo: Undo,
    },
    /// The system reported success but a catalog does not show what was asked.
    Unexpected {
        /// The catalog.
        view: View,
        /// What is missing or wrong.
        what: &'static str,
        /// What became of what was installed.
        undo: Undo,
    },
}

impl InstallError {
    /// The Winsock code the system answered, if any.
    pub fn code(&self) -> Option<WsaError> {
        match self {
            Self::AlreadyInstalled { code, .. } => Some(*code),
            Self::Failed { error, .. } => error.code(),
            _ => None,
        }
    }

    /// What became of what was installed, for the errors that came after the system's call.
    pub fn undo(&self) -> Option<&Undo> {
        match self {
            Self::Failed { undo, .. } | Self::Unexpected { undo, .. } => Some(undo),
            _ => None,
        }
    }
}

impl fmt::Display for Undo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NothingInstalled => f.write_str("nothing was installed"),
            Self::Undone => f.write_str("what was installed was removed"),
            Self::Incomplete(error) => write!(f, "removing what was installed failed: {error}"),
        }
    }
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidDescription(reason) => write!(f, "invalid layer description: {reason}"),
            Self::NothingToLayerOver => f.write_str("no base entry matches the selection"),
            Self::AlreadyInstalled {
                view,
                duplicate,
                code,
            } => {
                let what = match duplicate {
                    Duplicate::ProviderId => "provider id",
                    Duplicate::Name => "name",
                };
                write!(
                    f,
                    "the {view} already has a layer with this {what} ({code})"
                )
            }
            Self::Failed { error, undo } => write!(f, "{error}; {undo}"),
            Self::Unexpected { view, what, undo } => write!(f, "{view}: {what}; {undo}"),
        }
    }
}

/// The system's error is part of the message (`Failed`'s text is the call's), so it is not a
/// `source` too: a chain of messages would say it twice.
impl std::error::Error for InstallError {}

/// Why [`uninstall`] failed. A refusal removes nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UninstallError {
    /// A call failed.
    Failed(WscError),
    /// The GUID names a base provider's entries, not a layer's: refused.
    NotALayer {
        /// The catalog.
        view: View,
        /// The GUID.
        provider: GUID,
    },
    /// Other layers' chains run through this layer (its hidden entry is below their top):
    /// removing it would break them. Refused; these layers are to be removed first.
    LayeredOver {
        /// The catalog.
        view: View,
        /// The other layers' provider ids.
        layers: Vec<GUID>,
    },
    /// One of the ids the layer's chains carry also names entries that are not the layer's
    /// chains: removing it would remove them. Refused.
    SharedProviderId {
        /// The catalog.
        view: View,
        /// The id.
        provider: GUID,
    },
    /// The calls succeeded but these entries are still in the catalog.
    Incomplete {
        /// The catalog.
        view: View,
        /// Their catalog ids.
        remaining: Vec<u32>,
    },
}

impl fmt::Display for UninstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed(error) => error.fmt(f),
            Self::NotALayer { view, provider } => {
                write!(
                    f,
                    "{provider:?} is a base provider of the {view}, not a layer"
                )
            }
            Self::LayeredOver { view, layers } => write!(
                f,
                "other layers of the {view} are installed over this one: {layers:?}"
            ),
            Self::SharedProviderId { view, provider } => write!(
                f,
                "{provider:?}, the id of chains of this layer in the {view}, also names other entries"
            ),
            Self::Incomplete { view, remaining } => {
                write!(f, "entries {remaining:?} are still in the {view}")
            }
        }
    }
}

/// As for [`InstallError`]: `Failed` says the system's error itself.
impl std::error::Error for UninstallError {}

// ---------------------------------------------------------------------------------------------
// Reading

/// The layer `provider` in each catalog that has it (none: not installed).
pub fn find<C: CatalogWriter + ?Sized>(
    catalog: &C,
    provider: &GUID,
) -> Result<Vec<InstalledLayer>, WscError> {
    let mut found = Vec::new();
    for view in catalog.views() {
        let entries = catalog.enumerate(view)?;
        found.extend(InstalledLayer::find_in(view, &entries, provider));
    }
    Ok(found)
}

/// Every layer of every catalog.
pub fn list<C: CatalogWriter + ?Sized>(catalog: &C) -> Result<Vec<InstalledLayer>, WscError> {
    let mut found = Vec::new();
    for view in catalog.views() {
        let entries = catalog.enumerate(view)?;
        found.extend(InstalledLayer::all_in(view, &entries));
    }
    Ok(found)
}

// ---------------------------------------------------------------------------------------------
// Installing

/// Removes the layer from every catalog unless [`keep`](Self::keep) is called: after the
/// system installed it, every way out of [`install`] but success goes through
/// [`undo`](Self::undo), and a panic through `Drop`.
struct Rollback<'c, C: CatalogWriter + ?Sized> {
    catalog: &'c C,
    provider: GUID,
    armed: bool,
}

impl<'c, C: CatalogWriter + ?Sized> Rollback<'c, C> {
    fn new(catalog: &'c C, provider: GUID) -> Self {
        Self {
            catalog,
            provider,
            armed: true,
        }
    }

    /// Removes the layer; what became of it.
    fn undo(mut self) -> Undo {
        self.armed = false;
        remove(self.catalog, &self.provider)
    }

    /// The install succeeded.
    fn keep(mut self) {
        self.armed = false;
    }
}

impl<C: CatalogWriter + ?Sized> Drop for Rollback<'_, C> {
    fn drop(&mut self) {
        if self.armed {
            let undo = remove(self.catalog, &self.provider);
            tracing::error!(%undo, "an unfinished layer install was undone");
        }
    }
}

fn remove<C: CatalogWriter + ?Sized>(catalog: &C, provider: &GUID) -> Undo {
    match uninstall(catalog, provider) {
        Ok(Uninstalled::NotInstalled) => Undo::NothingInstalled,
        Ok(Uninstalled::Removed { .. }) => Undo::Undone,
        Err(error) => Undo::Incomplete(error),
    }
}

/// Installs the layer in every catalog. See the [module documentation](self).
pub fn install<C: CatalogWriter + ?Sized>(
    catalog: &C,
    layer: &LayerInstall,
) -> Result<Installed, InstallError> {
    layer.validate()?;
    let views = catalog.views();
    let mut before = Vec::with_capacity(views.len());
    for &view in &views {
        let entries = catalog
            .enumerate(view)
            .map_err(|error| InstallError::Failed {
                error,
                undo: Undo::NothingInstalled,
            })?;
        before.push((view, entries));
    }
    let native = before
        .iter()
        .find(|(view, _)| *view == View::Native)
        .map(|(_, entries)| entries.as_slice())
        .unwrap_or_default();

    // The protocols to layer over, and the base entries they were chosen from.
    let (over, selected) = match &layer.over {
        Over::EveryBase => (None, None),
        Over::Bases(matches) => {
            let bases: Vec<&WSAPROTOCOL_INFOW> = native
                .iter()
                .filter(|entry| matches.iter().any(|m| m.matches(entry)))
                .collect();
            if bases.is_empty() {
                return Err(InstallError::NothingToLayerOver);
            }
            let mut keys: Vec<ProtocolKey> = Vec::new();
            for base in &bases {
                let key = ProtocolKey::of(base);
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
            let ids: Vec<u32> = bases.iter().map(|b| b.dwCatalogEntryId).collect();
            (Some(keys), Some(ids))
        }
    };

    if let Err(error) = catalog.install_provider_and_chains(&layer.request(over)) {
        return Err(refused(catalog, layer, &before, error));
    }
    let rollback = Rollback::new(catalog, layer.provider);
    let views: Vec<View> = if layer.wow64 {
        views
    } else {
        if views.contains(&View::Wow64)
            && let Err(error) = remove_in(catalog, View::Wow64, &layer.provider)
        {
            let undo = rollback.undo();
            let what = match error {
                UninstallError::Failed(_) => "removing the layer from the 32-bit catalog failed",
                _ => "the layer could not be removed from the 32-bit catalog",
            };
            return Err(InstallError::Unexpected {
                view: View::Wow64,
                what,
                undo,
            });
        }
        vec![View::Native]
    };

    let mut installed = Vec::with_capacity(views.len());
    for &view in &views {
        let entries = match catalog.enumerate(view) {
            Ok(entries) => entries,
            Err(error) => {
                let undo = rollback.undo();
                return Err(InstallError::Failed { error, undo });
            }
        };
        let unexpected = |what| (view, what);
        let found = InstalledLayer::find_in(view, &entries, &layer.provider)
            .ok_or(unexpected("the layer's hidden entry is not in the catalog"))
            .and_then(|found| {
                if found.chains.is_empty() {
                    return Err(unexpected("the layer has no protocol chain"));
                }
                let elsewhere = |chain: &WSAPROTOCOL_INFOW| {
                    selected.as_ref().is_some_and(|ids| {
                        chain_of(chain)
                            .last()
                            .is_none_or(|bottom| !ids.contains(bottom))
                    })
                };
                if view == View::Native && found.chains.iter().any(elsewhere) {
                    return Err(unexpected(
                        "a chain is over a base entry that was not selected (another provider \
                         of the same protocol is above it in the catalog order)",
                    ));
                }
                Ok(found)
            });
        match found {
            Ok(found) => installed.push((found, entries)),
            Err((view, what)) => {
                let undo = rollback.undo();
                return Err(InstallError::Unexpected { view, what, undo });
            }
        }
    }

    if !layer.categories.is_empty() {
        for (found, _) in &installed {
            let set =
                catalog.set_lsp_categories(found.view, &layer.provider, layer.categories.bits());
            if let Err(error) = set {
                let undo = rollback.undo();
                return Err(InstallError::Failed { error, undo });
            }
        }
    }

    if layer.placement == Placement::ChainsFirst {
        for (found, entries) in &installed {
            let order = ProviderOrder::chains_first(entries, found.catalog_id());
            if let Err(error) = catalog.write_order(found.view, &order) {
                let undo = rollback.undo();
                return Err(InstallError::Failed { error, undo });
            }
        }
    }

    rollback.keep();
    Ok(Installed {
        layers: installed.into_iter().map(|(found, _)| found).collect(),
    })
}

/// The error for a refused install call: R-WSP-22's typed error when the catalogs read before
/// it held the layer's id or name and the system answered one of the two codes its page gives;
/// otherwise the call's error, after removing whatever it left of the layer.
fn refused<C: CatalogWriter + ?Sized>(
    catalog: &C,
    layer: &LayerInstall,
    before: &[(View, Vec<WSAPROTOCOL_INFOW>)],
    error: WscError,
) -> InstallError {
    if let Some(code) = error.code()
        && (code == WsaError::WSAEINVAL || code == WsaError::WSANO_RECOVERY)
    {
        for (view, entries) in before {
            if let Some(duplicate) = layer.duplicate_in(entries) {
                return InstallError::AlreadyInstalled {
                    view: *view,
                    duplicate,
                    code,
                };
            }
        }
    }
    let before_call = before
        .iter()
        .any(|(_, entries)| entries.iter().any(|e| e.ProviderId == layer.provider));
    let undo = match error {
        // A function the system lacks did nothing.
        WscError::Unavailable { .. } => Undo::NothingInstalled,
        // What had the id before the call is not this call's to remove.
        _ if before_call => Undo::NothingInstalled,
        // The id was in no catalog before the call: what has it now is what the call left.
        _ => remove(catalog, &layer.provider),
    };
    InstallError::Failed { error, undo }
}

// ---------------------------------------------------------------------------------------------
// Uninstalling

/// What removing a layer from one catalog takes.
struct Removal {
    view: View,
    /// The ids to deinstall, in order: the chains' own, then the layer's.
    sequence: Vec<GUID>,
    /// The entries that go.
    entries: Vec<WSAPROTOCOL_INFOW>,
}

/// Plans the layer's removal from `catalog`; refuses what would remove or break anything else.
fn plan(
    view: View,
    catalog: &[WSAPROTOCOL_INFOW],
    provider: &GUID,
) -> Result<Removal, UninstallError> {
    let own: Vec<&WSAPROTOCOL_INFOW> = catalog
        .iter()
        .filter(|e| e.ProviderId == *provider)
        .collect();
    if own.iter().any(|e| e.ProtocolChain.ChainLen == 1) {
        return Err(UninstallError::NotALayer {
            view,
            provider: *provider,
        });
    }
    let hidden: Vec<u32> = own
        .iter()
        .filter(|e| e.ProtocolChain.ChainLen == 0)
        .map(|e| e.dwCatalogEntryId)
        .collect();
    let is_ours = |e: &WSAPROTOCOL_INFOW| hidden.iter().any(|&id| is_chain_of(e, id));

    // Chains of other layers running through this one.
    let mut over: Vec<GUID> = Vec::new();
    for entry in catalog {
        let chain = chain_of(entry);
        if chain.len() > 1 && chain[1..].iter().any(|id| hidden.contains(id)) {
            let top = catalog
                .iter()
                .find(|e| e.dwCatalogEntryId == chain[0] && e.ProtocolChain.ChainLen == 0)
                .map_or(entry.ProviderId, |e| e.ProviderId);
            if !over.contains(&top) {
                over.push(top);
            }
        }
    }
    if !over.is_empty() {
        return Err(UninstallError::LayeredOver { view, layers: over });
    }

    let mut sequence: Vec<GUID> = Vec::new();
    let mut entries: Vec<WSAPROTOCOL_INFOW> = own.iter().map(|e| **e).collect();
    for chain in catalog.iter().filter(|e| is_ours(e)) {
        if chain.ProviderId == *provider {
            continue;
        }
        entries.push(*chain);
        if sequence.contains(&chain.ProviderId) {
            continue;
        }
        let shared = catalog
            .iter()
            .any(|e| e.ProviderId == chain.ProviderId && !is_ours(e));
        if shared {
            return Err(UninstallError::SharedProviderId {
                view,
                provider: chain.ProviderId,
            });
        }
        sequence.push(chain.ProviderId);
    }
    if !own.is_empty() {
        sequence.push(*provider);
    }
    Ok(Removal {
        view,
        sequence,
        entries,
    })
}

/// Removes the layer `provider` from every catalog: its chains, then its hidden entry (and any
/// chain of its id left without one). Succeeds with [`Uninstalled::NotInstalled`] when no
/// catalog has it. Every catalog is read and checked before anything is removed. See the
/// [module documentation](self).
pub fn uninstall<C: CatalogWriter + ?Sized>(
    catalog: &C,
    provider: &GUID,
) -> Result<Uninstalled, UninstallError> {
    let mut removals = Vec::new();
    for view in catalog.views() {
        let entries = catalog.enumerate(view).map_err(UninstallError::Failed)?;
        removals.push(plan(view, &entries, provider)?);
    }
    if removals.iter().all(|r| r.entries.is_empty()) {
        return Ok(Uninstalled::NotInstalled);
    }
    let mut removed = Vec::new();
    for removal in removals {
        let view = removal.view;
        removed.extend(
            carry_out(catalog, removal)?
                .into_iter()
                .map(|entry| (view, entry)),
        );
    }
    Ok(Uninstalled::Removed { entries: removed })
}

/// Deinstalls what `removal` planned, then checks the catalog: the entries removed.
fn carry_out<C: CatalogWriter + ?Sized>(
    catalog: &C,
    removal: Removal,
) -> Result<Vec<WSAPROTOCOL_INFOW>, UninstallError> {
    let view = removal.view;
    for id in &removal.sequence {
        match catalog.deinstall(view, id) {
            Ok(()) => {}
            // "Does not specify a valid provider": nothing has this id any more.
            Err(error) if error.code() == Some(WsaError::WSAEINVAL) => {}
            Err(error) => return Err(UninstallError::Failed(error)),
        }
    }
    let after = catalog.enumerate(view).map_err(UninstallError::Failed)?;
    let remaining: Vec<u32> = after
        .iter()
        .map(|e| e.dwCatalogEntryId)
        .filter(|id| removal.entries.iter().any(|e| e.dwCatalogEntryId == *id))
        .collect();
    if !remaining.is_empty() {
        return Err(UninstallError::Incomplete { view, remaining });
    }
    Ok(removal.entries)
}

/// Removes the layer `provider` from one catalog.
fn remove_in<C: CatalogWriter + ?Sized>(
    catalog: &C,
    view: View,
    provider: &GUID,
) -> Result<(), UninstallError> {
    let entries = catalog.enumerate(view).map_err(UninstallError::Failed)?;
    carry_out(catalog, plan(view, &entries, provider)?).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYER: GUID = GUID::from_u128(0x6c61_7965_7200_4000_8000_0000_0000_0001);

    fn entry(id: u32, provider: GUID, chain: &[u32]) -> WSAPROTOCOL_INFOW {
        let mut info = WSAPROTOCOL_INFOW {
            dwCatalogEntryId: id,
            ProviderId: provider,
            iAddressFamily: 2,
            iSocketType: 1,
            iProtocol: 6,
            ..WSAPROTOCOL_INFOW::default()
        };
        info.ProtocolChain.ChainLen = chain.len() as i32;
        info.ProtocolChain.ChainEntries[..chain.len()].copy_from_slice(chain);
        info
    }

    #[test]
    fn a_description_is_checked_before_anything_is_asked() {
        let good = LayerInstall::new(LAYER, "layer", "%SystemRoot%\\system32\\layer.dll");
        assert_eq!(good.validate(), Ok(()));
        let cases = [
            LayerInstall::new(GUID::default(), "layer", "x.dll"),
            LayerInstall::new(LAYER, "", "x.dll"),
            LayerInstall::new(LAYER, "a\0b", "x.dll"),
            LayerInstall::new(LAYER, "n".repeat(256), "x.dll"),
            LayerInstall::new(LAYER, "layer", ""),
            LayerInstall::new(LAYER, "layer", "p".repeat(260)),
            LayerInstall::new(LAYER, "layer", "x.dll").path32(""),
            LayerInstall::new(LAYER, "layer", "x.dll").over(Over::Bases(Vec::new())),
        ];
        for case in cases {
            assert!(
                matches!(case.validate(), Err(InstallError::InvalidDescription(_))),
                "{case:?}"
            );
        }
        assert_eq!(
            LayerInstall::new(LAYER, "n".repeat(255), "p".repeat(259)).validate(),
            Ok(())
        );
    }

    #[test]
    fn a_match_selects_base_entries_only() {
        let base = entry(1001, GUID::from_u128(7), &[1001]);
        let chain = entry(1003, LAYER, &[1002, 1001]);
        let hidden = entry(1002, LAYER, &[]);
        assert!(BaseMatch::tcp_ipv4().matches(&base));
        assert!(!BaseMatch::tcp_ipv6().matches(&base));
        assert!(!BaseMatch::udp_ipv4().matches(&base));
        assert!(!BaseMatch::any().matches(&chain));
        assert!(!BaseMatch::any().matches(&hidden));
        assert!(BaseMatch::any().provider(GUID::from_u128(7)).matches(&base));
        assert!(!BaseMatch::any().provider(LAYER).matches(&base));
        assert!(BaseMatch::key(ProtocolKey::of(&base)).matches(&base));
    }

    #[test]
    fn a_layer_is_its_hidden_entry_and_the_chains_it_tops() {
        let other = GUID::from_u128(9);
        let catalog = [
            entry(1001, GUID::from_u128(7), &[1001]),
            entry(1002, LAYER, &[]),
            entry(1003, other, &[1002, 1001]),
            entry(1004, other, &[]),
            entry(1005, other, &[1004, 1001]),
        ];
        let found = InstalledLayer::find_in(View::Native, &catalog, &LAYER).unwrap();
        assert_eq!(found.catalog_id(), 1002);
        assert_eq!(found.chains, [catalog[2]]);
        assert_eq!(found.chain_providers(), [other]);
        assert_eq!(InstalledLayer::all_in(View::Native, &catalog).len(), 2);
        assert_eq!(
            InstalledLayer::find_in(View::Native, &catalog, &GUID::from_u128(7)),
            None
        );
    }

    #[test]
    fn a_removal_refuses_what_would_touch_anything_else() {
        let base = GUID::from_u128(7);
        let other = GUID::from_u128(9);
        // A base provider's GUID.
        let catalog = [entry(1001, base, &[1001])];
        assert!(matches!(
            plan(View::Native, &catalog, &base),
            Err(UninstallError::NotALayer { .. })
        ));
        // Another layer over this one.
        let catalog = [
            entry(1001, base, &[1001]),
            entry(1002, LAYER, &[]),
            entry(1003, LAYER, &[1002, 1001]),
            entry(1004, other, &[]),
            entry(1005, other, &[1004, 1002, 1001]),
        ];
        assert_eq!(
            plan(View::Native, &catalog, &LAYER).err(),
            Some(UninstallError::LayeredOver {
                view: View::Native,
                layers: vec![other],
            })
        );
        // A chain id that also names another layer's entries.
        let catalog = [
            entry(1001, base, &[1001]),
            entry(1002, LAYER, &[]),
            entry(1003, other, &[1002, 1001]),
            entry(1004, other, &[]),
        ];
        assert!(matches!(
            plan(View::Native, &catalog, &LAYER),
            Err(UninstallError::SharedProviderId { provider, .. }) if provider == other
        ));
        // Chains with their own id go first, the layer's id last.
        let catalog = [
            entry(1001, base, &[1001]),
            entry(1002, LAYER, &[]),
            entry(1003, other, &[1002, 1001]),
            entry(1005, other, &[1002, 1001]),
        ];
        let removal = plan(View::Native, &catalog, &LAYER).unwrap();
        assert_eq!(removal.sequence, [other, LAYER]);
        assert_eq!(removal.entries.len(), 3);
    }
}
