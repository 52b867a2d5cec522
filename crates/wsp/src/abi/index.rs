//! [`HandleIndex`]: from a socket handle the layer did not choose to the key of its record.
//!
//! A layer finds its socket from the handle the caller names on every call. The handle is
//! ws2_32's or the lower provider's, not a key of the layer's table, so the layer keeps an
//! index. Windows handle values are multiples of 4, handed out from the low end of the
//! process's handle table, so the index is a two-level direct table over the handle value for
//! every value below [`DIRECT_LIMIT`]: a lookup is two loads, with no lock and no hash. Any
//! other value (a provider below whose handles are not kernel handles) goes to a hash map under
//! a read-write lock.
//!
//! A lookup may race the removal of its entry (a close on another thread): it then returns the
//! old key, whose lease fails once the record is gone (the lease table's generations tell a
//! reused slot apart), so the caller sees `WSAENOTSOCK` as it would a moment later.

use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{OnceLock, RwLock};

/// Handle values below this are indexed directly (4 Mi handle values, 1 Mi handles).
pub(crate) const DIRECT_LIMIT: usize = 1 << 22;
/// Handles per leaf of the direct table (a leaf is 32 KiB, made when its first handle is).
const LEAF_BITS: u32 = 12;
const LEAF: usize = 1 << LEAF_BITS;
/// Leaves of the direct table (the directory is 256 slots, 4 KiB).
const LEAVES: usize = DIRECT_LIMIT / 4 / LEAF;

/// Stored for "no entry": the lease table's keys are never 0.
const EMPTY: usize = 0;

type Leaf = Box<[AtomicUsize; LEAF]>;

/// An index from handle values to non-zero keys. See the [module documentation](self).
pub(crate) struct HandleIndex {
    direct: Box<[OnceLock<Leaf>; LEAVES]>,
    spill: RwLock<FxHashMap<usize, usize>>,
}

impl HandleIndex {
    /// An empty index: the directory only; leaves come with their first handle.
    pub(crate) fn new() -> Self {
        Self {
            direct: Box::new([const { OnceLock::new() }; LEAVES]),
            spill: RwLock::new(FxHashMap::default()),
        }
    }

    /// Where `handle` lives in the direct table, if it belongs there.
    #[inline(always)]
    fn place(handle: usize) -> Option<(usize, usize)> {
        if handle & 3 != 0 || handle >= DIRECT_LIMIT {
            return None;
        }
        let slot = handle >> 2;
        Some((slot >> LEAF_BITS, slot & (LEAF - 1)))
    }

    /// The key `handle` was last indexed with.
    #[inline(always)]
    pub(crate) fn get(&self, handle: usize) -> Option<usize> {
        match Self::place(handle) {
            Some((leaf, at)) => {
                let key = self.direct[leaf].get()?[at].load(Ordering::Acquire);
                (key != EMPTY).then_some(key)
            }
            None => self.spilled(handle),
        }
    }

    #[cold]
    #[inline(never)]
    fn spilled(&self, handle: usize) -> Option<usize> {
        self.spill().get(&handle).copied()
    }

    /// Indexes `handle` with `key` (non-zero), replacing what it had (a handle value handed out
    /// again before the socket that had it was forgotten).
    pub(crate) fn insert(&self, handle: usize, key: usize) {
        debug_assert_ne!(key, EMPTY, "lease keys are never 0");
        match Self::place(handle) {
            Some((leaf, at)) => {
                let leaf = self.direct[leaf].get_or_init(new_leaf);
                leaf[at].store(key, Ordering::Release);
            }
            None => {
                self.spill_mut().insert(handle, key);
            }
        }
    }

    /// Forgets `handle` if it is still indexed with `key` (not if its value was handed out
    /// again since, to a socket published since).
    pub(crate) fn remove(&self, handle: usize, key: usize) {
        match Self::place(handle) {
            Some((leaf, at)) => {
                if let Some(leaf) = self.direct[leaf].get() {
                    let _ =
                        leaf[at].compare_exchange(key, EMPTY, Ordering::AcqRel, Ordering::Relaxed);
                }
            }
            None => {
                let mut spill = self.spill_mut();
                if spill.get(&handle) == Some(&key) {
                    spill.remove(&handle);
                }
            }
        }
    }

