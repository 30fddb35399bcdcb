//! The near-duplicate index: finds earlier articles that may be copies of a new one, without
//! scanning, and forgets articles that fall out of the time window.
//!
//! Two kinds of keys lead to candidates, both looked up in hash tables:
//!
//! * **SimHash blocks** (multi-index hashing). The 64-bit SimHash is split into two 32-bit
//!   halves with a table each. Two hashes within Hamming radius `r` agree within `r / 2` bits
//!   on at least one half (pigeonhole), so probing each table with every key within that
//!   sub-radius finds all of them. Radius 3 costs 2 x 33 probes; beyond it the probe count
//!   grows with the square of the radius, and on real news SimHash alone stops separating
//!   copies from other articles around 12 to 18 bits anyway (BENCHMARKS.md has the figures).
//! * **Anchors**: the few smallest shingle hashes of the article (the head of its bottom-k
//!   sketch). Two texts that share much of their wording very likely share one of them, which
//!   is what finds rewritten leads, write-thrus and truncated teasers that SimHash puts far
//!   apart. An anchor held by too many articles (a stock phrase) stops yielding candidates.
//!
//! Candidates are only candidates: [`crate::engine`] confirms them with the sketch.
//! Eviction follows event time: an entry leaves once the newest event time seen is more than
//! the window past its own, whatever order articles arrived in.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// Position of an entry in the index; reused after eviction.
pub type Slot = u32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexConfig {
    /// Hamming radius for SimHash candidates (0 to 7; see the module docs for the cost).
    pub simhash_radius: u32,
    /// Anchors indexed per article (0 disables anchor candidates).
    pub anchors: usize,
    /// An anchor held by more than this many live articles yields no candidates.
    pub max_anchor_postings: usize,
    /// Time window in seconds of event time.
    pub window_secs: i64,
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            simhash_radius: 3,
            anchors: 8,
            max_anchor_postings: 64,
            window_secs: 7 * 24 * 3600,
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    simhash: u64,
    event_time: i64,
    anchors: Box<[u32]>,
    live: bool,
}

/// Postings lists keyed by a 32-bit key. Small lists dominate, so a plain Vec per key.
type Postings = HashMap<u32, Vec<Slot>>;

fn remove_posting(table: &mut Postings, key: u32, slot: Slot) {
    if let Some(list) = table.get_mut(&key) {
        if let Some(pos) = list.iter().position(|&s| s == slot) {
            list.swap_remove(pos);
        }
        if list.is_empty() {
            table.remove(&key);
        }
    }
}

/// See the module documentation.
#[derive(Debug)]
pub struct NearDupIndex {
    config: IndexConfig,
    entries: Vec<Entry>,
    free: Vec<Slot>,
    low: Postings,
    high: Postings,
    anchors: Postings,
    by_time: BinaryHeap<Reverse<(i64, Slot)>>,
    newest_event_time: i64,
    live: usize,
    evicted_total: u64,
}

/// Calls `f` with every 32-bit value within Hamming distance `radius` of `key`.
fn for_each_within(key: u32, radius: u32, f: &mut impl FnMut(u32)) {
    fn walk(value: u32, from_bit: u32, left: u32, f: &mut impl FnMut(u32)) {
        f(value);
        if left == 0 {
            return;
        }
        for bit in from_bit..32 {
            walk(value ^ (1 << bit), bit + 1, left - 1, f);
        }
    }
    walk(key, 0, radius, f);
}

impl NearDupIndex {
    pub fn new(config: IndexConfig) -> Self {
        Self {
            config,
            entries: Vec::new(),
            free: Vec::new(),
            low: HashMap::new(),
            high: HashMap::new(),
            anchors: HashMap::new(),
            by_time: BinaryHeap::new(),
            newest_event_time: i64::MIN,
            live: 0,
            evicted_total: 0,
        }
    }

    pub fn config(&self) -> &IndexConfig {
        &self.config
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Entries evicted since the index was created.
    pub fn evicted_total(&self) -> u64 {
        self.evicted_total
    }

    /// The SimHash stored at a live slot.
    pub fn simhash_of(&self, slot: Slot) -> Option<u64> {
        self.entries.get(slot as usize).filter(|e| e.live).map(|e| e.simhash)
    }

    /// Candidate slots for an article, deduplicated, in no particular order. Appends to `out`.
    pub fn candidates(&self, simhash: u64, anchors: &[u32], out: &mut Vec<Slot>) {
        let start = out.len();
        let sub_radius = self.config.simhash_radius / 2;
        let radius = self.config.simhash_radius;
        let probe = |table: &Postings, key: u32, out: &mut Vec<Slot>| {
            for_each_within(key, sub_radius, &mut |k| {
                if let Some(list) = table.get(&k) {
                    for &slot in list {
                        if (self.entries[slot as usize].simhash ^ simhash).count_ones() <= radius {
                            out.push(slot);
                        }
                    }
                }
            });
        };
        probe(&self.low, simhash as u32, out);
        probe(&self.high, (simhash >> 32) as u32, out);
        for anchor in anchors.iter().take(self.config.anchors) {
            if let Some(list) = self.anchors.get(anchor) {
                if list.len() <= self.config.max_anchor_postings {
                    out.extend_from_slice(list);
                }
            }
        }
        out[start..].sort_unstable();
        let mut kept = start;
        for i in start..out.len() {
            if i == start || out[i] != out[kept - 1] {
                out[kept] = out[i];
                kept += 1;
            }
        }
        out.truncate(kept);
    }

    /// Moves the window forward to `event_time` (never back) and evicts what falls out of it;
    /// their slots go to `evicted`. Call before querying for an article, so that it is
    /// compared only with what is in the window.
    pub fn advance_to(&mut self, event_time: i64, evicted: &mut Vec<Slot>) {
        self.newest_event_time = self.newest_event_time.max(event_time);
        self.evict_older_than(self.newest_event_time.saturating_sub(self.config.window_secs), evicted);
    }

    /// Adds an article and returns its slot (possibly one freed by an earlier eviction).
    pub fn insert(&mut self, simhash: u64, anchors: &[u32], event_time: i64) -> Slot {
        let anchors: Box<[u32]> = anchors.iter().take(self.config.anchors).copied().collect();
        let entry = Entry {
            simhash,
            event_time,
            anchors,
            live: true,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.entries[slot as usize] = entry;
                slot
            }
            None => {
                self.entries.push(entry);
                (self.entries.len() - 1) as Slot
            }
        };
        self.low.entry(simhash as u32).or_default().push(slot);
        self.high.entry((simhash >> 32) as u32).or_default().push(slot);
        for &anchor in self.entries[slot as usize].anchors.iter() {
            self.anchors.entry(anchor).or_default().push(slot);
        }
        self.by_time.push(Reverse((event_time, slot)));
        self.live += 1;
        slot
    }

