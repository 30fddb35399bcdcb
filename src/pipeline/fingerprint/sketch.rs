//! The verification sketch: a compact sample of an article's word shingles and of its numbers.
//!
//! SimHash finds candidates; this sketch decides. It is a bottom-k sample of 32-bit shingle
//! hashes, which estimates *containment* (how much of the shorter text is inside the longer),
//! so a truncated reprint or a teaser still matches its original while a recurring template
//! with other facts does not. Numbers are kept apart because they are where template copies
//! differ ("31 killed" vs "31 wounded" aside, "Jan-Sep turnover $1.2 bn" vs "Jan-Oct $1.4 bn").

/// Sketch of one article: shingle, number and name hashes, each part sorted ascending.
///
/// The three parts share one allocation, shingles first: verification reads a candidate's
/// whole sketch from one run of memory, and an article costs one allocation, not three. When
/// some kept shingles were inside quotation marks, a bit per shingle after the names says
/// which (16 bytes at 128 shingles).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sketch {
    values: Box<[u32]>,
    // u16: at most MAX_SHINGLES and MAX_NUMBERS; the engine keeps a sketch per held article.
    shingles_len: u16,
    numbers_len: u16,
    names_len: u16,
    /// True when the shingles are every shingle of the text (it had at most `k`).
    pub complete: bool,
}

/// Most shingles a sketch keeps (`fingerprint.sketch_size`, checked in `config`).
pub const MAX_SHINGLES: usize = 4096;

/// Unquoted shingles the shorter text's sample needs before its unquoted share is estimated.
const MIN_UNQUOTED: usize = 8;

/// Numbers kept per article; more than this says little more about identity.
pub const MAX_NUMBERS: usize = 24;

/// Keeps the `k` smallest distinct values seen, sorted; returns whether that is all of them.
pub(crate) fn bottom_k(values: &mut Vec<u32>, k: usize) -> bool {
    // The usual case, a long text: the values under a cut expected to keep a few more than k
    // are sorted in linear time, and they hold more than k distinct ones. Otherwise (short
    // texts, many repeats) selecting before sorting still avoids sorting everything: repeated
    // values are rare (a repeated three-word phrase), so the `k + 1` smallest are tried first;
    // when repeats leave fewer than `k + 1` distinct among them, a wider cut follows, then a
    // full sort.
    let (below, expected_cut) = values_below_expected_cut(values, k);
    if let Some(expected_cut) = expected_cut {
        if below > k && sort_spread_below(&mut values[..below], expected_cut) && more_than_k_distinct(values, below, k)
        {
            return false;
        }
    }
    for cut in [k + 1, 2 * k + 1] {
        if k == 0 || values.len() <= cut {
            break;
        }
        // The `cut` smallest are all among the `below` first values when there are enough of
        // them: everything after is larger.
        let pool = if below >= cut { below } else { values.len() };
        values[..pool].select_nth_unstable(cut - 1);
        values[..cut].sort_unstable();
        if more_than_k_distinct(values, cut, k) {
            return false;
        }
    }
    values.sort_unstable();
    values.dedup();
    let complete = values.len() <= k;
    values.truncate(k);
    complete
}

/// Whether the sorted `values[..sorted]` hold more than `k` distinct values; if so, keeps the
/// first `k` of them in `values` (the sample is then not complete).
fn more_than_k_distinct(values: &mut Vec<u32>, sorted: usize, k: usize) -> bool {
    let distinct = 1 + values[..sorted].windows(2).filter(|w| w[0] != w[1]).count();
    if distinct > k {
        values.truncate(sorted);
        values.dedup();
        values.truncate(k);
    }
    distinct > k
}

/// Moves the values under a cut expected to keep a little more than `k + 1` of them to the
/// front and returns how many there are. Hash values are uniform, so a long text's bottom-k
/// then selects among a few hundred values instead of all of them; when too few fall under
/// the cut, [`bottom_k`] uses all the values. Also returns the cut, when one was made.
fn values_below_expected_cut(values: &mut [u32], k: usize) -> (usize, Option<u32>) {
    let n = values.len() as u64;
    let keep = (k as u64 + 1) * 5 / 4 + 16;
    if n <= 2 * keep {
        return (values.len(), None);
    }
    let cut = ((keep << 32) / n).min(u64::from(u32::MAX)) as u32;
    // A branch-free partition: whether a random hash is under the cut is a coin toss, which
    // a branch would mispredict half of the time. `values[..front]` stays under the cut.
    let mut front = 0;
    for j in 0..values.len() {
        let under = values[j] < cut;
        values.swap(j, front);
        front += usize::from(under);
    }
    (front, Some(cut))
}

