//! Property tests of the reading of host structures: `read_query_set` (the restriction of
//! `NSPv2LookupServiceBegin` and the registration of `NSPv2SetServiceEx`) and
//! `result_buffer` (the buffer of `NSPv2LookupServiceNextEx`).
//!
//! Each case builds the structure in memory the test owns. As the host's contract says, every
//! non-null pointer is valid for what its count states (strings are terminated, or readable up
//! to the longest string the framework accepts); counts, lengths, contents, NULLs and
//! misalignments are arbitrary. A model computed field by field from the documented layout
//! says which codes the input deserves: the result is `Ok` with the model's fields exactly when
//! the model finds nothing wrong, and otherwise an error among the model's codes (which wrong
//! field is reported first is the decoder's choice). Failure persistence is off, as in
//! `wire::props`.

use super::*;
use crate::wire::props::{config, sockaddr_bytes_strategy, sockaddr_model};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use std::net::SocketAddr;
use winprov_bindings::windows_core::PWSTR;
use winprov_bindings::ws2spi::{AF_INET, AF_INET6, SOCKADDR, SOCKET_ADDRESS, WSAECOMPARATOR};

const EINVAL: WsaError = WsaError::WSAEINVAL;
const EFAULT: WsaError = WsaError::WSAEFAULT;

/// Memory the test owns: blocks of `u64` (8-aligned, as aligned as any structure here), freed
/// when the case ends.
#[derive(Default)]
struct Arena(Vec<Vec<u64>>);

impl Arena {
    /// Copies `values` into a new block, at its start or, when `misaligned`, one byte in.
    fn put<T: Copy>(&mut self, values: &[T], misaligned: bool) -> *mut T {
        let bytes = size_of_val(values) + 1;
        let mut block = vec![0u64; bytes.div_ceil(8) + 1];
        let start = block
            .as_mut_ptr()
            .cast::<u8>()
            .wrapping_add(usize::from(misaligned))
            .cast::<T>();
        for (i, value) in values.iter().enumerate() {
            // SAFETY: the block holds `size_of_val(values) + 1` bytes or more, so value `i`
            // fits at `start + i` even one byte in; unaligned writes need no alignment.
            unsafe { start.add(i).write_unaligned(*value) };
        }
        self.0.push(block);
        start
    }
}

/// Where a pointer field points.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Place {
    Null,
    /// One byte into valid memory.
    Misaligned,
    Valid,
}

fn place() -> impl Strategy<Value = Place> + Clone {
    prop_oneof![
        1 => Just(Place::Null),
        1 => Just(Place::Misaligned),
        5 => Just(Place::Valid),
    ]
}

fn put_at<T: Copy>(arena: &mut Arena, place: Place, values: &[T]) -> *mut T {
    match place {
        Place::Null => std::ptr::null_mut(),
        Place::Misaligned => arena.put(values, true),
        Place::Valid => arena.put(values, false),
    }
}

/// A string field.
#[derive(Clone, Debug)]
enum Text {
    Null,
    Misaligned,
    /// Units as given, then a NUL when `terminated`; an unterminated string is followed by
    /// non-NUL units up to the longest string searched, so every unit read is readable.
    Units {
        units: Vec<u16>,
        terminated: bool,
    },
    /// `len` units of `x`: around the longest accepted string.
    Long {
        len: usize,
        terminated: bool,
    },
}

fn unit() -> impl Strategy<Value = u16> {
    prop_oneof![
        6 => 0x20u16..0x7f,
        2 => 0xD800u16..0xE000,
        2 => any::<u16>(),
        1 => Just(0u16),
    ]
}

