//! Verification: what comparing two articles finds ([`Evidence`]) and what it makes of it
//! ([`judge`]), and which articles are compared at all ([`EventTime`]). The engine asks this
//! of each candidate the index returns; `syndic explain --pair` asks it of any two articles.

use crate::pipeline::config::VerifyConfig;
use crate::pipeline::fingerprint::sketch::{Similarity, Sketch};
use crate::pipeline::fingerprint::{same_headline, Fingerprint, Lead};
use crate::pipeline::index::{EventSpan, IndexConfig};
use crate::pipeline::record::Article;
use serde::Serialize;

/// What comparing two articles found: the evidence a duplicate decision is made on and carries
/// in its record, so that an operator can see why two texts were merged (`syndic explain
/// --pair`). Shares are rounded to three decimals.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Evidence {
    /// Estimated share of the shorter text's shingles found in the longer (containment).
    pub shorter_share: f64,
    /// Estimated share of the longer text's shingles found in the shorter: small when the
    /// shared text is a block inside a longer, different article.
    pub longer_share: f64,
    /// Share of the longer text's lead found at the start of the shorter: where the shared
    /// part sits. High for copies, truncations and teasers, which start where their original
    /// starts; low for a recap or a shared block or quote beside a lead of its own.
    pub lead_shared: f64,
    /// Share of the shorter text's own wording, outside quotation marks, found in the longer
    /// (`None`: it quotes nothing, or too little is its own to tell). Two agencies' write-ups
    /// of one statement share its quotes; a copy shares the words around them too.
    pub unquoted_share: Option<f64>,
    /// Figures and names of the longer text's first sentence that the shorter text does not
    /// have: a recap opens with the new event's own.
    pub new_lead_facts: u32,
    /// Share of the smaller set of numbers found in the other (`None`: too few to compare).
    pub numbers: Option<f64>,
    /// The same for names.
    pub names: Option<f64>,
    /// Both articles carry one headline ([`crate::pipeline::fingerprint::title_key`]).
    pub same_headline: bool,
}

/// [`Evidence`] in thousandths, as its shares are rounded: what the engine keeps of each held
/// duplicate's evidence (20 bytes, where the floats took 80), to give a redelivered record
/// its decision again. [`KeptEvidence::evidence`] gives back the same values, bit for bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeptEvidence {
    shares: [u16; 3],
    unquoted_share: Option<u16>,
    numbers: Option<u16>,
    names: Option<u16>,
    new_lead_facts: u8,
    same_headline: bool,
}

/// A rounded share in thousandths. `rounded(x) * 1000` lies within a rounding error of the
/// whole number it was made from, so rounding it again finds that number.
fn thousandths(share: f64) -> u16 {
    (share * 1000.0).round().clamp(0.0, f64::from(u16::MAX)) as u16
}

fn from_thousandths(kept: u16) -> f64 {
    f64::from(kept) / 1000.0
}

impl KeptEvidence {
    pub fn evidence(&self) -> Evidence {
        Evidence {
            shorter_share: from_thousandths(self.shares[0]),
            longer_share: from_thousandths(self.shares[1]),
            lead_shared: from_thousandths(self.shares[2]),
            unquoted_share: self.unquoted_share.map(from_thousandths),
            new_lead_facts: u32::from(self.new_lead_facts),
            numbers: self.numbers.map(from_thousandths),
            names: self.names.map(from_thousandths),
            same_headline: self.same_headline,
        }
    }
}

impl From<&Evidence> for KeptEvidence {
    fn from(e: &Evidence) -> Self {
        Self {
            shares: [e.shorter_share, e.longer_share, e.lead_shared].map(thousandths),
            unquoted_share: e.unquoted_share.map(thousandths),
            numbers: e.numbers.map(thousandths),
            names: e.names.map(thousandths),
            // At most the lead's facts (LEAD_FACTS).
            new_lead_facts: e.new_lead_facts.min(u32::from(u8::MAX)) as u8,
            same_headline: e.same_headline,
        }
    }
}

/// One side of a comparison: the parts of an article's fingerprint that verification reads.
#[derive(Debug, Clone, Copy)]
pub struct Compared<'a> {
    pub sketch: &'a Sketch,
    pub lead: &'a Lead,
    pub title: Option<u64>,
    pub tokens: u32,
}

impl<'a> From<&'a Fingerprint> for Compared<'a> {
    fn from(fp: &'a Fingerprint) -> Self {
        Self {
            sketch: &fp.sketch,
            lead: &fp.lead,
            title: fp.title,
            tokens: fp.tokens,
        }
    }
}

