//! Fingerprints of a normalized article: the exact hash, the 64-bit SimHash and the sketch.
//!
//! This module owns how features are cut from the token stream and hashed. Every hash is xxh3:
//! the `simhash` crate hashes whitespace tokens with SipHash and takes no custom hasher, and our
//! own loop over xxh3 hashes is several times faster (see `benches/core.rs`, which keeps the
//! crate as a reference).

pub mod headline;
pub mod sketch;

pub use headline::{same_headline, title_key, MIN_TITLE_WORDS};

use crate::pipeline::fingerprint::sketch::{bottom_k, Sketch, MAX_NUMBERS};
use crate::pipeline::normalize::Normalized;
use xxhash_rust::xxh3::xxh3_64;

/// How features are cut. Defaults were chosen with `syndic eval` (see BENCHMARKS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FingerprintConfig {
    /// Words per SimHash feature (1 = single words).
    pub simhash_shingle: usize,
    /// Words per sketch shingle.
    pub sketch_shingle: usize,
    /// Shingle hashes kept in the sketch (bottom-k).
    pub sketch_size: usize,
}

impl Default for FingerprintConfig {
    fn default() -> Self {
        Self {
            simhash_shingle: 1,
            sketch_shingle: 3,
            sketch_size: 128,
        }
    }
}

/// All fingerprints of one article.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// xxh3 of the token sequence ([`exact_hash`]): equal for verbatim copies after
    /// normalization.
    pub exact: u64,
    pub simhash: u64,
    pub sketch: Sketch,
    /// Tokens in the normalized text.
    pub tokens: u32,
    /// The smallest distinct shingle hashes among the text's first [`LEAD_SHINGLES`] shingles,
    /// ascending, padded with `u32::MAX`: lookup keys for excerpts of the lead (see
    /// [`crate::pipeline::index`]).
    pub lead_anchors: [u32; LEAD_ANCHORS],
    /// The headline's [`title_key`], when the article has one long enough to count.
    pub title: Option<u64>,
    /// Where the text starts: what tells a copy from a text that reuses part of another.
    pub lead: Lead,
}

/// Shingles of the start of a text kept in its [`Lead`].
pub const LEAD_WINDOW: usize = 60;

/// Shingles of the longer text's lead looked for in the shorter's [`LEAD_WINDOW`]: about two
/// sentences. Furniture left before either start (a dateline, a credit) shifts them by a few
/// shingles, which the wider window absorbs.
pub const LEAD_COMPARED: usize = 30;

/// The first [`LEAD_WINDOW`] shingles of a text, in text order, 16 bits of each hash.
///
/// A copy starts where its original starts: a reprint under other furniture, a truncation, a
/// teaser of the lead. Partial reuse does not: a recap puts a new lead before the older text,
/// and two stories that share a block or a quote each start with their own. 16 bits suffice
/// to tell whether a lead's shingle is among 60 others (a false match about once in a thousand
/// lookups) and keep the lead at 120 bytes per article.
///
/// It also keeps the figures and names of the first [`LEAD_TOKENS`] words: a recap opens with
/// the new event's own figures, dates and names before it repeats the older text, while a
/// wire's updated version opens with the same story's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lead {
    hashes: [u16; LEAD_WINDOW],
    len: u8,
    facts: [u32; LEAD_FACTS],
    facts_len: u8,
}

/// Words of the lead whose figures and names a [`Lead`] keeps: about its first sentence.
pub const LEAD_TOKENS: u32 = 32;

/// Figures and names of the lead kept, at most.
pub const LEAD_FACTS: usize = 6;

impl Default for Lead {
    fn default() -> Self {
        Self {
            hashes: [0; LEAD_WINDOW],
            len: 0,
            facts: [0; LEAD_FACTS],
            facts_len: 0,
        }
    }
}

