//! Boilerplate rules: the data-driven part of normalization.
//!
//! Rules live in `config/boilerplate.toml` (embedded as the default, replaceable by a file),
//! so operators extend them without a rebuild. This module owns loading and validating them and
//! applying them to one paragraph; [`crate::pipeline::normalize`] decides where paragraphs come from.

use regex::{Regex, RegexSet};
use serde::Deserialize;

/// The rules shipped with syndic.
pub const DEFAULT_RULES_TOML: &str = include_str!("../../../config/boilerplate.toml");

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("boilerplate rules are not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("boilerplate rule {name:?} has an invalid pattern: {source}")]
    Pattern {
        name: String,
        #[source]
        source: Box<regex::Error>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    drop: Vec<DropRuleSpec>,
    #[serde(default)]
    strip: Vec<StripRuleSpec>,
    #[serde(default)]
    cut: Vec<CutRuleSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CutRuleSpec {
    name: String,
    /// Whole paragraphs, compared lower-cased without a closing `:`, `.` or `!`; one ending
    /// in `*` matches any paragraph that starts with the rest.
    headers: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DropRuleSpec {
    name: String,
    pattern: String,
    max_words: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StripRuleSpec {
    name: String,
    pattern: String,
    /// A cheap pattern that must match before `pattern` runs; see config/boilerplate.toml.
    #[serde(default)]
    requires: Option<String>,
    /// The rule runs only on paragraphs of at most this many words.
    #[serde(default)]
    max_words: Option<usize>,
    /// The end of the article where the rule runs; both when absent.
    #[serde(default)]
    at: Option<End>,
}

/// An end of an article, where a strip rule's boilerplate sits: datelines and agency headers
/// open the text, rights notices and credits close it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum End {
    Start,
    End,
}

/// Where a paragraph sits: among the first paragraphs, the last ones, or both (a short
/// article). Strip rules run only on such paragraphs (see [`crate::pipeline::normalize`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ends {
    pub start: bool,
    pub end: bool,
}

impl Ends {
    /// A paragraph at both ends, where every strip rule runs.
    pub const BOTH: Ends = Ends { start: true, end: true };
}

/// A compiled strip rule.
#[derive(Debug, Clone)]
struct StripRule {
    name: String,
    pattern: Regex,
    requires: Option<Regex>,
    /// `requires` can only match text with a character outside ASCII ([`needs_non_ascii`]).
    requires_non_ascii: bool,
    max_words: Option<usize>,
    at: Option<End>,
}

/// Whether a `requires` pattern is plain words only (`|` between them), each with a character
/// outside ASCII: then it cannot match a paragraph of ASCII only, and the rule is skipped there
/// without a search: otherwise every rule for another script costs every English paragraph a
/// search. Anything that is not plain words is never assumed so.
fn needs_non_ascii(requires: &str) -> bool {
    requires.split('|').all(|word| {
        !word.is_empty()
            && !word.contains(|c: char| r"\.^$*+?()[]{}".contains(c))
            && word.contains(|c: char| !c.is_ascii())
    })
}

/// Compiled rules. Drop patterns are matched together in one pass (a [`RegexSet`]) because
/// almost every paragraph matches none of them.
#[derive(Debug, Clone)]
pub struct BoilerplateRules {
    /// One set per distinct `max_words`, ascending: the set for limit `n` holds every drop
    /// rule allowed on paragraphs of `n` words, so one search per paragraph decides, and long
    /// paragraphs search only the few rules meant for them.
    drop_tiers: Vec<(usize, RegexSet)>,
    /// The same drop rules one by one, in file order: only to name the rule that dropped a
    /// paragraph in an explanation.
    drop_rules: Vec<DropRule>,
    strip: Vec<StripRule>,
    /// Headers of the lists that close a page ("More news from ...", "Stories that may
    /// interest you"): the paragraph and every one after it are furniture.
    cut: Vec<CutRule>,
}

/// A compiled cut rule: its headers, lower-cased, whole and as prefixes.
#[derive(Debug, Clone)]
struct CutRule {
    name: String,
    whole: std::collections::HashSet<String>,
    prefixes: Vec<String>,
}

/// Longest header a cut rule looks at, in bytes: a list's header is a few words.
const MAX_CUT_HEADER_BYTES: usize = 120;

/// A compiled drop rule, kept for explanations.
#[derive(Debug, Clone)]
struct DropRule {
    name: String,
    max_words: usize,
    pattern: Regex,
}

/// One span a strip rule removed, for explanations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub rule: String,
    pub text: String,
}

/// A roomier lazy-DFA cache than the regex crate's default, for single rules and the drop set:
/// with Unicode classes under bounded repetition the default one is too small for the NFA, and
/// the engine falls back to its much slower NFA simulation (the PikeVM). The cache grows only
/// as states are visited (BENCHMARKS.md, core stages: normalize).
const DFA_CACHE_BYTES: usize = 32 << 20;

fn compile(name: &str, pattern: &str) -> Result<Regex, RulesError> {
    regex::RegexBuilder::new(pattern)
        .dfa_size_limit(DFA_CACHE_BYTES)
        .build()
        .map_err(|e| RulesError::Pattern {
            name: name.to_string(),
            source: Box::new(e),
        })
}

/// `text` with every match of `pattern` from `first` on replaced by a space, as
/// `replace_all(text, " ")` gives it, then trimmed so that the next rule's `^` sees where the
/// text now starts. Continues from the match already found instead of searching for it again,
/// and trims in place: a match cost two searches and two copies of the paragraph.
fn remove_matches(pattern: &Regex, text: &str, first: regex::Match<'_>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut next = Some(first);
    while let Some(m) = next {
        if m.is_empty() {
            // `replace_all` steps over empty matches by its own rules; none of ours is empty,
            // but a rule from a user's file may be.
            return trimmed(pattern.replace_all(text, " ").into_owned());
        }
        out.push_str(&text[last..m.start()]);
        out.push(' ');
        last = m.end();
        next = pattern.find_at(text, last);
    }
    out.push_str(&text[last..]);
    trimmed(out)
}

fn trimmed(mut text: String) -> String {
    text.truncate(text.trim_end().len());
    let leading = text.len() - text.trim_start().len();
    text.drain(..leading);
    text
}

/// The number of words of `paragraph`, or `None` once it passes `limit`: its spaces
/// (normalization left single spaces) plus its characters from U+3000 to U+9FFF (UTF-8 lead
/// bytes E3 to E9), which count as a word each. Those are Chinese and Japanese, written without
/// spaces: counted by spaces alone, a whole paragraph of them was one "word" and passed any
/// rule's word limit.
///
/// Every paragraph of every article is counted (the drop rules' word limits), so the count is
/// kept in a byte per 32-byte block, which the compiler turns into one comparison of the whole
/// block: `filter().count()` into a `usize` took five times as long.
pub(crate) fn words_up_to(paragraph: &str, limit: usize) -> Option<usize> {
    let is_break = |b: u8| b == b' ' || (0xE3..=0xE9).contains(&b);
    let mut words = 0;
    let mut blocks = paragraph.as_bytes().chunks_exact(32);
    for block in &mut blocks {
        let in_block: u8 = block.iter().map(|&b| u8::from(is_break(b))).sum();
        words += usize::from(in_block);
        if words >= limit {
            return None;
        }
    }
    words += blocks.remainder().iter().filter(|&&b| is_break(b)).count();
    (words < limit).then_some(words + 1)
}

impl BoilerplateRules {
    pub fn from_toml(text: &str) -> Result<Self, RulesError> {
        let file: RulesFile = toml::from_str(text)?;
        let drop_rules = file
            .drop
            .iter()
            .map(|r| {
                Ok(DropRule {
                    name: r.name.clone(),
                    max_words: r.max_words,
                    pattern: compile(&r.name, &r.pattern)?,
                })
            })
            .collect::<Result<Vec<_>, RulesError>>()?;
        let mut limits: Vec<usize> = file.drop.iter().map(|r| r.max_words).collect();
        limits.sort_unstable();
        limits.dedup();
        let drop_tiers = limits
            .into_iter()
            .map(|limit| {
                let patterns = file
                    .drop
                    .iter()
                    .filter(|r| r.max_words >= limit)
                    .map(|r| r.pattern.as_str());
                let set = regex::RegexSetBuilder::new(patterns)
                    .dfa_size_limit(DFA_CACHE_BYTES)
                    .build()
                    .map_err(|e| RulesError::Pattern {
                        name: "drop rules".to_string(),
                        source: Box::new(e),
                    })?;
                Ok((limit, set))
            })
            .collect::<Result<Vec<_>, RulesError>>()?;
        let strip = file
            .strip
            .iter()
            .map(|r| {
                Ok(StripRule {
                    name: r.name.clone(),
                    pattern: compile(&r.name, &r.pattern)?,
                    requires: r.requires.as_deref().map(|p| compile(&r.name, p)).transpose()?,
                    requires_non_ascii: r.requires.as_deref().is_some_and(needs_non_ascii),
                    max_words: r.max_words,
                    at: r.at,
                })
            })
            .collect::<Result<Vec<_>, RulesError>>()?;
        let cut = file
            .cut
            .iter()
            .map(|spec| {
                let lowered = spec.headers.iter().map(|h| h.trim().to_lowercase());
                let (prefixes, whole): (Vec<String>, Vec<String>) = lowered.partition(|h| h.ends_with('*'));
                CutRule {
                    name: spec.name.clone(),
                    whole: whole.into_iter().collect(),
                    prefixes: prefixes
                        .into_iter()
                        .map(|p| p.trim_end_matches('*').to_string())
                        .collect(),
                }
            })
            .collect();
        Ok(Self {
            drop_tiers,
            drop_rules,
            strip,
            cut,
        })
    }

    /// The rules shipped in `config/boilerplate.toml`.
    pub fn builtin() -> Self {
        // The embedded file is checked by a unit test, so this cannot fail in a released build.
        Self::from_toml(DEFAULT_RULES_TOML).unwrap_or_else(|e| panic!("built-in boilerplate rules are broken: {e}"))
    }

    /// No rules at all: normalization without boilerplate stripping, for measurement.
    pub fn none() -> Self {
        Self {
            drop_tiers: Vec::new(),
            drop_rules: Vec::new(),
            strip: Vec::new(),
            cut: Vec::new(),
        }
    }

    /// The name of the first cut rule that takes `paragraph` for the header of a closing list
    /// of other stories: the paragraph and all after it are furniture.
    pub fn cut_by(&self, paragraph: &str) -> Option<&str> {
        // A header is short: most paragraphs are passed over on their length alone, with no
        // lower-cased copy made.
        if self.cut.is_empty() || paragraph.len() > MAX_CUT_HEADER_BYTES {
            return None;
        }
        let header = paragraph.trim_end_matches([':', '.', '!', ' ']).to_lowercase();
        self.cut
            .iter()
            .find(|rule| rule.whole.contains(&header) || rule.prefixes.iter().any(|p| header.starts_with(p.as_str())))
            .map(|rule| rule.name.as_str())
    }

    /// Whether the whole paragraph is boilerplate.
    pub fn drops(&self, paragraph: &str) -> bool {
        let Some(&(largest, _)) = self.drop_tiers.last() else {
            return false;
        };
        let Some(words) = words_up_to(paragraph, largest) else {
            return false;
        };
        self.drop_tiers
            .iter()
            .find(|(limit, _)| words <= *limit)
            .is_some_and(|(_, set)| set.is_match(paragraph))
    }

    /// Removes boilerplate spans from a paragraph with every strip rule, as if it were the
    /// whole article. Borrowed when nothing matched (the usual case).
    pub fn strip<'a>(&self, paragraph: &'a str) -> std::borrow::Cow<'a, str> {
        self.strip_noting(paragraph, Ends::BOTH, None)
    }

    /// Removes boilerplate spans from a paragraph at the given ends of its article, with the
    /// rules meant for them.
    pub fn strip_at<'a>(&self, paragraph: &'a str, ends: Ends) -> std::borrow::Cow<'a, str> {
        self.strip_noting(paragraph, ends, None)
    }

    /// [`BoilerplateRules::strip_at`], also saying which rule removed what.
    pub fn strip_explained<'a>(&self, paragraph: &'a str, ends: Ends) -> (std::borrow::Cow<'a, str>, Vec<Removal>) {
        let mut removals = Vec::new();
        let text = self.strip_noting(paragraph, ends, Some(&mut removals));
        (text, removals)
    }

    /// The name of the first drop rule (in file order) that drops the whole paragraph; `None`
    /// exactly when [`BoilerplateRules::drops`] is false.
    pub fn dropped_by(&self, paragraph: &str) -> Option<&str> {
        // Counted as `drops` counts them; no limit, since each rule has its own.
        let words = words_up_to(paragraph, usize::MAX)?;
        self.drop_rules
            .iter()
            .find(|rule| words <= rule.max_words && rule.pattern.is_match(paragraph))
            .map(|rule| rule.name.as_str())
    }

    fn strip_noting<'a>(
        &self,
        paragraph: &'a str,
        ends: Ends,
        mut removals: Option<&mut Vec<Removal>>,
    ) -> std::borrow::Cow<'a, str> {
        let mut text = std::borrow::Cow::Borrowed(paragraph);
        // Removals never add characters, so a paragraph of ASCII only stays one.
        let ascii_only = paragraph.is_ascii();
        // In order: one removal can expose the next (a header hid a dateline from `^`). A
        // RegexSet of all strip patterns as a prefilter was measured slower: searching the
        // union costs more than the rules one by one (BENCHMARKS.md, tried and not kept).
        for rule in &self.strip {
            // A dateline rule has nothing to find in the closing paragraphs, nor a footer rule
            // in the opening ones, and a search costs even when it finds nothing.
            let placed = match rule.at {
                None => true,
                Some(End::Start) => ends.start,
                Some(End::End) => ends.end,
            };
            if !placed || (ascii_only && rule.requires_non_ascii) {
                continue;
            }
            if rule.max_words.is_some_and(|limit| words_up_to(&text, limit).is_none()) {
                continue;
            }
            if rule.requires.as_ref().is_some_and(|requires| !requires.is_match(&text)) {
                continue;
            }
            // Most paragraphs match no rule: `find` says so in half the time of a
            // `replace_all` that finds nothing, and its match is where the removal starts.
            let Some(first) = rule.pattern.find(&text) else {
                continue;
            };
            let stripped = remove_matches(&rule.pattern, &text, first);
            if let Some(removals) = removals.as_deref_mut() {
                // Searched again only here, for a person reading an explanation.
                removals.extend(rule.pattern.find_iter(&text).map(|m| Removal {
                    rule: rule.name.clone(),
                    text: m.as_str().to_string(),
                }));
            }
            text = std::borrow::Cow::Owned(stripped);
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_compile() {
        BoilerplateRules::from_toml(DEFAULT_RULES_TOML).unwrap();
    }

    #[test]
    fn a_bad_pattern_is_reported_with_the_rule_name() {
        let err = BoilerplateRules::from_toml("[[strip]]\nname = \"broken\"\npattern = \"(\"\n").unwrap_err();
        assert!(err.to_string().contains("\"broken\""), "{err}");
    }

    proptest::proptest! {
        /// Continuing from the first match gives what `replace_all` and a trim gave, including
        /// for patterns anchored at either end and ones that can match nothing.
        #[test]
        fn removing_matches_is_replace_all_then_trim(
            text in "[ ,.a-cX]{0,40}",
            pattern in proptest::sample::select(vec!["a", "^a", "b$", ",\\s*a+", "X?", "(?:^|,)\\s*b", "c*", "\\s+"]),
        ) {
            let pattern = Regex::new(pattern).unwrap();
            if let Some(first) = pattern.find(&text) {
                let expected = pattern.replace_all(&text, " ").trim().to_string();
                proptest::prop_assert_eq!(remove_matches(&pattern, &text, first), expected);
            }
        }
    }

    #[test]
    fn rules_placed_at_one_end_of_the_article_run_only_there() {
        let rules = BoilerplateRules::from_toml(
            r#"
[[strip]]
name = "opening"
pattern = '^HEAD '
at = "start"

[[strip]]
name = "closing"
pattern = ' TAIL$'
at = "end"
"#,
        )
        .unwrap();
        let text = "HEAD text TAIL";
        let (start, end) = (
            Ends {
                start: true,
                end: false,
            },
            Ends {
                start: false,
                end: true,
            },
        );
        assert_eq!(rules.strip_at(text, start), "text TAIL");
        assert_eq!(rules.strip_at(text, end), "HEAD text");
        assert_eq!(rules.strip_at(text, Ends::BOTH), "text");
        let misplaced = BoilerplateRules::from_toml("[[strip]]\nname = \"x\"\npattern = 'x'\nat = \"middle\"\n");
        let message = misplaced.map(|_| ()).unwrap_err().to_string();
        assert!(message.contains("`start`") && message.contains("`end`"), "{message}");
    }

    #[test]
    fn a_rule_runs_only_where_its_requirement_matches() {
        let rules =
            BoilerplateRules::from_toml("[[strip]]\nname = \"x\"\npattern = 'x+'\nrequires = 'marker'\n").unwrap();
        assert_eq!(rules.strip("axxb"), "axxb");
        assert_eq!(rules.strip("axxb marker"), "a b marker");
    }

    #[test]
    fn only_plain_words_outside_ascii_let_a_rule_skip_ascii_paragraphs() {
        for requires in ["日|据", "Об этом|informações", "xəbər|görə", "،"] {
            assert!(needs_non_ascii(requires), "{requires}");
        }
        // A word in ASCII, an empty alternative or any regex syntax may match ASCII text.
        for requires in [
            "All rights reserved|版权所有",
            "日|",
            "\\p{Han}",
            "[日]",
            "é?",
            "(?i)ſ",
            "日.*",
        ] {
            assert!(!needs_non_ascii(requires), "{requires}");
        }
        let rules = BoilerplateRules::from_toml(
            "[[strip]]\nname = \"x\"\npattern = ', сообщает \\S+'\nrequires = 'сообщает'\n",
        )
        .unwrap();
        assert_eq!(rules.strip("Поезда пойдут, сообщает ТАСС"), "Поезда пойдут");
        assert_eq!(rules.strip("Trains will run, says TASS"), "Trains will run, says TASS");
    }

    proptest::proptest! {
        #[test]
        fn the_named_drop_rule_agrees_with_the_drop_decision(
            words in proptest::collection::vec(
                "(Photo:|News\\.Az|By|Trend|Reuters|px|16|\\+|©|2024|All rights reserved|comments|policy|11\\.05\\.2022|20:04|Читайте также|the|minister|[a-z]{1,8})",
                1..60,
            )
        ) {
            // Compiled once: a debug build takes about half a second per compilation.
            static RULES: std::sync::LazyLock<BoilerplateRules> = std::sync::LazyLock::new(BoilerplateRules::builtin);
            let rules = &*RULES;
            let paragraph = words.join(" ");
            proptest::prop_assert_eq!(rules.drops(&paragraph), rules.dropped_by(&paragraph).is_some());
        }

        /// The block-wise count against its definition: every space and every character from
        /// U+3000 to U+9FFF separates a word, whatever block it falls in.
        #[test]
        fn words_up_to_counts_spaces_and_wide_characters_by_their_definition(
            paragraph in "[a b\u{3042}\u{4e2d}\u{9fff}\u{a000}\u{e9}\u{2000}]{0,200}",
            limit in 0usize..90,
        ) {
            let breaks = paragraph.chars().filter(|&c| c == ' ' || ('\u{3000}'..='\u{9fff}').contains(&c)).count();
            proptest::prop_assert_eq!(words_up_to(&paragraph, limit), (breaks < limit).then_some(breaks + 1));
        }
    }
}
