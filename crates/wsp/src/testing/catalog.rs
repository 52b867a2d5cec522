//! The Winsock catalog played in memory (feature `testing`): [`Simulated`] answers the write
//! side a layered provider's installer uses ([`CatalogWriter`]) and the read side a running
//! layer uses ([`Catalog`]), as ws2_32's pages describe the calls.
//!
//! # What is simulated
//!
//! The catalogs of 64-bit Windows ([`Simulated::new`]: the native one and the 32-bit one, each
//! with its own catalog ids) or of an x86 system ([`Simulated::x86`]: one). [`Simulated::msafd`]
//! fills them with the base entries of Microsoft's TCP/IP provider: TCP, UDP and RAW over IPv4
//! and IPv6, IFS providers (`XP1_IFS_HANDLES`). Every `WSC*` call is logged ([`Simulated::calls`])
//! and can be made to fail once with a code of the test's choice ([`Simulated::fail`]).
//!
//! - `WSCEnumProtocols` / `WSCEnumProtocols32`: every entry, hidden ones included, in catalog
//!   order.
//! - `WSCInstallProviderAndChains64_32` (x86: `WSCInstallProviderAndChains`), in every catalog
//!   at once, or nowhere:
//!   - arguments checked as its page says (`WSAEINVAL`): a null provider id, an empty name or
//!     one longer than `WSAPROTOCOL_LEN`, an empty path or one of `MAX_PATH` units or more, an
//!     empty list, and on 64-bit Windows no 32-bit path while the path is not
//!     `%windir%\system32\<dll>`;
//!   - a provider id already in a catalog, or a name a layer's hidden entry has, is refused
//!     with `WSAEINVAL`, or with the code of [`Simulated::refusing_duplicates_with`]
//!     (`WSANO_RECOVERY`, the page's "the provider is already installed") (R-WSP-22);
//!   - with a list, one chain over "the top-most entry in the configuration information that
//!     matches" each distinct `{address family, socket type, protocol}` (a base entry, or
//!     another layer's chain), `WSAEINVAL` when none matches, `WSANO_RECOVERY` when the chain
//!     would be longer than `MAX_PROTOCOL_CHAIN`; without one, a chain over the first base entry
//!     of each distinct protocol, `WSANO_RECOVERY` when there is none;
//!   - the hidden entry (`ChainLen` 0, `LAYERED_PROTOCOL`) gets the next catalog id, the
//!     layer's provider id and name, `PFL_HIDDEN`, no socket type or protocol, and the service
//!     flags asked for; each chain gets the next id, `ChainEntries` `[layer, …]` followed by the
//!     entry it goes over (`[layer, base]` over a base entry), the name `"<layer> over
//!     [<entry>]"`, and the entry's service flags with `XP1_IFS_HANDLES` kept only for an IFS
//!     layer (as Microsoft's LSP sample installer builds chains; the function's page does not
//!     say what it copies). The chains go first in the catalog order, as the page says
//!     ([`NewChains`] can put them last, as `WSCInstallProvider` appends), the hidden entry last.
//!     Which provider id the chains carry the page does not say: one of their own per install
//!     by default, as the sample installer does, or the layer's ([`ChainIds`]).
//! - `WSCSetProviderInfo` / `…32` (`ProviderInfoLspCategories`): the categories of every entry
//!   of the provider; `WSAEINVAL` for a provider with none.
//! - `WSCWriteProviderOrder` / `…32`: `WSAEINVAL` unless the order lists every catalog id once
//!   (R-WSP-21), checked here independently of [`ProviderOrder::check`].
//! - `WSCDeinstallProvider` / `…32`: every entry of the provider; `WSAEINVAL` for a provider
//!   with none. Like ws2_32, it does not look for chains that still name a removed entry.
//!
//! As a [`Catalog`], it answers the native catalog's entries, a provider's path as it was
//! installed (not expanded), and loads DLLs from the [`InProcess`] catalog given to
//! [`Simulated::with_modules`] (by path): a layer's tests install it with
//! [`install`](crate::install::install), then start it over this catalog.

