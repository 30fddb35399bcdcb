//! `syndic explain`: what normalization does to each article (which rule dropped or stripped
//! what, and the tokens left), and, for two articles, the evidence verification weighs and the
//! verdict it gives. For writing rules and for operators asking why two texts were or were not
//! merged. The CLI reads the file and hands the records in.

use crate::pipeline::config::InputConfig;
use crate::pipeline::config::PipelineConfig;
use crate::pipeline::decide::{judge, EventTime, Evidence};
use crate::pipeline::fingerprint::Fingerprint;
use crate::pipeline::index::EventSpan;
use crate::pipeline::normalize::rules::BoilerplateRules;
use crate::pipeline::normalize::{Normalizer, ParagraphFate};
use crate::pipeline::prepare::{Prepared, Preparer};
use crate::pipeline::record::{parse_with_body, Article};
use std::io::Write;

#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("no valid article with id {0:?}: check the id (the records' `id` field), and `syndic dedup` for why a record is invalid")]
    NotFound(String),
    #[error("cannot write the explanation: {0}")]
    Write(#[from] std::io::Error),
}

/// `text` on one line, cut to `max` characters.
fn excerpt(text: &str, max: usize) -> String {
    let one_line = text.replace('\n', " ");
    match one_line.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &one_line[..cut]),
        None => one_line,
    }
}

/// Explains normalization record by record.
pub struct RulesExplainer {
    normalizer: Normalizer,
    limits: InputConfig,
}

impl RulesExplainer {
    pub fn new(rules: BoilerplateRules, limits: InputConfig) -> Self {
        Self {
            normalizer: Normalizer::new(rules),
            limits,
        }
    }

    /// Writes what normalization does to the record on line `line_no`.
    pub fn explain(&self, line_no: u64, record: &[u8], out: &mut impl Write) -> std::io::Result<()> {
        let parsed = parse_with_body(record, &self.limits, chrono::Utc::now());
        let (article, body) = match parsed {
            Ok(parsed) => parsed,
            Err(invalid) => {
                writeln!(out, "line {line_no}: invalid record: {invalid}\n")?;
                return Ok(());
            }
        };
        let (paragraphs, normalized) = self.normalizer.explain(&body);
        let dropped = paragraphs
            .iter()
            .filter(|p| matches!(p.fate, ParagraphFate::Dropped { .. }))
            .count();
        writeln!(
            out,
            "article {} ({}), line {line_no}: {} paragraphs, {dropped} dropped, {} tokens",
            article.id,
            article.source,
            paragraphs.len(),
            normalized.tokens()
        )?;
        for paragraph in &paragraphs {
            match &paragraph.fate {
                ParagraphFate::Dropped { rule } => {
                    writeln!(out, "  dropped  by {rule:?}: {}", excerpt(&paragraph.text, 120))?
                }
                ParagraphFate::Kept { removed } => {
                    for removal in removed {
                        writeln!(out, "  stripped by {:?}: {:?}", removal.rule, removal.text)?;
                    }
                }
            }
        }
        writeln!(out, "  tokens: {}\n", normalized.text)?;
        Ok(())
    }
}

/// Finds two articles among the records offered to it, then reports on them.
pub struct PairExplainer {
    preparer: Preparer,
    ids: [String; 2],
    found: Vec<(u64, Article, Fingerprint)>,
    now: chrono::DateTime<chrono::Utc>,
}

impl PairExplainer {
    pub fn new(preparer: Preparer, a: &str, b: &str) -> Self {
        Self {
            preparer,
            ids: [a.to_string(), b.to_string()],
            found: Vec::new(),
            now: chrono::Utc::now(),
        }
    }

    /// Keeps the record on line `line_no` when it is one of the two articles (the first
    /// record of each id).
    pub fn offer(&mut self, line_no: u64, record: &[u8]) {
        if let Prepared::Article { article, fingerprint } = self.preparer.prepare(record, self.now) {
            if self.ids.contains(&article.id) && !self.found.iter().any(|(_, f, _)| f.id == article.id) {
                self.found.push((line_no, article, fingerprint));
            }
        }
    }

