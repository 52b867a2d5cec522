//! Property tests of the result format (R-NSP-8): `parse_sockaddr` against a model of
//! `SOCKADDR_IN` / `SOCKADDR_IN6`, `decode` over arbitrary and corrupted buffers, and the
//! `encode` → `decode` round trip over arbitrary results and buffer sizes.
//!
//! Failure persistence is off (see [`config`]): a case a property finds is kept as a plain unit
//! test next to it instead of a `proptest-regressions` file.

use super::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::test_runner::Config;

/// The case count and no regression files (minimized cases become unit tests).
pub(crate) fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// What the bytes of a `SOCKADDR_IN` (16 bytes: family, port in network order, address, zero
/// padding) or `SOCKADDR_IN6` (28 bytes: family, port, flow info, address, scope id) describe,
/// read field by field from the C layout; anything else (another family, too few bytes) is not
/// an address the framework understands.
pub(crate) fn sockaddr_model(bytes: &[u8]) -> Option<SocketAddr> {
    let word =
        |at: usize| u32::from_ne_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    if bytes.len() < 2 {
        return None;
    }
    let family = u16::from_ne_bytes([bytes[0], bytes[1]]);
    if family == 2 && bytes.len() >= 16 {
        let port = u16::from_be_bytes([bytes[2], bytes[3]]);
        let ip = Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]);
        Some(SocketAddr::V4(SocketAddrV4::new(ip, port)))
    } else if family == 23 && bytes.len() >= 28 {
        let port = u16::from_be_bytes([bytes[2], bytes[3]]);
        let mut ip = [0u8; 16];
        ip.copy_from_slice(&bytes[8..24]);
        Some(SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(ip),
            port,
            word(4),
            word(24),
        )))
    } else {
        None
    }
}

/// Socket address bytes: mostly of the two families the framework knows, of any length.
pub(crate) fn sockaddr_bytes_strategy(max: usize) -> impl Strategy<Value = Vec<u8>> {
    let family = prop_oneof![
        3 => Just(AF_INET.0),
        3 => Just(AF_INET6.0),
        1 => Just(0u16),
        2 => any::<u16>(),
    ];
    let len = prop_oneof![
        3 => Just(SOCKADDR_IN_LEN),
        3 => Just(SOCKADDR_IN6_LEN),
        4 => 0..=max,
    ];
    (family, len).prop_flat_map(|(family, len)| {
        vec(any::<u8>(), len).prop_map(move |mut bytes| {
            for (byte, value) in bytes.iter_mut().zip(family.to_ne_bytes()) {
                *byte = value;
            }
            bytes
        })
    })
}

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::V4(SocketAddrV4::new(ip.into(), port))),
        (any::<[u8; 16]>(), any::<u16>(), any::<u32>(), any::<u32>()).prop_map(
            |(ip, port, flow, scope)| SocketAddr::V6(SocketAddrV6::new(
                ip.into(),
                port,
                flow,
                scope
            ))
        ),
    ]
}

/// Any text, NULs and every plane included.
fn text() -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..12).prop_map(String::from_iter)
}

fn query_result() -> impl Strategy<Value = QueryResult> {
    let address = (
        option::of(socket_addr()),
        option::of(socket_addr()),
        any::<i32>(),
        any::<i32>(),
    )
        .prop_map(|(local, remote, socket_type, protocol)| CsAddr {
            local,
            remote,
            socket_type,
            protocol,
        });
    let version = (any::<u32>(), any::<bool>()).prop_map(|(version, not_less)| Version {
        version,
        how: if not_less {
            Comparator::NotLess
        } else {
            Comparator::Equal
        },
    });
    (
        option::of(text()),
        option::of(version),
        option::of(text()),
        option::of(text()),
        vec(address, 0..4),
        option::of(vec(any::<u8>(), 0..24)),
        option::of(text()),
        any::<u32>(),
    )
        .prop_map(
            |(name, version, comment, context, addresses, blob, query_string, output)| {
                QueryResult {
                    service_instance_name: name,
                    version,
                    comment,
                    context,
                    addresses,
                    blob,
                    query_string,
                    output_flags: OutputFlags::from_bits_retain(output),
                }
            },
        )
}

fn flags() -> impl Strategy<Value = ControlFlags> {
    prop_oneof![
        2 => Just(ControlFlags::RETURN_ALL),
        3 => any::<u32>().prop_map(ControlFlags::from_bits_retain),
    ]
}

fn context() -> impl Strategy<Value = ResultContext> {
    (any::<u32>(), any::<u128>()).prop_map(|(namespace, id)| ResultContext {
        namespace,
        provider_id: Guid::from_u128(id),
    })
}

/// A caller's buffer address: aligned, and far enough from the top of the address space.
fn base() -> impl Strategy<Value = usize> {
    (1usize..(1 << 40)).prop_map(|n| n * BUFFER_ALIGN)
}

