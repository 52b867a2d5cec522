//! Property tests of the host buffers the exports take: the caller's variable-sized structure
//! (`var_bytes`: `dwTotalSize` read through a checked pointer) and the user-user information
//! of `TSPI_lineDrop` / `TSPI_lineAnswer` (`with_uui`). Memory is the test's own; every
//! non-null pointer is valid for what the structure or the size states, as TAPI guarantees.

use super::*;
use crate::var::props::config;
use proptest::collection::vec;
use proptest::prelude::*;

#[derive(Clone, Copy, Debug)]
enum Place {
    Null,
    /// 1 to 3 bytes past an aligned address.
    Misaligned(usize),
    Valid,
}

fn place() -> impl Strategy<Value = Place> {
    prop_oneof![
        1 => Just(Place::Null),
        1 => (1usize..4).prop_map(Place::Misaligned),
        5 => Just(Place::Valid),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    /// NULL or misaligned → LINEERR_INVALPOINTER; `dwTotalSize` below the three header
    /// DWORDs → LINEERR_STRUCTURETOOSMALL; otherwise exactly `dwTotalSize` bytes of the
    /// caller's structure, nothing written.
    #[test]
    fn var_bytes_are_the_callers_structure_exactly(
        place in place(),
        total in prop_oneof![0u32..16, 0u32..600],
        fill in any::<u8>(),
    ) {
        let mut words = vec![u32::from_ne_bytes([fill; 4]); total as usize / 4 + 2];
        words[0] = total;
        let base: *mut u32 = match place {
            Place::Null => std::ptr::null_mut(),
            // dwTotalSize at an odd address (the read is refused before it happens).
            Place::Misaligned(at) => words.as_mut_ptr().cast::<u8>().wrapping_add(at).cast(),
            Place::Valid => words.as_mut_ptr(),
        };
        let before = words.clone();
        // SAFETY: a non-null, aligned `base` is `words`, writable for `total` bytes or more.
        let bytes = unsafe { var_bytes(base) }.map(|bytes| (bytes.as_ptr().addr(), bytes.len()));
        let expected = match place {
            Place::Null | Place::Misaligned(_) => Err(LineErr::LINEERR_INVALPOINTER),
            Place::Valid if total < 12 => Err(LineErr::LINEERR_STRUCTURETOOSMALL),
            Place::Valid => Ok((base.addr(), total as usize)),
        };
        prop_assert_eq!(bytes, expected);
        prop_assert_eq!(words, before, "reading wrote");
    }

    /// NULL or a zero size is no information; otherwise exactly `size` bytes at the pointer,
    /// and the request's own return value comes back.
    #[test]
    fn user_user_info_is_exactly_the_stated_bytes(
        data in vec(any::<u8>(), 0..64),
        null in any::<bool>(),
        size in any::<u32>(),
        ret in any::<i32>(),
    ) {
        // Non-null only for a size within the data (the host's contract).
        let size = if null { size } else { size % (data.len() as u32 + 1) };
        let pointer = if null { std::ptr::null() } else { data.as_ptr() };
        let expected: &[u8] = if null { &[] } else { &data[..size as usize] };
        let mut seen = None;
        // SAFETY: a non-null pointer is `data`, readable for `size` bytes.
        let returned = unsafe {
            with_uui(PCSTR(pointer), size, |info| {
                seen = Some(info.to_vec());
                ret
            })
        };
        prop_assert_eq!(returned, ret);
        prop_assert_eq!(seen.as_deref(), Some(expected));
    }
}