/// Sorts values that are all under `cut` and spread about evenly below it (hash values), in
/// linear time: a counting sort on buckets of the range leaves them nearly in order, and an
/// insertion sort finishes with a few moves. Returns false, leaving `values` as they were,
/// when there are more than it sorts on the stack.
fn sort_spread_below(values: &mut [u32], cut: u32) -> bool {
    const MAX: usize = 512;
    const BUCKETS: usize = 256;
    if values.len() > MAX {
        return false;
    }
    // `v * scale >> 32` is the bucket of `v`, below BUCKETS for every `v < cut`; the `min` is
    // a guard on the index that never binds for such values.
    let scale = ((BUCKETS as u64) << 32) / (u64::from(cut) + 1);
    let bucket = |v: u32| (((u64::from(v) * scale) >> 32) as usize).min(BUCKETS - 1);
    let mut starts = [0u16; BUCKETS + 1];
    for &v in values.iter() {
        starts[bucket(v) + 1] += 1;
    }
    for b in 0..BUCKETS {
        starts[b + 1] += starts[b];
    }
    let mut spread = [0u32; MAX];
    for &v in values.iter() {
        let slot = &mut starts[bucket(v)];
        spread[usize::from(*slot)] = v;
        *slot += 1;
    }
    let spread = &mut spread[..values.len()];
    for i in 1..spread.len() {
        let v = spread[i];
        let mut j = i;
        while j > 0 && spread[j - 1] > v {
            spread[j] = spread[j - 1];
            j -= 1;
        }
        spread[j] = v;
    }
    values.copy_from_slice(spread);
    true
}

/// Number of values two sorted sets share: one branch-free merge.
fn common(a: &[u32], b: &[u32]) -> usize {
    let (mut i, mut j, mut both) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        let (x, y) = (a[i], b[j]);
        both += usize::from(x == y);
        i += usize::from(x <= y);
        j += usize::from(y <= x);
    }
    both
}

/// Overlap of two sorted sets, restricted to values at most `limit`.
fn overlap(a: &[u32], b: &[u32], limit: u32) -> (usize, usize, usize) {
    let a = &a[..a.partition_point(|&v| v <= limit)];
    let b = &b[..b.partition_point(|&v| v <= limit)];
    // Block by block: eight values of each side compared all against all (the compiler turns
    // the 64 compares into vector ones), then the block with the smaller last value moves on:
    // none of its values can equal a later value of the other side, which are all larger. An
    // eighth of the steps of a merge one value at a time, and no branch on the data: about
    // twice as fast as two interleaved merges (BENCHMARKS.md, tried and not kept).
    const BLOCK: usize = 8;
    let (mut i, mut j, mut both) = (0, 0, 0);
    while i + BLOCK <= a.len() && j + BLOCK <= b.len() {
        let (x, y) = (&a[i..i + BLOCK], &b[j..j + BLOCK]);
        for &v in y {
            both += x.iter().filter(|&&u| u == v).count();
        }
        let (x_last, y_last) = (x[BLOCK - 1], y[BLOCK - 1]);
        i += BLOCK * usize::from(x_last <= y_last);
        j += BLOCK * usize::from(y_last <= x_last);
    }
    both += common(&a[i..], &b[j..]);
    (both, a.len(), b.len())
}

/// How two sketches compare.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    /// Estimated share of the shorter article's shingles found in the longer one.
    pub containment: f64,
    /// Estimated Jaccard similarity of the two shingle sets.
    pub jaccard: f64,
    /// Estimated share of the longer article's shingles found in the shorter one: small when
    /// the shared text is a block inside a longer, different article.
    pub longer_share: f64,
    /// Share of the smaller number set found in the other; `None` when either has too few numbers.
    pub numbers: Option<f64>,
    /// The same for names.
    pub names: Option<f64>,
}

