//! The result buffer protocol of `NSPv2LookupServiceNextEx`, in safe code.
//!
//! A result is one `WSAQUERYSET2W` at the start of the caller's buffer, followed by everything it
//! points to (strings, `CSADDR_INFO`s and their socket addresses, the `BLOB` and its data, the
//! provider GUID, the `WSAVERSION`). Every pointer is the caller's buffer address plus an offset,
//! so the result is valid in the caller's process only and never points outside the buffer
//! (R-NSP-8). The encoder writes fields at their `offset_of!` positions in the bindings' struct
//! definitions; it never casts bytes to a struct, so it needs no `unsafe`.
//!
//! [`decode`] reads such a buffer back and checks every pointer: the host simulator uses it to
//! verify results, and it documents the format by inverse.

use crate::query::{Comparator, ControlFlags, CsAddr, Guid, OutputFlags, QueryResult, Version};
use std::mem::{align_of, offset_of, size_of};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use winprov_bindings::ws2spi::{
    AF_INET, AF_INET6, AFPROTOCOLS, BLOB, CSADDR_INFO, SOCKET_ADDRESS, WSAQUERYSET2W, WSAVERSION,
};

const PTR: usize = size_of::<usize>();
/// The alignment the caller's buffer must have (that of `WSAQUERYSET2W`).
pub const BUFFER_ALIGN: usize = align_of::<WSAQUERYSET2W>();
const SOCKADDR_IN_LEN: usize = 16;
const SOCKADDR_IN6_LEN: usize = 28;

/// What the framework adds to every result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResultContext {
    /// `dwNameSpace` of the results (the provider's namespace).
    pub namespace: u32,
    /// `lpNSProviderId` of the results.
    pub provider_id: Guid,
}

/// The buffer was too small; `needed` bytes are required.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooSmall {
    /// The size that fits the result.
    pub needed: usize,
}

/// Bytes needed to hold `result` as narrowed by `flags`.
pub fn encoded_len(result: &QueryResult, flags: ControlFlags, context: &ResultContext) -> usize {
    let mut writer = Writer {
        out: None,
        base: 0,
        cursor: 0,
    };
    layout(result, flags, context, &mut writer);
    writer.cursor
}

/// Writes `result` into `buffer`, whose first byte is at address `base` in the caller's process
/// (`base` must be a multiple of [`BUFFER_ALIGN`]). Returns the bytes used.
pub fn encode(
    result: &QueryResult,
    flags: ControlFlags,
    context: &ResultContext,
    buffer: &mut [u8],
    base: usize,
) -> Result<usize, TooSmall> {
    debug_assert_eq!(
        base % BUFFER_ALIGN,
        0,
        "caller checks the buffer's alignment"
    );
    let needed = encoded_len(result, flags, context);
    if buffer.len() < needed {
        return Err(TooSmall { needed });
    }
    let mut writer = Writer {
        out: Some(buffer),
        base,
        cursor: 0,
    };
    layout(result, flags, context, &mut writer);
    debug_assert_eq!(writer.cursor, needed);
    Ok(needed)
}

struct Writer<'a> {
    out: Option<&'a mut [u8]>,
    base: usize,
    cursor: usize,
}

