//! The near-duplicate index: finds earlier articles that may be copies of a new one, without
//! scanning, and forgets articles that fall out of the time window.
//!
//! These keys lead to candidates, all looked up in hash tables:
//!
//! * **SimHash blocks** (multi-index hashing). The 64-bit SimHash is split into two 32-bit
//!   halves with a table each. Two hashes within Hamming radius `r` agree within `r / 2` bits
//!   on at least one half (pigeonhole), so probing each table with every key within that
//!   sub-radius finds all of them: radius 1 costs 2 probes, radius 3 costs 2 x 33. The default
//!   is 1 because measurement (BENCHMARKS.md) showed radius 0 to 5 finding the same copies on
//!   real and generated data, the anchors below doing the rest, while each probe is a cache miss
//!   in a large index; on real news SimHash alone stops separating copies from other articles
//!   around 12 to 18 bits anyway.
//! * **Anchors**: the few smallest shingle hashes of the article (the head of its bottom-k
//!   sketch). Two texts that share much of their wording very likely share one of them, which
//!   is what finds rewritten leads, write-thrus and truncated copies that SimHash puts far
//!   apart. An anchor held by too many articles (a stock phrase) stops yielding candidates.
//! * **Lead anchors**: the smallest shingle hash of the article's first 24 shingles (up to two
//!   of them). A teaser of 30 to 80 words shares the whole article's smallest hashes only by
//!   luck (about four times in ten); it shares the lead's whenever it holds the lead's first
//!   sentences. The default of 7 anchors and 1 lead anchor keeps the 8 keys per article, and so
//!   the tables' size and load, of the 8 anchors before it, and lost no copy (BENCHMARKS.md).
//! * **The headline** (`fingerprint::title_key`), stored with the anchors: a wire story's
//!   write-thru keeps it while its wording moves too far for the anchors of its text.
//!
//! Candidates are only candidates: [`crate::pipeline::engine`] confirms them with the sketch.
//!
//! **Who is compared, who is kept.** Event time decides who is compared: a lookup returns only
//! entries whose event time lies within `window_secs` of the article's own, and an article
//! without a trustworthy date (undated, or dated far ahead of its arrival) is compared with
//! every entry, as an undated entry is with every article. Arrival decides who is kept: the
//! index holds the last `capacity` articles that arrived, and the earliest arrival leaves first.
//! No event time seen in a stream says which older articles can still receive copies (one
//! article dated 2025 in a shuffled archive of 2011-2025, a backfill, a feed that runs late),
//! so none of them evicts anything: a copy is found whatever order it arrives in, as long as
//! its original is among the last `capacity` arrivals.
//!
//! The index keeps no copy of an entry's anchor keys. It needs them only to remove the entry
//! and to move its postings when the anchor table grows, and its caller holds them anyway
//! (the engine in each entry's fingerprint: the anchors are the smallest values of its
//! verification sketch), so it reads them back through [`EntryKeys`]. That saves 36 bytes per
//! article at the default nine keys, a quarter of the index.

pub mod keys;
pub mod postings;

use crate::pipeline::fingerprint::LEAD_ANCHORS;
use crate::pipeline::index::postings::{huge_pages, GrowingPostings, Postings, MIN_SLOT_BITS};
pub use crate::pipeline::index::postings::{prefetch_line, Slot};
use std::collections::VecDeque;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexConfig {
    /// Hamming radius for SimHash candidates (0 to 7; see the module docs for the cost).
    pub simhash_radius: u32,
    /// Anchors indexed per article: its smallest shingle hashes (0 disables them; at most 32).
    pub anchors: usize,
    /// Lead anchors indexed per article: the smallest shingle hashes of its first sentences,
    /// which find teasers and excerpts of the lead (0 disables them; at most 2).
    pub lead_anchors: usize,
    /// Index the article's headline too (see `fingerprint::title_key`), which finds a wire
    /// story's write-thru under the same headline when its wording has moved too far for the
    /// anchors of its text. One more key per article.
    pub title_anchor: bool,
    /// An anchor held by more than this many live articles yields no candidates.
    pub max_anchor_postings: usize,
    /// Two articles are compared only when their event times lie within this many seconds.
    pub window_secs: i64,
    /// An article dated more than this many seconds after it arrived has a date that cannot be
    /// trusted (a typo in the year, a wrong clock): it is compared as an undated one is, with
    /// every held article.
    pub max_ahead_secs: i64,
    /// Most articles held: once full, the earliest arrival leaves for each new one. Memory is
    /// about 4.5 KB per held article in the whole engine (BENCHMARKS.md), so the default of one
    /// million takes about 4.5 GB; size it to the articles that arrive within the window.
    pub capacity: usize,
}

/// The event time an entry or a query stands for: from `published_at` to the latest instant
/// its precision allows (a month-precision date covers its month), in Unix seconds. `None` in
/// place of one means the event time is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSpan {
    pub from: i64,
    pub until: i64,
}