fn text(valid: bool) -> BoxedStrategy<Text> {
    if valid {
        // Any text (NULs included: the string ends at the first), terminated.
        return prop_oneof![
            2 => Just(Text::Null),
            8 => vec(any::<char>(), 0..12).prop_map(|chars| Text::Units {
                units: String::from_iter(chars).encode_utf16().collect(),
                terminated: true,
            }),
            1 => ((MAX_STRING_UNITS - 3)..MAX_STRING_UNITS)
                .prop_map(|len| Text::Long { len, terminated: true }),
        ]
        .boxed();
    }
    let terminated = prop_oneof![5 => Just(true), 1 => Just(false)];
    prop_oneof![
        2 => Just(Text::Null),
        1 => Just(Text::Misaligned),
        8 => (vec(unit(), 0..16), terminated.clone())
            .prop_map(|(units, terminated)| Text::Units { units, terminated }),
        1 => ((MAX_STRING_UNITS - 2)..=(MAX_STRING_UNITS + 1), terminated)
            .prop_map(|(len, terminated)| Text::Long { len, terminated }),
    ]
    .boxed()
}

impl Text {
    /// The units in memory (`None` for no memory).
    fn memory(&self) -> Option<Vec<u16>> {
        let (mut units, terminated) = match self {
            Self::Null => return None,
            Self::Misaligned => return Some(vec![u16::from(b'x'), 0]),
            Self::Units { units, terminated } => (units.clone(), *terminated),
            Self::Long { len, terminated } => (vec![u16::from(b'x'); *len], *terminated),
        };
        if terminated {
            units.push(0);
        } else if units.len() < MAX_STRING_UNITS {
            units.resize(MAX_STRING_UNITS, u16::from(b'x'));
        }
        Some(units)
    }

    fn build(&self, arena: &mut Arena) -> PWSTR {
        let place = match self {
            Self::Null => Place::Null,
            Self::Misaligned => Place::Misaligned,
            _ => Place::Valid,
        };
        PWSTR(put_at(arena, place, &self.memory().unwrap_or_default()))
    }

    /// A NUL-terminated string of at most `MAX_STRING_UNITS` units (the terminator among the
    /// first that many), and UTF-16.
    fn model(&self) -> Result<Option<String>, WsaError> {
        match self {
            Self::Null => Ok(None),
            Self::Misaligned => Err(EFAULT),
            _ => {
                let memory = self.memory().unwrap_or_default();
                let searched = &memory[..memory.len().min(MAX_STRING_UNITS)];
                let end = searched.iter().position(|&u| u == 0).ok_or(EINVAL)?;
                String::from_utf16(&searched[..end])
                    .map(Some)
                    .map_err(|_| EINVAL)
            }
        }
    }
}

#[derive(Clone, Debug)]
enum VersionField {
    Null,
    Misaligned,
    Valid { version: u32, how: i32 },
}

fn version(valid: bool) -> BoxedStrategy<VersionField> {
    let how = if valid {
        (0i32..=1).boxed()
    } else {
        prop_oneof![4 => 0i32..=1, 1 => -2i32..=3, 1 => any::<i32>()].boxed()
    };
    let misaligned = if valid { 0 } else { 1 };
    prop_oneof![
        2 => Just(VersionField::Null),
        misaligned => Just(VersionField::Misaligned),
        4 => (any::<u32>(), how).prop_map(|(version, how)| VersionField::Valid { version, how }),
    ]
    .boxed()
}

#[derive(Clone, Debug)]
enum IdField {
    Null,
    Misaligned,
    Valid(u128),
}

fn provider_id(valid: bool) -> BoxedStrategy<IdField> {
    let misaligned = if valid { 0 } else { 1 };
    prop_oneof![
        2 => Just(IdField::Null),
        misaligned => Just(IdField::Misaligned),
        3 => any::<u128>().prop_map(IdField::Valid),
    ]
    .boxed()
}

/// A counted array: `count` and a pointer to `entries` (as many as `count` states whenever
/// the pointer is not NULL).
#[derive(Clone, Debug)]
struct Array<T> {
    count: u32,
    place: Place,
    entries: Vec<T>,
}