use crate::abi::catalog::{Catalog, CatalogError, InProcess, Module, ProviderPath};
use crate::abi::install::{CatalogWriter, ChainsRequest, ProtocolKey, View, WscError};
use crate::abi::order::ProviderOrder;
use std::sync::{Mutex, MutexGuard};
use winprov_bindings::windows_core::GUID;
use winprov_bindings::ws2spi::{
    AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP, MAX_PATH, MAX_PROTOCOL_CHAIN, PFL_HIDDEN,
    PFL_MATCHES_PROTOCOL_ZERO, SOCK_DGRAM, SOCK_RAW, SOCK_STREAM, WSAPROTOCOL_INFOW,
    WSAPROTOCOL_LEN, XP1_CONNECTIONLESS, XP1_EXPEDITED_DATA, XP1_GRACEFUL_CLOSE,
    XP1_GUARANTEED_DELIVERY, XP1_GUARANTEED_ORDER, XP1_IFS_HANDLES, XP1_MESSAGE_ORIENTED,
    XP1_SUPPORT_BROADCAST, XP1_SUPPORT_MULTIPOINT,
};
use winprov_core::WsaError;

/// The provider id of Microsoft's TCP/IP provider (`MSAFD Tcpip`, mswsock.dll).
pub const MSAFD: GUID = GUID::from_u128(0xe70f1aa0_ab8b_11cf_8ca3_00805f48a192);
/// Its DLL, as the catalog keeps it.
pub const MSAFD_PATH: &str = "%SystemRoot%\\system32\\mswsock.dll";

/// One `WSC*` call, with its catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Call {
    /// `WSCEnumProtocols` / `WSCEnumProtocols32`.
    EnumProtocols(View),
    /// `WSCInstallProviderAndChains64_32` / `WSCInstallProviderAndChains`.
    InstallProviderAndChains,
    /// `WSCSetProviderInfo` / `WSCSetProviderInfo32`.
    SetProviderInfo(View),
    /// `WSCWriteProviderOrder` / `WSCWriteProviderOrder32`.
    WriteProviderOrder(View),
    /// `WSCDeinstallProvider` / `WSCDeinstallProvider32`.
    DeinstallProvider(View),
}

impl Call {
    fn function(self, catalogs: usize) -> &'static str {
        let native = |view: View, native, wow64| match view {
            View::Native => native,
            View::Wow64 => wow64,
        };
        match self {
            Self::EnumProtocols(view) => native(view, "WSCEnumProtocols", "WSCEnumProtocols32"),
            Self::InstallProviderAndChains if catalogs == 1 => "WSCInstallProviderAndChains",
            Self::InstallProviderAndChains => "WSCInstallProviderAndChains64_32",
            Self::SetProviderInfo(view) => {
                native(view, "WSCSetProviderInfo", "WSCSetProviderInfo32")
            }
            Self::WriteProviderOrder(view) => {
                native(view, "WSCWriteProviderOrder", "WSCWriteProviderOrder32")
            }
            Self::DeinstallProvider(view) => {
                native(view, "WSCDeinstallProvider", "WSCDeinstallProvider32")
            }
        }
    }
}

/// The provider id an install gives the chains (the pages do not say).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ChainIds {
    /// One id of their own per install, as Microsoft's LSP sample installer gives them.
    #[default]
    Own,
    /// The layer's id.
    Layer,
}

/// Where an install puts the new chains in the catalog order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum NewChains {
    /// First, as `WSCInstallProviderAndChains`'s page says.
    #[default]
    First,
    /// Last, as `WSCInstallProvider` appends.
    Last,
}

/// A failure to answer once.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// The next `call` fails with `code`.
    Fail(Call, WsaError),
    /// The next install writes the native catalog, then fails with `code` for the 32-bit one.
    NativeOnly(WsaError),
}

/// One catalog.
#[derive(Debug)]
struct Book {
    view: View,
    entries: Vec<WSAPROTOCOL_INFOW>,
    next_id: u32,
    /// The DLL path of each provider id.
    paths: Vec<(GUID, String)>,
    /// The LSP categories of each entry (by catalog id).
    categories: Vec<(u32, u32)>,
}

#[derive(Debug)]
struct State {
    books: Vec<Book>,
    duplicate: WsaError,
    chain_ids: ChainIds,
    new_chains: NewChains,
    faults: Vec<Fault>,
    calls: Vec<Call>,
    next_guid: u128,
}

/// A Winsock catalog in memory. See the [module documentation](self).
#[derive(Debug)]
pub struct Simulated {
    state: Mutex<State>,
    modules: InProcess,
}

fn set_name(entry: &mut WSAPROTOCOL_INFOW, name: &str) {
    entry.szProtocol = [0; 256];
    for (unit, out) in name
        .encode_utf16()
        .take(WSAPROTOCOL_LEN as usize)
        .zip(entry.szProtocol.iter_mut())
    {
        *out = unit;
    }
}

fn name_of(entry: &WSAPROTOCOL_INFOW) -> String {
    crate::install::entry_name(entry)
}

