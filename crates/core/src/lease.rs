//! The handle table: host-visible handles for objects that calls *lease*. The call path costs
//! one atomic read-modify-write to take its lease and one to return it — no lock, no reference
//! count (an `Arc` under a read lock costs four, and a mutex for `&mut` access two more).
//!
//! A host call names an object by handle and runs its behaviour — an NSPv2 `NextEx`, a TSPI
//! `lineDrop`. Each entry holds two parts:
//!
//! - `S`, the **shared** part, read by every lease (`&S`);
//! - `X`, the **exclusive** part, reached through the entry's **turn**: at most one lease holds
//!   the turn at a time and gets `&mut X`. [`LeaseTable::lease`] takes the turn when it is free
//!   (the common case: a host's calls on one object come one after the other), in the same
//!   atomic operation that takes the lease; a lease that found the turn taken can
//!   [`wait`](Lease::wait_turn) for it.
//!
//! An entry's whole state is one 64-bit word: the generation of its handle, whether the handle
//! is live, the turn, a waiter flag and the number of leases. [`remove`](LeaseTable::remove)
//! retires the handle (later leases fail with [`HandleError::Stale`]) and returns a lease of its
//! own; the entry's parts are dropped by whichever lease is returned last — the remover's, or
//! a call still running — exactly once, after every call that leased it is done. The slot is
//! then reused under the next generation; a slot whose generation would wrap is retired.
//!
//! Entries live in segments that double in size and never move, so a lease is a plain
//! reference: the table grows without invalidating it, and a lookup reads no lock. Insertion
//! and removal are O(1) and take a lock (the free list); they are not the hot path.
//!
//! This module is one of the two with `unsafe` code in this crate (with [`ffi`](crate::ffi)):
//! the segments are raw allocations, and the parts live in cells whose access is governed by
//! the state word. The loom models in `tests/loom.rs` explore its races.

use crate::handle::{Codec, Handle, HandleError, TableFull};
use crate::park::{Parking, Step};
use crate::sync::{AtomicPtr, AtomicU64, AtomicUsize, Mutex, Ordering, UnsafeCell, lock};
use std::marker::PhantomData;

/// Leases held on the entry (the low 32 bits).
const PINS: u64 = u32::MAX as u64;
const PIN: u64 = 1;
/// The handle is live: new leases may be taken.
const LIVE: u64 = 1 << 32;
/// A lease holds the turn (`&mut X`).
const TURN: u64 = 1 << 33;
/// A lease sleeps until the turn is returned (announced under the entry's parking lock).
const WAITERS: u64 = 1 << 34;
/// The generation of the entry's handle (of the next one, while the entry is free).
const GENERATION_SHIFT: u32 = 40;

fn generation(state: u64) -> usize {
    (state >> GENERATION_SHIFT) as usize
}

fn with_generation(generation: usize) -> u64 {
    (generation as u64) << GENERATION_SHIFT
}

/// Entries in the first segment; segment `k` holds `FIRST << k`.
#[cfg(not(loom))]
const FIRST: usize = 32;
#[cfg(loom)]
const FIRST: usize = 2;
/// Enough segments for every index a handle can carry.
const SEGMENTS: usize = 28;

/// Segment and position of entry `index`.
fn locate(index: usize) -> (usize, usize) {
    let block = index / FIRST + 1;
    let segment = (usize::BITS - 1 - block.leading_zeros()) as usize;
    (segment, index - FIRST * ((1 << segment) - 1))
}

fn segment_len(segment: usize) -> usize {
    FIRST << segment
}

struct Entry<S, X> {
    state: AtomicU64,
    /// Used by leases that wait for the turn, and by a turn's return that finds waiters.
    parking: Parking,
    /// `Some` while the entry holds an object. Written only while the entry is free (no lease,
    /// not live); read through leases.
    shared: UnsafeCell<Option<S>>,
    /// As `shared`, and read or written only by the lease holding the turn.
    exclusive: UnsafeCell<Option<X>>,
}

impl<S, X> Entry<S, X> {
    fn new() -> Self {
        Self {
            state: AtomicU64::new(0),
            parking: Parking::new(),
            shared: UnsafeCell::new(None),
            exclusive: UnsafeCell::new(None),
        }
    }
}

