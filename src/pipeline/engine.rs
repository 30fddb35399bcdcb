//! The engine runs one record through every stage and says what became of it.
//!
//! It owns the state that ties the stages together: which index slot belongs to which story,
//! and each entry's exact hash and the sketch that confirms candidates. It does no I/O and
//! keeps no clock of its own (the caller passes ingest time), so the CLI, the Kafka worker,
//! tests and benchmarks all drive the same code.

use crate::pipeline::config::{InvalidSetting, PipelineConfig, VerifyConfig};
use crate::pipeline::fingerprint::sketch::{Similarity, Sketch};
use crate::pipeline::fingerprint::{hamming, same_headline, Fingerprint, Lead, LEAD_ANCHORS};
use crate::pipeline::normalize::rules::BoilerplateRules;

use crate::pipeline::index::{
    prefetch_line, EntryKeys, EventSpan, IndexConfig, NearDupIndex, Slot, MAX_ANCHORS, MAX_ANCHOR_KEYS, NO_ANCHOR,
};
use crate::pipeline::prepare::{Prepared, Preparer};
use crate::pipeline::record::{Article, InvalidRecord};
use crate::pipeline::story::{Match, Stories, StoryEvent, StoryKey};
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    NewStory,
    Duplicate,
    ExactDuplicate,
    Invalid,
}

impl Verdict {
    pub const ALL: [Verdict; 4] = [
        Verdict::NewStory,
        Verdict::Duplicate,
        Verdict::ExactDuplicate,
        Verdict::Invalid,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::NewStory => "new_story",
            Verdict::Duplicate => "duplicate",
            Verdict::ExactDuplicate => "exact_duplicate",
            Verdict::Invalid => "invalid",
        }
    }
}

/// What became of one input record. Serialized as one line of the decisions output.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// Absent only for invalid records without a readable id.
    pub article_id: Option<String>,
    pub story_id: Option<String>,
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_article_id: Option<String>,
    /// Containment of the shorter text in the longer against the matched article.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// SimHash Hamming distance to the matched article.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance: Option<u32>,
    /// What the duplicate decision was made on (see [`Evidence`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The result of [`Engine::process`]: a decision always, a story event when a story changed.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub decision: Decision,
    pub event: Option<StoryEvent>,
    pub invalid: Option<InvalidRecord>,
}

#[derive(Debug)]
struct SlotInfo {
    story: StoryKey,
    tokens: u32,
    article_id: String,
    /// What the article matched when it was decided (`None`: it founded its story), so that a
    /// redelivered record gets the same decision again.
    matched: Option<Matched>,
    exact: u64,
    title: Option<u64>,
    lead: Lead,
    /// Kept for the index, which reads its keys back from here (see [`KeptKeys`]).
    lead_anchors: [u32; LEAD_ANCHORS],
    sketch: Sketch,
}

/// The article a duplicate joined through, how it matched, and the evidence.
#[derive(Debug, Clone)]
struct Matched {
    article_id: String,
    m: Match,
    evidence: Evidence,
}

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

fn rounded(x: f64) -> f64 {
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

/// Running totals, for summaries and metrics.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Counters {
    pub records: u64,
    pub new_story: u64,
    pub duplicate: u64,
    pub exact_duplicate: u64,
    pub invalid: u64,
    pub candidates_checked: u64,
    /// Duplicates whose text alone fell short (under `verify.min_containment`) and that joined
    /// because both articles carry one headline: the matches to sample when checking
    /// `verify.min_containment_same_title`.
    pub headline_matches: u64,
    /// Articles dated more than `index.max_ahead_secs` after they arrived, compared as undated
    /// ones are: a feed with a wrong clock or a typo in a year.
    pub dated_ahead: u64,
}

