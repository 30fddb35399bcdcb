//! Tokenization: a paragraph's text cut into lower-case words and numbers, each hashed with
//! xxh3 as it is cut, with which tokens are numbers, names and quoted.
//!
//! Most of normalization's time is here, so short ASCII words take a fast path: read eight
//! bytes at a time, classed by bit tricks (SWAR), hashed by xxh3's short-input formula inlined.
//! A byte-at-a-time general path handles everything else, and property tests hold the fast
//! path to it.

use xxhash_rust::xxh3::xxh3_64;

/// A normalized article.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// Whether to fill `text`: for people and tools; matching needs only the hashes.
    pub keep_text: bool,
    /// Lower-case tokens joined by single spaces, when `keep_text` is set; else empty.
    pub text: String,
    /// Indexes (in `text`'s token order) of tokens written with a capital letter inside a
    /// sentence: names of people, places and organisations, which weigh in verification.
    pub names: Vec<u32>,
    /// xxh3 of each token of `text`, in order.
    pub token_hashes: Vec<u64>,
    /// Indexes of tokens that contain a digit.
    pub numbers: Vec<u32>,
    /// Indexes of tokens inside quotation marks (any form, folded to `"`; counted per
    /// paragraph, as a quote running over paragraphs reopens each one). Independent write-ups
    /// of one statement share its quotes and little else, so verification sets them aside.
    pub quoted: Vec<u32>,
}

impl Normalized {
    /// Number of tokens.
    pub fn tokens(&self) -> usize {
        self.token_hashes.len()
    }
}

/// Byte classes for the ASCII fast path of [`tokenize`].
const WORD: u8 = 1;
const DIGIT: u8 = 2;
const UPPER: u8 = 4;
const ENDS_SENTENCE: u8 = 8;
const NON_ASCII: u8 = 16;

const CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = if c >= 0x80 {
            NON_ASCII
        } else if c.is_ascii_digit() {
            WORD | DIGIT
        } else if c.is_ascii_uppercase() {
            WORD | UPPER
        } else if c.is_ascii_lowercase() {
            WORD
        } else if matches!(c, b'.' | b'!' | b'?' | b'"' | b':') {
            ENDS_SENTENCE
        } else {
            0
        };
        b += 1;
    }
    table
};

/// Appends the paragraph's tokens to `out`: one xxh3 hash per token, which tokens are numbers
/// and names, and, when `out.keep_text` is set, the tokens joined by single spaces.
///
/// A token is a run of letters, marks and digits, lower-cased; digit groups joined by `.` stay
/// one number ("4.1"), and `,` between digits is a thousands separator ("10,000" -> "10000"), as
/// is a space between one to three digits and groups of three ("10 000", "1 434": Russian and
/// French write figures so, with a space that some sites drop).
/// In scripts written without spaces each letter is a token, and a figure in Chinese or
/// Japanese numerals is one number token ([`is_unspaced`]).
/// Capitalized tokens that do not start a sentence are recorded as names. Each token is
/// lower-cased into a small reused buffer and hashed there, while it is hot: the engine never
/// builds the normalized text, and the fingerprint never splits it again.
pub(crate) fn tokenize(paragraph: &str, token: &mut Vec<u8>, out: &mut Normalized) {
    let bytes = paragraph.as_bytes();
    let mut sentence_start = true;
    let mut quoted = false;
    let mut i = 0;
    while i < bytes.len() {
        let class = CLASS[bytes[i] as usize];
        let starts_token = if class & WORD != 0 {
            Some(class & UPPER != 0)
        } else if class & NON_ASCII != 0 {
            let c = paragraph[i..].chars().next().unwrap_or(' ');
            if c.is_alphanumeric() {
                Some(c.is_uppercase())
            } else {
                i += c.len_utf8();
                None
            }
        } else {
            sentence_start |= class & ENDS_SENTENCE != 0;
            quoted ^= bytes[i] == b'"';
            i += 1;
            None
        };
        let Some(capitalized) = starts_token else { continue };
        let index = out.token_hashes.len() as u32;
        if capitalized && !sentence_start {
            out.names.push(index);
        }
        if quoted {
            out.quoted.push(index);
        }
        sentence_start = false;
        let short: [u8; 16];
        let (hash, has_digit, text) = match short_ascii_token(bytes, i) {
            Some((lowered, len, has_digit)) => {
                i += len;
                short = lowered.to_le_bytes();
                (short_token_hash(lowered, len), has_digit, &short[..len])
            }
            None => {
                let has_digit;
                (i, has_digit) = read_token(paragraph, i, token);
                (xxh3_64(token), has_digit, &token[..])
            }
        };
        out.token_hashes.push(hash);
        if has_digit {
            out.numbers.push(index);
        }
        if out.keep_text {
            if !out.text.is_empty() {
                out.text.push(' ');
            }
            // The buffer holds whole characters only, so this always succeeds.
            out.text.push_str(std::str::from_utf8(text).unwrap_or_default());
        }
        // Most tokens end at one space, which ends no sentence: step over it here rather than
        // through the dispatch above.
        if bytes.get(i) == Some(&b' ') {
            i += 1;
        }
    }
}