fn chain_of(entry: &WSAPROTOCOL_INFOW) -> Vec<u32> {
    let len = usize::try_from(entry.ProtocolChain.ChainLen)
        .unwrap_or(0)
        .min(entry.ProtocolChain.ChainEntries.len());
    entry.ProtocolChain.ChainEntries[..len].to_vec()
}

fn units(text: &str) -> usize {
    text.encode_utf16().count()
}

impl Book {
    fn new(view: View, first_id: u32) -> Self {
        Self {
            view,
            entries: Vec::new(),
            next_id: first_id,
            paths: Vec::new(),
            categories: Vec::new(),
        }
    }

    fn next_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn set_path(&mut self, provider: GUID, path: &str) {
        self.paths.retain(|(id, _)| *id != provider);
        self.paths.push((provider, path.to_owned()));
    }

    fn path(&self, provider: &GUID) -> Option<&str> {
        self.paths
            .iter()
            .find(|(id, _)| id == provider)
            .map(|(_, path)| path.as_str())
    }

    /// What R-WSP-22 refuses in this catalog.
    fn has_duplicate(&self, request: &ChainsRequest) -> bool {
        self.entries.iter().any(|e| {
            e.ProviderId == request.provider
                || (e.ProtocolChain.ChainLen == 0 && name_of(e) == request.name)
        })
    }

    /// The entries the new chains go over, in the order of the keys (or of the catalog).
    fn unders(&self, over: Option<&[ProtocolKey]>) -> Result<Vec<WSAPROTOCOL_INFOW>, WsaError> {
        let mut unders: Vec<WSAPROTOCOL_INFOW> = Vec::new();
        let mut seen: Vec<ProtocolKey> = Vec::new();
        match over {
            None => {
                for entry in self
                    .entries
                    .iter()
                    .filter(|e| e.ProtocolChain.ChainLen == 1)
                {
                    let key = ProtocolKey::of(entry);
                    if !seen.contains(&key) {
                        seen.push(key);
                        unders.push(*entry);
                    }
                }
                if unders.is_empty() {
                    return Err(WsaError::WSANO_RECOVERY);
                }
            }
            Some(keys) => {
                for key in keys {
                    if seen.contains(key) {
                        continue;
                    }
                    seen.push(*key);
                    let top = self
                        .entries
                        .iter()
                        .find(|e| e.ProtocolChain.ChainLen >= 1 && ProtocolKey::of(e) == *key)
                        .ok_or(WsaError::WSAEINVAL)?;
                    if chain_of(top).len() + 1 > MAX_PROTOCOL_CHAIN as usize {
                        return Err(WsaError::WSANO_RECOVERY);
                    }
                    unders.push(*top);
                }
            }
        }
        Ok(unders)
    }

    /// Installs the hidden entry and a chain over each of `unders`.
    fn add_layer(
        &mut self,
        request: &ChainsRequest,
        unders: &[WSAPROTOCOL_INFOW],
        chain_provider: GUID,
        placement: NewChains,
    ) {
        let ifs = request.service_flags & XP1_IFS_HANDLES;
        let layer_id = self.next_id();
        let mut hidden = unders[0];
        hidden.ProviderId = request.provider;
        hidden.dwCatalogEntryId = layer_id;
        hidden.iSocketType = 0;
        hidden.iProtocol = 0;
        hidden.dwProviderFlags = (hidden.dwProviderFlags | PFL_HIDDEN) & !PFL_MATCHES_PROTOCOL_ZERO;
        hidden.dwServiceFlags1 = (hidden.dwServiceFlags1 & !XP1_IFS_HANDLES) | ifs;
        hidden.ProtocolChain.ChainLen = 0;
        hidden.ProtocolChain.ChainEntries = [0; 7];
        set_name(&mut hidden, &request.name);

        let mut chains = Vec::with_capacity(unders.len());
        for under in unders {
            let mut chain = *under;
            chain.ProviderId = chain_provider;
            chain.dwCatalogEntryId = self.next_id();
            let mut ids = vec![layer_id];
            ids.extend(chain_of(under));
            chain.ProtocolChain.ChainLen = ids.len() as i32;
            chain.ProtocolChain.ChainEntries = [0; 7];
            chain.ProtocolChain.ChainEntries[..ids.len()].copy_from_slice(&ids);
            chain.dwServiceFlags1 = under.dwServiceFlags1 & !(XP1_IFS_HANDLES & !ifs);
            set_name(
                &mut chain,
                &format!("{} over [{}]", request.name, name_of(under)),
            );
            chains.push(chain);
        }

        match placement {
            NewChains::First => {
                let rest = std::mem::take(&mut self.entries);
                self.entries = chains;
                self.entries.extend(rest);
                self.entries.push(hidden);
            }
            NewChains::Last => {
                self.entries.push(hidden);
                self.entries.extend(chains);
            }
        }
        let path = match self.view {
            View::Native => request.path.clone(),
            View::Wow64 => request.path32.clone().unwrap_or(request.path.clone()),
        };
        self.set_path(request.provider, &path);
        self.set_path(chain_provider, &path);
    }
}