/// What taking a lease does besides counting it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Take {
    /// Takes the turn if it is free (a call).
    Turn,
    /// Leaves the turn alone (a snapshot).
    Shared,
    /// Clears the live bit: the handle is retired (a removal).
    Retire,
}

struct Growth {
    /// Entries ever used: indices below it are in allocated segments.
    next: usize,
    free: Vec<usize>,
}

/// See the [module documentation](self).
pub struct LeaseTable<S, X> {
    codec: Codec,
    /// Segment `k`: `FIRST << k` entries, allocated when first needed, freed with the table.
    segments: [AtomicPtr<Entry<S, X>>; SEGMENTS],
    growth: Mutex<Growth>,
    live: AtomicUsize,
    _owns: PhantomData<Box<[Entry<S, X>]>>,
}

// SAFETY: the table owns its entries (the segments are its allocations). `S` is shared by
// reference between the threads that hold leases, and dropped by whichever returns the last
// one: it must be `Send + Sync`. `X` is reached by one turn holder at a time, from any thread:
// `Send` suffices. Every access to the cells follows the state word's protocol (see `Entry`).
unsafe impl<S: Send + Sync, X: Send> Sync for LeaseTable<S, X> {}
// SAFETY: moving the table moves ownership of its parts, which are `Send`.
unsafe impl<S: Send, X: Send> Send for LeaseTable<S, X> {}

impl<S, X> Default for LeaseTable<S, X> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S, X> LeaseTable<S, X> {
    /// An empty table with its own tag (its handles are refused by every other table).
    pub fn new() -> Self {
        Self {
            codec: Codec::new(),
            segments: std::array::from_fn(|_| AtomicPtr::new(std::ptr::null_mut())),
            growth: Mutex::new(Growth {
                next: 0,
                free: Vec::new(),
            }),
            live: AtomicUsize::new(0),
            _owns: PhantomData,
        }
    }

    /// The entry at `index`, if its segment exists.
    #[inline]
    fn entry(&self, index: usize) -> Option<&Entry<S, X>> {
        let (segment, offset) = locate(index);
        let base = self.segments.get(segment)?.load(Ordering::Acquire);
        if base.is_null() {
            return None;
        }
        // SAFETY: a non-null segment pointer was published (Release, read here with Acquire)
        // after its `segment_len(segment)` entries were initialised, and stays valid until the
        // table is dropped, which `&self` rules out; `offset < segment_len(segment)` by
        // `locate`. Entries are only ever accessed through shared references.
        Some(unsafe { &*base.add(offset) })
    }

    /// Allocates and publishes segment `segment`. Called under the growth lock.
    fn allocate(&self, segment: usize) {
        let entries: Box<[Entry<S, X>]> = (0..segment_len(segment)).map(|_| Entry::new()).collect();
        let base = Box::into_raw(entries).cast::<Entry<S, X>>();
        self.segments[segment].store(base, Ordering::Release);
    }

    /// Stores an object (its shared and exclusive parts) and returns its new handle.
    pub fn insert(&self, shared: S, exclusive: X) -> Result<Handle, TableFull> {
        let mut growth = lock(&self.growth);
        let index = match growth.free.pop() {
            Some(index) => index,
            None => {
                let index = growth.next;
                let (segment, offset) = locate(index);
                if index > Codec::MAX_INDEX || segment >= SEGMENTS {
                    return Err(TableFull);
                }
                if offset == 0 {
                    self.allocate(segment);
                }
                growth.next += 1;
                index
            }
        };
        let entry = self
            .entry(index)
            .expect("free and next indices are in allocated segments");
        // Free: not live, no lease. Nothing else writes the word until it is published below
        // (a lease attempt only reads it, and sees it is not live).
        let generation = generation(entry.state.load(Ordering::Acquire)).max(1);
        // SAFETY: the entry is free (popped from the free list, or never used) and the growth
        // lock is held, so no lease exists and none can be taken until `LIVE` is published:
        // nobody else accesses the cells.
        entry
            .shared
            .with_mut(|cell| unsafe { *cell = Some(shared) });
        // SAFETY: as above.
        entry
            .exclusive
            .with_mut(|cell| unsafe { *cell = Some(exclusive) });
        entry
            .state
            .store(with_generation(generation) | LIVE, Ordering::Release);
        self.live.fetch_add(1, Ordering::Relaxed);
        drop(growth);
        Ok(self.codec.encode(index, generation))
    }

