//! Property tests of the decoders: random arrays, counts, lengths, flags and pointers (NULL,
//! misaligned, valid) against a model written from the documented rules. Memory is the test's
//! own; every pointer the decoder may read is valid for what the host's contract says (the
//! decoders never read a buffer's bytes, so the `WSABUF` addresses themselves may be anything).
//! Failure persistence is off: a case a property finds becomes a plain unit test here.

use super::*;
use crate::values::PROTOCOL_NAME_UNITS;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::Config;
use winprov_bindings::windows_core::PSTR;
use winprov_bindings::ws2spi::{HANDLE, SO_DONTLINGER, SO_LINGER, SOL_SOCKET};

const EFAULT: WsaError = WsaError::WSAEFAULT;
const EINVAL: WsaError = WsaError::WSAEINVAL;

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Where a pointer points.
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

/// A block of 8-aligned memory holding `values`, at its start or one byte in.
struct Block {
    _memory: Vec<u64>,
}

impl Block {
    fn new<T: Copy>(values: &[T], misaligned: bool) -> (Self, *mut T) {
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
        (Self { _memory: block }, start)
    }

    fn at<T: Copy>(place: Place, values: &[T]) -> (Option<Self>, *mut T) {
        match place {
            Place::Null => (None, std::ptr::null_mut()),
            Place::Misaligned => {
                let (block, ptr) = Self::new(values, true);
                (Some(block), ptr)
            }
            Place::Valid => {
                let (block, ptr) = Self::new(values, false);
                (Some(block), ptr)
            }
        }
    }
}

/// One `WSABUF` as a caller might describe it.
fn descriptor() -> impl Strategy<Value = (usize, u32)> {
    prop_oneof![
        // Plausible buffers.
        6 => (0x1000usize..0x7fff_0000, 0u32..4096),
        // Zero-length, any pointer (NULL included).
        2 => (prop_oneof![Just(0usize), any::<usize>()], Just(0u32)),
        // NULL with a length.
        1 => (Just(0usize), 1u32..=u32::MAX),
        // Ranges that run off the end of the address space.
        1 => ((usize::MAX - 4096)..=usize::MAX, 1u32..=u32::MAX),
        // Anything.
        1 => (any::<usize>(), any::<u32>()),
    ]
}

/// The count the caller states: within the array (the host's contract), zero, or above the
/// framework's limit (refused before reading).
#[derive(Clone, Copy, Debug)]
enum Count {
    Within(usize),
    Huge(u32),
}

fn count() -> impl Strategy<Value = Count> {
    prop_oneof![
        6 => (0usize..=8).prop_map(Count::Within),
        1 => ((MAX_BUFFERS as u32 + 1)..=u32::MAX).prop_map(Count::Huge),
    ]
}

fn model_buffers(
    place: Place,
    count: u32,
    entries: &[(usize, u32)],
) -> Result<Vec<(usize, u32)>, WsaError> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if place != Place::Valid {
        return Err(EFAULT);
    }
    if count as usize > MAX_BUFFERS {
        return Err(EINVAL);
    }
    let entries = &entries[..count as usize];
    for &(address, len) in entries {
        let bad = len > 0
            && (address == 0
                || address.checked_add(len as usize).is_none()
                || len as usize > isize::MAX as usize);
        if bad {
            return Err(EFAULT);
        }
    }
    Ok(entries.to_vec())
}

