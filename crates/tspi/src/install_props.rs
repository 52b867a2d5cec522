//! Property tests of the `LINEPROVIDERLIST` decoder: every list laid out as the structure allows
//! (names in any order, with gaps, an entry array with room to spare, bytes past `dwUsedSize`)
//! decodes to its entries; a `dwUsedSize` that cuts anything off is an error; and no input makes
//! it read outside `dwUsedSize` or panic.

use super::*;
use crate::var::props::config;
use proptest::collection::vec;
use proptest::prelude::*;

const HEADER: usize = size_of::<LIST>();

/// A list's layout: the entries, the order their names are written in, a gap before each name,
/// spare bytes after the entry array, bytes after `dwUsedSize`.
#[derive(Clone, Debug)]
struct Layout {
    entries: Vec<(u32, String)>,
    order: Vec<usize>,
    gaps: Vec<usize>,
    spare: usize,
    tail: usize,
}

fn put(memory: &mut [u8], at: usize, value: usize) {
    memory[at..at + 4].copy_from_slice(&(value as u32).to_ne_bytes());
}

impl Layout {
    /// The memory, and the end of the entry array and of every name.
    fn write(&self) -> (Vec<u8>, Vec<usize>) {
        let list_size = self.entries.len() * size_of::<ENTRY>() + self.spare;
        let mut memory = vec![0xAA; HEADER + list_size];
        let mut ends = vec![memory.len()];
        for (&n, &gap) in self.order.iter().zip(&self.gaps) {
            let (id, name) = &self.entries[n];
            memory.resize(memory.len() + gap, 0xCC);
            let name: Vec<u8> = name
                .encode_utf16()
                .chain([0])
                .flat_map(u16::to_ne_bytes)
                .collect();
            let entry = HEADER + n * size_of::<ENTRY>();
            let at = memory.len();
            put(&mut memory, entry, *id as usize);
            put(&mut memory, entry + 4, name.len());
            put(&mut memory, entry + 8, at);
            memory.extend(name);
            ends.push(memory.len());
        }
        let used = memory.len();
        memory.resize(used + self.tail, 0xEE);
        let total = memory.len();
        for (at, value) in [
            (0, total),
            (4, used),
            (8, used),
            (12, self.entries.len()),
            (16, list_size),
            (20, HEADER),
        ] {
            put(&mut memory, at, value);
        }
        (memory, ends)
    }
}

fn layout() -> impl Strategy<Value = Layout> {
    vec((any::<u32>(), "[^\u{0}]{0,24}"), 0..8).prop_flat_map(|entries| {
        let n = entries.len();
        (
            Just(entries),
            Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
            vec(0usize..7, n),
            0usize..13,
            0usize..9,
        )
            .prop_map(|(entries, order, gaps, spare, tail)| Layout {
                entries,
                order,
                gaps,
                spare,
                tail,
            })
    })
}

proptest! {
    #![proptest_config(config(512))]

    /// Every valid layout decodes to its entries, in entry order.
    #[test]
    fn a_list_decodes_to_its_entries(layout in layout()) {
        let (memory, _) = layout.write();
        let decoded = decode_provider_list(&memory).unwrap();
        let expected: Vec<ProviderEntry> = layout
            .entries
            .iter()
            .map(|(id, name)| ProviderEntry { id: *id, file_name: name.clone() })
            .collect();
        prop_assert_eq!(decoded, expected);
    }

    /// A `dwUsedSize` short of the entry array's end or of any name's end is an error, and so
    /// is one past the memory: no entry is read from bytes TAPI did not say it wrote.
    #[test]
    fn a_used_size_that_cuts_anything_off_is_an_error(
        layout in layout(),
        cut in any::<prop::sample::Index>(),
        past in 1usize..64,
    ) {
        let (mut memory, ends) = layout.write();
        let end = ends.iter().copied().max().unwrap();
        let used = cut.index(end);
        put(&mut memory, 8, used);
        prop_assert!(decode_provider_list(&memory).is_err(), "dwUsedSize {used} of {end}");
        let beyond = memory.len() + past;
        put(&mut memory, 8, beyond);
        prop_assert!(decode_provider_list(&memory).is_err());
    }

    /// Any bytes: an error or entries, never a panic; what is decoded fits in `dwUsedSize`.
    #[test]
    fn any_bytes_decode_or_fail_within_the_used_size(
        mut memory in vec(any::<u8>(), 0..200),
        used in 0usize..220,
        count in 0usize..20,
        list_size in 0usize..260,
        list_offset in 0usize..220,
    ) {
        if memory.len() >= HEADER {
            put(&mut memory, 8, used);
            put(&mut memory, 12, count);
            put(&mut memory, 16, list_size);
            put(&mut memory, 20, list_offset);
        }
        if let Ok(entries) = decode_provider_list(&memory) {
            prop_assert_eq!(entries.len(), count);
            prop_assert!(used <= memory.len());
            prop_assert!(list_offset + count * size_of::<ENTRY>() <= used);
            for entry in entries {
                prop_assert!(entry.file_name.encode_utf16().count() <= used / 2);
            }
        }
    }
}

#[test]
fn an_entry_is_its_file_by_the_last_path_component_in_any_case() {
    let entry = |name: &str| ProviderEntry {
        id: 1,
        file_name: name.into(),
    };
    assert!(entry("LineSimulator.tsp").is_file("linesimulator.TSP"));
    assert!(entry(r"C:\Windows\system32\LINESIMULATOR.tsp").is_file("LineSimulator.tsp"));
    assert!(entry("x/y/LineSimulator.tsp").is_file("LineSimulator.tsp"));
    assert!(!entry("LineSimulator.tsp.old").is_file("LineSimulator.tsp"));
    assert!(!entry(r"C:\LineSimulator.tsp\").is_file("LineSimulator.tsp"));
    assert!(!entry("unimdm.tsp").is_file("LineSimulator.tsp"));
}

#[test]
fn a_short_header_is_an_error() {
    assert!(decode_provider_list(&[]).is_err());
    assert!(decode_provider_list(&[0; 11]).is_err());
    let mut memory = vec![0u8; HEADER];
    put(&mut memory, 8, HEADER);
    assert_eq!(decode_provider_list(&memory).unwrap(), vec![]);
    put(&mut memory, 8, HEADER - 1);
    assert!(decode_provider_list(&memory).is_err());
}
