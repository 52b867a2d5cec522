//! The typed values of a `WSAQUERYSET2W`: what a client asks for ([`Query`], the restriction of
//! `NSPv2LookupServiceBegin`), what a provider answers ([`QueryResult`], one per
//! `NSPv2LookupServiceNextEx`) and what a client registers ([`RegInfo`], the request of
//! `NSPv2SetServiceEx`), plus the `LUP_*` control flags.
//!
//! The framework converts between these and the raw structure (`wire` writes results, `abi`
//! reads restrictions and registrations): authors never see a host pointer.

use std::net::SocketAddr;
use winprov_bindings::ws2spi;

/// A GUID (provider ids), the type the bindings use.
pub type Guid = winprov_bindings::windows_core::GUID;

bitflags::bitflags! {
    /// `dwControlFlags` of Begin and NextEx: the `LUP_*` bits (the raw value: `bits()`,
    /// `from_bits_retain`; bits this crate does not name are kept).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct ControlFlags: u32 {
        /// `LUP_DEEP`: query deep as opposed to just the first level.
        const DEEP = ws2spi::LUP_DEEP;
        /// `LUP_CONTAINERS`: return containers only.
        const CONTAINERS = ws2spi::LUP_CONTAINERS;
        /// `LUP_NOCONTAINERS`: do not return containers.
        const NOCONTAINERS = ws2spi::LUP_NOCONTAINERS;
        /// `LUP_NEAREST`.
        const NEAREST = ws2spi::LUP_NEAREST;
        /// `LUP_RETURN_NAME`: fill `lpszServiceInstanceName`.
        const RETURN_NAME = ws2spi::LUP_RETURN_NAME;
        /// `LUP_RETURN_TYPE` (no service class in a `WSAQUERYSET2W`; kept for completeness).
        const RETURN_TYPE = ws2spi::LUP_RETURN_TYPE;
        /// `LUP_RETURN_VERSION`: fill `lpVersion`.
        const RETURN_VERSION = ws2spi::LUP_RETURN_VERSION;
        /// `LUP_RETURN_COMMENT`: fill `lpszComment`.
        const RETURN_COMMENT = ws2spi::LUP_RETURN_COMMENT;
        /// `LUP_RETURN_ADDR`: fill `lpcsaBuffer`.
        const RETURN_ADDR = ws2spi::LUP_RETURN_ADDR;
        /// `LUP_RETURN_BLOB`: fill `lpBlob`.
        const RETURN_BLOB = ws2spi::LUP_RETURN_BLOB;
        /// `LUP_RETURN_ALIASES`: alias results (`RESULT_IS_ALIAS`) are wanted.
        const RETURN_ALIASES = ws2spi::LUP_RETURN_ALIASES;
        /// `LUP_RETURN_QUERY_STRING`: fill `lpszQueryString` with the unparsed remainder.
        const RETURN_QUERY_STRING = ws2spi::LUP_RETURN_QUERY_STRING;
        /// `LUP_RETURN_ALL`: every `LUP_RETURN_*` bit above.
        const RETURN_ALL = ws2spi::LUP_RETURN_ALL;
        /// `LUP_FLUSHCACHE`: ignore any cached information.
        const FLUSHCACHE = ws2spi::LUP_FLUSHCACHE;
        /// `LUP_FLUSHPREVIOUS` (NextEx): drop the result that did not fit last time.
        const FLUSHPREVIOUS = ws2spi::LUP_FLUSHPREVIOUS;
        /// `LUP_RES_SERVICE`.
        const RES_SERVICE = ws2spi::LUP_RES_SERVICE;
        // Bits of later versions are kept as they are.
        const _ = !0;
    }
}

impl ControlFlags {
    /// The flags a NextEx call may use: Begin's `LUP_RETURN_*` bits narrowed by NextEx's (a bit
    /// absent at Begin never appears), NextEx's other bits as given.
    pub const fn narrowed_by(self, next: Self) -> Self {
        let all = ws2spi::LUP_RETURN_ALL;
        Self::from_bits_retain((next.bits() & !all) | (self.bits() & next.bits() & all))
    }
}

bitflags::bitflags! {
    /// `dwOutputFlags` of a result: the `RESULT_IS_*` bits (unnamed bits are kept).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct OutputFlags: u32 {
        /// `RESULT_IS_ALIAS`: the result is an alias of the name asked for.
        const ALIAS = ws2spi::RESULT_IS_ALIAS;
        /// `RESULT_IS_ADDED`.
        const ADDED = ws2spi::RESULT_IS_ADDED;
        /// `RESULT_IS_CHANGED`.
        const CHANGED = ws2spi::RESULT_IS_CHANGED;
        /// `RESULT_IS_DELETED`.
        const DELETED = ws2spi::RESULT_IS_DELETED;
        // Bits of later versions are kept as they are.
        const _ = !0;
    }
}