impl Sketch {
    /// A sketch of `shingles` (the `k` smallest distinct shingle hashes, or all of them when
    /// `complete`), `numbers` and `names` (up to [`MAX_NUMBERS`] smallest distinct hashes of
    /// number tokens and of names), each sorted ascending.
    pub fn new(shingles: &[u32], complete: bool, numbers: &[u32], names: &[u32]) -> Self {
        Self::with_quoted(shingles, complete, numbers, names, |_| false)
    }

    /// [`Sketch::new`], marking the shingles for which `quoted` says they were inside
    /// quotation marks.
    pub fn with_quoted(
        shingles: &[u32],
        complete: bool,
        numbers: &[u32],
        names: &[u32],
        quoted: impl Fn(u32) -> bool,
    ) -> Self {
        // The bits are set on the stack first: most articles quote nothing, and then the sketch
        // holds no words for them. `config` bounds a sketch at 4096 shingles.
        let mut marks = [0u32; MAX_SHINGLES.div_ceil(32)];
        for (i, _) in shingles.iter().enumerate().filter(|&(_, &h)| quoted(h)) {
            if let Some(word) = marks.get_mut(i / 32) {
                *word |= 1 << (i % 32);
            }
        }
        let words = if marks.iter().any(|&w| w != 0) {
            shingles.len().div_ceil(32).min(marks.len())
        } else {
            0
        };
        let mut values = Vec::with_capacity(shingles.len() + numbers.len() + names.len() + words);
        values.extend_from_slice(shingles);
        values.extend_from_slice(numbers);
        values.extend_from_slice(names);
        values.extend_from_slice(&marks[..words]);
        Self {
            values: values.into_boxed_slice(),
            shingles_len: shingles.len() as u16,
            numbers_len: numbers.len() as u16,
            names_len: names.len() as u16,
            complete,
        }
    }

    /// The sketch as stored: every value (shingles, numbers, names, then the quote bits), the
    /// three lengths, and whether it is complete. [`Sketch::from_stored`] reads it back.
    pub fn stored(&self) -> (&[u32], [u32; 3], bool) {
        (
            &self.values,
            [self.shingles_len, self.numbers_len, self.names_len].map(u32::from),
            self.complete,
        )
    }

    /// A sketch from what [`Sketch::stored`] gave; `None` when the lengths do not fit the
    /// values (the quote bits, if any, are one word per 32 shingles).
    pub fn from_stored(values: Vec<u32>, lens: [u32; 3], complete: bool) -> Option<Self> {
        let [shingles, numbers, names] = lens.map(|l| l as usize);
        let marks = values
            .len()
            .checked_sub(shingles.checked_add(numbers)?.checked_add(names)?)?;
        if shingles > MAX_SHINGLES || (marks != 0 && marks != shingles.div_ceil(32)) {
            return None;
        }
        Some(Self {
            values: values.into_boxed_slice(),
            shingles_len: u16::try_from(lens[0]).ok()?,
            numbers_len: u16::try_from(lens[1]).ok()?,
            names_len: u16::try_from(lens[2]).ok()?,
            complete,
        })
    }

    /// The shingle hashes, sorted.
    pub fn shingles(&self) -> &[u32] {
        &self.values[..usize::from(self.shingles_len)]
    }

    /// The hashes of number tokens, sorted.
    pub fn numbers(&self) -> &[u32] {
        let start = usize::from(self.shingles_len);
        &self.values[start..start + usize::from(self.numbers_len)]
    }

    /// The hashes of names, sorted.
    pub fn names(&self) -> &[u32] {
        let start = usize::from(self.shingles_len) + usize::from(self.numbers_len);
        &self.values[start..start + usize::from(self.names_len)]
    }

    /// The bits saying which shingles were quoted; empty when none was.
    fn quoted_marks(&self) -> &[u32] {
        &self.values[usize::from(self.shingles_len) + usize::from(self.numbers_len) + usize::from(self.names_len)..]
    }

    /// Whether the `i`th shingle was inside quotation marks.
    pub fn is_quoted(&self, i: usize) -> bool {
        self.quoted_marks().get(i / 32).is_some_and(|w| w >> (i % 32) & 1 == 1)
    }