proptest! {
    #![proptest_config(config(512))]

    /// `decode_buffers` is total and matches the model; what it returns is a copy: the caller
    /// overwriting its array afterwards changes nothing (R-WSP-17).
    #[test]
    fn buffer_arrays_decode_as_documented_and_are_copied(
        place in place(),
        entries in vec(descriptor(), 8),
        count in count(),
    ) {
        let raw: Vec<WSABUF> = entries
            .iter()
            .map(|&(address, len)| WSABUF {
                len,
                buf: PSTR(std::ptr::without_provenance_mut(address)),
            })
            .collect();
        let count = match count {
            Count::Within(n) => n as u32,
            Count::Huge(n) => n,
        };
        let (_block, array) = Block::at(place, &raw);
        // SAFETY: a non-null, aligned `array` holds 8 entries, and `count` is at most 8 or
        // above MAX_BUFFERS (refused before reading).
        let decoded = unsafe { decode_buffers(array, count) };
        let expected = model_buffers(place, count, &entries);
        match (&decoded, &expected) {
            (Ok(array), Ok(model)) => {
                let got: Vec<(usize, u32)> =
                    array.descriptors.iter().map(|d| (d.address, d.len)).collect();
                prop_assert_eq!(&got, model);
                prop_assert_eq!(array.capacity(), model.iter().map(|e| u64::from(e.1)).sum::<u64>());
            }
            (Err(got), Err(model)) => prop_assert_eq!(got, model),
            _ => prop_assert!(false, "decoded {:?}, model {:?}", decoded, expected),
        }
        if let (Ok(before), Place::Valid) = (decoded, place) {
            for i in 0..8 {
                // SAFETY: `array` is valid for 8 entries.
                unsafe { array.add(i).write(WSABUF { len: 7, buf: PSTR(std::ptr::null_mut()) }) };
            }
            let kept: Vec<(usize, u32)> = before.descriptors.iter().map(|d| (d.address, d.len)).collect();
            prop_assert_eq!(kept, model_buffers(place, count, &entries).unwrap());
        }
    }

    /// Filling receive buffers scatters the bytes in order: each buffer gets the next bytes up
    /// to its length, nothing is written past the total, and `fill` reports what it took.
    #[test]
    fn receive_buffers_fill_in_order(
        lens in vec(0usize..24, 0..6),
        chunks in vec(vec(any::<u8>(), 0..40), 0..6),
    ) {
        let mut memory: Vec<Vec<u8>> = lens.iter().map(|&n| vec![0xEE; n + 4]).collect();
        let raw: Vec<WSABUF> = memory
            .iter_mut()
            .zip(&lens)
            .map(|(m, &n)| WSABUF { len: n as u32, buf: PSTR(m.as_mut_ptr()) })
            .collect();
        // SAFETY: `raw` is a valid array of `raw.len()` entries.
        let array = unsafe { decode_buffers(raw.as_ptr(), raw.len() as u32) }.unwrap();
        // SAFETY: each descriptor is `memory`'s, writable for its length and used by nobody else
        // while `buffers` lives.
        let mut buffers = unsafe { RecvBuffers::<'_>::new(array) };
        let capacity: usize = lens.iter().sum();
        let mut stream = Vec::new();
        for chunk in &chunks {
            let room = capacity - stream.len();
            let took = buffers.fill(chunk);
            prop_assert_eq!(took, chunk.len().min(room));
            stream.extend_from_slice(&chunk[..took]);
        }
        prop_assert_eq!(buffers.filled(), stream.len() as u64);
        prop_assert_eq!(buffers.remaining(), (capacity - stream.len()) as u64);
        drop(buffers);
        let mut at = 0;
        for (m, &n) in memory.iter().zip(&lens) {
            let take = n.min(stream.len().saturating_sub(at));
            prop_assert_eq!(&m[..take], &stream[at..at + take]);
            prop_assert!(m[take..].iter().all(|&b| b == 0xEE), "written past the data");
            at += take;
        }
    }

    /// `SO_LINGER` / `SO_DONTLINGER` / any other option from `setsockopt`'s bytes: short or
    /// negative lengths and NULL with a length are WSAEFAULT; `optval` needs no alignment.
    #[test]
    fn socket_options_decode_as_documented(
        which in 0u8..3,
        other_name in any::<i32>(),
        bytes in vec(any::<u8>(), 0..12),
        optlen in prop_oneof![4 => 0i32..12, 1 => i32::MIN..0, 1 => 12i32..=i32::MAX],
        place in place(),
    ) {
        let (level, name) = match which {
            0 => (SOL_SOCKET, SO_LINGER),
            1 => (SOL_SOCKET, SO_DONTLINGER),
            _ => (7, other_name),
        };
        // A non-null optval is readable for optlen bytes (the host's contract): clamp.
        let optlen = if place == Place::Null || optlen < 0 { optlen } else { optlen.min(bytes.len() as i32) };
        let (_block, optval) = Block::at(place, &bytes);
        // SAFETY: a non-null optval is readable for `optlen` bytes (clamped above).
        let decoded = unsafe { decode_sock_opt(level, name, optval.cast_const(), optlen) };
        let expected = if optlen < 0 || (place == Place::Null && optlen > 0) {
            Err(EFAULT)
        } else {
            let value: &[u8] = if place == Place::Null { &[] } else { &bytes[..optlen as usize] };
            match which {
                0 if value.len() < 4 => Err(EFAULT),
                0 => Ok(SockOpt::Linger(Linger {
                    on: u16::from_ne_bytes([value[0], value[1]]) != 0,
                    seconds: u16::from_ne_bytes([value[2], value[3]]),
                })),
                1 if value.len() < 4 => Err(EFAULT),
                1 => Ok(SockOpt::DontLinger(i32::from_ne_bytes([value[0], value[1], value[2], value[3]]) != 0)),
                _ => Ok(SockOpt::Other { level, name, value }),
            }
        };
        prop_assert_eq!(decoded, expected);
    }

    /// `how`: 0, 1, 2 and nothing else.
    #[test]
    fn how_is_one_of_three(raw in prop_oneof![-3i32..6, any::<i32>()]) {
        let expected = match raw {
            0 => Ok(How::Receive),
            1 => Ok(How::Send),
            2 => Ok(How::Both),
            _ => Err(EINVAL),
        };
        let decoded = How::decode(raw);
        prop_assert_eq!(decoded, expected);
        if let Ok(how) = decoded {
            prop_assert_eq!(how.raw(), raw);
        }
    }

    /// The overlapped triple: NULL `lpOverlapped` is a plain call whatever else is passed;
    /// misaligned pointers are WSAEFAULT; a routine needs a thread id; the thread id is copied
    /// (the caller overwriting it afterwards changes nothing, R-WSP-17).
    #[test]
    fn overlapped_requests_decode_as_documented(
        overlapped_place in place(),
        thread_place in place(),
        with_routine in any::<bool>(),
        event in any::<usize>(),
        handle in any::<usize>(),
        reserved in any::<usize>(),
    ) {
        unsafe extern "system" fn routine(_: u32, _: u32, _: *mut OVERLAPPED, _: u32) {}
        let routine: LPWSAOVERLAPPED_COMPLETION_ROUTINE = with_routine.then_some(routine as _);
        let raw = OVERLAPPED {
            hEvent: HANDLE(std::ptr::without_provenance_mut(event)),
            ..OVERLAPPED::default()
        };
        let id = WSATHREADID { ThreadHandle: HANDLE(std::ptr::without_provenance_mut(handle)), Reserved: reserved };
        let (_o, overlapped) = Block::at(overlapped_place, &[raw]);
        let (_t, thread) = Block::at(thread_place, &[id]);
        // SAFETY: non-null, aligned pointers are the blocks', readable as their types.
        let decoded = unsafe { decode_overlapped(overlapped, routine, thread) };
        let expected: Result<Option<(usize, bool, Option<ThreadId>)>, WsaError> = match overlapped_place {
            Place::Null => Ok(None),
            Place::Misaligned => Err(EFAULT),
            Place::Valid => match thread_place {
                Place::Misaligned => Err(EFAULT),
                Place::Null if with_routine => Err(EFAULT),
                Place::Null => Ok(Some((event, false, None))),
                Place::Valid => Ok(Some((event, with_routine, Some(ThreadId { handle, reserved })))),
            },
        };
        if thread_place == Place::Valid {
            // The caller reuses its WSATHREADID at once.
            // SAFETY: `thread` is the block's, aligned and writable.
            unsafe { thread.write(WSATHREADID::default()) };
        }
        let got = decoded.map(|o| o.map(|o| {
            assert_eq!(o.address(), overlapped.addr());
            (o.event(), o.routine().is_some(), o.thread())
        }));
        prop_assert_eq!(got, expected);
    }

    /// `WSAPROTOCOL_INFOW`: `ChainLen` in 0..=7 (0 layered, 1 base, more a chain of that many
    /// entries) and a terminated `szProtocol`, else WSAEINVAL; the flags are kept bit for bit
    /// and the structure unmodified.
    #[test]
    fn protocol_info_decodes_as_documented(
        chain_len in prop_oneof![4 => -1i32..9, 1 => any::<i32>()],
        entries in any::<[u32; 7]>(),
        flags in any::<u32>(),
        name in vec(1u16..=u16::MAX, 0..300),
        place in place(),
    ) {
        let mut raw = WSAPROTOCOL_INFOW {
            dwServiceFlags1: flags,
            ..WSAPROTOCOL_INFOW::default()
        };
        raw.ProtocolChain.ChainLen = chain_len;
        raw.ProtocolChain.ChainEntries = entries;
        let terminated = name.len() < PROTOCOL_NAME_UNITS;
        for (out, unit) in raw.szProtocol.iter_mut().zip(&name) {
            *out = *unit;
        }
        let (_block, ptr) = Block::at(place, &[raw]);
        // SAFETY: a non-null, aligned `ptr` is the block's, readable as the structure.
        let decoded = unsafe { decode_protocol_info(ptr) };
        let expected_chain = match chain_len {
            0 => Some(ProtocolChain::Layered),
            1 => Some(ProtocolChain::Base),
            2..=7 => Some(ProtocolChain::Chain(entries[..chain_len as usize].to_vec())),
            _ => None,
        };
        match (place, expected_chain, terminated) {
            (Place::Null | Place::Misaligned, _, _) => prop_assert_eq!(decoded, Err(EFAULT)),
            (Place::Valid, Some(chain), true) => {
                let info = decoded.unwrap();
                prop_assert_eq!(info.chain(), &chain);
                prop_assert_eq!(info.service_flags().bits(), flags);
                prop_assert_eq!(info.name(), String::from_utf16_lossy(&name));
                prop_assert_eq!(info.raw(), &raw);
            }
            (Place::Valid, _, _) => prop_assert_eq!(decoded, Err(EINVAL)),
        }
    }

    /// `lpErrno`: usable only when non-null and aligned; `set` writes exactly the code.
    #[test]
    fn errno_is_written_only_through_a_usable_pointer(place in place(), code in any::<i32>()) {
        let (block, ptr) = Block::at(place, &[0x5a5a_5a5ai32]);
        let errno = Errno::new(ptr);
        prop_assert_eq!(errno.is_ok(), place == Place::Valid);
        if let Ok(errno) = errno {
            errno.set(WsaError::from_raw(code));
            // SAFETY: valid and aligned.
            prop_assert_eq!(unsafe { ptr.read() }, code);
        }
        drop(block);
    }

    /// Negotiation: below the lowest is WSAVERNOTSUPPORTED, else min(requested, highest),
    /// ordered by (major, minor), not by the raw WORD.
    #[test]
    fn negotiation_is_min_of_request_and_highest(
        requested in any::<[u8; 2]>(),
        a in any::<[u8; 2]>(),
        b in any::<[u8; 2]>(),
    ) {
        let key = |v: [u8; 2]| (v[0], v[1]);
        let (low, high) = if key(a) <= key(b) { (a, b) } else { (b, a) };
        let version = |v: [u8; 2]| Version::new(v[0], v[1]);
        let got = negotiate(version(requested), version(low), version(high));
        let expected = if key(requested) < key(low) {
            Err(WsaError::WSAVERNOTSUPPORTED)
        } else if key(requested) <= key(high) {
            Ok(version(requested))
        } else {
            Ok(version(high))
        };
        prop_assert_eq!(got, expected);
    }

    /// The in/out length writer: NULL or misaligned length pointers, negative or short
    /// capacities are WSAEFAULT (with the length needed written only when asked), and nothing
    /// is written past the capacity.
    #[test]
    fn sized_values_are_written_within_the_stated_length(
        value in vec(any::<u8>(), 0..40),
        capacity in prop_oneof![4 => 0i32..48, 1 => i32::MIN..0],
        len_place in place(),
        out_null in prop::bool::weighted(0.1),
        report in any::<bool>(),
    ) {
        let mut out = vec![0xEEu8; 64];
        let out_ptr = if out_null { std::ptr::null_mut() } else { out.as_mut_ptr() };
        let (_block, len) = Block::at(len_place, &[capacity]);
        // SAFETY: `out` is writable for 64 >= capacity bytes; a usable `len` is the block's.
        let written = unsafe { write_sized(out_ptr, len, &value, report) };
        let fits = capacity >= 0
            && value.len() <= capacity as usize
            && (!out_null || value.is_empty());
        let expected = if len_place != Place::Valid || capacity < 0 || !fits { Err(EFAULT) } else { Ok(()) };
        prop_assert_eq!(written, expected);
        if len_place == Place::Valid {
            // SAFETY: valid and aligned.
            let after = unsafe { len.read() };
            let expected_len = match written {
                Ok(()) => value.len() as i32,
                Err(_) if report && capacity >= 0 => value.len() as i32,
                Err(_) => capacity,
            };
            prop_assert_eq!(after, expected_len);
        }
        if written.is_ok() && !out_null {
            prop_assert_eq!(&out[..value.len()], &value[..]);
        }
        let clean_from = if written.is_ok() { value.len() } else { 0 };
        prop_assert!(out[clean_from..].iter().all(|&b| b == 0xEE), "written past the value");
    }

    /// `fd_set`: NULL is none, a count above FD_SETSIZE is WSAEINVAL, else the first
    /// `fd_count` sockets; the write-back keeps only those asked about that are ready.
    #[test]
    fn fd_sets_decode_and_write_back(
        count in prop_oneof![4 => 0u32..=64, 1 => 65u32..=u32::MAX],
        sockets in any::<[u16; 64]>(),
        ready_mask in any::<u64>(),
        place in place(),
    ) {
        let mut raw = FD_SET { fd_count: count, ..FD_SET::default() };
        for (out, s) in raw.fd_array.iter_mut().zip(sockets) {
            *out = SOCKET(usize::from(s));
        }
        let (_block, ptr) = Block::at(place, &[raw]);
        // SAFETY: a non-null, aligned `ptr` is the block's, readable and writable.
        let decoded = unsafe { decode_fd_set(ptr) };
        match place {
            Place::Null => prop_assert_eq!(decoded, Ok(None)),
            Place::Misaligned => prop_assert_eq!(decoded, Err(EFAULT)),
            Place::Valid if count > 64 => prop_assert_eq!(decoded, Err(EINVAL)),
            Place::Valid => {
                let asked = decoded.unwrap().unwrap();
                let model: Vec<Socket> = sockets[..count as usize].iter().map(|&s| Socket::from_raw(usize::from(s))).collect();
                prop_assert_eq!(&asked, &model);
                let ready: Vec<Socket> = model.iter().enumerate().filter(|(i, _)| ready_mask >> i & 1 == 1).map(|(_, s)| *s).collect();
                // SAFETY: decoded above; the block is writable.
                unsafe { write_fd_set(ptr, &asked, &ready) };
                // SAFETY: as above.
                let back = unsafe { decode_fd_set(ptr) }.unwrap().unwrap();
                let expected: Vec<Socket> = asked.iter().filter(|s| ready.contains(s)).copied().collect();
                prop_assert_eq!(back, expected);
            }
        }
    }
}

#[test]
fn linger_round_trips_through_its_bytes() {
    let linger = Linger {
        on: true,
        seconds: 0x1234,
    };
    let bytes = linger.to_bytes();
    // SAFETY: `bytes` is readable for its length.
    let decoded = unsafe { decode_sock_opt(SOL_SOCKET, SO_LINGER, bytes.as_ptr(), 4) };
    assert_eq!(decoded, Ok(SockOpt::Linger(linger)));
}
