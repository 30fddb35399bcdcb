//! Parsing and validation of one raw input record into an [`Article`].
//!
//! This module owns the input contract: which fields are required, how timestamps are read,
//! and the typed [`InvalidRecord`] reason every rejected record carries. The original JSON is
//! kept untouched so it can be carried through to the output as received.

use crate::pipeline::config::InputConfig;
use chrono::{DateTime, NaiveDate, Utc};
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::sync::Arc;

/// Why a record was rejected. Every variant names the problem and what the producer should fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRecord {
    #[error("record is not valid UTF-8 (first bad byte at offset {offset}): send UTF-8 encoded JSON")]
    InvalidUtf8 { offset: usize },
    #[error("record is not valid JSON ({message}): send one JSON object per record")]
    InvalidJson { message: String },
    #[error("record is JSON but not an object (got {found}): send one JSON object per article")]
    NotAnObject { found: &'static str },
    #[error("required field `{field}` is missing: every article needs `id`, `source` and `body`")]
    MissingField { field: &'static str },
    #[error("field `{field}` must be {expected}, got {found}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
        found: &'static str,
    },
    #[error("body is empty after normalization: the article has no text to match on")]
    EmptyBody,
    #[error(
        "record is {size} bytes, over the limit of {limit} bytes (raise `input.max_record_bytes` if this is expected)"
    )]
    Oversize { size: usize, limit: usize },
    #[error(
        "record is empty or only whitespace: send one JSON object per record (in a JSONL file, remove the blank line)"
    )]
    EmptyRecord,
    #[error("record nests arrays and objects more than {limit} deep (`input.max_depth`): flatten it, or raise the limit if such records are expected")]
    TooDeep { limit: usize },
    #[error("record has more than {limit} object fields, counted at every depth (`input.max_fields`): send fewer, or raise the limit if such records are expected")]
    TooManyFields { limit: usize },
    #[error("a string at byte {offset} of the record is {size} bytes, over the limit of {limit} (`input.max_string_bytes`): shorten it, or raise the limit if such records are expected")]
    StringTooLong { offset: usize, size: usize, limit: usize },
    #[error("`published_at` value {value:?} is not an RFC 3339 timestamp (an offset may be left out: UTC), an RFC 2822 date, a YYYY-MM-DD date or a YYYY-MM month")]
    BadTimestamp { value: String },
}

impl InvalidRecord {
    /// Every value [`InvalidRecord::code`] can return.
    pub const CODES: [&'static str; 12] = [
        "invalid_utf8",
        "invalid_json",
        "not_an_object",
        "missing_field",
        "wrong_type",
        "empty_body",
        "oversize",
        "bad_timestamp",
        "empty_record",
        "too_deep",
        "too_many_fields",
        "string_too_long",
    ];

    /// A short stable code for the reason, for dead-letter headers and metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            InvalidRecord::InvalidUtf8 { .. } => "invalid_utf8",
            InvalidRecord::InvalidJson { .. } => "invalid_json",
            InvalidRecord::NotAnObject { .. } => "not_an_object",
            InvalidRecord::MissingField { .. } => "missing_field",
            InvalidRecord::WrongType { .. } => "wrong_type",
            InvalidRecord::EmptyBody => "empty_body",
            InvalidRecord::Oversize { .. } => "oversize",
            InvalidRecord::BadTimestamp { .. } => "bad_timestamp",
            InvalidRecord::EmptyRecord => "empty_record",
            InvalidRecord::TooDeep { .. } => "too_deep",
            InvalidRecord::TooManyFields { .. } => "too_many_fields",
            InvalidRecord::StringTooLong { .. } => "string_too_long",
        }
    }
}

/// One validated article. Cheap to clone: the raw record is shared.
#[derive(Debug, Clone, PartialEq)]
pub struct Article {
    pub id: String,
    pub source: String,
    pub title: Option<String>,
    pub url: Option<String>,
    /// Event time: `published_at` when given, else the ingest time passed to [`parse`].
    pub published_at: DateTime<Utc>,
    /// The latest instant `published_at` may stand for: the end of the month for a
    /// month-precision date (`2024-05`), else `published_at` itself.
    pub published_until: DateTime<Utc>,
    /// Whether `published_at` came from the record (true) or from ingest time (false).
    pub has_published_at: bool,
    /// When the record arrived: the Kafka message's timestamp, or the clock in the CLI.
    pub ingest_time: DateTime<Utc>,
    pub lang: Option<String>,
    /// The record exactly as received, without the whitespace around it, for carrying through
    /// to story events. Valid JSON: parsing read all of it.
    pub raw: Arc<str>,
}

