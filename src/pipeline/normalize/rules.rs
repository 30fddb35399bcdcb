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
/// without a search. Rules for Persian, Arabic, Chinese or Azerbaijani cost each English
/// paragraph 20 to 60 ns otherwise. Anything that is not plain words is never assumed so.
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
/// as states are visited. For the drop set this made normalization 1.4 µs faster per article.
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
/// block: `filter().count()` into a `usize` took five times as long (80-160 against 13-21 ns per
/// paragraph of generated articles, at the drop rules' limit of 12 words).
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
        // RegexSet of all strip patterns as a prefilter was measured slower: its NFA passes
        // the default 10 MiB size limit, and with the limit raised normalization took 15.9 µs
        // per article against 10.8.
        for rule in &self.strip {
            // A dateline rule has nothing to find in the closing paragraphs, nor a footer rule
            // in the opening ones: each search costs 10 to 40 ns even when it finds nothing.
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

    /// `text` as rules see it in an article, folded by normalization's own fold (NFKC, one form
    /// for quotes, dashes and the Turkic i, HTML decoded). A case written as published must be
    /// folded here, or a pattern can pass a test with "«Интерфакс»" that never meets it in an
    /// article (it meets "\"Интерфакс\"").
    fn folded(text: &str) -> String {
        let (mut out, mut markup) = (String::new(), String::new());
        crate::pipeline::normalize::fold(text, &mut out, &mut markup).to_string()
    }

    /// Asserts that the built-in rules drop each paragraph whole.
    fn assert_dropped(rules: &BoilerplateRules, paragraphs: &[&str]) {
        for paragraph in paragraphs {
            assert!(rules.drops(&folded(paragraph)), "{paragraph:?}");
        }
    }

    /// Asserts what stripping leaves of each paragraph.
    fn assert_stripped(rules: &BoilerplateRules, cases: &[(&str, &str)]) {
        for (text, expected) in cases {
            assert_eq!(rules.strip(&folded(text)).trim(), folded(expected), "{text:?}");
        }
    }

    #[test]
    fn builtin_rules_compile() {
        BoilerplateRules::from_toml(DEFAULT_RULES_TOML).unwrap();
    }

    #[test]
    fn a_bad_pattern_is_reported_with_the_rule_name() {
        let err = BoilerplateRules::from_toml("[[strip]]\nname = \"broken\"\npattern = \"(\"\n").unwrap_err();
        assert!(err.to_string().contains("\"broken\""), "{err}");
    }

    #[test]
    fn drops_widgets_and_site_names_but_respects_the_word_guard() {
        let rules = BoilerplateRules::builtin();
        assert!(rules.drops("+ ↺ - 16 px"));
        assert!(rules.drops("News.Az"));
        assert!(rules.drops("Follow us on Twitter @AzerNewsAz"));
        assert!(rules.drops("By Trend"));
        assert!(rules.drops("By Ayya Lmahamad"));
        assert!(rules.drops("By Maria de Souza"));
        assert!(!rules.drops("Follow the money, said the minister, because the budget of the ministry grew by half in one year and nobody knows where it went"));
    }

    #[test]
    fn drops_credit_lines_stamps_and_copyright_footers_in_several_languages() {
        let rules = BoilerplateRules::builtin();
        assert_dropped(
            &rules,
            &[
                "Photo: Reuters",
                "Follow the author on Twitter: @Lyaman_Zeyn",
                "Follow Reuters on X",
                "Join our Telegram channel",
                "Click here for more information on the service.",
                "Tags: Kazakhstan, Uzbekistan",
                "Фото: Facebook / Қазақстан темір жолы",
                "Читайте также: Токаев провел переговоры",
                "Lesen Sie auch",
                "Leia também: Cazaquistão",
                "[ad_1]",
                "11.05.2022 | 20:04",
                "2024-05-11 20:04",
                "© 2024 The Associated Press. All rights reserved.",
                "© 2024 Все права защищены.",
                "Also read: Farmers protest in Brussels",
                "Like us on Facebook",
                "Our Standards: The Thomson Reuters Trust Principles.",
                "Image source, Getty Images",
                "Image caption, Farmers drove tractors into the city centre",
                "ANKARA",
                "NEW DELHI",
                "Updated: 12 Jan 2024, 10:30 AM IST",
                "Edited By: Jane Doe",
                "Story continues below advertisement",
                "Listen to this article",
                "3 min read",
                "Share",
                "Comments: 3",
                "Advertisement",
                "Last minute",
                "Share on Facebook",
                "Copyright © 2024 Example Media Group",
                "COPYRIGHT 2023",
                "Если вы заметили ошибку в тексте, выделите ее и нажмите Ctrl+Enter",
                "Материалы по теме",
                "Anzeige",
                "Lire aussi : la grève continue",
                "Publicidad",
                "5 June 2022 14:43 (UTC+04:00)",
                "May 12, 2024",
                "Jan. 5, 2024, 10:30 AM",
                "Join Trend's Telegram channel",
                "Stay up-to-date with more news on Azernews's Telegram channel",
                "If you notice an error, select it and press Ctrl+Enter",
                "Photo credit: Reuters",
                "Views: 1234",
                "Просмотров: 1234",
                "Comments (0)",
                "Facebook Twitter LinkedIn Email",
                "Previous article",
                "Latest news",
                "Author: Aysel Mammadova",
                "Автор: Иван Петров",
                "Prepared by Aysel Mammadova",
                "(Updated at 14:05)",
                "Last updated on Nov 26, 2024",
                "Posted May 22, 2019 4:17 AM CDT",
                "By Newser Editors and Wire Services",
                "14:05, 26 November 2024",
                "Breaking:Suspect in Jefferson City shooting arrested in Hazelwood",
                "Mənbə: APA",
                "Oxşar xəbərlər",
                "Kaynak: AA",
                "Paylaş",
                "RELATED: Kazakhstan raises rates again",
                "WATCH: The moment the bridge opened",
                "Story continues",
                "This is a developing story and will be updated.",
                "First published on November 26, 2024",
                "Get the latest news from Azerbaijan on our Telegram channel.",
                "Смотреть все фото к статье (18)",
                "See all photos",
                "Scroll to continue reading",
                "Click to share on Facebook (Opens in new window)",
                "Thank you for reading.",
                "Have a news tip? Email us at tips@example.com",
                "This article is more than 2 years old",
                "Last modified on Wed 27 Nov 2024 10.00 GMT",
                "Download The Mint News App to get Daily Market Updates.",
                "Follow the latest news on our Telegram channel.",
                "Recommended",
                "Trending now",
                "Don't miss",
                "Email",
                "AFP/Getty Images",
                "Reuters/File Photo",
                "Filed under: World",
                "Topics: economy, inflation",
                "Leer más: Los precios suben",
                "Saiba mais",
                "En savoir plus",
                "Нашли опечатку? Выделите текст и нажмите Ctrl+Enter",
                "Следите за новостями в нашем Telegram-канале",
                "Комментарии (3)",
                "Новости партнеров",
                "Teilen",
                "Kommentare",
                "Suivez-nous sur Facebook",
                "Síguenos en Twitter",
                "Seguici su Instagram",
                "Compartilhe",
                "Yorumlar",
                "Bizi izləyin",
                "(Adds comment from minister in paragraphs 4-5)",
                "(Updates with closing prices)",
                "Editor's note: This story has been updated.",
                "Register now for FREE unlimited access to Reuters.com",
            ],
        );
        for text in [
            "Latest news from the front suggests the talks will resume.",
            "Prepared by the ministry, the plan foresees new roads.",
            "Facebook and Twitter were blocked for a week.",
            "Updated on Monday, the forecast sees growth of 4 percent.",
            "Updated figures released Monday.",
            "Related charges were dropped on Monday, the court said.",
            "Watchdogs said the vote was fair.",
            "First published in 1850, the newspaper closed on Monday.",
            "Photographers were kept away from the site, police said on Monday.",
            "Follow-up talks on water use are planned for May, the ministry said.",
            "The copyright office said on Monday that the law, which took effect in January, had cut piracy by half across the region over the year.",
            "On 11.05.2022 at 20:04 the first train left Nukus.",
            "Фото сделано в понедельник в Алматы, где полиция задержала подозреваемого.",
            "The post of ambassador stayed vacant for a year, officials said.",
            "Image quality improved after the update, the company said.",
            "Updated figures were released on Monday.",
            "May 12, 2024 was the day the talks began.",
            "The ministry declined to comment on the new visa policy.",
            "Share prices fell 3 percent on Monday.",
            "By Monday it was over.",
            "Posted guards stopped 12 cars on Monday.",
            "Published in 2019, the report found 4 faults.",
            "Copyright infringement cases rose by a fifth last year.",
            "Print media outlets were closed for a week.",
            "Related charges were filed against two others.",
            "Last minute changes to the bill were approved.",
            "Advertisement spending rose by a fifth.",
            "Recommended doses were exceeded in 12 cases.",
            "Trending upward, prices rose for a third month.",
            "Email records show the deal was agreed in May.",
            "Categories of workers affected include nurses.",
            "Download the full report from the ministry's website.",
            "Thank you, the minister told reporters.",
            "Комментарии министра появились в понедельник.",
            "Teilen sich die Parteien die Macht, bleibt die Regierung stabil.",
            "Partager le pouvoir n'est pas facile, a dit le ministre.",
            "(Changes to the pension law were approved on Monday.)",
            "Register now, the election commission urged voters.",
        ] {
            assert!(!rules.drops(&folded(text)), "{text:?}");
        }
        // Footers: stripped whole where strip rules run, at the ends of an article.
        for footer in [
            "Copyright 2023 The Associated Press. All rights reserved. This material may not be published, broadcast, rewritten or redistributed.",
            "Legal Disclaimer: MENAFN provides the information \"as is\" without warranty of any kind. We do not accept any responsibility or liability for the accuracy, content, images, videos, licenses, completeness, legality, or reliability of the information contained in this article. If you have any complaints or copyright issues related to this article, kindly contact the provider above.",
            "The post Kazakhstan raises its base rate appeared first on Example News.",
            "This article was originally published on The Conversation.",
            "Все права защищены. Перепечатка материалов только со ссылкой на источник.",
            "Associated Press writers Jane Doe in Brussels and John Roe contributed to this report.",
            "(This story has not been edited by Devdiscourse staff and is auto-generated from a syndicated feed.)",
            "(Only the headline of this report may have been reworked by the Business Standard staff; the rest of the content is auto-generated from a syndicated feed.)",
            "(With inputs from PTI)",
            "Reporting by David Shepardson in Washington; Editing by Chris Reese",
            "Reporting by Jane Doe",
            "Disclaimer: This content is provided by a syndication partner.",
            "For all the latest headlines follow our Google News channel online or via the app.",
            "Catch all the Business News, Market News, Breaking News Events and Latest News Updates on Live Mint. Download The Mint News App to get Daily Market Updates.",
            "Stay tuned for more updates.",
            "Editor's note: This story has been updated to include comments from analysts and the minister's spokesman.",
            "This story has been corrected to fix the name of the minister.",
            "An earlier version of this article misstated the rate.",
            "This article originally appeared on The Conversation.",
            "FILE PHOTO: A view shows the central bank headquarters in Moscow, Russia, May 5, 2020. REUTERS/Maxim Shemetov/File Photo",
        ] {
            assert_eq!(rules.strip(&folded(footer)).trim(), "", "{footer:?}");
        }
        for kept in [
            "The ministry said all rights reserved under the treaty remain with the two states, which will meet again in May to settle the remaining questions of water use along the border rivers.",
            "Reporting by the New York Times found that the company had hidden its losses for years.",
            "The plan was drawn up with inputs from experts.",
            "The ministry declined to comment on the new visa policy.",
            "For the latest quarter, the company reported a profit of $2 billion.",
            "Follow-up talks are planned for May.",
            "Update: The minister resigned on Tuesday.",
            "Corrections officers went on strike on Monday.",
        ] {
            assert_eq!(rules.strip(&folded(kept)), folded(kept));
        }
        assert_eq!(
            rules.strip("The rate was kept at 6.5 percent. (With inputs from agencies)"),
            "The rate was kept at 6.5 percent."
        );
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
    fn strips_attributions_and_datelines_for_any_outlet_agency_and_language() {
        let rules = BoilerplateRules::builtin();
        let cases = [
            ("Kazakhstan and Uzbekistan signed a protocol, Trend reports.", "Kazakhstan and Uzbekistan signed a protocol"),
            ("Qarabağ Xəbər reports, citing Anadolu Ajansı.", ""),
            ("(MENAFN- Trend News Agency) ASTANA, Kazakhstan, January 6. Kazakhstan and Uzbekistan", "Kazakhstan and Uzbekistan"),
            ("MOSCOW (AP) - The Kyrgyz Health Ministry says", "The Kyrgyz Health Ministry says"),
            ("BISHKEK, September 16. /TASS/. The number of Kyrgyz nationals", "The number of Kyrgyz nationals"),
            ("МОСКВА, 26 декабря - Движение поездов возобновится", "Движение поездов возобновится"),
            ("BERLIN, 26. Dezember 2023 - Der Besuch fand am Montag statt", "Der Besuch fand am Montag statt"),
            ("Движение поездов возобновится с 1 апреля, передает Kazpravda.", "Движение поездов возобновится с 1 апреля"),
            (
                "Поезда пойдут три раза в неделю, сообщает РИА Новости со ссылкой на пресс-службу. Билеты уже в продаже.",
                "Поезда пойдут три раза в неделю Билеты уже в продаже.",
            ),
            ("Капсула содержит землю с мемориала. Об этом сообщает «Петербургский дневник».", "Капсула содержит землю с мемориала."),
            ("Поезда пойдут в мае, сообщает «Интерфакс».", "Поезда пойдут в мае"),
            ("Поезда пойдут в мае, сообщает РИА Новости со ссылкой на «Известия».", "Поезда пойдут в мае"),
            ("Der Besuch fand am Montag statt, berichtet die Nachrichtenagentur dpa.", "Der Besuch fand am Montag statt"),
            ("Kuolonuhreista kolme on poliiseja, kertoo STT.", "Kuolonuhreista kolme on poliiseja"),
            ("Mais de 30 pessoas foram mortas neste ano. As informações são da Associated Press.", "Mais de 30 pessoas foram mortas neste ano."),
            ("Com informações da Reuters.", ""),
            ("The sides signed a protocol, Report informs referring to the ministry.", "The sides signed a protocol"),
            ("Стороны подписали протокол, передает корреспондент Kazinform.", "Стороны подписали протокол"),
            ("New Delhi, Jan 5 (PTI) The government announced a scheme.", "The government announced a scheme."),
            ("New Delhi [India], January 5 (ANI): The government announced a scheme.", "The government announced a scheme."),
            ("Paris (AFP) - The government announced a scheme.", "The government announced a scheme."),
            ("BEIJING, Jan. 5 (Xinhua) -- The government announced a scheme.", "The government announced a scheme."),
            ("The government announced a scheme, according to Xinhua.", "The government announced a scheme"),
            ("The government announced a scheme, the official news agency WAM reported.", "The government announced a scheme"),
            ("U.S. officials said talks would resume.", "U.S. officials said talks would resume."),
            ("МОСКВА, 5 янв - РИА Новости. Правительство объявило о программе.", "Правительство объявило о программе."),
            ("Baku, January 5, AZERTAC. The government announced a scheme.", "The government announced a scheme."),
            ("Правительство объявило о программе. /ИНТЕРФАКС/", "Правительство объявило о программе."),
            ("ALMATY - Kazakh officials met on Monday.", "Kazakh officials met on Monday."),
            ("Baku, November 26 (AZERTAC). The sides signed a protocol.", "The sides signed a protocol."),
            ("Baku, Azerbaijan, November 26 (APA). The sides signed a protocol.", "The sides signed a protocol."),
            ("Bishkek (24.kg) - The sides signed a protocol.", "The sides signed a protocol."),
            ("ASTANA, November 26. KAZINFORM - The sides signed a protocol.", "The sides signed a protocol."),
            ("Баку, 26 ноября, Новости-Азербайджан. Стороны подписали протокол.", "Стороны подписали протокол."),
            ("By Nargiz Sadikhova - Trend: The sides signed a protocol.", "The sides signed a protocol."),
            ("By Monday - the deadline - the sides had signed.", "By Monday - the deadline - the sides had signed."),
            ("A man walks amongst the debris in Ganja. (Ismail Coskun/IHA via AP)", "A man walks amongst the debris in Ganja."),
            ("Farmers drive tractors into Paris. (AP Photo/Michel Euler)", "Farmers drive tractors into Paris."),
            // An abbreviation in parentheses without a date or a dash after it is not a dateline.
            ("The United Nations (UN) said on Friday it would send aid.", "The United Nations (UN) said on Friday it would send aid."),
            ("Выплаты начнутся в мае, сообщает пресс-служба Министерства финансов.", "Выплаты начнутся в мае"),
            // A verb of saying inside the sentence is not an attribution.
            ("Министерство сообщает, что движение поездов возобновится с 1 апреля.", "Министерство сообщает, что движение поездов возобновится с 1 апреля."),
            ("PARIS, 26 nov (AFP) - Le gouvernement a annoncé une hausse, rapporte l'AFP.", "Le gouvernement a annoncé une hausse"),
            ("Le ministre a confirmé la date, selon l'agence Reuters.", "Le ministre a confirmé la date"),
            ("La réunion a eu lieu à Bruxelles, a indiqué l'agence Anadolu.", "La réunion a eu lieu à Bruxelles"),
            ("Madrid, 26 nov (EFE).- El Gobierno aprobó el presupuesto, informó la agencia EFE.", "El Gobierno aprobó el presupuesto"),
            ("El gasto subirá en enero, según informa Europa Press.", "El gasto subirá en enero"),
            ("(ANSA) - ROMA, 26 NOV - Il governo ha approvato la manovra, riporta l'ANSA.", "Il governo ha approvato la manovra"),
            ("La spesa salirà, secondo quanto riferisce Reuters.", "La spesa salirà"),
            ("Os gastos vão subir, segundo a agência Lusa.", "Os gastos vão subir"),
            ("Уряд ухвалив бюджет на 2025 рік, повідомляє Укрінформ.", "Уряд ухвалив бюджет на 2025 рік"),
            ("Wydatki wzrosną, podaje PAP.", "Wydatki wzrosną"),
            ("به گزارش ایرنا، رئیس جمهور با وزیر نفت دیدار کرد.", "رئیس جمهور با وزیر نفت دیدار کرد."),
            ("به نقل از خبرگزاری مهر، رئیس جمهور با وزیر نفت دیدار کرد.", "رئیس جمهور با وزیر نفت دیدار کرد."),
            ("القاهرة (رويترز) - قال البنك المركزي إنه رفع سعر الفائدة.", "قال البنك المركزي إنه رفع سعر الفائدة."),
            ("دبي، 26 نوفمبر (رويترز) - قال البنك المركزي إنه رفع سعر الفائدة.", "قال البنك المركزي إنه رفع سعر الفائدة."),
            ("رفع البنك المركزي سعر الفائدة، حسبما ذكرت وكالة الأنباء السعودية.", "رفع البنك المركزي سعر الفائدة"),
            // Whoever says so without a verb of reporting is content.
            ("رفع البنك المركزي سعر الفائدة، وفقا للوزارة.", "رفع البنك المركزي سعر الفائدة، وفقا للوزارة."),
            ("قال الوزير (الذي عين في مايو) إن الخطة جاهزة.", "قال الوزير (الذي عين في مايو) إن الخطة جاهزة."),
            ("Source: https://vesti-ua.net/novosti/124967-pensii. Pensions rise.", "Source:  . Pensions rise."),
            ("Read more at www.pravda.com.ua/rus/news/2019/11/15/7232036/", "Read more at"),
            (
                "2020-05-17T21:15:22+03:00https://1prime.ru/transport/20200517/831460364.htmlhttps://1prime.ru/i/logo.png Агентство",
                "2020-05-17T21:15:22+03:00  Агентство",
            ),
            ("De uitgaven stijgen, meldt ANP.", "De uitgaven stijgen"),
            // Whoever is not named with a capital, or an agency word, is not an agency.
            ("Le budget augmentera, selon le ministère.", "Le budget augmentera, selon le ministère."),
            ("Le texte sera voté, selon des sources parlementaires.", "Le texte sera voté, selon des sources parlementaires."),
            ("El gasto subirá, informó el ministro de Economía.", "El gasto subirá, informó el ministro de Economía."),
            ("The bank raised its key rate, AP reported on Monday.", "The bank raised its key rate"),
            ("The bank raised its key rate, reports Trend.", "The bank raised its key rate"),
            ("The bank raised its key rate, reported the New York Times.", "The bank raised its key rate"),
            ("According to AZERTAC, the bank raised its key rate.", "the bank raised its key rate."),
            ("As reported by Trend, the bank raised its key rate.", "the bank raised its key rate."),
            ("As Xinhua reports, the bank raised its key rate.", "the bank raised its key rate."),
            ("The bank raised its key rate. - Reuters", "The bank raised its key rate."),
            ("The bank raised its key rate - Trend News Agency", "The bank raised its key rate"),
            ("The bank raised its key rate. Source: Reuters", "The bank raised its key rate."),
            ("The bank raised its key rate (AFP).", "The bank raised its key rate"),
            // Whoever is not named with a capital is not an agency; a hyphen inside a word or a
            // figure is no credit.
            ("According to the ministry, the bank raised its key rate.", "According to the ministry, the bank raised its key rate."),
            ("The bank raised its key rate, reports show.", "The bank raised its key rate, reports show."),
            ("The match ended 2-1", "The match ended 2-1"),
            ("The bank raised its key rate… [+2345 chars]", "The bank raised its key rate"),
            ("The bank raised its key rate... Read more", "The bank raised its key rate"),
            ("The bank raised its key rate. Continue reading", "The bank raised its key rate."),
            ("Read more about the rate decision here.", "Read more about the rate decision here."),
            ("The talks were held in Baku-Tbilisi", "The talks were held in Baku-Tbilisi"),
        ];
        assert_stripped(&rules, &cases);
    }

    #[test]
    fn handles_chinese_and_japanese_furniture_and_datelines_with_characters_as_words() {
        let rules = BoilerplateRules::builtin();
        assert_dropped(
            &rules,
            &[
                "来源:人民网",
                "责任编辑:王明",
                "字号:大 中 小",
                "相关阅读",
                "关注我们的微信公众号",
                "関連記事:予算の詳細",
            ],
        );
        // "分享经济" is the sharing economy: a sentence of forty characters is forty words,
        // far past the furniture rule's limit, though it starts with "分享" (share).
        let sentence = "分享经济是近年来发展最快的新业态之一,国家统计局数据显示其市场规模已超过三万亿元。";
        assert!(!rules.drops(sentence));
        // Short, but news: "printer sales rose by a third".
        assert!(!rules.drops("打印机销量增长三成"));
        let cases = [
            (
                "新华社北京11月26日电(记者 王明) 国家统计局26日发布数据。",
                "国家统计局26日发布数据。",
            ),
            (
                "本报北京11月26日讯 国家统计局26日发布数据。",
                "国家统计局26日发布数据。",
            ),
            ("据新华社报道,国家统计局26日发布数据。", "国家统计局26日发布数据。"),
            (
                "【共同通信】政府は26日の閣議で補正予算案を決定した。",
                "政府は26日の閣議で補正予算案を決定した。",
            ),
            (
                "[東京 26日 ロイター] 政府は補正予算案を決定した。",
                "政府は補正予算案を決定した。",
            ),
            ("© 2024 新华网 版权所有", ""),
            // A date inside a sentence is not a dispatch line.
            ("国家统计局11月26日发布数据。", "国家统计局11月26日发布数据。"),
        ];
        assert_stripped(&rules, &cases);
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

    #[test]
    fn a_strip_rule_with_a_word_limit_skips_longer_paragraphs() {
        let rules = BoilerplateRules::builtin();
        let footer = "Please keep your comments respectful and relevant. You can review our Community Guidelines by clicking here";
        assert_eq!(rules.strip(footer).trim(), "");
        // A whole article in one paragraph that happens to hold the footer's words.
        let article = format!(
            "{footer}. {}",
            "The store said it had fired the employee after the customer posted her story. ".repeat(4)
        );
        assert_eq!(rules.strip(&article), article);
    }

    #[test]
    fn leaves_ordinary_sentences_alone() {
        let rules = BoilerplateRules::builtin();
        let text = "A MAN speaks to his child who was wounded in shelling in Stepanakert.";
        assert_eq!(rules.strip(text), text);
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
