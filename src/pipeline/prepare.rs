//! The stateless stages of the pipeline: parse and validate, normalize, fingerprint.
//!
//! They need no state shared between articles, so they can run anywhere, ahead of the
//! engine: the Kafka worker runs them on a thread of their own while its main task decides
//! and produces; the engine runs them inline for the CLI, tests and benchmarks. This module
//! owns that split and the [`Prepared`] value that crosses it.

use crate::pipeline::config::{InputConfig, InvalidSetting, PipelineConfig};
use crate::pipeline::fingerprint::{self, Fingerprint, Fingerprinter};
pub use crate::pipeline::messages::Prepared;
use crate::pipeline::normalize::rules::BoilerplateRules;
use crate::pipeline::normalize::{self, Normalizer};
use crate::pipeline::record;
use chrono::{DateTime, Utc};

/// Runs the stateless stages with one configuration. Cloning gives an independent preparer
/// (its own scratch buffers) for another thread.
#[derive(Debug)]
pub struct Preparer {
    limits: InputConfig,
    normalizer: Normalizer,
    fingerprinter: Fingerprinter,
    // Reused buffers: the hot path allocates little once warm.
    normalized: normalize::Normalized,
    normalize_scratch: normalize::Scratch,
    fingerprint_scratch: fingerprint::Scratch,
}

impl Clone for Preparer {
    fn clone(&self) -> Self {
        Self::with(self.limits.clone(), self.normalizer.clone(), self.fingerprinter)
    }
}

impl Preparer {
    /// A preparer for `config`, which is validated first, and these boilerplate rules.
    pub fn new(config: &PipelineConfig, rules: BoilerplateRules) -> Result<Self, InvalidSetting> {
        config.validate()?;
        Ok(Self::with(
            config.input.clone(),
            Normalizer::new(rules),
            Fingerprinter::new(config.fingerprint),
        ))
    }

    /// A preparer of these stages, with fresh scratch buffers.
    fn with(limits: InputConfig, normalizer: Normalizer, fingerprinter: Fingerprinter) -> Self {
        Self {
            limits,
            normalizer,
            fingerprinter,
            normalized: normalize::Normalized::default(),
            normalize_scratch: normalize::Scratch::default(),
            fingerprint_scratch: fingerprint::Scratch::default(),
        }
    }

    /// Parses, validates, normalizes and fingerprints one raw record received at `ingest_time`.
    pub fn prepare(&mut self, record: &[u8], ingest_time: DateTime<Utc>) -> Prepared {
        match record::parse_with_body(record, &self.limits, ingest_time) {
            Ok((article, body)) => {
                let fingerprint = self.fingerprint_titled(&body, article.title.as_deref());
                Prepared::Article { article, fingerprint }
            }
            Err(invalid) => Prepared::Invalid {
                article_id: best_effort_id(record),
                invalid,
            },
        }
    }

    /// Fingerprints an article's body under its headline: the headline's key, and the body
    /// without the headline when it opens the body too, as on many scraped pages (one copy
    /// carrying it and another not must start alike).
    pub fn fingerprint_titled(&mut self, body: &str, title: Option<&str>) -> Fingerprint {
        let mut fingerprint = self.fingerprint_body(without_title(body, title));
        fingerprint.title = fingerprint::title_key(title);
        fingerprint
    }

    /// Normalizes and fingerprints a body.
    pub fn fingerprint_body(&mut self, body: &str) -> Fingerprint {
        self.normalizer
            .normalize_into(body, &mut self.normalize_scratch, &mut self.normalized);
        self.fingerprinter
            .fingerprint_normalized(&self.normalized, &mut self.fingerprint_scratch)
    }
}

/// `body` without its first line when that line is the headline (ASCII case and the
/// whitespace around it aside).
pub fn without_title<'a>(body: &'a str, title: Option<&str>) -> &'a str {
    let Some(title) = title.map(str::trim).filter(|t| !t.is_empty()) else {
        return body;
    };
    let body = body.trim_start();
    let (first, rest) = body.split_once('\n').unwrap_or((body, ""));
    if first.trim().eq_ignore_ascii_case(title) {
        rest
    } else {
        body
    }
}

/// The `id` of a record that failed validation, when it can still be read.
fn best_effort_id(record: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(record).ok()?;
    value.get("id")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::without_title;

    #[test]
    fn a_headline_opening_the_body_is_left_out_and_nothing_else_is() {
        let body = "Washington is first state to allow composting\nSEATTLE (AP) - Ashes to ashes.";
        assert_eq!(
            without_title(body, Some(" Washington is first state to allow composting ")),
            "SEATTLE (AP) - Ashes to ashes."
        );
        assert_eq!(without_title(body, Some("Another headline")), body);
        assert_eq!(without_title(body, None), body);
        assert_eq!(without_title("One line only", Some("One line only")), "");
    }
}