fn msafd_entry(id: u32, family: i32, socket_type: i32, protocol: i32) -> WSAPROTOCOL_INFOW {
    let v6 = family == i32::from(AF_INET6.0);
    let (flags, message_size, kind) = if socket_type == SOCK_STREAM.0 {
        (
            XP1_GUARANTEED_DELIVERY
                | XP1_GUARANTEED_ORDER
                | XP1_GRACEFUL_CLOSE
                | XP1_EXPEDITED_DATA,
            0,
            "TCP",
        )
    } else {
        let datagram = XP1_CONNECTIONLESS
            | XP1_MESSAGE_ORIENTED
            | XP1_SUPPORT_BROADCAST
            | XP1_SUPPORT_MULTIPOINT;
        let kind = if socket_type == SOCK_RAW.0 {
            "RAW"
        } else {
            "UDP"
        };
        (datagram, 65_467, kind)
    };
    let mut entry = WSAPROTOCOL_INFOW {
        dwServiceFlags1: flags | XP1_IFS_HANDLES,
        dwProviderFlags: PFL_MATCHES_PROTOCOL_ZERO,
        ProviderId: MSAFD,
        dwCatalogEntryId: id,
        iVersion: 2,
        iAddressFamily: family,
        iMaxSockAddr: if v6 { 28 } else { 16 },
        iMinSockAddr: if v6 { 28 } else { 16 },
        iSocketType: socket_type,
        iProtocol: protocol,
        iProtocolMaxOffset: if socket_type == SOCK_RAW.0 { 255 } else { 0 },
        dwMessageSize: message_size,
        ..WSAPROTOCOL_INFOW::default()
    };
    entry.ProtocolChain.ChainLen = 1;
    entry.ProtocolChain.ChainEntries[0] = id;
    let suffix = if v6 { "IPv6" } else { "IP" };
    set_name(&mut entry, &format!("MSAFD Tcpip [{kind}/{suffix}]"));
    entry
}

impl Simulated {
    fn with_books(books: Vec<Book>) -> Self {
        Self {
            state: Mutex::new(State {
                books,
                duplicate: WsaError::WSAEINVAL,
                chain_ids: ChainIds::Own,
                new_chains: NewChains::First,
                faults: Vec::new(),
                calls: Vec::new(),
                next_guid: 0x5155_0000_0000_4000_8000_0000_0000_0000,
            }),
            modules: InProcess::default(),
        }
    }

    /// The empty catalogs of 64-bit Windows: the native one (ids from 1001) and the 32-bit one
    /// (ids from 2001: its own history).
    pub fn new() -> Self {
        Self::with_books(vec![
            Book::new(View::Native, 1001),
            Book::new(View::Wow64, 2001),
        ])
    }

    /// The empty catalog of an x86 system.
    pub fn x86() -> Self {
        Self::with_books(vec![Book::new(View::Native, 1001)])
    }

    /// [`new`](Self::new) with Microsoft's TCP/IP provider ([`MSAFD`]) in both catalogs: TCP,
    /// UDP and RAW over IPv4, then over IPv6.
    pub fn msafd() -> Self {
        let catalog = Self::new();
        catalog.add_msafd();
        catalog
    }

    /// Adds Microsoft's TCP/IP base entries to every catalog.
    pub fn add_msafd(&self) {
        let mut state = self.lock();
        for book in &mut state.books {
            for family in [i32::from(AF_INET.0), i32::from(AF_INET6.0)] {
                for (socket_type, protocol) in [
                    (SOCK_STREAM.0, IPPROTO_TCP.0),
                    (SOCK_DGRAM.0, IPPROTO_UDP.0),
                    (SOCK_RAW.0, 0),
                ] {
                    let id = book.next_id();
                    book.entries
                        .push(msafd_entry(id, family, socket_type, protocol));
                }
            }
            book.set_path(MSAFD, MSAFD_PATH);
        }
    }