impl Writer<'_> {
    /// Reserves `size` bytes aligned to `align` and returns their offset.
    fn alloc(&mut self, size: usize, align: usize) -> usize {
        let offset = self.cursor.next_multiple_of(align);
        self.cursor = offset + size;
        offset
    }

    fn put(&mut self, offset: usize, bytes: &[u8]) {
        if let Some(out) = self.out.as_deref_mut() {
            out[offset..offset + bytes.len()].copy_from_slice(bytes);
        }
    }

    fn put_u32(&mut self, offset: usize, value: u32) {
        self.put(offset, &value.to_ne_bytes());
    }

    fn put_i32(&mut self, offset: usize, value: i32) {
        self.put(offset, &value.to_ne_bytes());
    }

    /// Writes a pointer to `target` (an offset in the buffer), or NULL.
    fn put_ptr(&mut self, offset: usize, target: Option<usize>) {
        let value = target.map_or(0, |t| self.base + t);
        self.put(offset, &value.to_ne_bytes());
    }

    fn wide(&mut self, text: &str) -> usize {
        let units = text.encode_utf16().count() + 1;
        let offset = self.alloc(units * 2, 2);
        if let Some(out) = self.out.as_deref_mut() {
            let mut at = offset;
            for unit in text.encode_utf16().chain([0]) {
                out[at..at + 2].copy_from_slice(&unit.to_ne_bytes());
                at += 2;
            }
        }
        offset
    }

    fn sockaddr(&mut self, address: &SocketAddr) -> (usize, usize) {
        match address {
            SocketAddr::V4(v4) => {
                let offset = self.alloc(SOCKADDR_IN_LEN, 4);
                self.put(offset, &AF_INET.0.to_ne_bytes());
                self.put(offset + 2, &v4.port().to_be_bytes());
                self.put(offset + 4, &v4.ip().octets());
                self.put(offset + 8, &[0; 8]);
                (offset, SOCKADDR_IN_LEN)
            }
            SocketAddr::V6(v6) => {
                let offset = self.alloc(SOCKADDR_IN6_LEN, 4);
                self.put(offset, &AF_INET6.0.to_ne_bytes());
                self.put(offset + 2, &v6.port().to_be_bytes());
                self.put_u32(offset + 4, v6.flowinfo());
                self.put(offset + 8, &v6.ip().octets());
                self.put_u32(offset + 24, v6.scope_id());
                (offset, SOCKADDR_IN6_LEN)
            }
        }
    }

    fn socket_address(&mut self, field: usize, address: Option<&SocketAddr>) {
        let (target, len) = match address {
            Some(address) => {
                let (offset, len) = self.sockaddr(address);
                (Some(offset), len)
            }
            None => (None, 0),
        };
        self.put_ptr(field + offset_of!(SOCKET_ADDRESS, lpSockaddr), target);
        self.put_i32(
            field + offset_of!(SOCKET_ADDRESS, iSockaddrLength),
            len as i32,
        );
    }
}

fn layout(result: &QueryResult, flags: ControlFlags, context: &ResultContext, w: &mut Writer<'_>) {
    type Q = WSAQUERYSET2W;
    let header = w.alloc(size_of::<Q>(), BUFFER_ALIGN);
    debug_assert_eq!(header, 0);
    if let Some(out) = w.out.as_deref_mut() {
        out[..size_of::<Q>()].fill(0);
    }
    w.put_u32(offset_of!(Q, dwSize), size_of::<Q>() as u32);
    w.put_u32(offset_of!(Q, dwNameSpace), context.namespace);
    w.put_u32(offset_of!(Q, dwOutputFlags), result.output_flags.bits());

    let guid = w.alloc(16, 4);
    let id = context.provider_id;
    w.put_u32(guid, id.data1);
    w.put(guid + 4, &id.data2.to_ne_bytes());
    w.put(guid + 6, &id.data3.to_ne_bytes());
    w.put(guid + 8, &id.data4);
    w.put_ptr(offset_of!(Q, lpNSProviderId), Some(guid));

    let strings = [
        (
            ControlFlags::RETURN_NAME,
            &result.service_instance_name,
            offset_of!(Q, lpszServiceInstanceName),
        ),
        (
            ControlFlags::RETURN_COMMENT,
            &result.comment,
            offset_of!(Q, lpszComment),
        ),
        (
            ControlFlags::RETURN_QUERY_STRING,
            &result.query_string,
            offset_of!(Q, lpszQueryString),
        ),
        (
            ControlFlags::empty(),
            &result.context,
            offset_of!(Q, lpszContext),
        ),
    ];
    for (flag, text, field) in strings {
        if let Some(text) = text.as_deref().filter(|_| flags.contains(flag)) {
            let at = w.wide(text);
            w.put_ptr(field, Some(at));
        }
    }

    if let Some(version) = result
        .version
        .filter(|_| flags.contains(ControlFlags::RETURN_VERSION))
    {
        let at = w.alloc(size_of::<WSAVERSION>(), align_of::<WSAVERSION>());
        w.put_u32(at + offset_of!(WSAVERSION, dwVersion), version.version);
        let how = match version.how {
            Comparator::Equal => 0,
            Comparator::NotLess => 1,
        };
        w.put_i32(at + offset_of!(WSAVERSION, ecHow), how);
        w.put_ptr(offset_of!(Q, lpVersion), Some(at));
    }

    if flags.contains(ControlFlags::RETURN_ADDR) && !result.addresses.is_empty() {
        let count = result.addresses.len();
        let size = size_of::<CSADDR_INFO>();
        let array = w.alloc(size * count, align_of::<CSADDR_INFO>());
        for (i, address) in result.addresses.iter().enumerate() {
            let item = array + i * size;
            w.socket_address(
                item + offset_of!(CSADDR_INFO, LocalAddr),
                address.local.as_ref(),
            );
            w.socket_address(
                item + offset_of!(CSADDR_INFO, RemoteAddr),
                address.remote.as_ref(),
            );
            w.put_i32(
                item + offset_of!(CSADDR_INFO, iSocketType),
                address.socket_type,
            );
            w.put_i32(item + offset_of!(CSADDR_INFO, iProtocol), address.protocol);
        }
        w.put_u32(offset_of!(Q, dwNumberOfCsAddrs), count as u32);
        w.put_ptr(offset_of!(Q, lpcsaBuffer), Some(array));
    }

    if let Some(blob) = result
        .blob
        .as_deref()
        .filter(|_| flags.contains(ControlFlags::RETURN_BLOB))
    {
        let at = w.alloc(size_of::<BLOB>(), align_of::<BLOB>());
        let data = (!blob.is_empty()).then(|| {
            let data = w.alloc(blob.len(), 1);
            w.put(data, blob);
            data
        });
        w.put_u32(at + offset_of!(BLOB, cbSize), blob.len() as u32);
        w.put_ptr(at + offset_of!(BLOB, pBlobData), data);
        w.put_ptr(offset_of!(Q, lpBlob), Some(at));
    }
}

