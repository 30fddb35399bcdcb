//! The index's posting tables: from a 32-bit key (a SimHash half, an anchor) to the slots of
//! the entries that hold it, in four bytes a posting.
//!
//! A posting is one `u32`: the slot, and in the bits the slot leaves free a tag taken from the
//! key's hash (8 bits while there are fewer than 2^24 slots). A key's postings sit in its home
//! chunk, one cache line of 15 postings and a count of the postings that went past it because
//! it was full; a newcomer takes the first chunk with room. A lookup reads the home chunk and
//! goes on to the next only while that count is not zero. Postings never move once placed, so
//! a removal knows exactly which counts the posting raised (the chunks from its key's home to
//! where it sits) and lowers them.
//!
//! The table does not store keys, which would double its size. Two consequences:
//!
//! * A lookup also reports the postings of other keys that share the home chunk and the tag
//!   (about one lookup in twenty at 8-bit tags finds one). Its callers check what they get
//!   anyway: the SimHash tables by Hamming distance, anchor candidates by their sketch.
//! * It cannot place its postings anew by itself. Growing, or making room for wider slots,
//!   places them anew from the keys of the index's live entries, which the index reads back
//!   from its caller ([`crate::pipeline::index::EntryKeys`]): a few entries at each insert, while the
//!   full table still answers beside its successor ([`GrowingPostings`]).
//!
//! Two postings with the same slot and tag but different keys are the same `u32`; a removal
//! may take the other key's. The counts stay right, and the posting left stands for the other
//! key, reachable from its home ([`Postings::remove`] says why).

/// Position of an entry in the index; reused after eviction.
pub type Slot = u32;

/// Postings per chunk: 15 and the count fill a 64-byte line.
const CELLS: usize = 15;

/// An unused cell. Stored postings hold `slot + 1`, never zero.
const EMPTY: u32 = 0;

/// Most postings a table holds per cell before it must grow. Overflow counts are raised by
/// full chunks and stay up until the postings that passed are removed, so under the index's
/// steady churn (one article in, one out) chains lengthen with the load. Under churn, lookups
/// stayed as fast as in a fresh table up to a load of about 0.6 and grew steeply past 0.75,
/// meeting many times as many other keys' postings (BENCHMARKS.md, index).
const MAX_LOAD: (usize, usize) = (7, 10);

/// Slot bits of a new table: the tag keeps 8 bits until 2^24 slots.
pub const MIN_SLOT_BITS: u32 = 24;

#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(64))]
struct Chunk {
    /// Postings placed past this chunk because it was full when they came, still present.
    overflow: u32,
    cells: [u32; CELLS],
}

impl Chunk {
    /// A bit per cell that satisfies `test`. Written without branches so that the compiler
    /// tests the cells four at a time: a lookup reads a whole chunk, and a cell at a time it was
    /// slower than the eight-byte table this replaced.
    #[inline]
    fn matching(&self, test: impl Fn(u32) -> bool) -> u32 {
        self.cells
            .iter()
            .enumerate()
            .fold(0, |hits, (i, &cell)| hits | (u32::from(test(cell)) << i))
    }
}

#[derive(Debug, Clone)]
pub struct Postings {
    chunks: Vec<Chunk>,
    len: usize,
    /// Low bits of a posting that hold `slot + 1`; the rest is the tag.
    slot_bits: u32,
}

impl Default for Postings {
    fn default() -> Self {
        Self::with_capacity(0, MIN_SLOT_BITS)
    }
}

