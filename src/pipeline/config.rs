//! The pipeline's own settings: the config file sections it reads (`input`, `fingerprint`,
//! `index`, `verify`, `stories`), and the checks of ranges that their types alone do not make.
//!
//! Reading the file, environment overrides and the boilerplate rules file belong to the shell
//! ([`crate::config`]); the pipeline is handed these values and the rules as data.

use crate::pipeline::fingerprint::FingerprintConfig;
use crate::pipeline::index::IndexConfig;
use crate::pipeline::story::StoryConfig;
use serde::{Deserialize, Serialize};

/// A setting outside its accepted range: names the key, the value and what would be accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("config value {key} = {value} is not accepted; expected {expected}")]
pub struct InvalidSetting {
    pub key: &'static str,
    pub value: String,
    pub expected: &'static str,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputConfig {
    /// Records larger than this are rejected as `oversize`.
    pub max_record_bytes: usize,
    /// Records nesting arrays and objects deeper than this (the record itself is 1) are
    /// rejected as `too_deep`: a record is carried into story events as received, and most
    /// JSON readers downstream recurse (Python's gives up near 1,000).
    pub max_depth: usize,
    /// Records with more object fields than this, counted at every depth, are rejected as
    /// `too_many_fields`.
    pub max_fields: usize,
    /// Records with a string (a key or a value, as escaped JSON) longer than this in bytes are
    /// rejected as `string_too_long`. The body is the longest: a long feature runs to 100 KB.
    pub max_string_bytes: usize,
}

impl Default for InputConfig {
    fn default() -> Self {
        Self {
            max_record_bytes: 1 << 20,
            max_depth: 64,
            max_fields: 10_000,
            max_string_bytes: 512 << 10,
        }
    }
}

/// When a candidate counts as a copy. Defaults chosen with `syndic eval` (BENCHMARKS.md).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerifyConfig {
    /// Minimum estimated share of the shorter text's shingles found in the longer one.
    pub min_containment: f64,
    /// The same, for two articles under one headline (see `fingerprint::title_key`): a wire
    /// story's write-thru keeps its headline while paragraphs are added and rewritten. Used
    /// when lower than `min_containment`, and only when the numbers or the names could be
    /// compared (and agree).
    pub min_containment_same_title: f64,
    /// The share of the longer text that two texts which do not start alike must share (see
    /// `min_containment_new_lead`). Texts that start alike need not: a truncation or a teaser
    /// is the start of its original, while a recap, a shared block or a shared quote sits
    /// beside a lead of its own.
    pub min_longer_share: f64,
    /// The share of the longer text's lead (its first 30 shingles) found in the shorter text's
    /// start (its first 60) that says the two start alike.
    pub min_lead_shared: f64,
    /// Two texts that do not start alike are copies only when this share of the shorter (and
    /// `min_longer_share` of the longer) is shared, or their figures could be compared (and
    /// agree): a copy with a rewritten lead keeps most of its text and its figures, a block or
    /// a quote that two stories share is under half of each, beside figures of their own.
    pub min_containment_new_lead: f64,
    /// Two texts that do not start alike are not copies when the longer one's first sentence
    /// has more than this many figures and names that the shorter lacks: a recap opens with
    /// the new event's own before it repeats the older text; a wire's update opens with the
    /// same story's.
    pub max_new_lead_facts: u32,
    /// When both texts carry at least two numbers, the minimum share of the smaller set of
    /// numbers found in the other: recurring templates differ in their figures.
    pub min_number_overlap: f64,
    /// When both texts name three or more people, places or organisations, the minimum share
    /// of the smaller set of names found in the other (a regional press release adapted for
    /// another city is another story).
    pub min_name_overlap: f64,
    /// Texts shorter than this many tokens match only exact copies: a few words are not enough
    /// evidence ("See all photos (18)" against "See all photos (9)"). A token is a word, or a
    /// letter in scripts written without spaces (Chinese, Japanese, Thai).
    pub min_tokens: u32,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        Self {
            min_containment: 0.40,
            min_containment_same_title: 0.25,
            min_longer_share: 0.38,
            min_lead_shared: 0.4,
            min_containment_new_lead: 0.55,
            max_new_lead_facts: 3,
            min_number_overlap: 0.6,
            min_name_overlap: 0.3,
            min_tokens: 25,
        }
    }
}