/// What the caller sees of `result` under `flags`: only the fields the flags ask for (the
/// context and output flags always), each string up to its first NUL (a C string ends there).
fn seen(result: &QueryResult, flags: ControlFlags) -> QueryResult {
    let c_string = |text: &String| text.split('\0').next().unwrap_or_default().to_string();
    let string = |flag: ControlFlags, field: &Option<String>| {
        field
            .as_ref()
            .filter(|_| flags.contains(flag))
            .map(c_string)
    };
    QueryResult {
        service_instance_name: string(ControlFlags::RETURN_NAME, &result.service_instance_name),
        version: result
            .version
            .filter(|_| flags.contains(ControlFlags::RETURN_VERSION)),
        comment: string(ControlFlags::RETURN_COMMENT, &result.comment),
        context: result.context.as_ref().map(c_string),
        addresses: if flags.contains(ControlFlags::RETURN_ADDR) {
            result.addresses.clone()
        } else {
            Vec::new()
        },
        blob: result
            .blob
            .clone()
            .filter(|_| flags.contains(ControlFlags::RETURN_BLOB)),
        query_string: string(ControlFlags::RETURN_QUERY_STRING, &result.query_string),
        output_flags: result.output_flags,
    }
}

/// The offsets of the header's pointer fields, all of which must be NULL or point into the
/// buffer (R-NSP-8).
const POINTER_FIELDS: [usize; 9] = [
    offset_of!(WSAQUERYSET2W, lpszServiceInstanceName),
    offset_of!(WSAQUERYSET2W, lpVersion),
    offset_of!(WSAQUERYSET2W, lpszComment),
    offset_of!(WSAQUERYSET2W, lpNSProviderId),
    offset_of!(WSAQUERYSET2W, lpszContext),
    offset_of!(WSAQUERYSET2W, lpafpProtocols),
    offset_of!(WSAQUERYSET2W, lpszQueryString),
    offset_of!(WSAQUERYSET2W, lpcsaBuffer),
    offset_of!(WSAQUERYSET2W, lpBlob),
];

fn pointer_at(buffer: &[u8], offset: usize) -> usize {
    usize::from_ne_bytes(buffer[offset..offset + PTR].try_into().unwrap())
}

/// One corruption of an encoded result: a pointer-sized value written at an offset.
#[derive(Clone, Debug)]
enum Patch {
    /// Any value.
    Raw(usize),
    /// The buffer's address plus (or minus) a small distance: near, inside or just outside.
    Near(i64),
    /// A small number (a count, a length).
    Small(u32),
    /// Around the end of the (possibly cut) buffer.
    End(i8),
}

fn patches() -> impl Strategy<Value = Vec<(usize, Patch)>> {
    let offset = prop_oneof![
        3 => proptest::sample::select(POINTER_FIELDS.to_vec()),
        1 => Just(offset_of!(WSAQUERYSET2W, dwNumberOfCsAddrs)),
        1 => Just(offset_of!(WSAQUERYSET2W, dwSize)),
        3 => 0usize..400,
    ];
    let patch = prop_oneof![
        1 => any::<usize>().prop_map(Patch::Raw),
        3 => (-64i64..600).prop_map(Patch::Near),
        1 => (0u32..40).prop_map(Patch::Small),
        1 => Just(Patch::End(0)),
        1 => (-4i8..=4).prop_map(Patch::End),
    ];
    vec((offset, patch), 0..4)
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn parse_sockaddr_reads_exactly_the_two_known_layouts(bytes in sockaddr_bytes_strategy(40)) {
        prop_assert_eq!(parse_sockaddr(&bytes), sockaddr_model(&bytes));
    }

    #[test]
    fn sockaddr_bytes_parse_back(address in socket_addr()) {
        prop_assert_eq!(parse_sockaddr(&sockaddr_bytes(&address)), Some(address));
    }

    #[test]
    fn decode_of_arbitrary_bytes_refuses_what_is_not_a_header(
        bytes in vec(any::<u8>(), 0..300),
        base in any::<usize>(),
    ) {
        let outcome = decode(&bytes, base);
        if bytes.len() < size_of::<WSAQUERYSET2W>() {
            prop_assert_eq!(outcome, Err(DecodeError::Short));
        } else {
            let size = u32::from_ne_bytes(bytes[..4].try_into().unwrap());
            if size as usize != size_of::<WSAQUERYSET2W>() {
                prop_assert_eq!(outcome, Err(DecodeError::BadSize(size)));
            }
        }
    }

}