impl Postings {
    /// An empty table with room for `postings` and slots below `1 << slot_bits` (at most 32).
    pub fn with_capacity(postings: usize, slot_bits: u32) -> Self {
        const MIN_CHUNKS: usize = 64;
        let cells = (postings * MAX_LOAD.1).div_ceil(MAX_LOAD.0);
        let mut chunks = Vec::with_capacity(cells.div_ceil(CELLS).max(MIN_CHUNKS));
        huge_pages::advise(&chunks);
        chunks.resize(chunks.capacity(), Chunk::default());
        Self {
            chunks,
            len: 0,
            slot_bits: slot_bits.clamp(1, 32),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Postings the table takes before it must be rebuilt larger.
    pub fn max_len(&self) -> usize {
        self.chunks.len() * CELLS * MAX_LOAD.0 / MAX_LOAD.1
    }

    pub fn slot_bits(&self) -> u32 {
        self.slot_bits
    }

    /// Whether `slot` fits in a posting of this table.
    pub fn holds_slot(&self, slot: Slot) -> bool {
        slot < self.slot_mask()
    }

    pub fn heap_bytes(&self) -> usize {
        self.chunks.capacity() * std::mem::size_of::<Chunk>()
    }

    #[inline]
    fn slot_mask(&self) -> u32 {
        u32::MAX >> (32 - self.slot_bits)
    }

    /// The key's home chunk and its tag, in place above the slot bits.
    #[inline]
    fn locate(&self, key: u32) -> (usize, u32) {
        let mixed = u64::from(key).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // The high half picks the chunk by multiplying into the range (any number of chunks,
        // so a table may grow by less than double); the low half's top bits are the tag.
        let home = ((mixed >> 32) * self.chunks.len() as u64) >> 32;
        (home as usize, (mixed as u32) & !self.slot_mask())
    }

    #[inline]
    fn next(&self, chunk: usize) -> usize {
        if chunk + 1 == self.chunks.len() {
            0
        } else {
            chunk + 1
        }
    }

    /// Calls `f` with every slot stored under `key`, and those of keys that share its home and
    /// tag (see the module documentation); returns how many there were.
    #[inline]
    pub fn for_each(&self, key: u32, mut f: impl FnMut(Slot)) -> usize {
        let (mut at, tag) = self.locate(key);
        let mask = self.slot_mask();
        let mut found = 0;
        loop {
            let chunk = &self.chunks[at];
            let mut hits = chunk.matching(|cell| cell != EMPTY && cell & !mask == tag);
            while hits != 0 {
                f((chunk.cells[hits.trailing_zeros() as usize] & mask) - 1);
                found += 1;
                hits &= hits - 1;
            }
            if chunk.overflow == 0 {
                return found;
            }
            at = self.next(at);
        }
    }

    /// Number of slots under `key`, counted as [`Postings::for_each`] reports them.
    pub fn count(&self, key: u32) -> usize {
        self.for_each(key, |_| {})
    }

    /// Asks the processor to start loading `key`'s home chunk without waiting for it: a hint
    /// for a lookup, insert or removal that comes later.
    #[inline]
    pub fn prefetch(&self, key: u32) {
        prefetch_line(&self.chunks[self.locate(key).0]);
    }

    /// Adds a posting. Returns false, storing nothing, when the table is at
    /// [`Postings::max_len`] or `slot` does not fit ([`Postings::holds_slot`]): the index
    /// grows it first.
    pub fn insert(&mut self, key: u32, slot: Slot) -> bool {
        if self.len >= self.max_len() || !self.holds_slot(slot) {
            return false;
        }
        let (mut at, tag) = self.locate(key);
        let posting = tag | (slot + 1);
        // Ends: the load bound leaves empty cells.
        loop {
            let chunk = &mut self.chunks[at];
            let free = chunk.matching(|cell| cell == EMPTY);
            if free != 0 {
                chunk.cells[free.trailing_zeros() as usize] = posting;
                self.len += 1;
                return true;
            }
            chunk.overflow += 1;
            at = self.next(at);
        }
    }

    /// Removes one posting of `slot` under `key` if present.
    ///
    /// It takes the first equal `u32` on the way from the key's home. That may be the posting
    /// of another key with the same tag and slot, placed earlier on the way; the one left then
    /// stands for that key, and the counts stay the sums of each posting's way from its home:
    /// the way that is left runs from the other key's home through where the removed one sat
    /// to where this key's posting sits, all of which this key's posting had raised.
    pub fn remove(&mut self, key: u32, slot: Slot) -> bool {
        if !self.holds_slot(slot) {
            return false;
        }
        let (home, tag) = self.locate(key);
        let posting = tag | (slot + 1);
        let mut at = home;
        loop {
            let equal = self.chunks[at].matching(|cell| cell == posting);
            if equal != 0 {
                self.chunks[at].cells[equal.trailing_zeros() as usize] = EMPTY;
                let mut passed = home;
                while passed != at {
                    self.chunks[passed].overflow -= 1;
                    passed = self.next(passed);
                }
                self.len -= 1;
                return true;
            }
            if self.chunks[at].overflow == 0 {
                return false;
            }
            at = self.next(at);
        }
    }
}

/// A posting table that grows without holding up its user: instead of placing every posting
/// anew at once (which at millions of entries held the stream for seconds), the full table is
/// kept, *retiring*, beside its larger successor while the user moves the postings of a few
/// slots at a time ([`GrowingPostings::moving_from`], [`GrowingPostings::moved_below`]). New
/// postings go to the successor.
///
/// A bit per slot says which table holds its postings: set when a slot's first posting goes to
/// the successor. A moved slot's postings stay in the retiring table, unreachable (lookups skip
/// slots whose bit is set there), until that table is dropped when the last slot has moved; so a
/// move costs one insert per posting, no removal. Lookups read both tables meanwhile.
#[derive(Debug, Clone, Default)]
pub struct GrowingPostings {
    table: Postings,
    retiring: Option<Retiring>,
}

#[derive(Debug, Clone)]
struct Retiring {
    table: Postings,
    /// Bit per slot: its postings are in the successor.
    moved: Vec<u64>,
    /// Slots below this have been moved (or were free when their turn came).
    next: usize,
}

impl Retiring {
    fn has_moved(&self, slot: Slot) -> bool {
        self.moved
            .get(slot as usize / 64)
            .is_some_and(|word| word >> (slot % 64) & 1 == 1)
    }
}

impl GrowingPostings {
    pub fn with_capacity(postings: usize, slot_bits: u32) -> Self {
        Self {
            table: Postings::with_capacity(postings, slot_bits),
            retiring: None,
        }
    }

    /// Postings in the table that takes new ones.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Postings in the retiring table, some of which may belong to moved slots; 0 when no
    /// table retires.
    pub fn retiring_len(&self) -> usize {
        self.retiring.as_ref().map_or(0, |r| r.table.len())
    }

    /// Postings the table that takes new ones holds before it must grow.
    pub fn max_len(&self) -> usize {
        self.table.max_len()
    }

    pub fn slot_bits(&self) -> u32 {
        self.table.slot_bits()
    }

    pub fn holds_slot(&self, slot: Slot) -> bool {
        self.table.holds_slot(slot)
    }

    /// Both tables while one retires, with the bits that say which holds each slot.
    pub fn heap_bytes(&self) -> usize {
        self.table.heap_bytes()
            + self
                .retiring
                .as_ref()
                .map_or(0, |r| r.table.heap_bytes() + r.moved.capacity() * 8)
    }

    /// Calls `f` with every slot stored under `key` (as [`Postings::for_each`]), in either
    /// table; returns how many there were.
    #[inline]
    pub fn for_each(&self, key: u32, mut f: impl FnMut(Slot)) -> usize {
        let mut found = self.table.for_each(key, &mut f);
        if let Some(retiring) = &self.retiring {
            retiring.table.for_each(key, |slot| {
                if !retiring.has_moved(slot) {
                    found += 1;
                    f(slot);
                }
            });
        }
        found
    }

    pub fn count(&self, key: u32) -> usize {
        self.for_each(key, |_| {})
    }

    #[inline]
    pub fn prefetch(&self, key: u32) {
        self.table.prefetch(key);
        if let Some(retiring) = &self.retiring {
            retiring.table.prefetch(key);
        }
    }

    /// [`Postings::prefetch`] in the table that takes new ones only: for postings that move.
    #[inline]
    pub fn prefetch_successor(&self, key: u32) {
        self.table.prefetch(key);
    }

    /// Adds a posting to the table that takes new ones; false as [`Postings::insert`]. While a
    /// table retires, the slot counts as moved from here on: give a slot's postings all at once.
    pub fn insert(&mut self, key: u32, slot: Slot) -> bool {
        let placed = self.table.insert(key, slot);
        if let (true, Some(retiring)) = (placed, &mut self.retiring) {
            let word = slot as usize / 64;
            if retiring.moved.len() <= word {
                retiring.moved.resize(word + 1, 0);
            }
            retiring.moved[word] |= 1 << (slot % 64);
        }
        placed
    }

    /// Removes one posting of `slot` under `key` from the table that holds the slot's postings.
    pub fn remove(&mut self, key: u32, slot: Slot) -> bool {
        match &mut self.retiring {
            Some(retiring) if !retiring.has_moved(slot) => retiring.table.remove(key, slot),
            _ => self.table.remove(key, slot),
        }
    }

    /// Where the slots still to move start, while a table retires.
    pub fn moving_from(&self) -> Option<usize> {
        self.retiring.as_ref().map(|r| r.next)
    }

    /// Whether `slot`'s postings are in the table that takes new ones: always, unless a table
    /// retires and the slot has not moved yet.
    pub fn has_moved(&self, slot: Slot) -> bool {
        self.retiring.as_ref().is_none_or(|r| r.has_moved(slot))
    }

    /// Records that the slots below `next` have moved (their postings given to
    /// [`GrowingPostings::insert`]); once `next` reaches `slots`, the number of slots there
    /// are, the retiring table is dropped.
    pub fn moved_below(&mut self, next: usize, slots: usize) {
        if next >= slots {
            self.retiring = None;
        } else if let Some(retiring) = &mut self.retiring {
            retiring.next = next;
        }
    }

    /// Starts growing into a table with room for `postings`: the current one retires, and the
    /// user moves every slot's postings with [`GrowingPostings::insert`] and
    /// [`GrowingPostings::moved_below`]. Only when no table retires.
    pub fn grow(&mut self, postings: usize, slot_bits: u32) {
        debug_assert!(self.retiring.is_none(), "a table is still retiring");
        let table = std::mem::replace(&mut self.table, Postings::with_capacity(postings, slot_bits));
        self.retiring = Some(Retiring {
            table,
            moved: Vec::new(),
            next: 0,
        });
    }

    /// Replaces both tables with `table`, which holds every live slot's postings.
    pub fn replace(&mut self, table: Postings) {
        self.table = table;
        self.retiring = None;
    }
}

/// Starts loading the cache line holding `value` without waiting for it. A hint only: it
/// never faults and changes no state, so it is sound for any reference. Elsewhere than on
/// x86_64 (no stable prefetch intrinsic yet) it does nothing.
#[inline]
pub fn prefetch_line<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 only moves a line into the cache; it never faults or writes, and the
    // pointer comes from a live reference anyway.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((value as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// Transparent huge pages for large tables. A lookup in a table of gigabytes is a cache miss
/// either way, but with 4 KiB pages it is also a TLB miss whose page walk misses the cache too;
/// with 2 MiB pages the walk mostly hits. Linux only; elsewhere, and when the kernel says no,
/// the tables simply stay on small pages.
pub(crate) mod huge_pages {
    /// Tables smaller than this gain nothing measurable.
    const MIN_BYTES: usize = 8 << 20;
    const HUGE_PAGE: usize = 2 << 20;

    /// Asks the kernel to back the unused capacity of `v` with huge pages. Call before the
    /// memory is first written: pages already touched stay small.
    #[cfg(target_os = "linux")]
    pub fn advise<T>(v: &Vec<T>) {
        let bytes = v.capacity() * std::mem::size_of::<T>();
        if bytes < MIN_BYTES {
            return;
        }
        let start = v.as_ptr() as usize;
        // Only whole huge pages inside the allocation.
        let first = start.next_multiple_of(HUGE_PAGE);
        let end = (start + bytes) / HUGE_PAGE * HUGE_PAGE;
        if end <= first {
            return;
        }
        // SAFETY: madvise with MADV_HUGEPAGE only changes how the kernel backs the range, never
        // its contents or validity, and the range lies inside memory this Vec owns.
        let result = unsafe { libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE) };
        if result != 0 {
            tracing::debug!(bytes, "madvise(MADV_HUGEPAGE) refused; the index stays on small pages");
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn advise<T>(_: &Vec<T>) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        /// Behaves exactly like a map of multisets under any mix of inserts and removals,
        /// including heavy collisions (few distinct keys), full chunks that overflow into the
        /// next (and round the end), and short tags, as long as no two keys share a tag: keys
        /// that do are the business of the next test.
        #[test]
        fn matches_a_reference_multimap(
            ops in proptest::collection::vec((any::<bool>(), 0u32..40, 0u32..3000), 0..3000),
            spread in proptest::sample::select(vec![1u32, 7919, 104_729_017]),
            slot_bits in proptest::sample::select(vec![12u32, 24]),
        ) {
            let mut map = Postings::with_capacity(2600, slot_bits);
            let mut reference: HashMap<u32, Vec<u32>> = HashMap::new();
            let mut tags: HashMap<u32, u32> = HashMap::new();
            for (insert, key, value) in ops {
                // Few distinct keys collide on purpose; spread ones fill the table more evenly.
                let key = key.wrapping_mul(spread);
                if *tags.entry(map.locate(key).1).or_insert(key) != key {
                    continue;
                }
                let list = reference.entry(key).or_default();
                if insert {
                    prop_assert!(map.insert(key, value));
                    list.push(value);
                } else {
                    let expected = list.iter().position(|&v| v == value).map(|p| list.swap_remove(p)).is_some();
                    prop_assert_eq!(map.remove(key, value), expected);
                }
                prop_assert_eq!(map.len(), reference.values().map(Vec::len).sum::<usize>());
            }
            for (key, mut values) in reference {
                let mut got = Vec::new();
                let count = map.for_each(key, |v| got.push(v));
                got.sort_unstable();
                values.sort_unstable();
                prop_assert_eq!(count, got.len());
                prop_assert_eq!(got, values);
            }
        }

        /// Without tags every key shares them, and equal postings of different keys are one
        /// `u32`, which a removal may take for the other's. Each key still finds all its own
        /// postings after any removals, and removing everything leaves no overflow counted.
        #[test]
        fn untagged_postings_stay_reachable_and_counted(
            ops in proptest::collection::vec((any::<bool>(), 0u32..30, 0u32..8, any::<prop::sample::Index>()), 0..2000),
        ) {
            let mut map = Postings::with_capacity(200, 32);
            let mut reference: HashMap<u32, Vec<u32>> = HashMap::new();
            for (insert, key, value, pick) in ops {
                let list = reference.entry(key).or_default();
                if insert && map.len() < map.max_len() {
                    prop_assert!(map.insert(key, value));
                    list.push(value);
                } else if !list.is_empty() {
                    let value = list.swap_remove(pick.index(list.len()));
                    prop_assert!(map.remove(key, value));
                }
                for (&key, values) in &reference {
                    let mut got = Vec::new();
                    map.for_each(key, |v| got.push(v));
                    for value in 0..8 {
                        let own = values.iter().filter(|&&v| v == value).count();
                        prop_assert!(got.iter().filter(|&&v| v == value).count() >= own);
                    }
                }
            }
            for (key, values) in reference {
                for value in values {
                    prop_assert!(map.remove(key, value));
                }
            }
            prop_assert!(map.is_empty());
            prop_assert!(map.chunks.iter().all(|chunk| chunk.overflow == 0 && chunk.cells.iter().all(|&c| c == EMPTY)));
        }
    }

    #[test]
    fn refuses_what_it_cannot_hold_instead_of_looping() {
        let mut map = Postings::with_capacity(0, 4);
        assert!(!map.insert(1, 15), "slot 15 does not fit in 4 bits with the empty mark");
        assert!(map.insert(1, 14));
        let room = map.max_len();
        for i in 1..room {
            assert!(map.insert(i as u32, 3));
        }
        assert!(!map.insert(7, 3), "a full table must refuse");
        assert_eq!(map.len(), room);
    }
}
