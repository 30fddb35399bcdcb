//! The headline key: a hash of a headline's words, so that two copies under one headline (a
//! wire's write-thru) are found and weighed as such. The words are the normalizer's
//! ([`headline_words`]); this module decides when they are enough to count.

use crate::pipeline::normalize::headline::headline_words;
use xxhash_rust::xxh3::xxh3_64;

/// Words a headline needs before an equal one counts as evidence: short ones ("Weather",
/// "Exchange rates", "Breaking news") head unrelated articles. In scripts written without
/// spaces, two letters count as a word.
pub const MIN_TITLE_WORDS: usize = 4;

/// A key for a headline: xxh3 of its words, lower-cased, punctuation dropped, so that
/// "Officials: 31 wounded" and "officials - 31 wounded" agree. `None` without a headline of
/// [`MIN_TITLE_WORDS`] words or more. A site's name after the headline is left out (see
/// `without_site_suffix`): each site adds its own; so is a wire's tag before it ("UPDATE 2-",
/// "BREAKING:", see `without_wire_tag`), which marks versions of one story.
///
/// Copies of one wire story keep its headline while their bodies may part: a write-thru adds
/// and rewrites paragraphs under the same headline. The engine accepts a lower containment for
/// such a pair (`verify.min_containment_same_title`) when its numbers or names agree; those
/// checks are what reject a recurring format with the same headline and other figures.
pub fn title_key(title: Option<&str>) -> Option<u64> {
    let mut words = Vec::new();
    let half_words = headline_words(title?, &mut words);
    (half_words >= 2 * MIN_TITLE_WORDS).then(|| xxh3_64(&words))
}

/// Whether two articles carry one headline: both have a [`title_key`], and it is the same.
pub fn same_headline(a: Option<u64>, b: Option<u64>) -> bool {
    a.is_some() && a == b
}