    fn classify(raw: usize, state: u64, presented: usize) -> HandleError {
        let current = generation(state);
        if current == 0 || presented > current {
            HandleError::Unknown { raw }
        } else {
            HandleError::Stale { raw }
        }
    }

    /// Leases the object behind a host value, taking its turn if the turn is free (see
    /// [`Lease::turn`]): one atomic operation.
    #[inline]
    pub fn lease(&self, raw: usize) -> Result<Lease<'_, S, X>, HandleError> {
        self.take(raw, Take::Turn)
    }

    /// Leases the object behind a host value without its turn, for calls that only read the
    /// shared part: one atomic operation.
    #[inline]
    pub fn lease_shared(&self, raw: usize) -> Result<Lease<'_, S, X>, HandleError> {
        self.take(raw, Take::Shared)
    }

    /// Retires a handle: later leases of it fail with [`HandleError::Stale`]. Returns a lease
    /// (without the turn) to finish the object with; its parts are dropped when the last lease
    /// — this one, or a call's still running — is returned.
    pub fn remove(&self, raw: usize) -> Result<Lease<'_, S, X>, HandleError> {
        let lease = self.take(raw, Take::Retire)?;
        self.live.fetch_sub(1, Ordering::Relaxed);
        Ok(lease)
    }

    /// Takes a lease on the live entry `raw` names, in one compare-and-swap that also does
    /// what `how` says.
    #[inline]
    fn take(&self, raw: usize, how: Take) -> Result<Lease<'_, S, X>, HandleError> {
        let (index, presented) = self.codec.decode(raw)?;
        let entry = self.entry(index).ok_or(HandleError::Unknown { raw })?;
        let mut state = entry.state.load(Ordering::Relaxed);
        loop {
            if generation(state) != presented || state & LIVE == 0 {
                return Err(Self::classify(raw, state, presented));
            }
            if state & PINS == PINS {
                // 4 billion leases at once: refused rather than overflowing the count.
                return Err(HandleError::Unknown { raw });
            }
            let turn = how == Take::Turn && state & TURN == 0;
            let next = match how {
                Take::Retire => (state & !LIVE) + PIN,
                _ if turn => state + PIN + TURN,
                _ => state + PIN,
            };
            // Acquire: the lease sees the object as inserted and as the previous turn left
            // it. Retiring also releases (the lease that frees the entry synchronizes with it).
            let success = match how {
                Take::Retire => Ordering::AcqRel,
                _ => Ordering::Acquire,
            };
            match entry
                .state
                .compare_exchange_weak(state, next, success, Ordering::Relaxed)
            {
                Ok(_) => {
                    return Ok(Lease {
                        table: self,
                        entry,
                        index,
                        turn,
                    });
                }
                Err(now) => state = now,
            }
        }
    }

    /// The live handles, each with a lease (without the turn), at one instant.
    pub fn snapshot(&self) -> Vec<(Handle, Lease<'_, S, X>)> {
        let used = lock(&self.growth).next;
        (0..used)
            .filter_map(|index| {
                let entry = self.entry(index)?;
                let state = entry.state.load(Ordering::Relaxed);
                let handle = self.codec.encode(index, generation(state).max(1));
                self.take(handle.raw(), Take::Shared)
                    .ok()
                    .map(|lease| (handle, lease))
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

    /// Drops the parts of a retired entry whose last lease was just returned, and frees the
    /// entry for reuse under the next generation.
    #[cold]
    fn free(&self, index: usize, entry: &Entry<S, X>, state: u64) {
        // SAFETY: the entry is not live and its last lease is gone: no lease exists and none
        // can be taken (taking one needs `LIVE`), so this thread alone accesses the cells.
        let exclusive = entry.exclusive.with_mut(|cell| unsafe { (*cell).take() });
        // SAFETY: as above.
        let shared = entry.shared.with_mut(|cell| unsafe { (*cell).take() });
        let current = generation(state);
        let next = current + 1;
        {
            let mut growth = lock(&self.growth);
            if next <= Codec::MAX_GENERATION {
                entry.state.store(with_generation(next), Ordering::Release);
                growth.free.push(index);
            } else {
                // Retired: no handle value is ever issued twice. The word keeps the last
                // generation, not live, so that generation's handles read as stale.
                entry
                    .state
                    .store(with_generation(current), Ordering::Release);
            }
        }
        // The object's own clean-up runs last, with no lock held.
        drop(exclusive);
        drop(shared);
    }

    #[cfg(all(test, not(loom)))]
    fn set_generation_for_test(&self, raw: usize, generation: usize) {
        let (index, _) = self.codec.decode(raw).unwrap();
        let entry = self.entry(index).unwrap();
        let state = entry.state.load(Ordering::Relaxed);
        let low = state & ((1 << GENERATION_SHIFT) - 1);
        entry
            .state
            .store(with_generation(generation) | low, Ordering::Relaxed);
    }
}

impl<S, X> Drop for LeaseTable<S, X> {
    fn drop(&mut self) {
        for (segment, pointer) in self.segments.iter_mut().enumerate() {
            let base = pointer.load(Ordering::Acquire);
            if base.is_null() {
                continue;
            }
            let entries = std::ptr::slice_from_raw_parts_mut(base, segment_len(segment));
            // SAFETY: `base` came from `Box::into_raw` of a boxed slice of exactly
            // `segment_len(segment)` entries (`allocate`), and is freed once, here: `&mut self`
            // means no lease borrows the table. Dropping the entries drops the objects left in
            // them.
            drop(unsafe { Box::from_raw(entries) });
        }
    }
}

impl<S, X> std::fmt::Debug for LeaseTable<S, X> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseTable")
            .field("live", &self.len())
            .finish_non_exhaustive()
    }
}