pub fn rounded(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl Evidence {
    /// Compares two articles.
    pub fn between(a: Compared<'_>, b: Compared<'_>) -> Self {
        Self::given(a, b, &a.sketch.similarity(b.sketch))
    }

    /// Completes the comparison of two articles whose sketches compare as `similarity`: the
    /// parts that only a pair that may be a copy needs are computed here.
    pub fn given(a: Compared<'_>, b: Compared<'_>, similarity: &Similarity) -> Self {
        let (longer, shorter) = if a.tokens >= b.tokens { (a, b) } else { (b, a) };
        Self {
            shorter_share: rounded(similarity.containment),
            longer_share: rounded(similarity.longer_share),
            lead_shared: rounded(longer.lead.found_in(shorter.lead)),
            unquoted_share: a.sketch.unquoted_share(b.sketch).map(rounded),
            new_lead_facts: longer
                .lead
                .facts()
                .iter()
                .filter(|&&fact| shorter.sketch.has_fact(fact) == Some(false))
                .count() as u32,
            numbers: similarity.numbers.map(rounded),
            names: similarity.names.map(rounded),
            same_headline: same_headline(a.title, b.title),
        }
    }
}

/// The event time an article is compared by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventTime {
    /// Its `published_at`, and the latest instant that stands for.
    Dated(EventSpan),
    /// No date: compared with every held article. Not "now": an undated reprint may be of a
    /// five-year-old story.
    Undated,
    /// Dated more than `index.max_ahead_secs` after it arrived: a mistake (a typo in the year, a
    /// wrong clock) that says nothing of when the story happened, so compared as undated.
    DatedAhead,
}

impl EventTime {
    pub fn of(article: &Article, index: &IndexConfig) -> Self {
        if !article.has_published_at {
            return Self::Undated;
        }
        let latest_plausible = article.ingest_time.timestamp().saturating_add(index.max_ahead_secs);
        if article.published_at.timestamp() > latest_plausible {
            return Self::DatedAhead;
        }
        Self::Dated(EventSpan {
            from: article.published_at.timestamp(),
            until: article.published_until.timestamp(),
        })
    }

    /// The span compared with the window; `None` when the time is unknown.
    pub fn span(self) -> Option<EventSpan> {
        match self {
            Self::Dated(span) => Some(span),
            Self::Undated | Self::DatedAhead => None,
        }
    }
}

/// What verification made of a pair: a copy and by which path, or why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    /// Enough of the shorter text is in the longer, and the two start alike (a reprint, a
    /// truncation, a teaser).
    StartsAlike,
    /// Enough of both texts is shared for a copy with a rewritten lead.
    MostlyShared,
    /// Under one headline, with the figures or names compared and agreeing (a write-thru).
    SameHeadline,
    /// The figures or the names were compared and disagree: a recurring format, another event.
    FactsDisagree,
    /// Too little of the shorter text is in the longer.
    TooLittleShared,
    /// What is shared is mostly inside quotation marks: two write-ups of one statement.
    SharedQuotes,
    /// The two start apart and share under the bar for a rewritten lead: a recap, a shared
    /// block or quote beside a lead of its own.
    StartsApart,
    /// The two start apart and the longer opens with figures or names the shorter lacks: a
    /// later story, or another, that repeats the shorter as background.
    NewLead,
}

impl Judgement {
    pub fn is_copy(self) -> bool {
        matches!(self, Self::StartsAlike | Self::MostlyShared | Self::SameHeadline)
    }

    /// One line for people: what the judgement rests on.
    pub fn describe(self) -> &'static str {
        match self {
            Self::StartsAlike => "a copy: enough of the shorter text is in the longer, and both start alike",
            Self::MostlyShared => "a copy: most of both texts is shared, under a rewritten lead",
            Self::SameHeadline => "a copy: one headline, and the figures or names agree",
            Self::FactsDisagree => "not a copy: the figures or the names disagree",
            Self::TooLittleShared => "not a copy: too little of the shorter text is in the longer",
            Self::SharedQuotes => "not a copy: what they share is mostly quoted, their own words differ",
            Self::StartsApart => {
                "not a copy: each starts with its own lead and the shared part is too small for a rewritten copy (a recap, a shared block or quote)"
            }
            Self::NewLead => {
                "not a copy: the longer text opens with figures or names of its own before the shared part (a recap of the shorter under a new event)"
            }
        }
    }
}

/// A longer text this much shared has no lead of its own to speak of.
const NEARLY_ALL: f64 = 0.8;