fn array<T: Clone + std::fmt::Debug + 'static>(
    item: impl Strategy<Value = T> + 'static,
    filler: T,
    valid: bool,
) -> BoxedStrategy<Array<T>> {
    if valid {
        let long = filler.clone();
        return prop_oneof![
            8 => vec(item, 1..5).prop_map(|entries| Array {
                count: entries.len() as u32,
                place: Place::Valid,
                entries,
            }),
            // No entries: the pointer is not looked at.
            2 => place().prop_map(|place| Array { count: 0, place, entries: Vec::new() }),
            1 => ((MAX_ENTRIES - 1)..=MAX_ENTRIES).prop_map(move |n| Array {
                count: n as u32,
                place: Place::Valid,
                entries: vec![long.clone(); n],
            }),
        ]
        .boxed();
    }
    prop_oneof![
        6 => (vec(item, 0..4), place()).prop_map(|(entries, place)| Array {
            count: entries.len() as u32,
            place,
            entries,
        }),
        3 => (MAX_ENTRIES..=(MAX_ENTRIES + 1), place()).prop_map(move |(n, place)| Array {
            count: n as u32,
            place,
            entries: vec![filler.clone(); n],
        }),
        1 => any::<u32>().prop_map(|count| Array {
            count,
            place: Place::Null,
            entries: Vec::new(),
        }),
    ]
    .boxed()
}

impl<T> Array<T> {
    /// The documented refusals of the array itself, or the entries to read.
    fn model(&self) -> Result<&[T], WsaError> {
        let count = self.count as usize;
        if count > MAX_ENTRIES {
            return Err(EINVAL);
        }
        if count == 0 {
            return Ok(&[]);
        }
        match self.place {
            Place::Null | Place::Misaligned => Err(EFAULT),
            Place::Valid => Ok(&self.entries[..count]),
        }
    }
}

/// A `SOCKET_ADDRESS`: `iSockaddrLength` and the bytes `lpSockaddr` points to (`len` of them
/// when it is not NULL, at any alignment: a socket address is read as bytes).
#[derive(Clone, Debug)]
struct SockField {
    len: i32,
    bytes: Option<Vec<u8>>,
    odd: bool,
}

fn sock_field(valid: bool) -> BoxedStrategy<SockField> {
    let none = SockField {
        len: 0,
        bytes: None,
        odd: false,
    };
    if valid {
        // A SOCKADDR_IN or SOCKADDR_IN6, possibly followed by more bytes than it needs.
        let address = prop_oneof![
            (Just(AF_INET.0), 16usize..=20),
            (Just(AF_INET6.0), 28usize..=32)
        ]
        .prop_flat_map(|(family, len)| {
            (vec(any::<u8>(), len), any::<bool>()).prop_map(move |(mut bytes, odd)| {
                bytes[..2].copy_from_slice(&family.to_ne_bytes());
                SockField {
                    len: bytes.len() as i32,
                    bytes: Some(bytes),
                    odd,
                }
            })
        });
        return prop_oneof![1 => Just(none), 2 => address].boxed();
    }
    let present =
        (sockaddr_bytes_strategy(2 * MAX_SOCKADDR), any::<bool>()).prop_map(|(bytes, odd)| {
            SockField {
                len: bytes.len() as i32,
                bytes: Some(bytes),
                odd,
            }
        });
    // A known family with a length around the largest socket address.
    let oversized = (
        prop_oneof![Just(AF_INET.0), Just(AF_INET6.0)],
        (MAX_SOCKADDR - 2)..=(MAX_SOCKADDR + 2),
    )
        .prop_flat_map(|(family, len)| {
            vec(any::<u8>(), len).prop_map(move |mut bytes| {
                bytes[..2].copy_from_slice(&family.to_ne_bytes());
                SockField {
                    len: bytes.len() as i32,
                    bytes: Some(bytes),
                    odd: false,
                }
            })
        });
    let absent = prop_oneof![-4i32..=200, any::<i32>()].prop_map(|len| SockField {
        len,
        bytes: None,
        odd: false,
    });
    prop_oneof![4 => present, 1 => oversized, 2 => absent].boxed()
}