/// A lease on one entry of a [`LeaseTable`]: the object stays alive while it is held. Derefs
/// to the shared part; [`parts`](Self::parts) also gives the exclusive part when the lease holds
/// the turn.
#[must_use = "a lease is returned when dropped"]
pub struct Lease<'t, S, X> {
    table: &'t LeaseTable<S, X>,
    entry: &'t Entry<S, X>,
    index: usize,
    turn: bool,
}

impl<S, X> Lease<'_, S, X> {
    /// Whether this lease holds the entry's turn.
    #[inline]
    pub fn turn(&self) -> bool {
        self.turn
    }

    /// The shared part, and the exclusive part if this lease holds the turn.
    #[inline]
    pub fn parts(&mut self) -> (&S, Option<&mut X>) {
        let shared = self.shared();
        let exclusive = if self.turn {
            // SAFETY: this lease holds the turn, so no other lease accesses the exclusive part
            // until it is returned, and `&mut self` makes this the only reference derived from
            // this lease. The cell holds `Some` while any lease exists (it is emptied only by
            // `free`, after the last one).
            self.entry
                .exclusive
                .with_mut(|cell| unsafe { (*cell).as_mut() })
        } else {
            None
        };
        (shared, exclusive)
    }

    #[inline]
    fn shared(&self) -> &S {
        // SAFETY: while a lease exists the cell is only read (it is written when the entry is
        // free), and it holds `Some`.
        let shared = self.entry.shared.with(|cell| unsafe { (*cell).as_ref() });
        match shared {
            Some(shared) => shared,
            None => unreachable!("a leased entry holds its object"),
        }
    }

    /// Waits for the turn (returns at once if this lease holds it) and returns both parts. The
    /// turn comes when the lease holding it is returned.
    pub fn wait_turn(&mut self) -> (&S, &mut X) {
        if !self.turn {
            self.acquire_turn();
        }
        match self.parts() {
            (shared, Some(exclusive)) => (shared, exclusive),
            (_, None) => unreachable!("the lease holds the turn"),
        }
    }

    #[cold]
    fn acquire_turn(&mut self) {
        let entry = self.entry;
        entry.parking.wait(|| {
            let state = entry.state.load(Ordering::Acquire);
            if state & TURN == 0 {
                match entry.state.compare_exchange(
                    state,
                    state | TURN,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => Step::Done(()),
                    Err(_) => Step::Again,
                }
            } else if state & WAITERS != 0
                || entry
                    .state
                    .compare_exchange(state, state | WAITERS, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                Step::Sleep
            } else {
                Step::Again
            }
        });
        self.turn = true;
    }

    /// Wakes the leases waiting for the turn just returned.
    #[cold]
    fn wake_waiters(&self) {
        let entry = self.entry;
        entry.parking.wake_all(|| {
            entry.state.fetch_and(!WAITERS, Ordering::AcqRel);
        });
    }
}

