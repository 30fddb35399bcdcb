//! HTML that scrapers leave in article bodies: character references (`&amp;`, `&#39;`) and
//! tags. This module owns recognizing them and what each stands for in text;
//! [`crate::pipeline::normalize`] calls it while folding, at each `&` and `<`.
//!
//! Wire copy carries none, but a body taken from a web page may: one copy's `Azerbaijan&#39;s`
//! against another's `Azerbaijan's` put "39" among its numbers and broke every shingle around
//! the apostrophe, and tag names became words.

/// HTML that scrapers leave in a body, made text: the character a piece of HTML at the start
/// of `text` stands for, if any, and the piece's length. A character reference (`&amp;`,
/// `&#8217;`, `&nbsp;`) is its character, a block tag (`</p>`, `<br>`, `<div>`) a line break
/// so that paragraphs stay apart, any other tag nothing. `None` when `text` does not start
/// with HTML ("AT&T", "x < 5"). Folding calls it at each `&` and `<`, which it never leaves as
/// they are otherwise, so bodies without them pay nothing.
#[cold]
#[inline(never)]
pub(crate) fn markup_at(text: &str) -> Option<(Option<char>, usize)> {
    if text.starts_with('&') {
        character_reference(text).map(|(c, len)| (Some(c), len))
    } else if text.starts_with('<') {
        tag(text).map(|(block, len)| (block.then_some('\n'), len))
    } else {
        None
    }
}

/// `body` with its HTML made text by [`markup_at`], written into `out`, for the rare body that
/// normalization cannot fold in one pass (it needs full NFKC); `body` itself when it holds none.
pub(crate) fn decode_markup<'a>(body: &'a str, out: &'a mut String) -> &'a str {
    let Some(first) = body.find(['&', '<']) else {
        return body;
    };
    out.clear();
    out.push_str(&body[..first]);
    let mut rest = &body[first..];
    while let Some(at) = rest.find(['&', '<']) {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let len = match markup_at(rest) {
            Some((text, len)) => {
                out.extend(text);
                len
            }
            None => {
                out.push_str(&rest[..1]);
                1
            }
        };
        rest = &rest[len..];
    }
    out.push_str(rest);
    out
}

/// The character a reference at the start of `text` stands for, and the reference's length.
fn character_reference(text: &str) -> Option<(char, usize)> {
    let (c, len) = reference_body(text.strip_prefix('&')?, true)?;
    Some((c, len + 1))
}

/// [`character_reference`] after its '&': the character, and the length up to the ';'. A
/// reference escaped twice is read when `unwrap_twice`, once only: a body of a million
/// "&amp;amp;amp;..." must not recurse a million times.
fn reference_body(rest: &str, unwrap_twice: bool) -> Option<(char, usize)> {
    // Names and numbers are short: "&" without a ";" soon after is text ("AT&T", "R&D").
    let end = rest.bytes().take(11).position(|b| b == b';').filter(|&e| e > 0)?;
    let name = &rest[..end];
    // Escaped twice, as feeds often do ("&amp;#39;", "&amp;quot;"): the reference inside.
    if name == "amp" && unwrap_twice {
        if let Some((c, len)) = reference_body(&rest[end + 1..], false) {
            return Some((c, end + 1 + len));
        }
    }
    let c = if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        char::from_u32(code)?
    } else {
        match name {
            "amp" => '&',
            "quot" => '"',
            "apos" | "rsquo" | "lsquo" => '\'',
            "lt" => '<',
            "gt" => '>',
            "nbsp" => ' ',
            "laquo" | "raquo" | "ldquo" | "rdquo" | "bdquo" => '"',
            "ndash" | "mdash" | "minus" => '-',
            "hellip" => '…',
            "shy" => '\u{00AD}',
            "copy" => '©',
            "reg" => '®',
            "trade" => '™',
            "euro" => '€',
            "pound" => '£',
            "yen" => '¥',
            "cent" => '¢',
            "deg" => '°',
            "times" => '×',
            "divide" => '÷',
            "middot" => '·',
            "bull" => '•',
            "sect" => '§',
            "szlig" => 'ß',
            "aelig" => 'æ',
            "AElig" => 'Æ',
            "oelig" => 'œ',
            "OElig" => 'Œ',
            "oslash" => 'ø',
            "Oslash" => 'Ø',
            "iexcl" => '¡',
            "iquest" => '¿',
            "ensp" | "emsp" | "thinsp" => ' ',
            _ => accented_letter(name)?,
        }
    };
    Some((c, end + 1))
}

