//! Host-visible handle values, and why a value from the host is not one.
//!
//! Hosts hold provider objects through opaque values (an NSPv2 lookup `HANDLE`, a TAPI
//! `HDRVCALL`, a WSP socket context). The [`LeaseTable`](crate::LeaseTable) issues those values
//! and maps them back; this module is their encoding:
//!
//! - a handle is an integer, decoded and bounds-checked, never dereferenced: a forged value is
//!   rejected, not followed;
//! - it carries its slot's generation, bumped when the handle is removed: a stale or
//!   double-freed handle is told apart from a live one even after the slot is reused;
//! - each table stamps its handles with its own tag, so a handle of one table (a line) is not
//!   accepted by another (a call).

use std::num::NonZeroUsize;

/// A handle as the host sees it: never zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Handle(NonZeroUsize);

impl Handle {
    /// The value to give the host.
    pub fn raw(self) -> usize {
        self.0.get()
    }
}

/// Why a value from the host is not a live handle of this table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandleError {
    /// The value is zero (NULL).
    Null,
    /// The handle was issued by this table but has been removed since (stale or double free).
    Stale {
        /// The rejected value.
        raw: usize,
    },
    /// The value was never issued by this table: forged, corrupted or of another kind.
    Unknown {
        /// The rejected value.
        raw: usize,
    },
}

impl std::fmt::Display for HandleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Null => f.write_str("null handle"),
            Self::Stale { raw } => write!(f, "stale handle {raw:#x} (already closed)"),
            Self::Unknown { raw } => write!(f, "unknown handle {raw:#x}"),
        }
    }
}

impl std::error::Error for HandleError {}

/// The table cannot issue another handle (every index is in use or retired).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableFull;

impl std::fmt::Display for TableFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("handle table full")
    }
}

impl std::error::Error for TableFull {}

/// Bit layout of a handle: `tag | generation | index + 1`, index in the low bits so the value is
/// never zero.
#[cfg(target_pointer_width = "64")]
mod layout {
    pub const INDEX_BITS: u32 = 32;
    pub const GENERATION_BITS: u32 = 24;
    pub const TAG_BITS: u32 = 8;
}
#[cfg(not(target_pointer_width = "64"))]
mod layout {
    pub const INDEX_BITS: u32 = 16;
    pub const GENERATION_BITS: u32 = 12;
    pub const TAG_BITS: u32 = 4;
}
use layout::{GENERATION_BITS, INDEX_BITS, TAG_BITS};

const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;
const GENERATION_MASK: usize = (1 << GENERATION_BITS) - 1;
const TAG_MASK: usize = (1 << TAG_BITS) - 1;
/// Largest index: `index + 1` must fit the index field.
const MAX_INDEX: usize = INDEX_MASK - 1;

/// Tags are handed out round-robin over `1..=TAG_MASK` so tables made one after the other differ.
static NEXT_TAG: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The values of one table: `tag | generation | index + 1`. Shared by the table kinds of this
/// crate.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Codec {
    tag: usize,
}

impl Codec {
    /// Largest index a handle can carry.
    pub(crate) const MAX_INDEX: usize = MAX_INDEX;
    /// Largest generation a handle can carry.
    pub(crate) const MAX_GENERATION: usize = GENERATION_MASK;

    /// A codec with the next tag.
    pub(crate) fn new() -> Self {
        let tag = NEXT_TAG.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % TAG_MASK + 1;
        Self { tag }
    }

    pub(crate) fn encode(self, index: usize, generation: usize) -> Handle {
        let raw =
            (self.tag << (INDEX_BITS + GENERATION_BITS)) | (generation << INDEX_BITS) | (index + 1);
        Handle(NonZeroUsize::new(raw).expect("index + 1 is never zero"))
    }

    /// Splits a host value into (index, generation), or rejects it without touching any slot.
    pub(crate) fn decode(self, raw: usize) -> Result<(usize, usize), HandleError> {
        if raw == 0 {
            return Err(HandleError::Null);
        }
        let tag = (raw >> (INDEX_BITS + GENERATION_BITS)) & TAG_MASK;
        let high = raw
            .checked_shr(INDEX_BITS + GENERATION_BITS + TAG_BITS)
            .unwrap_or(0);
        let index_plus_one = raw & INDEX_MASK;
        if tag != self.tag || high != 0 || index_plus_one == 0 {
            return Err(HandleError::Unknown { raw });
        }
        Ok((index_plus_one - 1, (raw >> INDEX_BITS) & GENERATION_MASK))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn values_decode_to_what_was_encoded_and_never_zero() {
        let codec = Codec::new();
        for (index, generation) in [(0, 1), (1, 7), (Codec::MAX_INDEX, Codec::MAX_GENERATION)] {
            let handle = codec.encode(index, generation);
            assert_ne!(handle.raw(), 0);
            assert_eq!(codec.decode(handle.raw()), Ok((index, generation)));
        }
    }

    #[test]
    fn null_foreign_and_forged_values_are_refused_without_lookup() {
        let (codec, other) = (Codec::new(), Codec::new());
        let handle = codec.encode(3, 2);
        assert_eq!(codec.decode(0), Err(HandleError::Null));
        let foreign = other.encode(3, 2).raw();
        assert_eq!(
            codec.decode(foreign),
            Err(HandleError::Unknown { raw: foreign })
        );
        // Bits above the tag, or an index field of zero, were never issued.
        let high = handle.raw() | (1 << (usize::BITS - 1));
        assert_eq!(codec.decode(high), Err(HandleError::Unknown { raw: high }));
        let no_index = handle.raw() & !INDEX_MASK;
        assert_eq!(
            codec.decode(no_index),
            Err(HandleError::Unknown { raw: no_index })
        );
    }
}
