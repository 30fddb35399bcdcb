//! Stories: clusters of copies of one article, the canonical copy of each, and the events that
//! tell downstream consumers what changed.
//!
//! A story is founded by the first article that matched nothing; its id is derived from that
//! article (source and id), so the same input gives the same ids on every run. The canonical
//! copy is the best member by source priority (wire agencies first), then earliest
//! `published_at`, then first seen. Every join emits one event: `story_updated`, or
//! `canonical_changed` when the newcomer outranks the current canonical copy.
//!
//! A story keeps, and its events carry, only its latest members (and the canonical one) with
//! a count of all: a wire story reprinted by thousands of sites would otherwise grow every
//! event with each copy, the output with the square of the copies, and its events past what a
//! broker accepts (`message.max.bytes`, 1 MB by default: a few thousand members).

use crate::pipeline::record::Article;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use xxhash_rust::xxh3::xxh3_64;

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoryConfig {
    /// Sources in order of preference for the canonical copy. An entry matches a source equal
    /// to it or having it as one dot-separated label (`trend` matches `trend.az`), ignoring case.
    pub source_priority: Vec<String>,
    /// Latest members a story keeps and its events carry (the canonical member too, first,
    /// when it is older); `member_count` says how many joined in all.
    pub max_event_members: usize,
}

/// Default of [`StoryConfig::max_event_members`]: an event of some 20 KB besides its canonical
/// article.
pub const MAX_EVENT_MEMBERS: usize = 100;

impl Default for StoryConfig {
    fn default() -> Self {
        let wire = [
            "azertac",
            "azertag",
            "trend",
            "report",
            "apa",
            "ap",
            "apnews",
            "reuters",
            "afp",
            "tass",
            "ria",
            "interfax",
            "kazinform",
            "inform",
            "akipress",
            "xinhua",
            "anadolu",
            "aa",
            "dpa",
            "efe",
            "ansa",
            "pti",
            "upi",
            "bloomberg",
        ];
        Self {
            source_priority: wire.iter().map(|s| s.to_string()).collect(),
            max_event_members: MAX_EVENT_MEMBERS,
        }
    }
}

/// Deterministic story id derived from the founding article.
pub fn story_id_for(source: &str, article_id: &str) -> String {
    story_id_text(story_number(source, article_id))
}

fn story_number(source: &str, article_id: &str) -> u64 {
    let mut key = Vec::with_capacity(source.len() + article_id.len() + 1);
    key.extend_from_slice(source.as_bytes());
    key.push(0);
    key.extend_from_slice(article_id.as_bytes());
    xxh3_64(&key)
}

fn story_id_text(number: u64) -> String {
    format!("st-{number:016x}")
}

/// One member as shown in story events.
///
/// Every held article is a member of a story, so a member is kept compact: its id shared with
/// the engine's entry, source and URL in one allocation, its date and match as numbers until
/// written (the JSON is what the derived form of the plain fields wrote).
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    article_id: Arc<str>,
    /// The source, then the URL when there is one.
    source_url: Box<str>,
    /// Where the URL starts in `source_url`; `None`: no URL.
    url_at: Option<u32>,
    published_at: DateTime<Utc>,
    /// Similarity in thousandths, as rounded for the event; `None` for the founder.
    permille: Option<u16>,
    distance: Option<u8>,
}

impl Member {
    pub fn article_id(&self) -> &str {
        &self.article_id
    }

    pub fn source(&self) -> &str {
        let end = self.url_at.map_or(self.source_url.len(), |at| at as usize);
        self.source_url.get(..end).unwrap_or_default()
    }

    pub fn url(&self) -> Option<&str> {
        self.url_at.and_then(|at| self.source_url.get(at as usize..))
    }

    /// Containment of the shorter text in the longer, against the article it matched, to
    /// three decimals; absent for the founder, 1.0 for exact copies.
    pub fn similarity(&self) -> Option<f64> {
        self.permille.map(|p| f64::from(p) / 1000.0)
    }

    /// SimHash Hamming distance to the article it matched; absent for the founder.
    pub fn distance(&self) -> Option<u32> {
        self.distance.map(u32::from)
    }
}

