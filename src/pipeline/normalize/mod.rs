//! Text normalization: from a publisher's body to the token stream that fingerprints read.
//!
//! This module owns everything that makes two copies of one story look the same on the inside:
//! HTML that scrapers leave (via [`crate::pipeline::normalize::markup`]), Unicode NFKC, one form for quotes, dashes
//! and spaces, removal of zero-width characters and soft hyphens, re-joining of hard-wrapped
//! lines, boilerplate removal (via [`BoilerplateRules`]) and tokenization into lower-case words
//! and numbers (a letter at a time in scripts written without spaces). The output is one xxh3 hash per token
//! (with which tokens are numbers and names), ready for the fingerprints; the text itself, the
//! tokens joined by single spaces, is built only on request, for people and tools.

pub mod headline;
pub mod markup;
pub mod rules;
pub mod tokenize;

pub use tokenize::Normalized;

use crate::pipeline::normalize::markup::{decode_markup, markup_at};
use crate::pipeline::normalize::rules::{BoilerplateRules, Ends, Removal};
use unicode_normalization::UnicodeNormalization;

/// A hard-wrapped line (MENAFN wraps near 70 columns) is at least this long; shorter lines that
/// end without punctuation are titles or furniture and keep their own paragraph.
const HARD_WRAP_MIN_LINE_CHARS: usize = 55;

/// Nor is a hard-wrapped line longer than this, or followed by a longer one: wrapping widths
/// are 60 to 80 columns. A longer line without final punctuation is a paragraph of its own (a
/// title above the text, a repeated photo caption, a ticker line); joined to its neighbours,
/// it hid them from the rules.
const HARD_WRAP_MAX_LINE_CHARS: usize = 100;

/// Normalizes article bodies with one set of boilerplate rules.
#[derive(Debug, Clone)]
pub struct Normalizer {
    rules: BoilerplateRules,
}

/// Maps one character to its canonical form; `None` drops it.
pub(crate) fn fold_char(c: char) -> Option<char> {
    Some(match c {
        // Turkish and Azerbaijani pair İ with i and I with ı, which Unicode's language-blind
        // lower-casing does not: "ƏLİYEV" became "əli̇yev" (i and a combining dot) against
        // "Əliyev", and "BAKI" became "baki" against "Bakı". One letter for all four is the
        // only fold that agrees with itself whatever the case; sites typing without the
        // Azerbaijani keyboard write it so too.
        '\u{0130}' => 'I',
        '\u{0131}' => 'i',
        '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' | '`' | '\u{00B4}' => '\'',
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' | '\u{00AB}' | '\u{00BB}' => '"',
        '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE58}' | '\u{FE63}' | '\u{FF0D}' => '-',
        '\u{00AD}' | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' => return None,
        // Arabic script: the tatweel only stretches a word, and the short-vowel marks are
        // written by some outlets and not others; Persian yeh and keheh are written as the
        // Arabic letters by others.
        '\u{0640}' | '\u{064B}'..='\u{0652}' => return None,
        '\u{06CC}' => '\u{064A}',
        '\u{06A9}' => '\u{0643}',
        '\r' => return None,
        // Unicode's line and paragraph separators and NEL, which some feeds use for breaks:
        // as spaces they hid a footer's paragraph from the rules.
        '\n' | '\u{2028}' | '\u{2029}' | '\u{0085}' => '\n',
        c if c.is_whitespace() => ' ',
        c => c,
    })
}

/// `text` as boilerplate rules see it in an article: HTML decoded, folded (NFKC, one form for
/// quotes, dashes and the Turkic i). Tests and rule authors fold a case written as published
/// with it, or a pattern can pass a test with "«Интерфакс»" that never meets it in an article
/// (it meets "\"Интерфакс\"").
pub fn folded(text: &str) -> String {
    let (mut out, mut markup) = (String::new(), String::new());
    fold(text, &mut out, &mut markup).to_string()
}