/// A letter with a diacritic named as HTML names it: a letter, then the mark ("eacute" é,
/// "Uuml" Ü, "ccedil" ç, "atilde" ã, "scaron" š). Pages in French, German, Portuguese or
/// Spanish exported by older systems write every such letter so; left as it was, "Caf&eacute;"
/// made the tokens "caf" and "eacute".
fn accented_letter(name: &str) -> Option<char> {
    const MARKS: [(&str, char); 8] = [
        ("acute", '\u{301}'),
        ("grave", '\u{300}'),
        ("circ", '\u{302}'),
        ("tilde", '\u{303}'),
        ("uml", '\u{308}'),
        ("ring", '\u{30A}'),
        ("cedil", '\u{327}'),
        ("caron", '\u{30C}'),
    ];
    let mut chars = name.chars();
    let letter = chars.next().filter(char::is_ascii_alphabetic)?;
    let mark_name = chars.as_str();
    let &(_, mark) = MARKS.iter().find(|(m, _)| *m == mark_name)?;
    unicode_normalization::char::compose(letter, mark)
}

/// HTML elements that break a block of text (a paragraph or a line).
#[rustfmt::skip]
const BLOCK_TAGS: &[&str] = &[
    "p", "br", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "blockquote",
    "section", "article", "header", "footer", "figure", "figcaption", "hr", "nav", "aside", "main", "dl",
    "dt", "dd", "pre", "address", "caption", "tfoot", "details", "summary", "form",
];

/// HTML elements that sit inside a block of text.
const INLINE_TAGS: &[&str] = &[
    "a", "b", "i", "u", "s", "em", "strong", "span", "font", "small", "big", "sup", "sub", "mark", "cite", "q", "abbr",
    "time", "img", "wbr", "del", "ins", "strike", "td", "th", "tbody", "thead", "iframe", "picture", "source",
    "center", "code", "label", "button", "meta", "link", "video", "audio", "embed", "object", "canvas",
];

/// HTML elements whose content is never text: removed with it, to their end tag. A scraped page
/// carries the embed script after every tweet it quotes (`<script async src=...widgets.js>`),
/// and its tokens ("script", "var", ...) were counted as the article's words.
const NON_TEXT_TAGS: &[&str] = &["script", "style", "noscript", "template", "svg"];

/// Whether a tag at the start of `text` breaks a block, and its length. Only the elements of
/// news bodies count (and comments, `<!-- -->`): "<<Azerbaijan>>", a quote written with
/// angle brackets, keeps its word, and "x < 5 and y > 3" is text.
///
/// Every search here stops at the next '<' or ends the body, so decoding stays linear in the
/// body's length whatever it holds: an element or a comment that is never closed runs to the
/// end of the body, as in a browser, instead of being searched for again at each '<'.
fn tag(text: &str) -> Option<(bool, usize)> {
    let after = &text[1..];
    if let Some(comment) = after.strip_prefix("!--") {
        let len = comment.find("-->").map_or(text.len(), |at| 4 + at + 3);
        return Some((false, len));
    }
    if after.starts_with('!') {
        // A declaration (<!DOCTYPE html>): nothing of the text.
        return past_closing_bracket(after).map(|len| (false, 1 + len));
    }
    let closing = after.starts_with('/');
    let name_and_rest = if closing { &after[1..] } else { after };
    let name_len = name_and_rest.bytes().take_while(u8::is_ascii_alphanumeric).count();
    // The name must end the tag or be followed by its attributes or a self-closing slash.
    if name_len == 0
        || !matches!(
            name_and_rest.as_bytes().get(name_len),
            Some(b'>' | b' ' | b'/' | b'\t' | b'\n')
        )
    {
        return None;
    }
    let name = name_and_rest[..name_len].to_ascii_lowercase();
    let is = |tags: &[&str]| tags.contains(&name.as_str());
    let element = if is(NON_TEXT_TAGS) {
        Element::NonText
    } else if is(BLOCK_TAGS) {
        Element::Block
    } else if is(INLINE_TAGS) {
        Element::Inline
    } else {
        return None;
    };
    // Attributes can be long (a srcset, a data: image): the tag ends at its '>', before any '<'.
    let attributes_at = 1 + usize::from(closing) + name_len;
    let end = attributes_at + past_closing_bracket(&text[attributes_at..])?;
    match element {
        // From an opening tag to the end of its element; a stray end tag is the tag alone.
        Element::NonText if closing => Some((true, end)),
        Element::NonText => Some((
            true,
            end_of_element(&text[end..], &name).map_or(text.len(), |len| end + len),
        )),
        Element::Block => Some((true, end)),
        Element::Inline => Some((false, end)),
    }
}

/// What a known tag's element is to the text around it.
enum Element {
    /// Its content is not text ([`NON_TEXT_TAGS`]).
    NonText,
    /// It breaks a block of text ([`BLOCK_TAGS`]).
    Block,
    /// It sits inside one ([`INLINE_TAGS`]).
    Inline,
}