impl Serialize for Member {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = serializer.serialize_struct("Member", 6)?;
        out.serialize_field("article_id", &*self.article_id)?;
        out.serialize_field("source", self.source())?;
        out.serialize_field("url", &self.url())?;
        out.serialize_field(
            "published_at",
            &self.published_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        )?;
        out.serialize_field("similarity", &self.similarity())?;
        out.serialize_field("distance", &self.distance())?;
        out.end()
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    StoryCreated,
    StoryUpdated,
    CanonicalChanged,
}

impl EventKind {
    pub const ALL: [EventKind; 3] = [
        EventKind::StoryCreated,
        EventKind::StoryUpdated,
        EventKind::CanonicalChanged,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            EventKind::StoryCreated => "story_created",
            EventKind::StoryUpdated => "story_updated",
            EventKind::CanonicalChanged => "canonical_changed",
        }
    }
}

/// Where a story's canonical record as received is kept while the story is open.
///
/// A story event carries it, so a story founded by a 3 KB article keeps 3 KB for as long as it
/// is open, most of the engine's memory per held article. A store may keep it off the heap
/// (a file read back when a later copy joins); the engine only asks for it back.
#[derive(Debug, Clone)]
pub enum Kept {
    /// On the heap.
    Held(Arc<str>),
    /// Where a store put it: the store's own coordinates.
    Stored { segment: u32, offset: u32, len: u32 },
}

/// A kept canonical record that could not be read back: the event that needed it cannot be
/// written.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot read back the canonical record of a story from {place}: {reason}; the canonical record store's directory (store.dir) must stay readable while syndic runs")]
pub struct Unreadable {
    pub place: String,
    pub reason: String,
}

/// Keeps stories' canonical records until they are forgotten (see [`Kept`]).
pub trait CanonicalStore: fmt::Debug + Send {
    /// Keeps `raw`. A store that cannot put it where it keeps records (a full disk) keeps it
    /// on the heap and says so itself: a record is never lost for a store's trouble.
    fn keep(&mut self, raw: &Arc<str>) -> Kept;
    /// The record `kept` names.
    fn read(&self, kept: &Kept) -> Result<Arc<str>, Unreadable>;
    /// The record is no story's canonical one any more.
    fn forget(&mut self, kept: Kept);
}

/// Keeps canonical records on the heap, as they came.
#[derive(Debug, Default)]
pub struct HeapStore;

impl CanonicalStore for HeapStore {
    fn keep(&mut self, raw: &Arc<str>) -> Kept {
        Kept::Held(raw.clone())
    }

    fn read(&self, kept: &Kept) -> Result<Arc<str>, Unreadable> {
        match kept {
            Kept::Held(raw) => Ok(raw.clone()),
            Kept::Stored { segment, offset, .. } => Err(Unreadable {
                place: format!("segment {segment} at {offset}"),
                reason: "the heap store keeps no records elsewhere".to_string(),
            }),
        }
    }

    fn forget(&mut self, _kept: Kept) {}
}

/// An event could not be written.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("cannot serialize a story event: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Canonical(#[from] Unreadable),
}

/// A story event, as published (JSON, [`StoryEvent::write_json`]). `canonical` is the
/// canonical article as received.
#[derive(Debug, Clone)]
pub struct StoryEvent {
    pub kind: EventKind,
    pub story_id: String,
    pub version: u64,
    pub canonical_article_id: String,
    /// Valid JSON ([`Article::raw`]), or why the store could not give it back.
    pub canonical: Result<Arc<str>, Unreadable>,
    /// Members who joined, this one included.
    pub member_count: u64,
    /// The canonical member first when it is not among the latest, then the latest
    /// [`StoryConfig::max_event_members`] in arrival order. Shared with the story: an event
    /// costs a reference count per member, not a copy.
    pub members: Vec<Arc<Member>>,
}

/// The fields of a [`StoryEvent`] before `canonical`, in the order they are written.
#[derive(Serialize)]
struct EventHead<'a> {
    kind: EventKind,
    story_id: &'a str,
    version: u64,
    canonical_article_id: &'a str,
}

/// The fields of a [`StoryEvent`] after `canonical`.
#[derive(Serialize)]
struct EventTail<'a> {
    member_count: u64,
    members: &'a [Arc<Member>],
}