impl EventSpan {
    /// Whether two articles with these event times are compared: their spans overlap once
    /// widened by `window_secs`; an unknown time is within the window of any. The index applies
    /// this in its stored units ([`NearDupIndex::candidates`]).
    pub fn within(a: Option<EventSpan>, b: Option<EventSpan>, window_secs: i64) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => {
                a.until.saturating_add(window_secs) >= b.from && b.until.saturating_add(window_secs) >= a.from
            }
            _ => true,
        }
    }
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            simhash_radius: 1,
            anchors: 7,
            lead_anchors: 1,
            title_anchor: true,
            max_anchor_postings: 64,
            window_secs: 7 * 24 * 3600,
            max_ahead_secs: 24 * 3600,
            capacity: 1_000_000,
        }
    }
}

/// Most anchors per article the configuration allows (checked in `config`): each is one more
/// table probe per lookup.
pub const MAX_ANCHORS: usize = 32;

impl IndexConfig {
    /// Anchor keys per article: [`IndexConfig::anchors`], [`IndexConfig::lead_anchors`], then
    /// the headline's if [`IndexConfig::title_anchor`].
    pub fn anchor_keys(&self) -> usize {
        self.anchors + self.lead_anchors + usize::from(self.title_anchor)
    }
}

/// Most anchor keys per entry: [`MAX_ANCHORS`], the lead anchors and the headline's.
pub const MAX_ANCHOR_KEYS: usize = MAX_ANCHORS + LEAD_ANCHORS + 1;

/// Where the index reads back the anchor keys of its live entries (see the module
/// documentation): when it removes an entry and when its anchor table grows.
pub trait EntryKeys {
    /// Writes to `keys` ([`IndexConfig::anchor_keys`] of them) the anchor keys the live entry
    /// at `slot` was inserted with, in the order given to [`NearDupIndex::insert`], and
    /// [`NO_ANCHOR`] past those given. The index reads only the keys it posted.
    fn anchor_keys(&self, slot: Slot, keys: &mut [u32]);

    /// Starts loading, without waiting, what [`EntryKeys::anchor_keys`] will read for `slot`.
    /// The index calls it twice for each entry it will evict: with `depth` 1 two evictions
    /// ahead, then with 0 one eviction ahead. Keys behind a pointer want both: the pointer is
    /// requested at depth 1 and, read at depth 0 when it has come, what it points to. A hint
    /// only; by default nothing.
    fn prefetch(&self, _slot: Slot, _depth: u32) {}
}

/// How many entries ahead a move or rebuild of the anchor table asks for the keys it will read.
const REBUILD_PREFETCH_AHEAD: usize = 16;

/// Slots whose postings move into a growing table on each insert ([`GrowingPostings`]). Enough
/// that a table has moved long before its successor, larger by half, fills; few enough that an
/// insert stays in microseconds where placing all postings at once held the stream for
/// seconds at millions of entries.
const MOVES_PER_INSERT: usize = 32;

/// Stored time of a free slot: no live entry has it.
const FREE: u32 = 0;

/// Stored span of an entry whose event time is unknown: all of time, so that it is within the
/// window of every query.
const UNKNOWN: (u32, u32) = (1, u32::MAX);

/// Event times are stored as 32-bit seconds from a base set 2^31 seconds (68 years) before the
/// first event time seen, which halves the per-article cost of times in the index. Times
/// outside those 136 years are clamped to its ends: such an article is compared as if it were
/// dated at the end, which only matters for archives that old.
const TIME_SPAN_BEFORE_FIRST: i64 = 1 << 31;

/// Marks an unused anchor cell or key; never stored as a posting.
pub const NO_ANCHOR: u32 = u32::MAX;

/// What the index keeps of one slot beside its postings.
#[derive(Debug, Clone, Copy)]
struct Entry {
    simhash: u64,
    /// Earliest event time the entry stands for, stored as [`NearDupIndex::stored_span`].
    from: u32,
    /// Latest event time the entry stands for, stored as [`NearDupIndex::stored_span`];
    /// [`FREE`] for a free slot.
    until: u32,
}

const FREE_ENTRY: Entry = Entry {
    simhash: 0,
    from: FREE,
    until: FREE,
};

/// See the module documentation. Entries are kept as parallel arrays indexed by slot.
#[derive(Debug)]
pub struct NearDupIndex {
    config: IndexConfig,
    /// Each slot's SimHash and event times, side by side: a candidate found by an anchor is
    /// checked against the window and one found by a SimHash half against the radius, and
    /// either reads one cache line.
    entries: Vec<Entry>,
    /// Which anchor keys of each entry have postings: `config.anchor_keys()` bits per slot.
    /// Keys past `max_anchor_postings` when their entry came have none, and a removal must not
    /// take another key's posting for them. Read for live entries only: an insert writes all
    /// of its slot's bits.
    posted: Vec<u64>,
    free: Vec<Slot>,
    low: GrowingPostings,
    high: GrowingPostings,
    anchor_postings: GrowingPostings,
    /// Live entries in arrival order, for eviction: the front is the earliest arrival.
    arrivals: VecDeque<Slot>,
    /// The base of stored times; set by the first event time seen.
    time_base: Option<i64>,
    /// `window_secs` in stored units.
    window: u32,
    live: usize,
    evicted_total: u64,
    /// The anchor postings of a step of [`NearDupIndex::move_postings`], reused.
    moving: Vec<(Slot, u32)>,
    /// [`MIN_SLOT_BITS`] and [`MOVES_PER_INSERT`], but in tests.
    min_slot_bits: u32,
    moves_per_insert: usize,
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
    /// An empty index. Anchor counts past [`MAX_ANCHORS`] and [`LEAD_ANCHORS`] are taken as
    /// those bounds (`config` validation refuses them).
    pub fn new(mut config: IndexConfig) -> Self {
        config.anchors = config.anchors.min(MAX_ANCHORS);
        config.lead_anchors = config.lead_anchors.min(LEAD_ANCHORS);
        Self {
            config,
            entries: Vec::new(),
            posted: Vec::new(),
            free: Vec::new(),
            low: GrowingPostings::default(),
            high: GrowingPostings::default(),
            anchor_postings: GrowingPostings::default(),
            arrivals: VecDeque::new(),
            time_base: None,
            window: config.window_secs.clamp(0, i64::from(u32::MAX)) as u32,
            live: 0,
            evicted_total: 0,
            moving: Vec::new(),
            min_slot_bits: MIN_SLOT_BITS,
            moves_per_insert: MOVES_PER_INSERT,
        }
    }