    /// Whether `fact` (a figure's or a name's hash) is among this text's figures or names:
    /// `None` when its samples cannot tell (full, and `fact` above what they kept).
    pub fn has_fact(&self, fact: u32) -> Option<bool> {
        let mut unknown = false;
        for set in [self.numbers(), self.names()] {
            if set.binary_search(&fact).is_ok() {
                return Some(true);
            }
            unknown |= set.len() >= MAX_NUMBERS && set.last().is_some_and(|&last| fact > last);
        }
        (!unknown).then_some(false)
    }

    /// Estimated share of the shorter text's own wording, outside quotation marks, found in
    /// the longer (the shorter as for [`Similarity::containment`]); `None` when it quotes
    /// nothing (then it is the containment) or too little of it is its own to tell. Apart
    /// from [`Sketch::similarity`]: only a pair that may be a copy needs it.
    pub fn unquoted_share(&self, other: &Sketch) -> Option<f64> {
        let limit = self.threshold().min(other.threshold());
        let count = |s: &Sketch| s.shingles().partition_point(|&v| v <= limit);
        if count(self) <= count(other) {
            self.own_share(other, limit)
        } else {
            other.own_share(self, limit)
        }
    }

    /// The largest shingle hash this sample stands for: all of them when it is complete.
    fn threshold(&self) -> u32 {
        if self.complete {
            u32::MAX
        } else {
            self.shingles().last().copied().unwrap_or(u32::MAX)
        }
    }

    /// The share of this sketch's unquoted shingles up to `limit` found in `other`; `None`
    /// when none is quoted or fewer than [`MIN_UNQUOTED`] are not.
    fn own_share(&self, other: &Sketch, limit: u32) -> Option<f64> {
        if self.quoted_marks().is_empty() {
            return None;
        }
        let theirs = other.shingles();
        let (mut j, mut own, mut shared) = (0, 0usize, 0usize);
        for (i, &v) in self.shingles().iter().enumerate().take_while(|&(_, &v)| v <= limit) {
            if self.is_quoted(i) {
                continue;
            }
            own += 1;
            j += theirs[j..].partition_point(|&w| w < v);
            shared += usize::from(theirs.get(j) == Some(&v));
        }
        (own >= MIN_UNQUOTED).then(|| shared as f64 / own as f64)
    }

    /// All the values, for reading them into cache ahead of a comparison.
    pub(crate) fn values(&self) -> &[u32] {
        &self.values
    }

    /// Compares two sketches. Both samples are cut at the same hash threshold, which makes them
    /// uniform samples of the same hash range, so their overlap estimates the true overlap.
    pub fn similarity(&self, other: &Sketch) -> Similarity {
        let limit = self.threshold().min(other.threshold());
        let (both, a, b) = overlap(self.shingles(), other.shingles(), limit);
        let smaller = a.min(b);
        let union = a + b - both;
        let containment = if smaller == 0 {
            0.0
        } else {
            both as f64 / smaller as f64
        };
        let jaccard = if union == 0 { 0.0 } else { both as f64 / union as f64 };
        let larger = a.max(b);
        let longer_share = if larger == 0 { 0.0 } else { both as f64 / larger as f64 };
        // A set that filled its sample kept only its smallest hashes, so both sets are compared
        // below the largest value such a sample holds, as the shingles are: a value above it
        // may well be in the full set. Without the cut, a long text's many figures look like
        // other figures to its short excerpt.
        let sample_limit = |s: &[u32]| match s.last() {
            Some(&last) if s.len() >= MAX_NUMBERS => last,
            _ => u32::MAX,
        };
        let set_overlap = |a: &[u32], b: &[u32], min: usize| {
            let (both, a, b) = overlap(a, b, sample_limit(a).min(sample_limit(b)));
            (a >= min && b >= min).then(|| both as f64 / a.min(b) as f64)
        };
        let numbers = set_overlap(self.numbers(), other.numbers(), 2);
        let names = set_overlap(self.names(), other.names(), 3);
        Similarity {
            containment,
            jaccard,
            longer_share,
            numbers,
            names,
        }
    }