impl Lead {
    /// The lead of a text whose shingle hashes, in text order, are `shingles`, and whose first
    /// figures and names (their tokens' hashes as the sketch keeps them) are `facts`.
    pub fn new(shingles: &[u32], facts: &[u32]) -> Self {
        let mut lead = Self::default();
        let n = shingles.len().min(LEAD_WINDOW);
        for (kept, &h) in lead.hashes.iter_mut().zip(&shingles[..n]) {
            *kept = (h >> 16) as u16;
        }
        lead.len = n as u8;
        for &fact in facts {
            let len = usize::from(lead.facts_len);
            if len < LEAD_FACTS && !lead.facts[..len].contains(&fact) {
                lead.facts[len] = fact;
                lead.facts_len += 1;
            }
        }
        lead
    }

    /// The lead as stored: its shingles' high halves, in text order, and its facts.
    pub fn stored(&self) -> (&[u16], &[u32]) {
        (self.hashes(), self.facts())
    }

    /// A lead from what [`Lead::stored`] gave; `None` when either part is longer than a lead
    /// keeps.
    pub fn from_stored(hashes: &[u16], facts: &[u32]) -> Option<Self> {
        if hashes.len() > LEAD_WINDOW || facts.len() > LEAD_FACTS {
            return None;
        }
        let mut lead = Self::default();
        lead.hashes[..hashes.len()].copy_from_slice(hashes);
        lead.len = hashes.len() as u8;
        lead.facts[..facts.len()].copy_from_slice(facts);
        lead.facts_len = facts.len() as u8;
        Some(lead)
    }

    /// The figures and names of the lead's first [`LEAD_TOKENS`] words, distinct, in text
    /// order, at most [`LEAD_FACTS`].
    pub fn facts(&self) -> &[u32] {
        &self.facts[..usize::from(self.facts_len)]
    }

    fn hashes(&self) -> &[u16] {
        &self.hashes[..usize::from(self.len)]
    }

    /// Share of this text's first [`LEAD_COMPARED`] shingles found among the first
    /// [`LEAD_WINDOW`] of `other`: 1.0 when `other` starts as this text starts; 0 when either
    /// is empty.
    pub fn found_in(&self, other: &Lead) -> f64 {
        let compared = &self.hashes()[..self.hashes().len().min(LEAD_COMPARED)];
        if compared.is_empty() || other.len == 0 {
            return 0.0;
        }
        let found = compared.iter().filter(|h| other.hashes().contains(h)).count();
        found as f64 / compared.len() as f64
    }
}

/// Lead anchors computed per article; `index.lead_anchors` uses up to this many.
pub const LEAD_ANCHORS: usize = 2;

/// Shingles of the lead that lead anchors are chosen from. An aggregator's teaser is the lead's
/// first sentences, 25 to 60 words; the original's smallest hashes over 450 words are rarely
/// among them, but over its first 24 shingles they are whenever the teaser has those 24.
pub const LEAD_SHINGLES: usize = 24;

/// 64-bit SimHash of feature hashes, each weighing one: bit i is set when more than half of the
/// features have bit i set.
///
/// Counting is SWAR in two levels. Four `u64`s hold 4-bit counters, sixteen per word: word `b`
/// counts bits `b`, `b + 4`, `b + 8`, ... of each feature with one shift, mask and add, so a
/// feature costs 12 simple operations instead of 64 compare-and-adds. Every 15 features (the
/// most a nibble holds) the nibbles are spread into byte counters, and those into wide counters
/// before a byte can overflow. The plain loop in the tests is the reference.
pub fn simhash(features: impl IntoIterator<Item = u64>) -> u64 {
    const NIBBLE_ONES: u64 = 0x1111_1111_1111_1111;
    const LOW_NIBBLES: u64 = 0x0F0F_0F0F_0F0F_0F0F;
    // `bytes[2 * b]` byte `m` counts bit `8m + b`; `bytes[2 * b + 1]` byte `m`, bit `8m + 4 + b`.
    fn spread(nibbles: &mut [u64; 4], bytes: &mut [u64; 8]) {
        for (b, nibble) in nibbles.iter_mut().enumerate() {
            bytes[2 * b] += *nibble & LOW_NIBBLES;
            bytes[2 * b + 1] += (*nibble >> 4) & LOW_NIBBLES;
            *nibble = 0;
        }
    }
    fn widen(bytes: &mut [u64; 8], counts: &mut [u32; 64]) {
        for (lane, word) in bytes.iter_mut().enumerate() {
            let bit = lane / 2 + 4 * (lane % 2);
            for m in 0..8 {
                counts[8 * m + bit] += ((*word >> (8 * m)) & 0xFF) as u32;
            }
            *word = 0;
        }
    }
    let mut counts = [0u32; 64];
    let mut bytes = [0u64; 8];
    let mut nibbles = [0u64; 4];
    let (mut in_nibbles, mut in_bytes, mut total) = (0u32, 0u32, 0u32);
    for hash in features {
        for (b, nibble) in nibbles.iter_mut().enumerate() {
            *nibble += (hash >> b) & NIBBLE_ONES;
        }
        in_nibbles += 1;
        total += 1;
        if in_nibbles == 15 {
            spread(&mut nibbles, &mut bytes);
            in_nibbles = 0;
            in_bytes += 15;
            if in_bytes + 15 > 255 {
                widen(&mut bytes, &mut counts);
                in_bytes = 0;
            }
        }
    }
    spread(&mut nibbles, &mut bytes);
    widen(&mut bytes, &mut counts);
    counts
        .iter()
        .enumerate()
        .fold(0u64, |acc, (bit, &count)| acc | (u64::from(count * 2 > total) << bit))
}