/// Decides what the evidence makes of a pair.
///
/// By the text: enough of the shorter text is in the longer, and either the shared part is
/// where the longer text starts (a reprint, a truncation, a teaser), or most of both texts is
/// shared (a copy with a rewritten lead). A block shared by two different stories, a quote two
/// agencies both carry, or an older article repeated under a new lead is neither; nor is a
/// text whose own wording, outside quotation marks, falls short where its quotes do not. By
/// the headline: under one headline less of the text must agree, but then the figures or the
/// names must have been compared and agree (a wire story's write-thru has a new lead; a
/// headline and a quarter of the wording alone is what two reports of one recurring event can
/// share). Either way the figures and the names, where compared, must agree.
pub fn judge(evidence: &Evidence, verify: &VerifyConfig) -> Judgement {
    let facts_agree = evidence.numbers.is_none_or(|n| n >= verify.min_number_overlap)
        && evidence.names.is_none_or(|n| n >= verify.min_name_overlap);
    if !facts_agree {
        return Judgement::FactsDisagree;
    }
    let facts_compared = evidence.numbers.is_some() || evidence.names.is_some();
    let by_headline =
        evidence.same_headline && facts_compared && evidence.shorter_share >= verify.min_containment_same_title;
    let text = if evidence.shorter_share < verify.min_containment {
        Judgement::TooLittleShared
    } else if evidence.unquoted_share.is_some_and(|u| u < verify.min_containment) {
        Judgement::SharedQuotes
    } else if evidence.lead_shared >= verify.min_lead_shared {
        Judgement::StartsAlike
    } else if evidence.new_lead_facts > verify.max_new_lead_facts && evidence.longer_share < NEARLY_ALL {
        // Near-whole copies are spared: furniture before the lead (a site's name, a byline,
        // a dateline) brings names of its own too, but no recap is nearly all older text.
        Judgement::NewLead
    } else if (evidence.shorter_share >= verify.min_containment_new_lead || evidence.numbers.is_some())
        && evidence.longer_share >= verify.min_longer_share
    {
        // Figures that were compared (and agree) stand in for part of the wording: two stories
        // that share a quote or a block bring figures of their own, or none.
        Judgement::MostlyShared
    } else {
        Judgement::StartsApart
    };
    match (text.is_copy(), by_headline) {
        (false, true) => Judgement::SameHeadline,
        _ => text,
    }
}

/// Whether the evidence makes a copy ([`judge`]).
pub fn is_copy(evidence: &Evidence, verify: &VerifyConfig) -> bool {
    judge(evidence, verify).is_copy()
}

#[cfg(test)]
mod tests {
    proptest::proptest! {
        /// Evidence kept in thousandths comes back bit for bit: a redelivered record's decision
        /// is written with the same numbers as the first.
        #[test]
        fn kept_evidence_gives_back_the_same_values(
            shares in proptest::array::uniform6(0.0f64..=1.0),
            present in proptest::array::uniform3(proptest::bool::ANY),
            new_lead_facts in 0u32..=6,
            same_headline in proptest::bool::ANY,
        ) {
            let evidence = Evidence {
                shorter_share: rounded(shares[0]),
                longer_share: rounded(shares[1]),
                lead_shared: rounded(shares[2]),
                unquoted_share: present[0].then(|| rounded(shares[3])),
                new_lead_facts,
                numbers: present[1].then(|| rounded(shares[4])),
                names: present[2].then(|| rounded(shares[5])),
                same_headline,
            };
            let back = KeptEvidence::from(&evidence).evidence();
            proptest::prop_assert_eq!(format!("{back:?}"), format!("{evidence:?}"));
            proptest::prop_assert_eq!(back, evidence);
        }
    }

    use super::*;

    fn evidence(shorter_share: f64, numbers: Option<f64>, names: Option<f64>, same_headline: bool) -> Evidence {
        Evidence {
            shorter_share,
            longer_share: shorter_share,
            lead_shared: 1.0,
            unquoted_share: None,
            new_lead_facts: 0,
            numbers,
            names,
            same_headline,
        }
    }

    #[test]
    fn under_one_headline_less_text_must_agree_and_the_facts_must_have_been_compared() {
        let verify = VerifyConfig::default();
        let write_thru = |same| evidence(0.3, None, Some(0.8), same);
        assert!(is_copy(&write_thru(true), &verify));
        assert!(!is_copy(&write_thru(false), &verify), "the text alone falls short");
        // Nothing to compare but the wording: the headline does not lower the bar.
        assert!(!is_copy(&evidence(0.3, None, None, true), &verify));
        assert!(is_copy(&evidence(0.45, None, None, true), &verify));
        // Other figures under the same headline: a recurring format.
        assert!(!is_copy(&evidence(0.9, Some(0.2), Some(0.9), true), &verify));
        assert!(!is_copy(&evidence(0.2, Some(1.0), Some(1.0), true), &verify));
    }

    #[test]
    fn a_block_shared_inside_a_longer_text_is_a_copy_only_where_the_longer_text_starts() {
        let verify = VerifyConfig::default();
        let contained = |lead_shared| Evidence {
            shorter_share: 0.8,
            longer_share: 0.2,
            lead_shared,
            unquoted_share: None,
            new_lead_facts: 0,
            numbers: None,
            names: None,
            same_headline: false,
        };
        assert!(is_copy(&contained(0.9), &verify), "a truncation or a teaser");
        assert!(!is_copy(&contained(0.1), &verify), "a recap, a shared block or quote");
        let rewritten = Evidence {
            longer_share: 0.45,
            ..contained(0.1)
        };
        assert!(
            is_copy(&rewritten, &verify),
            "most of both texts shared: an edited copy"
        );
    }
}