/// Every setting the pipeline reads, one field per config file section.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PipelineConfig {
    pub input: InputConfig,
    pub fingerprint: FingerprintConfig,
    pub index: IndexConfig,
    pub verify: VerifyConfig,
    pub stories: StoryConfig,
}

impl PipelineConfig {
    /// Checks ranges that the types alone do not.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        let range = |key, value: String, expected| Err(InvalidSetting { key, value, expected });
        // The messages below spell these limits out.
        const _: () = assert!(
            crate::pipeline::index::MAX_ANCHORS == 32
                && crate::pipeline::fingerprint::LEAD_ANCHORS == 2
                && crate::pipeline::fingerprint::sketch::MAX_SHINGLES == 4096
        );
        if self.index.simhash_radius > 7 {
            return range(
                "index.simhash_radius",
                self.index.simhash_radius.to_string(),
                "0 to 7 (probes grow with the square of the radius)",
            );
        }
        if self.index.window_secs <= 0 {
            return range(
                "index.window_secs",
                self.index.window_secs.to_string(),
                "a positive number of seconds",
            );
        }
        if self.index.capacity == 0 {
            return range(
                "index.capacity",
                self.index.capacity.to_string(),
                "at least 1 article (about 4.5 KB of memory each; size it to the articles that arrive within index.window_secs)",
            );
        }
        if self.index.max_ahead_secs < 0 {
            return range(
                "index.max_ahead_secs",
                self.index.max_ahead_secs.to_string(),
                "zero or a positive number of seconds",
            );
        }
        if !(1..=8).contains(&self.fingerprint.simhash_shingle) || !(1..=8).contains(&self.fingerprint.sketch_shingle) {
            return range(
                "fingerprint.*_shingle",
                format!("{:?}", self.fingerprint),
                "1 to 8 words",
            );
        }
        if self.index.anchors > crate::pipeline::index::MAX_ANCHORS {
            return range(
                "index.anchors",
                self.index.anchors.to_string(),
                "0 to 32 (each is one more table probe per article)",
            );
        }
        if self.index.lead_anchors > crate::pipeline::fingerprint::LEAD_ANCHORS {
            return range("index.lead_anchors", self.index.lead_anchors.to_string(), "0 to 2");
        }
        // The upper bound keeps sketches (4 bytes per value, per indexed article) sane.
        if self.fingerprint.sketch_size < 8
            || self.fingerprint.sketch_size < self.index.anchors
            || self.fingerprint.sketch_size > crate::pipeline::fingerprint::sketch::MAX_SHINGLES
        {
            return range(
                "fingerprint.sketch_size",
                self.fingerprint.sketch_size.to_string(),
                "8 to 4096, and at least index.anchors",
            );
        }
        for (key, value) in [
            ("verify.min_containment", self.verify.min_containment),
            (
                "verify.min_containment_same_title",
                self.verify.min_containment_same_title,
            ),
            ("verify.min_number_overlap", self.verify.min_number_overlap),
            ("verify.min_name_overlap", self.verify.min_name_overlap),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return range(key, value.to_string(), "a fraction from 0 to 1");
            }
        }
        if !(1..=100_000).contains(&self.stories.max_event_members) {
            return range(
                "stories.max_event_members",
                self.stories.max_event_members.to_string(),
                "1 to 100000 (a story event carries that many members, about 200 bytes each)",
            );
        }
        for (key, value, expected) in [
            (
                "input.max_record_bytes",
                self.input.max_record_bytes,
                "a positive number of bytes",
            ),
            (
                "input.max_depth",
                self.input.max_depth,
                "a positive number of levels (the record itself is 1)",
            ),
            ("input.max_fields", self.input.max_fields, "a positive number of fields"),
            (
                "input.max_string_bytes",
                self.input.max_string_bytes,
                "a positive number of bytes",
            ),
        ] {
            if value == 0 {
                return range(key, "0".into(), expected);
            }
        }
        Ok(())
    }
}