impl SockField {
    fn build(&self, arena: &mut Arena) -> SOCKET_ADDRESS {
        let pointer = match &self.bytes {
            None => std::ptr::null_mut(),
            Some(bytes) => arena.put(bytes, self.odd),
        };
        SOCKET_ADDRESS {
            lpSockaddr: pointer.cast::<SOCKADDR>(),
            iSockaddrLength: self.len,
        }
    }

    /// NULL with length 0 is no address; otherwise the length is that of a socket address
    /// and the bytes are one.
    fn model(&self) -> Result<Option<SocketAddr>, WsaError> {
        let len = usize::try_from(self.len).map_err(|_| EINVAL)?;
        match &self.bytes {
            None if len == 0 => Ok(None),
            _ if len > MAX_SOCKADDR => Err(EINVAL),
            None => Err(EFAULT),
            Some(bytes) => sockaddr_model(&bytes[..len]).map(Some).ok_or(EINVAL),
        }
    }
}

#[derive(Clone, Debug)]
struct Entry {
    local: SockField,
    remote: SockField,
    socket_type: i32,
    protocol: i32,
}

/// A well-formed entry, or one with one arbitrary address (local or remote).
fn entry(valid: bool) -> impl Strategy<Value = Entry> {
    let good = sock_field(true);
    let any_address = if valid {
        good.clone()
    } else {
        sock_field(false)
    };
    let bad_address = if valid { 0 } else { 2 };
    let addresses = prop_oneof![
        1 => (good.clone(), good.clone()),
        bad_address => (any_address.clone(), good.clone()),
        bad_address => (good, any_address),
    ];
    (addresses, any::<i32>(), any::<i32>()).prop_map(|((local, remote), socket_type, protocol)| {
        Entry {
            local,
            remote,
            socket_type,
            protocol,
        }
    })
}

const NO_ADDRESS: Entry = Entry {
    local: SockField {
        len: 0,
        bytes: None,
        odd: false,
    },
    remote: SockField {
        len: 0,
        bytes: None,
        odd: false,
    },
    socket_type: 1,
    protocol: 6,
};

#[derive(Clone, Debug)]
enum BlobField {
    Null,
    Misaligned,
    /// `cbSize` and the data: `cbSize` bytes, or NULL.
    Valid {
        size: u32,
        data: Option<Vec<u8>>,
        odd: bool,
    },
}

fn blob(valid: bool) -> BoxedStrategy<BlobField> {
    let with_data =
        (vec(any::<u8>(), 0..40), any::<bool>()).prop_map(|(data, odd)| BlobField::Valid {
            size: data.len() as u32,
            data: Some(data),
            odd,
        });
    let empty = Just(BlobField::Valid {
        size: 0,
        data: None,
        odd: false,
    });
    if valid {
        return prop_oneof![2 => Just(BlobField::Null), 4 => with_data, 1 => empty].boxed();
    }
    let big = MAX_BLOB as u32;
    let without_data =
        prop_oneof![1u32..8, Just(big), Just(big + 1), any::<u32>()].prop_map(|size| {
            BlobField::Valid {
                size,
                data: None,
                odd: false,
            }
        });
    prop_oneof![
        2 => Just(BlobField::Null),
        1 => Just(BlobField::Misaligned),
        4 => with_data,
        1 => empty,
        2 => without_data,
    ]
    .boxed()
}

#[derive(Clone, Debug)]
struct QuerySetSpec {
    place: Place,
    size: u32,
    name: Text,
    comment: Text,
    context: Text,
    query_string: Text,
    version: VersionField,
    provider_id: IdField,
    namespace: u32,
    protocols: Array<(i32, i32)>,
    addresses: Array<Entry>,
    blob: BlobField,
}