proptest! {
    // Cheap cases, and the interesting corruptions (a pointer exactly one past the end of
    // the buffer on a field with a zero count) are rare.
    #![proptest_config(config(2048))]

    /// The checker the simulator relies on for R-NSP-8: whatever is corrupted in a real
    /// result (pointers sent anywhere, counts changed, the buffer cut short), decoding never
    /// panics and never accepts a header pointer outside the buffer.
    #[test]
    fn decode_accepts_no_pointer_outside_the_buffer(
        result in query_result(),
        context in context(),
        base in base(),
        patches in patches(),
        cut in option::of(0usize..400),
    ) {
        let needed = encoded_len(&result, ControlFlags::RETURN_ALL, &context);
        let mut buffer = vec![0u8; needed];
        encode(&result, ControlFlags::RETURN_ALL, &context, &mut buffer, base).unwrap();
        if let Some(cut) = cut {
            buffer.truncate(cut);
        }
        let end = base + buffer.len();
        for (offset, patch) in patches {
            let value = match patch {
                Patch::Raw(value) => value,
                Patch::Near(distance) => base.wrapping_add_signed(distance as isize),
                Patch::Small(n) => n as usize,
                Patch::End(distance) => end.wrapping_add_signed(distance as isize),
            };
            if let Some(target) = buffer.get_mut(offset..offset + PTR) {
                target.copy_from_slice(&value.to_ne_bytes());
            }
        }
        if decode(&buffer, base).is_ok() {
            for field in POINTER_FIELDS {
                let pointer = pointer_at(&buffer, field);
                prop_assert!(
                    pointer == 0 || (base..base + buffer.len()).contains(&pointer),
                    "field at {} = {:#x} outside {:#x}+{}", field, pointer, base, buffer.len()
                );
            }
        }
    }

}

proptest! {
    #![proptest_config(config(256))]

    /// `encode` into a buffer of any size either fits and decodes back to what the flags
    /// let through, or reports the size needed and writes nothing.
    #[test]
    fn encode_fits_and_decodes_back_or_reports_the_size(
        result in query_result(),
        flags in flags(),
        context in context(),
        base in base(),
        slack in -64isize..64,
    ) {
        let needed = encoded_len(&result, flags, &context);
        prop_assert!(needed >= size_of::<WSAQUERYSET2W>());
        let size = needed.saturating_add_signed(slack);
        // The caller's buffer, followed by memory that is not the caller's.
        let mut memory = vec![0xA5u8; size + 64];
        let (buffer, beyond) = memory.split_at_mut(size);
        let outcome = encode(&result, flags, &context, buffer, base);
        prop_assert!(beyond.iter().all(|&b| b == 0xA5), "written past the buffer");
        if size >= needed {
            prop_assert_eq!(outcome, Ok(needed));
            let decoded = decode(&memory[..size], base);
            prop_assert_eq!(
                decoded,
                Ok(Decoded {
                    result: seen(&result, flags),
                    namespace: context.namespace,
                    provider_id: Some(context.provider_id),
                    protocols: 0,
                })
            );
        } else {
            prop_assert_eq!(outcome, Err(TooSmall { needed }));
            prop_assert!(memory.iter().all(|&b| b == 0xA5), "a short buffer was written");
        }
    }
}

/// A valid result for `x@y` at `base`, for the corruption cases below.
fn encoded_at(base: usize) -> Vec<u8> {
    let context = ResultContext {
        namespace: 0,
        provider_id: Guid::from_u128(0),
    };
    let result = QueryResult::named("x@y");
    let mut buffer = vec![0u8; encoded_len(&result, ControlFlags::RETURN_ALL, &context)];
    encode(
        &result,
        ControlFlags::RETURN_ALL,
        &context,
        &mut buffer,
        base,
    )
    .unwrap();
    buffer
}

// Found by `decode_accepts_no_pointer_outside_the_buffer`: decode did not look at
// lpafpProtocols at all, so the simulator's R-NSP-8 check let it point anywhere.
#[test]
fn decode_refuses_a_protocols_pointer_outside_the_buffer() {
    let base = 8;
    let mut buffer = encoded_at(base);
    let field = offset_of!(WSAQUERYSET2W, lpafpProtocols);
    let past_the_end = base + buffer.len();
    buffer[field..field + PTR].copy_from_slice(&past_the_end.to_ne_bytes());
    assert_eq!(
        decode(&buffer, base),
        Err(DecodeError::OutsideBuffer {
            field: "lpafpProtocols",
            pointer: past_the_end
        })
    );
}

// Found by the same property: a pointer one past the end with a zero count was accepted.
#[test]
fn decode_refuses_an_empty_array_one_past_the_end() {
    let base = 4096;
    let mut buffer = encoded_at(base);
    let field = offset_of!(WSAQUERYSET2W, lpcsaBuffer);
    let past_the_end = base + buffer.len();
    buffer[field..field + PTR].copy_from_slice(&past_the_end.to_ne_bytes());
    assert_eq!(
        decode(&buffer, base),
        Err(DecodeError::OutsideBuffer {
            field: "lpcsaBuffer",
            pointer: past_the_end
        })
    );
}