impl<S, X> std::ops::Deref for Lease<'_, S, X> {
    type Target = S;

    #[inline]
    fn deref(&self) -> &S {
        self.shared()
    }
}

impl<S, X> Drop for Lease<'_, S, X> {
    #[inline]
    fn drop(&mut self) {
        let returned = PIN + if self.turn { TURN } else { 0 };
        // Release: this lease's accesses to the parts happen before the next turn's and the
        // free's; Acquire: the last lease sees every other's before freeing.
        let before = self.entry.state.fetch_sub(returned, Ordering::AcqRel);
        if self.turn && before & WAITERS != 0 {
            self.wake_waiters();
        }
        if before & LIVE == 0 && before & PINS == PIN {
            self.table.free(self.index, self.entry, before);
        }
    }
}

impl<S, X> std::fmt::Debug for Lease<'_, S, X> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("index", &self.index)
            .field("turn", &self.turn)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize as Counter;

    /// Counts its drops.
    struct Tracked(Arc<Counter>);

    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn segments_cover_every_index_once() {
        let mut expected = (0, 0);
        for index in 0..10_000 {
            assert_eq!(locate(index), expected, "index {index}");
            expected.1 += 1;
            if expected.1 == segment_len(expected.0) {
                expected = (expected.0 + 1, 0);
            }
        }
        let last = locate(Codec::MAX_INDEX);
        assert!(last.0 < SEGMENTS && last.1 < segment_len(last.0));
    }

    #[test]
    fn the_first_lease_takes_the_turn_and_a_second_shares() {
        let table = LeaseTable::new();
        let handle = table.insert("shared", 1).unwrap();
        let mut first = table.lease(handle.raw()).unwrap();
        let mut second = table.lease(handle.raw()).unwrap();
        assert!(first.turn() && !second.turn());
        assert_eq!(*first, "shared");
        let (_, exclusive) = first.parts();
        *exclusive.unwrap() += 1;
        assert!(second.parts().1.is_none());
        drop(first);
        let mut third = table.lease(handle.raw()).unwrap();
        assert_eq!(third.parts().1.copied(), Some(2), "the turn passes on");
    }

    #[test]
    fn removal_frees_after_the_last_lease() {
        let drops = Arc::new(Counter::new(0));
        let table = LeaseTable::new();
        let handle = table
            .insert(Tracked(drops.clone()), Tracked(drops.clone()))
            .unwrap();
        let running = table.lease(handle.raw()).unwrap();
        let removed = table.remove(handle.raw()).unwrap();
        assert_eq!(table.len(), 0);
        assert_eq!(
            table.lease(handle.raw()).err(),
            Some(HandleError::Stale { raw: handle.raw() })
        );
        assert_eq!(
            table.remove(handle.raw()).err(),
            Some(HandleError::Stale { raw: handle.raw() })
        );
        drop(removed);
        assert_eq!(drops.load(Ordering::SeqCst), 0, "a call still holds it");
        drop(running);
        assert_eq!(drops.load(Ordering::SeqCst), 2, "both parts, once");
    }

    #[test]
    fn reused_slots_get_a_new_generation() {
        let table = LeaseTable::new();
        let old = table.insert(1, ()).unwrap();
        drop(table.remove(old.raw()).unwrap());
        let new = table.insert(2, ()).unwrap();
        assert_ne!(old, new);
        assert_eq!(
            table.lease(old.raw()).err(),
            Some(HandleError::Stale { raw: old.raw() })
        );
        assert_eq!(*table.lease(new.raw()).unwrap(), 2);
    }

    #[test]
    fn forged_and_foreign_values_are_refused() {
        let table: LeaseTable<u32, ()> = LeaseTable::new();
        let other: LeaseTable<u32, ()> = LeaseTable::new();
        let handle = table.insert(7, ()).unwrap();
        let foreign = other.insert(8, ()).unwrap();
        assert_eq!(table.lease(0).err(), Some(HandleError::Null));
        assert!(matches!(
            table.lease(foreign.raw()),
            Err(HandleError::Unknown { .. })
        ));
        // The next index of this table: never issued.
        let unissued = table.codec.encode(1, 1);
        assert!(matches!(
            table.lease(unissued.raw()),
            Err(HandleError::Unknown { .. })
        ));
        // An index in a segment that does not exist.
        let far = table.codec.encode(1 << 20, 1);
        assert!(matches!(
            table.lease(far.raw()),
            Err(HandleError::Unknown { .. })
        ));
        assert_eq!(*table.lease(handle.raw()).unwrap(), 7);
    }

    #[test]
    fn a_slot_whose_generation_would_wrap_is_retired() {
        let table = LeaseTable::new();
        let handle = table.insert(1, ()).unwrap();
        table.set_generation_for_test(handle.raw(), Codec::MAX_GENERATION);
        let last = table.codec.encode(0, Codec::MAX_GENERATION);
        drop(table.remove(last.raw()).unwrap());
        let next = table.insert(2, ()).unwrap();
        assert_ne!(
            table.codec.decode(next.raw()).unwrap().0,
            0,
            "the retired slot is not reused"
        );
        assert_eq!(
            table.lease(last.raw()).err(),
            Some(HandleError::Stale { raw: last.raw() })
        );
    }

    #[test]
    fn a_waiting_lease_gets_the_turn_when_it_is_returned() {
        let table = LeaseTable::new();
        let handle = table.insert((), 0u32).unwrap();
        let mut holder = table.lease(handle.raw()).unwrap();
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| {
                let mut lease = table.lease(handle.raw()).unwrap();
                assert!(!lease.turn());
                *lease.wait_turn().1
            });
            std::thread::sleep(std::time::Duration::from_millis(20));
            *holder.parts().1.unwrap() = 5;
            drop(holder);
            assert_eq!(
                waiter.join().unwrap(),
                5,
                "the waiter sees the holder's write"
            );
        });
    }

    #[test]
    fn snapshot_leases_every_live_entry() {
        let table = LeaseTable::new();
        let handles: Vec<_> = (0..100).map(|i| table.insert(i, ()).unwrap()).collect();
        for handle in handles.iter().step_by(2) {
            drop(table.remove(handle.raw()).unwrap());
        }
        let snapshot = table.snapshot();
        let values: Vec<_> = snapshot.iter().map(|(_, lease)| **lease).collect();
        assert_eq!(values, (0..100).skip(1).step_by(2).collect::<Vec<_>>());
        for (handle, lease) in &snapshot {
            assert_eq!(**lease, *table.lease(handle.raw()).unwrap());
        }
    }

    #[test]
    fn many_threads_lease_and_remove_without_losing_an_object() {
        let drops = Arc::new(Counter::new(0));
        let table = LeaseTable::new();
        let total = 4 * 500;
        std::thread::scope(|scope| {
            for _ in 0..4 {
                let (table, drops) = (&table, &drops);
                scope.spawn(move || {
                    for _ in 0..500 {
                        let handle = table
                            .insert(Tracked(drops.clone()), Counter::new(0))
                            .unwrap();
                        let mut lease = table.lease(handle.raw()).unwrap();
                        lease.wait_turn().1.fetch_add(1, Ordering::Relaxed);
                        drop(table.remove(handle.raw()).unwrap());
                        drop(lease);
                    }
                });
            }
        });
        assert_eq!(drops.load(Ordering::SeqCst), total);
        assert!(table.is_empty());
    }
}
