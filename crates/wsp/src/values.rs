//! The values a host's call carries, decoded, that the author's hooks and the proc table's
//! dispatch both name: a shutdown's direction, the linger option and other socket options, a
//! checked `WSAPROTOCOL_INFOW`, how a send or receive ended, when a layer's lower provider
//! starts. The ABI layer decodes them (`abi::decode`) and re-exports them where it always did.

use winprov_bindings::windows_core::GUID;
use winprov_bindings::ws2spi::{LINGER, WSAPROTOCOL_INFOW};
use winprov_core::WsaError;

/// `WSAPROTOCOL_LEN + 1`: the units of `szProtocol`.
pub(crate) const PROTOCOL_NAME_UNITS: usize = 256;

/// `WSPShutdown`'s `how`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum How {
    /// `SD_RECEIVE` (0): later receives are refused.
    Receive,
    /// `SD_SEND` (1): later sends are refused; a stream sends its FIN.
    Send,
    /// `SD_BOTH` (2).
    Both,
}

impl How {
    /// Decodes `how`: anything but 0, 1, 2 is `WSAEINVAL` (R-WSP-5).
    pub fn decode(raw: i32) -> Result<Self, WsaError> {
        use winprov_bindings::ws2spi::{SD_BOTH, SD_RECEIVE, SD_SEND};
        match raw {
            r if r == SD_RECEIVE.0 => Ok(Self::Receive),
            r if r == SD_SEND.0 => Ok(Self::Send),
            r if r == SD_BOTH.0 => Ok(Self::Both),
            _ => Err(WsaError::WSAEINVAL),
        }
    }

    /// The raw value.
    pub const fn raw(self) -> i32 {
        match self {
            Self::Receive => 0,
            Self::Send => 1,
            Self::Both => 2,
        }
    }

    /// Whether receiving is shut.
    pub const fn shuts_receive(self) -> bool {
        matches!(self, Self::Receive | Self::Both)
    }

    /// Whether sending is shut.
    pub const fn shuts_send(self) -> bool {
        matches!(self, Self::Send | Self::Both)
    }
}

/// `LINGER` (`SO_LINGER`): `l_onoff`, `l_linger` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Linger {
    /// `l_onoff != 0`.
    pub on: bool,
    /// `l_linger`, in seconds.
    pub seconds: u16,
}

impl Linger {
    /// The `LINGER` bytes `WSPGetSockOpt` hands back.
    pub fn to_bytes(self) -> [u8; size_of::<LINGER>()] {
        let mut bytes = [0; size_of::<LINGER>()];
        bytes[..2].copy_from_slice(&u16::from(self.on).to_ne_bytes());
        bytes[2..].copy_from_slice(&self.seconds.to_ne_bytes());
        bytes
    }
}

/// A `WSPSetSockOpt` option, decoded where the framework owns its meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SockOpt<'call> {
    /// `SOL_SOCKET` / `SO_LINGER`.
    Linger(Linger),
    /// `SOL_SOCKET` / `SO_DONTLINGER` (`BOOL`): `true` is `SO_LINGER` off, `false` on (with the
    /// timeout left as it was).
    DontLinger(bool),
    /// Any other option: its level, name and bytes as the caller passed them.
    Other {
        /// `level`.
        level: i32,
        /// `optname`.
        name: i32,
        /// `optlen` bytes at `optval`.
        value: &'call [u8],
    },
}