/// The outcome for an article that founded a story.
fn founded(article: &Article, story_id: Option<String>, event: Option<StoryEvent>) -> Outcome {
    Outcome {
        decision: Decision {
            article_id: Some(article.id.clone()),
            story_id,
            verdict: Verdict::NewStory,
            matched_article_id: None,
            score: None,
            distance: None,
            evidence: None,
            reason_code: None,
            reason: None,
        },
        event,
        invalid: None,
    }
}

/// An article's anchor keys for the index: its `anchors` smallest shingle hashes, then its
/// `lead_anchors` lead anchors, a lead anchor that is already among the first left out, then
/// its headline's key if `title_anchor`.
struct AnchorKeys {
    keys: [u32; MAX_ANCHOR_KEYS],
    len: usize,
}

impl AnchorKeys {
    fn of(fp: &Fingerprint, config: &IndexConfig) -> Self {
        Self::from_parts(&fp.sketch, &fp.lead_anchors, fp.title, config)
    }

    fn from_parts(
        sketch: &Sketch,
        lead_anchors: &[u32; LEAD_ANCHORS],
        title: Option<u64>,
        config: &IndexConfig,
    ) -> Self {
        let mut keys = [NO_ANCHOR; MAX_ANCHOR_KEYS];
        let smallest = sketch.shingles();
        let anchors = config.anchors.min(MAX_ANCHORS);
        let found = smallest.len().min(anchors);
        keys[..found].copy_from_slice(&smallest[..found]);
        let lead = config.lead_anchors.min(LEAD_ANCHORS);
        for (key, &anchor) in keys[anchors..anchors + lead].iter_mut().zip(lead_anchors) {
            if !smallest[..found].contains(&anchor) {
                *key = anchor;
            }
        }
        let mut len = anchors + lead;
        if config.title_anchor {
            // The high half: shingle hashes are low halves of other hashes. `NO_ANCHOR` is
            // never a key.
            keys[len] = title.map_or(NO_ANCHOR, |t| ((t >> 32) as u32).min(NO_ANCHOR - 1));
            len += 1;
        }
        Self { keys, len }
    }

    fn as_slice(&self) -> &[u32] {
        &self.keys[..self.len]
    }
}

/// The index's view of the entries' keys: it keeps none of its own (see [`EntryKeys`]), and
/// they are computed again, as [`AnchorKeys::of`] did, from what each entry keeps here.
struct KeptKeys<'a> {
    slots: &'a [Option<SlotInfo>],
    config: &'a IndexConfig,
}

impl<'a> KeptKeys<'a> {
    // Takes the two fields it reads rather than the engine, so that the index, another field,
    // can be borrowed mutably beside it.
    fn new(slots: &'a [Option<SlotInfo>], config: &'a IndexConfig) -> Self {
        Self { slots, config }
    }
}