    /// Writes the evidence, each threshold, the event-time gap and the verdict.
    pub fn report(&self, config: &PipelineConfig, out: &mut impl Write) -> Result<(), ExplainError> {
        let side = |id: &str| {
            self.found
                .iter()
                .find(|(_, article, _)| article.id == id)
                .ok_or_else(|| ExplainError::NotFound(id.to_string()))
        };
        let ((line_a, article_a, fp_a), (line_b, article_b, fp_b)) = (side(&self.ids[0])?, side(&self.ids[1])?);
        let evidence = Evidence::between(fp_a.into(), fp_b.into());
        let judgement = judge(&evidence, &config.verify);
        let v = &config.verify;
        let share = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.3}"));
        let dated = |article: &Article| {
            if article.has_published_at {
                article.published_at.to_rfc3339()
            } else {
                "undated".to_string()
            }
        };
        for (line, article, fp) in [(line_a, article_a, fp_a), (line_b, article_b, fp_b)] {
            writeln!(
                out,
                "{} (line {line}, {}): {} tokens, {}",
                article.id,
                article.source,
                fp.tokens,
                dated(article)
            )?;
        }
        writeln!(
            out,
            "  shorter text's share in the longer  {:.3}  (verify.min_containment {})",
            evidence.shorter_share, v.min_containment
        )?;
        writeln!(
            out,
            "  longer text's share in the shorter  {:.3}  (verify.min_longer_share {})",
            evidence.longer_share, v.min_longer_share
        )?;
        writeln!(
            out,
            "  longer text's lead in the shorter   {:.3}  (verify.min_lead_shared {}: they start alike)",
            evidence.lead_shared, v.min_lead_shared
        )?;
        writeln!(
            out,
            "  shorter text's own words, unquoted  {}  (must reach verify.min_containment too)",
            share(evidence.unquoted_share)
        )?;
        writeln!(
            out,
            "  new figures, names in longer's lead {}  (verify.max_new_lead_facts {}: more, and not starting alike, is a recap)",
            evidence.new_lead_facts, v.max_new_lead_facts
        )?;
        writeln!(
            out,
            "  numbers agree                       {}  (verify.min_number_overlap {})",
            share(evidence.numbers),
            v.min_number_overlap
        )?;
        writeln!(
            out,
            "  names agree                         {}  (verify.min_name_overlap {})",
            share(evidence.names),
            v.min_name_overlap
        )?;
        writeln!(out, "  same headline                       {}", evidence.same_headline)?;
        let (time_a, time_b) = (
            EventTime::of(article_a, &config.index),
            EventTime::of(article_b, &config.index),
        );
        let window = config.index.window_secs;
        let compared = match (time_a, time_b) {
            (EventTime::Dated(a), EventTime::Dated(b)) => format!(
                "{:.1} days apart; index.window_secs is {:.1} days{}",
                (a.from - b.from).abs() as f64 / 86400.0,
                window as f64 / 86400.0,
                if EventSpan::within(Some(a), Some(b), window) {
                    ""
                } else {
                    ": never compared"
                }
            ),
            _ if [time_a, time_b].contains(&EventTime::DatedAhead) => {
                "one is dated more than index.max_ahead_secs after it arrived: compared as undated, with every held one"
                    .to_string()
            }
            _ => "an undated article is compared with every held one".to_string(),
        };
        writeln!(out, "  event times                         {compared}")?;
        if fp_a.tokens.min(fp_b.tokens) < v.min_tokens {
            writeln!(
                out,
                "verdict: only an exact copy could match: the shorter text has under verify.min_tokens ({}) tokens",
                v.min_tokens
            )?;
        } else {
            writeln!(out, "verdict: {}", judgement.describe())?;
        }
        Ok(())
    }
}