fn query_set_of(valid: bool) -> impl Strategy<Value = QuerySetSpec> {
    let full = size_of::<WSAQUERYSET2W>() as u32;
    let (size, place) = if valid {
        ((full..full + 16).boxed(), Just(Place::Valid).boxed())
    } else {
        (
            prop_oneof![0..full, any::<u32>()].boxed(),
            prop_oneof![Just(Place::Null), Just(Place::Misaligned)].boxed(),
        )
    };
    let protocols = array((any::<i32>(), any::<i32>()), (0, 0), valid);
    (
        (
            place,
            size,
            text(valid),
            text(valid),
            text(valid),
            text(valid),
        ),
        (
            version(valid),
            provider_id(valid),
            any::<u32>(),
            protocols,
            array(entry(valid), NO_ADDRESS, valid),
            blob(valid),
        ),
    )
        .prop_map(
            |(
                (place, size, name, comment, context, query_string),
                (version, provider_id, namespace, protocols, addresses, blob),
            )| QuerySetSpec {
                place,
                size,
                name,
                comment,
                context,
                query_string,
                version,
                provider_id,
                namespace,
                protocols,
                addresses,
                blob,
            },
        )
}

/// A query set whose fields are each well-formed or arbitrary: all well-formed, one field
/// arbitrary (so that its code is the only one possible), or any mix.
fn query_set() -> impl Strategy<Value = QuerySetSpec> {
    let mask = prop_oneof![
        2 => Just(0u16),
        5 => (0..11u32).prop_map(|field| 1u16 << field),
        2 => any::<u16>(),
    ];
    (query_set_of(true), query_set_of(false), mask).prop_map(|(good, bad, mask)| {
        let bad_field = |field: u32| mask & (1 << field) != 0;
        QuerySetSpec {
            place: if bad_field(0) { bad.place } else { good.place },
            size: if bad_field(1) { bad.size } else { good.size },
            name: if bad_field(2) { bad.name } else { good.name },
            comment: if bad_field(3) {
                bad.comment
            } else {
                good.comment
            },
            context: if bad_field(4) {
                bad.context
            } else {
                good.context
            },
            query_string: if bad_field(5) {
                bad.query_string
            } else {
                good.query_string
            },
            version: if bad_field(6) {
                bad.version
            } else {
                good.version
            },
            provider_id: if bad_field(7) {
                bad.provider_id
            } else {
                good.provider_id
            },
            namespace: good.namespace,
            protocols: if bad_field(8) {
                bad.protocols
            } else {
                good.protocols
            },
            addresses: if bad_field(9) {
                bad.addresses
            } else {
                good.addresses
            },
            blob: if bad_field(10) { bad.blob } else { good.blob },
        }
    })
}

impl QuerySetSpec {
    fn build(&self, arena: &mut Arena) -> *const WSAQUERYSET2W {
        let version = match &self.version {
            VersionField::Null => std::ptr::null_mut(),
            VersionField::Misaligned => arena.put(&[WSAVERSION::default()], true),
            VersionField::Valid { version, how } => arena.put(
                &[WSAVERSION {
                    dwVersion: *version,
                    ecHow: WSAECOMPARATOR(*how),
                }],
                false,
            ),
        };
        let provider_id = match &self.provider_id {
            IdField::Null => std::ptr::null_mut(),
            IdField::Misaligned => arena.put(&[Guid::zeroed()], true),
            IdField::Valid(id) => arena.put(&[Guid::from_u128(*id)], false),
        };
        let protocols: Vec<AFPROTOCOLS> = self
            .protocols
            .entries
            .iter()
            .map(|&(family, protocol)| AFPROTOCOLS {
                iAddressFamily: family,
                iProtocol: protocol,
            })
            .collect();
        let addresses: Vec<CSADDR_INFO> = self
            .addresses
            .entries
            .iter()
            .map(|entry| CSADDR_INFO {
                LocalAddr: entry.local.build(arena),
                RemoteAddr: entry.remote.build(arena),
                iSocketType: entry.socket_type,
                iProtocol: entry.protocol,
            })
            .collect();
        let blob = match &self.blob {
            BlobField::Null => std::ptr::null_mut(),
            BlobField::Misaligned => arena.put(&[BLOB::default()], true),
            BlobField::Valid { size, data, odd } => {
                let data = match data {
                    Some(data) => arena.put(data, *odd),
                    None => std::ptr::null_mut(),
                };
                arena.put(
                    &[BLOB {
                        cbSize: *size,
                        pBlobData: data,
                    }],
                    false,
                )
            }
        };
        let qs = WSAQUERYSET2W {
            dwSize: self.size,
            lpszServiceInstanceName: self.name.build(arena),
            lpVersion: version,
            lpszComment: self.comment.build(arena),
            dwNameSpace: self.namespace,
            lpNSProviderId: provider_id,
            lpszContext: self.context.build(arena),
            dwNumberOfProtocols: self.protocols.count,
            lpafpProtocols: put_at(arena, self.protocols.place, &protocols),
            lpszQueryString: self.query_string.build(arena),
            dwNumberOfCsAddrs: self.addresses.count,
            lpcsaBuffer: put_at(arena, self.addresses.place, &addresses),
            dwOutputFlags: 0,
            lpBlob: blob,
        };
        put_at(arena, self.place, &[qs])
    }

