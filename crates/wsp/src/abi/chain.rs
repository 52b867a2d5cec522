//! Protocol chains as a layered provider (LSP) reads them, and the rule of what it hands the
//! provider below it (R-WSP-4).
//!
//! A layer is installed as one hidden catalog entry (`ChainLen == LAYERED_PROTOCOL`, 0) with
//! the layer's provider GUID, and as protocol chains (`ChainLen` 2 to `MAX_PROTOCOL_CHAIN`)
//! whose `ChainEntries` list catalog ids from the top layer down to a base provider
//! (`ChainLen == BASE_PROTOCOL`, 1) at the bottom (interfaces.md §4.2). ws2_32 starts the top
//! layer of a chain with the chain's entry; each layer finds *its own hidden entry's id* in
//! the chain ([`own_entry`] finds that id from the layer's GUID, [`locate`] its place), and the
//! entry right after it is the provider below: another layer's hidden entry, or the base
//! provider's entry at the bottom, told apart by the entry's `ChainLen` in the catalog
//! ([`resolve`], which also checks the entry agrees with its place in the chain).
//!
//! What goes down is one function, [`Route::pass_down`], which every start and call of a lower
//! provider goes through (R-WSP-4): a lower *layer* gets the chain's `WSAPROTOCOL_INFOW`
//! unmodified, byte for byte, so it can find itself in the same chain; the *base* gets its
//! own catalog entry, as if ws2_32 had started it directly — for `WSPStartup`, `WSPSocket` and
//! the address conversions. `WSPSocket` is the one call whose structure carries per-socket
//! data: `dwProviderReserved` is the token with which a provider recognises a socket
//! duplicated from another process, so the base's own entry goes down with the caller's
//! `dwProviderReserved`. `WSPDuplicateSocket` fills a structure the other way:
//! [`Route::duplicated`] makes the one handed up from the lower provider's answer — the
//! socket's chain entry (so the other process's ws2_32 comes back through the same chain)
//! with the lower provider's `dwProviderReserved`.
//!
//! Refused, with the code the layer answers ([`ChainError::code`]): a `ChainLen` out of range
//! (`WSAEINVAL`, as for any `WSAPROTOCOL_INFOW`); an entry that is not a chain, a chain
//! without the layer, with the layer more than once or at its bottom, a lower entry missing
//! from the catalog or out of its place, a layer not installed (`WSAEINVALIDPROVIDER`, "the
//! protocol entry specified could not be found").

use std::fmt;
use winprov_bindings::windows_core::GUID;
use winprov_bindings::ws2spi::{
    BASE_PROTOCOL, LAYERED_PROTOCOL, MAX_PROTOCOL_CHAIN, WSAPROTOCOL_INFOW,
};
use winprov_core::WsaError;

/// Why a layer cannot serve a protocol entry. See the [module documentation](self).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainError {
    /// `ChainLen` is negative or above `MAX_PROTOCOL_CHAIN` (7): `WSAEINVAL`.
    ChainLen {
        /// The entry's `dwCatalogEntryId`.
        entry: u32,
        /// Its `ChainLen`.
        len: i32,
    },
    /// The entry is a layer's hidden entry (`ChainLen` 0) or a base provider's (1), not a
    /// chain.
    NotAChain {
        /// The entry's `dwCatalogEntryId`.
        entry: u32,
        /// Its `ChainLen`.
        len: i32,
    },
    /// The chain does not name the layer's hidden entry.
    NotInChain {
        /// The chain entry's `dwCatalogEntryId`.
        entry: u32,
        /// The layer's hidden entry.
        own: u32,
    },
    /// The layer's hidden entry is the chain's last: nothing is below it.
    AtBottom {
        /// The chain entry's `dwCatalogEntryId`.
        entry: u32,
        /// The layer's hidden entry.
        own: u32,
    },
    /// The chain names the layer's hidden entry more than once (the layer would be its own
    /// lower provider).
    Repeated {
        /// The chain entry's `dwCatalogEntryId`.
        entry: u32,
        /// The layer's hidden entry.
        own: u32,
    },
    /// The entry below the layer is not in the catalog.
    LowerNotInCatalog {
        /// Its catalog id.
        id: u32,
    },
    /// The entry below the layer does not fit its place: a base provider above the chain's
    /// bottom, a layer's hidden entry at its bottom, or a chain inside a chain.
    LowerMisplaced {
        /// Its catalog id.
        id: u32,
        /// Its `ChainLen` in the catalog.
        len: i32,
        /// Whether it is the chain's last entry.
        at_bottom: bool,
    },
    /// A structure for another chain than the one the lower provider was found for.
    OtherChain {
        /// The chain's `dwCatalogEntryId`.
        expected: u32,
        /// The structure's.
        given: u32,
    },
    /// The catalog has no hidden entry (`ChainLen` 0) with the layer's provider GUID.
    NotInstalled {
        /// The layer's provider GUID.
        provider: GUID,
    },
    /// The catalog has more than one hidden entry with the layer's provider GUID.
    InstalledTwice {
        /// The layer's provider GUID.
        provider: GUID,
        /// Two of them.
        entries: [u32; 2],
    },
}