    /// An index whose postings start at `slot_bits` and widen a bit at a time, and whose
    /// growing tables move one slot per insert, so that tests reach what takes 2^24 entries
    /// otherwise: tables growing for wider slots, lookups and evictions while postings move, and
    /// a table that must grow again before it has moved.
    #[cfg(test)]
    fn with_slot_bits(config: IndexConfig, slot_bits: u32) -> Self {
        let mut index = Self::new(config);
        index.low = GrowingPostings::with_capacity(0, slot_bits);
        index.high = GrowingPostings::with_capacity(0, slot_bits);
        index.anchor_postings = GrowingPostings::with_capacity(0, slot_bits);
        index.min_slot_bits = slot_bits;
        index.moves_per_insert = 1;
        index
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

    /// Whether a posting table is growing: its postings still moving into its successor, the
    /// two held at once (see [`GrowingPostings`]).
    pub fn is_growing(&self) -> bool {
        self.low.moving_from().is_some() || self.anchor_postings.moving_from().is_some()
    }

    /// Entries evicted since the index was created.
    pub fn evicted_total(&self) -> u64 {
        self.evicted_total
    }

    /// The SimHash stored at a live slot.
    pub fn simhash_of(&self, slot: Slot) -> Option<u64> {
        let i = slot as usize;
        self.entries.get(i).filter(|e| e.until != FREE).map(|e| e.simhash)
    }

    /// Candidate slots for an article whose event time is `span` (`None`: unknown), deduplicated,
    /// in no particular order: entries near it by SimHash or sharing an anchor, and within the
    /// window of its event time. Appends to `out`.
    pub fn candidates(&self, simhash: u64, anchors: &[u32], span: Option<EventSpan>, out: &mut Vec<Slot>) {
        let start = out.len();
        let radius = self.config.simhash_radius;
        let probe = |table: &GrowingPostings, key: u32, out: &mut Vec<Slot>| {
            for_each_within(key, radius / 2, &mut |k| {
                table.for_each(k, |slot| {
                    if (self.entries[slot as usize].simhash ^ simhash).count_ones() <= radius {
                        out.push(slot);
                    }
                });
            });
        };
        let anchors = &anchors[..anchors.len().min(self.config.anchor_keys())];
        self.prefetch_postings(simhash, anchors);
        probe(&self.low, simhash as u32, out);
        probe(&self.high, (simhash >> 32) as u32, out);
        for &anchor in anchors.iter().filter(|&&a| a != NO_ANCHOR) {
            let before = out.len();
            let held = self.anchor_postings.for_each(anchor, |slot| out.push(slot));
            if held > self.config.max_anchor_postings {
                out.truncate(before);
            }
        }
        out[start..].sort_unstable();
        let (from, until) = self.query_span(span);
        let mut kept = start;
        let mut previous = None;
        for i in start..out.len() {
            let slot = out[i];
            if previous != Some(slot) && self.within_window(slot, from, until) {
                out[kept] = slot;
                kept += 1;
            }
            previous = Some(slot);
        }
        out.truncate(kept);
    }

    /// A query's span in stored units; all of time when unknown, or before any dated entry
    /// has set the base (every entry is then undated, and within the window of anything).
    fn query_span(&self, span: Option<EventSpan>) -> (u32, u32) {
        match (span, self.time_base) {
            (Some(span), Some(base)) => Self::stored_against(base, span),
            _ => UNKNOWN,
        }
    }

    /// Whether the live entry at `slot` and a span overlap once widened by the window:
    /// [`EventSpan::within`] in stored units.
    fn within_window(&self, slot: Slot, from: u32, until: u32) -> bool {
        let i = slot as usize;
        let Entry {
            from: entry_from,
            until: entry_until,
            ..
        } = self.entries[i];
        u64::from(entry_until) + u64::from(self.window) >= u64::from(from)
            && u64::from(until) + u64::from(self.window) >= u64::from(entry_from)
    }

    /// Starts loading, without waiting, what a later [`NearDupIndex::candidates`] and
    /// [`NearDupIndex::insert`] for an article with `simhash` and `anchors` will read, and what
    /// the next evictions will read. Call it for the next article while the current one is
    /// decided: the misses of a large index then overlap with that work instead of stalling it.
    /// A hint only: results never depend on it.
    pub fn prefetch(&self, simhash: u64, anchors: &[u32], keys: &impl EntryKeys) {
        self.prefetch_postings(simhash, &anchors[..anchors.len().min(self.config.anchor_keys())]);
        // The current article evicts the oldest entry; the next article the one after it.
        self.prefetch_evictions(1, keys);
    }

    /// Requests what evictions will read, for the entry `ahead` places from the front of the
    /// eviction queue: its postings, found through its keys; for the entry after it, its slot
    /// data and where its keys are; for the one after that, where its keys are found. Each
    /// stage reads only what the stage before requested. In a steady stream each article
    /// evicts about one entry, so this is the next article's eviction.
    fn prefetch_evictions(&self, ahead: usize, keys: &impl EntryKeys) {
        if let Some(&slot) = self.arrivals.get(ahead) {
            if let Some(&Entry { simhash, .. }) = self.entries.get(slot as usize) {
                let mut buffer = [NO_ANCHOR; MAX_ANCHOR_KEYS];
                self.prefetch_postings(simhash, self.posted_keys(slot, keys, &mut buffer));
            }
        }
        if let Some(&slot) = self.arrivals.get(ahead + 1) {
            let i = slot as usize;
            if let Some(entry) = self.entries.get(i) {
                prefetch_line(entry);
            }
            if let Some(posted) = self.posted.get(i * self.config.anchor_keys() / 64) {
                prefetch_line(posted);
            }
            keys.prefetch(slot, 0);
        }
        if let Some(&slot) = self.arrivals.get(ahead + 2) {
            keys.prefetch(slot, 1);
        }
    }

    /// The anchor keys with postings of the live entry at `slot`, read back from `keys` into
    /// `buffer`; [`NO_ANCHOR`] for the others.
    fn posted_keys<'b>(&self, slot: Slot, keys: &impl EntryKeys, buffer: &'b mut [u32; MAX_ANCHOR_KEYS]) -> &'b [u32] {
        let n = self.config.anchor_keys();
        let entry = &mut buffer[..n];
        keys.anchor_keys(slot, entry);
        for (k, key) in entry.iter_mut().enumerate() {
            if !self.is_posted(slot as usize * n + k) {
                *key = NO_ANCHOR;
            } else {
                debug_assert_ne!(*key, NO_ANCHOR, "slot {slot} was given back no key for a posted one");
            }
        }
        entry
    }

    fn is_posted(&self, bit: usize) -> bool {
        self.posted
            .get(bit / 64)
            .is_some_and(|word| word >> (bit % 64) & 1 == 1)
    }

    fn set_posted(&mut self, bit: usize, posted: bool) {
        let mask = 1 << (bit % 64);
        let word = &mut self.posted[bit / 64];
        *word = if posted { *word | mask } else { *word & !mask };
    }

    /// Requests the posting lists of an entry with `simhash` and `anchors`: what a lookup, an
    /// insert or a removal of it walks, each list's first cache line and the next.
    ///
    /// At millions of entries the tables are far larger than the cache, so every probe, insert
    /// or removal starts with a miss. Requested together up front, those misses overlap; found
    /// one by one inside the probes, the processor reaches only a few ahead, and a probe run
    /// that crosses into the next line waits for a second miss. Lookups and evictions start
    /// with this; the Kafka worker goes further with [`NearDupIndex::prefetch`], one article
    /// ahead (BENCHMARKS.md has the figures of each step).
    fn prefetch_postings(&self, simhash: u64, anchors: &[u32]) {
        self.low.prefetch(simhash as u32);
        self.high.prefetch((simhash >> 32) as u32);
        for &anchor in anchors.iter().filter(|&&a| a != NO_ANCHOR) {
            self.anchor_postings.prefetch(anchor);
        }
    }

    /// Makes room for one more entry: evicts the earliest arrivals until fewer than `capacity`
    /// are held; their slots go to `evicted`. Call before querying for an article, so that
    /// what it is matched with is still held when it joins. `keys` gives back the evicted
    /// entries' keys.
    pub fn make_room_for_one(&mut self, evicted: &mut Vec<Slot>, keys: &impl EntryKeys) {
        let capacity = self.config.capacity.max(1);
        while self.live >= capacity {
            let Some(slot) = self.arrivals.pop_front() else {
                break;
            };
            self.remove(slot, keys);
            evicted.push(slot);
        }
        // The next call evicts the entry now at the front: its misses start here, and overlap
        // with the lookup and insert that come between.
        if self.live + 1 >= capacity {
            self.prefetch_evictions(0, keys);
        }
    }

    /// `time` as stored against `base`: seconds past it, clamped into `1..u32::MAX` (0 is
    /// [`FREE`], and `u32::MAX` ends the span of an unknown time).
    fn stored(base: i64, time: i64) -> u32 {
        time.saturating_sub(base).clamp(1, i64::from(u32::MAX - 1)) as u32
    }

    /// `span` as stored against `base`; a span that ends before it starts ends where it starts.
    fn stored_against(base: i64, span: EventSpan) -> (u32, u32) {
        (
            Self::stored(base, span.from),
            Self::stored(base, span.until.max(span.from)),
        )
    }

    /// A span as stored, [`UNKNOWN`] for `None`; the first dated span sets the base.
    fn stored_span(&mut self, span: Option<EventSpan>) -> (u32, u32) {
        match span {
            Some(span) => {
                let base = *self
                    .time_base
                    .get_or_insert_with(|| span.from.saturating_sub(TIME_SPAN_BEFORE_FIRST));
                Self::stored_against(base, span)
            }
            None => UNKNOWN,
        }
    }

    /// Grows `v` by an eighth (at least `MIN_GROWTH`) when full, instead of doubling: the
    /// per-slot arrays are most of the index's memory, and doubling leaves up to half unused.
    /// The new capacity is put on huge pages like the tables: eviction reads an entry's hash,
    /// time and anchors before it can find its postings, a TLB miss each on small pages.
    fn push_compact<T>(v: &mut Vec<T>, value: T) {
        const MIN_GROWTH: usize = 1024;
        if v.len() == v.capacity() {
            v.reserve_exact((v.len() / 8).max(MIN_GROWTH));
            huge_pages::advise(v);
        }
        v.push(value);
    }

    /// Sizes an empty index for `entries` arrivals (at most its capacity) at once. A restore
    /// knows how many it inserts: grown a half at a time instead, the tables place every
    /// posting about three times and the per-slot arrays are copied as they grow. Does nothing
    /// to an index that holds or held entries.
    pub fn reserve(&mut self, entries: usize) {
        let entries = entries.min(self.config.capacity);
        if entries == 0 || !self.entries.is_empty() {
            return;
        }
        let n = self.config.anchor_keys();
        self.entries.reserve_exact(entries);
        huge_pages::advise(&self.entries);
        self.posted.reserve_exact((entries * n).div_ceil(64));
        huge_pages::advise(&self.posted);
        self.arrivals.reserve(entries);
        // As wide as the largest slot's number needs (see `make_room`).
        let slot_bits = (u32::BITS - (entries as u32).leading_zeros()).max(self.min_slot_bits);
        self.low = GrowingPostings::with_capacity(entries, slot_bits);
        self.high = GrowingPostings::with_capacity(entries, slot_bits);
        self.anchor_postings = GrowingPostings::with_capacity(entries * n, slot_bits);
    }

    /// Adds an article whose event time is `span` (`None`: unknown) and returns its slot
    /// (possibly one freed by an earlier eviction). Call [`NearDupIndex::make_room_for_one`]
    /// first, or the index grows past its capacity until the next call. The caller keeps
    /// `anchors` for the slot and gives them back through `keys`, which also gives the other
    /// live entries' keys when the anchor table grows.
    pub fn insert(&mut self, simhash: u64, anchors: &[u32], span: Option<EventSpan>, keys: &impl EntryKeys) -> Slot {
        let n = self.config.anchor_keys();
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                Self::push_compact(&mut self.entries, FREE_ENTRY);
                while self.posted.len() * 64 < self.entries.len() * n {
                    Self::push_compact(&mut self.posted, 0);
                }
                (self.entries.len() - 1) as Slot
            }
        };
        let i = slot as usize;
        self.make_room(slot, n, keys);
        let (from, until) = self.stored_span(span);
        self.entries[i] = Entry { simhash, from, until };
        let placed = self.low.insert(simhash as u32, slot) & self.high.insert((simhash >> 32) as u32, slot);
        for k in 0..n {
            let anchor = anchors.get(k).copied().unwrap_or(NO_ANCHOR);
            // A stock phrase past the cap yields nothing, so more postings would only cost.
            let stored = anchor != NO_ANCHOR && self.anchor_postings.count(anchor) <= self.config.max_anchor_postings;
            self.set_posted(i * n + k, stored);
            if stored {
                let placed = self.anchor_postings.insert(anchor, slot);
                debug_assert!(placed, "make_room leaves room for every anchor");
            }
        }
        debug_assert!(placed, "make_room leaves room for both SimHash halves");
        self.arrivals.push_back(slot);
        self.live += 1;
        slot
    }

    /// Makes room, before `slot` is inserted with up to `anchors` anchors, in each posting
    /// table that has none, or whose postings are too narrow for `slot`: it starts growing into
    /// a table larger by half (wide enough), and the postings move over the next inserts
    /// ([`NearDupIndex::move_postings`]). Growing by half keeps the tables between 2/3 and all
    /// of their maximum load; each posting is placed about three times over the index's growth.
    fn make_room(&mut self, slot: Slot, anchors: usize, keys: &impl EntryKeys) {
        let slot_bits = if self.low.holds_slot(slot) {
            self.low.slot_bits()
        } else {
            (u32::BITS - (slot + 1).leading_zeros()).max(self.min_slot_bits)
        };
        let must_grow = |table: &GrowingPostings, adding: usize| {
            table.len() + adding > table.max_len() || slot_bits != table.slot_bits()
        };
        if must_grow(&self.low, 1) {
            let capacity = Self::grown(&self.low, 1);
            if self.low.moving_from().is_some() {
                self.rebuild_simhash_tables(capacity, slot_bits);
            } else {
                self.low.grow(capacity, slot_bits);
                self.high.grow(capacity, slot_bits);
            }
        }
        if must_grow(&self.anchor_postings, anchors) {
            let capacity = Self::grown(&self.anchor_postings, anchors);
            if self.anchor_postings.moving_from().is_some() {
                self.rebuild_anchor_table(capacity, slot_bits, keys);
            } else {
                self.anchor_postings.grow(capacity, slot_bits);
            }
        }
        self.move_postings(keys);
    }

    /// The capacity a table grows to when it must take `adding` more postings: larger by half
    /// than what it holds, and never smaller than it was, so that a table grown only for wider
    /// slots has room for the postings that move into it. While a table is still moving (the
    /// successor filled first, or needs wider slots), its retiring part counts whole, although
    /// some of it has moved: a rare case, where a larger table is better than a second rebuild.
    fn grown(table: &GrowingPostings, adding: usize) -> usize {
        const GROWTH: (usize, usize) = (3, 2);
        let held = table.len() + table.retiring_len();
        ((held + adding) * GROWTH.0 / GROWTH.1).max(table.max_len())
    }

    /// Moves the postings of the next [`MOVES_PER_INSERT`] slots into each growing table.
    /// Called on every insert, so that a table has moved before its successor fills: a table
    /// grows by half, and moving all of its slots takes a thirty-second as many inserts.
    fn move_postings(&mut self, keys: &impl EntryKeys) {
        let slots = self.entries.len();
        // Each posting that moves lands in a random chunk of a table far larger than the cache:
        // the chunks of a step's postings are all requested before any is written, so that
        // their misses overlap instead of coming one after another.
        if let Some(from) = self.low.moving_from() {
            let to = from.saturating_add(self.moves_per_insert).min(slots);
            let moving = |index: &Self, i: usize| index.entries[i].until != FREE && !index.low.has_moved(i as Slot);
            for i in (from..to).filter(|&i| moving(self, i)) {
                self.low.prefetch_successor(self.entries[i].simhash as u32);
                self.high.prefetch_successor((self.entries[i].simhash >> 32) as u32);
            }
            for i in from..to {
                if moving(self, i) {
                    let simhash = self.entries[i].simhash;
                    self.low.insert(simhash as u32, i as Slot);
                    self.high.insert((simhash >> 32) as u32, i as Slot);
                }
            }
            self.low.moved_below(to, slots);
            self.high.moved_below(to, slots);
        }
        if let Some(from) = self.anchor_postings.moving_from() {
            let to = from.saturating_add(self.moves_per_insert).min(slots);
            let mut buffer = [NO_ANCHOR; MAX_ANCHOR_KEYS];
            self.moving.clear();
            for i in from..to {
                // The keys sit behind the caller's pointers, a cache miss each unless requested
                // ahead: growing would otherwise stall the article that triggers it.
                keys.prefetch((i + REBUILD_PREFETCH_AHEAD) as Slot, 0);
                if self.entries[i].until != FREE && !self.anchor_postings.has_moved(i as Slot) {
                    for &anchor in self.posted_keys(i as Slot, keys, &mut buffer) {
                        if anchor != NO_ANCHOR {
                            self.anchor_postings.prefetch_successor(anchor);
                            self.moving.push((i as Slot, anchor));
                        }
                    }
                }
            }
            for &(slot, anchor) in &self.moving {
                self.anchor_postings.insert(anchor, slot);
            }
            self.anchor_postings.moved_below(to, slots);
        }
    }

    /// Places the SimHash postings of every live entry anew in tables of `capacity`, at once:
    /// for a table that must grow again before it has finished moving.
    fn rebuild_simhash_tables(&mut self, capacity: usize, slot_bits: u32) {
        let mut low = Postings::with_capacity(capacity, slot_bits);
        let mut high = Postings::with_capacity(capacity, slot_bits);
        for i in (0..self.entries.len()).filter(|&i| self.entries[i].until != FREE) {
            low.insert(self.entries[i].simhash as u32, i as Slot);
            high.insert((self.entries[i].simhash >> 32) as u32, i as Slot);
        }
        self.low.replace(low);
        self.high.replace(high);
    }

    /// [`NearDupIndex::rebuild_simhash_tables`] for the anchor table.
    fn rebuild_anchor_table(&mut self, capacity: usize, slot_bits: u32, keys: &impl EntryKeys) {
        let mut postings = Postings::with_capacity(capacity, slot_bits);
        let mut buffer = [NO_ANCHOR; MAX_ANCHOR_KEYS];
        for i in (0..self.entries.len()).filter(|&i| self.entries[i].until != FREE) {
            keys.prefetch((i + REBUILD_PREFETCH_AHEAD) as Slot, 0);
            for &anchor in self.posted_keys(i as Slot, keys, &mut buffer) {
                if anchor != NO_ANCHOR {
                    postings.insert(anchor, i as Slot);
                }
            }
        }
        self.anchor_postings.replace(postings);
    }

    /// Removes the live entry at `slot` from the tables and frees its slot.
    fn remove(&mut self, slot: Slot, keys: &impl EntryKeys) {
        let i = slot as usize;
        if self.entries.get(i).is_none_or(|e| e.until == FREE) {
            debug_assert!(false, "slot {slot} was removed while free");
            return;
        }
        self.entries[i].until = FREE;
        let simhash = self.entries[i].simhash;
        let mut buffer = [NO_ANCHOR; MAX_ANCHOR_KEYS];
        let anchors = self.posted_keys(slot, keys, &mut buffer);
        self.prefetch_postings(simhash, anchors);
        self.low.remove(simhash as u32, slot);
        self.high.remove((simhash >> 32) as u32, slot);
        for &anchor in anchors {
            if anchor != NO_ANCHOR {
                let removed = self.anchor_postings.remove(anchor, slot);
                debug_assert!(removed, "slot {slot} was given back a key it was not inserted with");
            }
        }
        self.free.push(slot);
        self.live -= 1;
        self.evicted_total += 1;
    }

    /// Heap bytes of the SimHash part: hashes, times, the two block tables and the arrival
    /// queue.
    pub fn simhash_heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.free.capacity() * 4
            + self.low.heap_bytes()
            + self.high.heap_bytes()
            + self.arrivals.capacity() * std::mem::size_of::<Slot>()
    }

    /// Heap bytes of the anchor part: their postings and which keys of each entry have one.
    pub fn anchor_heap_bytes(&self) -> usize {
        self.posted.capacity() * 8 + self.anchor_postings.heap_bytes()
    }

    /// All heap bytes held by the index.
    pub fn heap_bytes(&self) -> usize {
        self.simhash_heap_bytes() + self.anchor_heap_bytes()
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
            lead_anchors: 0,
            title_anchor: false,
            max_anchor_postings: 3,
            window_secs: 100,
            ..IndexConfig::default()
        })
    }

    /// The caller's side of [`EntryKeys`]: the anchors each slot was inserted with.
    #[derive(Default)]
    struct Kept(Vec<Vec<u32>>);

    impl EntryKeys for Kept {
        fn anchor_keys(&self, slot: Slot, keys: &mut [u32]) {
            keys.fill(NO_ANCHOR);
            let kept = &self.0[slot as usize];
            let n = kept.len().min(keys.len());
            keys[..n].copy_from_slice(&kept[..n]);
        }
    }

    impl Kept {
        /// Makes room, then inserts an entry dated `t` (`None`: undated).
        fn insert(&mut self, idx: &mut NearDupIndex, simhash: u64, anchors: &[u32], t: Option<i64>) -> Slot {
            let mut evicted = Vec::new();
            self.insert_evicting(idx, simhash, anchors, t, &mut evicted)
        }

        fn insert_evicting(
            &mut self,
            idx: &mut NearDupIndex,
            simhash: u64,
            anchors: &[u32],
            t: Option<i64>,
            evicted: &mut Vec<Slot>,
        ) -> Slot {
            idx.make_room_for_one(evicted, self);
            let slot = idx.insert(simhash, anchors, t.map(|t| EventSpan { from: t, until: t }), self);
            if self.0.len() <= slot as usize {
                self.0.resize(slot as usize + 1, Vec::new());
            }
            self.0[slot as usize] = anchors.to_vec();
            slot
        }
    }

    fn query(idx: &NearDupIndex, simhash: u64, anchors: &[u32]) -> Vec<Slot> {
        query_at(idx, simhash, anchors, None)
    }

    fn query_at(idx: &NearDupIndex, simhash: u64, anchors: &[u32], t: Option<i64>) -> Vec<Slot> {
        let mut out = Vec::new();
        idx.candidates(simhash, anchors, t.map(|t| EventSpan { from: t, until: t }), &mut out);
        out
    }

    #[test]
    fn finds_by_anchor_and_ignores_stock_phrases() {
        let mut idx = index(0);
        let mut kept = Kept::default();
        let a = kept.insert(&mut idx, 1, &[10, 20], Some(0));
        assert_eq!(query(&idx, u64::MAX, &[20, 99]), vec![a]);
        for i in 0..3 {
            kept.insert(&mut idx, 100 + i, &[77], Some(0));
        }
        assert_eq!(query(&idx, u64::MAX, &[77]).len(), 3);
        kept.insert(&mut idx, 200, &[77], Some(0));
        assert!(
            query(&idx, u64::MAX, &[77]).is_empty(),
            "an over-full anchor must yield nothing"
        );
    }

    #[test]
    fn compares_within_the_window_of_event_time_whatever_the_arrival_order() {
        let mut idx = index(3);
        let mut kept = Kept::default();
        let late = kept.insert(&mut idx, 0xAAAA, &[], Some(150));
        let early = kept.insert(&mut idx, 0xAAAA, &[], Some(10));
        let undated = kept.insert(&mut idx, 0xAAAA, &[], None);
        // No event time evicts: only arrivals past the capacity do.
        assert_eq!(idx.len(), 3);
        assert_eq!(query_at(&idx, 0xAAAA, &[], Some(200)), vec![late, undated]);
        assert_eq!(query_at(&idx, 0xAAAA, &[], Some(60)), vec![late, early, undated]);
        assert_eq!(query_at(&idx, 0xAAAA, &[], Some(-85)), vec![early, undated]);
        assert_eq!(query_at(&idx, 0xAAAA, &[], Some(5000)), vec![undated]);
        assert_eq!(query_at(&idx, 0xAAAA, &[], None), vec![late, early, undated]);
    }

    #[test]
    fn a_full_index_lets_the_earliest_arrival_go_first() {
        let mut idx = NearDupIndex::new(IndexConfig {
            capacity: 2,
            ..IndexConfig::default()
        });
        let mut kept = Kept::default();
        let mut evicted = Vec::new();
        // SimHashes far apart, so that each finds only itself.
        let (a, b, c) = (0, u64::MAX, 0xFFFF_0000_FFFF_0000);
        let first = kept.insert_evicting(&mut idx, a, &[], Some(100), &mut evicted);
        let second = kept.insert_evicting(&mut idx, b, &[], Some(10), &mut evicted);
        assert!(evicted.is_empty());
        kept.insert_evicting(&mut idx, c, &[], Some(50), &mut evicted);
        assert_eq!(evicted, vec![first], "the earliest arrival, not the oldest date");
        assert_eq!(query(&idx, b, &[]), vec![second]);
        assert!(query(&idx, a, &[]).is_empty());
        assert_eq!((idx.len(), idx.evicted_total()), (2, 1));
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
            let mut kept = Kept::default();
            let mut stored = Vec::new();
            for (i, h) in base.iter().enumerate() {
                // Variations of a few bases make near neighbours common.
                let mut h = *h;
                for &bit in &flips[i % flips.len()] { h ^= 1 << bit; }
                stored.push((kept.insert(&mut idx, h, &[], Some(0)), h));
            }
            for q in &base {
                let mut expected: Vec<Slot> = stored.iter().filter(|(_, h)| (h ^ q).count_ones() <= radius).map(|(s, _)| *s).collect();
                expected.sort_unstable();
                prop_assert_eq!(query(&idx, *q, &[]), expected);
            }
        }

        /// With anchors and evictions, anchors held past the cap (which get no postings), and
        /// postings that start too narrow for the slots (so the tables are rebuilt wider, and
        /// larger, on the way), the index returns exactly the live entries that lie within the
        /// radius or posted an anchor of the query that no more than the cap hold, as a scan
        /// of them would.
        #[test]
        fn search_with_anchors_and_evictions_equals_a_scan(
            // A few SimHashes recur, so that queries meet the postings of entries gone.
            entries in proptest::collection::vec((
                prop_oneof![any::<u64>(), (0u64..6).prop_map(|b| b.wrapping_mul(0x9E37_79B9_7F4A_7C15))],
                proptest::collection::vec(0u32..60, 0..5),
                proptest::option::weighted(0.9, 0i64..300),
                proptest::option::of(0i64..300),
            ), 1..200),
            narrow in any::<bool>(),
            capped in any::<bool>(),
            capacity in 1usize..60,
            reserved in proptest::option::of(1usize..300),
        ) {
            let cap = if capped { 2 } else { usize::MAX };
            let config = IndexConfig {
                simhash_radius: 2,
                anchors: 4,
                lead_anchors: 0,
                title_anchor: false,
                max_anchor_postings: cap,
                window_secs: 100,
                capacity,
                ..IndexConfig::default()
            };
            let mut idx = if narrow { NearDupIndex::with_slot_bits(config, 4) } else { NearDupIndex::new(config) };
            // Sized up front, as a restore does: the same answers as grown a half at a time.
            if let (false, Some(entries)) = (narrow, reserved) {
                idx.reserve(entries);
            }
            let mut kept = Kept::default();
            // Each live entry, in arrival order: its slot, SimHash, the anchors it posted, its
            // time (`None`: undated).
            let mut live: Vec<(Slot, u64, Vec<u32>, Option<i64>)> = Vec::new();
            let mut evicted = Vec::new();
            let held = |live: &[(Slot, u64, Vec<u32>, Option<i64>)], key: u32| {
                live.iter().map(|entry| entry.2.iter().filter(|&&a| a == key).count()).sum::<usize>()
            };
            let point = |t: Option<i64>| t.map(|t| EventSpan { from: t, until: t });
            let near = |a: Option<i64>, b: Option<i64>| EventSpan::within(point(a), point(b), 100);
            for (simhash, anchors, t, probe) in entries {
                // Few keys, so that capped ones are common.
                let anchors: Vec<u32> = anchors.iter().map(|a| if capped { a % 8 } else { *a }).collect();
                let expected_for = |live: &[(Slot, u64, Vec<u32>, Option<i64>)], at: Option<i64>| {
                    let mut expected: Vec<Slot> = live
                        .iter()
                        .filter(|(_, h, posted, time)| {
                            near(*time, at)
                                && ((h ^ simhash).count_ones() <= 2
                                    || posted.iter().any(|x| anchors[..anchors.len().min(4)].contains(x) && held(live, *x) <= cap))
                        })
                        .map(|entry| entry.0)
                        .collect();
                    expected.sort_unstable();
                    expected
                };
                prop_assert_eq!(query_at(&idx, simhash, &anchors, probe), expected_for(&live, probe));
                evicted.clear();
                idx.make_room_for_one(&mut evicted, &kept);
                let gone = live.len().saturating_sub(capacity - 1);
                let mut expected_gone: Vec<Slot> = live.drain(..gone).map(|entry| entry.0).collect();
                prop_assert_eq!(&evicted, &expected_gone);
                expected_gone.clear();
                prop_assert_eq!(query_at(&idx, simhash, &anchors, t), expected_for(&live, t));
                let mut posted: Vec<u32> = Vec::new();
                for &anchor in &anchors[..anchors.len().min(4)] {
                    if held(&live, anchor) + posted.iter().filter(|&&a| a == anchor).count() <= cap {
                        posted.push(anchor);
                    }
                }
                live.push((kept.insert(&mut idx, simhash, &anchors, t), simhash, posted, t));
                prop_assert_eq!(idx.len(), live.len());
            }
        }

    }
}