    /// What the documented layout says of this structure: the fields, or every code one of
    /// its fields deserves.
    fn model(&self, with_addresses: bool) -> Result<Fields, Vec<WsaError>> {
        match self.place {
            Place::Null => return Err(vec![EINVAL]),
            Place::Misaligned => return Err(vec![EFAULT]),
            Place::Valid => {}
        }
        if (self.size as usize) < size_of::<WSAQUERYSET2W>() {
            return Err(vec![EINVAL]);
        }
        let one = |error: WsaError| vec![error];
        let name = self.name.model().map_err(one);
        let comment = self.comment.model().map_err(one);
        let context = self.context.model().map_err(one);
        let query_string = self.query_string.model().map_err(one);
        let version = match &self.version {
            VersionField::Null => Ok(None),
            VersionField::Misaligned => Err(vec![EFAULT]),
            VersionField::Valid { version, how } => match how {
                0 => Ok(Some(Comparator::Equal)),
                1 => Ok(Some(Comparator::NotLess)),
                _ => Err(vec![EINVAL]),
            }
            .map(|how| {
                how.map(|how| Version {
                    version: *version,
                    how,
                })
            }),
        };
        let provider_id = match &self.provider_id {
            IdField::Null => Ok(None),
            IdField::Misaligned => Err(vec![EFAULT]),
            IdField::Valid(id) => Ok(Some(Guid::from_u128(*id))),
        };
        let protocols = self.protocols.model().map_err(one).map(|entries| {
            entries
                .iter()
                .map(|&(address_family, protocol)| AfProtocol {
                    address_family,
                    protocol,
                })
                .collect::<Vec<_>>()
        });
        let addresses = if with_addresses {
            self.addresses.model().map_err(one).and_then(|entries| {
                let mut addresses = Vec::new();
                let mut errors = Vec::new();
                for entry in entries {
                    match (entry.local.model(), entry.remote.model()) {
                        (Ok(local), Ok(remote)) => addresses.push(CsAddr {
                            local,
                            remote,
                            socket_type: entry.socket_type,
                            protocol: entry.protocol,
                        }),
                        (local, remote) => {
                            errors.extend(local.err());
                            errors.extend(remote.err());
                        }
                    }
                }
                if errors.is_empty() {
                    Ok(addresses)
                } else {
                    Err(errors)
                }
            })
        } else {
            Ok(Vec::new())
        };
        let blob = match &self.blob {
            BlobField::Null => Ok(None),
            BlobField::Misaligned => Err(vec![EFAULT]),
            BlobField::Valid { size, .. } if *size as usize > MAX_BLOB => Err(vec![EINVAL]),
            BlobField::Valid { size: 0, .. } => Ok(Some(Vec::new())),
            BlobField::Valid { data: None, .. } => Err(vec![EFAULT]),
            BlobField::Valid {
                data: Some(data), ..
            } => Ok(Some(data.clone())),
        };
        match (
            name,
            comment,
            context,
            query_string,
            version,
            provider_id,
            protocols,
            addresses,
            blob,
        ) {
            (
                Ok(name),
                Ok(comment),
                Ok(context),
                Ok(query_string),
                Ok(version),
                Ok(provider_id),
                Ok(protocols),
                Ok(addresses),
                Ok(blob),
            ) => Ok(Fields {
                name,
                version,
                comment,
                namespace: self.namespace,
                provider_id,
                context,
                protocols,
                query_string,
                addresses,
                blob,
            }),
            (
                name,
                comment,
                context,
                query_string,
                version,
                provider_id,
                protocols,
                addresses,
                blob,
            ) => {
                let mut errors = Vec::new();
                errors.extend(name.err().into_iter().flatten());
                errors.extend(comment.err().into_iter().flatten());
                errors.extend(context.err().into_iter().flatten());
                errors.extend(query_string.err().into_iter().flatten());
                errors.extend(version.err().into_iter().flatten());
                errors.extend(provider_id.err().into_iter().flatten());
                errors.extend(protocols.err().into_iter().flatten());
                errors.extend(addresses.err().into_iter().flatten());
                errors.extend(blob.err().into_iter().flatten());
                Err(errors)
            }
        }
    }
}