impl StoryEvent {
    /// Appends the event to `out` as one JSON object, with the canonical article's record as it
    /// came.
    ///
    /// The record is written between the fields serde writes, not through serde: serde_json
    /// carries a text as JSON only as a `RawValue`, which it makes only by parsing the text
    /// again, and keeping every record as one took a parsing pass of its own per record.
    pub fn write_json(&self, out: &mut Vec<u8>) -> Result<(), EventError> {
        let canonical = self.canonical.as_ref().map_err(Clone::clone)?;
        let head = EventHead {
            kind: self.kind,
            story_id: &self.story_id,
            version: self.version,
            canonical_article_id: &self.canonical_article_id,
        };
        serde_json::to_writer(&mut *out, &head)?;
        // Both parts are objects with fields, `{...}`: the head's closing brace and the tail's
        // opening one make way for `canonical` between them.
        out.pop();
        out.extend_from_slice(b",\"canonical\":");
        out.extend_from_slice(canonical.as_bytes());
        let tail_start = out.len();
        let tail = EventTail {
            member_count: self.member_count,
            members: &self.members,
        };
        serde_json::to_writer(&mut *out, &tail)?;
        if let Some(opening) = out.get_mut(tail_start) {
            *opening = b',';
        }
        Ok(())
    }
}

/// Internal handle of a story.
pub type StoryKey = u32;

#[derive(Debug)]
struct Story {
    /// The number in its id ([`story_id_for`]): 8 bytes, where the text took 48.
    id: u64,
    version: u64,
    /// The latest members, oldest first; empty while the founder is the only one (most
    /// stories: no allocation for them).
    latest: VecDeque<Arc<Member>>,
    member_count: u64,
    canonical: Arc<Member>,
    canonical_rank: (usize, DateTime<Utc>, u64),
    canonical_raw: Kept,
    /// Index entries still pointing at this story; the story is dropped at zero.
    live_entries: u32,
}

/// All open stories.
#[derive(Debug)]
pub struct Stories {
    /// `StoryConfig::source_priority`, lower-cased: entry -> its position (the first one when
    /// listed twice). A map, so that ranking a source costs a lookup per label, not a pass
    /// over the list per article.
    priority: HashMap<String, usize>,
    /// The rank of a source matching no entry: the list's length.
    unranked: usize,
    max_members: usize,
    /// Open stories by key; a closed story's key goes to `free`, for the next story. A slab
    /// rather than a map: a map of a million stories held the stream for over a second each
    /// time it doubled, rehashing them all, where a vector's growth moves its pages.
    stories: Vec<Option<Story>>,
    free: Vec<StoryKey>,
    open: usize,
    seen: u64,
    store: Box<dyn CanonicalStore>,
    /// No events: the state changes as always, but nothing is built for a caller that would
    /// drop it (a restore, a standby), and no canonical record is read back.
    quiet: bool,
}

/// How an article relates to the story it joins.
#[derive(Debug, Clone, Copy)]
pub struct Match {
    pub similarity: f64,
    pub distance: u32,
}

fn member_of(article: &Article, id: &Arc<str>, matched: Option<Match>) -> Member {
    let mut source_url = article.source.clone();
    let url_at = article.url.as_deref().map(|url| {
        let at = source_url.len();
        source_url.push_str(url);
        at as u32
    });
    Member {
        article_id: id.clone(),
        source_url: source_url.into_boxed_str(),
        url_at,
        published_at: article.published_at,
        // A similarity is in [0, 1] and a distance at most 64: the narrow types hold them.
        permille: matched.map(|m| (m.similarity * 1000.0).round().clamp(0.0, 1000.0) as u16),
        distance: matched.map(|m| m.distance.min(u32::from(u8::MAX)) as u8),
    }
}

impl Stories {
    pub fn new(config: StoryConfig) -> Self {
        Self {
            priority: config
                .source_priority
                .iter()
                .enumerate()
                .rev()
                .map(|(position, entry)| (entry.to_lowercase(), position))
                .collect(),
            unranked: config.source_priority.len(),
            max_members: config.max_event_members.max(1),
            stories: Vec::new(),
            free: Vec::new(),
            open: 0,
            seen: 0,
            store: Box::new(HeapStore),
            quiet: false,
        }
    }

    /// See [`Stories::quiet`](Stories).
    pub fn set_quiet(&mut self, quiet: bool) {
        self.quiet = quiet;
    }