    /// Forgets every handle (the leaves stay, empty).
    pub(crate) fn clear(&self) {
        for leaf in self.direct.iter().filter_map(OnceLock::get) {
            for entry in leaf.iter() {
                entry.store(EMPTY, Ordering::Release);
            }
        }
        self.spill_mut().clear();
    }

    fn spill(&self) -> std::sync::RwLockReadGuard<'_, FxHashMap<usize, usize>> {
        self.spill.read().unwrap_or_else(|p| p.into_inner())
    }

    fn spill_mut(&self) -> std::sync::RwLockWriteGuard<'_, FxHashMap<usize, usize>> {
        self.spill.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// An empty leaf, made on the heap: 32 KiB is too much for the stack of a thread of a process
/// the layer is loaded into.
fn new_leaf() -> Leaf {
    let entries: Box<[AtomicUsize]> = (0..LEAF).map(|_| AtomicUsize::new(EMPTY)).collect();
    match entries.try_into() {
        Ok(leaf) => leaf,
        Err(_) => unreachable!("LEAF entries were made"),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(usize, usize),
        Remove(usize, usize),
        Clear,
    }

    /// Handle values: direct ones (small, near the limit, across leaves), and spilled ones
    /// (unaligned, at and beyond the limit).
    fn handle() -> impl Strategy<Value = usize> {
        prop_oneof![
            (0usize..64).prop_map(|i| i * 4),
            (0usize..64).prop_map(|i| i * 4 + LEAF * 4 - 128),
            (0usize..16).prop_map(|i| DIRECT_LIMIT - 4 * (i + 1)),
            (0usize..16).prop_map(|i| DIRECT_LIMIT + 4 * i),
            (0usize..64).prop_map(|i| i * 4 + 1 + i % 3),
            Just(usize::MAX - 3),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (handle(), 1usize..8).prop_map(|(h, k)| Op::Insert(h, k)),
            4 => (handle(), 1usize..8).prop_map(|(h, k)| Op::Remove(h, k)),
            1 => Just(Op::Clear),
        ]
    }

    proptest! {
        /// The index answers as a map would, for any sequence of inserts, conditional
        /// removes and clears over direct and spilled handle values.
        #[test]
        fn index_is_a_map(ops in proptest::collection::vec(op(), 1..200)) {
            let index = HandleIndex::new();
            let mut model: HashMap<usize, usize> = HashMap::new();
            for op in ops {
                match op {
                    Op::Insert(h, k) => {
                        index.insert(h, k);
                        model.insert(h, k);
                    }
                    Op::Remove(h, k) => {
                        index.remove(h, k);
                        if model.get(&h) == Some(&k) {
                            model.remove(&h);
                        }
                    }
                    Op::Clear => {
                        index.clear();
                        model.clear();
                    }
                }
                for (h, k) in &model {
                    prop_assert_eq!(index.get(*h), Some(*k));
                }
            }
            for h in (0..64).map(|i| i * 4).chain([DIRECT_LIMIT, 1, usize::MAX - 3]) {
                prop_assert_eq!(index.get(h), model.get(&h).copied());
            }
        }
    }

    #[test]
    fn kernel_handle_values_are_indexed_directly_and_others_spill() {
        let index = HandleIndex::new();
        index.insert(0x1_0000, 7);
        index.insert(DIRECT_LIMIT, 8);
        index.insert(0x1_0001, 9);
        assert_eq!(
            index.direct.iter().filter(|l| l.get().is_some()).count(),
            1,
            "one leaf for one aligned value below the limit"
        );
        assert_eq!(index.spill().len(), 2, "the other two values spill");
        assert_eq!(
            [0x1_0000, DIRECT_LIMIT, 0x1_0001].map(|h| index.get(h)),
            [Some(7), Some(8), Some(9)]
        );
        assert_eq!(index.get(0x1_0004), None);
    }
}