/// NFKC plus [`fold_char`], keeping line breaks: `body` itself when nothing changes (plain
/// ASCII, most wire copy), else the folded text written into `out`.
pub(crate) fn fold<'a>(body: &'a str, out: &'a mut String, markup: &mut String) -> &'a str {
    if plain_prefix(body.as_bytes()) == body.len() {
        return body;
    }
    out.clear();
    out.reserve(body.len());
    // NFKC is the identity on ASCII and on text its quick check passes, which is most text.
    let already_nfkc = body.is_ascii()
        || unicode_normalization::is_nfkc_quick(body.chars()) == unicode_normalization::IsNormalized::Yes;
    if already_nfkc {
        fold_runs(body, out);
    } else {
        out.extend(decode_markup(body, markup).nfkc().filter_map(fold_char));
    }
    out
}

/// Whether folding leaves the byte `b` as it is: ASCII, printable or a space or line break,
/// and not a backquote ([`fold_char`]) or the `&` and `<` that may start HTML
/// ([`crate::pipeline::normalize::markup`]). Compares rather than a table, so that a block is tested at once.
#[inline]
fn is_plain(b: u8) -> bool {
    (b == b'\n' || (b' '..=b'~').contains(&b)) && !matches!(b, b'`' | b'&' | b'<')
}

/// The length of the longest prefix of `bytes` that folding leaves as it is. Every body is
/// checked whole (most are plain, and are then used as they are), so the check runs 32 bytes
/// at a time: a byte at a time it was about 3% of `Engine::process`'s instructions.
fn plain_prefix(bytes: &[u8]) -> usize {
    let mut blocks = bytes.chunks_exact(32);
    let mut plain = 0;
    for block in &mut blocks {
        if block.iter().fold(true, |all, &b| all & is_plain(b)) {
            plain += 32;
        } else {
            break;
        }
    }
    plain + bytes[plain..].iter().take_while(|&&b| is_plain(b)).count()
}

/// [`fold_char`] over text already in NFKC, copying runs of plain ASCII whole.
fn fold_runs(body: &str, out: &mut String) {
    let bytes = body.as_bytes();
    let mut run_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if is_plain(bytes[i]) {
            i += 1;
            continue;
        }
        out.push_str(&body[run_start..i]);
        // Out of line and checked here first: inlined, it slowed the loop for every body.
        let markup = matches!(bytes[i], b'&' | b'<').then(|| markup_at(&body[i..])).flatten();
        if let Some((text, len)) = markup {
            out.extend(text.and_then(fold_char));
            i += len;
            run_start = i;
            continue;
        }
        // A non-plain byte starts a character (ASCII or the first byte of a UTF-8 sequence).
        let c = body[i..].chars().next().unwrap_or(' ');
        if let Some(folded) = fold_char(c) {
            out.push(folded);
        }
        i += c.len_utf8();
        run_start = i;
    }
    out.push_str(&body[run_start..]);
}

fn ends_sentence(line: &str) -> bool {
    matches!(line.chars().last(), Some('.' | '!' | '?' | ':' | '"' | ';' | ')'))
}

fn starts_lowercase(line: &str) -> bool {
    line.chars()
        .next()
        .is_some_and(|c| c.is_lowercase() || c.is_ascii_digit())
}

/// Re-joins hard-wrapped lines into paragraphs: writes them one after another into `buf` and
/// their byte ranges into `ranges`.
fn paragraphs(text: &str, buf: &mut String, ranges: &mut Vec<std::ops::Range<usize>>) {
    buf.clear();
    ranges.clear();
    let mut start = 0;
    let mut last_line = "";
    for line in text.split('\n') {
        let line = line.trim();
        if line.is_empty() {
            if buf.len() > start {
                ranges.push(start..buf.len());
                start = buf.len();
            }
            continue;
        }
        if buf.len() > start {
            let current = &buf[start..];
            // Characters are counted only where the answer matters, and bytes bound them first.
            let fits =
                |line: &str| line.len() <= HARD_WRAP_MAX_LINE_CHARS || line.chars().count() <= HARD_WRAP_MAX_LINE_CHARS;
            let long_line = || {
                last_line.len() >= HARD_WRAP_MIN_LINE_CHARS
                    && last_line.chars().count() >= HARD_WRAP_MIN_LINE_CHARS
                    && fits(last_line)
                    && fits(line)
            };
            let wrapped = !ends_sentence(current) && (long_line() || starts_lowercase(line));
            if wrapped {
                // A word hyphenated at the wrap ("coopera-\ntion") is one word.
                if current.ends_with('-')
                    && starts_lowercase(line)
                    && current[..current.len() - 1].ends_with(char::is_alphabetic)
                {
                    buf.pop();
                } else {
                    buf.push(' ');
                }
            } else {
                ranges.push(start..buf.len());
                start = buf.len();
            }
        }
        buf.push_str(line);
        last_line = line;
    }
    if buf.len() > start {
        ranges.push(start..buf.len());
    }
}