/// Combines consecutive token hashes into one shingle hash; order matters.
#[inline]
fn shingle_hash(tokens: &[u64]) -> u64 {
    let mut acc = 0x9E37_79B9_7F4A_7C15u64;
    for &t in tokens {
        acc = (acc.rotate_left(23) ^ t).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    }
    acc ^ (acc >> 29)
}

/// Reusable buffers for [`Fingerprinter::fingerprint_normalized`].
#[derive(Debug, Default)]
pub struct Scratch {
    token_hashes: Vec<u64>,
    shingles: Vec<u32>,
    numbers: Vec<u32>,
    names: Vec<u32>,
    /// Indexes of quoted tokens on entry to the shared tail; then the quoted shingles' hashes.
    quoted: Vec<u32>,
    /// Hashes of the figures and names among the first [`LEAD_TOKENS`] tokens, in order.
    lead_facts: Vec<u32>,
    bytes: Vec<u8>,
}

/// Computes fingerprints with one configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fingerprinter {
    config: FingerprintConfig,
}

impl Fingerprinter {
    pub fn new(config: FingerprintConfig) -> Self {
        Self { config }
    }

    pub fn config(&self) -> &FingerprintConfig {
        &self.config
    }

    /// Fingerprints normalized text (tokens separated by single spaces), without names. For
    /// tools and tests; the engine uses [`Fingerprinter::fingerprint_normalized`].
    /// Fingerprints normalized text (tokens joined by spaces). Quotation marks are gone from
    /// it, so no shingle counts as quoted.
    pub fn fingerprint(&self, normalized: &str) -> Fingerprint {
        let mut scratch = Scratch::default();
        for (i, token) in normalized.split(' ').filter(|t| !t.is_empty()).enumerate() {
            let h = xxh3_64(token.as_bytes());
            scratch.token_hashes.push(h);
            if token.bytes().any(|b| b.is_ascii_digit()) {
                scratch.numbers.push(h as u32);
                if (i as u32) < LEAD_TOKENS {
                    scratch.lead_facts.push(h as u32);
                }
            }
        }
        let hashes = std::mem::take(&mut scratch.token_hashes);
        let exact = exact_hash(&hashes, &mut scratch.bytes);
        self.fingerprint_token_hashes(&hashes, exact, &mut scratch)
    }

