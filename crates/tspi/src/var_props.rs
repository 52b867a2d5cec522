//! Property tests of the writer of TAPI's variable-sized structures (R-TSP-16): any
//! `dwTotalSize`, any fixed part, any members and payloads. A model lays the structure out
//! from the rules in the module documentation; the writer must produce exactly its bytes,
//! leave every other byte as TAPI left it, and never write past `dwTotalSize`.
//!
//! Failure persistence is off: a case a property finds becomes a plain unit test here.

use super::*;
use proptest::collection::vec;
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

/// A variable part: bytes, or a string (its UTF-16 with a NUL).
#[derive(Clone, Debug)]
enum Payload {
    Bytes(Vec<u8>),
    Text(String),
}

impl Payload {
    /// What lands in the buffer; empty payloads are not written at all.
    fn encoded(&self) -> Vec<u8> {
        match self {
            Self::Bytes(bytes) => bytes.clone(),
            Self::Text(text) if text.is_empty() => Vec::new(),
            Self::Text(text) => text
                .encode_utf16()
                .chain([0])
                .flat_map(u16::to_le_bytes)
                .collect(),
        }
    }
}

/// One call on the writer. Members are DWORD slots (`12 + 4 * slot`), each used once.
#[derive(Clone, Debug)]
enum Op {
    Dword(u32),
    Part(Payload),
}

#[derive(Clone, Debug)]
struct Case {
    /// `dwTotalSize`: the caller's buffer length.
    total: usize,
    /// The fixed part of the negotiated version.
    fixed: usize,
    ops: Vec<Op>,
    /// What TAPI left in the buffer.
    fill: u8,
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        vec(any::<u8>(), 0..24).prop_map(Payload::Bytes),
        vec(any::<char>(), 0..8).prop_map(|chars| Payload::Text(String::from_iter(chars))),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let op = prop_oneof![
        any::<u32>().prop_map(Op::Dword),
        payload().prop_map(Op::Part),
    ];
    (0usize..160, 0usize..72, vec(op, 0..8), any::<u8>()).prop_map(|(total, fixed, ops, fill)| {
        Case {
            total,
            fixed,
            ops,
            fill,
        }
    })
}

/// Slot `n`'s member offset.
fn member(slot: usize) -> usize {
    12 + 4 * slot
}

/// The bytes the rules give: `Err` when the buffer is refused, else the buffer and the
/// returned needed size.
fn model(case: &Case, original: &[u8]) -> Result<(Vec<u8>, usize), LineErr> {
    if case.total < case.fixed || case.fixed < 12 {
        return Err(LineErr::LINEERR_STRUCTURETOOSMALL);
    }
    let mut bytes = original.to_vec();
    let dword = |bytes: &mut Vec<u8>, at: usize, value: u32| {
        bytes[at..at + 4].copy_from_slice(&value.to_le_bytes())
    };
    let inside = |at: usize| at + 4 <= case.fixed;
    let mut slot = 0;
    let mut parts = Vec::new();
    for op in &case.ops {
        match op {
            Op::Dword(value) => {
                let at = member(slot);
                slot += 1;
                if inside(at) {
                    dword(&mut bytes, at, *value);
                }
            }
            Op::Part(payload) => {
                let (size, offset) = (member(slot), member(slot + 1));
                slot += 2;
                let data = payload.encoded();
                if !data.is_empty() && inside(size) && inside(offset) {
                    parts.push((size, offset, data));
                }
            }
        }
    }
    // Each part starts at the next DWORD boundary after the previous one.
    let mut end = case.fixed;
    let mut placed = Vec::new();
    for (size, offset, data) in parts {
        let at = end.next_multiple_of(4);
        end = at + data.len();
        placed.push((size, offset, at, data));
    }
    let needed = end;
    let fits = needed <= case.total;
    for (size, offset, at, data) in placed {
        if fits {
            bytes[at..at + data.len()].copy_from_slice(&data);
            dword(&mut bytes, size, data.len() as u32);
            dword(&mut bytes, offset, at as u32);
        } else {
            dword(&mut bytes, size, 0);
            dword(&mut bytes, offset, 0);
        }
    }
    dword(&mut bytes, 4, needed as u32);
    dword(&mut bytes, 8, if fits { needed } else { case.fixed } as u32);
    Ok((bytes, needed))
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn the_writer_writes_exactly_the_layout_and_nothing_past_dw_total_size(case in case()) {
        // The caller's structure, then memory that is not the caller's.
        let mut memory = vec![case.fill; case.total + 32];
        if case.total >= 4 {
            memory[..4].copy_from_slice(&(case.total as u32).to_le_bytes());
        }
        let original = memory[..case.total].to_vec();
        let (buffer, beyond) = memory.split_at_mut(case.total);
        let written = VarWriter::new(buffer, case.fixed).map(|mut writer| {
            let mut slot = 0;
            for op in &case.ops {
                match op {
                    Op::Dword(value) => {
                        writer.dword(member(slot), *value);
                        slot += 1;
                    }
                    Op::Part(Payload::Bytes(data)) => {
                        writer.bytes(member(slot), member(slot + 1), data);
                        slot += 2;
                    }
                    Op::Part(Payload::Text(text)) => {
                        writer.string(member(slot), member(slot + 1), text);
                        slot += 2;
                    }
                }
            }
            writer.finish()
        });
        prop_assert!(beyond.iter().all(|&b| b == case.fill), "written past dwTotalSize");
        match model(&case, &original) {
            Err(error) => {
                prop_assert_eq!(written, Err(error));
                prop_assert_eq!(&memory[..case.total], &original[..], "a refused buffer was written");
            }
            Ok((expected, needed)) => {
                prop_assert_eq!(written, Ok(needed));
                prop_assert_eq!(&memory[..4], &original[..4], "dwTotalSize is TAPI's");
                prop_assert_eq!(&memory[..case.total], &expected[..]);
                let used = read_dword(&memory, 8).unwrap() as usize;
                prop_assert!(used <= case.total && used <= needed);
            }
        }
    }

    /// `read_string` / `read_dword` over arbitrary bytes and members: `None` or a value, never
    /// a read outside the bytes.
    #[test]
    fn the_readers_stay_inside_the_bytes(
        bytes in vec(any::<u8>(), 0..64),
        size in 0usize..72,
        offset in 0usize..72,
    ) {
        let dword = read_dword(&bytes, size);
        prop_assert_eq!(dword.is_some(), size + 4 <= bytes.len());
        let _ = read_string(&bytes, size, offset);
    }
}