bitflags::bitflags! {
    /// `dwServiceFlags1`: the `XP1_*` service flags of a protocol. Unknown bits are kept.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct ServiceFlags: u32 {
        /// `XP1_CONNECTIONLESS`
        const CONNECTIONLESS = winprov_bindings::ws2spi::XP1_CONNECTIONLESS;
        /// `XP1_GUARANTEED_DELIVERY`
        const GUARANTEED_DELIVERY = winprov_bindings::ws2spi::XP1_GUARANTEED_DELIVERY;
        /// `XP1_GUARANTEED_ORDER`
        const GUARANTEED_ORDER = winprov_bindings::ws2spi::XP1_GUARANTEED_ORDER;
        /// `XP1_MESSAGE_ORIENTED`
        const MESSAGE_ORIENTED = winprov_bindings::ws2spi::XP1_MESSAGE_ORIENTED;
        /// `XP1_PSEUDO_STREAM`
        const PSEUDO_STREAM = winprov_bindings::ws2spi::XP1_PSEUDO_STREAM;
        /// `XP1_GRACEFUL_CLOSE`
        const GRACEFUL_CLOSE = winprov_bindings::ws2spi::XP1_GRACEFUL_CLOSE;
        /// `XP1_EXPEDITED_DATA`
        const EXPEDITED_DATA = winprov_bindings::ws2spi::XP1_EXPEDITED_DATA;
        /// `XP1_CONNECT_DATA`
        const CONNECT_DATA = winprov_bindings::ws2spi::XP1_CONNECT_DATA;
        /// `XP1_DISCONNECT_DATA`
        const DISCONNECT_DATA = winprov_bindings::ws2spi::XP1_DISCONNECT_DATA;
        /// `XP1_SUPPORT_BROADCAST`
        const SUPPORT_BROADCAST = winprov_bindings::ws2spi::XP1_SUPPORT_BROADCAST;
        /// `XP1_SUPPORT_MULTIPOINT`
        const SUPPORT_MULTIPOINT = winprov_bindings::ws2spi::XP1_SUPPORT_MULTIPOINT;
        /// `XP1_MULTIPOINT_CONTROL_PLANE`
        const MULTIPOINT_CONTROL_PLANE = winprov_bindings::ws2spi::XP1_MULTIPOINT_CONTROL_PLANE;
        /// `XP1_MULTIPOINT_DATA_PLANE`
        const MULTIPOINT_DATA_PLANE = winprov_bindings::ws2spi::XP1_MULTIPOINT_DATA_PLANE;
        /// `XP1_QOS_SUPPORTED`
        const QOS_SUPPORTED = winprov_bindings::ws2spi::XP1_QOS_SUPPORTED;
        /// `XP1_INTERRUPT`
        const INTERRUPT = winprov_bindings::ws2spi::XP1_INTERRUPT;
        /// `XP1_UNI_SEND`
        const UNI_SEND = winprov_bindings::ws2spi::XP1_UNI_SEND;
        /// `XP1_UNI_RECV`
        const UNI_RECV = winprov_bindings::ws2spi::XP1_UNI_RECV;
        /// `XP1_IFS_HANDLES`
        const IFS_HANDLES = winprov_bindings::ws2spi::XP1_IFS_HANDLES;
        /// `XP1_PARTIAL_MESSAGE`
        const PARTIAL_MESSAGE = winprov_bindings::ws2spi::XP1_PARTIAL_MESSAGE;
        /// `XP1_SAN_SUPPORT_SDP`
        const SAN_SUPPORT_SDP = winprov_bindings::ws2spi::XP1_SAN_SUPPORT_SDP;
        const _ = !0;
    }
}

/// `ProtocolChain`: what a catalog entry is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ProtocolChain {
    /// `ChainLen == LAYERED_PROTOCOL` (0): an LSP's hidden entry.
    Layered,
    /// `ChainLen == BASE_PROTOCOL` (1): a base provider.
    Base,
    /// `ChainLen` 2 to `MAX_PROTOCOL_CHAIN` (7): the catalog ids of the chain, top first.
    Chain(Vec<u32>),
}

/// A checked `WSAPROTOCOL_INFOW`: the structure as the host passed it (kept unmodified, to be
/// passed down a chain as R-WSP-4 requires) with typed views of the fields the framework reads.
#[derive(Clone, Debug, PartialEq)]
pub struct ProtocolInfo {
    raw: WSAPROTOCOL_INFOW,
    chain: ProtocolChain,
    name: String,
}