    /// Fingerprints the output of the normalizer, reusing its token hashes.
    pub fn fingerprint_normalized(&self, normalized: &Normalized, scratch: &mut Scratch) -> Fingerprint {
        let hashes = &normalized.token_hashes;
        // The sketch keeps the low 32 bits of the hashes of the tokens at these indexes.
        let select = |indexes: &[u32], out: &mut Vec<u32>| {
            out.clear();
            out.extend(
                indexes
                    .iter()
                    .filter_map(|&i| hashes.get(i as usize))
                    .map(|&h| h as u32),
            );
        };
        select(&normalized.numbers, &mut scratch.numbers);
        select(&normalized.names, &mut scratch.names);
        scratch.lead_facts.clear();
        // Figures first, then names: the lead keeps a few, and figures tell events apart best.
        for indexes in [&normalized.numbers, &normalized.names] {
            let lead = indexes.partition_point(|&i| i < LEAD_TOKENS);
            scratch.lead_facts.extend(
                indexes[..lead]
                    .iter()
                    .filter_map(|&i| hashes.get(i as usize))
                    .map(|&h| h as u32),
            );
        }
        scratch.quoted.clear();
        scratch.quoted.extend_from_slice(&normalized.quoted);
        let exact = exact_hash(hashes, &mut scratch.bytes);
        self.fingerprint_token_hashes(hashes, exact, scratch)
    }

    /// The shared tail: `scratch.numbers` and `scratch.names` hold the hashes of number and
    /// name tokens on entry, `scratch.quoted` the indexes of quoted tokens (ascending).
    fn fingerprint_token_hashes(&self, hashes: &[u64], exact: u64, scratch: &mut Scratch) -> Fingerprint {
        bottom_k(&mut scratch.names, MAX_NUMBERS);
        bottom_k(&mut scratch.numbers, MAX_NUMBERS);
        let simhash_n = self.config.simhash_shingle.max(1);
        let simhash = if simhash_n == 1 {
            simhash(hashes.iter().copied())
        } else {
            simhash(hashes.windows(simhash_n).map(shingle_hash))
        };
        let sketch_n = self.config.sketch_shingle.max(1);
        scratch.shingles.clear();
        if hashes.len() < sketch_n {
            // Too short for one full shingle: the whole text is the single shingle.
            if !hashes.is_empty() {
                scratch.shingles.push(shingle_hash(hashes) as u32);
            }
        } else {
            scratch
                .shingles
                .extend(hashes.windows(sketch_n).map(|w| (shingle_hash(w) >> 32) as u32));
        }
        // Before `bottom_k` sorts them, the shingles are in text order.
        let lead_anchors = smallest_distinct(&scratch.shingles[..scratch.shingles.len().min(LEAD_SHINGLES)]);
        let lead = Lead::new(&scratch.shingles, &scratch.lead_facts);
        // A shingle is quoted when its first word is. Its hash is what the sketch keeps.
        let shingles = &scratch.shingles;
        scratch.quoted.retain(|&i| (i as usize) < shingles.len());
        for q in scratch.quoted.iter_mut() {
            *q = shingles[*q as usize];
        }
        let complete = bottom_k(&mut scratch.shingles, self.config.sketch_size);
        // Only hashes the sample kept matter: at most its largest.
        let cut = scratch.shingles.last().copied().unwrap_or(0);
        scratch.quoted.retain(|&h| h <= cut);
        scratch.quoted.sort_unstable();
        Fingerprint {
            exact,
            simhash,
            sketch: Sketch::with_quoted(&scratch.shingles, complete, &scratch.numbers, &scratch.names, |h| {
                scratch.quoted.binary_search(&h).is_ok()
            }),
            tokens: hashes.len() as u32,
            lead_anchors,
            title: None,
            lead,
        }
    }
}

/// The [`LEAD_ANCHORS`] smallest distinct values, ascending, padded with `u32::MAX`.
fn smallest_distinct(values: &[u32]) -> [u32; LEAD_ANCHORS] {
    let mut smallest = [u32::MAX; LEAD_ANCHORS];
    for &v in values {
        if v < smallest[LEAD_ANCHORS - 1] && !smallest.contains(&v) {
            smallest[LEAD_ANCHORS - 1] = v;
            smallest.sort_unstable();
        }
    }
    smallest
}

/// xxh3 of a token sequence given as token hashes: the exact-copy key. `buf` is scratch.
pub fn exact_hash(token_hashes: &[u64], buf: &mut Vec<u8>) -> u64 {
    buf.clear();
    buf.resize(token_hashes.len() * 8, 0);
    for (bytes, hash) in buf.chunks_exact_mut(8).zip(token_hashes) {
        bytes.copy_from_slice(&hash.to_le_bytes());
    }
    xxh3_64(buf)
}