    /// Adds a base entry (`ChainLen` 1) of `provider` for `key` to every catalog, after the
    /// others; its catalog id in each.
    pub fn add_base(
        &self,
        provider: GUID,
        path: &str,
        key: ProtocolKey,
        name: &str,
        service_flags: u32,
    ) -> Vec<u32> {
        let mut state = self.lock();
        let mut ids = Vec::new();
        for book in &mut state.books {
            let id = book.next_id();
            let mut entry = WSAPROTOCOL_INFOW {
                dwServiceFlags1: service_flags,
                ProviderId: provider,
                dwCatalogEntryId: id,
                iVersion: 2,
                ..key.to_protocol_info()
            };
            entry.ProtocolChain.ChainLen = 1;
            entry.ProtocolChain.ChainEntries[0] = id;
            set_name(&mut entry, name);
            book.entries.push(entry);
            book.set_path(provider, path);
            ids.push(id);
        }
        ids
    }

    /// Refuses a duplicate provider id or name with `code` instead of `WSAEINVAL`.
    pub fn refusing_duplicates_with(self, code: WsaError) -> Self {
        self.lock().duplicate = code;
        self
    }

    /// The provider id installs give the chains.
    pub fn chain_ids(self, ids: ChainIds) -> Self {
        self.lock().chain_ids = ids;
        self
    }

    /// Where installs put the new chains.
    pub fn new_chains(self, placement: NewChains) -> Self {
        self.lock().new_chains = placement;
        self
    }

    /// Loads DLLs (as a [`Catalog`]) from `modules`, by path.
    pub fn with_modules(mut self, modules: InProcess) -> Self {
        self.modules = modules;
        self
    }

    /// The next `call` fails with `code` (before doing anything), once.
    pub fn fail(&self, call: Call, code: WsaError) {
        self.lock().faults.push(Fault::Fail(call, code));
    }

    /// The next install writes the native catalog and fails with `code` before the 32-bit one.
    pub fn fail_install_after_native(&self, code: WsaError) {
        self.lock().faults.push(Fault::NativeOnly(code));
    }

    /// The entries of a catalog, in order (none for a catalog this system does not keep).
    pub fn entries(&self, view: View) -> Vec<WSAPROTOCOL_INFOW> {
        self.lock()
            .book(view)
            .map(|book| book.entries.clone())
            .unwrap_or_default()
    }

    /// The catalog ids of a catalog, in order.
    pub fn ids(&self, view: View) -> Vec<u32> {
        self.entries(view)
            .iter()
            .map(|e| e.dwCatalogEntryId)
            .collect()
    }

    /// The LSP categories of the entries of `provider` (`None`: no entry has any).
    pub fn categories(&self, view: View, provider: &GUID) -> Option<u32> {
        let state = self.lock();
        let book = state.book(view)?;
        book.entries
            .iter()
            .filter(|e| e.ProviderId == *provider)
            .find_map(|e| {
                book.categories
                    .iter()
                    .find(|(id, _)| *id == e.dwCatalogEntryId)
                    .map(|(_, categories)| *categories)
            })
    }

    /// The DLL path of `provider`, as installed.
    pub fn path(&self, view: View, provider: &GUID) -> Option<String> {
        let state = self.lock();
        state.book(view)?.path(provider).map(str::to_owned)
    }

    /// Every `WSC*` call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for Simulated {
    fn default() -> Self {
        Self::new()
    }
}

impl State {
    fn book(&self, view: View) -> Option<&Book> {
        self.books.iter().find(|b| b.view == view)
    }

    /// Logs `call`; its error when this system lacks its catalog or a fault is due.
    fn start(&mut self, call: Call, view: Option<View>) -> Result<(), WscError> {
        self.calls.push(call);
        let function = call.function(self.books.len());
        if let Some(view) = view
            && self.book(view).is_none()
        {
            return Err(WscError::Unavailable { function });
        }
        let due = self
            .faults
            .iter()
            .position(|f| matches!(f, Fault::Fail(c, _) if *c == call));
        if let Some(at) = due
            && let Fault::Fail(_, code) = self.faults.remove(at)
        {
            return Err(WscError::Failed { function, code });
        }
        Ok(())
    }

    fn book_mut(&mut self, view: View) -> &mut Book {
        self.books
            .iter_mut()
            .find(|b| b.view == view)
            .expect("`start` checked the catalog exists")
    }

    fn fresh_guid(&mut self) -> GUID {
        self.next_guid += 1;
        GUID::from_u128(self.next_guid)
    }
}

fn starts_with_ignoring_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

impl CatalogWriter for Simulated {
    fn views(&self) -> Vec<View> {
        self.lock().books.iter().map(|b| b.view).collect()
    }