/// Just past the '>' that ends a tag whose rest is `rest`, if no '<' comes before it: "x < 5
/// and y > 3" is no tag.
fn past_closing_bracket(rest: &str) -> Option<usize> {
    let at = rest.bytes().position(|b| b == b'>' || b == b'<')?;
    (rest.as_bytes()[at] == b'>').then_some(at + 1)
}

/// Where the element named `name` ends in `rest` (the text after its opening tag): just past
/// `</name>`, matched without regard to case. `None` when it is not closed.
fn end_of_element(rest: &str, name: &str) -> Option<usize> {
    let bytes = rest.as_bytes();
    let closing = format!("</{name}");
    let at = bytes
        .windows(closing.len())
        .position(|w| w.eq_ignore_ascii_case(closing.as_bytes()))?;
    let close = bytes[at..].iter().position(|&b| b == b'>')?;
    Some(at + close + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_references_and_tags_and_leaves_text_alone() {
        let mut out = String::new();
        assert_eq!(
            decode_markup("R&amp;D&nbsp;<b>up</b><br>&#x2019;&#8217;<!-- ad -->", &mut out),
            "R&D up\n\u{2019}\u{2019}"
        );
        for text in [
            "AT&T",
            "x < 5 and y > 3",
            "<<Azerbaijan>>",
            "&unknown;",
            "&#xZZ;",
            "a &",
            "<",
        ] {
            assert_eq!(decode_markup(text, &mut String::new()), text, "{text:?}");
        }
    }

    #[test]
    fn decodes_named_letters_with_diacritics_and_common_symbols() {
        let mut out = String::new();
        assert_eq!(
            decode_markup(
                "Caf&eacute; &Uuml;ber &ccedil;a, S&atilde;o, &Aring;, &scaron;, Stra&szlig;e, 20&euro;, 5&deg;",
                &mut out
            ),
            "Café Über ça, São, Å, š, Straße, 20€, 5°"
        );
        // No such letter: the reference stays text.
        for text in ["&qacute;", "&eacutex;", "&acute;", "&1uml;"] {
            assert_eq!(decode_markup(text, &mut String::new()), text, "{text:?}");
        }
    }

    #[test]
    fn reads_long_tags_declarations_and_unclosed_comments() {
        let srcset = format!("<img srcset=\"{}\">", "https://example.com/photo.jpg 640w, ".repeat(40));
        assert_eq!(decode_markup(&format!("A{srcset}B"), &mut String::new()), "AB");
        assert_eq!(
            decode_markup("<!DOCTYPE html><p>Text</p>", &mut String::new()),
            "\nText\n"
        );
        assert_eq!(decode_markup("Text<!-- a > b -->more", &mut String::new()), "Textmore");
        assert_eq!(decode_markup("Text<!-- never closed", &mut String::new()), "Text");
        // Tags and elements never closed, many times over: each search stops at the next '<'
        // or ends the body, so this is one pass, not one per '<'.
        let unclosed = "<p <b <script <style ".repeat(50_000);
        assert_eq!(decode_markup(&unclosed, &mut String::new()), unclosed);
        let scripts = format!("Text{}", "<script>x".repeat(50_000));
        assert_eq!(decode_markup(&scripts, &mut String::new()), "Text\n");
    }

    #[test]
    fn decodes_references_escaped_twice() {
        let mut out = String::new();
        assert_eq!(
            decode_markup(
                "Azerbaijan&amp;#39;s &amp;quot;deal&amp;quot; AT&amp;amp;T caf&amp;eacute; R&amp;D",
                &mut out
            ),
            "Azerbaijan's \"deal\" AT&T café R&D"
        );
        // Three times is not unwrapped further, and a long chain of them is no danger.
        assert_eq!(decode_markup("&amp;amp;amp;", &mut String::new()), "&amp;");
        let chain = format!("&{}", "amp;".repeat(200_000));
        assert_eq!(decode_markup(&chain, &mut String::new()).len(), chain.len() - 8);
    }

    #[test]
    fn drops_scripts_and_styles_with_their_content() {
        let mut out = String::new();
        assert_eq!(
            decode_markup(
                "Text.<blockquote>A tweet</blockquote><SCRIPT async src=\"https://platform.twitter.com/widgets.js\">var x = 1;</Script>More text.<style>.a { color: red }</style>",
                &mut out
            ),
            "Text.\nA tweet\n\nMore text.\n"
        );
        // Not closed: the script runs to the end of the body, as in a browser.
        assert_eq!(decode_markup("Text.<script>More text.", &mut String::new()), "Text.\n");
        assert_eq!(
            decode_markup("Text.</script>More text.", &mut String::new()),
            "Text.\nMore text."
        );
    }
}