/// Strip rules run on this many paragraphs at each end of an article: sites put headers,
/// datelines, attributions and credits there, and skipping the middle halves normalization time.
const EDGE_PARAGRAPHS: usize = 2;

/// Words of text before a cut rule may end an article: a list header above the story is the
/// page's, not the story's end.
const MIN_WORDS_BEFORE_CUT: usize = 40;

/// What normalization did with one paragraph (after folding and re-joining wrapped lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExplainedParagraph {
    pub text: String,
    pub fate: ParagraphFate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParagraphFate {
    /// Dropped whole, by the named drop rule.
    Dropped { rule: String },
    /// Kept, without these spans (none for most paragraphs).
    Kept { removed: Vec<Removal> },
}

/// Reusable buffers, so the hot path allocates nothing per article once warmed up.
#[derive(Debug, Default)]
pub struct Scratch {
    markup: String,
    folded: String,
    paragraphs: String,
    ranges: Vec<std::ops::Range<usize>>,
    token: Vec<u8>,
}

impl Normalizer {
    pub fn new(rules: BoilerplateRules) -> Self {
        Self { rules }
    }

    /// Normalizes `body` into `out` (cleared first).
    pub fn normalize_into(&self, body: &str, scratch: &mut Scratch, out: &mut Normalized) {
        self.normalize_noting(body, scratch, out, None);
    }

    /// Normalizes `body` keeping its text, and says what became of each paragraph: which rule
    /// dropped it or which spans were stripped from it. For people tuning the rules.
    pub fn explain(&self, body: &str) -> (Vec<ExplainedParagraph>, Normalized) {
        let mut out = Normalized {
            keep_text: true,
            ..Normalized::default()
        };
        let mut explained = Vec::new();
        self.normalize_noting(body, &mut Scratch::default(), &mut out, Some(&mut explained));
        (explained, out)
    }

    fn normalize_noting(
        &self,
        body: &str,
        scratch: &mut Scratch,
        out: &mut Normalized,
        mut explained: Option<&mut Vec<ExplainedParagraph>>,
    ) {
        out.text.clear();
        out.names.clear();
        out.token_hashes.clear();
        out.numbers.clear();
        out.quoted.clear();
        let folded = fold(body, &mut scratch.folded, &mut scratch.markup);
        paragraphs(folded, &mut scratch.paragraphs, &mut scratch.ranges);
        let (count, cut) = self.cut_point(&scratch.paragraphs, &scratch.ranges);
        for (i, range) in scratch.ranges[..count].iter().enumerate() {
            let paragraph = &scratch.paragraphs[range.clone()];
            let note = |fate| ExplainedParagraph {
                text: paragraph.to_string(),
                fate,
            };
            if self.rules.drops(paragraph) {
                if let Some(explained) = explained.as_deref_mut() {
                    let rule = self.rules.dropped_by(paragraph).unwrap_or("a drop rule");
                    explained.push(note(ParagraphFate::Dropped { rule: rule.to_string() }));
                }
                continue;
            }
            let ends = Ends {
                start: i < EDGE_PARAGRAPHS,
                end: i + EDGE_PARAGRAPHS >= count,
            };
            let at_edge = ends.start || ends.end;
            match explained.as_deref_mut() {
                None if at_edge => tokenize::tokenize(&self.rules.strip_at(paragraph, ends), &mut scratch.token, out),
                None => tokenize::tokenize(paragraph, &mut scratch.token, out),
                Some(explained) => {
                    let (text, removed) = if at_edge {
                        self.rules.strip_explained(paragraph, ends)
                    } else {
                        (std::borrow::Cow::Borrowed(paragraph), Vec::new())
                    };
                    tokenize::tokenize(&text, &mut scratch.token, out);
                    explained.push(note(ParagraphFate::Kept { removed }));
                }
            }
        }
        if let (Some(explained), Some(rule)) = (explained, cut) {
            for range in &scratch.ranges[count..] {
                explained.push(ExplainedParagraph {
                    text: scratch.paragraphs[range.clone()].to_string(),
                    fate: ParagraphFate::Dropped {
                        rule: format!("{rule} (and what follows it)"),
                    },
                });
            }
        }
    }