impl ChainError {
    /// The code the layer answers: `WSAEINVAL` for a `ChainLen` out of range, else
    /// `WSAEINVALIDPROVIDER`.
    pub fn code(&self) -> WsaError {
        match self {
            Self::ChainLen { .. } => WsaError::WSAEINVAL,
            _ => WsaError::WSAEINVALIDPROVIDER,
        }
    }
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ChainLen { entry, len } => write!(
                f,
                "catalog entry {entry}: ChainLen {len} is outside 0..={MAX_PROTOCOL_CHAIN}"
            ),
            Self::NotAChain { entry, len } => {
                write!(
                    f,
                    "catalog entry {entry} is not a protocol chain (ChainLen {len})"
                )
            }
            Self::NotInChain { entry, own } => {
                write!(
                    f,
                    "protocol chain {entry} does not name the layer's entry {own}"
                )
            }
            Self::AtBottom { entry, own } => write!(
                f,
                "the layer's entry {own} is the bottom of protocol chain {entry}: nothing is below it"
            ),
            Self::Repeated { entry, own } => write!(
                f,
                "protocol chain {entry} names the layer's entry {own} more than once"
            ),
            Self::LowerNotInCatalog { id } => {
                write!(f, "the entry below the layer, {id}, is not in the catalog")
            }
            Self::LowerMisplaced { id, len, at_bottom } => write!(
                f,
                "the entry below the layer, {id} (ChainLen {len}), cannot be {} of a chain",
                if *at_bottom {
                    "the bottom"
                } else {
                    "above the bottom"
                }
            ),
            Self::OtherChain { expected, given } => write!(
                f,
                "a structure of catalog entry {given} for the lower provider of chain {expected}"
            ),
            Self::NotInstalled { provider } => write!(
                f,
                "the catalog has no layered entry (ChainLen 0) of provider {provider:?}"
            ),
            Self::InstalledTwice { provider, entries } => write!(
                f,
                "the catalog has several layered entries of provider {provider:?} ({} and {})",
                entries[0], entries[1]
            ),
        }
    }
}

impl std::error::Error for ChainError {}

/// The chain's ids, checked: `ChainLen` 2 to `MAX_PROTOCOL_CHAIN`.
fn chain_ids(info: &WSAPROTOCOL_INFOW) -> Result<&[u32], ChainError> {
    let entry = info.dwCatalogEntryId;
    let len = info.ProtocolChain.ChainLen;
    match usize::try_from(len) {
        Ok(n) if n > MAX_PROTOCOL_CHAIN as usize => Err(ChainError::ChainLen { entry, len }),
        Err(_) => Err(ChainError::ChainLen { entry, len }),
        Ok(n) if n < 2 => Err(ChainError::NotAChain { entry, len }),
        Ok(n) => Ok(&info.ProtocolChain.ChainEntries[..n]),
    }
}

/// Where a layer is in a protocol chain ([`locate`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Link {
    chain: u32,
    index: usize,
    len: usize,
    next: u32,
}