/// `WSAECOMPARATOR`: how a [`Version`] restriction compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Comparator {
    /// `COMP_EQUAL`: exactly this version.
    Equal,
    /// `COMP_NOTLESS`: this version or a later one.
    NotLess,
}

/// `WSAVERSION`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Version {
    /// `dwVersion`.
    pub version: u32,
    /// `ecHow`.
    pub how: Comparator,
}

/// `AFPROTOCOLS`: an address family and protocol a client accepts (`AF_UNSPEC` is a wildcard).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AfProtocol {
    /// `iAddressFamily`.
    pub address_family: i32,
    /// `iProtocol`.
    pub protocol: i32,
}

/// `CSADDR_INFO.iProtocol` value asking the provider to substitute the right protocol.
pub const IPROTOCOL_ANY: i32 = -1;

/// `CSADDR_INFO`: one transport address of a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CsAddr {
    /// `LocalAddr`: the address to bind to, if any.
    pub local: Option<SocketAddr>,
    /// `RemoteAddr`: the address of the service, if any.
    pub remote: Option<SocketAddr>,
    /// `iSocketType` (`SOCK_STREAM` = 1, `SOCK_DGRAM` = 2 …).
    pub socket_type: i32,
    /// `iProtocol` (`IPPROTO_TCP` = 6 …, or [`IPROTOCOL_ANY`] in a registration).
    pub protocol: i32,
}

impl CsAddr {
    /// A TCP stream service at `remote`.
    pub fn tcp(remote: SocketAddr) -> Self {
        Self {
            local: None,
            remote: Some(remote),
            socket_type: ws2spi::SOCK_STREAM.0,
            protocol: ws2spi::IPPROTO_TCP.0,
        }
    }

    /// A UDP datagram service at `remote`.
    pub fn udp(remote: SocketAddr) -> Self {
        Self {
            local: None,
            remote: Some(remote),
            socket_type: ws2spi::SOCK_DGRAM.0,
            protocol: ws2spi::IPPROTO_UDP.0,
        }
    }
}

/// The restriction of `NSPv2LookupServiceBegin`, parsed and checked. Per the interface, a
/// restriction's comment, addresses and output flags are ignored and therefore absent here.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Query {
    /// `lpszServiceInstanceName`: the name looked up, e.g. `alice@example.org`.
    pub service_instance_name: Option<String>,
    /// `lpVersion`.
    pub version: Option<Version>,
    /// `dwNameSpace` (`NS_ALL` = 0 or the provider's namespace).
    pub namespace: u32,
    /// `lpNSProviderId`: set when the client asked one provider by id.
    pub provider_id: Option<Guid>,
    /// `lpszContext`: the container to start from.
    pub context: Option<String>,
    /// `lpafpProtocols`: acceptable protocols (empty: any).
    pub protocols: Vec<AfProtocol>,
    /// `lpszQueryString`: a query in the provider's own syntax.
    pub query_string: Option<String>,
    /// `lpBlob`: provider-specific data.
    pub blob: Option<Vec<u8>>,
}

impl Query {
    /// A restriction asking for `name` (what `WSALookupServiceBegin` sends for a name lookup).
    pub fn name(name: impl Into<String>) -> Self {
        Self {
            service_instance_name: Some(name.into()),
            ..Self::default()
        }
    }

    /// The same query in namespace `namespace`.
    pub fn in_namespace(mut self, namespace: u32) -> Self {
        self.namespace = namespace;
        self
    }

    /// Whether an address of `family` is acceptable to the client (`AF_UNSPEC` = wildcard).
    pub fn accepts_family(&self, family: i32) -> bool {
        self.protocols.is_empty()
            || self.protocols.iter().any(|p| {
                p.address_family == family || p.address_family == i32::from(ws2spi::AF_UNSPEC.0)
            })
    }

    /// Whether `address`'s family (`AF_INET` or `AF_INET6`) is acceptable to the client.
    pub fn accepts_address(&self, address: &SocketAddr) -> bool {
        let family = match address {
            SocketAddr::V4(_) => ws2spi::AF_INET,
            SocketAddr::V6(_) => ws2spi::AF_INET6,
        };
        self.accepts_family(i32::from(family.0))
    }
}