    /// Keeps canonical records in `store` from now on; for an empty set of stories (records
    /// kept before would be asked of the wrong store).
    pub fn set_store(&mut self, store: Box<dyn CanonicalStore>) {
        debug_assert!(self.is_empty(), "a store is set before any story opens");
        self.store = store;
    }

    /// Rank of a source: the position of the first priority entry equal to it or to one of
    /// its dot-separated labels, or the list's length when none is.
    fn rank(&self, source: &str) -> usize {
        let source = source.trim();
        // Sources are usually lower case already; only others pay for a lower-cased copy.
        let lowered;
        let source = if source.bytes().any(|b| b.is_ascii_uppercase()) || !source.is_ascii() {
            lowered = source.to_lowercase();
            lowered.as_str()
        } else {
            source
        };
        std::iter::once(source)
            .chain(source.split('.'))
            .filter_map(|candidate| self.priority.get(candidate).copied())
            .min()
            .unwrap_or(self.unranked)
    }

    pub fn len(&self) -> usize {
        self.open
    }

    pub fn is_empty(&self) -> bool {
        self.open == 0
    }

    pub fn story_id(&self, key: StoryKey) -> Option<String> {
        self.story(key).map(|s| story_id_text(s.id))
    }

    fn story(&self, key: StoryKey) -> Option<&Story> {
        self.stories.get(key as usize).and_then(Option::as_ref)
    }

    fn story_mut(&mut self, key: StoryKey) -> Option<&mut Story> {
        self.stories.get_mut(key as usize).and_then(Option::as_mut)
    }

    /// The story's event; `canonical` is its canonical record when at hand (it just came).
    fn event(story: &Story, kind: EventKind, canonical: Result<Arc<str>, Unreadable>) -> StoryEvent {
        // A founder alone is in no list yet: it is listed as the canonical member.
        let canonical_listed = story.latest.iter().any(|m| Arc::ptr_eq(m, &story.canonical));
        let older_canonical = (!canonical_listed).then(|| story.canonical.clone());
        StoryEvent {
            kind,
            story_id: story_id_text(story.id),
            version: story.version,
            canonical_article_id: story.canonical.article_id().to_string(),
            canonical,
            member_count: story.member_count,
            members: older_canonical
                .into_iter()
                .chain(story.latest.iter().cloned())
                .collect(),
        }
    }

    /// Founds a story with `article` as its first member.
    /// `id` is the article's id, shared with whoever else keeps it.
    pub fn create(&mut self, article: &Article, id: &Arc<str>) -> (StoryKey, Option<StoryEvent>) {
        self.seen += 1;
        let founder = Arc::new(member_of(article, id, None));
        let story = Story {
            id: story_number(&article.source, &article.id),
            version: 1,
            latest: VecDeque::new(),
            member_count: 1,
            canonical: founder,
            canonical_rank: (self.rank(&article.source), article.published_at, self.seen),
            canonical_raw: self.store.keep(&article.raw),
            live_entries: 1,
        };
        let event = (!self.quiet).then(|| Self::event(&story, EventKind::StoryCreated, Ok(article.raw.clone())));
        let key = match self.free.pop() {
            Some(key) => {
                self.stories[key as usize] = Some(story);
                key
            }
            None => {
                self.stories.push(Some(story));
                (self.stories.len() - 1) as StoryKey
            }
        };
        self.open += 1;
        (key, event)
    }

    /// Adds `article` to a story. Returns `None` when the story is gone or the article is
    /// already a member (a redelivery), since nothing changed, and when quiet. Only the members the story
    /// keeps are recognised here. That matters for exact copies alone, since the engine knows
    /// any article it indexed by its slot: an exact copy redelivered after as many newer
    /// members as the story keeps joins again, as records do after a crash (at least once).
    pub fn join(
        &mut self,
        key: StoryKey,
        article: &Article,
        id: &Arc<str>,
        matched: Match,
        indexed: bool,
    ) -> Option<StoryEvent> {
        self.seen += 1;
        let rank = (self.rank(&article.source), article.published_at, self.seen);
        let max_members = self.max_members;
        let quiet = self.quiet;
        let story = self.stories.get_mut(key as usize).and_then(Option::as_mut)?;
        let known = |m: &Arc<Member>| m.article_id() == article.id;
        if known(&story.canonical) || story.latest.iter().any(known) {
            return None;
        }
        let member = Arc::new(member_of(article, id, Some(matched)));
        if story.latest.is_empty() {
            story.latest.push_back(story.canonical.clone());
        }
        if story.latest.len() == max_members {
            story.latest.pop_front();
        }
        story.latest.push_back(member.clone());
        story.member_count += 1;
        if indexed {
            story.live_entries += 1;
        }
        story.version += 1;
        if rank < story.canonical_rank {
            story.canonical = member;
            story.canonical_rank = rank;
            let before = std::mem::replace(&mut story.canonical_raw, self.store.keep(&article.raw));
            self.store.forget(before);
            (!quiet).then(|| Self::event(story, EventKind::CanonicalChanged, Ok(article.raw.clone())))
        } else {
            (!quiet).then(|| Self::event(story, EventKind::StoryUpdated, self.store.read(&story.canonical_raw)))
        }
    }