impl Link {
    /// The chain entry's `dwCatalogEntryId`.
    pub fn chain_entry_id(&self) -> u32 {
        self.chain
    }

    /// The layer's position in the chain, 0 at the top.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The chain's length (`ChainLen`, 2 or more).
    pub fn chain_len(&self) -> usize {
        self.len
    }

    /// The catalog id right below the layer.
    pub fn next(&self) -> u32 {
        self.next
    }

    /// Whether the entry below is the chain's last (its base provider).
    pub fn next_is_bottom(&self) -> bool {
        self.index + 2 == self.len
    }
}

/// Finds the layer whose hidden entry is `own` in `info`'s protocol chain. Only the first
/// `ChainLen` ids count. Errors: `ChainLen` out of range, not a chain (0 or 1), `own` absent,
/// present more than once, or last.
pub fn locate(info: &WSAPROTOCOL_INFOW, own: u32) -> Result<Link, ChainError> {
    let ids = chain_ids(info)?;
    let entry = info.dwCatalogEntryId;
    let mut places = ids.iter().enumerate().filter(|&(_, &id)| id == own);
    let Some((index, _)) = places.next() else {
        return Err(ChainError::NotInChain { entry, own });
    };
    if places.next().is_some() {
        return Err(ChainError::Repeated { entry, own });
    }
    let Some(&next) = ids.get(index + 1) else {
        return Err(ChainError::AtBottom { entry, own });
    };
    Ok(Link {
        chain: entry,
        index,
        len: ids.len(),
        next,
    })
}

/// The layer's hidden entry: the one catalog entry with `ChainLen == LAYERED_PROTOCOL` and
/// `ProviderId == provider` (the GUID the layer is installed with).
pub fn own_entry(catalog: &[WSAPROTOCOL_INFOW], provider: &GUID) -> Result<u32, ChainError> {
    let mut hidden = catalog.iter().filter(|e| {
        e.ProtocolChain.ChainLen == LAYERED_PROTOCOL as i32 && e.ProviderId == *provider
    });
    let Some(first) = hidden.next() else {
        return Err(ChainError::NotInstalled {
            provider: *provider,
        });
    };
    if let Some(second) = hidden.next() {
        return Err(ChainError::InstalledTwice {
            provider: *provider,
            entries: [first.dwCatalogEntryId, second.dwCatalogEntryId],
        });
    }
    Ok(first.dwCatalogEntryId)
}

/// What is directly below a layer in a chain: its catalog entry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Below {
    /// Another layer: its hidden entry (`ChainLen` 0). It gets the chain's structure.
    Layer(WSAPROTOCOL_INFOW),
    /// The base provider: its own entry (`ChainLen` 1), which is what it gets.
    Base(WSAPROTOCOL_INFOW),
}

impl Below {
    /// The entry.
    pub fn entry(&self) -> &WSAPROTOCOL_INFOW {
        match self {
            Self::Layer(entry) | Self::Base(entry) => entry,
        }
    }
}

/// The calls whose `WSAPROTOCOL_INFOW` goes down a chain ([`Route::pass_down`]);
/// `WSPDuplicateSocket`'s comes back up ([`Route::duplicated`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Call {
    /// `WSPStartup`.
    Startup,
    /// `WSPSocket` (the base's entry carries the caller's `dwProviderReserved`).
    Socket,
    /// `WSPAddressToString`.
    AddressToString,
    /// `WSPStringToAddress`.
    StringToAddress,
}

/// A layer's way down one protocol chain: where it is, and what is below ([`resolve`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Route {
    link: Link,
    /// `ChainLen` and `ChainEntries` of the chain, to recognise its structures.
    chain: (i32, [u32; MAX_PROTOCOL_CHAIN as usize]),
    below: Below,
}