    /// Removes every entry whose event time is before `cutoff`; their slots go to `evicted`.
    pub fn evict_older_than(&mut self, cutoff: i64, evicted: &mut Vec<Slot>) {
        while let Some(&Reverse((time, slot))) = self.by_time.peek() {
            if time >= cutoff {
                break;
            }
            self.by_time.pop();
            let entry = &mut self.entries[slot as usize];
            if !entry.live || entry.event_time != time {
                continue;
            }
            entry.live = false;
            let simhash = entry.simhash;
            let anchors = std::mem::take(&mut entry.anchors);
            remove_posting(&mut self.low, simhash as u32, slot);
            remove_posting(&mut self.high, (simhash >> 32) as u32, slot);
            for &anchor in anchors.iter() {
                remove_posting(&mut self.anchors, anchor, slot);
            }
            self.free.push(slot);
            self.live -= 1;
            self.evicted_total += 1;
            evicted.push(slot);
        }
    }

    /// Approximate heap bytes held by the index, for the memory gauge and benchmarks.
    pub fn heap_bytes(&self) -> usize {
        let postings = |t: &Postings| {
            t.capacity() * (std::mem::size_of::<u32>() + std::mem::size_of::<Vec<Slot>>() + 1)
                + t.values().map(|v| v.capacity() * std::mem::size_of::<Slot>()).sum::<usize>()
        };
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.entries.iter().map(|e| e.anchors.len() * 4).sum::<usize>()
            + self.free.capacity() * 4
            + postings(&self.low)
            + postings(&self.high)
            + postings(&self.anchors)
            + self.by_time.capacity() * std::mem::size_of::<Reverse<(i64, Slot)>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn index(radius: u32) -> NearDupIndex {
        NearDupIndex::new(IndexConfig {
            simhash_radius: radius,
            anchors: 4,
            max_anchor_postings: 3,
            window_secs: 100,
        })
    }

    fn query(idx: &NearDupIndex, simhash: u64, anchors: &[u32]) -> Vec<Slot> {
        let mut out = Vec::new();
        idx.candidates(simhash, anchors, &mut out);
        out
    }

    #[test]
    fn finds_by_anchor_and_ignores_stock_phrases() {
        let mut idx = index(0);
        let a = idx.insert(1, &[10, 20], 0);
        assert_eq!(query(&idx, u64::MAX, &[20, 99]), vec![a]);
        for i in 0..3 {
            idx.insert(100 + i, &[77], 0);
        }
        assert_eq!(query(&idx, u64::MAX, &[77]).len(), 3);
        idx.insert(200, &[77], 0);
        assert!(query(&idx, u64::MAX, &[77]).is_empty(), "an over-full anchor must yield nothing");
    }

    #[test]
    fn evicts_by_event_time_whatever_the_arrival_order() {
        let mut idx = index(3);
        let mut ev = Vec::new();
        idx.advance_to(150, &mut ev);
        let late_old = idx.insert(0xAAAA, &[], 150);
        idx.advance_to(10, &mut ev);
        let early = idx.insert(0xBBBB, &[], 10);
        assert!(ev.is_empty());
        idx.advance_to(200, &mut ev);
        idx.insert(0xCCCC, &[], 200);
        assert_eq!(ev, vec![early]);
        assert_eq!(query(&idx, 0xAAAA, &[]), vec![late_old]);
        assert!(query(&idx, 0xBBBB, &[]).is_empty());
        assert_eq!(idx.len(), 2);
        assert_eq!(idx.evicted_total(), 1);
    }

    proptest! {
        /// The index returns exactly the live entries within the radius that a scan would find
        /// (no anchors involved), for random hashes and random flips.
        #[test]
        fn simhash_search_equals_a_linear_scan(
            base in proptest::collection::vec(any::<u64>(), 1..40),
            flips in proptest::collection::vec(proptest::collection::vec(0u32..64, 0..6), 1..40),
            radius in 0u32..6,
        ) {
            let mut idx = index(radius);
            let mut stored = Vec::new();
            for (i, h) in base.iter().enumerate() {
                // Variations of a few bases make near neighbours common.
                let mut h = *h;
                for &bit in &flips[i % flips.len()] { h ^= 1 << bit; }
                stored.push((idx.insert(h, &[], 0), h));
            }
            for q in &base {
                let mut expected: Vec<Slot> = stored.iter().filter(|(_, h)| (h ^ q).count_ones() <= radius).map(|(s, _)| *s).collect();
                expected.sort_unstable();
                prop_assert_eq!(query(&idx, *q, &[]), expected);
            }
        }
    }
}
