//! A compact hash multimap from 32-bit keys to 32-bit slots, for the index's postings.
//!
//! Each posting is one `u64` in an open-addressing table with linear probing, so a posting
//! costs 8 bytes divided by the load factor, against 40 or more for a `HashMap<u32, Vec<u32>>`.
//! Keys are hash values already, so a multiplicative mix is enough to spread them.
//!
//! Entries are kept in Robin Hood order: along a probe run, in the order of their home cells.
//! A lookup then stops at the first entry whose home comes after its key's, instead of at the
//! first empty cell. With plain linear probing a lookup at load 0.72 read about 7 cells, often
//! two or three cache lines, against about 2 at load 0.48; lookup time followed the load, which
//! swings between 3/8 and 3/4 as the table doubles, more than it followed the size.

const EMPTY: u64 = u64::MAX;
const MIN_CAPACITY: usize = 1024;

#[derive(Debug, Clone)]
pub struct MultiMap {
    table: Vec<u64>,
    len: usize,
}

#[inline]
fn pack(key: u32, value: u32) -> u64 {
    (u64::from(key) << 32) | u64::from(value)
}

#[inline]
fn key_of(packed: u64) -> u32 {
    (packed >> 32) as u32
}

impl Default for MultiMap {
    fn default() -> Self {
        Self {
            table: vec![EMPTY; MIN_CAPACITY],
            len: 0,
        }
    }
}

impl MultiMap {
    #[inline]
    fn home(&self, key: u32) -> usize {
        let mixed = u64::from(key).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (mixed >> (64 - self.table.len().trailing_zeros())) as usize
    }

    #[inline]
    fn mask(&self) -> usize {
        self.table.len() - 1
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn heap_bytes(&self) -> usize {
        self.table.len() * std::mem::size_of::<u64>()
    }

    /// Calls `f` with every value stored under `key`; returns how many there were.
    #[inline]
    pub fn for_each(&self, key: u32, mut f: impl FnMut(u32)) -> usize {
        let mut i = self.home(key);
        let mut distance = 0;
        let mut found = 0;
        loop {
            let packed = self.table[i];
            // An entry nearer its home than `key`'s entries would be has a later home, and so
            // has everything after it.
            if packed == EMPTY || self.distance(packed, i) < distance {
                return found;
            }
            if key_of(packed) == key {
                f(packed as u32);
                found += 1;
            }
            i = (i + 1) & self.mask();
            distance += 1;
        }
    }

    /// How far past its home cell the entry at cell `i` sits.
    #[inline]
    fn distance(&self, packed: u64, i: usize) -> usize {
        i.wrapping_sub(self.home(key_of(packed))) & self.mask()
    }

    /// Asks the processor to start loading the cell where `key`'s postings start, without
    /// waiting for it: a hint for a lookup that comes later.
    #[inline]
    pub fn prefetch(&self, key: u32) {
        const CELLS_PER_LINE: usize = 64 / std::mem::size_of::<u64>();
        let home = self.home(key);
        prefetch_line(&self.table[home]);
        // Probe runs often cross into the next line, more often the fuller the table is.
        prefetch_line(&self.table[(home + CELLS_PER_LINE) & self.mask()]);
    }

    /// Number of values under `key`.
    pub fn count(&self, key: u32) -> usize {
        self.for_each(key, |_| {})
    }

    pub fn insert(&mut self, key: u32, value: u32) {
        // Load stays at most 3/4, which keeps probe runs short. `u64::MAX` is reserved for
        // empty cells, so the pair (u32::MAX, u32::MAX) is never stored: slots never get there.
        if (self.len + 1) * 4 > self.table.len() * 3 {
            self.grow();
        }
        self.place(pack(key, value));
        self.len += 1;
    }

    /// Robin Hood insertion: an entry takes the cell of the first resident that sits nearer
    /// its own home, and that resident moves on in its place, which keeps homes in order.
    fn place(&mut self, mut packed: u64) {
        let mut i = self.home(key_of(packed));
        let mut distance = 0;
        loop {
            let resident = self.table[i];
            if resident == EMPTY {
                self.table[i] = packed;
                return;
            }
            let resident_distance = self.distance(resident, i);
            if resident_distance < distance {
                self.table[i] = packed;
                packed = resident;
                distance = resident_distance;
            }
            i = (i + 1) & self.mask();
            distance += 1;
        }
    }

    fn grow(&mut self) {
        let size = self.table.len() * 2;
        let mut doubled = Vec::with_capacity(size);
        huge_pages::advise(&doubled);
        doubled.resize(size, EMPTY);
        let old = std::mem::replace(&mut self.table, doubled);
        for packed in old.into_iter().filter(|&p| p != EMPTY) {
            self.place(packed);
        }
    }

    /// Removes one (key, value) pair if present.
    pub fn remove(&mut self, key: u32, value: u32) -> bool {
        let target = pack(key, value);
        let mask = self.mask();
        let mut i = self.home(key);
        let mut distance = 0;
        loop {
            let packed = self.table[i];
            if packed == EMPTY || self.distance(packed, i) < distance {
                return false;
            }
            if packed == target {
                break;
            }
            i = (i + 1) & mask;
            distance += 1;
        }
        // Backward shift: the entries after the hole, up to the first empty cell or the first
        // entry at its home, move back one cell; they stay in order of their homes.
        loop {
            let next = (i + 1) & mask;
            let packed = self.table[next];
            if packed == EMPTY || self.distance(packed, next) == 0 {
                break;
            }
            self.table[i] = packed;
            i = next;
        }
        self.table[i] = EMPTY;
        self.len -= 1;
        true
    }
}

/// Starts loading the cache line holding `value` without waiting for it. A hint only: it
/// never faults and changes no state, so it is sound for any reference. Elsewhere than on
/// x86_64 (no stable prefetch intrinsic yet) it reads the value, an ordinary load that still
/// overlaps with the others issued next to it.
#[inline]
pub(crate) fn prefetch_line<T: Copy>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 only moves a line into the cache; it never faults or writes, and the
    // pointer comes from a live reference anyway.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((value as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    std::hint::black_box(*value);
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
        /// Behaves like a map of multisets under any mix of inserts and removals, including
        /// heavy collisions (few distinct keys) and growth.
        #[test]
        fn matches_a_reference_multimap(
            ops in proptest::collection::vec((any::<bool>(), 0u32..40, 0u32..3000), 0..3000),
            spread in proptest::sample::select(vec![1u32, 7919, 104_729_017]),
        ) {
            let mut map = MultiMap::default();
            let mut reference: HashMap<u32, Vec<u32>> = HashMap::new();
            for (insert, key, value) in ops {
                // Few distinct keys collide on purpose; spread ones fill the table more evenly.
                let key = key.wrapping_mul(spread);
                if insert {
                    map.insert(key, value);
                    reference.entry(key).or_default().push(value);
                } else {
                    let list = reference.entry(key).or_default();
                    let expected = list.iter().position(|&v| v == value).map(|p| list.swap_remove(p)).is_some();
                    prop_assert_eq!(map.remove(key, value), expected);
                }
            }
            for (key, mut values) in reference {
                let mut got = Vec::new();
                map.for_each(key, |v| got.push(v));
                got.sort_unstable();
                values.sort_unstable();
                prop_assert_eq!(got, values);
            }
        }
    }
}
