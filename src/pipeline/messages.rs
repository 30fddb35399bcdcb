//! The messages between the pipeline's stages, named: a record after the stateless stages
//! ([`Prepared`]), and what the engine made of it ([`Outcome`]: its [`Decision`], the story
//! event, the reason it was invalid). The worker's own (a record as consumed from Kafka) are in
//! `worker/messages.rs`.

use crate::pipeline::decide::Evidence;
use crate::pipeline::fingerprint::Fingerprint;
use crate::pipeline::record::{Article, InvalidRecord};
use crate::pipeline::story::StoryEvent;
use serde::Serialize;

/// One record after the stateless stages.
// Nearly every record is an article: boxing it to shrink the rare invalid case would cost an
// allocation per record.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Prepared {
    /// A valid article and its fingerprints (which may show no tokens: the engine rejects it).
    Article { article: Article, fingerprint: Fingerprint },
    /// A record that failed validation, with its id when it could still be read.
    Invalid {
        article_id: Option<String>,
        invalid: InvalidRecord,
    },
}

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

/// Where an input record was read. File outputs print it beside each decision so decisions can
/// be matched to their records; on Kafka the decision's `syndic.source.*` headers say it.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Position<'a> {
    /// A line of a file, numbered from 1.
    Line { input: &'a str, line: u64 },
    /// A record of a topic.
    Offset {
        topic: &'a str,
        partition: i32,
        offset: i64,
    },
}

/// A decision with its record's position, as one line of a decisions file.
#[derive(Debug, Serialize)]
pub struct PlacedDecision<'a> {
    #[serde(flatten)]
    pub decision: &'a Decision,
    pub position: Position<'a>,
}

/// The result of [`crate::pipeline::engine::Engine::process`]: a decision always, a story event when a story changed.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub decision: Decision,
    pub event: Option<StoryEvent>,
    pub invalid: Option<InvalidRecord>,
}