/// A result read back from a buffer, with what the framework added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The author's fields, as far as the flags let them through.
    pub result: QueryResult,
    /// `dwNameSpace`.
    pub namespace: u32,
    /// `lpNSProviderId`.
    pub provider_id: Option<Guid>,
    /// `dwNumberOfProtocols` (always 0 in a result).
    pub protocols: u32,
}

/// Why a buffer is not a well-formed result.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The buffer is shorter than a `WSAQUERYSET2W`.
    Short,
    /// `dwSize` is not the structure's size.
    BadSize(u32),
    /// A pointer field points outside the buffer (R-NSP-8), or its data runs past the end.
    OutsideBuffer {
        /// The field.
        field: &'static str,
        /// The pointer value.
        pointer: usize,
    },
    /// A string has no terminator inside the buffer, or is not UTF-16.
    BadString(&'static str),
    /// A socket address is malformed.
    BadAddress,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Short => f.write_str("buffer shorter than a WSAQUERYSET2W"),
            Self::BadSize(size) => write!(f, "dwSize is {size}"),
            Self::OutsideBuffer { field, pointer } => {
                write!(f, "{field} = {pointer:#x} points outside the result buffer")
            }
            Self::BadString(field) => write!(f, "{field} is not a terminated UTF-16 string"),
            Self::BadAddress => f.write_str("malformed socket address"),
        }
    }
}

impl std::error::Error for DecodeError {}

struct Reader<'a> {
    buf: &'a [u8],
    base: usize,
}