impl ProtocolInfo {
    /// Checks a structure: `ChainLen` outside 0..=`MAX_PROTOCOL_CHAIN` or a `szProtocol` without
    /// its NUL is `WSAEINVAL`; a name that is not UTF-16 is read lossily.
    pub fn from_raw(raw: WSAPROTOCOL_INFOW) -> Result<Self, WsaError> {
        use winprov_bindings::ws2spi::{BASE_PROTOCOL, LAYERED_PROTOCOL, MAX_PROTOCOL_CHAIN};
        let len = raw.ProtocolChain.ChainLen;
        let chain = match len {
            l if l == LAYERED_PROTOCOL as i32 => ProtocolChain::Layered,
            l if l == BASE_PROTOCOL as i32 => ProtocolChain::Base,
            l if l > 1 && l <= MAX_PROTOCOL_CHAIN as i32 => {
                ProtocolChain::Chain(raw.ProtocolChain.ChainEntries[..l as usize].to_vec())
            }
            _ => return Err(WsaError::WSAEINVAL),
        };
        let units = &raw.szProtocol[..PROTOCOL_NAME_UNITS];
        let end = units
            .iter()
            .position(|&u| u == 0)
            .ok_or(WsaError::WSAEINVAL)?;
        let name = String::from_utf16_lossy(&units[..end]);
        Ok(Self { raw, chain, name })
    }

    /// The structure, unmodified.
    pub fn raw(&self) -> &WSAPROTOCOL_INFOW {
        &self.raw
    }

    /// `dwServiceFlags1`.
    pub fn service_flags(&self) -> ServiceFlags {
        ServiceFlags::from_bits_retain(self.raw.dwServiceFlags1)
    }

    /// `dwProviderFlags` (`PFL_*`).
    pub fn provider_flags(&self) -> u32 {
        self.raw.dwProviderFlags
    }

    /// `ProviderId`.
    pub fn provider_id(&self) -> GUID {
        self.raw.ProviderId
    }

    /// `dwCatalogEntryId`: what `WPUCreateSocketHandle` takes.
    pub fn catalog_entry_id(&self) -> u32 {
        self.raw.dwCatalogEntryId
    }

    /// `ProtocolChain`.
    pub fn chain(&self) -> &ProtocolChain {
        &self.chain
    }

    /// `iAddressFamily`.
    pub fn address_family(&self) -> i32 {
        self.raw.iAddressFamily
    }

    /// `iSocketType`.
    pub fn socket_type(&self) -> i32 {
        self.raw.iSocketType
    }

    /// `iProtocol`.
    pub fn protocol(&self) -> i32 {
        self.raw.iProtocol
    }

    /// `dwMessageSize`.
    pub fn message_size(&self) -> u32 {
        self.raw.dwMessageSize
    }

    /// `szProtocol`, up to its NUL.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// How a send or receive ended for now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transfer {
    /// Done: `bytes` transferred, `flags` (receive: `MSG_PARTIAL` …) written back. For an
    /// overlapped call this is the immediate completion, whose notification the provider has
    /// already queued (R-WSP-16).
    Done {
        /// Bytes transferred.
        bytes: u32,
        /// Flags to write back.
        flags: u32,
    },
    /// Overlapped and not finished: the export returns `SOCKET_ERROR` with `WSA_IO_PENDING`,
    /// and the provider completes it exactly once later (R-WSP-16). Only valid for a call with
    /// an `lpOverlapped`; for any other it is a provider bug, answered `WSASYSCALLFAILURE`.
    Pending,
}

/// When a chain's lower provider is started. See `abi::lower`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Start {
    /// On the first call that needs it.
    #[default]
    Lazy,
    /// At the layer's `WSPStartup` for its chain.
    Eager,
}