/// Reads the token starting at byte `start` into `token`, lower-cased; returns where it ends
/// and whether it has a digit. Handles every case: non-ASCII letters and marks, digit groups.
fn read_token(paragraph: &str, start: usize, token: &mut Vec<u8>) -> (usize, bool) {
    let bytes = paragraph.as_bytes();
    let mut i = start;
    token.clear();
    let mut has_digit = false;
    if let Some(c) = paragraph[start..].chars().next().filter(|&c| is_unspaced(c)) {
        let mut push = |c: char, i: &mut usize| {
            token.extend_from_slice(c.encode_utf8(&mut [0u8; 4]).as_bytes());
            *i += c.len_utf8();
        };
        push(c, &mut i);
        if is_han_numeral(c) {
            // A figure written in characters (五万九千, 三点一) is one token and a number, as
            // "59000" and "3.1" are; the lone 一 is mostly a word ("a", "one of").
            let mut chars = paragraph[i..].chars().peekable();
            while let Some(next) = chars.next() {
                let decimal_point = next == '点' && chars.peek().is_some_and(|&after| is_han_numeral(after));
                if !(is_han_numeral(next) || decimal_point) {
                    break;
                }
                push(next, &mut i);
            }
            return (i, &paragraph[start..i] != "一");
        }
        // Any other character is one token, with the marks that belong to it.
        while let Some(mark) = paragraph[i..].chars().next().filter(|&m| is_unspaced_mark(m)) {
            push(mark, &mut i);
        }
        return (i, false);
    }
    // Whether the token so far is a figure that a space may continue: one to three digits, then
    // groups of three. A longer first group is a year or a count of its own ("in 2019 100").
    let mut spaced_figure = true;
    let mut after_space = false;
    loop {
        let run_start = i;
        while i < bytes.len() && CLASS[bytes[i] as usize] & WORD != 0 {
            i += 1;
        }
        let run = &bytes[run_start..i];
        token.extend(run.iter().map(u8::to_ascii_lowercase));
        has_digit |= run.iter().any(u8::is_ascii_digit);
        let last_was_digit = run.last().is_some_and(u8::is_ascii_digit);
        let group_length_fits = if after_space {
            run.len() == 3
        } else {
            (1..=3).contains(&run.len())
        };
        spaced_figure &= group_length_fits && run.iter().all(u8::is_ascii_digit);
        after_space = false;
        let Some(&b) = bytes.get(i) else { break };
        if b == b' ' && spaced_figure && digit_group_at(paragraph, i + 1) {
            after_space = true;
            i += 1;
        } else if b >= 0x80 {
            let c = paragraph[i..].chars().next().unwrap_or(' ');
            if !continues_spaced_word(c) {
                break;
            }
            let mut utf8 = [0u8; 4];
            for lower in c.to_lowercase() {
                token.extend_from_slice(lower.encode_utf8(&mut utf8).as_bytes());
            }
            spaced_figure = false;
            i += c.len_utf8();
        } else if (b == b'.' || b == b',') && last_was_digit && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            if b == b'.' {
                token.push(b'.');
            }
            spaced_figure = false;
            i += 1;
        } else {
            break;
        }
    }
    (i, has_digit)
}

