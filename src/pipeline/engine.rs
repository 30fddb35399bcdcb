//! The engine runs one record through every stage and says what became of it.
//!
//! It owns the state that ties the stages together: which index slot belongs to which story,
//! and each entry's exact hash and the sketch that confirms candidates. It does no I/O and
//! keeps no clock of its own (the caller passes ingest time), so the CLI, the Kafka worker,
//! tests and benchmarks all drive the same code.

use crate::pipeline::config::{InvalidSetting, PipelineConfig};
use crate::pipeline::decide::{is_copy, rounded, Compared, EventTime, Evidence, KeptEvidence};
use crate::pipeline::fingerprint::sketch::Sketch;
use crate::pipeline::fingerprint::{hamming, Fingerprint, Lead, LEAD_ANCHORS};
use crate::pipeline::index::keys::AnchorKeys;
use crate::pipeline::index::{prefetch_line, EntryKeys, EventSpan, IndexConfig, NearDupIndex, Slot, NO_ANCHOR};
pub use crate::pipeline::messages::{Decision, Outcome, Verdict};
use crate::pipeline::normalize::rules::BoilerplateRules;
use crate::pipeline::prepare::{Prepared, Preparer};
use crate::pipeline::record::{Article, InvalidRecord};
use crate::pipeline::story::{CanonicalStore, Match, Stories, StoryEvent, StoryKey};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;

#[derive(Debug)]
struct SlotInfo {
    story: StoryKey,
    tokens: u32,
    /// Shared with the article's member of its story.
    article_id: Arc<str>,
    /// What the article matched when it was decided (`None`: it founded its story), so that a
    /// redelivered record gets the same decision again. Boxed: most entries founded a story,
    /// and an inline one took 120 bytes of each.
    matched: Option<Box<KeptMatch>>,
    exact: u64,
    /// The headline key, when `has_title` (apart: an `Option` took 8 bytes more of each
    /// entry).
    title: u64,
    has_title: bool,
    lead: Lead,
    /// Kept for the index, which reads its keys back from here (see [`KeptKeys`]).
    lead_anchors: [u32; LEAD_ANCHORS],
    sketch: Sketch,
}

/// [`Matched`] as a held entry keeps it: 48 bytes with its allocation, where the working form
/// took 128.
#[derive(Debug, Clone)]
struct KeptMatch {
    article_id: Arc<str>,
    distance: u8,
    evidence: KeptEvidence,
}

impl From<&Matched> for KeptMatch {
    fn from(matched: &Matched) -> Self {
        Self {
            article_id: matched.article_id.clone(),
            // A Hamming distance of 64-bit hashes.
            distance: matched.m.distance.min(64) as u8,
            evidence: KeptEvidence::from(&matched.evidence),
        }
    }
}

impl KeptMatch {
    /// The match again: its similarity is the evidence's shorter share (see
    /// [`Engine::best_candidate`]).
    fn matched(&self) -> Matched {
        let evidence = self.evidence.evidence();
        Matched {
            article_id: self.article_id.clone(),
            m: Match {
                similarity: evidence.shorter_share,
                distance: u32::from(self.distance),
            },
            evidence,
        }
    }
}

/// The article a duplicate joined through, how it matched, and the evidence.
#[derive(Debug, Clone)]
struct Matched {
    article_id: Arc<str>,
    m: Match,
    evidence: Evidence,
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
                AnchorKeys::from_parts(&info.sketch, &info.lead_anchors, info.title(), self.config).copy_into(keys);
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

    /// Keeps stories' canonical records in `store` (on the heap by default); set before the
    /// first record.
    pub fn set_canonical_store(&mut self, store: Box<dyn CanonicalStore>) {
        self.stories.set_store(store);
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

    /// Sizes an empty engine for `articles` arrivals at once, as a restore does before it
    /// decides them again (see [`NearDupIndex::reserve`]).
    pub fn reserve(&mut self, articles: usize) {
        if self.index.is_empty() && self.slots.is_empty() {
            let articles = articles.min(self.config.index.capacity);
            self.index.reserve(articles);
            self.slots.reserve_exact(articles);
        }
    }

    /// [`Engine::decide`] for a caller that drops the outcome (a restore, a standby): the
    /// same state afterwards, without building story events or reading canonical records back.
    pub fn decide_quietly(&mut self, prepared: Prepared) {
        self.stories.set_quiet(true);
        self.decide(prepared);
        self.stories.set_quiet(false);
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
        // Shared by the article's story member and its index entry, however it is decided.
        let id: Arc<str> = Arc::from(article.id.as_str());
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
            if *info.article_id == *article.id {
                // The same record again (a redelivery after a rebalance or a restart):
                // the same decision, and no story event since nothing changed.
                return self.redelivered(article, info.story, info.matched.as_deref().map(KeptMatch::matched));
            }
            let (story, matched) = (info.story, info.article_id.to_string());
            let m = Match {
                similarity: 1.0,
                distance: 0,
            };
            let event = self.stories.join(story, article, &id, m, false);
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
            return self.found_story(article, id, slot, fp);
        };
        let event = self.stories.join(story, article, &id, matched.m, true);
        self.counters.duplicate += 1;
        let outcome = self.joined(
            article,
            Verdict::Duplicate,
            story,
            matched.article_id.to_string(),
            matched.m,
            Some(matched.evidence),
            event,
        );
        self.remember(slot, story, id, fp, Some(Box::new(KeptMatch::from(&matched))));
        outcome
    }

    /// The event time the article is compared by ([`EventTime::of`]), counting dated-ahead
    /// articles.
    fn event_span(&mut self, article: &Article) -> Option<EventSpan> {
        let time = EventTime::of(article, &self.config.index);
        self.counters.dated_ahead += u64::from(time == EventTime::DatedAhead);
        time.span()
    }

    fn found_story(&mut self, article: &Article, id: Arc<str>, slot: Slot, fp: Fingerprint) -> Outcome {
        let (story, event) = self.stories.create(article, &id);
        self.counters.new_story += 1;
        let story_id = self.stories.story_id(story);
        self.remember(slot, story, id, fp, None);
        founded(article, story_id, event)
    }

    fn redelivered(&mut self, article: &Article, story: StoryKey, matched: Option<Matched>) -> Outcome {
        match matched {
            Some(matched) => {
                self.counters.duplicate += 1;
                let (id, m, evidence) = (matched.article_id.to_string(), matched.m, Some(matched.evidence));
                self.joined(article, Verdict::Duplicate, story, id, m, evidence, None)
            }
            None => {
                self.counters.new_story += 1;
                founded(article, self.stories.story_id(story), None)
            }
        }
    }

    fn remember(
        &mut self,
        slot: Slot,
        story: StoryKey,
        article_id: Arc<str>,
        fp: Fingerprint,
        matched: Option<Box<KeptMatch>>,
    ) {
        let i = slot as usize;
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, || None);
        }
        self.slots[i] = Some(SlotInfo {
            story,
            tokens: fp.tokens,
            article_id,
            matched,
            exact: fp.exact,
            title: fp.title.unwrap_or_default(),
            has_title: fp.title.is_some(),
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
                story_id: self.stories.story_id(story),
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
    fn title(&self) -> Option<u64> {
        self.has_title.then_some(self.title)
    }

    fn compared(&self) -> Compared<'_> {
        Compared {
            sketch: &self.sketch,
            lead: &self.lead,
            title: self.title(),
            tokens: self.tokens,
        }
    }
}