/// One field of the record as it came: a string (borrowed when it had no escapes) or the name
/// of the JSON type it had instead. Missing and `null` fields are `None` around it. Reading the
/// record into these, rather than into a `serde_json::Value`, keeps unknown fields unbuilt.
enum Field<'a> {
    Text(Cow<'a, str>),
    Other(&'static str),
}

impl<'de: 'a, 'a> Deserialize<'de> for Field<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for FieldVisitor<'a> {
            type Value = Field<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Field<'a>, E> {
                Ok(Field::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Field<'a>, E> {
                Ok(Field::Text(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Field<'a>, E> {
                Ok(Field::Text(Cow::Owned(v)))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Field<'a>, E> {
                Ok(Field::Other("a boolean"))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Field<'a>, E> {
                Ok(Field::Other("a number"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Field<'a>, E> {
                Ok(Field::Other("a number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Field<'a>, E> {
                Ok(Field::Other("a number"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field<'a>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Field::Other("an array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Field<'a>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Field::Other("an object"))
            }
        }
        deserializer.deserialize_any(FieldVisitor(std::marker::PhantomData))
    }
}

/// The fields syndic reads; the rest of the record is only carried.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow, default)]
    id: Option<Field<'a>>,
    #[serde(borrow, default)]
    source: Option<Field<'a>>,
    #[serde(borrow, default)]
    body: Option<Field<'a>>,
    #[serde(borrow, default)]
    title: Option<Field<'a>>,
    #[serde(borrow, default)]
    url: Option<Field<'a>>,
    #[serde(borrow, default)]
    lang: Option<Field<'a>>,
    #[serde(borrow, default)]
    published_at: Option<Field<'a>>,
}

fn required_string<'a>(field: Option<Field<'a>>, name: &'static str) -> Result<Cow<'a, str>, InvalidRecord> {
    match field {
        None => Err(InvalidRecord::MissingField { field: name }),
        Some(Field::Text(s)) => Ok(s),
        Some(Field::Other(found)) => Err(InvalidRecord::WrongType {
            field: name,
            expected: "a string",
            found,
        }),
    }
}

fn optional_string<'a>(field: Option<Field<'a>>, name: &'static str) -> Result<Option<Cow<'a, str>>, InvalidRecord> {
    match field {
        None => Ok(None),
        Some(Field::Text(s)) => Ok(Some(s)),
        Some(Field::Other(found)) => Err(InvalidRecord::WrongType {
            field: name,
            expected: "a string or null",
            found,
        }),
    }
}

/// The JSON type of a value that is not an object, told by its first character.
fn non_object_type(json: &str) -> Option<&'static str> {
    match json.trim_start().as_bytes().first()? {
        b'{' => None,
        b'[' => Some("an array"),
        b'"' => Some("a string"),
        b't' | b'f' => Some("a boolean"),
        b'n' => Some("null"),
        _ => Some("a number"),
    }
}

/// Reads `published_at` as RFC 3339, a plain date (midnight UTC) or a month (its first day),
/// and the two forms feeds use most besides: a date and time without an offset ("2024-11-26
/// 10:00:00", taken as UTC) and RFC 2822, the date of RSS ("Tue, 26 Nov 2024 10:00:00 GMT").
pub fn parse_timestamp(value: &str) -> Result<DateTime<Utc>, InvalidRecord> {
    parse_time_range(value).map(|(start, _)| start)
}

/// Like [`parse_timestamp`], also returning the latest instant the value may stand for: a
/// month-precision date, common on pages whose day was never published, covers its month.
pub fn parse_time_range(value: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), InvalidRecord> {
    let trimmed = value.trim();
    if let Ok(ts) = DateTime::parse_from_rfc3339(trimmed).or_else(|_| DateTime::parse_from_rfc2822(trimmed)) {
        let ts = ts.with_timezone(&Utc);
        return Ok((ts, ts));
    }
    // Without an offset a time says nothing about its zone; UTC is the one guess that a
    // replay of the same topic repeats.
    let naive = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|format| chrono::NaiveDateTime::parse_from_str(trimmed, format).ok());
    if let Some(ts) = naive.map(|t| t.and_utc()) {
        return Ok((ts, ts));
    }
    let day = |date: NaiveDate| date.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    if let Some(start) = NaiveDate::parse_from_str(trimmed, "%Y-%m-%d").ok().and_then(day) {
        return Ok((start, start));
    }
    if let Some(first) = NaiveDate::parse_from_str(&format!("{trimmed}-01"), "%Y-%m-%d")
        .ok()
        .filter(|_| trimmed.len() == 7)
    {
        let next_month = first.checked_add_months(chrono::Months::new(1));
        if let (Some(start), Some(end)) = (day(first), next_month.and_then(day)) {
            return Ok((start, end - chrono::Duration::seconds(1)));
        }
    }
    Err(InvalidRecord::BadTimestamp {
        value: value.to_string(),
    })
}

/// Parses and validates one raw record against the input limits. `ingest_time` stands in for a
/// missing `published_at`.
pub fn parse(bytes: &[u8], limits: &InputConfig, ingest_time: DateTime<Utc>) -> Result<Article, InvalidRecord> {
    parse_with_body(bytes, limits, ingest_time).map(|(article, _)| article)
}

/// Checks the record's shape against the limits in one pass over its bytes, before it is
/// parsed. The parser itself would take any depth (serde_json skips unknown values without
/// recursing), and a record is carried into story events as received, so a record nested
/// 100,000 deep would reach every downstream reader, most of which recurse. The bytes may be
/// any JSON or none: an unterminated string ends the scan, and the parser says what is wrong.
pub fn check_shape(bytes: &[u8], limits: &InputConfig) -> Result<(), InvalidRecord> {
    let mut depth = 0usize;
    let mut fields = 0usize;
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'"' => {
                let start = i + 1;
                let mut end = start;
                // Strings hold nearly all the bytes: memchr finds their ends word by word.
                loop {
                    let Some(rest) = bytes.get(end..) else { return Ok(()) };
                    match memchr::memchr2(b'"', b'\\', rest) {
                        None => return Ok(()),
                        Some(at) if rest[at] == b'\\' => end += at + escape_len(bytes, end + at)?,
                        Some(at) => {
                            end += at;
                            break;
                        }
                    }
                }
                if end - start > limits.max_string_bytes {
                    return Err(InvalidRecord::StringTooLong {
                        offset: i,
                        size: end - start,
                        limit: limits.max_string_bytes,
                    });
                }
                i = end;
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > limits.max_depth {
                    return Err(InvalidRecord::TooDeep {
                        limit: limits.max_depth,
                    });
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'-' | b'0'..=b'9' => {
                let len = bytes[i..]
                    .iter()
                    .position(|b| matches!(b, b',' | b']' | b'}' | b' ' | b'\t' | b'\r' | b'\n'))
                    .unwrap_or(bytes.len() - i);
                check_number(&bytes[i..i + len], i)?;
                i += len - 1;
            }
            // Outside strings, a colon only ever follows an object's key.
            b':' => {
                fields += 1;
                if fields > limits.max_fields {
                    return Err(InvalidRecord::TooManyFields {
                        limit: limits.max_fields,
                    });
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Refuses a number too large for a 64-bit float (`1e400`): the grammar has no bound, and the
/// parser skips unknown fields without reading their numbers, but most readers (serde_json,
/// JavaScript's) cannot represent it. Only numbers with an exponent or over 300 characters can
/// be that large, so the others are not parsed here.
fn check_number(token: &[u8], at: usize) -> Result<(), InvalidRecord> {
    if token.len() <= 300 && !token.iter().any(|b| matches!(b, b'e' | b'E')) {
        return Ok(());
    }
    match std::str::from_utf8(token).ok().and_then(|t| t.parse::<f64>().ok()) {
        Some(value) if value.is_infinite() => Err(InvalidRecord::InvalidJson {
            message: format!(
                "the number at byte {at} is beyond the range of a 64-bit float, which most JSON readers cannot represent: send it as a string"
            ),
        }),
        // Finite, or not a number at all (the parser says what is wrong).
        _ => Ok(()),
    }
}

/// The length of the escape at `at` (a backslash): 2, or 6 for `\uXXXX`, or 12 for a surrogate
/// pair. A lone surrogate is refused: the JSON grammar lets it through, and the parser skips
/// unknown fields without decoding them, but most readers (serde_json among them) refuse to
/// decode it, so a story event carrying it could not be read.
fn escape_len(bytes: &[u8], at: usize) -> Result<usize, InvalidRecord> {
    let hex = |from: usize| {
        let digits = bytes.get(from..from + 4)?;
        u16::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
    };
    if bytes.get(at + 1) != Some(&b'u') {
        return Ok(2);
    }
    let lone = |unit: u16| {
        InvalidRecord::InvalidJson {
        message: format!(
            "lone UTF-16 surrogate \\u{unit:04X} at byte {at}: a character outside the Basic Multilingual Plane is escaped as a pair, high then low"
        ),
    }
    };
    match hex(at + 2) {
        Some(unit @ 0xD800..=0xDBFF) => match (bytes.get(at + 6..at + 8), hex(at + 8)) {
            (Some(b"\\u"), Some(0xDC00..=0xDFFF)) => Ok(12),
            _ => Err(lone(unit)),
        },
        Some(unit @ 0xDC00..=0xDFFF) => Err(lone(unit)),
        // Not four hex digits: the parser says what is wrong.
        _ => Ok(6),
    }
}

/// [`parse`], also giving the body: borrowed from `bytes` unless it had JSON escapes. The body
/// is read once, by normalization, so the article does not keep a copy of it.
pub fn parse_with_body<'a>(
    bytes: &'a [u8],
    limits: &InputConfig,
    ingest_time: DateTime<Utc>,
) -> Result<(Article, Cow<'a, str>), InvalidRecord> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(InvalidRecord::EmptyRecord);
    }
    if bytes.len() > limits.max_record_bytes {
        return Err(InvalidRecord::Oversize {
            size: bytes.len(),
            limit: limits.max_record_bytes,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| InvalidRecord::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    check_shape(bytes, limits)?;
    let invalid_json = |e: serde_json::Error| InvalidRecord::InvalidJson { message: e.to_string() };
    if let Some(found) = non_object_type(text) {
        // Not an object, or not JSON at all: which one decides the reason.
        serde_json::from_str::<IgnoredAny>(text).map_err(invalid_json)?;
        return Err(InvalidRecord::NotAnObject { found });
    }
    // One pass reads the known fields, mostly as borrowed slices of the record, and checks the
    // syntax of the rest as it skips it; the record is then kept as received. A pass of its own
    // to keep it (serde_json's `RawValue`) cost about 4% of the core (BENCHMARKS.md, tried
    // and not kept).
    let fields: Fields = serde_json::from_str(text).map_err(invalid_json)?;
    let id = required_string(fields.id, "id")?;
    if id.trim().is_empty() {
        return Err(InvalidRecord::MissingField { field: "id" });
    }
    let source = required_string(fields.source, "source")?;
    let body = required_string(fields.body, "body")?;
    if body.trim().is_empty() {
        return Err(InvalidRecord::EmptyBody);
    }
    let title = optional_string(fields.title, "title")?;
    let url = optional_string(fields.url, "url")?;
    let lang = optional_string(fields.lang, "lang")?;
    let published = optional_string(fields.published_at, "published_at")?;
    let (published_at, published_until, has_published_at) = match published {
        Some(value) => {
            let (start, end) = parse_time_range(&value)?;
            (start, end, true)
        }
        None => (ingest_time, ingest_time, false),
    };
    let owned = |s: Option<Cow<str>>| s.map(Cow::into_owned);
    let article = Article {
        id: id.into_owned(),
        source: source.into_owned(),
        title: owned(title),
        url: owned(url),
        published_at,
        published_until,
        has_published_at,
        ingest_time,
        lang: owned(lang),
        raw: Arc::from(text.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))),
    };
    Ok((article, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        parse_timestamp("2024-01-01T00:00:00Z").unwrap()
    }

    fn reason(bytes: &[u8]) -> &'static str {
        parse(bytes, &InputConfig::default(), now()).unwrap_err().code()
    }

    #[test]
    fn accepts_a_minimal_article_and_keeps_unknown_fields_in_raw() {
        let rec = br#"{"id":"a1","source":"news.az","body":"Text","extra":{"k":1}}"#;
        let a = parse(rec, &InputConfig::default(), now()).unwrap();
        assert_eq!(a.id, "a1");
        assert!(!a.has_published_at);
        assert_eq!(a.published_at, now());
        assert!(a.raw.contains(r#""extra":{"k":1}"#));
    }

    #[test]
    fn keeps_the_record_as_received_without_the_whitespace_around_it() {
        let rec = b" \r\n{ \"id\" : \"a1\", \"source\":\"s\",\"body\":\"T\\u00e9xt\"}\t\n";
        let a = parse(rec, &InputConfig::default(), now()).unwrap();
        assert_eq!(&*a.raw, r#"{ "id" : "a1", "source":"s","body":"T\u00e9xt"}"#);
    }

    #[test]
    fn reads_rfc3339_and_plain_dates() {
        let a = parse(
            br#"{"id":"a","source":"s","body":"b","published_at":"2023-12-26"}"#,
            &InputConfig::default(),
            now(),
        )
        .unwrap();
        assert_eq!(a.published_at.to_rfc3339(), "2023-12-26T00:00:00+00:00");
        let b = parse(
            br#"{"id":"a","source":"s","body":"b","published_at":"2023-12-26T10:00:00+04:00"}"#,
            &InputConfig::default(),
            now(),
        )
        .unwrap();
        assert_eq!(b.published_at.to_rfc3339(), "2023-12-26T06:00:00+00:00");
        let m = parse(
            br#"{"id":"a","source":"s","body":"b","published_at":"2024-02"}"#,
            &InputConfig::default(),
            now(),
        )
        .unwrap();
        assert_eq!(m.published_at.to_rfc3339(), "2024-02-01T00:00:00+00:00");
        assert_eq!(m.published_until.to_rfc3339(), "2024-02-29T23:59:59+00:00");
        for (value, expected) in [
            ("2024-11-26T10:00:00", "2024-11-26T10:00:00+00:00"),
            ("2024-11-26 10:00:00.250", "2024-11-26T10:00:00.250+00:00"),
            ("2024-11-26 10:00", "2024-11-26T10:00:00+00:00"),
            ("Tue, 26 Nov 2024 14:00:00 +0400", "2024-11-26T10:00:00+00:00"),
            ("Tue, 26 Nov 2024 10:00:00 GMT", "2024-11-26T10:00:00+00:00"),
        ] {
            let (start, end) = parse_time_range(value).unwrap();
            assert_eq!((start.to_rfc3339(), end), (expected.to_string(), start), "{value}");
        }
        for bad in ["26.11.2024", "2024-11-26T25:00:00", "yesterday", "2024-11-26T10"] {
            assert!(parse_time_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn codes_lists_every_code() {
        let samples = [
            InvalidRecord::InvalidUtf8 { offset: 0 },
            InvalidRecord::InvalidJson { message: String::new() },
            InvalidRecord::NotAnObject { found: "" },
            InvalidRecord::MissingField { field: "" },
            InvalidRecord::WrongType {
                field: "",
                expected: "",
                found: "",
            },
            InvalidRecord::EmptyBody,
            InvalidRecord::Oversize { size: 0, limit: 0 },
            InvalidRecord::BadTimestamp { value: String::new() },
            InvalidRecord::EmptyRecord,
            InvalidRecord::TooDeep { limit: 0 },
            InvalidRecord::TooManyFields { limit: 0 },
            InvalidRecord::StringTooLong {
                offset: 0,
                size: 0,
                limit: 0,
            },
        ];
        let codes: Vec<&str> = samples.iter().map(InvalidRecord::code).collect();
        assert_eq!(codes, InvalidRecord::CODES);
    }

    #[test]
    fn every_kind_of_bad_record_gets_its_own_reason() {
        assert_eq!(reason(b"{\"id\":\"\xff\"}"), "invalid_utf8");
        assert_eq!(reason(b"{not json"), "invalid_json");
        assert_eq!(reason(b"[1,2]"), "not_an_object");
        assert_eq!(reason(b" \"headline\" "), "not_an_object");
        // Not JSON, whatever it starts with: the record is broken, not of the wrong type.
        assert_eq!(reason(b"[1,2"), "invalid_json");
        assert_eq!(reason(b"5x"), "invalid_json");
        assert_eq!(reason(b""), "empty_record");
        assert_eq!(reason(b" \t\r "), "empty_record");
        assert_eq!(reason(br#"{"id":"a","source":"s","body":"b"} {}"#), "invalid_json");
        assert_eq!(
            reason(br#"{"id":"a","source":"s","body":"b","extra":[1,}"#),
            "invalid_json"
        );
        assert_eq!(
            reason(br#"{"id":"a","source":"s","body":"b","extra":"\q"}"#),
            "invalid_json"
        );
        assert_eq!(reason(br#"{"source":"s","body":"b"}"#), "missing_field");
        assert_eq!(reason(br#"{"id":7,"source":"s","body":"b"}"#), "wrong_type");
        assert_eq!(reason(br#"{"id":"a","source":"s","body":"  "}"#), "empty_body");
        assert_eq!(
            reason(br#"{"id":"a","source":"s","body":"b","published_at":"yesterday"}"#),
            "bad_timestamp"
        );
        assert_eq!(
            parse(
                br#"{"id":"a","source":"s","body":"bbbb"}"#,
                &InputConfig {
                    max_record_bytes: 10,
                    ..InputConfig::default()
                },
                now()
            )
            .unwrap_err()
            .code(),
            "oversize"
        );
    }

    fn article_with(extra: &str) -> String {
        format!(r#"{{"id":"a","source":"s","body":"text","extra":{extra}}}"#)
    }

    #[test]
    fn a_record_over_an_input_limit_is_refused_with_the_limit_and_the_key() {
        // The record itself is level 1, so 63 arrays inside it are at the limit of 64.
        let at_limit = article_with(&format!("{}{}", "[".repeat(63), "]".repeat(63)));
        assert!(parse(at_limit.as_bytes(), &InputConfig::default(), now()).is_ok());
        let deeper = article_with(&format!("{}{}", "[".repeat(64), "]".repeat(64)));
        assert_eq!(reason(deeper.as_bytes()), "too_deep");
        // The hostile record of the issue: 100,000 levels in an unknown field.
        let hostile = article_with(&format!("{}{}", "{\"k\":".repeat(100_000), "}".repeat(100_000)));
        let err = parse(hostile.as_bytes(), &InputConfig::default(), now()).unwrap_err();
        assert_eq!(err.code(), "too_deep");
        assert!(err.to_string().contains("input.max_depth"), "{err}");
        // Brackets, colons and escaped quotes inside strings are text, not structure.
        let texty = article_with(&format!("\"{}\\\"{}\"", "[{:".repeat(1000), "]}".repeat(10)));
        assert!(parse(texty.as_bytes(), &InputConfig::default(), now()).is_ok());

        let limits = InputConfig {
            max_fields: 5,
            max_string_bytes: 8,
            ..InputConfig::default()
        };
        let five = br#"{"id":"a","source":"s","body":"b","x":{"y":1}}"#;
        assert!(parse(five, &limits, now()).is_ok());
        let six = br#"{"id":"a","source":"s","body":"b","x":{"y":1,"z":2}}"#;
        let err = parse(six, &limits, now()).unwrap_err();
        assert_eq!(
            (err.code(), err.to_string().contains("input.max_fields")),
            ("too_many_fields", true)
        );
        let long = br#"{"id":"a","source":"s","body":"123456789"}"#;
        let err = parse(long, &limits, now()).unwrap_err();
        assert_eq!(
            err,
            InvalidRecord::StringTooLong {
                offset: 30,
                size: 9,
                limit: 8
            }
        );
        // A string is measured as sent, escapes included.
        let escaped = br#"{"id":"a","source":"s","body":"1234\"678"}"#;
        assert_eq!(parse(escaped, &limits, now()).unwrap_err().code(), "string_too_long");
        // A lone surrogate in a field the parser only skips (found by fuzzing the parser): the
        // event carrying the record could not be decoded downstream.
        let lone = br#"{"id":"a","source":"s","body":"b","x":"\uDaaa22"}"#;
        assert_eq!(reason(lone), "invalid_json");
        assert_eq!(
            reason(br#"{"id":"a","source":"s","body":"b","x":"\uDC00"}"#),
            "invalid_json"
        );
        // A number no 64-bit float holds, in a skipped field (found by fuzzing too).
        assert_eq!(
            reason(br#"{"id":"a","source":"s","body":"b","x":-5.5e5555}"#),
            "invalid_json"
        );
        assert_eq!(
            reason(format!(r#"{{"id":"a","source":"s","body":"b","x":{}}}"#, "9".repeat(400)).as_bytes()),
            "invalid_json"
        );
        assert!(parse(
            br#"{"id":"a","source":"s","body":"b","x":[1e300,-2.5E-400,0,12]}"#,
            &InputConfig::default(),
            now()
        )
        .is_ok());
        let pair = br#"{"id":"a","source":"s","body":"b","x":"\uD83D\uDE00 \u00e9 \n"}"#;
        assert!(parse(pair, &InputConfig::default(), now()).is_ok());
        let exact = br#"{"id":"a","source":"s","body":"1234\"67"}"#;
        assert!(parse(exact, &limits, now()).is_ok());
    }

    /// Any JSON value, nested a few levels.
    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 48, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::btree_map(".{0,6}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Depth (a container is one level more than its deepest child), object fields and the
    /// longest string as serialized, counted on the parsed value.
    fn shape(value: &serde_json::Value) -> (usize, usize, usize) {
        use serde_json::Value;
        let sent = |s: &str| serde_json::to_string(s).map_or(0, |q| q.len() - 2);
        match value {
            Value::String(s) => (0, 0, sent(s)),
            Value::Array(items) => items
                .iter()
                .map(shape)
                .fold((1, 0, 0), |(d, f, l), (cd, cf, cl)| (d.max(cd + 1), f + cf, l.max(cl))),
            Value::Object(map) => map.iter().fold((1, map.len(), 0), |(d, f, l), (k, v)| {
                let (cd, cf, cl) = shape(v);
                (d.max(cd + 1), f + cf, l.max(cl).max(sent(k)))
            }),
            _ => (0, 0, 0),
        }
    }

    proptest::proptest! {
        /// The byte scan agrees with the parsed value on every limit, whatever the strings hold.
        #[test]
        fn the_shape_scan_measures_what_a_parser_sees(value in json_value(), slack in 0usize..3) {
            let record = serde_json::json!({"id": "a", "source": "s", "body": "b", "extra": value});
            let bytes = serde_json::to_vec(&record).unwrap();
            let (depth, fields, longest) = shape(&record);
            let limits = |depth, fields, string| InputConfig {
                max_depth: depth,
                max_fields: fields,
                max_string_bytes: string,
                ..InputConfig::default()
            };
            proptest::prop_assert!(check_shape(&bytes, &limits(depth + slack, fields + slack, longest + slack)).is_ok());
            proptest::prop_assert_eq!(
                check_shape(&bytes, &limits(depth - 1, fields, longest)).map_err(|e| e.code()),
                Err("too_deep")
            );
            proptest::prop_assert_eq!(
                check_shape(&bytes, &limits(depth, fields - 1, longest)).map_err(|e| e.code()),
                Err("too_many_fields")
            );
            if longest > 0 {
                proptest::prop_assert_eq!(
                    check_shape(&bytes, &limits(depth, fields, longest - 1)).map_err(|e| e.code()),
                    Err("string_too_long")
                );
            }
        }
    }
}