/// Whether three digits start at byte `at` and end a word there: a group of a figure written
/// with spaces ("434" in "1 434 cases", not "2017" in "May 9 2017" or "100m" in "5 100m").
fn digit_group_at(paragraph: &str, at: usize) -> bool {
    let bytes = paragraph.as_bytes();
    let Some(group) = bytes.get(at..at + 3) else {
        return false;
    };
    if !group.iter().all(u8::is_ascii_digit) {
        return false;
    }
    match bytes.get(at + 3) {
        None => true,
        Some(&b) if b < 0x80 => CLASS[b as usize] & WORD == 0,
        // The three digits are ASCII, so `at + 3` is a character boundary. Where `read_token`
        // ends the word: "1 434人" holds the figure "1434" as "1434人" does.
        Some(_) => paragraph[at + 3..]
            .chars()
            .next()
            .is_none_or(|c| !continues_spaced_word(c)),
    }
}

/// Whether a character beyond ASCII continues a word of a spaced script: a letter, digit or
/// mark, but not a character of a script without spaces, which is a word of its own. One test
/// for `read_token` and `digit_group_at`, which must agree on where a word ends.
fn continues_spaced_word(c: char) -> bool {
    (c.is_alphanumeric() || is_mark(c)) && !is_unspaced(c)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;
const LOWS: u64 = 0x7F7F_7F7F_7F7F_7F7F;

/// The high bit of each byte of `x` whose value `v` has `m < v < n` (`n <= 128`); bytes of 128
/// and above never. Exact per byte: no carry crosses bytes (Bit Twiddling Hacks, "hasbetween").
#[inline]
fn bytes_between(x: u64, m: u64, n: u64) -> u64 {
    (ONES * (127 + n)).wrapping_sub(x & LOWS) & !x & (x & LOWS).wrapping_add(ONES * (127 - m)) & HIGHS
}

/// Eight bytes from `at`, zero-padded past the end (a zero byte ends any token).
#[inline]
fn load8(bytes: &[u8], at: usize) -> u64 {
    if let Some(&word) = bytes.get(at..at + 8).and_then(|s| s.first_chunk::<8>()) {
        return u64::from_le_bytes(word);
    }
    let mut word = [0u8; 8];
    let tail = bytes.get(at..).unwrap_or_default();
    let n = tail.len().min(8);
    word[..n].copy_from_slice(&tail[..n]);
    u64::from_le_bytes(word)
}

/// Letters-and-digits mask (high bit per byte), upper-case mask and digit mask of eight bytes.
#[inline]
fn word_bytes(x: u64) -> (u64, u64, u64) {
    let digits = bytes_between(x, 0x2F, 0x3A);
    let upper = bytes_between(x, 0x40, 0x5B);
    (digits | upper | bytes_between(x, 0x60, 0x7B), upper, digits)
}

/// The common token, an ASCII word of fewer than sixteen letters and digits, read eight bytes
/// at a time: its bytes lower-cased (low bytes of the result), its length and whether it has a
/// digit. `None` sends the token to [`read_token`]: longer, non-ASCII, or maybe a digit group.
#[inline]
fn short_ascii_token(bytes: &[u8], at: usize) -> Option<(u128, usize, bool)> {
    let x = load8(bytes, at);
    let (word, upper, digits) = word_bytes(x);
    let len = ((!word & HIGHS).trailing_zeros() / 8) as usize;
    // Upper-case ASCII letters have bit 5 clear; setting it lower-cases them.
    let (lowered, len, has_digit) = if len < 8 {
        let kept = (1u64 << (8 * len)) - 1;
        (u128::from((x | (upper >> 2)) & kept), len, digits & kept != 0)
    } else {
        // Words of eight to fifteen bytes ("government", "agreement") are common enough in
        // news text to deserve the fast path too.
        let y = load8(bytes, at + 8);
        let (word_y, upper_y, digits_y) = word_bytes(y);
        let len_y = ((!word_y & HIGHS).trailing_zeros() / 8) as usize;
        if len_y == 8 {
            return None;
        }
        let kept = (1u64 << (8 * len_y)) - 1;
        let high = (y | (upper_y >> 2)) & kept;
        let low = x | (upper >> 2);
        (
            u128::from(low) | (u128::from(high) << 64),
            8 + len_y,
            digits != 0 || digits_y & kept != 0,
        )
    };
    if len == 0 {
        return None;
    }
    let next = bytes.get(at + len).copied().unwrap_or(b' ');
    if next >= 0x80 {
        return None;
    }
    // A figure may go on after a separator; most tokens have no digit and skip these tests.
    if has_digit && bytes[at + len - 1].is_ascii_digit() {
        let separated = match next {
            b'.' | b',' => true,
            b' ' => len <= 3 && bytes.get(at + len + 1).is_some_and(u8::is_ascii_digit),
            _ => false,
        };
        if separated {
            return None;
        }
    }
    Some((lowered, len, has_digit))
}

/// xxh3 of a token from [`short_ascii_token`].
#[inline]
fn short_token_hash(lowered: u128, len: usize) -> u64 {
    if len <= 8 {
        xxh3_short(lowered as u64, len)
    } else {
        xxh3_64(&lowered.to_le_bytes()[..len])
    }
}

/// `xxh3_64` of the `len` (1 to 8) low bytes of `word`, computed without a branch on the
/// length. xxh3 takes one path for 1 to 3 bytes and another for 4 to 8; short words alternate
/// between the two at random ("of", "the", "minister"), so a branch there mispredicts often.
/// Both paths are cheap, so both run and the length selects one. Equal to `xxh3_64` (tested).
#[inline]
fn xxh3_short(word: u64, len: usize) -> u64 {
    // The first 24 bytes of xxh3's default secret, which the two short paths read.
    const SECRET_0_4: u64 = 0x396c_feb8 ^ 0xbe4b_a423;
    const SECRET_8_16: u64 = 0x1cad_21f7_2c81_017c ^ 0xdb97_9083_e96d_d4de;
    let n = len as u64;
    // 1 to 3 bytes: first, middle and last byte with the length.
    let byte = |at: u64| (word >> (8 * at)) & 0xFF;
    let combined = (byte(0) << 16) | (byte(n >> 1) << 24) | byte(n.saturating_sub(1)) | (n << 8);
    let mut tiny = combined ^ SECRET_0_4;
    tiny ^= tiny >> 33;
    tiny = tiny.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    tiny ^= tiny >> 29;
    tiny = tiny.wrapping_mul(0x1656_67B1_9E37_79F9);
    tiny ^= tiny >> 32;
    // 4 to 8 bytes: the first and the last four bytes, then xxh3's rrmxmx mix.
    let first = word & 0xFFFF_FFFF;
    let last = (word >> (8 * n.saturating_sub(4))) & 0xFFFF_FFFF;
    let mut small = (last + (first << 32)) ^ SECRET_8_16;
    small ^= small.rotate_left(49) ^ small.rotate_left(24);
    small = small.wrapping_mul(0x9FB2_1C65_1E98_DF25);
    small ^= (small >> 35) + n;
    small = small.wrapping_mul(0x9FB2_1C65_1E98_DF25);
    small ^= small >> 28;
    // All ones when the word has at least four bytes: a select, not a jump.
    let long = 0u64.wrapping_sub(u64::from(len >= 4));
    (small & long) | (tiny & !long)
}

/// Letters of scripts written without spaces between words: Han, Hiragana, Katakana, Thai,
/// Lao, Khmer and Myanmar. Each is a token of its own, so that shingles are character
/// trigrams there. Cut at spaces and punctuation like alphabetic scripts, a Chinese or Japanese
/// article came out as a few dozen clause-long tokens: a copy with one word changed lost the
/// whole clause, a short article fell under `verify.min_tokens`, and a report with other
/// figures written in words still shared most of its "tokens" with the original.
pub(crate) fn is_unspaced(c: char) -> bool {
    // Cyrillic, Greek, Arabic and the other spaced scripts sit below U+0E00: one comparison.
    c >= '\u{0E00}'
        && matches!(c,
            '\u{0E00}'..='\u{0EFF}' // Thai, Lao
            | '\u{1000}'..='\u{109F}' // Myanmar
            | '\u{1780}'..='\u{17FF}' // Khmer
            | '\u{3005}'..='\u{3007}' // 々 〆 〇
            | '\u{3040}'..='\u{30FF}' // Hiragana, Katakana
            | '\u{31F0}'..='\u{31FF}' // Katakana phonetic extensions
            | '\u{3400}'..='\u{4DBF}' // CJK extension A
            | '\u{4E00}'..='\u{9FFF}' // CJK unified ideographs
            | '\u{F900}'..='\u{FAFF}' // CJK compatibility ideographs
            | '\u{20000}'..='\u{3134F}') // CJK extensions B to G
}

/// Chinese and Japanese numerals: digits, tens to myriads and 〇.
fn is_han_numeral(c: char) -> bool {
    "〇零一二两三四五六七八九十百千万亿億兆".contains(c)
}

/// Vowel signs and tone marks of the unspaced scripts: they belong to the letter before them,
/// whether or not Unicode calls them alphabetic.
fn is_unspaced_mark(c: char) -> bool {
    matches!(c,
        '\u{0E31}' | '\u{0E34}'..='\u{0E3A}' | '\u{0E47}'..='\u{0E4E}' // Thai
        | '\u{0EB1}' | '\u{0EB4}'..='\u{0EBC}' | '\u{0EC8}'..='\u{0ECD}' // Lao
        | '\u{102B}'..='\u{103E}' | '\u{1056}'..='\u{1059}' // Myanmar
        | '\u{17B4}'..='\u{17D3}' // Khmer
        | '\u{3099}' | '\u{309A}') // kana voicing marks
}

fn is_mark(c: char) -> bool {
    // Combining marks survive NFKC where no precomposed form exists; they belong to the word.
    // Unicode does not count the Indic viramas and nuktas as letters, though they sit inside
    // most Hindi, Bengali or Tamil words (प्रधानमंत्री): without them here, words fell apart
    // into pieces that unrelated articles share.
    matches!(
        c,
        '\u{0300}'..='\u{036F}'
            | '\u{0483}'..='\u{0489}'
            | '\u{093C}'
            | '\u{094D}'
            | '\u{09BC}'
            | '\u{09CD}'
            | '\u{0A3C}'
            | '\u{0A4D}'
            | '\u{0ABC}'
            | '\u{0ACD}'
            | '\u{0B3C}'
            | '\u{0B4D}'
            | '\u{0BCD}'
            | '\u{0C4D}'
            | '\u{0CBC}'
            | '\u{0CCD}'
            | '\u{0D3B}'
            | '\u{0D3C}'
            | '\u{0D4D}'
            | '\u{0DCA}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn swar_byte_ranges_agree_with_the_byte_classes() {
        for b in 0..=255u8 {
            let x = u64::from(b) << 24;
            let word = bytes_between(x, 0x2F, 0x3A) | bytes_between(x, 0x40, 0x5B) | bytes_between(x, 0x60, 0x7B);
            assert_eq!(word != 0, CLASS[b as usize] & WORD != 0, "byte {b:#x}");
            assert_eq!(bytes_between(x, 0x40, 0x5B) != 0, b.is_ascii_uppercase(), "byte {b:#x}");
        }
    }

    /// Tokenization a character at a time through the general path only ([`read_token`]), with
    /// the rules as the documentation states them: what [`tokenize`]'s fast paths must agree with.
    fn reference_tokenize(paragraph: &str) -> Normalized {
        let mut out = Normalized::default();
        let mut token = Vec::new();
        let mut sentence_start = true;
        let mut quoted = false;
        let mut chars = paragraph.char_indices().peekable();
        while let Some(&(at, c)) = chars.peek() {
            if !c.is_alphanumeric() {
                sentence_start |= matches!(c, '.' | '!' | '?' | '"' | ':');
                quoted ^= c == '"';
                chars.next();
                continue;
            }
            let index = out.token_hashes.len() as u32;
            if c.is_uppercase() && !sentence_start {
                out.names.push(index);
            }
            if quoted {
                out.quoted.push(index);
            }
            sentence_start = false;
            let (end, has_digit) = read_token(paragraph, at, &mut token);
            out.token_hashes.push(xxh3_64(&token));
            if has_digit {
                out.numbers.push(index);
            }
            while chars.next_if(|&(i, _)| i < end).is_some() {}
        }
        out
    }

    proptest! {
        #[test]
        fn tokens_names_and_numbers_match_the_byte_at_a_time_reference(
            text in "([ -~\n\t\u{0}]|[a-zA-Z0-9]{6,18}|[.,!?:\"' ]{1,10}|[0-9]{1,4}[., ][0-9]{1,4}|[\u{e0}-\u{ff}\u{400}-\u{45f}\u{2014}\u{300}]|[一二三十百万点日电国\u{3041}-\u{3050}\u{e01}-\u{e4f}]{1,6}){0,60}"
        ) {
            let mut out = Normalized::default();
            tokenize(&text, &mut Vec::new(), &mut out);
            let reference = reference_tokenize(&text);
            prop_assert_eq!(&out.token_hashes, &reference.token_hashes);
            prop_assert_eq!(&out.names, &reference.names);
            prop_assert_eq!(&out.numbers, &reference.numbers);
            prop_assert_eq!(&out.quoted, &reference.quoted);
        }

        #[test]
        fn the_fast_path_cuts_tokens_like_the_general_one(text in "([ -~\\n\u{e0}-\u{ff}]|[a-zA-Z0-9]{6,18}|[0-9]{1,4} [0-9]{2,4}){0,40}") {
            let mut token = Vec::new();
            let bytes = text.as_bytes();
            for at in 0..bytes.len() {
                if CLASS[bytes[at] as usize] & WORD == 0 {
                    continue;
                }
                if let Some((lowered, len, has_digit)) = short_ascii_token(bytes, at) {
                    let (end, general_has_digit) = read_token(&text, at, &mut token);
                    prop_assert_eq!(end, at + len);
                    prop_assert_eq!(&lowered.to_le_bytes()[..len], &token[..]);
                    prop_assert_eq!(has_digit, general_has_digit);
                    prop_assert_eq!(short_token_hash(lowered, len), xxh3_64(&token));
                }
            }
        }

        #[test]
        fn the_short_token_hash_is_xxh3(bytes in proptest::collection::vec(proptest::num::u8::ANY, 1..=8)) {
            let mut word = [0u8; 8];
            word[..bytes.len()].copy_from_slice(&bytes);
            prop_assert_eq!(xxh3_short(u64::from_le_bytes(word), bytes.len()), xxh3_64(&bytes));
        }
    }
}