    fn enumerate(&self, view: View) -> Result<Vec<WSAPROTOCOL_INFOW>, WscError> {
        let mut state = self.lock();
        state.start(Call::EnumProtocols(view), Some(view))?;
        Ok(state.book_mut(view).entries.clone())
    }

    fn install_provider_and_chains(&self, request: &ChainsRequest) -> Result<(), WscError> {
        let mut state = self.lock();
        let call = Call::InstallProviderAndChains;
        state.start(call, None)?;
        let function = call.function(state.books.len());
        let fail = |code| Err(WscError::Failed { function, code });
        let native_only = state
            .faults
            .iter()
            .position(|f| matches!(f, Fault::NativeOnly(_)))
            .map(|at| match state.faults.remove(at) {
                Fault::NativeOnly(code) | Fault::Fail(_, code) => code,
            });

        let path_ok = |path: &str| !path.is_empty() && units(path) < MAX_PATH as usize;
        let bad_path32 = match &request.path32 {
            Some(path32) => !path_ok(path32),
            None => {
                state.books.len() > 1
                    && !starts_with_ignoring_case(&request.path, "%windir%\\system32\\")
            }
        };
        if request.provider == GUID::default()
            || request.name.is_empty()
            || units(&request.name) > WSAPROTOCOL_LEN as usize
            || !path_ok(&request.path)
            || bad_path32
            || request.over.as_ref().is_some_and(Vec::is_empty)
        {
            return fail(WsaError::WSAEINVAL);
        }
        if state.books.iter().any(|book| book.has_duplicate(request)) {
            return fail(state.duplicate);
        }
        // Every catalog is planned before any is written.
        let mut plans = Vec::with_capacity(state.books.len());
        for book in &state.books {
            match book.unders(request.over.as_deref()) {
                Ok(unders) => plans.push(unders),
                Err(code) => return fail(code),
            }
        }
        let chain_provider = match state.chain_ids {
            ChainIds::Layer => request.provider,
            ChainIds::Own => state.fresh_guid(),
        };
        let placement = state.new_chains;
        for (book, unders) in state.books.iter_mut().zip(plans) {
            if book.view == View::Wow64
                && let Some(code) = native_only
            {
                return fail(code);
            }
            book.add_layer(request, &unders, chain_provider, placement);
        }
        Ok(())
    }

    fn set_lsp_categories(
        &self,
        view: View,
        provider: &GUID,
        categories: u32,
    ) -> Result<(), WscError> {
        let mut state = self.lock();
        let call = Call::SetProviderInfo(view);
        state.start(call, Some(view))?;
        let function = call.function(state.books.len());
        let book = state.book_mut(view);
        let ids: Vec<u32> = book
            .entries
            .iter()
            .filter(|e| e.ProviderId == *provider)
            .map(|e| e.dwCatalogEntryId)
            .collect();
        if ids.is_empty() {
            return Err(WscError::Failed {
                function,
                code: WsaError::WSAEINVAL,
            });
        }
        book.categories.retain(|(id, _)| !ids.contains(id));
        book.categories
            .extend(ids.into_iter().map(|id| (id, categories)));
        Ok(())
    }

    fn write_order(&self, view: View, order: &ProviderOrder) -> Result<(), WscError> {
        let mut state = self.lock();
        let call = Call::WriteProviderOrder(view);
        state.start(call, Some(view))?;
        let function = call.function(state.books.len());
        let book = state.book_mut(view);
        // R-WSP-21, as ws2_32 checks it: every installed id exactly once.
        let mut installed: Vec<u32> = book.entries.iter().map(|e| e.dwCatalogEntryId).collect();
        let mut given = order.ids().to_vec();
        installed.sort_unstable();
        given.sort_unstable();
        if installed != given {
            return Err(WscError::Failed {
                function,
                code: WsaError::WSAEINVAL,
            });
        }
        let mut reordered = Vec::with_capacity(book.entries.len());
        for id in order.ids() {
            if let Some(entry) = book.entries.iter().find(|e| e.dwCatalogEntryId == *id) {
                reordered.push(*entry);
            }
        }
        book.entries = reordered;
        Ok(())
    }

    fn deinstall(&self, view: View, provider: &GUID) -> Result<(), WscError> {
        let mut state = self.lock();
        let call = Call::DeinstallProvider(view);
        state.start(call, Some(view))?;
        let function = call.function(state.books.len());
        let book = state.book_mut(view);
        let removed: Vec<u32> = book
            .entries
            .iter()
            .filter(|e| e.ProviderId == *provider)
            .map(|e| e.dwCatalogEntryId)
            .collect();
        if removed.is_empty() {
            return Err(WscError::Failed {
                function,
                code: WsaError::WSAEINVAL,
            });
        }
        book.entries.retain(|e| e.ProviderId != *provider);
        book.categories.retain(|(id, _)| !removed.contains(id));
        book.paths.retain(|(id, _)| id != provider);
        Ok(())
    }
}