impl Reader<'_> {
    fn bytes(&self, offset: usize, len: usize) -> Option<&[u8]> {
        self.buf.get(offset..offset.checked_add(len)?)
    }

    fn u32(&self, offset: usize) -> Option<u32> {
        Some(u32::from_ne_bytes(self.bytes(offset, 4)?.try_into().ok()?))
    }

    fn i32(&self, offset: usize) -> Option<i32> {
        Some(i32::from_ne_bytes(self.bytes(offset, 4)?.try_into().ok()?))
    }

    fn usize(&self, offset: usize) -> Option<usize> {
        Some(usize::from_ne_bytes(
            self.bytes(offset, PTR)?.try_into().ok()?,
        ))
    }

    /// Follows the pointer stored at `field_offset`: `Ok(None)` for NULL, the target's offset
    /// when `len` bytes from it lie inside the buffer.
    fn target(
        &self,
        field: &'static str,
        field_offset: usize,
        len: usize,
    ) -> Result<Option<usize>, DecodeError> {
        let pointer = self.usize(field_offset).ok_or(DecodeError::Short)?;
        if pointer == 0 {
            return Ok(None);
        }
        let outside = DecodeError::OutsideBuffer { field, pointer };
        let offset = pointer.checked_sub(self.base).ok_or(outside.clone())?;
        // Even an empty target must lie inside: one past the end is not in the buffer.
        self.bytes(offset, len.max(1)).ok_or(outside)?;
        Ok(Some(offset))
    }

    fn string(
        &self,
        field: &'static str,
        field_offset: usize,
    ) -> Result<Option<String>, DecodeError> {
        let Some(start) = self.target(field, field_offset, 2)? else {
            return Ok(None);
        };
        let mut units = Vec::new();
        let mut at = start;
        loop {
            let unit = self
                .bytes(at, 2)
                .map(|b| u16::from_ne_bytes([b[0], b[1]]))
                .ok_or(DecodeError::BadString(field))?;
            if unit == 0 {
                break;
            }
            units.push(unit);
            at += 2;
        }
        String::from_utf16(&units)
            .map(Some)
            .map_err(|_| DecodeError::BadString(field))
    }

    fn socket_address(&self, item: usize) -> Result<Option<SocketAddr>, DecodeError> {
        let len = self
            .i32(item + offset_of!(SOCKET_ADDRESS, iSockaddrLength))
            .ok_or(DecodeError::Short)?;
        let len = usize::try_from(len).map_err(|_| DecodeError::BadAddress)?;
        let Some(at) = self.target("SOCKET_ADDRESS.lpSockaddr", item, len)? else {
            return Ok(None);
        };
        parse_sockaddr(self.bytes(at, len).ok_or(DecodeError::BadAddress)?)
            .map(Some)
            .ok_or(DecodeError::BadAddress)
    }
}

/// The `SOCKADDR_IN` / `SOCKADDR_IN6` bytes of `address`.
pub fn sockaddr_bytes(address: &SocketAddr) -> Vec<u8> {
    let len = match address {
        SocketAddr::V4(_) => SOCKADDR_IN_LEN,
        SocketAddr::V6(_) => SOCKADDR_IN6_LEN,
    };
    let mut bytes = vec![0u8; len];
    let mut writer = Writer {
        out: Some(&mut bytes),
        base: 0,
        cursor: 0,
    };
    writer.sockaddr(address);
    bytes
}

/// Parses a `SOCKADDR_IN` / `SOCKADDR_IN6` from its bytes.
pub fn parse_sockaddr(bytes: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes(bytes.get(0..2)?.try_into().ok()?);
    let port = u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?);
    if family == AF_INET.0 && bytes.len() >= SOCKADDR_IN_LEN {
        let ip: [u8; 4] = bytes[4..8].try_into().ok()?;
        Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
    } else if family == AF_INET6.0 && bytes.len() >= SOCKADDR_IN6_LEN {
        let flow = u32::from_ne_bytes(bytes[4..8].try_into().ok()?);
        let ip: [u8; 16] = bytes[8..24].try_into().ok()?;
        let scope = u32::from_ne_bytes(bytes[24..28].try_into().ok()?);
        Some(SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(ip),
            port,
            flow,
            scope,
        )))
    } else {
        None
    }
}