/// `QuerySetFields`, comparable.
#[derive(Debug, PartialEq)]
struct Fields {
    name: Option<String>,
    version: Option<Version>,
    comment: Option<String>,
    namespace: u32,
    provider_id: Option<Guid>,
    context: Option<String>,
    protocols: Vec<AfProtocol>,
    query_string: Option<String>,
    addresses: Vec<CsAddr>,
    blob: Option<Vec<u8>>,
}

impl From<QuerySetFields> for Fields {
    fn from(f: QuerySetFields) -> Self {
        Self {
            name: f.name,
            version: f.version,
            comment: f.comment,
            namespace: f.namespace,
            provider_id: f.provider_id,
            context: f.context,
            protocols: f.protocols,
            query_string: f.query_string,
            addresses: f.addresses,
            blob: f.blob,
        }
    }
}

/// `lpdwBufferLength` of a NextEx call.
#[derive(Clone, Debug)]
enum LengthField {
    Null,
    /// One to three bytes past an aligned `u32`.
    Misaligned(usize),
    Valid(u32),
}

/// `lpqsResults` of a NextEx call: writable for the stated length whenever it is not NULL.
#[derive(Clone, Copy, Debug)]
enum DataField {
    Null,
    /// This many bytes (1..BUFFER_ALIGN) past an aligned address.
    Offset(usize),
    Aligned,
}