/// One result of a lookup, as the author returns it from `next`. The framework writes the
/// fields that the effective `LUP_RETURN_*` flags ask for into the caller's buffer.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct QueryResult {
    /// `lpszServiceInstanceName` (`LUP_RETURN_NAME`).
    pub service_instance_name: Option<String>,
    /// `lpVersion` (`LUP_RETURN_VERSION`).
    pub version: Option<Version>,
    /// `lpszComment` (`LUP_RETURN_COMMENT`).
    pub comment: Option<String>,
    /// `lpszContext`: where the result lives (always returned when set).
    pub context: Option<String>,
    /// `lpcsaBuffer` (`LUP_RETURN_ADDR`).
    pub addresses: Vec<CsAddr>,
    /// `lpBlob` (`LUP_RETURN_BLOB`).
    pub blob: Option<Vec<u8>>,
    /// `lpszQueryString`: the unparsed remainder of the query (`LUP_RETURN_QUERY_STRING`).
    pub query_string: Option<String>,
    /// `dwOutputFlags` (always returned).
    pub output_flags: OutputFlags,
}

impl QueryResult {
    /// A result for `name`.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            service_instance_name: Some(name.into()),
            ..Self::default()
        }
    }

    /// Sets the comment.
    pub fn with_comment(mut self, comment: impl Into<String>) -> Self {
        self.comment = Some(comment.into());
        self
    }

    /// Sets the context.
    pub fn with_context(mut self, context: impl Into<String>) -> Self {
        self.context = Some(context.into());
        self
    }

    /// Adds an address.
    pub fn with_address(mut self, address: CsAddr) -> Self {
        self.addresses.push(address);
        self
    }

    /// Sets the blob.
    pub fn with_blob(mut self, blob: impl Into<Vec<u8>>) -> Self {
        self.blob = Some(blob.into());
        self
    }

    /// Sets the unparsed query remainder.
    pub fn with_query_string(mut self, rest: impl Into<String>) -> Self {
        self.query_string = Some(rest.into());
        self
    }

    /// Sets the output flags.
    pub fn with_output_flags(mut self, flags: OutputFlags) -> Self {
        self.output_flags = flags;
        self
    }

    /// Sets the version.
    pub fn with_version(mut self, version: Version) -> Self {
        self.version = Some(version);
        self
    }
}

/// `WSAESETSERVICEOP`: what `NSPv2SetServiceEx` asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SetServiceOp {
    /// `RNRSERVICE_REGISTER`: register the service; with `SERVICE_MULTIPLE` the addresses are
    /// added to the registered set, without it they replace it.
    Register {
        /// `SERVICE_MULTIPLE` was set in `dwControlFlags`.
        multiple: bool,
    },
    /// `RNRSERVICE_DEREGISTER`: remove the addresses (the service stays known).
    Deregister,
    /// `RNRSERVICE_DELETE`: remove the service.
    Delete,
}

/// The registration (`lpqsRegInfo`) of `NSPv2SetServiceEx`, parsed and checked.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RegInfo {
    /// `lpszServiceInstanceName`.
    pub service_instance_name: Option<String>,
    /// `lpVersion`.
    pub version: Option<Version>,
    /// `lpszComment`.
    pub comment: Option<String>,
    /// `dwNameSpace`.
    pub namespace: u32,
    /// `lpNSProviderId`.
    pub provider_id: Option<Guid>,
    /// `lpszContext`.
    pub context: Option<String>,
    /// `lpcsaBuffer`: the addresses registered.
    pub addresses: Vec<CsAddr>,
    /// `lpBlob` (required for `NS_EMAIL` registrations).
    pub blob: Option<Vec<u8>>,
}

impl RegInfo {
    /// A registration of `name`.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            service_instance_name: Some(name.into()),
            ..Self::default()
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn next_flags_only_narrow_the_return_bits() {
        let begin = ControlFlags::RETURN_NAME | ControlFlags::RETURN_ADDR;
        let next = ControlFlags::RETURN_ALL | ControlFlags::FLUSHPREVIOUS;
        let effective = begin.narrowed_by(next);
        assert!(effective.contains(ControlFlags::RETURN_NAME | ControlFlags::RETURN_ADDR));
        assert!(!effective.contains(ControlFlags::RETURN_BLOB));
        assert!(!effective.contains(ControlFlags::RETURN_COMMENT));
        assert!(effective.contains(ControlFlags::FLUSHPREVIOUS));
        let narrower = begin.narrowed_by(ControlFlags::RETURN_NAME);
        assert!(!narrower.contains(ControlFlags::RETURN_ADDR));
    }

    #[test]
    fn unspec_protocol_is_a_wildcard() {
        let mut q = Query::name("a@b");
        assert!(q.accepts_family(2));
        q.protocols.push(AfProtocol {
            address_family: 23,
            protocol: 6,
        });
        assert!(!q.accepts_family(2));
        q.protocols.push(AfProtocol {
            address_family: 0,
            protocol: 0,
        });
        assert!(q.accepts_family(2));
    }
}