/// Number of differing bits.
#[inline]
pub fn hamming(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(n: usize, seed: u64) -> String {
        (0..n)
            .map(|i| format!("w{}", (i as u64 * 7919 + seed) % 5003))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn simhash_of_one_feature_is_that_feature() {
        assert_eq!(simhash([0xDEAD_BEEF]), 0xDEAD_BEEF);
    }

    /// The textbook definition, as the reference for the SWAR version.
    fn plain_simhash(features: &[u64]) -> u64 {
        let mut votes = [0i64; 64];
        for &h in features {
            for (bit, vote) in votes.iter_mut().enumerate() {
                *vote += if (h >> bit) & 1 == 1 { 1 } else { -1 };
            }
        }
        votes
            .iter()
            .enumerate()
            .fold(0, |acc, (bit, &v)| acc | (u64::from(v > 0) << bit))
    }

    proptest::proptest! {
        #[test]
        fn swar_simhash_equals_the_plain_definition(features in proptest::collection::vec(proptest::prelude::any::<u64>(), 0..1200)) {
            proptest::prop_assert_eq!(simhash(features.iter().copied()), plain_simhash(&features));
        }
    }

    #[test]
    fn small_edits_move_few_bits_and_unrelated_texts_many() {
        let fp = Fingerprinter::default();
        let base = words(400, 1);
        let mut edited: Vec<&str> = base.split(' ').collect();
        edited[10] = "changed";
        edited[200] = "other";
        let edited = edited.join(" ");
        let a = fp.fingerprint(&base);
        let b = fp.fingerprint(&edited);
        let c = fp.fingerprint(&words(400, 777));
        assert!(hamming(a.simhash, b.simhash) <= 6, "{}", hamming(a.simhash, b.simhash));
        assert!(hamming(a.simhash, c.simhash) >= 16, "{}", hamming(a.simhash, c.simhash));
        assert_ne!(a.exact, b.exact);
        assert!(a.sketch.similarity(&b.sketch).containment > 0.9);
    }

    #[test]
    fn a_teaser_of_the_lead_shares_the_lead_anchors_but_rarely_the_global_ones() {
        let fp = Fingerprinter::default();
        let mut shared_global = 0;
        for seed in 0..50 {
            let article = words(450, seed * 7_001);
            let teaser: Vec<&str> = article.split(' ').take(30).collect();
            let (a, t) = (fp.fingerprint(&article), fp.fingerprint(&teaser.join(" ")));
            assert_eq!(a.lead_anchors, t.lead_anchors, "seed {seed}");
            assert!(a.lead_anchors[0] < a.lead_anchors[1]);
            shared_global += usize::from(
                t.sketch.shingles()[..8]
                    .iter()
                    .any(|s| a.sketch.shingles()[..8].contains(s)),
            );
        }
        // What the lead anchors are for: by the 8 smallest hashes alone, most teasers are lost.
        assert!(
            shared_global < 30,
            "{shared_global} of 50 teasers share a global anchor"
        );
    }

    #[test]
    fn lead_anchors_are_distinct_and_padded() {
        assert_eq!(smallest_distinct(&[9, 3, 3, 7]), [3, 7]);
        assert_eq!(smallest_distinct(&[5]), [5, u32::MAX]);
        assert_eq!(smallest_distinct(&[]), [u32::MAX; LEAD_ANCHORS]);
    }

    proptest::proptest! {
        /// A headline's key depends on its words only: not on their case, nor on the spaces and
        /// punctuation between them.
        #[test]
        fn headline_keys_ignore_case_and_separators(
            words in proptest::collection::vec("[a-zA-Z0-9а-яА-ЯəƏşŞ]{1,8}", 4..10),
            // Never " - " or " | ": what follows those may be a site's name (tested below).
            separators in proptest::collection::vec("[ ,.:;!?'\"()|/-]|[,.:;!?'\"()|/-] ", 10),
        ) {
            // Both open with a word in lower case: capitals right before a hyphen or a colon
            // would be a wire's tag (tested below).
            let plain = format!("the {}", words.join(" "));
            let mut styled = String::from("the");
            for (i, word) in words.iter().enumerate() {
                styled.push_str(&separators[i]);
                styled.push_str(&if i % 2 == 0 { word.to_uppercase() } else { word.to_lowercase() });
            }
            proptest::prop_assert_eq!(title_key(Some(&plain)), title_key(Some(&styled)));
            proptest::prop_assert!(title_key(Some(&plain)).is_some());
        }
    }

    #[test]
    fn headlines_agree_whatever_their_case_and_punctuation_and_short_ones_do_not_count() {
        let key = |t: &str| title_key(Some(t));
        assert_eq!(
            key("Officials: 31 wounded in Kyrgyzstan-Tajikistan border clash"),
            key("OFFICIALS - 31 wounded in Kyrgyzstan Tajikistan border clash.")
        );
        assert_eq!(
            key("Азербайджан и Казахстан подписали протокол"),
            key("азербайджан и казахстан подписали протокол")
        );
        assert_ne!(
            key("31 killed in Kyrgyzstan-Tajikistan border clash"),
            key("31 wounded in Kyrgyzstan-Tajikistan border clash")
        );
        assert_eq!(key("Exchange rates for today"), key("exchange rates for today"));
        assert_eq!(
            key("Azerbaijan&#39;s caf&eacute; owners &amp; the <b>new</b> tax"),
            key("Azerbaijan's café owners & the new tax")
        );
        assert_eq!(
            key("PREZİDENT İLHAM ƏLİYEV BAKIDA NAZİRİ QƏBUL EDİB"),
            key("Prezident İlham Əliyev Bakıda naziri qəbul edib")
        );
        let headline = key("Azerbaijan and Kazakhstan sign a transit protocol");
        for with_site in [
            "Azerbaijan and Kazakhstan sign a transit protocol | News.Az",
            "Azerbaijan and Kazakhstan sign a transit protocol | Daily Sabah",
            "Azerbaijan and Kazakhstan sign a transit protocol - Trend.Az",
            "Azerbaijan and Kazakhstan sign a transit protocol — caliber.az",
        ] {
            assert_eq!(key(with_site), headline, "{with_site}");
        }
        for tagged in [
            "UPDATE 2-Azerbaijan and Kazakhstan sign a transit protocol",
            "REFILE-UPDATE 1-Azerbaijan and Kazakhstan sign a transit protocol",
            "BREAKING: Azerbaijan and Kazakhstan sign a transit protocol | News.Az",
        ] {
            assert_eq!(key(tagged), headline, "{tagged}");
        }
        assert_eq!(
            key("СРОЧНО: Азербайджан и Казахстан подписали протокол"),
            key("Азербайджан и Казахстан подписали протокол")
        );
        // A headline in capitals keeps its first word; one that starts with a name keeps it.
        assert_ne!(
            key("OFFICIALS: 31 WOUNDED IN BORDER CLASH"),
            key("31 wounded in border clash")
        );
        assert_ne!(
            key("Officials: 31 wounded in border clash today"),
            key("31 wounded in border clash today")
        );
        // A figure after a dash is not a host name.
        assert_ne!(
            key("Azerbaijan's annual inflation - 2.5%"),
            key("Azerbaijan's annual inflation - 3.1%")
        );
        // Who said it is part of the headline.
        assert_ne!(
            key("We are working to develop relations in all areas - Ambassador"),
            key("We are working to develop relations in all areas")
        );
        assert_eq!(key("Exchange rates today"), None);
        // Chinese: eight characters make a headline, four (weather forecast) do not.
        assert!(key("国家统计局发布工业利润数据").is_some());
        assert_eq!(key("天气预报"), None);
        assert_eq!(title_key(None), None);
    }

    #[test]
    fn numbers_are_collected_for_verification() {
        let fp = Fingerprinter::default().fingerprint("turnover 4.1 billion in 2023 up 12 percent");
        assert_eq!(fp.sketch.numbers().len(), 3);
        assert_eq!(fp.tokens, 8);
    }
}
