//! Headline normalization: the words of a headline as copies of one story share them,
//! whatever site tag, wire tag, case or punctuation each copy gives it.

use crate::pipeline::normalize::fold_char;
use crate::pipeline::normalize::markup::decode_markup;
use crate::pipeline::normalize::tokenize::is_unspaced;

/// A headline's words as the headline key hashes them: references decoded, a site's name after
/// it and a wire's tag before it left out (see `without_site_suffix`, `without_wire_tag`),
/// folded as bodies are, lower-cased, punctuation dropped, joined by single spaces into
/// `words`. Returns its length in half words: in scripts written without spaces two letters
/// count as a word, so that a Chinese headline needs eight letters where English needs four
/// words.
pub fn headline_words(title: &str, words: &mut Vec<u8>) -> usize {
    // Headlines from feeds carry references ("Azerbaijan&#39;s", "Caf&eacute;") where the
    // same headline elsewhere has the characters; allocates only when there are some.
    let mut decoded = String::new();
    let title = decode_markup(title, &mut decoded);
    let title = without_wire_tag(without_site_suffix(title));
    words.clear();
    words.reserve(title.len());
    let mut half_words = 0;
    let mut in_word = false;
    let mut utf8 = [0u8; 4];
    // Folded as bodies are, so that "ƏLİYEV" and "Əliyev" agree here too.
    for c in title.chars().filter_map(fold_char) {
        if !c.is_alphanumeric() {
            in_word = false;
            continue;
        }
        if !in_word {
            if !words.is_empty() {
                words.push(b' ');
            }
            in_word = true;
            half_words += 2;
        }
        // Headlines are mostly ASCII, where lower-casing is a byte operation: `char::to_lowercase`
        // for all took two and a half times as long.
        if c.is_ascii() {
            words.push(c.to_ascii_lowercase() as u8);
        } else {
            half_words += usize::from(is_unspaced(c));
            for lower in c.to_lowercase() {
                words.extend_from_slice(lower.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
    half_words
}

/// A headline without the tags wires and sites put before it: "UPDATE 2-", "REFILE-UPDATE 1-",
/// "EXCLUSIVE-", "BREAKING:", "СРОЧНО:" (capitals, perhaps a number, then a hyphen or a colon
/// right after). A headline in capitals only keeps its first word: "OFFICIALS: 31 WOUNDED" has
/// no tag to tell apart.
fn without_wire_tag(title: &str) -> &str {
    let mut rest = title.trim_start();
    for _ in 0..2 {
        let tag_len = rest
            .find(|c: char| !(c.is_uppercase() || c == ' ' || c.is_ascii_digit()))
            .unwrap_or(0);
        let (tag, after) = rest.split_at(tag_len);
        let tagged = tag.chars().filter(|c| c.is_uppercase()).count() >= 2
            && !tag.ends_with(' ')
            && (after.starts_with('-') || after.starts_with(':'))
            && after.contains(char::is_lowercase);
        if !tagged {
            break;
        }
        rest = after[1..].trim_start();
    }
    rest
}

/// A headline without a trailing site name: "Title | Breitbart", "Title | News.Az",
/// "Title - Trend.Az". After a dash only a host name goes ("- Ambassador", "- RIA" name who
/// said it, and are the headline's own); after a pipe, up to three words.
fn without_site_suffix(title: &str) -> &str {
    let title = title.trim_end();
    if let Some(pipe) = title.rfind('|') {
        let (head, tail) = (&title[..pipe], &title[pipe + 1..]);
        if head.ends_with(' ') && tail.starts_with(' ') && tail.split_whitespace().count() <= 3 {
            return head.trim_end();
        }
    }
    if let Some((before, last)) = title.rsplit_once(' ') {
        let host = last.rsplit_once('.').is_some_and(|(name, domain)| {
            !name.is_empty() && domain.len() >= 2 && domain.chars().all(char::is_alphabetic)
        });
        if host {
            if let Some(head) = [" -", " –", " —"].iter().find_map(|dash| before.strip_suffix(dash)) {
                return head;
            }
        }
    }
    title
}