    /// An index entry of the story was evicted; the story closes with its last entry.
    pub fn release(&mut self, key: StoryKey) {
        if let Some(story) = self.story_mut(key) {
            story.live_entries = story.live_entries.saturating_sub(1);
            if story.live_entries == 0 {
                if let Some(closed) = self.stories[key as usize].take() {
                    self.store.forget(closed.canonical_raw);
                }
                self.free.push(key);
                self.open -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::record::parse;

    impl Stories {
        fn create_plain(&mut self, article: &Article) -> (StoryKey, StoryEvent) {
            let (key, event) = self.create(article, &Arc::from(article.id.as_str()));
            (key, event.expect("not quiet"))
        }

        fn join_plain(
            &mut self,
            key: StoryKey,
            article: &Article,
            matched: Match,
            indexed: bool,
        ) -> Option<StoryEvent> {
            self.join(key, article, &Arc::from(article.id.as_str()), matched, indexed)
        }
    }

    fn article(id: &str, source: &str, date: &str) -> Article {
        let rec = format!(r#"{{"id":"{id}","source":"{source}","body":"text","published_at":"{date}"}}"#);
        parse(rec.as_bytes(), &Default::default(), Utc::now()).unwrap()
    }

    #[test]
    fn a_source_ranks_by_the_first_entry_matching_it_or_one_of_its_labels() {
        let config = StoryConfig {
            source_priority: ["AZERTAG", "trend", "report", "trend"].map(String::from).to_vec(),
            ..StoryConfig::default()
        };
        let stories = Stories::new(config);
        assert_eq!(stories.rank("azertag"), 0, "entries are compared lower-cased");
        assert_eq!(stories.rank(" Trend.AZ "), 1, "a label matches, whatever its case");
        assert_eq!(stories.rank("report.trend.az"), 1, "the best matching entry wins");
        assert_eq!(stories.rank("report.az"), 2);
        assert_eq!(stories.rank("trendy.az"), 4, "labels match whole, not as prefixes");
        assert_eq!(stories.rank("news.az"), 4);
    }

    #[test]
    fn ids_are_deterministic_and_distinct() {
        assert_eq!(story_id_for("news.az", "1"), story_id_for("news.az", "1"));
        assert_ne!(story_id_for("news.az", "1"), story_id_for("news.az", "2"));
        assert_ne!(story_id_for("news.a", "z1"), story_id_for("news.az", "1"));
    }

    #[test]
    fn a_wire_original_arriving_after_its_reprint_becomes_canonical() {
        let mut stories = Stories::new(StoryConfig::default());
        let reprint = article("r1", "news.az", "2024-01-02");
        let (key, created) = stories.create_plain(&reprint);
        assert_eq!(created.kind, EventKind::StoryCreated);
        let m = Match {
            similarity: 0.9,
            distance: 4,
        };
        let original = article("o1", "azertag.az", "2024-01-02");
        let ev = stories.join_plain(key, &original, m, true).unwrap();
        assert_eq!(ev.kind, EventKind::CanonicalChanged);
        assert_eq!(ev.canonical_article_id, "o1");
        assert_eq!(ev.version, 2);
        assert_eq!(ev.story_id, created.story_id, "the story keeps its id");
        let later = article("r2", "today.az", "2024-01-01");
        let ev = stories.join_plain(key, &later, m, true).unwrap();
        assert_eq!(
            ev.kind,
            EventKind::StoryUpdated,
            "source priority beats an earlier date"
        );
        assert_eq!(ev.members.len(), 3);
        assert!(
            stories.join_plain(key, &later, m, true).is_none(),
            "a redelivery changes nothing"
        );
    }

    #[test]
    fn an_event_is_one_json_object_carrying_the_canonical_record_as_received() {
        let mut stories = Stories::new(StoryConfig::default());
        let rec = r#"{ "id" : "r1", "source":"news.az", "body":"T\u00e9xt \"q\"",  "extra":[1, {"k":null}],"published_at":"2024-01-02"}"#;
        let (key, _) = stories.create_plain(&parse(rec.as_bytes(), &Default::default(), Utc::now()).unwrap());
        let copy = Match {
            similarity: 0.9,
            distance: 4,
        };
        let reprint = article("r2", "today.az", "2024-01-03");
        let joined = stories.join_plain(key, &reprint, copy, true).unwrap();
        let mut out = b"before ".to_vec();
        joined.write_json(&mut out).unwrap();
        let json = std::str::from_utf8(&out).unwrap().strip_prefix("before ").unwrap();
        assert!(
            json.starts_with(r#"{"kind":"story_updated","story_id":"#),
            "fields keep their documented order: {json}"
        );
        assert!(json.contains(&format!(
            r#""canonical_article_id":"r1","canonical":{rec},"member_count":2,"members":[{{"#
        )));
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(
            value["canonical"],
            serde_json::from_str::<serde_json::Value>(rec).unwrap()
        );
        assert_eq!(value["members"][1]["article_id"], "r2");
        assert_eq!(value.as_object().unwrap().len(), 7, "{json}");
    }

    #[test]
    fn among_equal_sources_the_earliest_copy_wins() {
        let mut stories = Stories::new(StoryConfig::default());
        let (key, _) = stories.create_plain(&article("b", "site-b.com", "2024-01-05"));
        let ev = stories
            .join_plain(
                key,
                &article("a", "site-a.com", "2024-01-03"),
                Match {
                    similarity: 1.0,
                    distance: 0,
                },
                true,
            )
            .unwrap();
        assert_eq!(ev.kind, EventKind::CanonicalChanged);
        assert_eq!(ev.canonical_article_id, "a");
    }

    #[test]
    fn a_story_closes_when_its_last_entry_is_released() {
        let mut stories = Stories::new(StoryConfig::default());
        let (key, _) = stories.create_plain(&article("a", "x.com", "2024-01-05"));
        stories.join_plain(
            key,
            &article("b", "y.com", "2024-01-05"),
            Match {
                similarity: 1.0,
                distance: 0,
            },
            true,
        );
        stories.release(key);
        assert_eq!(stories.len(), 1);
        stories.release(key);
        assert!(stories.is_empty());
    }

    #[test]
    fn a_closed_story_is_gone_and_the_stories_opened_after_it_keep_their_own_members() {
        let mut stories = Stories::new(StoryConfig::default());
        let m = Match {
            similarity: 0.9,
            distance: 3,
        };
        let (first, _) = stories.create_plain(&article("a1", "news.az", "2024-01-01"));
        let (second, second_created) = stories.create_plain(&article("b1", "trend.az", "2024-01-01"));
        stories.release(first);
        assert_eq!(stories.story_id(first), None);
        assert!(stories
            .join_plain(first, &article("a2", "apa.az", "2024-01-01"), m, true)
            .is_none());
        assert_eq!(stories.len(), 1);
        let mut opened = Vec::new();
        for i in 0..3 {
            let (key, created) = stories.create_plain(&article(&format!("c{i}"), "report.az", "2024-01-01"));
            opened.push((key, created.story_id));
        }
        for (i, (key, id)) in opened.iter().enumerate() {
            assert_eq!(stories.story_id(*key).as_ref(), Some(id));
            let joined = stories.join_plain(*key, &article(&format!("d{i}"), "apa.az", "2024-01-01"), m, true);
            let joined = joined.expect("an open story takes a new member");
            assert_eq!(&joined.story_id, id);
            let members: Vec<&str> = joined.members.iter().map(|m| &*m.article_id).collect();
            assert_eq!(members, [format!("c{i}"), format!("d{i}")]);
        }
        assert_eq!(stories.story_id(second), Some(second_created.story_id));
        assert_eq!(stories.len(), 4);
    }

    #[test]
    fn a_story_keeps_its_latest_members_and_its_canonical_one_and_counts_them_all() {
        let mut stories = Stories::new(StoryConfig {
            max_event_members: 3,
            ..StoryConfig::default()
        });
        let m = Match {
            similarity: 0.9,
            distance: 3,
        };
        let ids = |event: &StoryEvent| {
            event
                .members
                .iter()
                .map(|m| m.article_id.to_string())
                .collect::<Vec<_>>()
        };
        let (key, _) = stories.create_plain(&article("wire", "trend.az", "2024-01-01"));
        let mut last = None;
        for i in 1..=5 {
            last = stories.join_plain(key, &article(&format!("r{i}"), "news.az", "2024-01-01"), m, true);
        }
        let event = last.expect("a copy joins");
        assert_eq!(event.member_count, 6);
        assert_eq!(
            ids(&event),
            ["wire", "r3", "r4", "r5"],
            "the canonical founder, then the latest"
        );
        assert!(stories
            .join_plain(key, &article("r4", "news.az", "2024-01-01"), m, true)
            .is_none());
        let event = stories
            .join_plain(key, &article("o1", "azertag.az", "2024-01-01"), m, true)
            .expect("a copy joins");
        assert_eq!(event.kind, EventKind::CanonicalChanged);
        assert_eq!(
            ids(&event),
            ["r4", "r5", "o1"],
            "a canonical among the latest is listed once"
        );
        assert_eq!(event.member_count, 7);
        assert!(
            stories
                .join_plain(key, &article("r1", "news.az", "2024-01-01"), m, true)
                .is_some(),
            "a member no longer kept is not recognised"
        );
    }

    proptest::proptest! {
        /// Whatever joins and redeliveries come, an event counts every member, names the
        /// best-ranked one canonical, and carries the latest `max` members in arrival order,
        /// preceded by the canonical one when it is older.
        #[test]
        fn events_carry_the_latest_members_and_the_best_ranked_one(
            max in 1usize..6,
            joins in proptest::collection::vec((0usize..12, 0usize..3, 1u32..28), 0..40),
        ) {
            const SOURCES: [&str; 3] = ["trend.az", "news.az", "today.az"];
            let mut stories = Stories::new(StoryConfig { max_event_members: max, ..StoryConfig::default() });
            let m = Match { similarity: 1.0, distance: 0 };
            let (key, _) = stories.create_plain(&article("founder", "news.az", "2024-01-15"));
            // The model: every member in arrival order, with what ranks it.
            let mut joined = vec![("founder".to_string(), stories.rank("news.az"), 15u32)];
            for (id, source, day) in joins {
                let id = format!("a{id}");
                let date = format!("2024-01-{day:02}");
                let event = stories.join_plain(key, &article(&id, SOURCES[source], &date), m, true);
                let kept_from = joined.len().saturating_sub(max);
                let known = joined[kept_from..].iter().any(|(j, _, _)| *j == id)
                    || joined.iter().min_by_key(|(_, rank, day)| (*rank, *day)).is_some_and(|(c, _, _)| *c == id);
                if known {
                    proptest::prop_assert!(event.is_none(), "{id} is a member still kept");
                    continue;
                }
                joined.push((id, stories.rank(SOURCES[source]), day));
                let event = event.expect("a new member joins");
                // Ties go to the first seen: min_by_key keeps the first of equals.
                let canonical = &joined.iter().min_by_key(|(_, rank, day)| (*rank, *day)).unwrap().0;
                let latest: Vec<&String> = joined[joined.len().saturating_sub(max)..].iter().map(|(j, _, _)| j).collect();
                let mut expected: Vec<&String> = Vec::new();
                if !latest.contains(&canonical) {
                    expected.push(canonical);
                }
                expected.extend(latest);
                let listed: Vec<&str> = event.members.iter().map(|m| &*m.article_id).collect();
                let expected: Vec<&str> = expected.into_iter().map(String::as_str).collect();
                proptest::prop_assert_eq!(event.member_count, joined.len() as u64);
                proptest::prop_assert_eq!(&event.canonical_article_id, canonical);
                proptest::prop_assert_eq!(listed, expected);
            }
        }
    }
}