impl EntryKeys for KeptKeys<'_> {
    fn anchor_keys(&self, slot: Slot, keys: &mut [u32]) {
        match self.slots.get(slot as usize).and_then(Option::as_ref) {
            Some(info) => {
                let kept = AnchorKeys::from_parts(&info.sketch, &info.lead_anchors, info.title, self.config);
                // Both sides count keys from one validated configuration, so the lengths agree.
                let n = keys.len().min(kept.len);
                keys[..n].copy_from_slice(&kept.keys[..n]);
            }
            None => {
                debug_assert!(
                    false,
                    "the index asked for the keys of slot {slot}, which holds no entry"
                );
                keys.fill(NO_ANCHOR);
            }
        }
    }

    fn prefetch(&self, slot: Slot, depth: u32) {
        match (self.slots.get(slot as usize), depth) {
            (Some(Some(info)), 0) => {
                if let Some(first) = info.sketch.values().first() {
                    prefetch_line(first);
                }
            }
            (Some(entry), _) => prefetch_line(entry),
            (None, _) => {}
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

/// Reads one value per cache line of every candidate's sketch before any is compared.
///
/// Candidates' sketches are cold: each comparison would otherwise wait on its misses one
/// after another (the binary searches in the comparison depend on each load). Loads issued
/// together here are independent, so the memory system serves them in parallel.
fn touch_sketches(slots: &[Option<SlotInfo>], candidates: &[Slot]) {
    const PER_LINE: usize = 64 / std::mem::size_of::<u32>();
    let mut sum = 0u32;
    for &slot in candidates {
        if let Some(Some(info)) = slots.get(slot as usize) {
            sum = info
                .sketch
                .values()
                .iter()
                .step_by(PER_LINE)
                .fold(sum, |acc, &v| acc.wrapping_add(v));
        }
    }
    std::hint::black_box(sum);
}

/// See the module documentation.
#[derive(Debug)]
pub struct Engine {
    config: PipelineConfig,
    preparer: Preparer,
    index: NearDupIndex,
    stories: Stories,
    /// Indexed by slot: slots are small dense integers reused after eviction.
    slots: Vec<Option<SlotInfo>>,
    counters: Counters,
    // Reused buffers: the hot path allocates little once warm.
    candidates: Vec<Slot>,
    evicted: Vec<Slot>,
}

impl Engine {
    /// An engine with these settings (validated first) and boilerplate rules.
    pub fn new(config: PipelineConfig, rules: BoilerplateRules) -> Result<Self, InvalidSetting> {
        Ok(Self {
            preparer: Preparer::new(&config, rules)?,
            index: NearDupIndex::new(config.index),
            stories: Stories::new(config.stories.clone()),
            slots: Vec::new(),
            counters: Counters::default(),
            candidates: Vec::new(),
            evicted: Vec::new(),
            config,
        })
    }

    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    pub fn index(&self) -> &NearDupIndex {
        &self.index
    }

    pub fn open_stories(&self) -> usize {
        self.stories.len()
    }

    /// Bytes held by verification sketches of live entries.
    pub fn sketch_bytes(&self) -> usize {
        self.slots
            .iter()
            .flatten()
            .map(|s| s.sketch.heap_bytes() + std::mem::size_of::<Sketch>())
            .sum()
    }

    /// Normalizes and fingerprints a body under its headline, as the engine does. For tools
    /// and evaluation.
    pub fn fingerprint_titled(&mut self, body: &str, title: Option<&str>) -> Fingerprint {
        self.preparer.fingerprint_titled(body, title)
    }

    /// A preparer with the engine's configuration, to run the stateless stages elsewhere
    /// (another thread) and hand the results to [`Engine::decide`].
    pub fn preparer(&self) -> Preparer {
        self.preparer.clone()
    }

    /// Processes one raw record received at `ingest_time`: [`Preparer::prepare`], then
    /// [`Engine::decide`].
    pub fn process(&mut self, record: &[u8], ingest_time: DateTime<Utc>) -> Outcome {
        let prepared = self.preparer.prepare(record, ingest_time);
        self.decide(prepared)
    }

    /// Starts loading, without waiting, the parts of a large index that deciding `upcoming`
    /// will read. Call it for the next record before deciding the current one: in a window of
    /// millions of articles each lookup is a handful of cache misses, which then overlap with
    /// the current decision instead of stalling the next (BENCHMARKS.md). Decisions never
    /// depend on it.
    pub fn prefetch(&self, upcoming: &Prepared) {
        if let Prepared::Article { fingerprint, .. } = upcoming {
            let keys = AnchorKeys::of(fingerprint, &self.config.index);
            let kept = KeptKeys::new(&self.slots, &self.config.index);
            self.index.prefetch(fingerprint.simhash, keys.as_slice(), &kept);
        }
    }

    /// The stateful part: matches a prepared record against the window, updates the stories
    /// and says what became of it. Records must be decided in the order they are to be seen.
    pub fn decide(&mut self, prepared: Prepared) -> Outcome {
        self.counters.records += 1;
        match prepared {
            Prepared::Article { article, fingerprint } => self.decide_article(&article, fingerprint),
            Prepared::Invalid { article_id, invalid } => self.invalid(article_id, invalid),
        }
    }

    fn invalid(&mut self, article_id: Option<String>, invalid: InvalidRecord) -> Outcome {
        self.counters.invalid += 1;
        Outcome {
            decision: Decision {
                article_id,
                story_id: None,
                verdict: Verdict::Invalid,
                matched_article_id: None,
                score: None,
                distance: None,
                evidence: None,
                reason_code: Some(invalid.code()),
                reason: Some(invalid.to_string()),
            },
            event: None,
            invalid: Some(invalid),
        }
    }

    fn decide_article(&mut self, article: &Article, fp: Fingerprint) -> Outcome {
        if fp.tokens == 0 {
            return self.invalid(Some(article.id.clone()), InvalidRecord::EmptyBody);
        }
        let span = self.event_span(article);
        // Room is made first, so that whatever the article is matched with is still held when
        // it joins.
        let kept = KeptKeys::new(&self.slots, &self.config.index);
        self.index.make_room_for_one(&mut self.evicted, &kept);
        let mut evicted = std::mem::take(&mut self.evicted);
        for &slot in &evicted {
            self.release(slot);
        }
        evicted.clear();
        self.evicted = evicted;
        let keys = AnchorKeys::of(&fp, &self.config.index);
        self.candidates.clear();
        self.index
            .candidates(fp.simhash, keys.as_slice(), span, &mut self.candidates);
        if let Some(info) = self.exact_copy(&fp) {
            if info.article_id == article.id {
                // The same record again (a redelivery after a rebalance or a restart):
                // the same decision, and no story event since nothing changed.
                return self.redelivered(article, info.story, info.matched.clone());
            }
            let (story, matched) = (info.story, info.article_id.clone());
            let m = Match {
                similarity: 1.0,
                distance: 0,
            };
            let event = self.stories.join(story, article, m, false);
            self.counters.exact_duplicate += 1;
            // The same text is its own evidence.
            return self.joined(article, Verdict::ExactDuplicate, story, matched, m, None, event);
        }
        let best = if fp.tokens >= self.config.verify.min_tokens {
            self.best_candidate(&fp)
        } else {
            None
        };
        let kept = KeptKeys::new(&self.slots, &self.config.index);
        let slot = self.index.insert(fp.simhash, keys.as_slice(), span, &kept);
        let Some((story, matched)) = best else {
            return self.found_story(article, slot, fp);
        };
        let event = self.stories.join(story, article, matched.m, true);
        self.counters.duplicate += 1;
        let outcome = self.joined(
            article,
            Verdict::Duplicate,
            story,
            matched.article_id.clone(),
            matched.m,
            Some(matched.evidence),
            event,
        );
        self.remember(slot, story, article, fp, Some(matched));
        outcome
    }

    /// The event time the article is compared by ([`EventTime::of`]), counting dated-ahead
    /// articles.
    fn event_span(&mut self, article: &Article) -> Option<EventSpan> {
        let time = EventTime::of(article, &self.config.index);
        self.counters.dated_ahead += u64::from(time == EventTime::DatedAhead);
        time.span()
    }

    fn found_story(&mut self, article: &Article, slot: Slot, fp: Fingerprint) -> Outcome {
        let (story, event) = self.stories.create(article);
        self.counters.new_story += 1;
        let story_id = event.story_id.clone();
        self.remember(slot, story, article, fp, None);
        founded(article, Some(story_id), Some(event))
    }

    fn redelivered(&mut self, article: &Article, story: StoryKey, matched: Option<Matched>) -> Outcome {
        match matched {
            Some(matched) => {
                self.counters.duplicate += 1;
                let (id, m, evidence) = (matched.article_id, matched.m, Some(matched.evidence));
                self.joined(article, Verdict::Duplicate, story, id, m, evidence, None)
            }
            None => {
                self.counters.new_story += 1;
                founded(article, self.stories.story_id(story).map(str::to_string), None)
            }
        }
    }

    fn remember(&mut self, slot: Slot, story: StoryKey, article: &Article, fp: Fingerprint, matched: Option<Matched>) {
        let i = slot as usize;
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, || None);
        }
        self.slots[i] = Some(SlotInfo {
            story,
            tokens: fp.tokens,
            article_id: article.id.clone(),
            matched,
            exact: fp.exact,
            title: fp.title,
            lead: fp.lead,
            lead_anchors: fp.lead_anchors,
            sketch: fp.sketch,
        });
    }

    fn slot(&self, slot: Slot) -> Option<&SlotInfo> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    fn release(&mut self, slot: Slot) {
        if let Some(info) = self.slots.get_mut(slot as usize).and_then(Option::take) {
            self.stories.release(info.story);
        }
    }

    #[allow(clippy::too_many_arguments)] // each is a field of the decision it builds
    fn joined(
        &self,
        article: &Article,
        verdict: Verdict,
        story: StoryKey,
        matched: String,
        m: Match,
        evidence: Option<Evidence>,
        event: Option<StoryEvent>,
    ) -> Outcome {
        Outcome {
            decision: Decision {
                article_id: Some(article.id.clone()),
                story_id: self.stories.story_id(story).map(str::to_string),
                verdict,
                matched_article_id: Some(matched),
                score: Some(rounded(m.similarity)),
                distance: Some(m.distance),
                evidence,
                reason_code: None,
                reason: None,
            },
            event,
            invalid: None,
        }
    }

    /// The live entry with the same text as `fp`, among [`Engine::candidates`].
    ///
    /// No table of exact hashes is needed: the same text has the same SimHash, and the index
    /// returns every live entry at distance 0. There is at most one such entry, since an exact
    /// copy joins its story without being indexed. A hash map here cost 19-39 bytes per
    /// article and rehashed everything as it doubled (0.25-0.36 s at 1.84M entries).
    fn exact_copy(&self, fp: &Fingerprint) -> Option<&SlotInfo> {
        self.candidates
            .iter()
            .filter_map(|&slot| self.slot(slot))
            .find(|info| info.exact == fp.exact)
    }

    /// The verified candidate with the highest containment among [`Engine::candidates`], if
    /// any: its story, and what it matched and on what evidence.
    fn best_candidate(&mut self, fp: &Fingerprint) -> Option<(StoryKey, Matched)> {
        self.counters.candidates_checked += self.candidates.len() as u64;
        touch_sketches(&self.slots, &self.candidates);
        let mut best: Option<(Slot, &SlotInfo, Evidence)> = None;
        let verify = &self.config.verify;
        // Under both bars no path makes a copy, whatever else the evidence says.
        let floor = verify.min_containment.min(verify.min_containment_same_title);
        for &slot in &self.candidates {
            let Some(info) = self.slot(slot).filter(|i| i.tokens >= verify.min_tokens) else {
                continue;
            };
            let similarity = fp.sketch.similarity(&info.sketch);
            if rounded(similarity.containment) < floor {
                continue;
            }
            let evidence = Evidence::given(fp.into(), info.compared(), &similarity);
            if is_copy(&evidence, verify) && best.is_none_or(|(_, _, b)| evidence.shorter_share > b.shorter_share) {
                best = Some((slot, info, evidence));
            }
        }
        let (slot, info, evidence) = best?;
        let distance = self.index.simhash_of(slot).map_or(64, |h| hamming(h, fp.simhash));
        let m = Match {
            similarity: evidence.shorter_share,
            distance,
        };
        let found = (
            info.story,
            Matched {
                article_id: info.article_id.clone(),
                m,
                evidence,
            },
        );
        self.counters.headline_matches += u64::from(evidence.shorter_share < verify.min_containment);
        Some(found)
    }
}

impl SlotInfo {
    fn compared(&self) -> Compared<'_> {
        Compared {
            sketch: &self.sketch,
            lead: &self.lead,
            title: self.title,
            tokens: self.tokens,
        }
    }
}

#[cfg(test)]
mod tests {
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
