//! Generation-checked handle tables.
//!
//! Hosts hold provider objects through opaque values (an NSPv2 lookup `HANDLE`, a TAPI
//! `HDRVCALL`, a WSP socket context). A [`HandleTable`] issues those values and maps them back:
//!
//! - a handle is an integer, decoded and bounds-checked, never dereferenced: a forged value is
//!   rejected, not followed;
//! - every slot carries a generation, bumped when its handle is removed: a stale or
//!   double-freed handle is told apart from a live one even after the slot is reused, and a slot
//!   whose generation would wrap is retired rather than reused;
//! - each table stamps its handles with its own tag, so a handle of one table (a line) is not
//!   accepted by another (a call);
//! - lookups return an `Arc`: an object stays alive while a call that got it is still running,
//!   even if the host removes the handle on another thread meanwhile. It is freed once, when the
//!   last of them lets go.
//!
//! Lookup, insertion and removal are O(1) (removal pushes the slot on a free list).

use crate::sync::{Arc, AtomicUsize, Ordering, RwLock};
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

struct Entry<T: ?Sized> {
    /// Generation of the handle currently (or next) issued for this slot.
    generation: usize,
    value: Option<Arc<T>>,
}

struct Slots<T: ?Sized> {
    entries: Vec<Entry<T>>,
    free: Vec<usize>,
}

/// Maps host-visible handles to shared objects. See the module documentation.
pub struct HandleTable<T: ?Sized> {
    codec: Codec,
    slots: RwLock<Slots<T>>,
    live: AtomicUsize,
}

impl<T: ?Sized> Default for HandleTable<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: ?Sized> HandleTable<T> {
    /// An empty table with its own tag.
    pub fn new() -> Self {
        Self {
            codec: Codec::new(),
            slots: RwLock::new(Slots {
                entries: Vec::new(),
                free: Vec::new(),
            }),
            live: AtomicUsize::new(0),
        }
    }

    fn encode(&self, index: usize, generation: usize) -> Handle {
        self.codec.encode(index, generation)
    }

    fn decode(&self, raw: usize) -> Result<(usize, usize), HandleError> {
        self.codec.decode(raw)
    }

    /// Stores `value` and returns its new handle.
    pub fn insert(&self, value: T) -> Result<Handle, TableFull>
    where
        T: Sized,
    {
        self.insert_arc(Arc::new(value))
    }

    /// Stores an already shared value and returns its new handle.
    pub fn insert_arc(&self, value: Arc<T>) -> Result<Handle, TableFull> {
        let mut slots = self.write();
        let index = match slots.free.pop() {
            Some(index) => index,
            None => {
                let index = slots.entries.len();
                if index > MAX_INDEX {
                    return Err(TableFull);
                }
                slots.entries.push(Entry {
                    generation: 1,
                    value: None,
                });
                index
            }
        };
        let entry = &mut slots.entries[index];
        entry.value = Some(value);
        let handle = self.encode(index, entry.generation);
        self.live.fetch_add(1, Ordering::Relaxed);
        Ok(handle)
    }

    /// The object behind a host value, kept alive for as long as the caller holds the `Arc`.
    pub fn get(&self, raw: usize) -> Result<Arc<T>, HandleError> {
        let (index, generation) = self.decode(raw)?;
        let slots = self.read();
        let entry = slots
            .entries
            .get(index)
            .ok_or(HandleError::Unknown { raw })?;
        match &entry.value {
            Some(value) if entry.generation == generation => Ok(Arc::clone(value)),
            _ => Err(Self::classify(raw, entry.generation, generation)),
        }
    }

    /// Removes a handle; later lookups of it fail with [`HandleError::Stale`]. Returns the object,
    /// which is freed when the last holder (this one, or a call still running) drops it.
    pub fn remove(&self, raw: usize) -> Result<Arc<T>, HandleError> {
        let (index, generation) = self.decode(raw)?;
        let mut slots = self.write();
        let entry = slots
            .entries
            .get_mut(index)
            .ok_or(HandleError::Unknown { raw })?;
        if entry.generation != generation || entry.value.is_none() {
            return Err(Self::classify(raw, entry.generation, generation));
        }
        let value = entry.value.take().expect("checked above");
        entry.generation += 1;
        if entry.generation <= GENERATION_MASK {
            slots.free.push(index);
        } // else: retired, so no handle value is ever issued twice.
        self.live.fetch_sub(1, Ordering::Relaxed);
        Ok(value)
    }

    fn classify(raw: usize, current: usize, presented: usize) -> HandleError {
        if presented < current {
            HandleError::Stale { raw }
        } else {
            HandleError::Unknown { raw }
        }
    }

    /// Removes every handle (e.g. a final cleanup) and returns the objects.
    pub fn drain(&self) -> Vec<Arc<T>> {
        let mut slots = self.write();
        let Slots { entries, free } = &mut *slots;
        let mut drained = Vec::new();
        for (index, entry) in entries.iter_mut().enumerate() {
            if let Some(value) = entry.value.take() {
                drained.push(value);
                entry.generation += 1;
                if entry.generation <= GENERATION_MASK {
                    free.push(index);
                }
            }
        }
        self.live.fetch_sub(drained.len(), Ordering::Relaxed);
        drained
    }