    /// How many paragraphs are the article: all of them, or those before the header of a
    /// closing list of other stories (a cut rule), with the rule. A header counts only after
    /// [`MIN_WORDS_BEFORE_CUT`] words: at the top of a page it would take the story with it.
    /// Explanations are written for the paragraphs after it.
    fn cut_point<'r>(&'r self, text: &str, ranges: &[std::ops::Range<usize>]) -> (usize, Option<&'r str>) {
        let mut words = 0;
        for (i, range) in ranges.iter().enumerate() {
            let paragraph = &text[range.clone()];
            if words >= MIN_WORDS_BEFORE_CUT {
                if let Some(rule) = self.rules.cut_by(paragraph) {
                    return (i, Some(rule));
                }
            } else {
                words += crate::pipeline::normalize::rules::words_up_to(paragraph, MIN_WORDS_BEFORE_CUT)
                    .unwrap_or(MIN_WORDS_BEFORE_CUT);
            }
        }
        (ranges.len(), None)
    }

    /// The normalized text of `body`.
    pub fn normalize(&self, body: &str) -> String {
        let mut out = Normalized {
            keep_text: true,
            ..Normalized::default()
        };
        self.normalize_into(body, &mut Scratch::default(), &mut out);
        out.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use xxhash_rust::xxh3::xxh3_64;

    /// Normalized with the built-in rules, compiled once for all tests: property tests call
    /// this hundreds of times, and a debug build takes about half a second per compilation.
    fn norm(text: &str) -> String {
        static NORMALIZER: std::sync::LazyLock<Normalizer> =
            std::sync::LazyLock::new(|| Normalizer::new(BoilerplateRules::builtin()));
        NORMALIZER.normalize(text)
    }

    #[test]
    fn a_closing_list_of_other_stories_is_cut_after_the_story_but_not_above_it() {
        let story = "Gov. Jay Inslee signed legislation on Tuesday making Washington the first state to approve composting as an alternative to burying or cremating human remains, and the law takes effect in May 2020, officials said. Supporters say it is kinder to the environment than cremation.";
        let list = "More news from KIRO 7\n\n2 killed in floatplane crash in southeast Alaska\n\nMan who lived alone with rats awarded $8 million";
        let cut = norm(&format!("{story}\n\n{list}"));
        assert!(cut.ends_with("than cremation"), "{cut}");
        // A header above the story is the page's: nothing is cut.
        let above = norm(&format!("Related articles\n\n{story}"));
        assert!(above.contains("washington"), "{above}");
        let explained = Normalizer::new(BoilerplateRules::builtin())
            .explain(&format!("{story}\n\n{list}"))
            .0;
        let dropped = explained
            .iter()
            .filter(|p| matches!(&p.fate, ParagraphFate::Dropped { rule } if rule.contains("closing list")))
            .count();
        assert_eq!(dropped, 3, "the header and both headlines under it");
    }

    #[test]
    fn marks_the_tokens_inside_quotation_marks_of_any_form_paragraph_by_paragraph() {
        let normalizer = Normalizer::new(BoilerplateRules::none());
        let mut out = Normalized::default();
        let body = "The minister said \u{201C}we will act now\u{201D} on Monday.\n\n\u{00AB}Nous agirons\n\nShe left.";
        normalizer.normalize_into(body, &mut Scratch::default(), &mut out);
        // the minister said [we will act now] on monday | [nous agirons] | she left
        assert_eq!(out.quoted, [3, 4, 5, 6, 9, 10]);
    }

    #[test]
    fn folds_case_quotes_dashes_and_invisible_characters() {
        assert_eq!(
            norm("“Hello” — WORLD’s\u{00A0}te\u{00AD}xt\u{200B}!"),
            "hello world s text"
        );
        assert_eq!(norm("ﬁnancial ＡＢＣ"), "financial abc");
    }

    /// `text` normalized without rules, keeping its text; with its tokens, to read the indexes
    /// of names and numbers.
    fn normalized(text: &str) -> (Normalized, Vec<String>) {
        let mut out = Normalized {
            keep_text: true,
            ..Normalized::default()
        };
        Normalizer::new(BoilerplateRules::none()).normalize_into(text, &mut Scratch::default(), &mut out);
        let tokens = out.text.split(' ').map(str::to_string).collect();
        (out, tokens)
    }

    #[test]
    fn records_names_inside_sentences_only() {
        let (out, tokens) = normalized("The minister met Ilham Aliyev in Baku. Talks went well.");
        let names: Vec<&str> = out.names.iter().map(|&i| tokens[i as usize].as_str()).collect();
        assert_eq!(names, ["ilham", "aliyev", "baku"]);
        assert_eq!(out.tokens(), tokens.len());
        let hashes: Vec<u64> = tokens.iter().map(|t| xxh3_64(t.as_bytes())).collect();
        assert_eq!(out.token_hashes, hashes);
    }

    #[test]
    fn unicode_line_and_paragraph_separators_break_paragraphs() {
        let wire = "The president received the delegation.\n\nThe sides discussed trade.";
        for separator in ["\u{2029}", "\u{2028}\u{2028}", "\u{85}\u{85}"] {
            let reprint = format!(
                "The president received the delegation.{separator}The sides discussed trade.{separator}News.Az"
            );
            assert_eq!(norm(&reprint), norm(wire), "{separator:?}");
        }
    }

    #[test]
    fn keeps_numbers_whole() {
        assert_eq!(
            norm("It cost $4.1 billion, or 10,000 units, in 2023."),
            "it cost 4.1 billion or 10000 units in 2023"
        );
    }

    #[test]
    fn a_figure_written_with_spaces_is_one_number() {
        // A space, a no-break space, a thin space and a narrow no-break space between groups.
        for spaced in ["1 434", "1\u{a0}434", "1\u{2009}434", "1\u{202f}434", "1,434"] {
            assert_eq!(
                norm(&format!("Зарегистрировано {spaced} случаев.")),
                "зарегистрировано 1434 случаев"
            );
        }
        assert_eq!(norm("Budget: 12 236 000 euros"), "budget 12236000 euros");
        // Before a character of a script without spaces, which is a word of its own.
        assert_eq!(norm("确诊1 434人"), norm("确诊1434人"));
        let (out, tokens) = normalized("about 10 000 words");
        assert_eq!(tokens, ["about", "10000", "words"]);
        assert_eq!(out.numbers, [1]);
        // Not a group of three after one to three digits: separate numbers.
        for separate in [
            "in 2019 100 people",
            "on May 9 2017",
            "a 5 100m race",
            "1 2345",
            "4.5 000",
            "1й 234",
            "a1 234",
        ] {
            let (_, tokens) = normalized(separate);
            assert_eq!(tokens.len(), separate.split(' ').count(), "{separate}");
        }
    }

    #[test]
    fn rejoins_hard_wrapped_lines_like_the_unwrapped_copy() {
        let unwrapped = "Kazakhstan and Uzbekistan have signed a Protocol on expanding mutual cooperation, said the ministry.\n\nThe protocol was signed following a meeting.";
        let wrapped = "Kazakhstan and Uzbekistan have signed a Protocol on expanding mutual\ncooperation, said the ministry.\nThe protocol was signed following a meeting.";
        assert_eq!(norm(unwrapped), norm(wrapped));
        assert_eq!(
            norm("a long line that was wrapped in the middle of a hyphen-\nated word"),
            norm("a long line that was wrapped in the middle of a hyphenated word")
        );
    }

    #[test]
    fn strips_site_boilerplate_around_the_same_story() {
        let wire = "BAKU, Azerbaijan, December 26. The president received the delegation, AZERTAC reports.\n\nThe sides discussed trade.";
        let reprint = "+ ↺ − 16 px\n\nThe president received the delegation, News.Az reports, citing AZERTAC.\n\nThe sides discussed trade.\n\nNews.Az";
        assert_eq!(norm(wire), norm(reprint));
        assert_eq!(
            norm(wire),
            "the president received the delegation the sides discussed trade"
        );
    }

    #[test]
    fn an_explanation_names_the_rules_and_normalizes_like_the_engine() {
        let reprint = "+ ↺ − 16 px\n\nThe president received the delegation, News.Az reports, citing AZERTAC.\n\nThe sides discussed trade.\n\nNews.Az";
        let normalizer = Normalizer::new(BoilerplateRules::builtin());
        let (explained, normalized) = normalizer.explain(reprint);
        let mut scratch = Scratch::default();
        let mut engine_view = Normalized::default();
        normalizer.normalize_into(reprint, &mut scratch, &mut engine_view);
        assert_eq!(normalized.token_hashes, engine_view.token_hashes);
        assert_eq!(normalized.text, norm(reprint));
        let fates: Vec<&ParagraphFate> = explained.iter().map(|p| &p.fate).collect();
        let dropped = |rule: &str| ParagraphFate::Dropped { rule: rule.to_string() };
        assert_eq!(fates[0], &dropped("font-size widget (+ ↺ - 16 px)"));
        let ParagraphFate::Kept { removed } = fates[1] else {
            panic!("the attribution paragraph is kept: {fates:?}");
        };
        assert_eq!(removed.len(), 1);
        assert!(
            removed[0].rule.starts_with("attribution closing a sentence"),
            "{removed:?}"
        );
        assert_eq!(removed[0].text, ", News.Az reports, citing AZERTAC.");
        assert_eq!(fates[2], &ParagraphFate::Kept { removed: Vec::new() });
        assert_eq!(
            fates[3],
            &dropped("a paragraph that is only a site name or host (News.Az, ecoi.net)")
        );
    }

    #[test]
    fn leaves_cyrillic_and_azerbaijani_letters_intact() {
        assert_eq!(norm("Президент Ильхам Алиев"), "президент ильхам алиев");
        assert_eq!(norm("Qarabağ Əliyev İşğal ŞUŞA"), "qarabağ əliyev işğal şuşa");
        // Capitals and small letters of the Turkic dotted and dotless i agree.
        assert_eq!(
            norm("Prezident İLHAM ƏLİYEV BAKIDA"),
            norm("Prezident İlham Əliyev Bakıda")
        );
    }

    /// The rules see folded text ("Ajansi", "məlumatina"): Azerbaijani and Turkish
    /// attributions go whichever form of the letter i the outlet typed.
    #[test]
    fn strips_azerbaijani_and_turkish_attributions_after_folding() {
        let text = "prezident ilham əliyev nazirini qəbul edib";
        for attributed in [
            "Prezident İlham Əliyev nazirini qəbul edib, AZƏRTAC xəbər verir.",
            "Report xəbər verir ki, Prezident İlham Əliyev nazirini qəbul edib.",
            "APA-nın məlumatına görə, Prezident İlham Əliyev nazirini qəbul edib.",
            "Prezident İlham Əliyev nazirini qəbul edib, Anadolu Ajansı'nın haberine göre.",
        ] {
            assert_eq!(norm(attributed), text, "{attributed}");
        }
        // "bildirdi" (stated) is said of anyone, not only of news outlets.
        assert_eq!(norm("Nazir bildirdi ki, görüş olub."), "nazir bildirdi ki görüş olub");
    }

    #[test]
    fn cuts_chinese_japanese_and_thai_into_characters_and_keeps_figures_whole() {
        assert_eq!(norm("国家统计局26日发布数据"), "国 家 统 计 局 26 日 发 布 数 据");
        assert_eq!(norm("GDP增长5.2%"), "gdp 增 长 5.2");
        assert_eq!(
            norm("政府は補正予算案を決定した"),
            "政 府 は 補 正 予 算 案 を 決 定 し た"
        );
        // Thai vowel signs and tone marks stay with their consonant.
        assert_eq!(norm("ท่วมเมือง"), "ท่ ว ม เ มื อ ง");
        let (out, tokens) = normalized("利润总额五万九千亿元,增长百分之三点一,一系列");
        let numbers: Vec<&str> = out.numbers.iter().map(|&i| tokens[i as usize].as_str()).collect();
        assert_eq!(numbers, ["五万九千亿", "百", "三点一"], "{}", out.text);
        assert!(
            tokens.iter().any(|t| t == "一"),
            "the lone 一 is a token, not a number: {}",
            out.text
        );
    }

    #[test]
    fn keeps_indic_words_whole_and_gives_arabic_script_one_form() {
        assert_eq!(norm("प्रधानमंत्री ने कहा"), "प्रधानमंत्री ने कहा");
        assert_eq!(norm("বাংলাদেশের প্রধানমন্ত্রী"), "বাংলাদেশের প্রধানমন্ত্রী");
        // Vocalized and stretched against plain; Persian letters against Arabic ones.
        assert_eq!(norm("الرَّئِيسُ قـــال"), norm("الرئيس قال"));
        assert_eq!(norm("رئیس جمهور کشور"), norm("رئيس جمهور كشور"));
    }

    #[test]
    fn html_left_by_scrapers_reads_like_the_plain_copy() {
        let plain = norm("Azerbaijan's exports rose 5% in Q1.\n\nThe ministry said trade with AT&T-like firms grew.");
        let scraped = norm(
            "<p>Azerbaijan&#39;s exports rose 5%&nbsp;in <b>Q1</b>.</p><p>The ministry said trade with AT&amp;T-like firms grew.</p>",
        );
        assert_eq!(scraped, plain);
        assert_eq!(norm("Azerbaijan&#x2019;s R&D budget"), norm("Azerbaijan’s R&D budget"));
        // The same where the body needs full NFKC first (full-width letters).
        assert_eq!(norm("ＧＤＰ&#39;s growth<br>in Ｑ1"), norm("GDP's growth\nin Q1"));
        // Block tags keep paragraphs apart, as blank lines do (the second paragraph is dropped
        // as furniture only if it stands alone).
        assert_eq!(norm("<p>The talks ended.</p><p>Share</p>"), "the talks ended");
        // What is not markup stays text.
        assert_eq!(norm("x < 5 and y > 3 & z"), "x 5 and y 3 z");
        assert_eq!(norm("&unknown; &#xZZ; &"), "unknown xzz");
        assert_eq!(
            norm("the <<Azerbaijan>> cup <Trend> <!-- ad --><a href=\"x\">link</a>"),
            "the azerbaijan cup trend link"
        );
    }

    #[test]
    fn a_line_longer_than_any_wrapping_width_is_not_a_hard_wrap() {
        // A photo caption without final punctuation above the dateline: joined to it as if
        // wrapped, it hid the dateline from the rules.
        let caption = "A man speaks to his child who was wounded in shelling in Stepanakert, the main town of the enclave, on Monday";
        assert_eq!(
            norm(&format!("{caption}\nYEREVAN: Fighting escalated sharply on Monday.")),
            norm(&format!("{caption}\n\nFighting escalated sharply on Monday."))
        );
    }

    proptest! {
        /// Any text written with character references and wrapped in inline tags, as a scraper
        /// may leave it, normalizes like the text itself.
        #[test]
        fn html_encoding_does_not_change_tokens(
            // No "<" in the text itself: "a<i a>" is markup wherever it comes from.
            pieces in proptest::collection::vec(("[a-zA-Z0-9]{1,10}", "[ '\"&>.,-]{1,3}"), 1..30),
            tag in prop::sample::select(vec!["b", "span", "em", "a href=\"x\""]),
        ) {
            let text: String = pieces.iter().map(|(word, gap)| format!("{word}{gap}")).collect();
            let encoded: String = pieces
                .iter()
                .map(|(word, gap)| {
                    let gap: String = gap
                        .chars()
                        .map(|c| match c {
                            '&' => "&amp;".to_string(),
                            '>' => "&gt;".to_string(),
                            '"' => "&quot;".to_string(),
                            '\'' => "&#39;".to_string(),
                            ' ' => "&nbsp;".to_string(),
                            c => c.to_string(),
                        })
                        .collect();
                    let name = tag.split(' ').next().unwrap_or(tag);
                    format!("<{tag}>{word}</{name}>{gap}")
                })
                .collect();
            prop_assert_eq!(norm(&encoded), norm(&text));
        }

        /// The block-wise test against the byte-wise definition: a plain run of any length,
        /// so that it ends in any block and at any place in it, then whatever follows.
        #[test]
        fn the_plain_prefix_ends_at_the_first_byte_folding_changes(
            run in "[a-z .\n]{0,120}",
            rest in "[a-z .\n`&<\t\u{7f}\u{e9}\u{2019}]{0,40}",
        ) {
            let text = run + &rest;
            let bytes = text.as_bytes();
            let by_definition = bytes
                .iter()
                .take_while(|&&b| b == b'\n' || b == b' ' || (b.is_ascii_graphic() && !matches!(b, b'`' | b'&' | b'<')))
                .count();
            prop_assert_eq!(plain_prefix(bytes), by_definition);
        }

        /// Normalizing again changes nothing, but for figures: two numbers that any separator
        /// kept apart ("0/201", "0꒐²⁰¹") are written "0 201", which reads again as one figure
        /// written with a space ("1 434"). The text cannot tell them apart, so the second pass
        /// may join them, and nothing else; a third changes nothing.
        #[test]
        fn folding_and_tokenizing_is_idempotent(text in "\\PC{0,200}") {
            // Without boilerplate rules: a rule may legitimately match a normalized sentence.
            let normalizer = Normalizer::new(BoilerplateRules::none());
            let once = normalizer.normalize(&text);
            let twice = normalizer.normalize(&once);
            prop_assert_eq!(normalizer.normalize(&twice), twice.clone());
            let without_figure_spaces = |s: &str| {
                let chars: Vec<char> = s.chars().collect();
                chars
                    .iter()
                    .enumerate()
                    .filter(|&(i, &c)| {
                        !(c == ' '
                            && i > 0
                            && chars[i - 1].is_ascii_digit()
                            && chars.get(i + 1).is_some_and(char::is_ascii_digit))
                    })
                    .map(|(_, &c)| c)
                    .collect::<String>()
            };
            prop_assert_eq!(without_figure_spaces(&twice), without_figure_spaces(&once));
        }

        #[test]
        fn output_is_single_spaced_lowercase_tokens(text in "\\PC{0,200}") {
            let out = norm(&text);
            prop_assert!(!out.starts_with(' ') && !out.ends_with(' ') && !out.contains("  "));
            prop_assert_eq!(out.to_lowercase(), out.clone());
        }

        #[test]
        fn line_wrapping_does_not_change_tokens(words in proptest::collection::vec("[a-z]{1,12}", 1..60), width in 55usize..90) {
            let text = words.join(" ");
            let mut wrapped = String::new();
            let mut col = 0;
            for w in &words {
                if col > 0 && col + w.len() + 1 > width { wrapped.push('\n'); col = 0; } else if col > 0 { wrapped.push(' '); col += 1; }
                wrapped.push_str(w);
                col += w.len();
            }
            prop_assert_eq!(norm(&wrapped), norm(&text));
        }
    }
}