/// Finds the layer whose hidden entry is `own` in `info`'s chain ([`locate`]) and the catalog
/// entry below it, which must fit its place: the chain's last entry is a base provider
/// (`ChainLen` 1), any other is a layer's hidden entry (`ChainLen` 0).
pub fn resolve(
    info: &WSAPROTOCOL_INFOW,
    own: u32,
    catalog: &[WSAPROTOCOL_INFOW],
) -> Result<Route, ChainError> {
    let link = locate(info, own)?;
    let id = link.next();
    let entry = catalog
        .iter()
        .find(|e| e.dwCatalogEntryId == id)
        .ok_or(ChainError::LowerNotInCatalog { id })?;
    let len = entry.ProtocolChain.ChainLen;
    let at_bottom = link.next_is_bottom();
    let below = match (len, at_bottom) {
        (l, true) if l == BASE_PROTOCOL as i32 => Below::Base(*entry),
        (l, false) if l == LAYERED_PROTOCOL as i32 => Below::Layer(*entry),
        _ => return Err(ChainError::LowerMisplaced { id, len, at_bottom }),
    };
    Ok(Route {
        link,
        chain: (info.ProtocolChain.ChainLen, info.ProtocolChain.ChainEntries),
        below,
    })
}

impl Route {
    /// Where the layer is.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// What is below.
    pub fn below(&self) -> &Below {
        &self.below
    }

    /// The provider GUID of the entry below: whose DLL is the lower provider
    /// (`WSCGetProviderPath`).
    pub fn lower_provider_id(&self) -> GUID {
        self.below.entry().ProviderId
    }

    /// The `dwCatalogEntryId` of what goes down at `WSPStartup`: the base's own entry, or the
    /// chain's. Two chains over the same base (the layer right above it in both) share it:
    /// the base is started the same way for both.
    pub fn lower_key(&self) -> u32 {
        match &self.below {
            Below::Base(entry) => entry.dwCatalogEntryId,
            Below::Layer(_) => self.link.chain_entry_id(),
        }
    }

    /// Whether `info` is a structure of this route's chain: its catalog id, `ChainLen` and
    /// chain ids (`dwProviderReserved` and the rest may differ: a duplicated socket's).
    fn check(&self, info: &WSAPROTOCOL_INFOW) -> Result<(), ChainError> {
        let len = self.link.chain_len();
        let same = info.dwCatalogEntryId == self.link.chain_entry_id()
            && info.ProtocolChain.ChainLen == self.chain.0
            && info.ProtocolChain.ChainEntries[..len] == self.chain.1[..len];
        if same {
            Ok(())
        } else {
            Err(ChainError::OtherChain {
                expected: self.link.chain_entry_id(),
                given: info.dwCatalogEntryId,
            })
        }
    }

    /// R-WSP-4: the `WSAPROTOCOL_INFOW` the lower provider gets for `call`, when the layer got
    /// `given` (a structure of this route's chain, else [`ChainError::OtherChain`]): `given`
    /// itself, unmodified, for a lower layer; the base provider's own catalog entry for the
    /// base — with `given`'s `dwProviderReserved` for `WSPSocket`.
    pub fn pass_down(
        &self,
        call: Call,
        given: &WSAPROTOCOL_INFOW,
    ) -> Result<WSAPROTOCOL_INFOW, ChainError> {
        self.check(given)?;
        Ok(match (&self.below, call) {
            (Below::Layer(_), _) => *given,
            (Below::Base(own), Call::Socket) => WSAPROTOCOL_INFOW {
                dwProviderReserved: given.dwProviderReserved,
                ..*own
            },
            (Below::Base(own), _) => *own,
        })
    }

    /// R-WSP-4, `WSPDuplicateSocket`: the structure the layer hands up for a socket of the
    /// chain entry `socket_chain` when the lower provider filled `from_lower` — the chain
    /// entry, with the lower provider's `dwProviderReserved` (its token for the duplicate).
    pub fn duplicated(
        &self,
        socket_chain: &WSAPROTOCOL_INFOW,
        from_lower: &WSAPROTOCOL_INFOW,
    ) -> Result<WSAPROTOCOL_INFOW, ChainError> {
        self.check(socket_chain)?;
        Ok(WSAPROTOCOL_INFOW {
            dwProviderReserved: from_lower.dwProviderReserved,
            ..*socket_chain
        })
    }
}

#[cfg(test)]
#[path = "chain_props.rs"]
mod props;