    /// The live handles and their objects, at one instant.
    pub fn snapshot(&self) -> Vec<(Handle, Arc<T>)> {
        let slots = self.read();
        slots
            .entries
            .iter()
            .enumerate()
            .filter_map(|(index, entry)| {
                let value = entry.value.as_ref()?;
                Some((self.encode(index, entry.generation), Arc::clone(value)))
            })
            .collect()
    }

    /// How many handles are live.
    pub fn len(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// Whether no handle is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> impl std::ops::Deref<Target = Slots<T>> + '_ {
        self.slots
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> impl std::ops::DerefMut<Target = Slots<T>> + '_ {
        self.slots
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    #[cfg(all(test, not(loom)))]
    fn set_generation_for_test(&self, raw: usize, generation: usize) {
        let (index, _) = self.decode(raw).unwrap();
        self.write().entries[index].generation = generation;
    }
}

impl<T: ?Sized> std::fmt::Debug for HandleTable<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandleTable")
            .field("tag", &self.codec.tag)
            .field("live", &self.len())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn live_handles_resolve_to_their_objects() {
        let table = HandleTable::new();
        let a = table.insert("a").unwrap();
        let b = table.insert("b").unwrap();
        assert_ne!(a, b);
        assert_eq!(*table.get(a.raw()).unwrap(), "a");
        assert_eq!(*table.get(b.raw()).unwrap(), "b");
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn removed_handles_are_stale_even_after_the_slot_is_reused() {
        let table = HandleTable::new();
        let old = table.insert(1).unwrap();
        assert_eq!(*table.remove(old.raw()).unwrap(), 1);
        let new = table.insert(2).unwrap();
        assert_ne!(old, new, "a reused slot gets a new generation");
        assert_eq!(
            table.get(old.raw()),
            Err(HandleError::Stale { raw: old.raw() })
        );
        assert_eq!(
            table.remove(old.raw()),
            Err(HandleError::Stale { raw: old.raw() })
        );
        assert_eq!(*table.get(new.raw()).unwrap(), 2);
        assert!(!table.is_empty() && table.len() == 1);
    }

    #[test]
    fn double_free_is_rejected() {
        let table = HandleTable::new();
        let h = table.insert(()).unwrap();
        assert!(table.remove(h.raw()).is_ok());
        assert_eq!(
            table.remove(h.raw()),
            Err(HandleError::Stale { raw: h.raw() })
        );
        assert!(table.is_empty());
    }

    #[test]
    fn forged_and_foreign_values_are_rejected_without_lookup() {
        let table = HandleTable::<u8>::new();
        let other = HandleTable::<u8>::new();
        let h = table.insert(9).unwrap();
        let foreign = other.insert(9).unwrap();
        assert_eq!(table.get(0), Err(HandleError::Null));
        for raw in [
            foreign.raw(),
            h.raw() + 1,
            h.raw() ^ (1 << INDEX_BITS << 3),
            usize::MAX,
            0x1000,
            h.raw() & !INDEX_MASK,
        ] {
            assert_eq!(
                table.get(raw),
                Err(HandleError::Unknown { raw }),
                "{raw:#x}"
            );
        }
    }

    #[test]
    fn a_removed_object_lives_until_the_running_call_lets_go() {
        let table = HandleTable::new();
        let h = table.insert(String::from("lookup")).unwrap();
        let in_flight = table.get(h.raw()).unwrap();
        let removed = table.remove(h.raw()).unwrap();
        drop(removed);
        assert_eq!(in_flight.as_str(), "lookup");
        assert_eq!(Arc::strong_count(&in_flight), 1);
    }

    #[test]
    fn slots_whose_generation_would_wrap_are_retired() {
        let table = HandleTable::new();
        let h = table.insert(0).unwrap();
        table.set_generation_for_test(h.raw(), GENERATION_MASK);
        let last = table.encode(table.decode(h.raw()).unwrap().0, GENERATION_MASK);
        assert!(table.remove(last.raw()).is_ok());
        let next = table.insert(1).unwrap();
        assert_ne!(
            table.decode(next.raw()).unwrap().0,
            table.decode(last.raw()).unwrap().0,
            "the retired slot is not reused"
        );
    }

    #[test]
    fn drain_and_snapshot_see_every_live_handle() {
        let table = HandleTable::new();
        let handles: Vec<_> = (0..5).map(|i| table.insert(i).unwrap()).collect();
        table.remove(handles[2].raw()).unwrap();
        let mut seen: Vec<i32> = table.snapshot().iter().map(|(_, v)| **v).collect();
        seen.sort();
        assert_eq!(seen, [0, 1, 3, 4]);
        assert_eq!(table.drain().len(), 4);
        assert!(table.is_empty());
        assert!(matches!(
            table.get(handles[0].raw()),
            Err(HandleError::Stale { .. })
        ));
    }
}