impl Catalog for Simulated {
    fn protocols(&self) -> Result<Vec<WSAPROTOCOL_INFOW>, CatalogError> {
        self.enumerate(View::Native)
            .map_err(|error| CatalogError::Enumerate {
                code: error.code().unwrap_or(WsaError::WSASYSCALLFAILURE),
            })
    }

    fn provider_path(&self, provider: &GUID) -> Result<ProviderPath, CatalogError> {
        match self.path(View::Native, provider) {
            Some(path) => Ok(ProviderPath::from(path.as_str())),
            None => self.modules.provider_path(provider),
        }
    }

    fn load(&self, path: &ProviderPath) -> Result<Module, CatalogError> {
        self.modules.load(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYER: GUID = GUID::from_u128(0x6c61_7965_7200_4000_8000_0000_0000_0001);

    fn request(over: Option<Vec<ProtocolKey>>) -> ChainsRequest {
        ChainsRequest {
            provider: LAYER,
            path: "%windir%\\system32\\layer.dll".into(),
            path32: None,
            name: "Layer".into(),
            service_flags: 0,
            over,
        }
    }

    fn tcp4() -> ProtocolKey {
        ProtocolKey {
            address_family: 2,
            socket_type: 1,
            protocol: 6,
        }
    }

    #[test]
    fn msafd_has_six_ifs_base_entries_per_catalog() {
        let catalog = Simulated::msafd();
        for (view, first) in [(View::Native, 1001), (View::Wow64, 2001)] {
            let entries = catalog.entries(view);
            assert_eq!(entries.len(), 6);
            assert_eq!(entries[0].dwCatalogEntryId, first);
            assert!(entries.iter().all(|e| e.ProtocolChain.ChainLen == 1
                && e.dwServiceFlags1 & XP1_IFS_HANDLES != 0
                && e.ProviderId == MSAFD));
            assert_eq!(name_of(&entries[0]), "MSAFD Tcpip [TCP/IP]");
            assert_eq!(name_of(&entries[5]), "MSAFD Tcpip [RAW/IPv6]");
        }
        assert_eq!(
            catalog.path(View::Wow64, &MSAFD).as_deref(),
            Some(MSAFD_PATH)
        );
    }

    #[test]
    fn an_install_makes_a_hidden_entry_and_a_chain_per_protocol_first_in_order() {
        let catalog = Simulated::msafd().chain_ids(ChainIds::Layer);
        catalog
            .install_provider_and_chains(&request(Some(vec![tcp4(), tcp4()])))
            .unwrap();
        let entries = catalog.entries(View::Native);
        assert_eq!(entries.len(), 8);
        let chain = entries[0];
        let hidden = entries[7];
        assert_eq!(hidden.ProtocolChain.ChainLen, 0);
        assert_eq!(hidden.dwCatalogEntryId, 1007);
        assert_eq!(hidden.dwProviderFlags & PFL_HIDDEN, PFL_HIDDEN);
        assert_eq!(hidden.dwServiceFlags1 & XP1_IFS_HANDLES, 0);
        assert_eq!(name_of(&hidden), "Layer");
        assert_eq!(chain.ProviderId, LAYER);
        assert_eq!(chain_of(&chain), [1007, 1001]);
        assert_eq!(name_of(&chain), "Layer over [MSAFD Tcpip [TCP/IP]]");
        // A non-IFS layer's chain does not keep the base's XP1_IFS_HANDLES.
        assert_eq!(
            chain.dwServiceFlags1,
            entries[1].dwServiceFlags1 & !XP1_IFS_HANDLES
        );
        assert_eq!(chain_of(&catalog.entries(View::Wow64)[0]), [2007, 2001]);
    }

    #[test]
    fn an_ifs_layer_s_chains_keep_the_base_s_ifs_flag() {
        let catalog = Simulated::msafd();
        let mut ifs = request(Some(vec![tcp4()]));
        ifs.service_flags = XP1_IFS_HANDLES;
        catalog.install_provider_and_chains(&ifs).unwrap();
        let entries = catalog.entries(View::Native);
        assert_eq!(entries[0].dwServiceFlags1, entries[1].dwServiceFlags1);
        assert_ne!(entries[0].dwServiceFlags1 & XP1_IFS_HANDLES, 0);
        assert_ne!(entries[7].dwServiceFlags1 & XP1_IFS_HANDLES, 0);
    }

    #[test]
    fn without_a_list_every_protocol_gets_one_chain_over_its_first_base() {
        let catalog = Simulated::msafd();
        catalog.add_base(GUID::from_u128(5), "other.dll", tcp4(), "Other TCP", 0);
        catalog.install_provider_and_chains(&request(None)).unwrap();
        let entries = catalog.entries(View::Native);
        let chains: Vec<Vec<u32>> = entries
            .iter()
            .filter(|e| e.ProtocolChain.ChainLen > 1)
            .map(chain_of)
            .collect();
        assert_eq!(chains.len(), 6);
        assert_eq!(chains[0], [1008, 1001]);
    }

    #[test]
    fn a_second_layer_goes_over_the_top_most_entry_the_first_layer_s_chain() {
        let catalog = Simulated::msafd();
        catalog
            .install_provider_and_chains(&request(Some(vec![tcp4()])))
            .unwrap();
        let mut second = request(Some(vec![tcp4()]));
        second.provider = GUID::from_u128(2);
        second.name = "Second".into();
        catalog.install_provider_and_chains(&second).unwrap();
        assert_eq!(
            chain_of(&catalog.entries(View::Native)[0]),
            [1009, 1007, 1001]
        );
    }

    #[test]
    fn refusals_change_nothing() {
        let catalog = Simulated::msafd();
        let before = catalog.entries(View::Native);
        let unmatched = ProtocolKey {
            address_family: 99,
            ..tcp4()
        };
        let mut not_in_system32 = request(Some(vec![tcp4()]));
        not_in_system32.path = "C:\\layer\\layer.dll".into();
        for (bad, code) in [
            (request(Some(vec![unmatched])), WsaError::WSAEINVAL),
            (request(Some(Vec::new())), WsaError::WSAEINVAL),
            (not_in_system32, WsaError::WSAEINVAL),
        ] {
            assert_eq!(
                catalog
                    .install_provider_and_chains(&bad)
                    .unwrap_err()
                    .code(),
                Some(code)
            );
        }
        assert_eq!(catalog.entries(View::Native), before);
        assert_eq!(
            Simulated::new()
                .install_provider_and_chains(&request(None))
                .unwrap_err()
                .code(),
            Some(WsaError::WSANO_RECOVERY)
        );
    }

    #[test]
    fn a_chain_longer_than_max_protocol_chain_is_refused() {
        let catalog = Simulated::msafd();
        for n in 1..=6u128 {
            let mut layer = request(Some(vec![tcp4()]));
            layer.provider = GUID::from_u128(n);
            layer.name = format!("L{n}");
            catalog.install_provider_and_chains(&layer).unwrap();
        }
        assert_eq!(chain_of(&catalog.entries(View::Native)[0]).len(), 7);
        let mut seventh = request(Some(vec![tcp4()]));
        seventh.provider = GUID::from_u128(7);
        seventh.name = "L7".into();
        assert_eq!(
            catalog
                .install_provider_and_chains(&seventh)
                .unwrap_err()
                .code(),
            Some(WsaError::WSANO_RECOVERY)
        );
    }

    #[test]
    fn deinstall_removes_every_entry_of_a_provider() {
        let catalog = Simulated::msafd().chain_ids(ChainIds::Layer);
        catalog
            .install_provider_and_chains(&request(Some(vec![tcp4()])))
            .unwrap();
        catalog.set_lsp_categories(View::Native, &LAYER, 1).unwrap();
        assert_eq!(catalog.categories(View::Native, &LAYER), Some(1));
        catalog.deinstall(View::Native, &LAYER).unwrap();
        assert_eq!(catalog.entries(View::Native).len(), 6);
        assert_eq!(catalog.categories(View::Native, &LAYER), None);
        assert_eq!(catalog.entries(View::Wow64).len(), 8);
        assert_eq!(
            catalog.deinstall(View::Native, &LAYER).unwrap_err(),
            WscError::Failed {
                function: "WSCDeinstallProvider",
                code: WsaError::WSAEINVAL
            }
        );
    }

    #[test]
    fn an_x86_system_has_one_catalog() {
        let catalog = Simulated::x86();
        assert_eq!(catalog.views(), [View::Native]);
        assert_eq!(
            catalog.enumerate(View::Wow64).unwrap_err(),
            WscError::Unavailable {
                function: "WSCEnumProtocols32"
            }
        );
    }
}