/// Reads a result written into `buffer` (first byte at address `base`), checking that every
/// pointer stays inside it.
pub fn decode(buffer: &[u8], base: usize) -> Result<Decoded, DecodeError> {
    type Q = WSAQUERYSET2W;
    let r = Reader { buf: buffer, base };
    if buffer.len() < size_of::<Q>() {
        return Err(DecodeError::Short);
    }
    let size = r.u32(offset_of!(Q, dwSize)).ok_or(DecodeError::Short)?;
    if size as usize != size_of::<Q>() {
        return Err(DecodeError::BadSize(size));
    }
    let mut result = QueryResult {
        service_instance_name: r.string(
            "lpszServiceInstanceName",
            offset_of!(Q, lpszServiceInstanceName),
        )?,
        comment: r.string("lpszComment", offset_of!(Q, lpszComment))?,
        context: r.string("lpszContext", offset_of!(Q, lpszContext))?,
        query_string: r.string("lpszQueryString", offset_of!(Q, lpszQueryString))?,
        output_flags: OutputFlags::from_bits_retain(
            r.u32(offset_of!(Q, dwOutputFlags))
                .ok_or(DecodeError::Short)?,
        ),
        ..QueryResult::default()
    };
    if let Some(at) = r.target(
        "lpVersion",
        offset_of!(Q, lpVersion),
        size_of::<WSAVERSION>(),
    )? {
        let version = r.u32(at).ok_or(DecodeError::Short)?;
        let how = match r.i32(at + offset_of!(WSAVERSION, ecHow)) {
            Some(0) => Comparator::Equal,
            _ => Comparator::NotLess,
        };
        result.version = Some(Version { version, how });
    }
    let provider_id = match r.target("lpNSProviderId", offset_of!(Q, lpNSProviderId), 16)? {
        Some(at) => Some(Guid {
            data1: r.u32(at).ok_or(DecodeError::Short)?,
            data2: u16::from_ne_bytes([buffer[at + 4], buffer[at + 5]]),
            data3: u16::from_ne_bytes([buffer[at + 6], buffer[at + 7]]),
            data4: buffer[at + 8..at + 16]
                .try_into()
                .expect("16 bytes checked"),
        }),
        None => None,
    };
    // A result's protocol fields are undefined, but a pointer there is still a pointer.
    let protocols = r
        .u32(offset_of!(Q, dwNumberOfProtocols))
        .ok_or(DecodeError::Short)? as usize;
    let protocols_len = protocols
        .checked_mul(size_of::<AFPROTOCOLS>())
        .ok_or(DecodeError::Short)?;
    r.target(
        "lpafpProtocols",
        offset_of!(Q, lpafpProtocols),
        protocols_len,
    )?;
    let count = r
        .u32(offset_of!(Q, dwNumberOfCsAddrs))
        .ok_or(DecodeError::Short)? as usize;
    let size = size_of::<CSADDR_INFO>();
    let array_len = count.checked_mul(size).ok_or(DecodeError::Short)?;
    if let Some(array) = r.target("lpcsaBuffer", offset_of!(Q, lpcsaBuffer), array_len)? {
        for i in 0..count {
            let item = array + i * size;
            result.addresses.push(CsAddr {
                local: r.socket_address(item + offset_of!(CSADDR_INFO, LocalAddr))?,
                remote: r.socket_address(item + offset_of!(CSADDR_INFO, RemoteAddr))?,
                socket_type: r
                    .i32(item + offset_of!(CSADDR_INFO, iSocketType))
                    .ok_or(DecodeError::Short)?,
                protocol: r
                    .i32(item + offset_of!(CSADDR_INFO, iProtocol))
                    .ok_or(DecodeError::Short)?,
            });
        }
    }
    if let Some(at) = r.target("lpBlob", offset_of!(Q, lpBlob), size_of::<BLOB>())? {
        let len = r
            .u32(at + offset_of!(BLOB, cbSize))
            .ok_or(DecodeError::Short)? as usize;
        let data = match r.target("BLOB.pBlobData", at + offset_of!(BLOB, pBlobData), len)? {
            Some(data) => buffer[data..data + len].to_vec(),
            None if len == 0 => Vec::new(),
            None => {
                return Err(DecodeError::OutsideBuffer {
                    field: "BLOB.pBlobData",
                    pointer: 0,
                });
            }
        };
        result.blob = Some(data);
    }
    Ok(Decoded {
        result,
        namespace: r
            .u32(offset_of!(Q, dwNameSpace))
            .ok_or(DecodeError::Short)?,
        provider_id,
        protocols: r
            .u32(offset_of!(Q, dwNumberOfProtocols))
            .ok_or(DecodeError::Short)?,
    })
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn context() -> ResultContext {
        ResultContext {
            namespace: 37,
            provider_id: Guid::from_u128(0x1234_5678_9abc_def0_1122_3344_5566_7788),
        }
    }

    fn full() -> QueryResult {
        QueryResult::named("alice@example.org")
            .with_comment("Alice — résumé ✓")
            .with_context("example.org")
            .with_address(CsAddr::tcp("192.0.2.10:25".parse().unwrap()))
            .with_address(CsAddr {
                local: Some("[fe80::1%3]:0".parse().unwrap()),
                remote: Some("[2001:db8::1]:587".parse().unwrap()),
                socket_type: 1,
                protocol: 6,
            })
            .with_blob(vec![1, 2, 3, 4, 5])
            .with_query_string("rest")
            .with_output_flags(OutputFlags::ADDED)
            .with_version(Version {
                version: 3,
                how: Comparator::NotLess,
            })
    }

    #[test]
    fn round_trip_with_every_field() {
        let result = full();
        let needed = encoded_len(&result, ControlFlags::RETURN_ALL, &context());
        let base = 0x10_0000;
        let mut buf = vec![0u8; needed];
        assert_eq!(
            encode(
                &result,
                ControlFlags::RETURN_ALL,
                &context(),
                &mut buf,
                base
            ),
            Ok(needed)
        );
        let decoded = decode(&buf, base).unwrap();
        assert_eq!(decoded.result, result);
        assert_eq!(decoded.namespace, 37);
        assert_eq!(decoded.provider_id, Some(context().provider_id));
    }

    #[test]
    fn short_buffer_reports_the_needed_size_and_writes_nothing() {
        let result = full();
        let needed = encoded_len(&result, ControlFlags::RETURN_ALL, &context());
        let mut buf = vec![0xAAu8; needed - 1];
        assert_eq!(
            encode(&result, ControlFlags::RETURN_ALL, &context(), &mut buf, 0),
            Err(TooSmall { needed })
        );
        assert!(buf.iter().all(|&b| b == 0xAA));
    }

    #[test]
    fn flags_select_the_fields() {
        let result = full();
        let flags = ControlFlags::RETURN_NAME;
        let needed = encoded_len(&result, flags, &context());
        assert!(needed < encoded_len(&result, ControlFlags::RETURN_ALL, &context()));
        let mut buf = vec![0u8; needed];
        encode(&result, flags, &context(), &mut buf, 64).unwrap();
        let decoded = decode(&buf, 64).unwrap().result;
        assert_eq!(decoded.service_instance_name, result.service_instance_name);
        assert_eq!(decoded.comment, None);
        assert!(decoded.addresses.is_empty());
        assert_eq!(decoded.blob, None);
        assert_eq!(
            decoded.context, result.context,
            "context is always returned"
        );
    }

    #[test]
    fn decode_rejects_pointers_outside_the_buffer() {
        let result = QueryResult::named("x@y");
        let needed = encoded_len(&result, ControlFlags::RETURN_ALL, &context());
        let mut buf = vec![0u8; needed];
        encode(
            &result,
            ControlFlags::RETURN_ALL,
            &context(),
            &mut buf,
            4096,
        )
        .unwrap();
        // The same bytes seen at another address: every pointer now points elsewhere.
        assert!(matches!(
            decode(&buf, 8192),
            Err(DecodeError::OutsideBuffer { .. })
        ));
    }

    #[test]
    fn empty_blob_has_a_null_data_pointer() {
        let result = QueryResult::named("x@y").with_blob(Vec::new());
        let needed = encoded_len(&result, ControlFlags::RETURN_ALL, &context());
        let mut buf = vec![0u8; needed];
        encode(
            &result,
            ControlFlags::RETURN_ALL,
            &context(),
            &mut buf,
            0x1000,
        )
        .unwrap();
        assert_eq!(decode(&buf, 0x1000).unwrap().result.blob, Some(Vec::new()));
    }
}

#[cfg(all(test, not(loom)))]
#[path = "wire_props.rs"]
pub(crate) mod props;