fn result_buffer() -> impl Strategy<Value = (LengthField, DataField)> {
    let small = prop_oneof![Just(0u32), 1u32..512];
    let data = prop_oneof![
        1 => Just(DataField::Null),
        2 => (1..BUFFER_ALIGN).prop_map(DataField::Offset),
        4 => Just(DataField::Aligned),
    ];
    prop_oneof![
        1 => Just((LengthField::Null, DataField::Aligned)),
        1 => (1usize..4).prop_map(|at| (LengthField::Misaligned(at), DataField::Aligned)),
        6 => (small, data).prop_map(|(length, data)| (LengthField::Valid(length), data)),
        // No memory can back a huge length: only NULL goes with it.
        1 => (512u32.., Just(DataField::Null))
            .prop_map(|(length, data)| (LengthField::Valid(length), data)),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    /// `read_query_set`, for Begin's restriction and SetServiceEx's registration.
    #[test]
    fn query_set_is_read_exactly_when_well_formed(
        spec in query_set(),
        with_addresses in any::<bool>(),
    ) {
        let mut arena = Arena::default();
        let qs = spec.build(&mut arena);
        // SAFETY: built above in `arena`, alive until the end of the case: every non-null
        // pointer is valid for its stated count and strings are terminated or readable up to
        // MAX_STRING_UNITS units.
        let read = unsafe { read_query_set(qs, with_addresses) }.map(Fields::from);
        match (spec.model(with_addresses), read) {
            (Ok(expected), read) => prop_assert_eq!(read, Ok(expected)),
            (Err(codes), Ok(fields)) => {
                prop_assert!(false, "accepted {:?}, expected one of {:?}", fields, codes)
            }
            (Err(codes), Err(code)) => prop_assert!(
                codes.contains(&code),
                "refused with {:?}, expected one of {:?}", code, codes
            ),
        }
    }

    /// `read_socket_address` alone (the query-set property reaches its rarer cases seldom).
    #[test]
    fn socket_address_is_read_exactly_when_well_formed(
        field in prop_oneof![sock_field(true), sock_field(false)],
    ) {
        let mut arena = Arena::default();
        let address = field.build(&mut arena);
        // SAFETY: a non-null lpSockaddr points at `len` bytes in `arena` (or the length is
        // refused before any read: negative, or over MAX_SOCKADDR with bytes to match).
        let read = unsafe { read_socket_address(&address) };
        prop_assert_eq!(read, field.model());
    }

    /// `result_buffer`: NULL or misaligned `lpdwBufferLength`, or a non-zero length
    /// without an aligned buffer, is `WSAEFAULT`; otherwise the buffer is exactly the
    /// caller's bytes, and nothing is written by the checks.
    #[test]
    fn result_buffer_is_the_callers_exactly_when_usable(
        (length, data) in result_buffer(),
        fill in any::<u8>(),
    ) {
        let mut words = [0xFFFF_FFFFu32; 2];
        let length_ptr: *mut u32 = match length {
            LengthField::Null => std::ptr::null_mut(),
            LengthField::Misaligned(at) => words.as_mut_ptr().cast::<u8>().wrapping_add(at).cast(),
            LengthField::Valid(value) => {
                words[0] = value;
                words.as_mut_ptr()
            }
        };
        let capacity = match length {
            LengthField::Valid(value) => value as usize,
            _ => 0,
        };
        // Memory for the stated length, unless only NULL goes with it.
        let backed = if matches!(data, DataField::Null) { 0 } else { capacity };
        let mut memory = vec![u64::from_ne_bytes([fill; 8]); backed.div_ceil(8) + 2];
        let data_ptr: *mut u8 = match data {
            DataField::Null => std::ptr::null_mut(),
            DataField::Offset(at) => memory.as_mut_ptr().cast::<u8>().wrapping_add(at),
            DataField::Aligned => memory.as_mut_ptr().cast(),
        };
        let usable = match (&length, data) {
            (LengthField::Null | LengthField::Misaligned(_), _) => false,
            (LengthField::Valid(0), _) => true,
            (LengthField::Valid(_), DataField::Aligned) => true,
            (LengthField::Valid(_), _) => false,
        };
        let before = (words, memory.clone());
        let outcome = winprov_core::call::scope(|scope| {
            // SAFETY: a non-null, aligned length pointer points into `words`; a non-null data
            // pointer has `capacity` writable bytes in `memory` (the +2 words cover the
            // offset); both outlive the scope, and are read again only after it.
            let buffer = unsafe { super::result_buffer(scope, length_ptr, data_ptr) };
            buffer.map(|mut buffer| {
                let seen = buffer
                    .write(|bytes, base| (bytes.len(), base, bytes.iter().all(|&b| b == fill)));
                buffer.set_needed(0x1234);
                seen
            })
        });
        match outcome {
            Err(error) => {
                prop_assert_eq!(&before, &(words, memory.clone()), "the checks wrote");
                prop_assert!(!usable, "refused a usable buffer with {:?}", error);
                prop_assert_eq!(error, EFAULT);
            }
            Ok((len, base, all_fill)) => {
                prop_assert!(usable, "accepted {:?}/{:?}", length, data);
                prop_assert_eq!(len, capacity);
                prop_assert!(all_fill, "not the caller's bytes");
                if capacity > 0 {
                    prop_assert_eq!(base, data_ptr.addr());
                }
                prop_assert_eq!(words[0], 0x1234);
                prop_assert_eq!(&before.1, &memory, "the checks wrote");
            }
        }
    }
}