    /// Heap bytes held by this sketch.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sketch(values: impl IntoIterator<Item = u32>, k: usize) -> Sketch {
        let mut shingles: Vec<u32> = values.into_iter().map(|v| v.wrapping_mul(2_654_435_761)).collect();
        let complete = bottom_k(&mut shingles, k);
        Sketch::new(&shingles, complete, &[], &[])
    }

    /// `bottom_k` against sorting everything.
    fn check_bottom_k(mut values: Vec<u32>, k: usize) -> Result<(), proptest::test_runner::TestCaseError> {
        let mut expected = values.clone();
        expected.sort_unstable();
        expected.dedup();
        let all = expected.len() <= k;
        expected.truncate(k);
        let complete = bottom_k(&mut values, k);
        proptest::prop_assert_eq!(values, expected);
        proptest::prop_assert_eq!(complete, all);
        Ok(())
    }

    proptest::proptest! {
        #[test]
        fn overlap_counts_the_common_values_under_the_limit(
            a in proptest::collection::btree_set(0u32..300, 0..150),
            b in proptest::collection::btree_set(0u32..300, 0..150),
            limit in 0u32..320,
        ) {
            let (a, b): (Vec<u32>, Vec<u32>) = (a.into_iter().collect(), b.into_iter().collect());
            let under = |s: &[u32]| s.iter().filter(|&&v| v <= limit).count();
            let common = a.iter().filter(|&&v| v <= limit && b.binary_search(&v).is_ok()).count();
            proptest::prop_assert_eq!(overlap(&a, &b, limit), (common, under(&a), under(&b)));
        }

        // Long inputs over the whole range take the pre-cut; skewed ones (many repeats, or all
        // values high) test its fallback.
        #[test]
        fn bottom_k_keeps_the_k_smallest_distinct_values_of_long_inputs(
            values in proptest::collection::vec(
                proptest::prop_oneof![proptest::prelude::any::<u32>(), 0u32..40, (u32::MAX - 5000)..=u32::MAX],
                0..3000,
            ),
            k in 1usize..200,
        ) {
            check_bottom_k(values, k)?;
        }

        #[test]
        fn bottom_k_keeps_the_k_smallest_distinct_values(values in proptest::collection::vec(0u32..500, 0..600), k in 1usize..64) {
            check_bottom_k(values, k)?;
        }
    }

    #[test]
    fn identical_sets_are_fully_similar() {
        let a = sketch(0..1000, 128);
        let s = a.similarity(&a);
        assert_eq!((s.containment, s.jaccard), (1.0, 1.0));
    }

    #[test]
    fn an_excerpt_is_not_faulted_for_figures_a_full_sample_could_not_hold() {
        // A long report with 60 figures keeps its 24 smallest hashes; an excerpt quotes four of
        // its figures, three of them above the report's sample.
        let figures: Vec<u32> = (1..=60).map(|v| v * 1000).collect();
        let report = Sketch::new(&[1, 2, 3], false, &figures[..MAX_NUMBERS], &[]);
        let excerpt = Sketch::new(&[1, 2, 3], true, &[5000, 30_000, 41_000, 52_000], &[]);
        // Below the report's largest sampled hash the excerpt has one figure, too few to judge.
        assert_eq!(excerpt.similarity(&report).numbers, None);
        let quoted_low = Sketch::new(&[1, 2, 3], true, &[5000, 7000, 52_000], &[]);
        assert_eq!(quoted_low.similarity(&report).numbers, Some(1.0));
        // Other figures below the cut still count against it: a template with new numbers.
        let other = Sketch::new(&[1, 2, 3], true, &[5500, 7500, 52_000], &[]);
        assert_eq!(other.similarity(&report).numbers, Some(0.0));
    }

    #[test]
    fn a_prefix_is_contained_in_its_whole() {
        let whole = sketch(0..2000, 128);
        let teaser = sketch(0..300, 128);
        let s = teaser.similarity(&whole);
        assert!(s.containment > 0.9, "{s:?}");
        assert!(s.jaccard < 0.3, "{s:?}");
    }

    #[test]
    fn disjoint_sets_share_nothing() {
        let s = sketch(0..1000, 128).similarity(&sketch(5000..6000, 128));
        assert_eq!(s.containment, 0.0);
    }

    #[test]
    fn half_overlap_is_estimated_near_half() {
        let s = sketch(0..2000, 128).similarity(&sketch(1000..3000, 128));
        assert!((s.containment - 0.5).abs() < 0.15, "{s:?}");
    }
}
